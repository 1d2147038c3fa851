//! Oversight for the national focal point: the audit trail and its verification, case-flow
//! monitoring, the statistics report and the EU data-collection export.

use actix_web::{HttpResponse, get, web};
use chrono::{Duration, NaiveDate, NaiveTime};
use serde::Deserialize;
use utoipa::IntoParams;

use super::common::parse_id;
use super::context::Context;
use crate::app;
use crate::app::oversight::{AuditPage, EuExport, Flows};
use crate::db::Instant;
use crate::db::audit::AuditFilter;
use crate::domain::access::{self, Actor};
use crate::domain::audit::Verification;
use crate::domain::stats::{Report, ThreeWayCourse, to_csv};
use crate::error::ApiError;

fn date_param(name: &str, value: Option<&str>) -> Result<NaiveDate, ApiError> {
    let text = value.ok_or_else(|| ApiError::field(name, "is required (YYYY-MM-DD)"))?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| ApiError::field(name, "must be a date as YYYY-MM-DD"))
}

pub fn period(from: Option<&str>, to: Option<&str>) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let from = date_param("from", from)?;
    let to = date_param("to", to)?;
    if to < from {
        return Err(ApiError::field("to", "must not be before `from`"));
    }
    if (to - from).num_days() > 7320 {
        return Err(ApiError::field("to", "the period can be at most twenty years"));
    }
    Ok((from, to))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub case_id: Option<String>,
    /// The actor's organisation.
    pub organisation: Option<String>,
    /// The actor's `sub`.
    pub actor: Option<String>,
    /// e.g. `referral.accept`, `case.identifying_details.read`.
    pub action: Option<String>,
    /// From this instant (RFC 3339) or day (YYYY-MM-DD), inclusive.
    pub from: Option<String>,
    /// Until this instant (RFC 3339, exclusive) or day (YYYY-MM-DD, inclusive).
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

fn instant_param(name: &str, text: &str, end_of_day: bool) -> Result<Instant, ApiError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(Instant::from_utc(t.with_timezone(&chrono::Utc)));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| ApiError::field(name, "must be a date (YYYY-MM-DD) or an RFC 3339 instant"))?;
    let day = if end_of_day { day + Duration::days(1) } else { day };
    Ok(Instant::from_utc(day.and_time(NaiveTime::MIN).and_utc()))
}

/// The filter of an audit query, checked.
pub fn parse_audit_query(q: AuditQuery, settings: &crate::config::Settings) -> Result<AuditFilter, ApiError> {
    let max = settings.cases.page_size_max;
    let limit = q.limit.unwrap_or(settings.cases.page_size_default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::field("limit", format!("must be between 1 and {max}")));
    }
    let before_seq = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| ApiError::field("cursor", "is not a cursor from this API"))?,
        ),
    };
    let case_id = match q.case_id.as_deref() {
        None => None,
        Some(text) => Some(parse_id(text, crate::db::Id).map_err(|_| ApiError::field("case_id", "must be a UUID"))?),
    };
    Ok(AuditFilter {
        case_id,
        organisation: q.organisation,
        actor: q.actor,
        action: q.action,
        from: q.from.as_deref().map(|t| instant_param("from", t, false)).transpose()?,
        to: q.to.as_deref().map(|t| instant_param("to", t, true)).transpose()?,
        before_seq,
        limit,
    })
}

/// The audit trail, newest first (coordinators of the national focal point).
#[utoipa::path(
    tag = "oversight",
    params(AuditQuery),
    responses(
        (status = 200, body = AuditPage),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/audit")]
pub async fn audit_list(actor: Actor, ctx: Context, query: web::Query<AuditQuery>) -> Result<HttpResponse, ApiError> {
    access::oversee(actor.principal())?;
    let filter = parse_audit_query(query.into_inner(), ctx.settings())?;
    let page = ctx.read(actor, move |c| app::oversight::audit_trail(c, filter)).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Seals pending entries, then verifies the whole audit chain: any edited, deleted or
/// reordered entry is pinpointed.
#[utoipa::path(
    tag = "oversight",
    responses(
        (status = 200, body = Verification),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/audit/verify")]
pub async fn audit_verify(actor: Actor, ctx: Context) -> Result<HttpResponse, ApiError> {
    let verdict = ctx.read(actor, app::oversight::verify_audit).await?;
    Ok(HttpResponse::Ok().json(verdict))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// First day (YYYY-MM-DD), inclusive.
    pub from: Option<String>,
    /// Last day (YYYY-MM-DD), inclusive.
    pub to: Option<String>,
    /// `json` (default) or `csv` (statistics report only).
    pub format: Option<String>,
}

/// Case-flow monitoring: who hands over to whom, how fast receivers answer, what is open
/// and what is stuck (coordinators of the national focal point).
#[utoipa::path(
    tag = "oversight",
    params(PeriodQuery),
    responses(
        (status = 200, body = Flows),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/oversight/flows")]
pub async fn flows(actor: Actor, ctx: Context, query: web::Query<PeriodQuery>) -> Result<HttpResponse, ApiError> {
    access::oversee(actor.principal())?;
    let (from, to) = period(query.from.as_deref(), query.to.as_deref())?;
    let flows = ctx.report(actor, move |c| app::oversight::flows(c, from, to)).await?;
    Ok(HttpResponse::Ok().json(flows))
}

/// The statistics report for cases whose first contact falls in the period (inclusive), as
/// JSON or, with `format=csv`, as the published CSV. Definitions: docs/statistics.md.
#[utoipa::path(
    tag = "statistics",
    params(PeriodQuery),
    responses(
        (status = 200, body = Report, description = "JSON, or text/csv with format=csv"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/stats/report")]
pub async fn report(actor: Actor, ctx: Context, query: web::Query<PeriodQuery>) -> Result<HttpResponse, ApiError> {
    access::oversee(actor.principal())?;
    let (from, to) = period(query.from.as_deref(), query.to.as_deref())?;
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::field("format", "must be json or csv")),
    };
    let report = ctx.report(actor, move |c| app::oversight::report(c, from, to)).await?;
    if csv {
        Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "Content-Disposition",
                format!("attachment; filename=\"nrm-report-{from}-{to}.csv\""),
            ))
            .body(to_csv(&report)))
    } else {
        Ok(HttpResponse::Ok().json(report))
    }
}

/// The period's cases and referrals in IOM's Human Trafficking Case Data Standard (v2 field
/// names), as CSV with pseudonymised ids only: a row per referral submitted in the period
/// (days inclusive), a row per case opened in it and never handed over. Mapping and what
/// nrm does not hold: docs/integration.md §4. Audited.
#[utoipa::path(
    tag = "statistics",
    params(PeriodQuery),
    responses(
        (status = 200, body = String, content_type = "text/csv"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/exports/htcds")]
pub async fn htcds_export(
    actor: Actor,
    ctx: Context,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    access::oversee(actor.principal())?;
    let (from, to) = period(query.from.as_deref(), query.to.as_deref())?;
    if query.format.as_deref().is_some_and(|f| f != "csv") {
        return Err(ApiError::field("format", "must be csv"));
    }
    let csv = ctx.write(actor, move |c| app::htcds::export(c, from, to)).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"nrm-htcds-{from}-{to}.csv\""),
        ))
        .body(csv))
}

/// The three-way conversations offered in each calendar quarter of the period and how they
/// went (the CKM's recommendation 2); definitions in docs/statistics.md.
#[utoipa::path(
    tag = "statistics",
    params(PeriodQuery),
    responses(
        (status = 200, body = ThreeWayCourse),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/stats/three-way-conversations")]
pub async fn three_way_course(
    actor: Actor,
    ctx: Context,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    access::oversee(actor.principal())?;
    let (from, to) = period(query.from.as_deref(), query.to.as_deref())?;
    if query.format.as_deref().is_some_and(|f| f != "json") {
        return Err(ApiError::field("format", "must be json"));
    }
    let course = ctx
        .report(actor, move |c| app::oversight::three_way_course(c, from, to))
        .await?;
    Ok(HttpResponse::Ok().json(course))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct YearQuery {
    /// The calendar year, e.g. 2024.
    pub year: Option<String>,
}

/// The breakdowns the amended directive's data-collection article asks for (Art. 19a of
/// Directive 2011/36/EU as amended by Directive (EU) 2024/1712); see docs/statistics.md.
#[utoipa::path(
    tag = "statistics",
    params(YearQuery),
    responses(
        (status = 200, body = EuExport),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/stats/eu")]
pub async fn eu_export(actor: Actor, ctx: Context, query: web::Query<YearQuery>) -> Result<HttpResponse, ApiError> {
    access::oversee(actor.principal())?;
    let year: i32 = query
        .year
        .as_deref()
        .ok_or_else(|| ApiError::field("year", "is required"))?
        .parse()
        .ok()
        .filter(|y| (1990..=2200).contains(y))
        .ok_or_else(|| ApiError::field("year", "must be a year such as 2024"))?;
    let export = ctx.report(actor, move |c| app::oversight::eu_export(c, year)).await?;
    Ok(HttpResponse::Ok().json(export))
}

//! Coordinator oversight at the national focal point: the audit trail and its verification,
//! case-flow monitoring and published statistics. Case ids and pseudonymised facts only:
//! no pseudonym, identifying detail or free text leaves these routes.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, web};
use chrono::{Duration, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::cases::Context;
use super::common::parse_id;
use crate::auth::Actor;
use crate::db::audit::{self, AuditFilter, AuditRow};
use crate::db::{Instant, stats as queries};
use crate::domain::audit::Verification;
use crate::domain::deadline::{Step, StepClock, overdue_steps};
use crate::domain::referral::ReferralState;
use crate::domain::stats::{Report, build_report, round1, to_csv};
use crate::error::ApiError;

fn require_focal_point(actor: &Actor, _ctx: &Context) -> Result<(), ApiError> {
    Ok(crate::domain::access::oversee(actor.principal())?)
}

fn date_param(name: &str, value: Option<&str>) -> Result<NaiveDate, ApiError> {
    let text = value.ok_or_else(|| ApiError::field(name, "is required (YYYY-MM-DD)"))?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| ApiError::field(name, "must be a date as YYYY-MM-DD"))
}

fn period(from: Option<&str>, to: Option<&str>) -> Result<(NaiveDate, NaiveDate), ApiError> {
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

/// The instants bounding whole days `from` to `to`, inclusive.
fn day_bounds(from: NaiveDate, to: NaiveDate) -> (Instant, Instant) {
    let start = from.and_time(NaiveTime::MIN).and_utc();
    let end = (to + Duration::days(1)).and_time(NaiveTime::MIN).and_utc();
    (Instant::from_utc(start), Instant::from_utc(end))
}

// ---------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    pub seq: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor_sub: String,
    pub actor_org: String,
    pub actor_roles: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub case_id: Option<uuid::Uuid>,
    pub outcome: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntryView>,
    pub next_cursor: Option<String>,
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

fn entry_view(row: AuditRow) -> AuditEntryView {
    AuditEntryView {
        seq: row.seq,
        at: row.at.0,
        actor_sub: row.actor_sub,
        actor_org: row.actor_org,
        actor_roles: row.actor_roles,
        action: row.action,
        resource_type: row.resource_type,
        resource_id: row.resource_id,
        case_id: row.case_id.map(|c| c.0),
        outcome: row.outcome,
        prev_hash: row.prev_hash,
        hash: row.hash,
    }
}

/// The audit trail, newest first (coordinators of the national focal point).
#[utoipa::path(
    tag = "oversight",
    params(AuditQuery),
    responses(
        (status = 200, body = AuditPage),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/audit")]
pub async fn audit_list(actor: Actor, ctx: Context, query: web::Query<AuditQuery>) -> Result<HttpResponse, ApiError> {
    require_focal_point(&actor, &ctx)?;
    let q = query.into_inner();
    let max = ctx.settings.cases.page_size_max;
    let limit = q.limit.unwrap_or(ctx.settings.cases.page_size_default);
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
        Some(text) => Some(parse_id(text).map_err(|_| ApiError::field("case_id", "must be a UUID"))?),
    };
    let filter = AuditFilter {
        case_id,
        organisation: q.organisation,
        actor: q.actor,
        action: q.action,
        from: q.from.as_deref().map(|t| instant_param("from", t, false)).transpose()?,
        to: q.to.as_deref().map(|t| instant_param("to", t, true)).transpose()?,
        before_seq,
        limit: limit + 1,
    };
    let mut rows = ctx
        .db
        .run(move |conn| -> Result<_, ApiError> {
            // Seal first, so the page includes every entry committed before this request.
            audit::seal(conn)?;
            Ok(audit::list(conn, &filter)?)
        })
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| r.seq.to_string())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(AuditPage {
        items: rows.into_iter().map(entry_view).collect(),
        next_cursor,
    }))
}

/// Seals pending entries, then verifies the whole audit chain: any edited, deleted or
/// reordered entry is pinpointed.
#[utoipa::path(
    tag = "oversight",
    responses(
        (status = 200, body = Verification),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/audit/verify")]
pub async fn audit_verify(actor: Actor, ctx: Context) -> Result<HttpResponse, ApiError> {
    require_focal_point(&actor, &ctx)?;
    let verdict = ctx.db.run(|conn| audit::verify(conn).map_err(ApiError::from)).await?;
    Ok(HttpResponse::Ok().json(verdict))
}

// ---------------------------------------------------------------------------
// Case-flow monitoring
// ---------------------------------------------------------------------------

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

#[derive(Debug, Serialize, ToSchema)]
pub struct FlowCount {
    pub from_organisation: String,
    pub to_organisation: String,
    pub state: ReferralState,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Durations {
    /// Referrals measured.
    pub count: i64,
    pub median_hours: Option<f64>,
    pub p90_hours: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResponseTimes {
    pub organisation: String,
    pub submit_to_acknowledge: Option<Durations>,
    pub submit_to_decision: Option<Durations>,
    pub accept_to_start_care: Option<Durations>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenCount {
    pub organisation: String,
    pub state: ReferralState,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverrideCount {
    pub to_organisation: String,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverdueReferral {
    pub referral_id: uuid::Uuid,
    pub case_id: uuid::Uuid,
    pub from_organisation: String,
    pub to_organisation: String,
    pub urgency: String,
    pub state: ReferralState,
    /// The step the receiver owes.
    pub step: Step,
    pub due_at: chrono::DateTime<chrono::Utc>,
    pub overdue_hours: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Flows {
    pub period: crate::domain::stats::Period,
    /// Referrals created in the period, by sender, receiver and current state.
    pub flows: Vec<FlowCount>,
    /// Per receiving organisation, for referrals created in the period.
    pub response_times: Vec<ResponseTimes>,
    /// Open referrals now, by receiver and state.
    pub open: Vec<OpenCount>,
    /// Referrals created in the period that were submitted against the service directory's
    /// eligibility with a caseworker's reason, by receiver.
    pub eligibility_overrides: Vec<OverrideCount>,
    /// Steps past their deadline now, longest overdue first.
    pub overdue: Vec<OverdueReferral>,
    /// The overdue list was cut at 1000 entries.
    pub overdue_truncated: bool,
}

const OVERDUE_LIMIT: i64 = 1000;

/// Case-flow monitoring: who hands over to whom, how fast receivers answer, what is open
/// and what is stuck (coordinators of the national focal point).
#[utoipa::path(
    tag = "oversight",
    params(PeriodQuery),
    responses(
        (status = 200, body = Flows),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/oversight/flows")]
pub async fn flows(actor: Actor, ctx: Context, query: web::Query<PeriodQuery>) -> Result<HttpResponse, ApiError> {
    require_focal_point(&actor, &ctx)?;
    let (from, to) = period(query.from.as_deref(), query.to.as_deref())?;
    let (start, end) = day_bounds(from, to);
    let limits = ctx.settings.deadline_limits().map_err(ApiError::internal)?;
    let now = ctx.now();
    let result = ctx
        .db
        .report(move |conn| {
            let flows = queries::flow_counts(conn, start, end)?
                .into_iter()
                .map(|(from_organisation, to_organisation, state, count)| {
                    Ok(FlowCount {
                        from_organisation,
                        to_organisation,
                        state: state.parse().map_err(ApiError::internal)?,
                        count,
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            let mut times: BTreeMap<String, ResponseTimes> = BTreeMap::new();
            for (which, row) in queries::step_durations(conn, start, end)? {
                let entry = times.entry(row.organisation.clone()).or_insert_with(|| ResponseTimes {
                    organisation: row.organisation.clone(),
                    submit_to_acknowledge: None,
                    submit_to_decision: None,
                    accept_to_start_care: None,
                });
                let durations = Some(Durations {
                    count: row.n,
                    median_hours: row.p50.map(round1),
                    p90_hours: row.p90.map(round1),
                });
                match which {
                    0 => entry.submit_to_acknowledge = durations,
                    1 => entry.submit_to_decision = durations,
                    _ => entry.accept_to_start_care = durations,
                }
            }
            let open = queries::open_counts(conn)?
                .into_iter()
                .map(|(organisation, state, count)| {
                    Ok(OpenCount {
                        organisation,
                        state: state.parse().map_err(ApiError::internal)?,
                        count,
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            let eligibility_overrides = queries::eligibility_overrides(conn, start, end)?
                .into_iter()
                .map(|(to_organisation, count)| OverrideCount { to_organisation, count })
                .collect();
            let ack_cutoff =
                Instant::from_utc(now.0 - limits.shortest(Step::Acknowledge).min(limits.shortest(Step::Decide)));
            let care_cutoff = Instant::from_utc(now.0 - limits.shortest(Step::StartCare));
            let candidates = queries::overdue_candidates(conn, ack_cutoff, care_cutoff, OVERDUE_LIMIT + 1)?;
            let overdue_truncated = candidates.len() as i64 > OVERDUE_LIMIT;
            let mut overdue = Vec::new();
            for row in candidates.iter().take(OVERDUE_LIMIT as usize) {
                let clock = StepClock {
                    state: row.state.parse().map_err(ApiError::internal)?,
                    urgency: row.urgency.parse().map_err(ApiError::internal)?,
                    submitted_at: row.submitted_at.map(|t| t.0),
                    decided_at: row.decided_at.map(|t| t.0),
                };
                for step in overdue_steps(&clock, &limits, now.0) {
                    overdue.push(OverdueReferral {
                        referral_id: row.id.0,
                        case_id: row.case_id.0,
                        from_organisation: row.from_organisation.clone(),
                        to_organisation: row.to_organisation.clone(),
                        urgency: row.urgency.clone(),
                        state: clock.state,
                        step: step.step,
                        due_at: step.due_at,
                        overdue_hours: round1((now.0 - step.due_at).num_seconds() as f64 / 3600.0),
                    });
                }
            }
            overdue.sort_by_key(|o| o.due_at);
            Ok::<_, ApiError>(Flows {
                period: crate::domain::stats::Period { from, to },
                flows,
                response_times: times.into_values().collect(),
                open,
                eligibility_overrides,
                overdue,
                overdue_truncated,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(result))
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/// The statistics report for cases whose first contact falls in the period (inclusive), as
/// JSON or, with `format=csv`, as the published CSV. Definitions: docs/statistics.md.
#[utoipa::path(
    tag = "statistics",
    params(PeriodQuery),
    responses(
        (status = 200, body = Report, description = "JSON, or text/csv with format=csv"),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/stats/report")]
pub async fn report(actor: Actor, ctx: Context, query: web::Query<PeriodQuery>) -> Result<HttpResponse, ApiError> {
    require_focal_point(&actor, &ctx)?;
    let (from, to) = period(query.from.as_deref(), query.to.as_deref())?;
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::field("format", "must be json or csv")),
    };
    let min_cell = ctx.settings.stats.min_cell;
    let report = ctx
        .db
        .report(move |conn| {
            let (cases, by_org) = queries::case_counts(conn, from, to)?;
            let referrals = queries::referral_counts(conn, from, to)?;
            let three_way = queries::three_way_counts(conn, from, to)?;
            Ok::<_, ApiError>(build_report(
                from, to, &cases, &by_org, &referrals, &three_way, min_cell,
            ))
        })
        .await?;
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct YearQuery {
    /// The calendar year, e.g. 2024.
    pub year: Option<String>,
}

/// Counts per identification status (`presumed_victim`, `identified`) and key.
pub type Breakdown = BTreeMap<String, BTreeMap<String, Option<i64>>>;

#[derive(Debug, Serialize, ToSchema)]
pub struct EuExport {
    pub year: i32,
    /// Registered victims: cases whose reasonable-grounds indication was recorded in the
    /// year and that are presumed or identified victims now, counted apart.
    pub registered_victims: BTreeMap<String, Option<i64>>,
    #[schema(value_type = Object)]
    pub by_registering_organisation: Breakdown,
    #[schema(value_type = Object)]
    pub by_sex: Breakdown,
    #[schema(value_type = Object)]
    pub by_age_group: Breakdown,
    #[schema(value_type = Object)]
    pub by_citizenship: Breakdown,
    #[schema(value_type = Object)]
    pub by_form_of_exploitation: Breakdown,
    /// Anonymous notifications filed in the year (adults who did not consent to a referral).
    pub anonymous_notifications: BTreeMap<String, Option<i64>>,
    pub suppressed: Vec<String>,
}

/// The breakdowns the amended directive's data-collection article asks for (Art. 19a of
/// Directive 2011/36/EU as amended by Directive (EU) 2024/1712); see docs/statistics.md.
#[utoipa::path(
    tag = "statistics",
    params(YearQuery),
    responses(
        (status = 200, body = EuExport),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/stats/eu")]
pub async fn eu_export(actor: Actor, ctx: Context, query: web::Query<YearQuery>) -> Result<HttpResponse, ApiError> {
    require_focal_point(&actor, &ctx)?;
    let year: i32 = query
        .year
        .as_deref()
        .ok_or_else(|| ApiError::field("year", "is required"))?
        .parse()
        .ok()
        .filter(|y| (1990..=2200).contains(y))
        .ok_or_else(|| ApiError::field("year", "must be a year such as 2024"))?;
    let (Some(from), Some(to)) = (
        NaiveDate::from_ymd_opt(year, 1, 1),
        NaiveDate::from_ymd_opt(year, 12, 31),
    ) else {
        return Err(ApiError::field("year", "must be a year such as 2024"));
    };
    let min_cell = i64::from(ctx.settings.stats.min_cell);
    let export = ctx
        .db
        .report(move |conn| {
            let mut suppressed = Vec::new();
            let mut cell = |path: String, n: i64| {
                if n > 0 && n < min_cell {
                    suppressed.push(path);
                    None
                } else {
                    Some(n)
                }
            };
            let mut breakdowns: BTreeMap<&str, Breakdown> = BTreeMap::new();
            let mut totals: BTreeMap<String, i64> =
                BTreeMap::from([("presumed_victim".to_string(), 0), ("identified".to_string(), 0)]);
            for (name, expression) in queries::eu_dimensions() {
                let mut breakdown = Breakdown::new();
                for (status, key, n) in queries::registered_by(conn, &expression, from, to)? {
                    if name == "registering_organisation" {
                        *totals.entry(status.clone()).or_default() += n;
                    }
                    let value = cell(format!("by_{name}.{status}.{key}"), n);
                    breakdown.entry(status).or_default().insert(key, value);
                }
                breakdowns.insert(name, breakdown);
            }
            let (start, end) = day_bounds(from, to);
            let mut anonymous: BTreeMap<String, i64> = BTreeMap::new();
            for (minor, gender, nationality_group, n) in queries::anonymous_by(conn, start, end)? {
                *anonymous.entry("total".into()).or_default() += n;
                *anonymous
                    .entry(format!("age_group.{}", if minor { "child" } else { "adult" }))
                    .or_default() += n;
                *anonymous
                    .entry(format!("sex.{}", gender.unwrap_or_else(|| "unknown".into())))
                    .or_default() += n;
                *anonymous.entry(format!("citizenship.{nationality_group}")).or_default() += n;
            }
            let registered_victims = totals
                .into_iter()
                .map(|(k, n)| (k.clone(), cell(format!("registered_victims.{k}"), n)))
                .collect();
            let anonymous_notifications = anonymous
                .into_iter()
                .map(|(k, n)| (k.clone(), cell(format!("anonymous_notifications.{k}"), n)))
                .collect();
            let mut take = |name: &str| breakdowns.remove(name).unwrap_or_default();
            Ok::<_, ApiError>(EuExport {
                year,
                registered_victims,
                by_registering_organisation: take("registering_organisation"),
                by_sex: take("sex"),
                by_age_group: take("age_group"),
                by_citizenship: take("citizenship"),
                by_form_of_exploitation: take("form_of_exploitation"),
                anonymous_notifications,
                suppressed,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(export))
}

//! Oversight for the national focal point: the audit trail and its verification, case-flow
//! monitoring, the statistics report and the EU data-collection export. Figures only: no
//! pseudonym, name or free text ever appears here.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use super::{AppError, AppResult, Ctx};
use crate::db::Instant;
use crate::db::audit::{self, AuditFilter, AuditRow};
use crate::db::stats::{self as queries, Counted};
use crate::domain::access;
use crate::domain::audit::Verification;
use crate::domain::deadline::{Step, StepClock, overdue_steps};
use crate::domain::referral::ReferralState;
use crate::domain::stats::{self, Period, Report, ThreeWayCourse, build_report, quarters_of, round1};

pub use crate::db::stats::day_bounds;

// ---------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    pub seq: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    /// `person` or `machine` (a system of the organisation, with a client-credentials
    /// token: then `actor_sub` is its client id and `actor_roles` its scopes).
    pub actor_kind: String,
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

fn entry_view(row: AuditRow) -> AuditEntryView {
    AuditEntryView {
        seq: row.seq,
        at: row.at.0,
        actor_kind: row.actor_kind,
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

/// The audit trail, newest first, after sealing what is pending, so the page includes every
/// entry committed before the request (coordinators of the national focal point).
#[tracing::instrument(skip_all)]
pub fn audit_trail(ctx: &mut Ctx, filter: AuditFilter) -> AppResult<AuditPage> {
    access::oversee(ctx.actor.principal())?;
    let limit = filter.limit;
    let filter = AuditFilter {
        limit: limit + 1,
        ..filter
    };
    audit::seal(ctx.conn)?;
    let mut rows = audit::list(ctx.conn, &filter)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| r.seq.to_string())
    } else {
        None
    };
    Ok(AuditPage {
        items: rows.into_iter().map(entry_view).collect(),
        next_cursor,
    })
}

/// Seals pending entries, then verifies the whole chain: any edited, deleted or reordered
/// entry is pinpointed, and entries that waited too long for their seal are reported.
#[tracing::instrument(skip_all)]
pub fn verify_audit(ctx: &mut Ctx) -> AppResult<Verification> {
    access::oversee(ctx.actor.principal())?;
    Ok(audit::verify(ctx.conn, ctx.now)?)
}

// ---------------------------------------------------------------------------
// Case-flow monitoring
// ---------------------------------------------------------------------------

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
    /// When the national focal point was alerted, once the deadline watcher has run.
    pub escalated_at: Option<chrono::DateTime<chrono::Utc>>,
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
/// and what is stuck. Run in a report transaction.
#[tracing::instrument(skip_all)]
pub fn flows(ctx: &mut Ctx, from: NaiveDate, to: NaiveDate) -> AppResult<Flows> {
    access::oversee(ctx.actor.principal())?;
    let (start, end) = day_bounds(from, to);
    let limits = &ctx.services.limits;
    let now = ctx.now;
    let flows = queries::flow_counts(ctx.conn, from, to, Counted::RollUps)?
        .into_iter()
        .map(|(from_organisation, to_organisation, state, count)| {
            Ok(FlowCount {
                from_organisation,
                to_organisation,
                state: state.parse().map_err(AppError::internal)?,
                count,
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    let mut times: BTreeMap<String, ResponseTimes> = BTreeMap::new();
    for (which, row) in queries::step_durations(ctx.conn, start, end)? {
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
    let open = queries::open_counts(ctx.conn)?
        .into_iter()
        .map(|(organisation, state, count)| {
            Ok(OpenCount {
                organisation,
                state: state.parse().map_err(AppError::internal)?,
                count,
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    let eligibility_overrides = queries::eligibility_overrides(ctx.conn, from, to, Counted::RollUps)?
        .into_iter()
        .map(|(to_organisation, count)| OverrideCount { to_organisation, count })
        .collect();
    let ack_cutoff = Instant::from_utc(now.0 - limits.shortest(Step::Acknowledge).min(limits.shortest(Step::Decide)));
    let care_cutoff = Instant::from_utc(now.0 - limits.shortest(Step::StartCare));
    let candidates = queries::overdue_candidates(ctx.conn, ack_cutoff, care_cutoff, OVERDUE_LIMIT + 1)?;
    let overdue_truncated = candidates.len() as i64 > OVERDUE_LIMIT;
    let mut overdue = Vec::new();
    for row in candidates.iter().take(OVERDUE_LIMIT as usize) {
        let clock = StepClock {
            state: row.state.parse().map_err(AppError::internal)?,
            urgency: row.urgency.parse().map_err(AppError::internal)?,
            submitted_at: row.submitted_at.map(|t| t.0),
            decided_at: row.decided_at.map(|t| t.0),
        };
        for step in overdue_steps(&clock, limits, now.0) {
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
                escalated_at: None,
            });
        }
    }
    let ids: Vec<crate::db::Id> = candidates.iter().map(|r| r.id).collect();
    for escalation in crate::db::outbox::escalations_of(ctx.conn, &ids)? {
        for o in overdue
            .iter_mut()
            .filter(|o| o.referral_id == escalation.referral_id.0 && o.step.as_str() == escalation.step)
        {
            o.escalated_at = Some(escalation.escalated_at.0);
        }
    }
    overdue.sort_by_key(|o| o.due_at);
    Ok(Flows {
        period: Period { from, to },
        flows,
        response_times: times.into_values().collect(),
        open,
        eligibility_overrides,
        overdue,
        overdue_truncated,
    })
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/// The statistics report for cases whose first contact falls in the period (inclusive),
/// with small cells suppressed (`stats.min_cell`). Definitions: docs/statistics.md.
#[tracing::instrument(skip_all)]
pub fn report(ctx: &mut Ctx, from: NaiveDate, to: NaiveDate) -> AppResult<Report> {
    access::oversee(ctx.actor.principal())?;
    let min_cell = ctx.services.settings.stats.min_cell;
    let (cases, by_org) = queries::case_counts(ctx.conn, from, to, Counted::RollUps)?;
    let referrals = queries::referral_counts(ctx.conn, from, to, Counted::RollUps)?;
    let three_way = queries::three_way_counts(ctx.conn, from, to, Counted::RollUps)?;
    Ok(build_report(
        from, to, &cases, &by_org, &referrals, &three_way, min_cell,
    ))
}

/// The three-way conversations offered in each calendar quarter of the period, and how they
/// went: declined, awaiting, held, and what followed the evaluation. Small cells withheld.
#[tracing::instrument(skip_all)]
pub fn three_way_course(ctx: &mut Ctx, from: NaiveDate, to: NaiveDate) -> AppResult<ThreeWayCourse> {
    access::oversee(ctx.actor.principal())?;
    let mut quarters = Vec::new();
    for (quarter, first, last) in quarters_of(from, to) {
        let (start, end) = day_bounds(first, last);
        quarters.push((
            quarter,
            first,
            last,
            queries::three_way_offered_in(ctx.conn, start, end)?,
        ));
    }
    Ok(stats::three_way_course(
        from,
        to,
        &quarters,
        ctx.services.settings.stats.min_cell,
    ))
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
#[tracing::instrument(skip_all)]
pub fn eu_export(ctx: &mut Ctx, year: i32) -> AppResult<EuExport> {
    access::oversee(ctx.actor.principal())?;
    let (Some(from), Some(to)) = (
        NaiveDate::from_ymd_opt(year, 1, 1),
        NaiveDate::from_ymd_opt(year, 12, 31),
    ) else {
        return Err(AppError::field("year", "must be a year such as 2024"));
    };
    let min_cell = i64::from(ctx.services.settings.stats.min_cell);
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
        for (status, key, n) in queries::registered_by(ctx.conn, &expression, from, to)? {
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
    for (minor, gender, nationality_group, n) in queries::anonymous_by(ctx.conn, start, end)? {
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
    Ok(EuExport {
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
}

//! The deadline watcher: finds handover steps past their deadline and escalates each one
//! exactly once to the national focal point (an audit entry and notifications). One instance
//! per database leads it (`db::leader`); the escalation record's primary key keeps a
//! hand-over between leaders from escalating a step twice.

use std::collections::HashSet;
use std::time::Duration as StdDuration;

use crate::clock::SharedClock;
use crate::db::audit::{NewAuditEntry, append_all};
use crate::db::leader::{Leadership, SingletonTask};
use crate::db::outbox::{EscalationRow, record_escalations};
use crate::db::referrals::ReferralRow;
use crate::db::{AnyConnection, Db, DbError, Id, Instant, stats};
use crate::domain::deadline::{DeadlineLimits, Overdue, Step, StepClock, overdue_steps};
use crate::notify::Notifier;

/// Candidates read, and due steps escalated in one transaction, at a time.
const PAGE: i64 = 500;

/// One pass at `now`: every step due and not yet escalated, however many, in pages. Returns
/// the number of steps escalated by this call.
pub async fn check_once(db: &Db, notifier: &Notifier, limits: &DeadlineLimits, now: Instant) -> Result<usize, DbError> {
    let mut escalated = 0;
    for step in [Step::Acknowledge, Step::Decide, Step::StartCare] {
        let cutoffs = limits.cutoffs(step, now.0).map(|(u, at)| (u, Instant::from_utc(at)));
        let mut after: Option<Id> = None;
        loop {
            let page = db
                .run(move |conn| stats::unescalated_candidates(conn, step, cutoffs, after, PAGE).map_err(DbError::from))
                .await?;
            let full = page.len() as i64 == PAGE;
            after = page.last().map(|r| r.id);
            let due: Vec<(ReferralRow, Overdue)> = page
                .into_iter()
                .filter_map(|referral| due_step(referral, step, limits, now))
                .collect();
            if !due.is_empty() {
                let notifier = notifier.clone();
                escalated += db
                    .write(move |conn| escalate(conn, &notifier, &due, now).map_err(DbError::from))
                    .await?;
            }
            if !full {
                break;
            }
        }
    }
    Ok(escalated)
}

/// The referral with `step` if the domain finds that step overdue at `now`.
fn due_step(
    referral: ReferralRow,
    step: Step,
    limits: &DeadlineLimits,
    now: Instant,
) -> Option<(ReferralRow, Overdue)> {
    // A row this version cannot read is reported, not silently skipped; the others go on.
    let typed = match crate::domain::referral::Referral::try_from(referral.clone()) {
        Ok(typed) => typed,
        Err(error) => {
            tracing::error!(referral = %referral.id.0, error = %error, "a stored referral cannot be read; its deadlines are not watched");
            return None;
        }
    };
    let clock = StepClock {
        state: typed.state,
        urgency: typed.urgency,
        submitted_at: referral.submitted_at.map(|t| t.0),
        decided_at: referral.decided_at.map(|t| t.0),
    };
    let overdue = overdue_steps(&clock, limits, now.0)
        .into_iter()
        .find(|o| o.step == step)?;
    Some((referral, overdue))
}

/// Escalates the due steps not escalated meanwhile, all in the caller's transaction: the
/// records, the notices and the audit entries, each in multi-row inserts.
fn escalate(
    conn: &mut AnyConnection,
    notifier: &Notifier,
    due: &[(ReferralRow, Overdue)],
    now: Instant,
) -> diesel::QueryResult<usize> {
    let records = due
        .iter()
        .map(|(referral, overdue)| EscalationRow {
            referral_id: referral.id,
            step: overdue.step.as_str().into(),
            due_at: Instant::from_utc(overdue.due_at),
            escalated_at: now,
        })
        .collect();
    let recorded: HashSet<Id> = record_escalations(conn, records)?
        .into_iter()
        .map(|r| r.referral_id)
        .collect();
    // One step per referral in a batch: the referral id names the record.
    let new: Vec<(&ReferralRow, &str)> = due
        .iter()
        .filter(|(referral, _)| recorded.contains(&referral.id))
        .map(|(referral, overdue)| (referral, overdue.step.as_str()))
        .collect();
    notifier.steps_overdue(conn, &new, now)?;
    let entries: Vec<NewAuditEntry> = new
        .iter()
        .map(|(referral, step)| {
            NewAuditEntry::new(
                "referral.escalate",
                "referral",
                referral.id.0.to_string(),
                Some(referral.case_id),
                step,
            )
        })
        .collect();
    append_all(conn, &entries, now)?;
    Ok(new.len())
}

/// Runs until the process ends, checking while this instance leads the watching.
pub async fn run(db: Db, clock: SharedClock, notifier: Notifier, limits: DeadlineLimits, interval: StdDuration) {
    let mut leadership = Leadership::new(&db, SingletonTask::DeadlineWatcher);
    loop {
        leadership.next_pass(interval).await;
        let now = Instant::from_utc(clock.now());
        match check_once(&db, &notifier, &limits, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(escalated = n, "overdue handover steps escalated to the focal point"),
            Err(error) => tracing::error!(error = %error, "deadline check failed"),
        }
    }
}

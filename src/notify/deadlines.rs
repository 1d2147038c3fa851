//! The deadline watcher: finds handover steps past their deadline and escalates each one
//! exactly once to the national focal point (an audit entry and notifications). Instances
//! may race; the escalation record's primary key lets only one of them escalate.

use std::time::Duration as StdDuration;

use crate::clock::SharedClock;
use crate::db::audit::{NewAuditEntry, append};
use crate::db::outbox::{EscalationRow, record_escalation};
use crate::db::{Db, DbError, Instant, stats, write_transaction};
use crate::domain::deadline::{DeadlineLimits, Step, StepClock, overdue_steps};
use crate::notify::Notifier;

/// One pass at `now`. Returns the number of steps escalated by this call.
pub async fn check_once(db: &Db, notifier: &Notifier, limits: &DeadlineLimits, now: Instant) -> Result<usize, DbError> {
    let ack_cutoff = Instant::from_utc(now.0 - limits.shortest(Step::Acknowledge).min(limits.shortest(Step::Decide)));
    let care_cutoff = Instant::from_utc(now.0 - limits.shortest(Step::StartCare));
    let candidates = db
        .run(move |conn| stats::overdue_candidates(conn, ack_cutoff, care_cutoff, 5_000).map_err(DbError::from))
        .await?;
    let mut escalated = 0;
    for referral in candidates {
        // A row this version cannot read is reported, not silently skipped; the others go on.
        let typed = match crate::domain::referral::Referral::try_from(referral.clone()) {
            Ok(typed) => typed,
            Err(error) => {
                tracing::error!(referral = %referral.id.0, error = %error, "a stored referral cannot be read; its deadlines are not watched");
                continue;
            }
        };
        let clock = StepClock {
            state: typed.state,
            urgency: typed.urgency,
            submitted_at: referral.submitted_at.map(|t| t.0),
            decided_at: referral.decided_at.map(|t| t.0),
        };
        for overdue in overdue_steps(&clock, limits, now.0) {
            let notifier = notifier.clone();
            let referral = referral.clone();
            let new = db
                .run(move |conn| {
                    write_transaction(conn, |conn| {
                        let row = EscalationRow {
                            referral_id: referral.id,
                            step: overdue.step.as_str().into(),
                            due_at: Instant::from_utc(overdue.due_at),
                            escalated_at: now,
                        };
                        if !record_escalation(conn, &row)? {
                            return Ok(false);
                        }
                        notifier.step_overdue(conn, &referral, overdue.step.as_str(), now)?;
                        let entry = NewAuditEntry::new(
                            "referral.escalate",
                            "referral",
                            referral.id.0.to_string(),
                            Some(referral.case_id),
                            overdue.step.as_str(),
                        );
                        append(conn, &entry, now)?;
                        Ok::<_, diesel::result::Error>(true)
                    })
                    .map_err(DbError::from)
                })
                .await?;
            if new {
                escalated += 1;
            }
        }
    }
    Ok(escalated)
}

/// Runs until the process ends.
pub async fn run(db: Db, clock: SharedClock, notifier: Notifier, limits: DeadlineLimits, interval: StdDuration) {
    loop {
        let now = Instant::from_utc(clock.now());
        match check_once(&db, &notifier, &limits, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(escalated = n, "overdue handover steps escalated to the focal point"),
            Err(error) => tracing::error!(error = %error, "deadline check failed"),
        }
        tokio::time::sleep(interval).await;
    }
}

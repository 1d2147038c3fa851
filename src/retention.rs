//! The retention task: erases personal data of closed cases when it is due, by the same
//! rules as `nrm retention run`. One instance per database leads it (`db::leader`), so each
//! erasure is done and audited once; each case is re-read in the transaction that erases it.

use std::time::Duration as StdDuration;

use serde::Serialize;

use crate::clock::SharedClock;
use crate::config::{Settings, parse_duration};
use crate::db::audit::{NewAuditEntry, append};
use crate::db::leader::{Leadership, SingletonTask};
use crate::db::privacy::{erase_free_text, erase_identifying, retention_due};
use crate::db::{AnyConnection, Db, DbError, Id, Instant, write_transaction};
use crate::domain::retention::{RetentionPolicy, due};

pub fn policy(settings: &Settings) -> Result<RetentionPolicy, String> {
    let parse = |setting: &str, text: &str| {
        parse_duration(text)
            .map_err(|e| format!("{setting}: {e}"))
            .and_then(|d| chrono::Duration::from_std(d).map_err(|e| format!("{setting}: {e}")))
    };
    Ok(RetentionPolicy {
        identifying_after: parse(
            "retention.identifying_details_after",
            &settings.retention.identifying_details_after,
        )?,
        free_text_after: parse("retention.free_text_after", &settings.retention.free_text_after)?,
    })
}

/// What one run erased (or, dry, would erase).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub dry_run: bool,
    /// Cases whose identifying details were erased.
    pub identifying_details: usize,
    /// Cases whose pseudonym and free text were erased.
    pub free_text: usize,
}

fn audit(conn: &mut AnyConnection, case_id: Id, action: &str, now: Instant) -> diesel::QueryResult<()> {
    append(
        conn,
        &NewAuditEntry::new(action, "case", case_id.0.to_string(), Some(case_id), "retention"),
        now,
    )
}

/// One pass over the closed cases that are due, each in its own transaction.
pub fn run_once(
    conn: &mut AnyConnection,
    policy: &RetentionPolicy,
    now: Instant,
    dry_run: bool,
) -> Result<RetentionReport, DbError> {
    let mut report = RetentionReport {
        dry_run,
        ..Default::default()
    };
    loop {
        let batch = retention_due(
            conn,
            Instant::from_utc(now.0 - policy.identifying_after),
            Instant::from_utc(now.0 - policy.free_text_after),
            500,
        )?;
        let mut progressed = false;
        for (case_id, closed_at, identifying_erased, free_text_erased) in &batch {
            let due = due(
                policy,
                closed_at.map(|c| c.0),
                identifying_erased.is_some(),
                free_text_erased.is_some(),
                now.0,
            );
            report.identifying_details += usize::from(due.identifying);
            report.free_text += usize::from(due.free_text);
            if dry_run || !(due.identifying || due.free_text) {
                continue;
            }
            progressed = true;
            write_transaction(conn, |conn| {
                // Audited only by the run that erased it: a run racing this one (the CLI
                // beside the service) finds the marker set.
                if due.identifying && erase_identifying(conn, *case_id, now)? {
                    audit(conn, *case_id, "case.retention.identifying_details", now)?;
                }
                if due.free_text && erase_free_text(conn, *case_id, now)? {
                    audit(conn, *case_id, "case.retention.free_text", now)?;
                }
                Ok::<_, diesel::result::Error>(())
            })?;
        }
        if dry_run || !progressed || batch.len() < 500 {
            return Ok(report);
        }
    }
}

/// Runs until the process ends, erasing while this instance leads retention.
pub async fn run(db: Db, clock: SharedClock, policy: RetentionPolicy, interval: StdDuration) {
    let mut leadership = Leadership::new(&db, SingletonTask::Retention);
    let started = tokio::time::Instant::now();
    loop {
        leadership.next_pass(interval).await;
        // No pass in the first interval: nothing closed during start-up is due, and erasing
        // at start would race an operator's `nrm retention run --dry-run`. Leadership is
        // claimed meanwhile, so a survivor takes over from a killed leader within seconds.
        if started.elapsed() < interval {
            continue;
        }
        let now = Instant::from_utc(clock.now());
        match db.run(move |conn| run_once(conn, &policy, now, false)).await {
            Ok(report) if report.identifying_details + report.free_text > 0 => {
                tracing::info!(
                    identifying_details = report.identifying_details,
                    free_text = report.free_text,
                    "retention: personal data of closed cases erased"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::error!(error = %error, "retention run failed"),
        }
    }
}

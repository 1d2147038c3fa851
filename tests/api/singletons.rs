//! Work that runs once per database: the audit sealer, the deadline watcher, retention and
//! the roll-up folder have one leader among the instances on a database, and the watcher reads its whole work
//! list on every pass, however long.

use std::collections::BTreeMap;
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::{Backend, TestApp, adult_case, fresh_database, on, spawn_app_on, test_settings};
use nrm::config::Settings;
use nrm::db::AnyConnection;

fn quick_background(s: &mut Settings) {
    s.notifications.deadline_check_interval = "50ms".into();
    s.retention.check_interval = "50ms".into();
    s.retention.identifying_details_after = "1h".into();
    s.retention.free_text_after = "2h".into();
}

async fn leads(app: &TestApp) -> Vec<String> {
    crate::helpers::leads_at(&app.client, &app.address).await
}

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Runs one counting query (`key`, `n`) on either backend.
fn counts(conn: &mut AnyConnection, sql: &str) -> BTreeMap<String, i64> {
    let rows: Vec<Counted> = match conn {
        AnyConnection::Postgresql(pg) => diesel::sql_query(sql).load(pg).unwrap(),
        AnyConnection::Sqlite(lite) => diesel::sql_query(sql).load(lite).unwrap(),
    };
    rows.into_iter().map(|r| (r.key, r.n)).collect()
}

/// Audit entries of `action`, sealed or waiting, per resource and outcome
/// (`<id>/<outcome>`: an escalation's outcome is its step).
fn audited(conn: &mut AnyConnection, action: &str) -> BTreeMap<String, i64> {
    counts(
        conn,
        &format!(
            "SELECT resource_id || '/' || outcome AS key, CAST(COUNT(*) AS BIGINT) AS n FROM \
             (SELECT resource_id, outcome FROM audit_log WHERE action = '{action}' \
              UNION ALL SELECT resource_id, outcome FROM audit_pending WHERE action = '{action}') AS entries \
             GROUP BY resource_id, outcome"
        ),
    )
}

fn single(conn: &mut AnyConnection, sql: &str) -> i64 {
    counts(
        conn,
        &format!("SELECT 'all' AS key, CAST(COUNT(*) AS BIGINT) AS n FROM {sql}"),
    )["all"]
}

async fn eventually(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not reached within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn two_instances_do_each_background_task_once_per_item(backend: Backend) {
    let Some(first) = on(backend, quick_background).await else {
        return;
    };
    let second = spawn_app_on(&first, quick_background).await;
    let a = first.actors();

    // Each task has exactly one leader of the two.
    let start = std::time::Instant::now();
    loop {
        let (one, two) = (leads(&first).await, leads(&second).await);
        let mut all: Vec<String> = one.iter().chain(two.iter()).cloned().collect();
        all.sort();
        if all == ["deadline-watcher", "retention", "roll-ups", "sealer"] {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "each task led once: first leads {one:?}, second {two:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Five stalled urgent handovers (4 hours to acknowledge, a day to decide), made on both
    // instances, and three closed cases.
    let mut referrals = Vec::new();
    for app in [&first, &second, &first, &second, &first] {
        let (_, submitted) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
        referrals.push(submitted["id"].as_str().unwrap().to_string());
    }
    let mut closed = Vec::new();
    for app in [&first, &second, &second] {
        let case = app.create_case(&a.fier_caseworker, &adult_case()).await;
        let id = case["id"].as_str().unwrap().to_string();
        app.post_ok(
            &format!("/api/v1/cases/{id}/close"),
            &a.fier_caseworker,
            &json!({"reason_code": "support_completed"}),
            200,
        )
        .await;
        closed.push(id);
    }

    // 25 hours later on both instances' clocks: every referral owes its acknowledgement and
    // its decision, every closed case is past both retention periods.
    for app in [&first, &second] {
        app.clock.advance(chrono::Duration::hours(25));
    }
    let db = first.db();
    eventually(
        "every step escalated and every case erased",
        Duration::from_secs(30),
        || {
            let mut conn = db.get().unwrap();
            single(&mut conn, "escalations") == 10
                && audited(&mut conn, "case.retention.free_text").len() == 3
                && audited(&mut conn, "case.retention.identifying_details").len() == 3
        },
    )
    .await;
    // Time for a second pass on each instance to do anything twice.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut conn = db.get().unwrap();
    let escalated = audited(&mut conn, "referral.escalate");
    let expected: BTreeMap<String, i64> = referrals
        .iter()
        .flat_map(|r| [(format!("{r}/acknowledge"), 1), (format!("{r}/decide"), 1)])
        .collect();
    assert_eq!(escalated, expected, "each overdue step escalated once");
    let once_each: BTreeMap<String, i64> = closed.iter().map(|c| (format!("{c}/retention"), 1)).collect();
    assert_eq!(audited(&mut conn, "case.retention.identifying_details"), once_each);
    assert_eq!(audited(&mut conn, "case.retention.free_text"), once_each);
    // Two notices per escalation (the receiver, the focal point), no more.
    assert_eq!(single(&mut conn, "notifications WHERE kind = 'step_overdue'"), 20);

    // The sealer sealed everything without anyone reading the trail, into one chain with
    // every entry once.
    eventually("every entry sealed", Duration::from_secs(10), || {
        nrm::db::audit::unsealed(&mut db.get().unwrap()).unwrap() == 0
    })
    .await;
    let entries = single(&mut conn, "audit_log");
    let distinct = single(&mut conn, "(SELECT DISTINCT seq FROM audit_log) AS s");
    assert_eq!(entries, distinct);
    let verification: Value = second
        .get("/api/v1/audit/verify", &a.comensha_coordinator)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verification["valid"], true, "{verification}");
    assert_eq!(verification["entries"], entries);
    assert_eq!(verification["overdue_unsealed"], 0, "{verification}");
}
backend_test!(two_instances_do_each_background_task_once_per_item);

/// A stopped sealer is an alarm: `nrm audit verify` seals what waited and still fails,
/// naming how many entries had waited too long; the next run, with nothing waiting, passes.
async fn entries_left_unsealed_too_long_are_an_alarm(backend: Backend) {
    if backend == Backend::Postgres && !crate::helpers::postgres_enabled() {
        return;
    }
    // A database no service runs on: nothing seals but the command.
    let (url, _guard) = fresh_database(backend);
    let db = nrm::startup::open_database(&test_settings(&url)).unwrap();
    db.migrate().unwrap();
    let minute_ago = nrm::db::Instant::from_utc(chrono::Utc::now() - chrono::Duration::minutes(1));
    let entry = nrm::db::audit::NewAuditEntry::new("case.create", "case", "x", None, "ok");
    for _ in 0..2 {
        nrm::db::audit::append(&mut db.get().unwrap(), &entry, minute_ago).unwrap();
    }
    nrm::db::audit::append(
        &mut db.get().unwrap(),
        &entry,
        nrm::db::Instant::from_utc(chrono::Utc::now()),
    )
    .unwrap();

    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_nrm"))
            .current_dir(crate::helpers::manifest_dir())
            .env("RUST_LOG", "error")
            .args(["audit", "verify", "--database-url", &url])
            .output()
            .unwrap()
    };
    let alarm = verify();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&alarm.stdout),
        String::from_utf8_lossy(&alarm.stderr),
    );
    assert!(!alarm.status.success(), "a stopped sealer fails the check: {stdout}");
    assert!(
        stderr.contains("2 audit entries had waited longer than 10 s"),
        "{stderr}"
    );
    let verdict: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(verdict["valid"], true, "the chain itself is intact: {verdict}");
    assert_eq!(verdict["entries"], 3, "{verdict}");
    assert_eq!(verdict["overdue_unsealed"], 2, "{verdict}");
    assert!(verdict["oldest_overdue_at"].is_string(), "{verdict}");

    let calm = verify();
    assert!(calm.status.success(), "{}", String::from_utf8_lossy(&calm.stderr));
}
backend_test!(entries_left_unsealed_too_long_are_an_alarm);

const STALLED: usize = 100_000;

/// Copies of one submitted referral, each with a case of its own (one live handover per case
/// and receiver), written straight into the database; all routine.
fn stall_many(conn: &mut AnyConnection, case_id: &str, referral_id: &str) {
    use nrm::db::cases::CaseRow;
    use nrm::db::referrals::ReferralRow;
    use nrm::db::schema::{cases, referrals};
    let case_id = nrm::db::Id(case_id.parse().unwrap());
    let referral_id = nrm::db::Id(referral_id.parse().unwrap());
    let case: CaseRow = cases::table
        .find(case_id)
        .select(CaseRow::as_select())
        .first(conn)
        .unwrap();
    let referral: ReferralRow = referrals::table
        .find(referral_id)
        .select(ReferralRow::as_select())
        .first(conn)
        .unwrap();
    let (mut case_rows, mut referral_rows) = (Vec::with_capacity(STALLED), Vec::with_capacity(STALLED));
    for _ in 1..STALLED {
        let mut c = case.clone();
        c.id = nrm::db::Id(uuid::Uuid::now_v7());
        // Sealed values are bound to their record: the copies carry none.
        c.pseudonym = None;
        let mut r = referral.clone();
        r.id = nrm::db::Id(uuid::Uuid::now_v7());
        r.case_id = c.id;
        r.note = None;
        r.consent_id = None;
        // Routine: a day to acknowledge, five to decide.
        r.urgency = "routine".into();
        case_rows.push(c);
        referral_rows.push(r);
    }
    nrm::db::write_transaction(conn, |conn| {
        for (cs, rs) in case_rows.chunks(500).zip(referral_rows.chunks(500)) {
            match conn {
                AnyConnection::Postgresql(pg) => {
                    diesel::insert_into(cases::table).values(cs).execute(pg)?;
                    diesel::insert_into(referrals::table).values(rs).execute(pg)?;
                }
                AnyConnection::Sqlite(lite) => {
                    diesel::insert_into(cases::table).values(cs).execute(lite)?;
                    diesel::insert_into(referrals::table).values(rs).execute(lite)?;
                }
            }
        }
        diesel::update(referrals::table.find(referral_id))
            .set(referrals::urgency.eq("routine"))
            .execute(conn)?;
        Ok::<_, diesel::result::Error>(())
    })
    .unwrap();
    // What autovacuum would do soon after a bulk load, and `nrm demo seed` does at its end.
    let analyze = "ANALYZE referrals; ANALYZE escalations; ANALYZE cases;";
    match conn {
        AnyConnection::Postgresql(pg) => diesel::connection::SimpleConnection::batch_execute(pg, analyze).unwrap(),
        AnyConnection::Sqlite(lite) => diesel::connection::SimpleConnection::batch_execute(lite, analyze).unwrap(),
    }
}

/// The watcher has no cap: a hundred thousand stalled handovers are all escalated, once each,
/// and the next passes find nothing more to do.
async fn a_hundred_thousand_stalled_referrals_are_each_escalated_once(backend: Backend) {
    let Some(app) = on(backend, |s| s.notifications.deadline_check_interval = "50ms".into()).await else {
        return;
    };
    let (case, submitted) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let db = app.db();
    stall_many(
        &mut db.get().unwrap(),
        case["id"].as_str().unwrap(),
        submitted["id"].as_str().unwrap(),
    );
    assert_eq!(
        single(&mut db.get().unwrap(), "referrals WHERE state = 'submitted'"),
        STALLED as i64
    );

    app.clock.advance(chrono::Duration::hours(25));
    eventually("every stalled referral escalated", Duration::from_secs(600), || {
        single(&mut db.get().unwrap(), "escalations") == STALLED as i64
    })
    .await;
    // Later passes, a further hour on (the decision is due only after five days), escalate
    // nothing again.
    app.clock.advance(chrono::Duration::hours(1));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut conn = db.get().unwrap();
    assert_eq!(
        single(&mut conn, "escalations WHERE step = 'acknowledge'"),
        STALLED as i64
    );
    let escalated = audited(&mut conn, "referral.escalate");
    assert_eq!(escalated.len(), STALLED, "every referral audited as escalated");
    assert!(escalated.keys().all(|k| k.ends_with("/acknowledge")), "the step owed");
    assert!(escalated.values().all(|&n| n == 1), "none escalated twice");
    assert_eq!(
        single(&mut conn, "notifications WHERE kind = 'step_overdue'"),
        2 * STALLED as i64,
        "the receiver and the focal point told once per referral"
    );
}
backend_test!(a_hundred_thousand_stalled_referrals_are_each_escalated_once);

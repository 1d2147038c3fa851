//! `nrm demo seed`: a synthetic data set the service itself reads, counts and verifies.

use std::process::Command;

use serde_json::Value;

use crate::helpers::{Backend, fresh_database, postgres_enabled, test_settings};
use crate::helpers::{TestApp, assert_rollups_match_rows, manifest_dir};
use crate::{api_test, backend_test};

fn seed(app: &TestApp, extra: &[&str]) -> std::process::Output {
    seed_at(&app.database_url, extra)
}

fn seed_at(database_url: &str, extra: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nrm"));
    command.current_dir(manifest_dir());
    for (key, _) in std::env::vars() {
        if key.starts_with("NRM__") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command
        .env("RUST_LOG", "warn")
        .args(["demo", "seed", "--cases", "300", "--days", "200", "--chunk", "70"])
        .args(["--database-url", database_url])
        .args(extra)
        .output()
        .unwrap()
}

/// A fresh database seeded by the command with no service on it: what the seed wrote, and
/// a handle on the database.
fn seeded(backend: Backend) -> (crate::helpers::DatabaseGuard, Value, nrm::db::Db) {
    let (url, guard) = fresh_database(backend);
    let output = seed_at(&url, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let written: Value = serde_json::from_slice(&output.stdout).unwrap();
    let db = nrm::startup::open_database(&test_settings(&url)).unwrap();
    (guard, written, db)
}

async fn get(app: &TestApp, path: &str, token: &str) -> Value {
    let response = app.get(path, token).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

async fn demo_seed_writes_cases_the_service_counts_and_verifies(app: TestApp) {
    let a = app.actors();
    // Start-up wrote its own entries (the registry mirror); the seed appends to them.
    let before = get(&app, "/api/v1/audit/verify", &a.comensha_coordinator).await;
    let output = seed(&app, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let written: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(written["cases"], 300);
    let referrals = written["referrals"].as_i64().unwrap();
    assert!(referrals > 100, "{written}");

    // The audit chain the seed wrote verifies, entry for entry.
    let verdict = get(&app, "/api/v1/audit/verify", &a.comensha_coordinator).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(
        verdict["entries"].as_i64().unwrap(),
        before["entries"].as_i64().unwrap() + written["audit_entries"].as_i64().unwrap()
    );

    // Statistics count every seeded case and referral; the referrals reach every state.
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Duration::days(400);
    let report = get(
        &app,
        &format!("/api/v1/stats/report?from={from}&to={today}"),
        &a.comensha_coordinator,
    )
    .await;
    assert_eq!(report["persons"]["total"], 300, "{report}");
    let flows = get(
        &app,
        &format!("/api/v1/oversight/flows?from={from}&to={today}"),
        &a.comensha_coordinator,
    )
    .await;
    let mut states = std::collections::BTreeMap::new();
    for flow in flows["flows"].as_array().unwrap() {
        *states.entry(flow["state"].as_str().unwrap().to_string()).or_insert(0) += flow["count"].as_i64().unwrap();
    }
    assert_eq!(states.values().sum::<i64>(), referrals, "{states:?}");
    let names: Vec<&str> = states.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "accepted",
            "acknowledged",
            "completed",
            "declined",
            "draft",
            "in_care",
            "submitted",
            "withdrawn"
        ]
    );

    // Seeded cases open with the service's key: the pseudonyms are sealed like real ones.
    let cases = get(&app, "/api/v1/cases?limit=5", &a.fier_caseworker).await;
    let first = &cases["items"][0];
    let case = get(
        &app,
        &format!("/api/v1/cases/{}", first["id"].as_str().unwrap()),
        &a.fier_caseworker,
    )
    .await;
    assert!(case["pseudonym"].as_str().unwrap().starts_with("demo-"), "{case}");

    // A database with cases is refused unless the caller says to add to it.
    let again = seed(&app, &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds 300 cases"));
    let appended = seed(&app, &["--append", "--seed", "2"]);
    assert!(
        appended.status.success(),
        "{}",
        String::from_utf8_lossy(&appended.stderr)
    );
    let verdict = get(&app, "/api/v1/audit/verify", &a.comensha_coordinator).await;
    assert_eq!(verdict["valid"], true, "{verdict}");

    // On the seeded set the roll-ups give the figures the rows give: over all of it, and
    // over a stretch of days in the middle, with the seed's deltas pending and folded.
    let ((cases, _, referrals, _, flows, _), _) = assert_rollups_match_rows(&app.db(), from, today);
    assert_eq!(cases.total, 600);
    assert!(referrals.total > 0 && flows.len() > 10, "{referrals:?} {flows:?}");
    let middle = today - chrono::Duration::days(100);
    let ((some, _, _, _, _, _), _) = assert_rollups_match_rows(&app.db(), middle - chrono::Duration::days(30), middle);
    assert!(some.total > 0 && some.total < 600, "{some:?}");
}
api_test!(demo_seed_writes_cases_the_service_counts_and_verifies);

/// A seeded data set no service has touched: the report counts the seed's deltas before any
/// fold, the fold takes every one of them into the roll-ups, and the figures stay the same.
async fn rollups_match_rows_before_and_after_folding_a_seeded_set(backend: Backend) {
    if backend == Backend::Postgres && !postgres_enabled() {
        return;
    }
    let (_guard, written, db) = seeded(backend);
    {
        // The seed writes each pseudonym's blind index, so the first start has none to make.
        use diesel::prelude::*;
        use nrm::db::schema::cases;
        let unindexed: i64 = cases::table
            .filter(cases::pseudonym_index.is_null())
            .count()
            .get_result(&mut **db.get().unwrap())
            .unwrap();
        assert_eq!(unindexed, 0);
    }
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Duration::days(400);
    let ((cases, _, _, _, flows, _), folded) = assert_rollups_match_rows(&db, from, today);
    let referrals = written["referrals"].as_i64().unwrap();
    assert_eq!(cases.total, 300);
    assert_eq!(flows.iter().map(|f| f.3).sum::<i64>(), referrals);
    // Each case and referral wrote one delta per change of a counted column: at least one.
    assert!(folded as i64 >= 300 + referrals, "folded {folded}");
    let (_, again) = assert_rollups_match_rows(&db, from, today);
    assert_eq!(again, 0, "nothing left to fold");
    for days in [1, 7, 45] {
        let to = today - chrono::Duration::days(60);
        assert_rollups_match_rows(&db, to - chrono::Duration::days(days), to);
    }
    if backend == Backend::Sqlite {
        same_response_times_as_window_functions(&db, from, today);
    }
}

/// On SQLite the response-time percentiles are selected in the service; they are the ones
/// the window-function query (what SQLite ran before) gives, step for step.
fn same_response_times_as_window_functions(db: &nrm::db::Db, from: chrono::NaiveDate, to: chrono::NaiveDate) {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Double, Nullable, Text};
    #[derive(QueryableByName, Debug, PartialEq)]
    struct Row {
        #[diesel(sql_type = Text)]
        organisation: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
        #[diesel(sql_type = Nullable<Double>)]
        p50: Option<f64>,
        #[diesel(sql_type = Nullable<Double>)]
        p90: Option<f64>,
    }
    let (start, end) = nrm::app::oversight::day_bounds(from, to);
    let mut conn = db.get().unwrap();
    let selected = nrm::db::stats::step_durations(&mut conn, start, end).unwrap();
    let nrm::db::AnyConnection::Sqlite(sqlite) = &mut **conn else {
        panic!("a SQLite connection");
    };
    let mut compared = 0;
    for (i, (first, last)) in nrm::db::stats::STEPS.iter().enumerate() {
        let sql = format!(
            "WITH d AS (SELECT to_organisation AS organisation, \
               ((julianday({last}) - julianday({first})) * 24.0) AS hours FROM referrals \
               WHERE created_at >= ? AND created_at < ? AND {first} IS NOT NULL AND {last} IS NOT NULL), \
             r AS (SELECT organisation, hours, ROW_NUMBER() OVER (PARTITION BY organisation ORDER BY hours) AS rn, \
               COUNT(*) OVER (PARTITION BY organisation) AS n FROM d) \
             SELECT organisation, CAST(MAX(n) AS BIGINT) AS n, MAX(CASE WHEN rn = (n + 1) / 2 THEN hours END) AS p50, \
               MAX(CASE WHEN rn = (9 * n + 9) / 10 THEN hours END) AS p90 FROM r GROUP BY organisation ORDER BY organisation"
        );
        let by_window: Vec<Row> = diesel::sql_query(sql)
            .bind::<nrm::db::types::UtcTime, _>(start)
            .bind::<nrm::db::types::UtcTime, _>(end)
            .load(sqlite)
            .unwrap();
        let by_selection: Vec<Row> = selected
            .iter()
            .filter(|(step, _)| *step == i)
            .map(|(_, d)| Row {
                organisation: d.organisation.clone(),
                n: d.n,
                p50: d.p50,
                p90: d.p90,
            })
            .collect();
        assert_eq!(by_selection, by_window, "step {i}");
        compared += by_window.len();
    }
    assert!(compared > 10, "{compared} receivers' steps compared");
}
backend_test!(rollups_match_rows_before_and_after_folding_a_seeded_set);

/// The fold runs beside writers: on PostgreSQL a delta can commit with a smaller id than the
/// last of a batch being folded. Four writers move referrals between states while the fold
/// runs again and again; afterwards the roll-ups still count what the rows hold.
async fn folding_beside_writers_loses_no_change(backend: Backend) {
    use diesel::prelude::*;
    use nrm::db::schema::referrals;
    if backend == Backend::Postgres && !postgres_enabled() {
        return;
    }
    let (_guard, _, db) = seeded(backend);
    let ids: Vec<nrm::db::Id> = referrals::table
        .select(referrals::id)
        .load(&mut **db.get().unwrap())
        .unwrap();
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (db, ids) = (db.clone(), ids.clone());
            std::thread::spawn(move || {
                let mut conn = db.get().unwrap();
                for n in 0..150 {
                    let id = ids[(w * 37 + n * 11) % ids.len()];
                    let state = ["submitted", "acknowledged", "accepted"][n % 3];
                    nrm::db::write_transaction(&mut conn, |conn| {
                        diesel::update(referrals::table.find(id))
                            .set(referrals::state.eq(state))
                            .execute(conn)
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    let folder = {
        let (db, writing) = (db.clone(), writing.clone());
        std::thread::spawn(move || {
            let mut conn = db.get().unwrap();
            let mut folded = 0;
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                folded += nrm::db::rollups::fold_once(&mut conn).unwrap();
            }
            folded
        })
    };
    for writer in writers {
        writer.join().unwrap();
    }
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    let folded = folder.join().unwrap();
    assert!(folded > 0, "the fold ran while the writers wrote");
    let today = chrono::Utc::now().date_naive();
    assert_rollups_match_rows(&db, today - chrono::Duration::days(400), today);
}
backend_test!(folding_beside_writers_loses_no_change);

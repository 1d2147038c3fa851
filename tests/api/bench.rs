//! `nrm bench` end to end, kept short: it starts the service, drives every operation with
//! real tokens, and on PostgreSQL records one transition of each kind and runs the pgbench
//! scripts written from it. Figures are not asserted (a timed test proves nothing about
//! speed); that every operation succeeds and the scripts run without a failure is.

use std::process::Command;

use crate::backend_test;
use crate::helpers::{Backend, fresh_database, manifest_dir};

fn bench_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nrm"));
    command.current_dir(manifest_dir());
    for (key, _) in std::env::vars() {
        if key.starts_with("NRM__") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command
}

/// The row of `operation` in the printed tables, and its error count.
fn errors_of<'a>(stdout: &'a str, operation: &str) -> &'a str {
    let row = stdout
        .lines()
        .find(|l| l.starts_with(&format!("| {operation} ")))
        .unwrap_or_else(|| panic!("no row for {operation}:\n{stdout}"));
    row.trim_end_matches('|').rsplit('|').next().unwrap().trim()
}

async fn bench_drives_every_operation_and_the_pgbench_scripts_run(backend: Backend) {
    let (database_url, _guard) = fresh_database(backend);
    let output = bench_command()
        .env("RUST_LOG", "warn")
        .args([
            "bench",
            "--duration",
            "1s",
            "--concurrency",
            "2",
            "--database-url",
            &database_url,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for operation in [
        "create_case",
        "reasonable_grounds",
        "consent",
        "create_referral",
        "submit",
        "acknowledge",
        "accept",
        "start_care",
        "complete",
        "list_incoming",
        "get_referral",
        "get_case",
    ] {
        assert_eq!(errors_of(&stdout, operation), "0", "{operation}:\n{stdout}");
    }
    assert!(!stdout.contains("first error"), "{stdout}");
    assert!(
        stdout.contains("Service memory: largest resident set sampled"),
        "{stdout}"
    );
    // The targets are judged, whichever way (a one-second run on a busy machine shows
    // nothing about them).
    assert!(stdout.contains("p99 of each transition under 50 ms: "), "{stdout}");
    assert!(stdout.contains("p99 of the read mix under 20 ms: "), "{stdout}");
    if backend == Backend::Postgres {
        // Both comparisons ran, without a failed transaction: the recorded statements and
        // pgbench's own simple update on the same database.
        assert!(stdout.contains("Ratio service ÷ pgbench: "), "{stdout}");
        assert!(stdout.contains("Ratio service ÷ pgbench -N: "), "{stdout}");
        assert_eq!(stdout.matches(" 0 failed)").count(), 2, "{stdout}");
        // An accept is eight statements: BEGIN, the referral with its case and history, the
        // versioned update, the history entry, the webhook subscriptions of both parties, the
        // notice, the audit entry, COMMIT. The six between BEGIN and COMMIT are prepared, as
        // pgbench runs them: none is parsed and planned anew at every call (diesel's own
        // UPDATE, and INSERTs with `DEFAULT` for an empty column, were).
        assert!(
            stdout.contains(
                "(8 statements from BEGIN to COMMIT in the accept transaction, 0 of them parsed anew at every call)"
            ),
            "{stdout}"
        );
        // The histories the recorded SQL read stayed as short as real ones: a handover
        // writes five entries, and pgbench adds `TURNS_PER_REFERRAL` per round through the
        // referrals. With each client on one referral all run, that referral's history grew
        // by one per transaction, to hundreds here.
        let longest = longest_history(&database_url);
        assert!(
            longest <= 5 + 3 * i64::from(nrm::bench::pgbench::TURNS_PER_REFERRAL),
            "a referral has {longest} history entries:\n{stdout}"
        );
    } else {
        assert!(stdout.contains("(pgbench comparison: PostgreSQL only)"), "{stdout}");
    }
}
backend_test!(bench_drives_every_operation_and_the_pgbench_scripts_run);

/// The most history entries any one referral has.
fn longest_history(database_url: &str) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Longest {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = diesel::PgConnection::establish(database_url).unwrap();
    diesel::sql_query(
        "SELECT COALESCE(max(n), 0) AS n FROM (SELECT count(*) AS n FROM referral_history GROUP BY referral_id) c",
    )
    .get_result::<Longest>(&mut conn)
    .unwrap()
    .n
}

/// The pages scenario signs people in through the sign-in form and loads every page it
/// times without an error; the p99 line it prints is what docs/performance.md quotes.
async fn bench_pages_signs_people_in_and_loads_every_page(backend: Backend) {
    let (database_url, _guard) = fresh_database(backend);
    let output = bench_command()
        .env("RUST_LOG", "warn")
        .args(["bench", "--scenario", "pages", "--duration", "1s", "--concurrency", "4"])
        .args(["--database-url", &database_url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for page in ["page_inbox", "page_referral", "page_case", "page_cases"] {
        assert_eq!(errors_of(&stdout, page), "0", "{page}:\n{stdout}");
    }
    assert!(!stdout.contains("first error"), "{stdout}");
    assert!(
        stdout.contains("Target p99 under 50 ms at 16 signed-in people: inbox "),
        "{stdout}"
    );
}
backend_test!(bench_pages_signs_people_in_and_loads_every_page);

/// The console scenario loads every console page for the last 12 months without an error
/// (here on a small seeded database), the information point scenario every public page.
async fn bench_console_and_information_point_load_every_page(backend: Backend) {
    let (database_url, _guard) = fresh_database(backend);
    let seed = bench_command()
        .env("RUST_LOG", "warn")
        .args(["demo", "seed", "--cases", "300", "--days", "365"])
        .args(["--database-url", &database_url])
        .output()
        .unwrap();
    assert!(seed.status.success(), "{}", String::from_utf8_lossy(&seed.stderr));
    for (scenario, pages, target) in [
        (
            "console",
            &[
                "console_today",
                "console_statistics",
                "console_statistics_csv",
                "console_three_way",
                "console_audit",
                "admin_capacity",
            ][..],
            "Target every console page under 1 s: slowest load ",
        ),
        (
            "information-point",
            &["info_home", "info_results", "info_organisations", "info_what_happens"],
            "Target p99 under 20 ms at 16 visitors: slowest page's p99 ",
        ),
    ] {
        let output = bench_command()
            .env("RUST_LOG", "warn")
            .args([
                "bench",
                "--scenario",
                scenario,
                "--duration",
                "1s",
                "--concurrency",
                "4",
            ])
            .args(["--repeat", "2", "--database-url", &database_url])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{scenario}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        for page in pages {
            assert_eq!(errors_of(&stdout, page), "0", "{page}:\n{stdout}");
        }
        assert!(!stdout.contains("first error"), "{stdout}");
        assert!(stdout.contains(target), "{stdout}");
    }
}
backend_test!(bench_console_and_information_point_load_every_page);

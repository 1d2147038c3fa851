//! Coordinator oversight: the audit trail and its tamper evidence, case-flow monitoring,
//! the statistics report and the EU export.

use chrono::{Datelike, Duration, TimeZone, Utc};
use diesel::connection::SimpleConnection;
use serde_json::{Value, json};

use crate::api_test;
use crate::helpers::{Backend, TestApp, adult_case, assert_rollups_match_rows, expect_problem, manifest_dir};

async fn audit_records_every_change_without_personal_data(app: TestApp) {
    let a = app.actors();
    let mut body = adult_case();
    body["identifying_details"] = json!({"name": "Maria Auditvrij", "phone": "0612345678"});
    let case = app.create_case(&a.fier_caseworker, &body).await;
    let id = case["id"].as_str().unwrap();
    app.reasonable_grounds(&a.fier_caseworker, id).await;
    app.consent(&a.fier_caseworker, id, "referral", "csg").await;
    let draft = app
        .draft_referral(&a.fier_caseworker, id, "csg", &["acute_sexual_violence_care"])
        .await;
    let submitted = app.step(&a.fier_caseworker, &draft, json!({"action": "submit"})).await;
    app.step(
        &a.csg_intake,
        &submitted,
        json!({"action": "decline", "reason_code": "no_capacity", "reason": "Vol"}),
    )
    .await;
    // A read of identifying details is on the record too; a read without them is not.
    app.get(&format!("/api/v1/cases/{id}"), &a.fier_caseworker).await;

    let page: Value = app
        .get(&format!("/api/v1/audit?case_id={id}&limit=50"), &a.comensha_coordinator)
        .await
        .json()
        .await
        .unwrap();
    let mut actions: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    actions.reverse();
    assert_eq!(
        actions,
        vec![
            "case.create",
            "identification.reasonable_grounds",
            "consent.create",
            "referral.create",
            "referral.submit",
            "referral.decline",
            "case.identifying_details.read"
        ]
    );
    let text = page.to_string();
    for secret in ["Maria", "0612345678", "zonnebloem", "Vol\""] {
        assert!(!text.contains(secret), "audit leaks {secret}");
    }
    let decline = &page["items"][1];
    assert_eq!(decline["actor_sub"], "intake-carla");
    assert_eq!(decline["actor_org"], "csg");
    assert_eq!(decline["actor_roles"], "intake");
    assert_eq!(decline["outcome"], "declined");
    assert_eq!(decline["resource_id"], submitted["id"]);

    // Filters and cursor pagination.
    let csg: Value = app
        .get("/api/v1/audit?organisation=csg", &a.comensha_coordinator)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(csg["items"].as_array().unwrap().len(), 1);
    let reads: Value = app
        .get(
            "/api/v1/audit?action=case.identifying_details.read&actor=cw-anna",
            &a.comensha_coordinator,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reads["items"].as_array().unwrap().len(), 1);
    let first: Value = app
        .get(&format!("/api/v1/audit?case_id={id}&limit=4"), &a.comensha_coordinator)
        .await
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get(
            &format!("/api/v1/audit?case_id={id}&limit=4&cursor={cursor}"),
            &a.comensha_coordinator,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 3);
    assert!(rest["next_cursor"].is_null());
    let future: Value = app
        .get("/api/v1/audit?from=2999-01-01", &a.comensha_coordinator)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(future["items"].as_array().unwrap().len(), 0);
    let today = app.clock_today();
    let today_page: Value = app
        .get(
            &format!("/api/v1/audit?from={today}&to={today}&limit=200"),
            &a.comensha_coordinator,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(today_page["items"].as_array().unwrap().len() >= 7);
    for bad in ["case_id=x", "from=yesterday", "cursor=abc", "limit=0"] {
        expect_problem(
            app.get(&format!("/api/v1/audit?{bad}"), &a.comensha_coordinator).await,
            422,
        )
        .await;
    }
    // Only the focal point's coordinators.
    expect_problem(app.get("/api/v1/audit", &a.fier_caseworker).await, 403).await;
    expect_problem(
        app.get("/api/v1/audit", &app.token("c", "fier", &["coordinator"]))
            .await,
        403,
    )
    .await;
    expect_problem(app.get("/api/v1/audit/verify", &a.comensha_intake).await, 403).await;
}
api_test!(audit_records_every_change_without_personal_data);

fn verify_cli(app: &TestApp) -> (bool, Value) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nrm"))
        .current_dir(manifest_dir())
        .env("RUST_LOG", "error")
        .args(["audit", "verify", "--database-url", &app.database_url])
        .output()
        .unwrap();
    let verdict = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output.status.success(), verdict)
}

async fn verify_api(app: &TestApp) -> Value {
    let token = app.actors().comensha_coordinator;
    app.get("/api/v1/audit/verify", &token).await.json().await.unwrap()
}

async fn audit_verification_pinpoints_tampering(app: TestApp) {
    let a = app.actors();
    for _ in 0..3 {
        let case = app.create_case(&a.fier_caseworker, &adult_case()).await;
        app.reasonable_grounds(&a.fier_caseworker, case["id"].as_str().unwrap())
            .await;
    }
    let verdict = verify_api(&app).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    let entries = verdict["entries"].as_i64().unwrap();
    assert!(entries >= 6, "registry sync plus six changes");
    assert!(verdict["first_invalid_seq"].is_null());
    assert_eq!(verify_cli(&app), (true, verdict.clone()));

    let db = app.db();
    let mut conn = db.get().unwrap();
    // The database itself refuses changes to the trail.
    assert!(
        conn.batch_execute("UPDATE audit_log SET outcome = 'x' WHERE seq = 3")
            .is_err()
    );
    assert!(conn.batch_execute("DELETE FROM audit_log WHERE seq = 3").is_err());
    // An attacker with the database's own powers can remove the guard; the chain still tells.
    match app.backend {
        Backend::Postgres => conn
            .batch_execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
            .unwrap(),
        Backend::Sqlite => conn
            .batch_execute("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
            .unwrap(),
    }
    let last = entries;

    // Edit: pinpointed at the edited entry; undoing the edit restores the chain.
    conn.batch_execute("UPDATE audit_log SET actor_sub = actor_sub || 'x' WHERE seq = 5")
        .unwrap();
    let verdict = verify_api(&app).await;
    assert_eq!(
        (verdict["valid"].clone(), verdict["first_invalid_seq"].clone()),
        (json!(false), json!(5))
    );
    let (ok, cli) = verify_cli(&app);
    assert!(!ok, "the CLI exits non-zero on a broken chain");
    assert_eq!(cli, verdict);
    conn.batch_execute("UPDATE audit_log SET actor_sub = substr(actor_sub, 1, length(actor_sub) - 1) WHERE seq = 5")
        .unwrap();
    assert_eq!(verify_api(&app).await["valid"], true);

    // Reorder: swap two entries' positions.
    conn.batch_execute(
        "UPDATE audit_log SET seq = -1 WHERE seq = 4; UPDATE audit_log SET seq = 4 WHERE seq = 5; \
         UPDATE audit_log SET seq = 5 WHERE seq = -1;",
    )
    .unwrap();
    assert_eq!(verify_api(&app).await["first_invalid_seq"], 4);
    conn.batch_execute(
        "UPDATE audit_log SET seq = -1 WHERE seq = 4; UPDATE audit_log SET seq = 4 WHERE seq = 5; \
         UPDATE audit_log SET seq = 5 WHERE seq = -1;",
    )
    .unwrap();
    assert_eq!(verify_api(&app).await["valid"], true);

    // Delete the last entry: the head knows it was there.
    conn.batch_execute(&format!("DELETE FROM audit_log WHERE seq = {last}"))
        .unwrap();
    assert_eq!(verify_api(&app).await["first_invalid_seq"], last);
    // Delete one in the middle.
    conn.batch_execute("DELETE FROM audit_log WHERE seq = 2").unwrap();
    let verdict = verify_api(&app).await;
    assert_eq!(verdict["first_invalid_seq"], 2);
    assert_eq!(verdict["entries"], last - 2);
}
api_test!(audit_verification_pinpoints_tampering);

async fn parallel_writers_and_sealers_never_fork_the_chain(app: TestApp) {
    let before = verify_api(&app).await["entries"].as_i64().unwrap();
    let mut threads = Vec::new();
    // Sealers racing each other and the writers, as every instance's sealer does.
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut sealers = Vec::new();
    for _ in 0..3 {
        let db = app.db();
        let writing = writing.clone();
        sealers.push(std::thread::spawn(move || {
            let mut conn = db.get().unwrap();
            let mut sealed = 0;
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                sealed += nrm::db::audit::seal(&mut conn).unwrap();
            }
            sealed
        }));
    }
    for writer in 0..8 {
        let db = app.db();
        threads.push(std::thread::spawn(move || {
            let mut conn = db.get().unwrap();
            for n in 0..25 {
                nrm::db::write_transaction(&mut conn, |conn| {
                    let entry =
                        nrm::db::audit::NewAuditEntry::new("test.append", "test", format!("{writer}-{n}"), None, "ok")
                            .by(&format!("writer-{writer}"), "fier", "caseworker".into());
                    nrm::db::audit::append(conn, &entry, nrm::db::Instant::from_utc(Utc::now())).map(|_| ())
                })
                .unwrap();
            }
        }));
    }
    for thread in threads {
        thread.join().unwrap();
    }
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    let sealed_meanwhile: u64 = sealers.into_iter().map(|s| s.join().unwrap()).sum();
    assert!(sealed_meanwhile > 0, "the racing sealers sealed entries");
    let verdict = verify_api(&app).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["entries"], before + 200, "every entry sealed exactly once");
    assert_eq!(verdict["unsealed"], 0);
}
api_test!(parallel_writers_and_sealers_never_fork_the_chain);

impl TestApp {
    pub fn clock_today(&self) -> String {
        use nrm::clock::Clock;
        self.clock.now().date_naive().to_string()
    }
}

async fn flows_show_where_handovers_are_stuck(app: TestApp) {
    use nrm::clock::Clock;
    let a = app.actors();
    let t0 = Utc.with_ymd_and_hms(2025, 3, 3, 9, 0, 0).unwrap();
    app.clock.set(t0);
    let prepare = |to: &'static str, urgency: &'static str| {
        let app = &app;
        let a = &a;
        async move {
            let case = app.create_case(&a.fier_caseworker, &adult_case()).await;
            let id = case["id"].as_str().unwrap().to_string();
            app.reasonable_grounds(&a.fier_caseworker, &id).await;
            app.consent(&a.fier_caseworker, &id, "referral", to).await;
            let draft = app
                .post_ok(
                    &format!("/api/v1/cases/{id}/referrals"),
                    &a.fier_caseworker,
                    &json!({"to_organisation": to, "services": [match to { "csg" => "psychosocial_support", "comensha" => "victim_registration", _ => "practical_support" }], "urgency": urgency}),
                    201,
                )
                .await;
            app.step(&a.fier_caseworker, &draft, json!({"action": "submit"})).await
        }
    };
    // Three CSG referrals acknowledged after 1, 2 and 10 hours; one accepted and in care.
    let c1 = prepare("csg", "routine").await;
    let c2 = prepare("csg", "routine").await;
    let c3 = prepare("csg", "routine").await;
    let shn = prepare("slachtofferhulp", "routine").await;
    let stuck_urgent = prepare("csg", "urgent").await;
    app.clock.set(t0 + Duration::hours(1));
    let stuck_routine = prepare("comensha", "routine").await;
    let c1 = app.step(&a.csg_intake, &c1, json!({"action": "acknowledge"})).await;
    app.clock.set(t0 + Duration::hours(2));
    app.step(&a.csg_intake, &c2, json!({"action": "acknowledge"})).await;
    app.clock.set(t0 + Duration::hours(4));
    let shn = app.step(&a.shn_intake, &shn, json!({"action": "acknowledge"})).await;
    app.clock.set(t0 + Duration::hours(10));
    let c3 = app.step(&a.csg_intake, &c3, json!({"action": "acknowledge"})).await;
    let c1 = app.step(&a.csg_intake, &c1, json!({"action": "accept"})).await;
    app.clock.set(t0 + Duration::hours(20));
    app.step(&a.shn_intake, &shn, json!({"action": "accept"})).await;
    app.step(
        &a.csg_intake,
        &c3,
        json!({"action": "decline", "reason_code": "not_eligible", "reason": "x"}),
    )
    .await;
    app.clock.set(t0 + Duration::hours(30));
    app.step(&a.csg_intake, &c1, json!({"action": "start_care"})).await;
    assert_eq!(app.clock.now(), t0 + Duration::hours(30));

    let flows: Value = app
        .get(
            "/api/v1/oversight/flows?from=2025-03-03&to=2025-03-03",
            &a.comensha_coordinator,
        )
        .await
        .json()
        .await
        .unwrap();
    let counts: Vec<(String, String, String, i64)> = flows["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["from_organisation"].as_str().unwrap().into(),
                f["to_organisation"].as_str().unwrap().into(),
                f["state"].as_str().unwrap().into(),
                f["count"].as_i64().unwrap(),
            )
        })
        .collect();
    let owned = |f: &str, t: &str, s: &str, n: i64| (f.to_string(), t.to_string(), s.to_string(), n);
    assert_eq!(
        counts,
        vec![
            owned("fier", "comensha", "submitted", 1),
            owned("fier", "csg", "acknowledged", 1),
            owned("fier", "csg", "declined", 1),
            owned("fier", "csg", "in_care", 1),
            owned("fier", "csg", "submitted", 1),
            owned("fier", "slachtofferhulp", "accepted", 1),
        ]
    );
    let csg = flows["response_times"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["organisation"] == "csg")
        .unwrap();
    assert_eq!(
        csg["submit_to_acknowledge"],
        json!({"count": 3, "median_hours": 2.0, "p90_hours": 10.0})
    );
    assert_eq!(
        csg["submit_to_decision"],
        json!({"count": 2, "median_hours": 10.0, "p90_hours": 20.0})
    );
    assert_eq!(
        csg["accept_to_start_care"],
        json!({"count": 1, "median_hours": 20.0, "p90_hours": 20.0})
    );
    let shn_times = flows["response_times"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["organisation"] == "slachtofferhulp")
        .unwrap();
    assert_eq!(shn_times["submit_to_decision"]["median_hours"], 20.0);
    assert!(shn_times["accept_to_start_care"].is_null());

    let open: Vec<(String, String, i64)> = flows["open"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["organisation"].as_str().unwrap().into(),
                o["state"].as_str().unwrap().into(),
                o["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        open,
        vec![
            ("comensha".into(), "submitted".into(), 1),
            ("csg".into(), "acknowledged".into(), 1),
            ("csg".into(), "in_care".into(), 1),
            ("csg".into(), "submitted".into(), 1),
            ("slachtofferhulp".into(), "accepted".into(), 1),
        ]
    );
    // Stuck: the urgent CSG referral (4 h to acknowledge, 1 day to decide) and the routine
    // CoMensha one (24 h to acknowledge); c2 (acknowledged at 2 h, routine) is within 5 days.
    let overdue: Vec<(String, String, f64)> = flows["overdue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["referral_id"].as_str().unwrap().into(),
                o["step"].as_str().unwrap().into(),
                o["overdue_hours"].as_f64().unwrap(),
            )
        })
        .collect();
    let urgent_id = stuck_urgent["id"].as_str().unwrap().to_string();
    let routine_id = stuck_routine["id"].as_str().unwrap().to_string();
    assert_eq!(
        overdue,
        vec![
            (urgent_id.clone(), "acknowledge".into(), 26.0),
            (urgent_id, "decide".into(), 6.0),
            (routine_id, "acknowledge".into(), 5.0)
        ]
    );
    let text = flows.to_string();
    assert!(!text.contains("zonnebloem"), "no pseudonyms in oversight");
    // A period without referrals.
    let empty: Value = app
        .get(
            "/api/v1/oversight/flows?from=2020-01-01&to=2020-12-31",
            &a.comensha_coordinator,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(empty["flows"], json!([]));
    assert_eq!(empty["response_times"], json!([]));
    for bad in ["", "from=2025-01-01", "from=2025-02-01&to=2025-01-01", "from=x&to=y"] {
        expect_problem(
            app.get(&format!("/api/v1/oversight/flows?{bad}"), &a.comensha_coordinator)
                .await,
            422,
        )
        .await;
    }
    expect_problem(
        app.get("/api/v1/oversight/flows?from=2025-01-01&to=2025-12-31", &a.csg_intake)
            .await,
        403,
    )
    .await;
}
api_test!(flows_show_where_handovers_are_stuck);

/// One case of the realistic year: (organisation, reporter role, forms, age, gender, nationality).
type YearCase = (
    &'static str,
    &'static str,
    &'static [&'static str],
    Option<i64>,
    Option<&'static str>,
    Option<&'static str>,
);

const YEAR: [YearCase; 16] = [
    ("fier", "victim", &["sexual"], Some(15), Some("female"), Some("NL")),
    ("fier", "victim", &["sexual"], Some(17), Some("female"), Some("NL")),
    ("fier", "victim", &["sexual"], Some(22), Some("female"), Some("RO")),
    ("fier", "victim", &["criminal"], Some(16), Some("male"), Some("NL")),
    ("fier", "victim", &["criminal"], None, Some("male"), Some("MA")),
    (
        "fier",
        "victim",
        &["sexual", "criminal"],
        Some(19),
        Some("female"),
        Some("NL"),
    ),
    (
        "fier",
        "concerned_person",
        &["sexual"],
        Some(14),
        Some("female"),
        Some("NL"),
    ),
    ("fier", "concerned_person", &["criminal"], None, Some("unknown"), None),
    ("fier", "victim", &["labour"], Some(35), Some("male"), Some("PL")),
    ("fier", "victim", &["other"], Some(28), Some("non_binary"), None),
    (
        "slachtofferhulp",
        "victim",
        &["labour"],
        Some(41),
        Some("male"),
        Some("UA"),
    ),
    (
        "slachtofferhulp",
        "victim",
        &["sexual"],
        Some(30),
        Some("female"),
        Some("NG"),
    ),
    (
        "slachtofferhulp",
        "professional",
        &["sexual", "labour"],
        None,
        None,
        None,
    ),
    (
        "slachtofferhulp",
        "victim",
        &["sexual"],
        None,
        Some("female"),
        Some("NL"),
    ),
    (
        "slachtofferhulp",
        "concerned_person",
        &["sexual"],
        Some(16),
        Some("female"),
        Some("NL"),
    ),
    (
        "slachtofferhulp",
        "victim",
        &["criminal"],
        Some(20),
        Some("male"),
        Some("NL"),
    ),
];

async fn load_year(app: &TestApp) -> Vec<String> {
    let fier = app.token("cw-anna", "fier", &["caseworker"]);
    let shn = app.token("cw-shn", "slachtofferhulp", &["caseworker"]);
    let mut ids = Vec::new();
    for (n, (org, role, forms, age, gender, nationality)) in YEAR.iter().enumerate() {
        let mut body = json!({
            "reporter_role": role,
            "contact_channel": "chat",
            "contact_date": format!("2024-{:02}-15", n % 12 + 1),
            "exploitation_forms": forms,
            "pseudonym": format!("chat-{n}"),
        });
        if let Some(age) = age {
            body["age_at_contact"] = json!(age);
        }
        if let Some(gender) = gender {
            body["gender"] = json!(gender);
        }
        if let Some(nationality) = nationality {
            body["nationality"] = json!(nationality);
        }
        if n == 4 {
            body["presumed_minor"] = json!(true);
        }
        let token = if *org == "fier" { &fier } else { &shn };
        ids.push(app.create_case(token, &body).await["id"].as_str().unwrap().to_string());
    }
    // Outside the year: the last day before and the first day after.
    for date in ["2023-12-31", "2025-01-01"] {
        let mut body = adult_case();
        body["contact_date"] = json!(date);
        let id = app.create_case(&fier, &body).await["id"].as_str().unwrap().to_string();
        app.post_ok(
            &format!("/api/v1/cases/{id}/anonymous-notification"),
            &fier,
            &json!({}),
            201,
        )
        .await;
    }
    ids
}

async fn referral_to(app: &TestApp, case_id: &str, to: &str, service: &str) -> Value {
    let fier = app.token("cw-anna", "fier", &["caseworker"]);
    app.consent(&fier, case_id, "referral", to).await;
    let draft = app.draft_referral(&fier, case_id, to, &[service]).await;
    app.step(&fier, &draft, json!({"action": "submit"})).await
}

async fn statistics_report_matches_hand_counted_year(app: TestApp) {
    let a = app.actors();
    let ids = load_year(&app).await;
    let shn_cw = app.token("cw-shn", "slachtofferhulp", &["caseworker"]);
    for n in [0, 2, 3] {
        app.reasonable_grounds(&a.fier_caseworker, &ids[n]).await;
    }
    let r1 = referral_to(&app, &ids[0], "csg", "acute_sexual_violence_care").await;
    let r1 = app.step(&a.csg_intake, &r1, json!({"action": "accept"})).await;
    app.step(
        &a.csg_intake,
        &r1,
        json!({"action": "complete", "outcome_code": "support_provided", "outcome": "x"}),
    )
    .await;
    let r2 = referral_to(&app, &ids[2], "csg", "psychosocial_support").await;
    app.step(
        &a.csg_intake,
        &r2,
        json!({"action": "decline", "reason_code": "no_capacity", "reason": "x"}),
    )
    .await;
    referral_to(&app, &ids[2], "slachtofferhulp", "legal_support").await;
    let r4 = referral_to(&app, &ids[3], "slachtofferhulp", "practical_support").await;
    app.step(&a.shn_intake, &r4, json!({"action": "accept"})).await;
    app.draft_referral(&a.fier_caseworker, &ids[8], "csg", &["psychosocial_support"])
        .await;
    // Three-way conversations: one evaluated with the intention to report, one declined, one open.
    app.consent(&a.fier_caseworker, &ids[0], "police_contact", "police")
        .await;
    let mut held = None;
    for (n, steps) in [(0usize, 3usize), (1, 0), (3, 0)] {
        let conversation = app
            .post_ok(
                &format!("/api/v1/cases/{}/three-way-conversations", ids[n]),
                &a.fier_caseworker,
                &json!({}),
                201,
            )
            .await;
        if n == 0 {
            held = Some((conversation, steps));
        } else if n == 1 {
            three_way_step(&app, &a.fier_caseworker, &conversation, json!({"action": "decline"})).await;
        }
    }
    let (mut conversation, _) = held.unwrap();
    for body in [
        json!({"action": "schedule", "police_officer": "rechercheur-hans", "scheduled_for": "2024-02-01T10:00:00Z"}),
        json!({"action": "hold"}),
        json!({"action": "evaluate", "care_evaluation": "a", "police_evaluation": "b", "reporting_intention": "will_report"}),
    ] {
        conversation = three_way_step(&app, &a.fier_caseworker, &conversation, body).await;
    }
    app.post_ok(
        &format!("/api/v1/cases/{}/anonymous-notification", ids[11]),
        &shn_cw,
        &json!({}),
        201,
    )
    .await;

    let report: Value = app
        .get(
            "/api/v1/stats/report?from=2024-01-01&to=2024-12-31",
            &a.comensha_coordinator,
        )
        .await
        .json()
        .await
        .unwrap();
    let expected = json!({
        "period": {"from": "2024-01-01", "to": "2024-12-31"},
        "persons": {"total": 16, "victims": 12, "concerned_persons": 3, "professionals": 1},
        "registering_organisation": {"fier": 10, "slachtofferhulp": 6},
        "exploitation": {"sexual": 7, "criminal": 4, "labour": 2, "other": 1, "combination": 2},
        "age": {"known": 10, "minors": 3, "adults": 7, "minor_share_pct": 30.0, "adult_share_pct": 70.0, "mean": 24.3},
        "gender": {"female": 8, "male": 5, "non_binary": 1, "unknown": 2},
        "nationality": {"dutch": 8, "other_eu": 2, "non_eu": 3, "unknown": 3},
        "referrals": {
            "total": 4,
            "by_destination": {"csg": 2, "slachtofferhulp": 2},
            "by_state": {"accepted": 1, "completed": 1, "declined": 1, "submitted": 1},
            "by_outcome": {"support_provided": 1}
        },
        "three_way_conversations": {"offered": 3, "held": 1, "will_report": 1},
        "anonymous_notifications": 1,
        "suppressed": []
    });
    assert_eq!(report, expected);
    assert!(!report.to_string().contains("chat-"), "no pseudonyms in statistics");

    let csv = app
        .get(
            "/api/v1/stats/report?from=2024-01-01&to=2024-12-31&format=csv",
            &a.comensha_coordinator,
        )
        .await;
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = csv.text().await.unwrap();
    for line in [
        "section,key,value",
        "persons,total,16",
        "exploitation,combination,2",
        "age,mean,24.3",
        "referrals.by_destination,csg,2",
        "registering_organisation,slachtofferhulp,6",
    ] {
        assert!(csv.lines().any(|l| l == line), "{line} missing from\n{csv}");
    }
    expect_problem(
        app.get(
            "/api/v1/stats/report?from=2024-01-01&to=2024-12-31&format=xml",
            &a.comensha_coordinator,
        )
        .await,
        422,
    )
    .await;
    expect_problem(
        app.get("/api/v1/stats/report?from=2024-01-01&to=2024-12-31", &a.fier_caseworker)
            .await,
        403,
    )
    .await;

    // The EU export counts registered victims by the year their reasonable grounds were recorded.
    app.post_ok(
        &format!("/api/v1/cases/{}/identification", ids[0]),
        &a.comensha_coordinator,
        &json!({"decision": "identified", "basis": "b"}),
        200,
    )
    .await;
    let year = Utc::now().year();
    use nrm::clock::Clock;
    let year = if app.clock.now().year() == year {
        year
    } else {
        app.clock.now().year()
    };
    let eu: Value = app
        .get(&format!("/api/v1/stats/eu?year={year}"), &a.comensha_coordinator)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(eu["registered_victims"], json!({"identified": 1, "presumed_victim": 2}));
    assert_eq!(
        eu["by_sex"],
        json!({"identified": {"female": 1}, "presumed_victim": {"female": 1, "male": 1}})
    );
    assert_eq!(
        eu["by_age_group"],
        json!({"identified": {"child": 1}, "presumed_victim": {"adult": 1, "child": 1}})
    );
    assert_eq!(
        eu["by_citizenship"],
        json!({"identified": {"NL": 1}, "presumed_victim": {"NL": 1, "RO": 1}})
    );
    assert_eq!(
        eu["by_registering_organisation"],
        json!({"identified": {"fier": 1}, "presumed_victim": {"fier": 2}})
    );
    assert_eq!(
        eu["by_form_of_exploitation"],
        json!({"identified": {"sexual": 1}, "presumed_victim": {"criminal": 1, "sexual": 1}})
    );
    assert_eq!(eu["anonymous_notifications"]["total"], 3);
    expect_problem(
        app.get("/api/v1/stats/eu?year=twenty", &a.comensha_coordinator).await,
        422,
    )
    .await;

    // The roll-ups give the same figures as the rows, with deltas pending or folded, for the
    // year and for all time.
    let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let db = app.db();
    let ((cases, _, referrals, three_way, _, _), _) =
        assert_rollups_match_rows(&db, day(2024, 1, 1), day(2024, 12, 31));
    assert_eq!((cases.total, referrals.total, three_way.offered), (16, 4, 3));
    let ((_, _, _, _, flows, _), _) = assert_rollups_match_rows(&db, day(2000, 1, 1), day(2100, 12, 31));
    assert_eq!(
        flows.iter().map(|f| f.3).sum::<i64>(),
        5,
        "four submitted and one draft"
    );

    // A case whose first contact moves to 2023 takes its referrals and conversations along;
    // an erased one stays counted (its draft is withdrawn, and no override appears).
    let case: Value = app
        .get(&format!("/api/v1/cases/{}", ids[0]), &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    let moved = app
        .client
        .patch(app.url(&format!("/api/v1/cases/{}", ids[0])))
        .bearer_auth(&a.fier_caseworker)
        .header("If-Match", format!("\"{}\"", case["version"]))
        .json(&json!({"contact_date": "2023-06-30"}))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    let admin = app.token("admin-fier", "fier", &["admin"]);
    app.post_ok(
        &format!("/api/v1/cases/{}/erase", ids[8]),
        &admin,
        &json!({"reason": "data_subject_request"}),
        200,
    )
    .await;
    let ((cases, _, referrals, three_way, _, overrides), _) =
        assert_rollups_match_rows(&db, day(2024, 1, 1), day(2024, 12, 31));
    assert_eq!((cases.total, referrals.total, three_way.offered), (15, 3, 2));
    assert!(overrides.is_empty(), "an erasure adds no eligibility override");
    let ((cases, _, referrals, three_way, _, _), _) =
        assert_rollups_match_rows(&db, day(2023, 1, 1), day(2023, 12, 31));
    assert_eq!(
        (cases.total, referrals.total, three_way.offered),
        (2, 1, 1),
        "with the case of 31 December"
    );
    let ((_, _, _, _, flows, _), _) = assert_rollups_match_rows(&db, day(2000, 1, 1), day(2100, 12, 31));
    let withdrawn: i64 = flows.iter().filter(|f| f.2 == "withdrawn").map(|f| f.3).sum();
    assert_eq!(withdrawn, 1, "the erased case's draft, withdrawn");
}
api_test!(statistics_report_matches_hand_counted_year);

async fn three_way_step(app: &TestApp, token: &str, conversation: &Value, body: Value) -> Value {
    let response = app
        .client
        .post(app.url(&format!(
            "/api/v1/three-way-conversations/{}/transitions",
            conversation["id"].as_str().unwrap()
        )))
        .bearer_auth(token)
        .header("If-Match", format!("\"{}\"", conversation["version"]))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn small_cells_are_withheld_when_configured(backend: Backend) {
    let adjust = |s: &mut nrm::config::Settings| s.stats.min_cell = 3;
    let app = match backend {
        Backend::Sqlite => crate::helpers::spawn_app_with(backend, adjust).await,
        Backend::Postgres => match crate::helpers::spawn_postgres_app(adjust).await {
            Some(app) => app,
            None => return,
        },
    };
    load_year(&app).await;
    let token = app.actors().comensha_coordinator;
    let report: Value = app
        .get("/api/v1/stats/report?from=2024-01-01&to=2024-12-31", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["persons"]["professionals"], Value::Null);
    assert_eq!(report["exploitation"]["other"], Value::Null);
    assert_eq!(report["exploitation"]["sexual"], 7);
    assert_eq!(report["gender"]["non_binary"], Value::Null);
    let suppressed: Vec<&str> = report["suppressed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for path in [
        "persons.professionals",
        "exploitation.other",
        "exploitation.labour",
        "gender.non_binary",
        "nationality.other_eu",
    ] {
        assert!(suppressed.contains(&path), "{path} not in {suppressed:?}");
    }
    let csv = app
        .get("/api/v1/stats/report?from=2024-01-01&to=2024-12-31&format=csv", &token)
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.lines().any(|l| l == "persons,professionals,"), "{csv}");
}

mod small_cells_are_withheld_when_configured {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::small_cells_are_withheld_when_configured(crate::helpers::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::small_cells_are_withheld_when_configured(crate::helpers::Backend::Postgres).await;
    }
}

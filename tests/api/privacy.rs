//! Privacy by design: nothing identifying in the raw database, key rotation, the disclosure
//! register, subject access, closure, retention, erasure, rate limits, and logs without
//! personal data.

use std::io::Read;
use std::time::Duration;

use base64::Engine;
use chrono::Duration as Days;
use diesel::connection::SimpleConnection;
use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::{Backend, TestApp, adult_case, expect_problem, manifest_dir, on, pg_base_url, spawn_app_on};

const NAME: &str = "Zwaantje Qwertyvanger";
const PHONE: &str = "+31 6 9876 5432";
const PSEUDONYM: &str = "blauwvogel77";
const NOTE: &str = "Notitie-merkteken-4711";

fn marked_case() -> Value {
    let mut body = adult_case();
    body["pseudonym"] = json!(PSEUDONYM);
    body["identifying_details"] = json!({"name": NAME, "phone": PHONE, "address": "Kanaalweg 12, Qwertystad"});
    body
}

/// A case with every kind of personal data, handed over and answered with free text.
async fn case_with_personal_data(app: &TestApp) -> (String, Value) {
    let a = app.actors();
    let case = app.create_case(&a.fier_caseworker, &marked_case()).await;
    let id = case["id"].as_str().unwrap().to_string();
    app.reasonable_grounds(&a.fier_caseworker, &id).await;
    app.consent(&a.fier_caseworker, &id, "referral", "csg").await;
    let draft = app
        .post_ok(
            &format!("/api/v1/cases/{id}/referrals"),
            &a.fier_caseworker,
            &json!({"to_organisation": "csg", "services": ["psychosocial_support"], "urgency": "routine", "note": NOTE}),
            201,
        )
        .await;
    let submitted = app.step(&a.fier_caseworker, &draft, json!({"action": "submit"})).await;
    (id, submitted)
}

fn raw_contents(app: &TestApp) -> String {
    match app.backend {
        Backend::Sqlite => {
            let mut all = Vec::new();
            for suffix in ["", "-wal"] {
                if let Ok(mut file) = std::fs::File::open(format!("{}{suffix}", app.database_url)) {
                    file.read_to_end(&mut all).unwrap();
                }
            }
            String::from_utf8_lossy(&all).to_string()
        }
        Backend::Postgres => {
            let name = app.database_url.rsplit('/').next().unwrap().to_string();
            let base = pg_base_url();
            let host_port = base
                .trim_start_matches("postgres://")
                .rsplit('@')
                .next()
                .unwrap()
                .to_string();
            let (host, port) = host_port.split_once(':').unwrap_or((&host_port, "5432"));
            let output = std::process::Command::new("pg_dump")
                .args(["-h", host, "-p", port, "-U", "postgres", "--no-owner", &name])
                .output()
                .expect("pg_dump runs");
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            String::from_utf8_lossy(&output.stdout).to_string()
        }
    }
}

async fn raw_database_reveals_no_identifying_detail(backend: Backend) {
    let Some(app) = on(backend, |_| {}).await else { return };
    let a = app.actors();
    let (id, submitted) = case_with_personal_data(&app).await;
    app.step(
        &a.csg_intake,
        &submitted,
        json!({"action": "decline", "reason_code": "other", "reason": NOTE}),
    )
    .await;
    // Through the API the owner reads everything back.
    let seen: Value = app
        .get(&format!("/api/v1/cases/{id}"), &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["identifying_details"]["name"], NAME);
    assert_eq!(seen["pseudonym"], PSEUDONYM);
    // Search by name goes through the blind index.
    let found = app
        .post_ok(
            "/api/v1/cases/search",
            &a.fier_caseworker,
            &json!({"name": "  zwaantje   QWERTYVANGER "}),
            200,
        )
        .await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    assert_eq!(found["items"][0]["id"], id.as_str());
    let elsewhere = app
        .post_ok("/api/v1/cases/search", &a.csg_caseworker, &json!({"name": NAME}), 200)
        .await;
    assert_eq!(elsewhere["items"], json!([]), "another organisation finds nothing");

    let raw = raw_contents(&app);
    assert!(raw.len() > 1000, "the raw database was read");
    for secret in [NAME, "Qwertyvanger", "9876 5432", PSEUDONYM, NOTE, "Kanaalweg"] {
        assert!(!raw.contains(secret), "`{secret}` found in the raw database");
    }
    assert!(raw.contains("v1.dev."), "sealed values are there");
}
backend_test!(raw_database_reveals_no_identifying_detail);

/// Names are found however they were typed: NFC or NFD, case, white space, ligatures.
/// Indexes written under the old normalisation are redone when the service starts.
async fn name_search_normalises_unicode(backend: Backend) {
    let Some(app) = on(backend, |_| {}).await else { return };
    let a = app.actors();
    let nfc = "Zo\u{eb} \u{c5}ngstr\u{f6}m";
    let nfd = "Zoe\u{308} A\u{30a}ngstro\u{308}m";
    let mut body = adult_case();
    body["identifying_details"] = json!({"name": nfc});
    let case = app.create_case(&a.fier_caseworker, &body).await;
    let search = |name: &str| {
        let name = name.to_string();
        let app = &app;
        let token = a.fier_caseworker.clone();
        async move {
            let found = app
                .post_ok("/api/v1/cases/search", &token, &json!({ "name": name }), 200)
                .await;
            found["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let id = case["id"].as_str().unwrap().to_string();
    for spelling in [nfc, nfd, "ZOË  ÅNGSTRÖM", "zo\u{eb}\u{a0}\u{e5}ngstr\u{f6}m"] {
        assert_eq!(search(spelling).await, vec![id.clone()], "{spelling:?}");
    }
    assert!(search("Zoe Angstrom").await.is_empty(), "accents are part of the name");

    // A row indexed before this normalisation: its index is redone at the next start.
    {
        use diesel::prelude::*;
        use nrm::db::schema::case_identifying_details as details;
        let db = app.db();
        let mut conn = db.get().unwrap();
        diesel::update(details::table)
            .set((
                details::name_index.eq(Some("old-scheme")),
                details::name_index_scheme.eq(1),
            ))
            .execute(&mut **conn)
            .unwrap();
    }
    assert!(search(nfd).await.is_empty(), "the stale index finds nothing");
    let restarted = spawn_app_on(&app, |_| {}).await;
    let found = restarted
        .post_ok("/api/v1/cases/search", &a.fier_caseworker, &json!({ "name": nfd }), 200)
        .await;
    assert_eq!(found["items"][0]["id"], id.as_str(), "re-indexed at start-up");
}
backend_test!(name_search_normalises_unicode);

fn key(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

fn keys_config(dir: &std::path::Path, keys: &[(&str, u8)], current: &str) -> std::path::PathBuf {
    let list = keys
        .iter()
        .map(|(id, byte)| format!("{{ id = \"{id}\", key = \"{}\" }}", key(*byte)))
        .collect::<Vec<_>>()
        .join(", ");
    let path = dir.join(format!("keys-{current}-{}.toml", keys.len()));
    std::fs::write(
        &path,
        format!(
            "[crypto]\nkeys = [{list}]\ncurrent_key = \"{current}\"\nblind_index_key = \"{}\"\n",
            key(9)
        ),
    )
    .unwrap();
    path
}

fn with_keys(settings: &mut nrm::config::Settings, keys: &[(&str, u8)], current: &str) {
    settings.crypto.keys = keys
        .iter()
        .map(|(id, byte)| nrm::config::CryptoKey {
            id: id.to_string(),
            key: key(*byte),
        })
        .collect();
    settings.crypto.current_key = current.into();
    settings.crypto.blind_index_key = key(9);
}

async fn key_rotation_round_trips(backend: Backend) {
    let Some(old) = on(backend, |s| with_keys(s, &[("k2025", 1)], "k2025")).await else {
        return;
    };
    let (id, _) = case_with_personal_data(&old).await;
    let dir = std::env::temp_dir().join(format!("nrm-keys-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    // Step 1: every instance learns the new key and makes it current (old values still open).
    let both = spawn_app_on(&old, |s| with_keys(s, &[("k2025", 1), ("k2026", 2)], "k2026")).await;
    // Step 2: re-encrypt everything under it, while the service runs.
    let rotate = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_nrm"))
            .current_dir(manifest_dir())
            .env("RUST_LOG", "error")
            .args(["--config"])
            .arg(keys_config(&dir, &[("k2025", 1), ("k2026", 2)], "k2026"))
            .args(["keys", "rotate", "--database-url", &both.database_url])
            .output()
            .unwrap()
    };
    let out = rotate();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["current_key"], "k2026");
    assert_eq!(report["reencrypted"]["cases.pseudonym"], 1);
    assert_eq!(report["reencrypted"]["case_identifying_details.name"], 1);
    assert_eq!(report["reencrypted"]["referrals.note"], 1);
    // Resumable and idempotent: a second run finds nothing left.
    let again: Value = serde_json::from_slice(&rotate().stdout).unwrap();
    assert!(
        again["reencrypted"].as_object().unwrap().values().all(|n| n == 0),
        "{again}"
    );
    // Step 3: the old key can go; an instance with only the new key reads everything.
    let new = spawn_app_on(&old, |s| with_keys(s, &[("k2026", 2)], "k2026")).await;
    let a = new.actors();
    let seen: Value = new
        .get(&format!("/api/v1/cases/{id}"), &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["identifying_details"]["name"], NAME);
    assert_eq!(seen["pseudonym"], PSEUDONYM);
    let referral: Value = new
        .get(&format!("/api/v1/cases/{id}"), &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(referral["id"], id.as_str());
    let raw = raw_contents(&new);
    assert!(!raw.contains("v1.k2025."), "nothing left under the old key");
    assert!(raw.contains("v1.k2026."));
    let _ = std::fs::remove_dir_all(&dir);
}
backend_test!(key_rotation_round_trips);

async fn report_and_verify(app: &TestApp) -> (Value, Value) {
    let coordinator = app.actors().comensha_coordinator;
    let report: Value = app
        .get("/api/v1/stats/report?from=2024-01-01&to=2024-12-31", &coordinator)
        .await
        .json()
        .await
        .unwrap();
    let verify: Value = app
        .get("/api/v1/audit/verify", &coordinator)
        .await
        .json()
        .await
        .unwrap();
    (report, verify)
}

async fn wait_until(app: &TestApp, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let value: Value = app.get(path, token).await.json().await.unwrap();
        if done(&value) {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{path}: condition not reached");
}

async fn disclosures_export_closure_retention_and_erasure(backend: Backend) {
    let Some(app) = on(backend, |s| s.retention.check_interval = "50ms".into()).await else {
        return;
    };
    let a = app.actors();
    let (id, submitted) = case_with_personal_data(&app).await;
    let case_url = format!("/api/v1/cases/{id}");
    let accepted = app.step(&a.csg_intake, &submitted, json!({"action": "accept"})).await;
    let sharing = app.consent(&a.fier_caseworker, &id, "data_sharing", "csg").await;

    // The receiver sees the details: on the disclosure register, with the consent as basis.
    let seen: Value = app.get(&case_url, &a.csg_intake).await.json().await.unwrap();
    assert_eq!(seen["identifying_details"]["name"], NAME);
    let disclosures: Value = app
        .get(&format!("{case_url}/disclosures"), &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    let entries = disclosures["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["organisation"], "csg");
    assert_eq!(entries[0]["actor_sub"], "intake-carla");
    assert_eq!(
        (entries[0]["basis_type"].clone(), entries[0]["basis_ref"].clone()),
        (json!("consent"), sharing["id"].clone())
    );
    // The owner's own reads are not disclosures; others cannot read the register.
    app.get(&case_url, &a.fier_caseworker).await;
    let again: Value = app
        .get(&format!("{case_url}/disclosures"), &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["items"].as_array().unwrap().len(), 1);
    expect_problem(app.get(&format!("{case_url}/disclosures"), &a.csg_intake).await, 404).await;

    // Subject access: everything in one document.
    let export: Value = app
        .get(&format!("{case_url}/export"), &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(export["case"]["identifying_details"]["phone"], PHONE);
    assert_eq!(export["case"]["pseudonym"], PSEUDONYM);
    assert_eq!(export["consents"].as_array().unwrap().len(), 2);
    assert_eq!(export["referrals"][0]["note"], NOTE);
    assert_eq!(export["referrals"][0]["history"].as_array().unwrap().len(), 2);
    assert_eq!(export["disclosures"].as_array().unwrap().len(), 1);
    assert_eq!(
        export["case"]["identification"]["decisions"][0]["basis"],
        "Signalen: controle door derden, schulden"
    );
    expect_problem(app.get(&format!("{case_url}/export"), &a.csg_intake).await, 404).await;

    // A second case, erased on request later.
    let (other, _) = case_with_personal_data(&app).await;

    // Closing needs every referral finished; then the case is read-only.
    let close = json!({"reason_code": "support_completed"});
    expect_problem(
        app.post_json(&format!("{case_url}/close"), &a.fier_caseworker, &close)
            .await,
        409,
    )
    .await;
    app.step(
        &a.csg_intake,
        &accepted,
        json!({"action": "complete", "outcome_code": "support_provided", "outcome": NOTE}),
    )
    .await;
    let closed = app
        .post_ok(&format!("{case_url}/close"), &a.fier_caseworker, &close, 200)
        .await;
    assert_eq!(
        closed["identifying_details"]["name"], NAME,
        "closing erases nothing yet"
    );
    let patch = app
        .client
        .patch(app.url(&case_url))
        .bearer_auth(&a.fier_caseworker)
        .json(&json!({"region": "utrecht"}))
        .send()
        .await
        .unwrap();
    expect_problem(patch, 409).await;
    expect_problem(
        app.post_json(&format!("{case_url}/consents"), &a.fier_caseworker, &json!({"scope": "referral", "organisation": "offlimits", "given_by": "victim", "method": "chat", "information_language": "nl"})).await,
        409,
    )
    .await;
    expect_problem(
        app.post_json(&format!("{case_url}/close"), &a.fier_caseworker, &close)
            .await,
        409,
    )
    .await;

    let (report_before, verify_before) = report_and_verify(&app).await;
    assert_eq!(verify_before["valid"], true);

    // Half a year later the retention task erases the identifying details...
    app.clock.advance(Days::days(181));
    let after = wait_until(&app, &case_url, &a.fier_caseworker, |c| {
        c.get("identifying_details").is_none()
    })
    .await;
    assert_eq!(after["pseudonym"], PSEUDONYM, "pseudonym and free text are kept longer");
    // ...two years after closure the pseudonym and free text too.
    app.clock.advance(Days::days(550));
    let after = wait_until(&app, &case_url, &a.fier_caseworker, |c| c.get("pseudonym").is_none()).await;
    assert_eq!(after["exploitation_forms"], json!(["sexual"]), "statistical facts stay");
    let export: Value = app
        .get(&format!("{case_url}/export"), &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    assert!(export["referrals"][0]["note"].is_null());
    assert!(
        export["referrals"][0]["history"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h.get("reason").is_none() && h.get("outcome").is_none())
    );
    assert!(!export.to_string().contains(NOTE));

    // Erasure on request, now, by an admin; the receivers are told without personal data.
    let erase = json!({"reason": "data_subject_request"});
    expect_problem(
        app.post_json(&format!("/api/v1/cases/{other}/erase"), &a.fier_caseworker, &erase)
            .await,
        403,
    )
    .await;
    let admin = app.token("admin-fier", "fier", &["admin"]);
    let erased = app
        .post_ok(&format!("/api/v1/cases/{other}/erase"), &admin, &erase, 200)
        .await;
    assert!(
        erased.get("identifying_details").is_none() && erased.get("pseudonym").is_none(),
        "{erased}"
    );
    let ops = app.token("admin-ops", "comensha", &["admin"]);
    let outbox: Value = app
        .get("/api/v1/admin/outbox?status=pending", &ops)
        .await
        .json()
        .await
        .unwrap();
    let erased_notice = outbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "case_erased")
        .unwrap()
        .clone();
    assert_eq!(erased_notice["recipient_org"], "csg");
    assert!(!erased_notice.to_string().contains(PSEUDONYM));
    let raw = raw_contents(&app);
    assert!(!raw.contains(PSEUDONYM));

    // Statistics and the audit chain are the same as before.
    let (report_after, verify_after) = report_and_verify(&app).await;
    assert_eq!(report_after, report_before, "retention and erasure change no statistic");
    assert!(report_after["persons"]["total"].as_i64().unwrap() >= 2);
    assert_eq!(verify_after["valid"], true);
    assert!(verify_after["entries"].as_i64().unwrap() > verify_before["entries"].as_i64().unwrap());
    let audit: Value = app
        .get(
            "/api/v1/audit?action=case.retention.identifying_details",
            &a.comensha_coordinator,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
}
backend_test!(disclosures_export_closure_retention_and_erasure);

async fn retention_command_shows_then_does(backend: Backend) {
    let Some(app) = on(backend, |_| {}).await else { return };
    let a = app.actors();
    let case = app.create_case(&a.fier_caseworker, &marked_case()).await;
    let id = case["id"].as_str().unwrap().to_string();
    app.post_ok(
        &format!("/api/v1/cases/{id}/close"),
        &a.fier_caseworker,
        &json!({"reason_code": "lost_contact"}),
        200,
    )
    .await;
    // Pretend the case was closed a year ago.
    let db = app.db();
    let mut conn = db.get().unwrap();
    let year_ago = nrm::db::Instant::from_utc(chrono::Utc::now() - Days::days(365));
    {
        use diesel::prelude::*;
        use nrm::db::schema::cases;
        diesel::update(cases::table)
            .set(cases::closed_at.eq(Some(year_ago)))
            .execute(&mut **conn)
            .unwrap();
    }
    let run = |dry: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_nrm"));
        command.current_dir(manifest_dir()).env("RUST_LOG", "error").args([
            "retention",
            "run",
            "--database-url",
            &app.database_url,
        ]);
        if dry {
            command.arg("--dry-run");
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{:?}: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert_eq!(
        run(true),
        json!({"dry_run": true, "identifying_details": 1, "free_text": 0})
    );
    let seen: Value = app
        .get(&format!("/api/v1/cases/{id}"), &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["identifying_details"]["name"], NAME, "a dry run changes nothing");
    assert_eq!(
        run(false),
        json!({"dry_run": false, "identifying_details": 1, "free_text": 0})
    );
    let seen: Value = app
        .get(&format!("/api/v1/cases/{id}"), &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    assert!(seen.get("identifying_details").is_none());
    assert_eq!(
        run(false),
        json!({"dry_run": false, "identifying_details": 0, "free_text": 0})
    );
    conn.batch_execute("SELECT 1").unwrap();
}
backend_test!(retention_command_shows_then_does);

async fn rate_limits_answer_429_with_retry_after(backend: Backend) {
    let Some(app) = on(backend, |s| {
        s.rate_limit.per_token_per_minute = 5;
        s.rate_limit.per_address_per_minute = 12;
    })
    .await
    else {
        return;
    };
    let token = app.token("busy", "fier", &["caseworker"]);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(app.get("/api/v1/organisations", &token).await.status().as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 200, 429]);
    let limited = app.get("/api/v1/organisations", &token).await;
    let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    expect_problem(limited, 429).await;
    // Other tokens from the same address, until the address limit.
    let mut statuses = Vec::new();
    for n in 0..6 {
        statuses.push(
            app.get(
                "/api/v1/organisations",
                &app.token(&format!("user-{n}"), "fier", &["caseworker"]),
            )
            .await
            .status()
            .as_u16(),
        );
    }
    // 7 requests so far from this address (429s count too): 5 more fit in its 12.
    assert_eq!(
        statuses,
        vec![200, 200, 200, 200, 200, 429],
        "the address allows 12 a minute"
    );
    // Health checks are never limited.
    assert_eq!(
        app.client.get(app.url("/health/live")).send().await.unwrap().status(),
        200
    );
    let response = app.client.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(
        response.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
}
backend_test!(rate_limits_answer_429_with_retry_after);

/// The service as a process at the most verbose log level, driven through every path that
/// carries personal data: not one marker reaches its log.
async fn logs_carry_no_personal_data(backend: Backend) {
    let (database_url, _guard) = crate::helpers::fresh_database(backend);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nrm"))
        .current_dir(manifest_dir())
        .env("RUST_LOG", "trace")
        .env("NRM__LOG__FORMAT", "json")
        .env("NRM__JWT__HS256_SECRET", crate::helpers::TEST_HS256_SECRET)
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &database_url,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = |sub: &str, org: &str, role: &str| {
        crate::helpers::sign_hs256(
            &crate::helpers::claims(sub, org, &[role]),
            crate::helpers::TEST_HS256_SECRET,
            None,
        )
    };
    let (cw, csg) = (token("cw", "fier", "caseworker"), token("in", "csg", "intake"));
    let post = |path: String, token: String, body: Value| {
        let client = client.clone();
        let base = base.clone();
        async move {
            client
                .post(format!("{base}{path}"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let case: Value = post("/api/v1/cases".into(), cw.clone(), marked_case())
        .await
        .json()
        .await
        .unwrap();
    let id = case["id"].as_str().unwrap().to_string();
    post(
        format!("/api/v1/cases/{id}/identification"),
        cw.clone(),
        json!({"decision": "reasonable_grounds", "basis": NOTE}),
    )
    .await;
    for scope in ["referral", "data_sharing"] {
        post(
            format!("/api/v1/cases/{id}/consents"),
            cw.clone(),
            json!({"scope": scope, "organisation": "csg", "given_by": "victim", "method": "chat", "information_language": "nl"}),
        )
        .await;
    }
    let referral: Value = post(
        format!("/api/v1/cases/{id}/referrals"),
        cw.clone(),
        json!({"to_organisation": "csg", "services": ["psychosocial_support"], "urgency": "routine", "note": NOTE}),
    )
    .await
    .json()
    .await
    .unwrap();
    let rid = referral["id"].as_str().unwrap().to_string();
    let mut version = referral["version"].as_i64().unwrap();
    for (token, body) in [
        (cw.clone(), json!({"action": "submit"})),
        (csg.clone(), json!({"action": "accept"})),
    ] {
        let response = client
            .post(format!("{base}/api/v1/referrals/{rid}/transitions"))
            .bearer_auth(token)
            .header("If-Match", format!("\"{version}\""))
            .json(&body)
            .send()
            .await
            .unwrap();
        version = response.json::<Value>().await.unwrap()["version"].as_i64().unwrap();
    }
    for (path, token) in [
        (format!("/api/v1/cases/{id}"), &csg),
        (format!("/api/v1/cases/{id}/export"), &cw),
    ] {
        let body = client
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.contains(NAME), "{path} shows the details to the entitled caller");
    }
    post("/api/v1/cases/search".into(), cw.clone(), json!({"name": NAME})).await;
    // Bad input that contains personal data must not echo into logs either.
    post(
        "/api/v1/cases".into(),
        cw.clone(),
        json!({"reporter_role": PSEUDONYM, "pseudonym": 5, "identifying_details": {"email": NAME}}),
    )
    .await;
    let _ = child.kill();
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    let _ = child.wait();
    assert!(
        log.contains("request handled"),
        "the log was captured at trace level:\n{}",
        &log[..log.len().min(2000)]
    );
    assert!(log.lines().count() > 50, "trace logging is verbose");
    for marker in [
        NAME,
        "Qwertyvanger",
        "9876 5432",
        PSEUDONYM,
        NOTE,
        "Kanaalweg",
        &cw[cw.len() - 20..],
    ] {
        assert!(!log.contains(marker), "`{marker}` reached the log");
    }
}
backend_test!(logs_carry_no_personal_data);

//! Scale-out: two `nrm serve` processes on one PostgreSQL database, racing on the same
//! referrals. No lost update, each transition applied once, the audit chain intact, each
//! notification sent once. And when one of several processes is killed, the once-per-database
//! tasks it led pass to a survivor, which does their work.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::{self, Backend, TEST_HS256_SECRET, manifest_dir};
use crate::smtp::SmtpSink;

struct Instance {
    child: Child,
    base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn nrm(database_url: &str, smtp_port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nrm"));
    command
        .current_dir(manifest_dir())
        .env("RUST_LOG", "warn")
        .env("NRM__JWT__HS256_SECRET", TEST_HS256_SECRET)
        .env("NRM__SMTP__HOST", "127.0.0.1")
        .env("NRM__SMTP__PORT", smtp_port.to_string())
        .env("NRM__SMTP__TLS", "none")
        .env("NRM__NOTIFICATIONS__POLL_INTERVAL", "50ms")
        .env("NRM__RATE_LIMIT__PER_TOKEN_PER_MINUTE", "0")
        .env("NRM__RATE_LIMIT__PER_ADDRESS_PER_MINUTE", "0")
        .env("DATABASE_URL", database_url)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

async fn start(database_url: &str, smtp_port: u16) -> Instance {
    let port = free_port();
    let child = nrm(database_url, smtp_port)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .spawn()
        .unwrap();
    let instance = Instance {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client
            .get(format!("{}/health/ready", instance.base))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return instance;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("instance on port {port} did not become ready");
}

fn token(sub: &str, org: &str, role: &str) -> String {
    helpers::sign_hs256(&helpers::claims(sub, org, &[role]), TEST_HS256_SECRET, None)
}

async fn post(client: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let response = client.post(url).bearer_auth(token).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

async fn transition(client: &reqwest::Client, base: &str, token: &str, referral: &Value, body: Value) -> (u16, Value) {
    let response = client
        .post(format!(
            "{base}/api/v1/referrals/{}/transitions",
            referral["id"].as_str().unwrap()
        ))
        .bearer_auth(token)
        .header("If-Match", format!("\"{}\"", referral["version"]))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Two `nrm serve` processes on one fresh database, with an SMTP sink; migrations run once,
/// as a release step, before the instances start.
async fn two_instances(backend: Backend) -> (helpers::DatabaseGuard, String, SmtpSink, Instance, Instance) {
    let (database_url, guard) = helpers::fresh_database(backend);
    let sink = SmtpSink::start().await;
    let migrated = nrm(&database_url, sink.port).arg("migrate").status().unwrap();
    assert!(migrated.success());
    let a = start(&database_url, sink.port).await;
    let b = start(&database_url, sink.port).await;
    (guard, database_url, sink, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_postgres_apply_each_transition_once() {
    if !helpers::postgres_enabled() {
        return;
    }
    let (_guard, _, sink, a, b) = two_instances(Backend::Postgres).await;
    let client = reqwest::Client::new();
    let (cw, intake, coordinator) = (
        token("cw", "fier", "caseworker"),
        token("in", "csg", "intake"),
        token("fp", "comensha", "coordinator"),
    );

    // Five referrals handed over, half through each instance.
    let mut referrals = Vec::new();
    for n in 0..5 {
        let base = if n % 2 == 0 { &a.base } else { &b.base };
        let case = post(&client, format!("{base}/api/v1/cases"), &cw, helpers::adult_case()).await;
        let id = case["id"].as_str().unwrap();
        post(
            &client,
            format!("{base}/api/v1/cases/{id}/identification"),
            &cw,
            json!({"decision": "reasonable_grounds", "basis": "b"}),
        )
        .await;
        post(
            &client,
            format!("{base}/api/v1/cases/{id}/consents"),
            &cw,
            json!({"scope": "referral", "organisation": "csg", "given_by": "victim", "method": "chat", "information_language": "nl"}),
        )
        .await;
        let draft = post(
            &client,
            format!("{base}/api/v1/cases/{id}/referrals"),
            &cw,
            json!({"to_organisation": "csg", "services": ["psychosocial_support"], "urgency": "routine"}),
        )
        .await;
        let (status, submitted) = transition(&client, base, &cw, &draft, json!({"action": "submit"})).await;
        assert_eq!(status, 200);
        referrals.push(submitted);
    }

    // The race: eight identical accepts per referral, four through each instance, at once.
    let mut handles = Vec::new();
    for referral in &referrals {
        for n in 0..8 {
            let base = if n % 2 == 0 { a.base.clone() } else { b.base.clone() };
            let (client, intake, referral) = (reqwest::Client::new(), intake.clone(), referral.clone());
            handles.push(tokio::spawn(async move {
                (
                    referral["id"].as_str().unwrap().to_string(),
                    transition(&client, &base, &intake, &referral, json!({"action": "accept"}))
                        .await
                        .0,
                )
            }));
        }
    }
    let mut wins: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for handle in handles {
        let (id, status) = handle.await.unwrap();
        wins.entry(id).or_default().push(status);
    }
    for (id, statuses) in &wins {
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{id}: {statuses:?}");
        assert!(statuses.iter().all(|s| *s == 200 || *s == 412), "{id}: {statuses:?}");
    }

    // The rest of the handover, alternating instances; each step exactly once in history.
    for (n, referral) in referrals.iter().enumerate() {
        let (first, second) = if n % 2 == 0 {
            (&a.base, &b.base)
        } else {
            (&b.base, &a.base)
        };
        let current: Value = client
            .get(format!("{first}/api/v1/referrals/{}", referral["id"].as_str().unwrap()))
            .bearer_auth(&intake)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(current["state"], "accepted");
        let (status, in_care) = transition(&client, first, &intake, &current, json!({"action": "start_care"})).await;
        assert_eq!(status, 200);
        let (status, done) = transition(
            &client,
            second,
            &intake,
            &in_care,
            json!({"action": "complete", "outcome_code": "support_provided", "outcome": "o"}),
        )
        .await;
        assert_eq!(status, 200);
        let actions: Vec<&str> = done["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, vec!["submit", "accept", "start_care", "complete"]);
    }

    // Notifications: submitted (to CSG), accepted and completed (to Fier): 15, each once,
    // although both instances run a delivery worker.
    let messages = sink.wait_for(15, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let messages = if sink.messages().len() > messages.len() {
        sink.messages()
    } else {
        messages
    };
    let mut subjects: Vec<String> = messages.iter().map(|m| m.subject()).collect();
    assert_eq!(subjects.len(), 15, "{subjects:#?}");
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 15, "no notification sent twice");

    // The audit chain stayed one chain.
    let verdict: Value = client
        .get(format!("{}/api/v1/audit/verify", b.base))
        .bearer_auth(&coordinator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert!(verdict["entries"].as_i64().unwrap() >= 5 * 8);
    drop(a);
    drop(b);
}

/// Every task with one leader per database, sorted as `leads` sorts.
const SINGLETON_TASKS: [&str; 4] = ["deadline-watcher", "retention", "roll-ups", "sealer"];

async fn leads(client: &reqwest::Client, instance: &Instance) -> Vec<String> {
    helpers::leads_at(client, &instance.base).await
}

async fn verify_audit(client: &reqwest::Client, instance: &Instance, token: &str) -> Value {
    let response = client
        .get(format!("{}/api/v1/audit/verify", instance.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Two processes share the singleton tasks; the one leading the sealer is killed (SIGKILL:
/// no shutdown, its locks go with the process or its connections), and the survivor takes
/// over every task and seals new audit entries without anyone reading the trail.
async fn a_killed_leader_hands_its_tasks_to_the_survivor(backend: Backend) {
    use diesel::prelude::*;
    use nrm::db::schema::audit_log;

    // Default intervals (the deadline watcher's minute, retention's hour): a standby tries
    // for each task every second whatever its interval (`leader::STANDBY_RETRY`).
    let (_guard, database_url, _sink, a, b) = two_instances(backend).await;
    let client = reqwest::Client::new();
    let (cw, coordinator) = (
        token("cw", "fier", "caseworker"),
        token("fp", "comensha", "coordinator"),
    );

    // Each task has exactly one leader of the two.
    let start = std::time::Instant::now();
    let a_leads_sealer = loop {
        let (one, two) = (leads(&client, &a).await, leads(&client, &b).await);
        let mut all: Vec<&str> = one.iter().chain(&two).map(String::as_str).collect();
        all.sort();
        if all == SINGLETON_TASKS {
            break one.iter().any(|t| t == "sealer");
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "each task led once: a leads {one:?}, b {two:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (mut leader, survivor) = if a_leads_sealer { (a, b) } else { (b, a) };
    assert_ne!(
        leads(&client, &survivor).await,
        SINGLETON_TASKS,
        "the survivor does not lead everything yet"
    );

    // The sealer's leader dies without a word.
    leader.child.kill().unwrap();
    leader.child.wait().unwrap();
    assert!(
        client
            .get(format!("{}/health/ready", leader.base))
            .send()
            .await
            .is_err(),
        "the killed instance no longer answers"
    );
    drop(leader);

    // The survivor takes over what the dead instance led.
    let start = std::time::Instant::now();
    loop {
        let now = leads(&client, &survivor).await;
        if now == SINGLETON_TASKS {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the survivor leads every task: it leads {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // And does the work: a change audited through the survivor is sealed into the chain by
    // its sealer, seen in the database without reading the trail (which would seal first).
    let before = verify_audit(&client, &survivor, &coordinator).await;
    assert_eq!(before["valid"], true, "{before}");
    let case = post(
        &client,
        format!("{}/api/v1/cases", survivor.base),
        &cw,
        helpers::adult_case(),
    )
    .await;
    let case_id = case["id"].as_str().unwrap().to_string();
    let mut conn = nrm::startup::connect_once(&helpers::test_settings(&database_url)).unwrap();
    let start = std::time::Instant::now();
    loop {
        let sealed: i64 = audit_log::table
            .filter(audit_log::action.eq("case.create"))
            .filter(audit_log::resource_id.eq(&case_id))
            .count()
            .get_result(&mut conn)
            .unwrap();
        let waiting = nrm::db::audit::unsealed(&mut conn).unwrap();
        if sealed == 1 && waiting == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the survivor's sealer seals the new entry: {sealed} sealed, {waiting} waiting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(conn);
    let after = verify_audit(&client, &survivor, &coordinator).await;
    assert_eq!(after["valid"], true, "{after}");
    assert_eq!(after["overdue_unsealed"], 0, "{after}");
    assert!(
        after["entries"].as_u64().unwrap() > before["entries"].as_u64().unwrap(),
        "the chain grew: before {before}, after {after}"
    );
    drop(survivor);
}
backend_test!(a_killed_leader_hands_its_tasks_to_the_survivor);

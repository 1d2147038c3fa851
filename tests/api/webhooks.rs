//! Webhooks, end to end, with a receiver on loopback written from the Standard Webhooks
//! specification alone (standardwebhooks.com, "Verifying webhook signatures"): it checks the
//! three headers and every signature, refuses stale timestamps, and processes each
//! `webhook-id` once. The service retries over an outage, disables an endpoint that answers
//! 410 or keeps failing, and signs with both secrets during a rotation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::backend_test;
use crate::helpers::{Backend, TestApp, expect_problem, on};

/// How the receiver answers a verified delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    /// 503 for everything: an outage.
    Down,
    /// Processes the delivery, then answers 500 as if the answer were lost on the way.
    LoseAnswers,
    Gone,
}

#[derive(Default)]
struct Seen {
    /// Secrets the receiver knows, as the admin stored them (`whsec_...`).
    secrets: Vec<String>,
    mode: Option<Mode>,
    /// Every attempt's webhook-id, in order.
    attempts: Vec<String>,
    bad_signatures: usize,
    /// webhook-id → (event type, body) of each delivery processed, once per id.
    processed: BTreeMap<String, (String, String)>,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    seen: Arc<Mutex<Seen>>,
}

impl Receiver {
    async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Seen {
            mode: Some(Mode::Ok),
            ..Seen::default()
        }));
        let state = web::Data::new(Arc::clone(&seen));
        let server = HttpServer::new(move || App::new().app_data(state.clone()).default_service(web::to(receive)))
            .workers(1)
            .bind("127.0.0.1:0")
            .expect("bind the receiver");
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        Self {
            url: format!("http://127.0.0.1:{port}/hooks/nrm"),
            seen,
        }
    }

    fn set(&self, change: impl FnOnce(&mut Seen)) {
        change(&mut self.seen.lock().unwrap());
    }

    fn processed_types(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        let mut types: Vec<String> = seen.processed.values().map(|(t, _)| t.clone()).collect();
        types.sort();
        types
    }
}

/// The specification's verification: `id.timestamp.body`, HMAC-SHA256 with the base64 key
/// after `whsec_`, compared against each `v1,` signature of the header.
fn verified(secrets: &[String], id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let signed = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body].concat();
    secrets.iter().any(|secret| {
        let key = BASE64.decode(secret.trim_start_matches("whsec_")).expect("secret");
        header.split(' ').any(|signature| {
            let Some(value) = signature.strip_prefix("v1,") else {
                return false;
            };
            let Ok(expected) = BASE64.decode(value) else {
                return false;
            };
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
            mac.update(&signed);
            mac.verify_slice(&expected).is_ok()
        })
    })
}

async fn receive(req: HttpRequest, body: web::Bytes, seen: web::Data<Arc<Mutex<Seen>>>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (Some(id), Some(timestamp), Some(signature)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return HttpResponse::BadRequest().finish();
    };
    let mut seen = seen.lock().unwrap();
    seen.attempts.push(id.clone());
    // A timestamp more than five minutes off is refused (replay protection).
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() <= 300);
    if !fresh || !verified(&seen.secrets, &id, &timestamp, &body, &signature) {
        seen.bad_signatures += 1;
        return HttpResponse::Unauthorized().finish();
    }
    match seen.mode.unwrap_or(Mode::Ok) {
        Mode::Down => return HttpResponse::ServiceUnavailable().finish(),
        Mode::Gone => return HttpResponse::Gone().finish(),
        Mode::Ok | Mode::LoseAnswers => {}
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let event: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    // Exactly one processing per webhook-id, whatever arrives again.
    seen.processed
        .entry(id)
        .or_insert_with(|| (event["type"].as_str().unwrap_or("?").to_string(), text));
    if seen.mode == Some(Mode::LoseAnswers) {
        return HttpResponse::InternalServerError().finish();
    }
    HttpResponse::NoContent().finish()
}

fn fast_webhooks(s: &mut nrm::config::Settings) {
    s.webhooks.allowed_addresses = vec!["127.0.0.1".into()];
    s.webhooks.poll_interval = "50ms".into();
    s.webhooks.retry_base = "2s".into();
    s.webhooks.retry_max = "10s".into();
}

const ALL_EVENTS: [&str; 10] = [
    "referral.received",
    "referral.acknowledged",
    "referral.accepted",
    "referral.declined",
    "referral.in_care",
    "referral.completed",
    "referral.withdrawn",
    "referral.consent_withdrawn",
    "referral.step_overdue",
    "three_way_conversation.requested",
];

/// Subscribes `receiver` for `org` and teaches it the secret; returns the subscription.
async fn subscribe(app: &TestApp, org: &str, receiver: &Receiver) -> Value {
    let admin = app.token(&format!("admin-{org}"), org, &["admin"]);
    let made = app
        .post_ok(
            "/api/v1/webhooks",
            &admin,
            &json!({"url": receiver.url, "event_types": ALL_EVENTS}),
            201,
        )
        .await;
    let secret = made["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    receiver.set(|s| s.secrets.push(secret));
    made
}

/// Moves the app's clock on while `done` is false, so due retries come round; at most 30 s
/// of real time.
async fn until(app: &TestApp, step: chrono::Duration, done: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(30), "timed out waiting");
        app.clock.advance(step);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The whole handover: each party's system hears each event of it once after
/// de-duplication by webhook-id, across a minute's outage of CSG's receiver and a lost answer.
async fn a_whole_handover_is_heard_once_per_event_across_an_outage(backend: Backend) {
    let Some(app) = on(backend, fast_webhooks).await else {
        return;
    };
    let (fier, csg) = (Receiver::start().await, Receiver::start().await);
    subscribe(&app, "fier", &fier).await;
    let csg_subscription = subscribe(&app, "csg", &csg).await;
    csg.set(|s| s.mode = Some(Mode::Down));

    let a = app.actors();
    let (_, mut referral) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    for step in [
        json!({"action": "acknowledge"}),
        json!({"action": "accept"}),
        json!({"action": "start_care"}),
        json!({"action": "complete", "outcome_code": "support_provided", "outcome": "Afgerond"}),
    ] {
        referral = app.step(&a.csg_intake, &referral, step).await;
    }
    // A minute of outage on the app's clock: every attempt in it fails.
    until(&app, chrono::Duration::seconds(5), || {
        csg.seen.lock().unwrap().attempts.len() >= 10
    })
    .await;
    app.clock.advance(chrono::Duration::seconds(60));
    assert!(csg.processed_types().is_empty(), "nothing is processed while down");
    // Back, but the first answers get lost: those come again, with the same webhook-id.
    csg.set(|s| s.mode = Some(Mode::LoseAnswers));
    until(&app, chrono::Duration::seconds(5), || csg.processed_types().len() >= 2).await;
    csg.set(|s| s.mode = Some(Mode::Ok));
    let heard_by_csg = [
        "referral.accepted",
        "referral.acknowledged",
        "referral.completed",
        "referral.in_care",
        "referral.received",
    ];
    until(&app, chrono::Duration::seconds(5), || {
        csg.processed_types().len() == heard_by_csg.len()
    })
    .await;
    until(&app, chrono::Duration::seconds(5), || fier.processed_types().len() == 4).await;
    // Let any stray retry arrive before counting.
    app.clock.advance(chrono::Duration::seconds(30));
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert_eq!(csg.processed_types(), heard_by_csg);
    assert_eq!(
        fier.processed_types(),
        [
            "referral.accepted",
            "referral.acknowledged",
            "referral.completed",
            "referral.in_care"
        ],
        "the sender hears every answer, not its own submission"
    );
    let (bad_signatures, attempts, processed) = {
        let seen = csg.seen.lock().unwrap();
        (seen.bad_signatures, seen.attempts.clone(), seen.processed.clone())
    };
    assert_eq!(bad_signatures, 0);
    assert!(attempts.len() > processed.len(), "retries happened");
    for id in &attempts {
        assert!(
            processed.contains_key(id),
            "every retry carried a delivery's own webhook-id"
        );
    }
    let referral_id = referral["id"].as_str().unwrap();
    for (event, body) in processed.values() {
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(&body["type"], event);
        assert_eq!(body["data"]["referral_id"], referral_id);
        assert_eq!(
            body["data"]["links"]["referral"],
            format!(
                "{}/api/v1/referrals/{referral_id}",
                app.settings.notifications.public_base_url
            )
        );
        // Thin: type, timestamp, ids and links, nothing about the person.
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["data", "timestamp", "type"]);
        let text = body.to_string();
        for secret in ["zonnebloem88", "Graag contact", "Afgerond", "sexual", "amsterdam"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    // The delivery log shows it: delivered, with the attempts and the last answer.
    let csg_admin = app.token("admin-csg", "csg", &["admin"]);
    let log: Value = app
        .get(
            &format!(
                "/api/v1/webhooks/{}/deliveries",
                csg_subscription["id"].as_str().unwrap()
            ),
            &csg_admin,
        )
        .await
        .json()
        .await
        .unwrap();
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 5, "{log}");
    for item in items {
        assert_eq!(item["status"], "delivered", "{item}");
        assert!(item["attempts"].as_i64().unwrap() >= 2, "{item}");
        assert_eq!(item["last_status"], 204);
        assert!(item["last_latency_ms"].is_number());
    }
    // Another organisation's admin does not see it; nor does CSG's intake.
    let fier_admin = app.token("admin-fier", "fier", &["admin"]);
    let path = format!(
        "/api/v1/webhooks/{}/deliveries",
        csg_subscription["id"].as_str().unwrap()
    );
    expect_problem(app.get(&path, &fier_admin).await, 404).await;
    expect_problem(app.get(&path, &a.csg_intake).await, 403).await;
}
backend_test!(a_whole_handover_is_heard_once_per_event_across_an_outage);

/// 410 disables at once; an endpoint failing longer than `disable_after` is disabled and its
/// contact hears it by e-mail; resuming starts afresh.
async fn endpoints_that_are_gone_or_keep_failing_are_disabled(backend: Backend) {
    let Some(app) = on(backend, |s| {
        fast_webhooks(s);
        s.webhooks.disable_after = "2m".into();
    })
    .await
    else {
        return;
    };
    let (gone, failing) = (Receiver::start().await, Receiver::start().await);
    let gone_subscription = subscribe(&app, "csg", &gone).await;
    gone.set(|s| s.mode = Some(Mode::Gone));
    let admin = app.token("admin-slachtofferhulp", "slachtofferhulp", &["admin"]);
    let failing_subscription = app
        .post_ok(
            "/api/v1/webhooks",
            &admin,
            &json!({"url": failing.url, "event_types": ["referral.received"], "contact_email": "beheer@shn.example"}),
            201,
        )
        .await;
    failing.set(|s| {
        s.secrets
            .push(failing_subscription["secret"].as_str().unwrap().to_string());
        s.mode = Some(Mode::Down);
    });
    app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    app.submitted_referral("slachtofferhulp", &["practical_support"]).await;

    let csg_admin = app.token("admin-csg", "csg", &["admin"]);
    let gone_path = format!("/api/v1/webhooks/{}", gone_subscription["id"].as_str().unwrap());
    until(&app, chrono::Duration::seconds(1), || {
        !gone.seen.lock().unwrap().attempts.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let view: Value = app.get(&gone_path, &csg_admin).await.json().await.unwrap();
    assert_eq!(view["status"], "disabled", "{view}");
    assert_eq!(view["disabled_reason"], "gone");
    assert_eq!(gone.seen.lock().unwrap().attempts.len(), 1, "410 is not retried");

    let failing_path = format!("/api/v1/webhooks/{}", failing_subscription["id"].as_str().unwrap());
    let disabled = || async {
        let view: Value = app.get(&failing_path, &admin).await.json().await.unwrap();
        view["status"] == "disabled"
    };
    let started = std::time::Instant::now();
    while !disabled().await {
        assert!(started.elapsed() < Duration::from_secs(30), "never disabled");
        app.clock.advance(chrono::Duration::seconds(10));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let view: Value = app.get(&failing_path, &admin).await.json().await.unwrap();
    assert_eq!(view["disabled_reason"], "failing");
    let attempts = failing.seen.lock().unwrap().attempts.len();
    assert!(attempts >= 2, "retried before giving up: {attempts}");
    // The contact address hears it, without any case data.
    let outbox: Value = app.get("/api/v1/admin/outbox", &admin).await.json().await.unwrap();
    let mail = outbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "webhook_disabled")
        .unwrap_or_else(|| panic!("no webhook_disabled mail in {outbox}"));
    assert_eq!(mail["recipient"], "beheer@shn.example");
    // Disabled: nothing more is tried, even as time passes.
    app.clock.advance(chrono::Duration::hours(1));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(failing.seen.lock().unwrap().attempts.len(), attempts);

    // Resumed, a new event is delivered again.
    failing.set(|s| s.mode = Some(Mode::Ok));
    let resumed = app
        .post_ok(&format!("{failing_path}/resume"), &admin, &json!({}), 200)
        .await;
    assert_eq!(resumed["status"], "active");
    assert!(resumed["failing_since"].is_null());
    app.submitted_referral("slachtofferhulp", &["practical_support"]).await;
    until(&app, chrono::Duration::seconds(1), || {
        failing.processed_types().len() == 1
    })
    .await;
}
backend_test!(endpoints_that_are_gone_or_keep_failing_are_disabled);

/// A rotation signs with both secrets for the overlap, then with the new one only; a paused
/// subscription's deliveries wait for its resumption.
async fn rotation_overlaps_and_pause_holds_deliveries(backend: Backend) {
    let Some(app) = on(backend, fast_webhooks).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let subscription = subscribe(&app, "csg", &receiver).await;
    let path = format!("/api/v1/webhooks/{}", subscription["id"].as_str().unwrap());
    let admin = app.token("admin-csg", "csg", &["admin"]);
    let old_secret = subscription["secret"].as_str().unwrap().to_string();

    let rotated = app
        .post_ok(
            &format!("{path}/rotate-secret"),
            &admin,
            &json!({"overlap_seconds": 3600}),
            200,
        )
        .await;
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, old_secret);
    assert!(rotated["previous_secret_until"].is_string());
    // The receiver still holds only the old secret: within the overlap it verifies.
    app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    until(&app, chrono::Duration::seconds(1), || {
        receiver.processed_types().len() == 1
    })
    .await;
    // It switches to the new one: that verifies too.
    receiver.set(|s| s.secrets = vec![new_secret.clone()]);
    app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    until(&app, chrono::Duration::seconds(1), || {
        receiver.processed_types().len() == 2
    })
    .await;
    // After the overlap the old secret signs nothing more.
    app.clock.advance(chrono::Duration::hours(2));
    receiver.set(|s| s.secrets = vec![old_secret.clone()]);
    app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    until(&app, chrono::Duration::seconds(1), || {
        receiver.seen.lock().unwrap().bad_signatures > 0
    })
    .await;
    receiver.set(|s| s.secrets = vec![new_secret.clone()]);
    until(&app, chrono::Duration::seconds(5), || {
        receiver.processed_types().len() == 3
    })
    .await;
    expect_problem(
        app.post_json(
            &format!("{path}/rotate-secret"),
            &admin,
            &json!({"overlap_seconds": 864_000}),
        )
        .await,
        422,
    )
    .await;

    // Paused: the event waits; resumed: it goes out.
    app.post_ok(&format!("{path}/pause"), &admin, &json!({}), 200).await;
    app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    app.clock.advance(chrono::Duration::seconds(30));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.processed_types().len(), 3, "nothing goes out while paused");
    app.post_ok(&format!("{path}/resume"), &admin, &json!({}), 200).await;
    until(&app, chrono::Duration::seconds(1), || {
        receiver.processed_types().len() == 4
    })
    .await;

    // Deleted: gone from the list, and deleting again answers the same.
    let deleted = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let again = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 204);
    expect_problem(app.get(&path, &admin).await, 404).await;
    let list: Value = app.get("/api/v1/webhooks", &admin).await.json().await.unwrap();
    assert_eq!(list["items"], json!([]));
}
backend_test!(rotation_overlaps_and_pause_holds_deliveries);

/// Outbound safety: https and public addresses only. A literal private address is refused
/// when subscribing; a host name that resolves to one fails at delivery, after resolution.
async fn deliveries_never_reach_private_addresses(backend: Backend) {
    let Some(app) = on(backend, |s| s.webhooks.poll_interval = "50ms".into()).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let admin = app.token("admin-csg", "csg", &["admin"]);
    for url in [
        receiver.url.clone(),
        "https://127.0.0.1/hook".into(),
        "https://10.0.0.8/hook".into(),
        "https://[::1]/hook".into(),
        "https://169.254.169.254/latest/meta-data".into(),
        "http://hooks.csg.example/nrm".into(),
        "https://user:secret@hooks.csg.example/nrm".into(),
    ] {
        let problem = expect_problem(
            app.post_json(
                "/api/v1/webhooks",
                &admin,
                &json!({"url": url, "event_types": ["referral.received"]}),
            )
            .await,
            422,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "url", "{url}: {problem}");
    }
    // `localhost` is a name: accepted, then refused once it resolves to loopback.
    let port = receiver.url.split(':').nth(2).unwrap().split('/').next().unwrap();
    let made = app
        .post_ok(
            "/api/v1/webhooks",
            &admin,
            &json!({"url": format!("https://localhost:{port}/hooks/nrm"), "event_types": ["referral.received"]}),
            201,
        )
        .await;
    app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let log_path = format!("/api/v1/webhooks/{}/deliveries", made["id"].as_str().unwrap());
    let started = std::time::Instant::now();
    let item = loop {
        let log: Value = app.get(&log_path, &admin).await.json().await.unwrap();
        let item = log["items"][0].clone();
        if item["attempts"].as_i64().unwrap_or(0) > 0 {
            break item;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no attempt: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(item["status"], "pending");
    assert!(item["last_status"].is_null());
    assert!(
        item["last_error"]
            .as_str()
            .unwrap()
            .contains("no address deliveries may reach"),
        "{item}"
    );
    assert!(
        receiver.seen.lock().unwrap().attempts.is_empty(),
        "nothing reached loopback"
    );
}
backend_test!(deliveries_never_reach_private_addresses);

//! Notifications through a real SMTP server on loopback: who gets what, never personal data,
//! deadlines and escalation with a controlled clock, outages, dead letters, rollbacks and
//! two delivery workers on one database.

use std::time::Duration;

use chrono::Duration as Hours;
use diesel::connection::SimpleConnection;
use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::{Backend, TestApp, adult_case, expect_problem, on, postgres_enabled, spawn_app_on, with_smtp};
use crate::smtp::{Received, SmtpSink};

const WAIT: Duration = Duration::from_secs(10);

/// Everything the people in these cases said that must never travel by mail.
const SECRETS: [&str; 9] = [
    "zonnebloem88",
    "Maria Geheim",
    "0612345678",
    "Graag contact via chat",
    "Nazorg gegeven",
    "Geen plek",
    "sexual",
    "seksuele uitbuiting",
    "exploitation_forms",
];

fn assert_clean(message: &Received) {
    let decoded = message.body();
    for secret in SECRETS {
        assert!(
            !message.data.contains(secret),
            "mail leaks `{secret}`:\n{}",
            message.data
        );
        assert!(!decoded.contains(secret), "mail leaks `{secret}`:\n{decoded}");
    }
}

fn to_of(message: &Received) -> &str {
    message.to.first().map(String::as_str).unwrap_or("")
}

async fn mails_for_every_step_carry_no_personal_data(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(app) = on(backend, |s| with_smtp(s, sink.port)).await else {
        return;
    };
    let a = app.actors();
    let mut body = adult_case();
    body["identifying_details"] = json!({"name": "Maria Geheim", "phone": "0612345678"});
    let case = app.create_case(&a.fier_caseworker, &body).await;
    let id = case["id"].as_str().unwrap();
    app.reasonable_grounds(&a.fier_caseworker, id).await;
    app.consent(&a.fier_caseworker, id, "referral", "csg").await;
    let draft = app
        .draft_referral(&a.fier_caseworker, id, "csg", &["acute_sexual_violence_care"])
        .await;
    let submitted = app.step(&a.fier_caseworker, &draft, json!({"action": "submit"})).await;
    let reference = format!(
        "NRM-{}",
        &submitted["id"].as_str().unwrap().replace('-', "")[24..].to_uppercase()
    );

    let mails = sink.wait_for(1, WAIT).await;
    assert_eq!(mails.len(), 1);
    let new = &mails[0];
    assert_eq!(to_of(new), "intake@centrumseksueelgeweld.example");
    assert!(new.from.contains("noreply@nrm.example"));
    assert!(new.subject().contains(&reference), "{}", new.subject());
    assert!(new.subject().starts_with("[nrm] Nieuwe verwijzing / New referral"));
    let body = new.body();
    let dutch = body
        .find("Fier (Chat met Fier, Keerpunt) heeft een verwijzing naar Centrum Seksueel Geweld ingediend")
        .unwrap();
    let english = body.find("submitted a referral to Centrum Seksueel Geweld").unwrap();
    assert!(dutch < english, "Dutch first");
    assert!(body.contains(&format!(
        "https://nrm.test.example/referrals/{}",
        submitted["id"].as_str().unwrap()
    )));
    assert_clean(new);

    // The closed loop: each answer goes to the sender.
    let acknowledged = app
        .step(&a.csg_intake, &submitted, json!({"action": "acknowledge"}))
        .await;
    let accepted = app
        .step(&a.csg_intake, &acknowledged, json!({"action": "accept"}))
        .await;
    let in_care = app
        .step(&a.csg_intake, &accepted, json!({"action": "start_care"}))
        .await;
    app.step(
        &a.csg_intake,
        &in_care,
        json!({"action": "complete", "outcome_code": "support_provided", "outcome": "Nazorg gegeven"}),
    )
    .await;
    // A second referral, declined with a reason.
    app.consent(&a.fier_caseworker, id, "referral", "slachtofferhulp").await;
    let other = app
        .draft_referral(&a.fier_caseworker, id, "slachtofferhulp", &["legal_support"])
        .await;
    let other = app.step(&a.fier_caseworker, &other, json!({"action": "submit"})).await;
    app.step(
        &a.shn_intake,
        &other,
        json!({"action": "decline", "reason_code": "no_capacity", "reason": "Geen plek"}),
    )
    .await;

    sink.wait_for(6, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mails = sink.messages();
    let subjects: Vec<(String, String)> = mails.iter().map(|m| (to_of(m).to_string(), m.subject())).collect();
    let expect = [
        ("intake@centrumseksueelgeweld.example", "Nieuwe verwijzing"),
        ("intake@fier.example", "Verwijzing ontvangen"),
        ("intake@fier.example", "Verwijzing geaccepteerd"),
        ("intake@fier.example", "Verwijzing afgerond"),
        ("intake@slachtofferhulp.example", "Nieuwe verwijzing"),
        ("intake@fier.example", "Verwijzing afgewezen"),
    ];
    for (to, title) in expect {
        assert!(
            subjects.iter().any(|(t, s)| t == to && s.contains(title)),
            "no `{title}` to {to} in {subjects:?}"
        );
    }
    // start_care tells nobody: the sender hears at completion.
    assert_eq!(mails.len(), 6, "{subjects:?}");
    for mail in &mails {
        assert_clean(mail);
    }

    // Consent withdrawal tells the organisation holding the open referral on it.
    let offlimits_consent = app.consent(&a.fier_caseworker, id, "referral", "offlimits").await;
    let to_offlimits = app
        .draft_referral(&a.fier_caseworker, id, "offlimits", &["image_removal"])
        .await;
    app.step(&a.fier_caseworker, &to_offlimits, json!({"action": "submit"}))
        .await;
    app.post_ok(
        &format!(
            "/api/v1/cases/{id}/consents/{}/withdraw",
            offlimits_consent["id"].as_str().unwrap()
        ),
        &a.fier_caseworker,
        &json!({}),
        200,
    )
    .await;
    let mails = sink.wait_for(8, WAIT).await;
    let last = mails
        .iter()
        .find(|m| m.subject().contains("Toestemming ingetrokken"))
        .expect("a consent-withdrawn mail");
    assert_eq!(to_of(last), "intake@offlimits.example");
    assert!(
        last.subject().contains("Toestemming ingetrokken / Consent withdrawn"),
        "{}",
        last.subject()
    );
    assert_eq!(
        mails.iter().filter(|m| to_of(m) == "intake@offlimits.example").count(),
        2,
        "new referral, then consent withdrawn"
    );
}
backend_test!(mails_for_every_step_carry_no_personal_data);

async fn overdue_step_is_escalated_once_and_clears(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(app) = on(backend, |s| with_smtp(s, sink.port)).await else {
        return;
    };
    let a = app.actors();
    let (_, submitted) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    // The helper submits with urgency `urgent`: 4 hours to acknowledge. Use a routine one.
    let case = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let id = case["id"].as_str().unwrap();
    app.reasonable_grounds(&a.fier_caseworker, id).await;
    app.consent(&a.fier_caseworker, id, "referral", "slachtofferhulp").await;
    let draft = app
        .post_ok(
            &format!("/api/v1/cases/{id}/referrals"),
            &a.fier_caseworker,
            &json!({"to_organisation": "slachtofferhulp", "services": ["practical_support"], "urgency": "routine"}),
            201,
        )
        .await;
    let routine = app.step(&a.fier_caseworker, &draft, json!({"action": "submit"})).await;
    sink.wait_for(2, WAIT).await;
    let url = format!("/api/v1/referrals/{}", routine["id"].as_str().unwrap());

    // Within the day: nothing overdue.
    app.clock.advance(Hours::hours(23));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen: Value = app.get(&url, &a.shn_intake).await.json().await.unwrap();
    assert_eq!(seen["overdue"], json!([]));
    // Past 24 hours: overdue, escalated to the focal point and the receiver, exactly once.
    app.clock.advance(Hours::hours(2));
    let mails = sink.wait_for(8, WAIT).await;
    let escalations: Vec<&Received> = mails
        .iter()
        .filter(|m| m.subject().contains("Termijn verstreken"))
        .collect();
    let routine_ref = format!(
        "NRM-{}",
        &routine["id"].as_str().unwrap().replace('-', "")[24..].to_uppercase()
    );
    let for_routine: Vec<&&Received> = escalations
        .iter()
        .filter(|m| m.subject().contains(&routine_ref))
        .collect();
    let mut recipients: Vec<&str> = for_routine.iter().map(|m| to_of(m)).collect();
    recipients.sort();
    assert_eq!(
        recipients,
        vec!["intake@comensha.example", "intake@slachtofferhulp.example"]
    );
    assert!(for_routine[0].body().contains("ontvangst bevestigen"));
    // The urgent one (4 h to acknowledge, 1 day to decide) escalated both steps.
    assert_eq!(
        escalations.len(),
        2 + 4,
        "{:?}",
        escalations.iter().map(|m| m.subject()).collect::<Vec<_>>()
    );
    for mail in &mails {
        assert_clean(mail);
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        sink.messages().len(),
        mails.len(),
        "no second escalation of the same steps"
    );

    let seen: Value = app.get(&url, &a.shn_intake).await.json().await.unwrap();
    assert_eq!(seen["overdue"][0]["step"], "acknowledge");
    assert!(seen["overdue"][0]["escalated_at"].is_string());
    let audit: Value = app
        .get("/api/v1/audit?action=referral.escalate", &a.comensha_coordinator)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"].as_array().unwrap().len(), 3);

    // Acknowledging clears the mark; the decision is not due for days.
    let acknowledged = app.step(&a.shn_intake, &seen, json!({"action": "acknowledge"})).await;
    assert_eq!(acknowledged["overdue"], json!([]));
    let flows: Value = app
        .get(
            "/api/v1/oversight/flows?from=2021-01-01&to=2030-12-31",
            &a.comensha_coordinator,
        )
        .await
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> = flows["overdue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["referral_id"].as_str().unwrap())
        .collect();
    assert!(!listed.contains(&routine["id"].as_str().unwrap()));
    assert!(listed.contains(&submitted["id"].as_str().unwrap()));
}
backend_test!(overdue_step_is_escalated_once_and_clears);

async fn outbox_status(app: &TestApp, status: &str) -> Vec<Value> {
    let admin = app.token("admin-ops", "comensha", &["admin"]);
    let list: Value = app
        .get(&format!("/api/v1/admin/outbox?status={status}"), &admin)
        .await
        .json()
        .await
        .unwrap();
    list["items"].as_array().unwrap().clone()
}

/// Advances the app's clock in steps until `done` holds (retries are scheduled on it).
async fn until(app: &TestApp, step: Hours, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if done().await {
            return;
        }
        app.clock.advance(step);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("condition not reached");
}

async fn smtp_outage_loses_nothing_and_sends_once(backend: Backend) {
    let mut sink = SmtpSink::start().await;
    sink.stop();
    let Some(app) = on(backend, |s| {
        with_smtp(s, sink.port);
        s.notifications.retry_base = "1s".into();
        s.notifications.retry_max = "10s".into();
        s.notifications.max_attempts = 50;
    })
    .await
    else {
        return;
    };
    for _ in 0..3 {
        app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    }
    // The server is down: attempts fail and are rescheduled.
    until(&app, Hours::seconds(2), async || {
        let pending = outbox_status(&app, "pending").await;
        pending.len() == 3 && pending.iter().all(|n| n["attempts"].as_i64().unwrap() >= 2)
    })
    .await;
    let pending = outbox_status(&app, "pending").await;
    assert!(pending.iter().all(|n| n["last_error"].is_string()));
    assert!(sink.messages().is_empty());

    sink.restart().await;
    until(&app, Hours::seconds(5), async || {
        outbox_status(&app, "sent").await.len() == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let messages = sink.messages();
    assert_eq!(messages.len(), 3, "each delivered exactly once");
    let mut subjects: Vec<String> = messages.iter().map(Received::subject).collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 3);
    assert!(outbox_status(&app, "pending").await.is_empty());
}
backend_test!(smtp_outage_loses_nothing_and_sends_once);

async fn dead_letters_can_be_requeued_by_an_admin(backend: Backend) {
    let mut sink = SmtpSink::start().await;
    sink.stop();
    let Some(app) = on(backend, |s| {
        with_smtp(s, sink.port);
        s.notifications.retry_base = "1s".into();
        s.notifications.max_attempts = 2;
    })
    .await
    else {
        return;
    };
    app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    until(&app, Hours::seconds(3), async || {
        outbox_status(&app, "dead").await.len() == 1
    })
    .await;
    let dead = outbox_status(&app, "dead").await;
    assert_eq!(dead[0]["attempts"], 2);
    let id = dead[0]["id"].as_str().unwrap().to_string();

    // Only admins, and an organisation's admin sees only its own messages.
    let a = app.actors();
    expect_problem(app.get("/api/v1/admin/outbox", &a.fier_caseworker).await, 403).await;
    let fier_admin = app.token("admin-fier", "fier", &["admin"]);
    let fier: Value = app
        .get("/api/v1/admin/outbox?status=dead", &fier_admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fier["items"], json!([]));
    expect_problem(
        app.post_json(&format!("/api/v1/admin/outbox/{id}/retry"), &fier_admin, &json!({}))
            .await,
        404,
    )
    .await;
    expect_problem(
        app.get(
            "/api/v1/admin/outbox?status=lost",
            &app.token("admin-ops", "comensha", &["admin"]),
        )
        .await,
        422,
    )
    .await;

    sink.restart().await;
    let csg_admin = app.token("admin-csg", "csg", &["admin"]);
    let requeued = app
        .post_ok(&format!("/api/v1/admin/outbox/{id}/retry"), &csg_admin, &json!({}), 200)
        .await;
    assert_eq!(requeued["status"], "pending");
    assert_eq!(requeued["attempts"], 0);
    let messages = sink.wait_for(1, WAIT).await;
    assert_eq!(messages.len(), 1);
    until(&app, Hours::seconds(1), async || {
        outbox_status(&app, "sent").await.len() == 1
    })
    .await;
    expect_problem(
        app.post_json(&format!("/api/v1/admin/outbox/{id}/retry"), &csg_admin, &json!({}))
            .await,
        409,
    )
    .await;
}
backend_test!(dead_letters_can_be_requeued_by_an_admin);

async fn a_rolled_back_transition_sends_nothing(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(app) = on(backend, |s| with_smtp(s, sink.port)).await else {
        return;
    };
    let a = app.actors();
    let case = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let id = case["id"].as_str().unwrap();
    app.reasonable_grounds(&a.fier_caseworker, id).await;
    app.consent(&a.fier_caseworker, id, "referral", "csg").await;
    let draft = app
        .draft_referral(&a.fier_caseworker, id, "csg", &["acute_sexual_violence_care"])
        .await;
    // Break the last write of the transaction (the audit append) after the notification
    // has been queued in it.
    let db = app.db();
    let mut conn = db.get().unwrap();
    match backend {
        Backend::Postgres => conn.batch_execute(
            "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END; $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_pending FOR EACH ROW EXECUTE FUNCTION refuse_audit();",
        ),
        Backend::Sqlite => conn.batch_execute(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_pending BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        ),
    }
    .unwrap();
    let (status, _) = app
        .transition(&a.fier_caseworker, &draft, json!({"action": "submit"}))
        .await;
    assert!(status >= 400, "the transition failed");
    conn.batch_execute(match backend {
        Backend::Postgres => "DROP TRIGGER refuse_audit ON audit_pending",
        Backend::Sqlite => "DROP TRIGGER refuse_audit",
    })
    .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(sink.messages().is_empty(), "nothing sent");
    assert!(outbox_status(&app, "pending").await.is_empty(), "nothing queued");
    let seen: Value = app
        .get(
            &format!("/api/v1/referrals/{}", draft["id"].as_str().unwrap()),
            &a.fier_caseworker,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["state"], "draft");
    assert_eq!(seen["history"], json!([]));
}
backend_test!(a_rolled_back_transition_sends_nothing);

/// Two service instances on one PostgreSQL database, both delivering: every mail once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_on_one_postgres_send_each_mail_once() {
    if !postgres_enabled() {
        return;
    }
    let sink = SmtpSink::start().await;
    let port = sink.port;
    // The first instance has no SMTP server configured: its worker leaves the outbox alone.
    let Some(first) = on(Backend::Postgres, |s| {
        with_smtp(s, port);
        s.smtp.host = String::new();
    })
    .await
    else {
        return;
    };
    let a = first.actors();
    let mut cases = Vec::new();
    for _ in 0..6 {
        let case = first.create_case(&a.fier_caseworker, &adult_case()).await;
        let id = case["id"].as_str().unwrap().to_string();
        first.reasonable_grounds(&a.fier_caseworker, &id).await;
        cases.push(id);
    }
    for id in &cases {
        for to in ["csg", "slachtofferhulp", "offlimits"] {
            first.consent(&a.fier_caseworker, id, "referral", to).await;
        }
    }
    // Queue 18 messages through two more instances that both deliver to the sink.
    let second = spawn_app_on(&first, |s| with_smtp(s, port)).await;
    let third = spawn_app_on(&first, |s| with_smtp(s, port)).await;
    for (n, id) in cases.iter().enumerate() {
        for (to, service) in [
            ("csg", "psychosocial_support"),
            ("slachtofferhulp", "legal_support"),
            ("offlimits", "image_removal"),
        ] {
            let app = if n % 2 == 0 { &second } else { &third };
            let draft = app.draft_referral(&a.fier_caseworker, id, to, &[service]).await;
            app.step(&a.fier_caseworker, &draft, json!({"action": "submit"})).await;
        }
    }
    let messages = sink.wait_for(18, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let messages = if sink.messages().len() > messages.len() {
        sink.messages()
    } else {
        messages
    };
    assert_eq!(messages.len(), 18);
    let mut subjects: Vec<String> = messages.iter().map(Received::subject).collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 18, "no message sent twice");
    assert_eq!(
        outbox_status(&second, "sent").await.len(),
        18,
        "every message recorded as sent"
    );
    assert!(outbox_status(&second, "pending").await.is_empty());
}

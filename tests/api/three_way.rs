//! Three-way conversations with the police: consent-gated, visible to the invited only.

use serde_json::{Value, json};

use crate::api_test;
use crate::helpers::{TestApp, adult_case, expect_problem};

pub(crate) async fn step(app: &TestApp, token: &str, conversation: &Value, body: Value) -> (u16, Value) {
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
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn conversation_needs_police_contact_consent(app: TestApp) {
    let a = app.actors();
    let case = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let id = case["id"].as_str().unwrap();
    let offered = app
        .post_ok(
            &format!("/api/v1/cases/{id}/three-way-conversations"),
            &a.fier_caseworker,
            &json!({}),
            201,
        )
        .await;
    assert_eq!(offered["state"], "offered");
    assert_eq!(offered["police_organisation"], "police");
    assert_eq!(offered["allowed_actions"], json!(["decline", "schedule"]));

    let schedule =
        json!({"action": "schedule", "police_officer": "rechercheur-hans", "scheduled_for": "2025-03-01T14:00:00Z"});
    let (status, body) = step(&app, &a.fier_caseworker, &offered, schedule.clone()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["guards"], json!(["no_police_contact_consent"]));

    // The separate, revocable opt-in.
    app.consent(&a.fier_caseworker, id, "police_contact", "police").await;
    let (status, body) = step(&app, &a.fier_caseworker, &offered, json!({"action": "schedule"})).await;
    assert_eq!(status, 422, "{body}");
    let (status, scheduled) = step(&app, &a.fier_caseworker, &offered, schedule).await;
    assert_eq!(status, 200, "{scheduled}");
    assert_eq!(scheduled["police_officer"], "rechercheur-hans");
    let (status, held) = step(&app, &a.fier_caseworker, &scheduled, json!({"action": "hold"})).await;
    assert_eq!(status, 200);
    // The record cannot close before the conversation is evaluated.
    let close = json!({"reason_code": "support_completed"});
    expect_problem(
        app.post_json(&format!("/api/v1/cases/{id}/close"), &a.fier_caseworker, &close)
            .await,
        409,
    )
    .await;
    let (status, body) = step(
        &app,
        &a.fier_caseworker,
        &held,
        json!({"action": "evaluate", "care_evaluation": "Goed verlopen"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, evaluated) = step(
        &app,
        &a.fier_caseworker,
        &held,
        json!({"action": "evaluate", "care_evaluation": "Cliënt voelde zich gehoord", "police_evaluation": "Uitleg aangifte gegeven", "reporting_intention": "undecided"}),
    )
    .await;
    assert_eq!(status, 200, "{evaluated}");
    assert_eq!(evaluated["state"], "evaluated");
    assert_eq!(evaluated["reporting_intention"], "undecided");
    let (status, body) = step(&app, &a.fier_caseworker, &evaluated, json!({"action": "hold"})).await;
    assert_eq!(status, 409, "{body}");

    // Declining the offer is always possible and gates nothing.
    let other = app
        .post_ok(
            &format!("/api/v1/cases/{id}/three-way-conversations"),
            &a.fier_caseworker,
            &json!({}),
            201,
        )
        .await;
    let (status, declined) = step(&app, &a.fier_caseworker, &other, json!({"action": "decline"})).await;
    assert_eq!((status, declined["state"].as_str()), (200, Some("declined")));
    let list: Value = app
        .get(
            &format!("/api/v1/cases/{id}/three-way-conversations"),
            &a.fier_caseworker,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let bad = app
        .post_json(
            &format!("/api/v1/cases/{id}/three-way-conversations"),
            &a.fier_caseworker,
            &json!({"police_organisation": "csg"}),
        )
        .await;
    expect_problem(bad, 422).await;
    // Evaluated and declined: now it closes, and nothing more is recorded on it.
    app.post_ok(&format!("/api/v1/cases/{id}/close"), &a.fier_caseworker, &close, 200)
        .await;
    let more = app
        .post_json(
            &format!("/api/v1/cases/{id}/three-way-conversations"),
            &a.fier_caseworker,
            &json!({}),
        )
        .await;
    expect_problem(more, 409).await;
}
api_test!(conversation_needs_police_contact_consent);

async fn police_see_only_conversations_they_are_invited_to(app: TestApp) {
    let a = app.actors();
    let mut body = adult_case();
    body["identifying_details"] = json!({"name": "Geheim Houden"});
    let case = app.create_case(&a.fier_caseworker, &body).await;
    let id = case["id"].as_str().unwrap();
    app.consent(&a.fier_caseworker, id, "police_contact", "police").await;
    let offered = app
        .post_ok(
            &format!("/api/v1/cases/{id}/three-way-conversations"),
            &a.fier_caseworker,
            &json!({}),
            201,
        )
        .await;
    let conversation_url = format!("/api/v1/three-way-conversations/{}", offered["id"].as_str().unwrap());
    // Not invited yet.
    expect_problem(app.get(&conversation_url, &a.police_officer).await, 404).await;
    let (status, _) = step(
        &app,
        &a.fier_caseworker,
        &offered,
        json!({"action": "schedule", "police_officer": "rechercheur-hans", "scheduled_for": "2025-03-01T14:00:00Z"}),
    )
    .await;
    assert_eq!(status, 200);

    let invited: Value = app
        .get("/api/v1/three-way-conversations", &a.police_officer)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(invited["items"].as_array().unwrap().len(), 1);
    let seen: Value = app
        .get(&conversation_url, &a.police_officer)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["state"], "scheduled");
    assert_eq!(seen["allowed_actions"], json!([]));
    assert!(!seen.to_string().contains("Geheim"));
    // The police never see the case, nor can they move the conversation.
    expect_problem(app.get(&format!("/api/v1/cases/{id}"), &a.police_officer).await, 404).await;
    let (status, _) = step(&app, &a.police_officer, &seen, json!({"action": "hold"})).await;
    assert_eq!(status, 403);
    // A colleague who is not invited sees nothing.
    let colleague = app.token("rechercheur-iris", "police", &["intake"]);
    let invited: Value = app
        .get("/api/v1/three-way-conversations", &colleague)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(invited["items"].as_array().unwrap().len(), 0);
    expect_problem(app.get(&conversation_url, &colleague).await, 404).await;
}
api_test!(police_see_only_conversations_they_are_invited_to);

pub(crate) async fn offer(app: &TestApp, token: &str, case_id: &str) -> Value {
    app.post_ok(
        &format!("/api/v1/cases/{case_id}/three-way-conversations"),
        token,
        &json!({}),
        201,
    )
    .await
}

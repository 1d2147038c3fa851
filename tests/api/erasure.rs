//! Erasure freezes everything that hangs on the case; no route tells another organisation
//! that a case exists or what became of it.

use chrono::Duration as Days;
use serde_json::{Value, json};

use crate::api_test;
use crate::helpers::{TestApp, adult_case, expect_problem};

async fn post_with_etag(app: &TestApp, path: &str, token: &str, version: &Value, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .header("If-Match", format!("\"{version}\""))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn erasure_freezes_the_case_and_everything_on_it(app: TestApp) {
    let a = app.actors();
    let admin = app.token("admin-fier", "fier", &["admin"]);
    let ops = app.token("ops", "comensha", &["admin"]);
    let (case, submitted) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let id = case["id"].as_str().unwrap().to_string();
    let case_url = format!("/api/v1/cases/{id}");
    app.consent(&a.fier_caseworker, &id, "referral", "slachtofferhulp")
        .await;
    let police_consent = app.consent(&a.fier_caseworker, &id, "police_contact", "police").await;
    let draft = app
        .draft_referral(&a.fier_caseworker, &id, "slachtofferhulp", &["practical_support"])
        .await;
    let offered = app
        .post_ok(
            &format!("{case_url}/three-way-conversations"),
            &a.fier_caseworker,
            &json!({}),
            201,
        )
        .await;
    let conversation_url = format!(
        "/api/v1/three-way-conversations/{}/transitions",
        offered["id"].as_str().unwrap()
    );
    let response = post_with_etag(
        &app,
        &conversation_url,
        &a.fier_caseworker,
        &offered["version"],
        json!({"action": "schedule", "police_officer": "rechercheur-hans", "scheduled_for": "2025-03-01T14:00:00Z"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let scheduled: Value = response.json().await.unwrap();
    let acknowledged = app
        .step(&a.csg_intake, &submitted, json!({"action": "acknowledge"}))
        .await;

    app.post_ok(
        &format!("{case_url}/erase"),
        &admin,
        &json!({"reason": "data_subject_request"}),
        200,
    )
    .await;

    // The draft, which no receiver ever saw, was withdrawn by the erasure itself.
    let draft_now: Value = app
        .get(
            &format!("/api/v1/referrals/{}", draft["id"].as_str().unwrap()),
            &a.fier_caseworker,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(draft_now["state"], "withdrawn", "{draft_now}");
    let history = draft_now["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["actor_sub"], "system");
    // Not handed over: slachtofferhulp still cannot see it.
    expect_problem(
        app.get(
            &format!("/api/v1/referrals/{}", draft["id"].as_str().unwrap()),
            &a.shn_intake,
        )
        .await,
        404,
    )
    .await;

    // The handed-over referral is frozen where it stood, and says so.
    let frozen: Value = app
        .get(
            &format!("/api/v1/referrals/{}", acknowledged["id"].as_str().unwrap()),
            &a.csg_intake,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(frozen["state"], "acknowledged");
    assert_eq!(frozen["allowed_actions"], json!([]));
    for body in [
        json!({"action": "accept"}),
        json!({"action": "decline", "reason_code": "other", "reason": "Tekst na het wissen"}),
    ] {
        let (status, problem) = app.transition(&a.csg_intake, &frozen, body).await;
        assert_eq!(status, 409, "{problem}");
    }
    let (status, _) = app
        .transition(
            &a.fier_caseworker,
            &frozen,
            json!({"action": "withdraw", "reason": "Tekst"}),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = app
        .transition(&a.fier_caseworker, &draft_now, json!({"action": "submit"}))
        .await;
    assert_eq!(status, 409);

    // Every write on the case, its consents and its conversations answers 409.
    let erased: Value = app.get(&case_url, &a.fier_caseworker).await.json().await.unwrap();
    let patch = app
        .client
        .patch(app.url(&case_url))
        .bearer_auth(&a.fier_caseworker)
        .header("If-Match", format!("\"{}\"", erased["version"]))
        .json(&json!({"language": "nl"}))
        .send()
        .await
        .unwrap();
    expect_problem(patch, 409).await;
    let writes: Vec<(String, String, Value)> = vec![
        (
            a.fier_caseworker.clone(),
            format!("{case_url}/referrals"),
            json!({"to_organisation": "offlimits", "services": ["image_removal"], "urgency": "routine"}),
        ),
        (
            a.fier_caseworker.clone(),
            format!("{case_url}/consents"),
            json!({"scope": "referral", "organisation": "offlimits", "given_by": "victim", "method": "chat", "information_language": "nl"}),
        ),
        (
            a.fier_caseworker.clone(),
            format!(
                "{case_url}/consents/{}/withdraw",
                police_consent["id"].as_str().unwrap()
            ),
            json!({}),
        ),
        (
            a.fier_caseworker.clone(),
            format!("{case_url}/legal-basis"),
            json!({"basis": "child_protection", "justification": "Na het wissen"}),
        ),
        (
            a.fier_caseworker.clone(),
            format!("{case_url}/anonymous-notification"),
            json!({}),
        ),
        (
            a.fier_caseworker.clone(),
            format!("{case_url}/three-way-conversations"),
            json!({}),
        ),
        (
            a.comensha_coordinator.clone(),
            format!("{case_url}/identification"),
            json!({"decision": "identified", "basis": "Na het wissen"}),
        ),
        (
            admin.clone(),
            format!("{case_url}/close"),
            json!({"reason_code": "support_completed"}),
        ),
        (
            admin.clone(),
            format!("{case_url}/erase"),
            json!({"reason": "data_subject_request"}),
        ),
    ];
    for (token, path, body) in writes {
        expect_problem(app.post_json(&path, &token, &body).await, 409).await;
    }
    let response = post_with_etag(
        &app,
        &conversation_url,
        &a.fier_caseworker,
        &scheduled["version"],
        json!({"action": "hold"}),
    )
    .await;
    expect_problem(response, 409).await;

    // Whoever anything was handed to is told, once: the receiver of the referral and the
    // police of the conversation; not slachtofferhulp, which only had a draft.
    let outbox: Value = app.get("/api/v1/admin/outbox", &ops).await.json().await.unwrap();
    let mut told: Vec<String> = outbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "case_erased")
        .map(|n| n["recipient_org"].as_str().unwrap().to_string())
        .collect();
    told.sort();
    assert_eq!(told, vec!["csg", "police"]);

    // A frozen step is not chased: ten days on, nothing of this case is overdue.
    app.clock.advance(Days::days(10));
    let flows: Value = app
        .get(
            "/api/v1/oversight/flows?from=2020-01-01&to=2030-12-31",
            &a.comensha_coordinator,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        flows["overdue"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["case_id"] != json!(id)),
        "{}",
        flows["overdue"]
    );
}
api_test!(erasure_freezes_the_case_and_everything_on_it);

async fn a_case_of_another_organisation_is_not_found_whatever_its_state(app: TestApp) {
    let a = app.actors();
    let admin = app.token("admin-fier", "fier", &["admin"]);
    let closed = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let closed_id = closed["id"].as_str().unwrap();
    app.post_ok(
        &format!("/api/v1/cases/{closed_id}/close"),
        &a.fier_caseworker,
        &json!({"reason_code": "lost_contact"}),
        200,
    )
    .await;
    let erased = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let erased_id = erased["id"].as_str().unwrap();
    app.post_ok(
        &format!("/api/v1/cases/{erased_id}/erase"),
        &admin,
        &json!({"reason": "safety_risk"}),
        200,
    )
    .await;
    let random = uuid::Uuid::now_v7().to_string();
    let outsiders = [
        app.token("cw-other", "offlimits", &["caseworker"]),
        app.token("admin-other", "offlimits", &["admin", "caseworker", "intake"]),
        a.comensha_intake.clone(),
    ];
    let grounds = json!({"decision": "reasonable_grounds", "basis": "Signalen"});
    for token in &outsiders {
        for id in [closed_id, erased_id, random.as_str()] {
            for (path, body) in [
                (format!("/api/v1/cases/{id}/identification"), grounds.clone()),
                (
                    format!("/api/v1/cases/{id}/close"),
                    json!({"reason_code": "lost_contact"}),
                ),
                (format!("/api/v1/cases/{id}/erase"), json!({"reason": "other"})),
                (format!("/api/v1/cases/{id}/anonymous-notification"), json!({})),
            ] {
                let body = expect_problem(app.post_json(&path, token, &body).await, 404).await;
                assert_eq!(body["detail"], "no such resource", "{path}");
            }
        }
    }
    // The owner still hears why: its own case is closed or erased.
    for id in [closed_id, erased_id] {
        expect_problem(
            app.post_json(
                &format!("/api/v1/cases/{id}/identification"),
                &a.fier_caseworker,
                &grounds,
            )
            .await,
            409,
        )
        .await;
    }
}
api_test!(a_case_of_another_organisation_is_not_found_whatever_its_state);

//! Taking a referral on: the receiving organisation's intake staff assign an open incoming
//! referral to themselves or to an intake colleague (known from the pages' sign-in), or
//! back to nobody; the "mine" and "nobody yet" lists; audited; never shown to the sender.

use serde_json::{Value, json};

use crate::api_test;
use crate::helpers::TestApp;

/// `PUT /referrals/{id}/assignee` with `If-Match` of the referral as given.
async fn assign(app: &TestApp, token: &str, referral: &Value, assigned_to: Value) -> (u16, Value) {
    let id = referral["id"].as_str().unwrap();
    let response = app
        .client
        .put(app.url(&format!("/api/v1/referrals/{id}/assignee")))
        .bearer_auth(token)
        .header("If-Match", format!("\"{}\"", referral["version"]))
        .json(&json!({ "assigned_to": assigned_to }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn incoming_ids(app: &TestApp, token: &str, filter: &str) -> Vec<String> {
    let page: Value = app
        .get(&format!("/api/v1/referrals?direction=incoming{filter}"), token)
        .await
        .json()
        .await
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// Signs a development persona in to the pages once, as a browser would: the colleague
/// list holds people who signed in.
async fn sign_in_to_the_pages(app: &TestApp, persona: &str) {
    let form = app.client.get(app.url("/sign-in")).send().await.unwrap();
    let pre = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|v| {
            v.to_str()
                .unwrap()
                .strip_prefix("nrm_sign_in=")
                .map(|r| r.split(';').next().unwrap().to_string())
        })
        .unwrap();
    let body = form.text().await.unwrap();
    let token = body
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let done = app
        .client
        .post(app.url("/sign-in"))
        .header("cookie", format!("nrm_sign_in={pre}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs([("csrf_token", token), ("persona", persona), ("return_to", "/")])
                .finish(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
}

async fn intake_takes_a_referral_on_and_hands_it_to_a_colleague(app: TestApp) {
    let a = app.actors();
    let (_, submitted) = app.submitted_referral("csg", &["psychosocial_support"]).await;
    let (_, other) = app.submitted_referral("csg", &["psychosocial_support"]).await;
    let id = submitted["id"].as_str().unwrap().to_string();
    assert_eq!(submitted["assigned_to"], Value::Null);

    // Taking it on: the caller's own id, the version moves on.
    let (status, mine) = assign(&app, &a.csg_intake, &submitted, json!("intake-carla")).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["assigned_to"], "intake-carla");
    assert_eq!(mine["version"], submitted["version"].as_i64().unwrap() + 1);
    assert_eq!(
        incoming_ids(&app, &a.csg_intake, "&assigned_to=me").await,
        vec![id.clone()]
    );
    let nobody = incoming_ids(&app, &a.csg_intake, "&assigned_to=nobody").await;
    assert!(nobody.contains(&other["id"].as_str().unwrap().to_string()));
    assert!(!nobody.contains(&id));
    let colleague_token = app.token("persona:csg:intake:2", "csg", &["intake"]);
    assert!(incoming_ids(&app, &colleague_token, "&assigned_to=me").await.is_empty());

    // The old version is stale now: nothing applied twice.
    let (status, _) = assign(&app, &a.csg_intake, &submitted, Value::Null).await;
    assert_eq!(status, 412);

    // A colleague who never signed in is unknown; once signed in, they can be named.
    let (status, problem) = assign(&app, &a.csg_intake, &mine, json!("persona:csg:intake:2")).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "assigned_to", "{problem}");
    sign_in_to_the_pages(&app, "csg:intake:2").await;
    sign_in_to_the_pages(&app, "csg:admin").await;
    let (status, handed) = assign(&app, &a.csg_intake, &mine, json!("persona:csg:intake:2")).await;
    assert_eq!(status, 200, "{handed}");
    assert_eq!(handed["assigned_to"], "persona:csg:intake:2");
    assert_eq!(handed["assigned_name"], "Persona: Intake (tweede persoon)");
    assert_eq!(
        incoming_ids(&app, &colleague_token, "&assigned_to=me").await,
        vec![id.clone()]
    );
    // Someone of the organisation without the intake role is not a colleague to assign to.
    let (status, _) = assign(&app, &a.csg_intake, &handed, json!("persona:csg:admin")).await;
    assert_eq!(status, 422);

    // The sender sees the referral, not who works on it; nor may it assign.
    let seen: Value = app
        .get(&format!("/api/v1/referrals/{id}"), &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["assigned_to"], Value::Null);
    assert_eq!(seen["assigned_name"], Value::Null);
    assert_eq!(seen["assignable"], false);
    let (status, _) = assign(&app, &a.fier_caseworker, &handed, Value::Null).await;
    assert_eq!(status, 403);
    let (status, _) = assign(&app, &a.shn_intake, &handed, Value::Null).await;
    assert_eq!(status, 404, "another organisation does not learn it exists");

    // Back to nobody; then, once closed, nobody assigns it any more.
    let (status, released) = assign(&app, &a.csg_intake, &handed, Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(released["assigned_to"], Value::Null);
    let declined = app
        .step(
            &a.csg_intake,
            &released,
            json!({"action": "decline", "reason_code": "no_capacity", "reason": "Vol"}),
        )
        .await;
    assert_eq!(declined["assignable"], false);
    let (status, problem) = assign(&app, &a.csg_intake, &declined, json!("intake-carla")).await;
    assert_eq!(status, 409, "{problem}");

    // Each assignment is in the audit trail, with what kind it was.
    let audit: Value = app
        .get(
            &format!(
                "/api/v1/audit?action=referral.assign&case_id={}",
                submitted["case_id"].as_str().unwrap()
            ),
            &a.comensha_coordinator,
        )
        .await
        .json()
        .await
        .unwrap();
    let outcomes: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    let mut sorted = outcomes.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec!["colleague", "nobody", "self"], "{audit}");
}
api_test!(intake_takes_a_referral_on_and_hands_it_to_a_colleague);

async fn the_assignment_filter_is_for_incoming_lists_only(app: TestApp) {
    let a = app.actors();
    for (query, field) in [
        ("/api/v1/referrals?direction=outgoing&assigned_to=me", "assigned_to"),
        (
            "/api/v1/referrals?direction=incoming&assigned_to=someone",
            "assigned_to",
        ),
    ] {
        let token = if query.contains("outgoing") {
            &a.fier_caseworker
        } else {
            &a.csg_intake
        };
        let problem = crate::helpers::expect_problem(app.get(query, token).await, 422).await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
}
api_test!(the_assignment_filter_is_for_incoming_lists_only);

//! Garbage of any kind yields a 4xx problem+json, never a 5xx.

use crate::api_test;
use crate::helpers::{TestApp, expect_problem};

async fn unknown_routes_and_methods_are_problem_json(app: TestApp) {
    let token = app.token("cw", "fier", &["caseworker"]);
    expect_problem(app.get("/nope", &token).await, 404).await;
    expect_problem(app.get("/api/v1/nope", &token).await, 404).await;
    expect_problem(app.get("/api/v2/organisations", &token).await, 404).await;
    let response = app
        .client
        .delete(app.url("/api/v1/organisations"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    // The route exists with another method: 405, naming the methods it has.
    assert_eq!(response.headers()["allow"], "GET");
    expect_problem(response, 405).await;
}
api_test!(unknown_routes_and_methods_are_problem_json);

/// Every route × method × body shape: the answer is below 500 and errors are problem+json.
pub async fn assert_garbage_is_refused(app: &TestApp, paths: &[&str]) {
    assert_garbage_is_refused_as(app, paths, "fier").await;
}

/// The same, as a user of `org` holding every role.
pub async fn assert_garbage_is_refused_as(app: &TestApp, paths: &[&str], org: &str) {
    let token = app.token("everyone", org, &["caseworker", "intake", "coordinator", "admin"]);
    let long = "x".repeat(5000);
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"{".to_vec()),
        ("application/json", b"[]".to_vec()),
        ("application/json", b"null".to_vec()),
        ("application/json", b"{\"unknown_field\": 1}".to_vec()),
        ("application/json", vec![0xff, 0xfe, 0x00]),
        (
            "application/json",
            format!("{{\"a\": \"{}\"}}", "y".repeat(200_000)).into_bytes(),
        ),
        ("text/plain", b"hello".to_vec()),
        ("application/x-www-form-urlencoded", b"a=b".to_vec()),
    ];
    for path in paths {
        for variant in [
            path.to_string(),
            format!("{path}?page=-1&limit=abc&from=notadate"),
            format!("{path}/{long}"),
        ] {
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                for (content_type, body) in &bodies {
                    let response = app
                        .client
                        .request(method.parse().unwrap(), app.url(&variant))
                        .bearer_auth(&token)
                        .header("Content-Type", *content_type)
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    let status = response.status().as_u16();
                    assert!(status < 500, "{method} {variant} ({content_type}) answered {status}");
                    if status >= 400 {
                        let ct = response
                            .headers()
                            .get("content-type")
                            .map(|v| v.to_str().unwrap_or("").to_string());
                        assert!(
                            ct.as_deref().is_some_and(|c| c.starts_with("application/problem+json")),
                            "{method} {variant}: {status} without problem+json ({ct:?})"
                        );
                    }
                }
            }
        }
    }
}

async fn garbage_on_every_route(app: TestApp) {
    let (case, referral) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let case_id = case["id"].as_str().unwrap();
    let referral_id = referral["id"].as_str().unwrap();
    let cases = format!("/api/v1/cases/{case_id}");
    let sub = |tail: &str| format!("{cases}/{tail}");
    let referral = format!("/api/v1/referrals/{referral_id}");
    let transitions = format!("{referral}/transitions");
    let paths = [
        "/api/v1/organisations".to_string(),
        "/api/v1/organisations/fier".into(),
        "/api/v1/organisations/fier/capacity".into(),
        "/health/live".into(),
        "/health/ready".into(),
        "/api/v1/openapi.json".into(),
        "/api/v1/cases".into(),
        "/api/v1/cases/search".into(),
        cases.clone(),
        sub("identification"),
        sub("consents"),
        sub(&format!("consents/{}/withdraw", uuid::Uuid::now_v7())),
        sub("legal-basis"),
        sub("referrals"),
        sub("three-way-conversations"),
        sub("anonymous-notification"),
        sub("routing"),
        sub("disclosures"),
        sub("export"),
        sub("close"),
        sub("erase"),
        "/api/v1/referrals".into(),
        referral,
        transitions,
        "/api/v1/three-way-conversations".into(),
        format!("/api/v1/three-way-conversations/{}", uuid::Uuid::now_v7()),
        format!("/api/v1/three-way-conversations/{}/transitions", uuid::Uuid::now_v7()),
        "/api/v1/anonymous-notifications".into(),
        "/api/v1/audit".into(),
        "/api/v1/audit/verify".into(),
        "/api/v1/oversight/flows".into(),
        "/api/v1/stats/report".into(),
        "/api/v1/stats/eu".into(),
        "/api/v1/admin/outbox".into(),
        format!("/api/v1/admin/outbox/{}/retry", uuid::Uuid::now_v7()),
    ];
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    assert_garbage_is_refused(&app, &paths).await;
    // The national focal point's routes, past their role check.
    let focal = [
        "/api/v1/audit",
        "/api/v1/audit/verify",
        "/api/v1/oversight/flows",
        "/api/v1/stats/report",
        "/api/v1/stats/eu",
        "/api/v1/admin/outbox",
        "/api/v1/anonymous-notifications",
        "/api/v1/organisations/comensha/capacity",
    ];
    assert_garbage_is_refused_as(&app, &focal, "comensha").await;
}
api_test!(garbage_on_every_route);

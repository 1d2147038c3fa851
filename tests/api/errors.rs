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
    assert!(response.status().is_client_error());
    expect_problem(response, 404).await;
}
api_test!(unknown_routes_and_methods_are_problem_json);

/// Every route × method × body shape: the answer is below 500 and errors are problem+json.
pub async fn assert_garbage_is_refused(app: &TestApp, paths: &[&str]) {
    let token = app.token("cw", "fier", &["caseworker", "intake", "coordinator", "admin"]);
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
    assert_garbage_is_refused(
        &app,
        &["/api/v1/organisations", "/api/v1/organisations/fier", "/health/live"],
    )
    .await;
}
api_test!(garbage_on_every_route);

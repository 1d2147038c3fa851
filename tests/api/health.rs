use crate::api_test;
use crate::helpers::TestApp;

async fn live_and_ready_without_token(app: TestApp) {
    let live = app.client.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let ready = app.client.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    let expected = match app.backend {
        crate::helpers::Backend::Sqlite => "sqlite",
        crate::helpers::Backend::Postgres => "postgresql",
    };
    assert_eq!(body["status"], "ready");
    assert_eq!(body["database"], expected);
}
api_test!(live_and_ready_without_token);

async fn request_id_is_echoed_or_made(app: TestApp) {
    let response = app
        .client
        .get(app.url("/health/live"))
        .header("X-Request-Id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    // A request id that could smuggle text into logs is replaced.
    let response = app
        .client
        .get(app.url("/health/live"))
        .header("X-Request-Id", "a b\tc")
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(id, "a b\tc");
    assert!(uuid::Uuid::parse_str(&id).is_ok());
}
api_test!(request_id_is_echoed_or_made);

use crate::api_test;
use std::time::Duration;

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

/// The database drops every connection of the service (a restart, a failover): no request
/// answers 500. A request on a connection the pool used within `ALIVE_BYPASS` may answer 503
/// (retry later), and that connection is dropped; one idle for longer is checked before use
/// and fails none. The singleton tasks, whose leadership lived on those
/// connections, are led again. PostgreSQL only: SQLite has no server that could drop them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_database_connections_are_replaced() {
    let Some(app) = crate::helpers::spawn_postgres_app(|s| s.database.pool_size = 4).await else {
        return;
    };
    let a = app.actors();
    let case = app.create_case(&a.fier_caseworker, &crate::helpers::adult_case()).await;
    let path = format!("/api/v1/cases/{}", case["id"].as_str().unwrap());
    let all_tasks = crate::helpers::leads_at(&app.client, &app.address).await;
    assert_eq!(all_tasks.len(), 4, "{all_tasks:?}");

    // Idle past the window: checked before use, replaced, nothing fails.
    assert!(drop_connections_of(&app) > 0);
    tokio::time::sleep(nrm::db::ALIVE_BYPASS + Duration::from_millis(200)).await;
    for _ in 0..8 {
        let response = app.get(&path, &a.fier_caseworker).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    // At once, while the pool still trusts them, eight requests at a time on four
    // connections: a request on a dead one answers 503, never 500, and the connection is
    // dropped. Rounds until every request answers 200 again.
    let mut failed = 0;
    for round in 0..6 {
        if round % 3 == 0 {
            assert!(drop_connections_of(&app) > 0);
        }
        let requests = (0..8).map(|_| {
            let (client, url, token) = (app.client.clone(), app.url(&path), a.fier_caseworker.clone());
            tokio::spawn(async move { client.get(url).bearer_auth(token).send().await.unwrap() })
        });
        for request in requests.collect::<Vec<_>>() {
            let response = request.await.unwrap();
            if response.status() != 200 {
                failed += 1;
                let problem = crate::helpers::expect_problem(response, 503).await;
                assert_eq!(problem["title"], "Service unavailable");
            }
        }
    }
    eprintln!("{failed} requests answered 503 on dropped connections");
    for _ in 0..8 {
        assert_eq!(app.get(&path, &a.fier_caseworker).await.status(), 200);
    }

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while crate::helpers::leads_at(&app.client, &app.address).await != all_tasks {
        assert!(
            std::time::Instant::now() < deadline,
            "the singleton tasks were not led again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Terminates every server connection to the app's database; returns how many.
fn drop_connections_of(app: &TestApp) -> usize {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Dropped {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let database = app.database_url.rsplit('/').next().unwrap().to_string();
    let mut admin = diesel::PgConnection::establish(&format!("{}/postgres", crate::helpers::pg_base_url())).unwrap();
    let dropped: Dropped = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind::<diesel::sql_types::Text, _>(database)
    .get_result(&mut admin)
    .unwrap();
    dropped.n as usize
}

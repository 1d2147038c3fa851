use serde_json::{Value, json};

use crate::api_test;
use crate::helpers::{TestApp, expect_problem};

async fn any_authenticated_user_lists_the_registry(app: TestApp) {
    let token = app.token("police-officer-1", "police", &["intake"]);
    let response = app.get("/api/v1/organisations", &token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let slugs: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["slug"].as_str().unwrap())
        .collect();
    for slug in [
        "fier",
        "slachtofferhulp",
        "csg",
        "comensha",
        "offlimits",
        "nidos",
        "police",
        "zorgcoordinatie-amsterdam",
    ] {
        assert!(slugs.contains(&slug), "{slug} missing from {slugs:?}");
    }
    let focal: Vec<&Value> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["focal_point"] == true)
        .collect();
    assert_eq!(focal.len(), 1);
    assert_eq!(focal[0]["slug"], "comensha");
}
api_test!(any_authenticated_user_lists_the_registry);

async fn one_organisation_by_slug(app: TestApp) {
    let token = app.token("cw", "fier", &["caseworker"]);
    let response = app.get("/api/v1/organisations/zorgcoordinatie-utrecht", &token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["regions"], serde_json::json!(["utrecht"]));
    assert_eq!(body["kind"], "care_coordination");
    assert!(
        body["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "care_coordination")
    );

    // The service directory: eligibility and availability per service.
    let offlimits: Value = app
        .get("/api/v1/organisations/offlimits", &token)
        .await
        .json()
        .await
        .unwrap();
    let removal = offlimits["offers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["service"] == "image_removal")
        .unwrap();
    assert_eq!(removal["hours"], "ma-vr 09:00-17:00");
    assert_eq!(removal["available_24_7"], false);
    let csg: Value = app.get("/api/v1/organisations/csg", &token).await.json().await.unwrap();
    let acute = csg["offers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["service"] == "acute_sexual_violence_care")
        .unwrap();
    assert_eq!(
        (acute["available_24_7"].clone(), acute["minors"].clone()),
        (json!(true), json!(true))
    );
    expect_problem(app.get("/api/v1/organisations/does-not-exist", &token).await, 404).await;
    expect_problem(app.get("/api/v1/organisations/%00%ff", &token).await, 404).await;
}
api_test!(one_organisation_by_slug);

async fn registry_sync_is_idempotent(app: TestApp) {
    // The app already mirrored the registry at start; a second mirror changes nothing.
    let registry = nrm::startup::load_registry(&app.settings.registry.organisations_file).unwrap();
    let db = nrm::startup::open_database(&app.settings).unwrap();
    let mut conn = db.get().unwrap();
    let now = nrm::db::Instant::from_utc(chrono::Utc::now());
    assert_eq!(
        nrm::db::organisations::sync_registry(&mut conn, &registry, now).unwrap(),
        0
    );
    // An organisation dropped from the file is kept but hidden.
    let mut smaller = registry.clone();
    smaller.organisations.remove("offlimits");
    assert_eq!(
        nrm::db::organisations::sync_registry(&mut conn, &smaller, now).unwrap(),
        1
    );
    let token = app.token("cw", "fier", &["caseworker"]);
    expect_problem(app.get("/api/v1/organisations/offlimits", &token).await, 404).await;
    assert_eq!(
        nrm::db::organisations::sync_registry(&mut conn, &registry, now).unwrap(),
        1
    );
    assert_eq!(app.get("/api/v1/organisations/offlimits", &token).await.status(), 200);
}
api_test!(registry_sync_is_idempotent);

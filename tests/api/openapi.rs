//! The committed `openapi/nrm.json` is what the code generates and what the service serves.
//! Refresh it with `cargo run -q -- openapi > openapi/nrm.json`.

use serde_json::Value;

use crate::api_test;
use crate::helpers::{TestApp, manifest_dir};

fn committed() -> String {
    std::fs::read_to_string(manifest_dir().join("openapi/nrm.json")).expect("openapi/nrm.json exists")
}

#[test]
fn committed_document_matches_the_code() {
    let generated = nrm::api::openapi_json_text();
    assert!(
        committed() == generated,
        "openapi/nrm.json is stale: run `cargo run -q -- openapi > openapi/nrm.json` and commit it"
    );
}

#[test]
fn document_is_openapi_31_with_bearer_security_on_every_api_route() {
    let doc: Value = serde_json::from_str(&nrm::api::openapi_json_text()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/health/ready"));
    assert!(paths.contains_key("/api/v1/organisations/{slug}"));
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let secured = operation.get("security").is_some();
            let public = path.starts_with("/health/") || path == "/api/v1/openapi.json";
            assert_eq!(secured, !public, "{method} {path}: security {secured}");
            let responses = operation["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path} documents no responses");
            if secured {
                assert!(responses.contains_key("401"), "{method} {path} does not document 401");
            }
        }
    }
}

async fn served_document_is_the_committed_one(app: TestApp) {
    let response = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let served: Value = response.json().await.unwrap();
    let committed: Value = serde_json::from_str(&committed()).unwrap();
    assert_eq!(served, committed);
}
api_test!(served_document_is_the_committed_one);

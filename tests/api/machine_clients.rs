//! Machine clients: systems of organisations acting with OAuth client-credentials tokens.
//! The chat platform of Fier opens a case from a chat and records the consent given there;
//! a person submits, answers and closes. Tokens signed here (HS256) and minted by the real
//! OpenID provider of the web sign-in tests (`web/tests/oidc-provider.mjs`).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend_test;
use crate::browser::{free_port, setup, start_provider};
use crate::helpers::{Backend, TEST_HS256_SECRET, TestApp, adult_case, expect_problem, now_unix, on, sign_hs256};
use nrm::config::{MachineClientSettings, Settings};

const CHAT: &str = "fier-chat-platform";
const CSG_SYSTEM: &str = "csg-case-system";

fn machine_clients(s: &mut Settings) {
    s.jwt.machine_clients = vec![
        MachineClientSettings {
            client_id: CHAT.into(),
            organisation: "fier".into(),
            scopes: vec!["nrm:case.open".into(), "nrm:consent.record".into()],
        },
        MachineClientSettings {
            client_id: CSG_SYSTEM.into(),
            organisation: "csg".into(),
            scopes: vec!["nrm:referral.read".into(), "nrm:capacity.report".into()],
        },
    ];
}

/// A client-credentials token as an identity provider issues one: no person, a client id,
/// scopes. `roles` is there to show it is ignored.
fn machine_token(client: &str, org: &str, scope: &str) -> String {
    let now = now_unix();
    let claims = json!({
        "client_id": client, "org": org, "scope": scope, "roles": ["caseworker", "admin"],
        "iat": now, "exp": now + 600, "iss": "nrm", "aud": "nrm",
    });
    sign_hs256(&claims, TEST_HS256_SECRET, Some("nrm-hs256"))
}

fn consent_body(org: &str) -> Value {
    json!({"scope": "referral", "organisation": org, "given_by": "victim", "method": "chat", "information_language": "nl"})
}

async fn kept_for_people(response: reqwest::Response) {
    let problem = expect_problem(response, 403).await;
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("kept for people"), "{problem}");
}

/// What a machine may and may not do, with a person finishing the handover.
async fn the_chat_platform_files_and_a_person_refers(backend: Backend) {
    let Some(app) = on(backend, machine_clients).await else {
        return;
    };
    let a = app.actors();
    let chat = machine_token(CHAT, "fier", "nrm:case.open nrm:consent.record");
    let case = app.create_case(&chat, &adult_case()).await;
    let id = case["id"].as_str().unwrap().to_string();
    let consent = app
        .post_ok(
            &format!("/api/v1/cases/{id}/consents"),
            &chat,
            &consent_body("csg"),
            201,
        )
        .await;
    assert_eq!(consent["organisation"], "csg");

    // Kept for people, said as such: drafting a referral, reading the case, the case list.
    kept_for_people(
        app.post_json(
            &format!("/api/v1/cases/{id}/referrals"),
            &chat,
            &json!({"to_organisation": "csg", "services": ["acute_sexual_violence_care"], "urgency": "urgent"}),
        )
        .await,
    )
    .await;
    kept_for_people(app.get(&format!("/api/v1/cases/{id}"), &chat).await).await;
    kept_for_people(app.get("/api/v1/cases", &chat).await).await;
    kept_for_people(app.get("/api/v1/audit", &chat).await).await;

    // A person takes over the case the chat opened.
    app.reasonable_grounds(&a.fier_caseworker, &id).await;
    let draft = app
        .draft_referral(&a.fier_caseworker, &id, "csg", &["acute_sexual_violence_care"])
        .await;
    let referral = app.step(&a.fier_caseworker, &draft, json!({"action": "submit"})).await;
    let referral_id = referral["id"].as_str().unwrap();

    // The scopes decide: the chat platform was not given referral reading.
    let problem = expect_problem(app.get(&format!("/api/v1/referrals/{referral_id}"), &chat).await, 403).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("`nrm:referral.read`"),
        "{problem}"
    );
    // CSG's case system pulls the referral it was sent, but a person accepts it.
    let csg_system = machine_token(CSG_SYSTEM, "csg", "nrm:referral.read nrm:case.open");
    let pulled = app.get(&format!("/api/v1/referrals/{referral_id}"), &csg_system).await;
    assert_eq!(pulled.status(), StatusCode::OK);
    let pulled: Value = pulled.json().await.unwrap();
    assert_eq!(pulled["to_organisation"], "csg");
    let (status, _) = app
        .transition(&csg_system, &pulled, json!({"action": "acknowledge"}))
        .await;
    assert_eq!(status, 403);
    // `nrm:case.open` is in its token but not allowed for it in the configuration.
    let problem = expect_problem(app.post_json("/api/v1/cases", &csg_system, &adult_case()).await, 403).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("`nrm:case.open`")
    );
    // Another organisation's referral is not there for a machine either.
    let (_, to_shn) = app.submitted_referral("slachtofferhulp", &["practical_support"]).await;
    let shn_id = to_shn["id"].as_str().unwrap();
    expect_problem(app.get(&format!("/api/v1/referrals/{shn_id}"), &csg_system).await, 404).await;
    app.step(&a.csg_intake, &pulled, json!({"action": "acknowledge"})).await;

    // Every audit entry says who acted: the machine by its client id and scopes.
    let audit: Value = app
        .get(&format!("/api/v1/audit?case_id={id}"), &a.comensha_coordinator)
        .await
        .json()
        .await
        .unwrap();
    let entries = audit["items"].as_array().unwrap();
    let by = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {audit}"))
    };
    for action in ["case.create", "consent.create"] {
        let entry = by(action);
        assert_eq!(entry["actor_kind"], "machine", "{entry}");
        assert_eq!(entry["actor_sub"], CHAT);
        assert_eq!(entry["actor_org"], "fier");
        assert_eq!(entry["actor_roles"], "nrm:case.open nrm:consent.record");
    }
    let submitted = by("referral.submit");
    assert_eq!(submitted["actor_kind"], "person");
    assert_eq!(submitted["actor_sub"], "cw-anna");
    let verify: Value = app
        .get("/api/v1/audit/verify", &a.comensha_coordinator)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verify["valid"], true, "{verify}");
}
backend_test!(the_chat_platform_files_and_a_person_refers);

/// Tokens that claim too much are refused outright (401): a machine client for another
/// organisation, and a token with neither a person nor a listed client.
async fn tokens_that_claim_too_much_are_refused(backend: Backend) {
    let Some(app) = on(backend, machine_clients).await else {
        return;
    };
    for token in [
        machine_token(CHAT, "csg", "nrm:case.open"),
        machine_token("unknown-system", "fier", "nrm:case.open"),
    ] {
        let response = app.post_json("/api/v1/cases", &token, &adult_case()).await;
        expect_problem(response, 401).await;
    }
    // A listed client named by `azp` (Keycloak, Entra ID) counts as well.
    let now = now_unix();
    let azp = sign_hs256(
        &json!({"azp": CHAT, "sub": "service-account-fier-chat", "org": "fier", "scope": "nrm:case.open",
                "iat": now, "exp": now + 600, "iss": "nrm", "aud": "nrm"}),
        TEST_HS256_SECRET,
        Some("nrm-hs256"),
    );
    app.create_case(&azp, &adult_case()).await;
}
backend_test!(tokens_that_claim_too_much_are_refused);

async fn client_token(app_provider: &str, client: &str, scope: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{app_provider}/token"))
        .basic_auth(client, Some(format!("{client}-test-secret")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "client_credentials")
                .append_pair("scope", scope)
                .finish(),
        )
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().expect("access_token").to_string()
}

/// The client-credentials grant at a real OpenID provider: RS256 access tokens (RFC 9068)
/// checked against its JWKS, under the same issuer and audience rules as people's tokens.
async fn client_credentials_from_the_openid_provider(backend: Backend) {
    setup();
    let provider_port = free_port();
    let issuer = format!("http://127.0.0.1:{provider_port}");
    let _provider = start_provider(provider_port, "http://127.0.0.1:9");
    let jwks = format!("{issuer}/jwks");
    let provider = issuer.clone();
    let Some(app) = on(backend, move |s| {
        machine_clients(s);
        s.jwt.issuer = provider;
        s.jwt.algorithms = vec!["RS256".into()];
        s.jwt.jwks_url = jwks;
    })
    .await
    else {
        return;
    };
    let chat = client_token(&issuer, CHAT, "nrm:case.open nrm:consent.record").await;
    let case = app.create_case(&chat, &adult_case()).await;
    let id = case["id"].as_str().unwrap();
    app.post_ok(
        &format!("/api/v1/cases/{id}/consents"),
        &chat,
        &consent_body("csg"),
        201,
    )
    .await;
    kept_for_people(app.get(&format!("/api/v1/cases/{id}"), &chat).await).await;
    // A token with only some scopes can do only that.
    let narrow = client_token(&issuer, CHAT, "nrm:consent.record").await;
    let problem = expect_problem(app.post_json("/api/v1/cases", &narrow, &adult_case()).await, 403).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("`nrm:case.open`")
    );
    // CSG's system, same provider: its own capacity, and nobody's cases.
    let csg = client_token(&issuer, CSG_SYSTEM, "nrm:referral.read nrm:capacity.report").await;
    let listed = app.get("/api/v1/referrals?direction=incoming", &csg).await;
    assert_eq!(listed.status(), StatusCode::OK);
    expect_problem(app.get(&format!("/api/v1/cases/{id}"), &csg).await, 404).await;
    // The HS256 development tokens are not accepted beside the provider's.
    let person: &TestApp = &app;
    expect_problem(
        person
            .post_json(
                "/api/v1/cases",
                &person.token("cw-anna", "fier", &["caseworker"]),
                &adult_case(),
            )
            .await,
        401,
    )
    .await;
}
backend_test!(client_credentials_from_the_openid_provider);

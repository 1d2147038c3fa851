//! The handover: guards, the state machine through HTTP, visibility and races.

use serde_json::{Value, json};

use crate::api_test;
use crate::helpers::{Backend, TestApp, adult_case, expect_problem, manifest_dir, spawn_app_with, spawn_postgres_app};

fn guards_of(body: &Value) -> Vec<String> {
    body["guards"]
        .as_array()
        .map(|a| a.iter().map(|g| g.as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

async fn full_handover_path(app: TestApp) {
    let a = app.actors();
    let case = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let case_id = case["id"].as_str().unwrap();
    app.reasonable_grounds(&a.fier_caseworker, case_id).await;
    app.consent(&a.fier_caseworker, case_id, "referral", "csg").await;
    let draft = app
        .draft_referral(&a.fier_caseworker, case_id, "csg", &["acute_sexual_violence_care"])
        .await;
    assert_eq!(draft["state"], "draft");
    assert_eq!(draft["from_organisation"], "fier");
    assert_eq!(draft["allowed_actions"], json!(["submit", "withdraw"]));

    // The receiver cannot see a draft.
    expect_problem(
        app.get(
            &format!("/api/v1/referrals/{}", draft["id"].as_str().unwrap()),
            &a.csg_intake,
        )
        .await,
        404,
    )
    .await;

    let submitted = app.step(&a.fier_caseworker, &draft, json!({"action": "submit"})).await;
    assert_eq!(submitted["state"], "submitted");
    assert_eq!(submitted["allowed_actions"], json!(["withdraw"]));

    // The receiver sees it in its incoming list, with the minimum case data.
    let incoming: Value = app
        .get("/api/v1/referrals?direction=incoming", &a.csg_intake)
        .await
        .json()
        .await
        .unwrap();
    let item = &incoming["items"][0];
    assert_eq!(item["id"], submitted["id"]);
    assert_eq!(item["allowed_actions"], json!(["acknowledge", "accept", "decline"]));
    assert_eq!(item["case"]["exploitation_forms"], json!(["sexual"]));
    assert_eq!(item["case"]["pseudonym"], "zonnebloem88");
    assert_eq!(item["case"]["minor"], false);

    let acknowledged = app.step(&a.csg_intake, item, json!({"action": "acknowledge"})).await;
    let accepted = app
        .step(&a.csg_intake, &acknowledged, json!({"action": "accept"}))
        .await;
    let in_care = app
        .step(&a.csg_intake, &accepted, json!({"action": "start_care"}))
        .await;
    let completed = app
        .step(
            &a.csg_intake,
            &in_care,
            json!({"action": "complete", "outcome_code": "support_provided", "outcome": "Medische zorg en nazorg gegeven"}),
        )
        .await;
    assert_eq!(completed["state"], "completed");
    assert_eq!(completed["allowed_actions"], json!([]));

    // The closed loop: the sender sees the outcome and the whole history.
    let seen: Value = app
        .get(
            &format!("/api/v1/referrals/{}", completed["id"].as_str().unwrap()),
            &a.fier_caseworker,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["state"], "completed");
    assert_eq!(seen["outcome"], "support_provided");
    let history = seen["history"].as_array().unwrap();
    let actions: Vec<&str> = history.iter().map(|h| h["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        vec!["submit", "acknowledge", "accept", "start_care", "complete"]
    );
    assert_eq!(history[4]["outcome"], "Medische zorg en nazorg gegeven");
    assert_eq!(history[4]["actor_org"], "csg");
    assert_eq!(history[0]["actor_sub"], "cw-anna");
    for stamp in [
        "submitted_at",
        "acknowledged_at",
        "decided_at",
        "care_started_at",
        "closed_at",
    ] {
        assert!(seen[stamp].is_string(), "{stamp} missing");
    }
    let outgoing: Value = app
        .get(
            "/api/v1/referrals?direction=outgoing&state=completed",
            &a.fier_caseworker,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(outgoing["items"].as_array().unwrap().len(), 1);
}
api_test!(full_handover_path);

async fn every_submit_guard_refuses_with_its_code(app: TestApp) {
    let a = app.actors();
    let submit = json!({"action": "submit"});

    // No reasonable grounds, no consent, a service the receiver does not offer, to itself:
    // every unmet guard is listed at once.
    let case = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let id = case["id"].as_str().unwrap();
    let to_self = app
        .draft_referral(&a.fier_caseworker, id, "fier", &["image_removal"])
        .await;
    let (status, body) = app.transition(&a.fier_caseworker, &to_self, submit.clone()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        guards_of(&body),
        vec![
            "no_reasonable_grounds",
            "no_referral_consent",
            "service_not_offered",
            "receiver_is_sender"
        ]
    );

    // One at a time.
    app.reasonable_grounds(&a.fier_caseworker, id).await;
    let to_csg = app
        .draft_referral(&a.fier_caseworker, id, "csg", &["acute_sexual_violence_care"])
        .await;
    let (status, body) = app.transition(&a.fier_caseworker, &to_csg, submit.clone()).await;
    assert_eq!(
        (status, guards_of(&body)),
        (422, vec!["no_referral_consent".to_string()])
    );

    app.consent(&a.fier_caseworker, id, "referral", "csg").await;
    let wrong_service = app
        .draft_referral(&a.fier_caseworker, id, "csg", &["image_removal"])
        .await;
    let (status, body) = app.transition(&a.fier_caseworker, &wrong_service, submit.clone()).await;
    assert_eq!(
        (status, guards_of(&body)),
        (422, vec!["service_not_offered".to_string()])
    );

    // The case is in Amsterdam; Rotterdam's care coordination does not serve it.
    app.consent(&a.fier_caseworker, id, "referral", "zorgcoordinatie-rotterdam")
        .await;
    let out_of_region = app
        .draft_referral(
            &a.fier_caseworker,
            id,
            "zorgcoordinatie-rotterdam",
            &["care_coordination"],
        )
        .await;
    let (status, body) = app.transition(&a.fier_caseworker, &out_of_region, submit.clone()).await;
    assert_eq!((status, guards_of(&body)), (422, vec!["region_not_served".to_string()]));

    // A second open referral to the same receiver.
    app.step(&a.fier_caseworker, &to_csg, submit.clone()).await;
    let second = app
        .draft_referral(&a.fier_caseworker, id, "csg", &["psychosocial_support"])
        .await;
    let (status, body) = app.transition(&a.fier_caseworker, &second, submit.clone()).await;
    assert_eq!(
        (status, guards_of(&body)),
        (422, vec!["duplicate_open_referral".to_string()])
    );
    assert!(body["detail"].as_str().unwrap().contains("open referral"));

    // A withdrawn consent no longer counts.
    let consents: Value = app
        .get(&format!("/api/v1/cases/{id}/consents"), &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    let rotterdam = consents["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["organisation"] == "zorgcoordinatie-rotterdam")
        .unwrap();
    app.post_ok(
        &format!(
            "/api/v1/cases/{id}/consents/{}/withdraw",
            rotterdam["id"].as_str().unwrap()
        ),
        &a.fier_caseworker,
        &json!({}),
        200,
    )
    .await;
    // The draft relied on that consent and was withdrawn by the system with it.
    let seen: Value = app
        .get(
            &format!("/api/v1/referrals/{}", out_of_region["id"].as_str().unwrap()),
            &a.fier_caseworker,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["state"], "withdrawn");
}
api_test!(every_submit_guard_refuses_with_its_code);

async fn declining_to_report_to_police_does_not_block_referral(app: TestApp) {
    let a = app.actors();
    let mut body = adult_case();
    body["police_report_intention"] = json!("will_not_report");
    let case = app.create_case(&a.fier_caseworker, &body).await;
    assert_eq!(case["police_report_intention"], "will_not_report");
    let id = case["id"].as_str().unwrap();
    app.reasonable_grounds(&a.fier_caseworker, id).await;
    app.consent(&a.fier_caseworker, id, "referral", "slachtofferhulp").await;
    let draft = app
        .draft_referral(
            &a.fier_caseworker,
            id,
            "slachtofferhulp",
            &["legal_support", "practical_support"],
        )
        .await;
    let submitted = app.step(&a.fier_caseworker, &draft, json!({"action": "submit"})).await;
    let accepted = app.step(&a.shn_intake, &submitted, json!({"action": "accept"})).await;
    assert_eq!(accepted["state"], "accepted");
}
api_test!(declining_to_report_to_police_does_not_block_referral);

/// A registry where Noord's care coordination takes adults only.
fn adults_only_registry() -> std::path::PathBuf {
    let shipped = std::fs::read_to_string(manifest_dir().join("config/organisations.toml")).unwrap();
    let marker = "slug = \"zorgcoordinatie-noord\"";
    let start = shipped.find(marker).unwrap();
    let (before, after) = shipped.split_at(start);
    let after = after
        .replacen("accepts_minors = true", "accepts_minors = false", 1)
        .replacen("\nminors = true", "\nminors = false", 1);
    let dir = std::env::temp_dir().join(format!("nrm-registry-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("organisations.toml");
    std::fs::write(&path, format!("{before}{after}")).unwrap();
    path
}

async fn minor_guards(app: TestApp) {
    let a = app.actors();
    let submit = json!({"action": "submit"});
    let mut body = adult_case();
    body["age_at_contact"] = json!(15);
    body["region"] = json!("noord");
    body["exploitation_forms"] = json!(["criminal"]);
    let case = app.create_case(&a.fier_caseworker, &body).await;
    assert_eq!(case["minor"], true);
    let id = case["id"].as_str().unwrap();
    app.reasonable_grounds(&a.fier_caseworker, id).await;

    // No consent and no statutory basis.
    let draft = app
        .draft_referral(&a.fier_caseworker, id, "slachtofferhulp", &["practical_support"])
        .await;
    let (status, refusal) = app.transition(&a.fier_caseworker, &draft, submit.clone()).await;
    assert_eq!(
        (status, guards_of(&refusal)),
        (422, vec!["no_referral_consent".to_string()])
    );

    // A statutory child-protection basis stands in for consent.
    app.post_ok(
        &format!("/api/v1/cases/{id}/legal-basis"),
        &a.fier_caseworker,
        &json!({"basis": "child_protection", "justification": "Acuut risico; ouders onbereikbaar"}),
        201,
    )
    .await;
    app.step(&a.fier_caseworker, &draft, submit.clone()).await;

    // An adults-only receiver is refused for a child, whatever the consent.
    app.consent(&a.fier_caseworker, id, "referral", "zorgcoordinatie-noord")
        .await;
    let adult_route = app
        .draft_referral(&a.fier_caseworker, id, "zorgcoordinatie-noord", &["care_coordination"])
        .await;
    let (status, refusal) = app.transition(&a.fier_caseworker, &adult_route, submit.clone()).await;
    assert_eq!(
        (status, guards_of(&refusal)),
        (422, vec!["receiver_does_not_accept_minors".to_string()])
    );

    // A presumed minor without a known age is a child too (Art. 13(2)).
    let mut presumed = adult_case();
    presumed.as_object_mut().unwrap().remove("age_at_contact");
    presumed["presumed_minor"] = json!(true);
    presumed["region"] = json!("noord");
    let case = app.create_case(&a.fier_caseworker, &presumed).await;
    let id = case["id"].as_str().unwrap();
    app.reasonable_grounds(&a.fier_caseworker, id).await;
    // Consent by a guardian counts for a child.
    app.post_ok(
        &format!("/api/v1/cases/{id}/consents"),
        &a.fier_caseworker,
        &json!({"scope": "referral", "organisation": "zorgcoordinatie-noord", "given_by": "guardian", "method": "verbal", "information_language": "nl"}),
        201,
    )
    .await;
    let draft = app
        .draft_referral(&a.fier_caseworker, id, "zorgcoordinatie-noord", &["care_coordination"])
        .await;
    let (status, refusal) = app.transition(&a.fier_caseworker, &draft, submit).await;
    assert_eq!(
        (status, guards_of(&refusal)),
        (422, vec!["receiver_does_not_accept_minors".to_string()])
    );
}

async fn minor_needs_consent_or_statutory_basis_on(backend: Backend) {
    let registry = adults_only_registry();
    let adjust = |s: &mut nrm::config::Settings| s.registry.organisations_file = registry.clone();
    let app = match backend {
        Backend::Sqlite => Some(spawn_app_with(backend, adjust).await),
        Backend::Postgres => spawn_postgres_app(adjust).await,
    };
    if let Some(app) = app {
        minor_guards(app).await;
    }
    let _ = std::fs::remove_dir_all(registry.parent().unwrap());
}

mod minor_needs_consent_or_statutory_basis {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::minor_needs_consent_or_statutory_basis_on(crate::helpers::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::minor_needs_consent_or_statutory_basis_on(crate::helpers::Backend::Postgres).await;
    }
}

async fn consent_withdrawal_withdraws_open_referrals(app: TestApp) {
    let a = app.actors();
    let (case, submitted) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let case_id = case["id"].as_str().unwrap();
    let consents: Value = app
        .get(&format!("/api/v1/cases/{case_id}/consents"), &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    let consent_id = consents["items"][0]["id"].as_str().unwrap().to_string();
    let withdrawn = app
        .post_ok(
            &format!("/api/v1/cases/{case_id}/consents/{consent_id}/withdraw"),
            &a.fier_caseworker,
            &json!({}),
            200,
        )
        .await;
    assert_eq!(withdrawn["withdrawn"], true);

    let referral: Value = app
        .get(
            &format!("/api/v1/referrals/{}", submitted["id"].as_str().unwrap()),
            &a.csg_intake,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(referral["state"], "withdrawn");
    let last = referral["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "withdraw");
    assert_eq!(last["actor_sub"], "system");
    assert_eq!(last["reason"], "consent withdrawn");
    assert_eq!(referral["allowed_actions"], json!([]));

    // Withdrawing twice is a conflict; no new referral can rely on it.
    let again = app
        .post_json(
            &format!("/api/v1/cases/{case_id}/consents/{consent_id}/withdraw"),
            &a.fier_caseworker,
            &json!({}),
        )
        .await;
    expect_problem(again, 409).await;
    let draft = app
        .draft_referral(&a.fier_caseworker, case_id, "csg", &["acute_sexual_violence_care"])
        .await;
    let (status, body) = app
        .transition(&a.fier_caseworker, &draft, json!({"action": "submit"}))
        .await;
    assert_eq!(
        (status, guards_of(&body)),
        (422, vec!["no_referral_consent".to_string()])
    );
}
api_test!(consent_withdrawal_withdraws_open_referrals);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    SenderCaseworker,
    SenderIntake,
    ReceiverIntake,
    ReceiverCaseworker,
    ThirdOrganisation,
}

const ACTIONS: [&str; 7] = [
    "submit",
    "acknowledge",
    "accept",
    "decline",
    "withdraw",
    "start_care",
    "complete",
];
const STATES: [&str; 8] = [
    "draft",
    "submitted",
    "acknowledged",
    "accepted",
    "in_care",
    "completed",
    "declined",
    "withdrawn",
];
const WHO: [Who; 5] = [
    Who::SenderCaseworker,
    Who::SenderIntake,
    Who::ReceiverIntake,
    Who::ReceiverCaseworker,
    Who::ThirdOrganisation,
];

/// The transition table as the issue states it, written out by hand.
const ALLOWED: [(&str, &str, Who); 12] = [
    ("draft", "submit", Who::SenderCaseworker),
    ("draft", "withdraw", Who::SenderCaseworker),
    ("submitted", "acknowledge", Who::ReceiverIntake),
    ("submitted", "accept", Who::ReceiverIntake),
    ("submitted", "decline", Who::ReceiverIntake),
    ("submitted", "withdraw", Who::SenderCaseworker),
    ("acknowledged", "accept", Who::ReceiverIntake),
    ("acknowledged", "decline", Who::ReceiverIntake),
    ("acknowledged", "withdraw", Who::SenderCaseworker),
    ("accepted", "start_care", Who::ReceiverIntake),
    ("accepted", "complete", Who::ReceiverIntake),
    ("in_care", "complete", Who::ReceiverIntake),
];

fn body_for(action: &str) -> Value {
    match action {
        "decline" => {
            json!({"action": "decline", "reason_code": "no_capacity", "reason": "Geen plek deze week"})
        }
        "withdraw" => json!({"action": "withdraw", "reason": "Cliënt wil eerst nadenken"}),
        "complete" => {
            json!({"action": "complete", "outcome_code": "referred_on", "outcome": "Doorverwezen naar huisarts"})
        }
        other => json!({"action": other}),
    }
}

fn token_for(app: &TestApp, who: Who) -> String {
    let a = app.actors();
    match who {
        Who::SenderCaseworker => a.fier_caseworker,
        Who::SenderIntake => a.fier_intake,
        Who::ReceiverIntake => a.csg_intake,
        Who::ReceiverCaseworker => a.csg_caseworker,
        Who::ThirdOrganisation => a.offlimits_intake,
    }
}

/// A referral from Fier to CSG brought into `state` through HTTP.
async fn referral_in(app: &TestApp, state: &str) -> Value {
    let a = app.actors();
    let case = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let id = case["id"].as_str().unwrap();
    app.reasonable_grounds(&a.fier_caseworker, id).await;
    app.consent(&a.fier_caseworker, id, "referral", "csg").await;
    let mut r = app
        .draft_referral(&a.fier_caseworker, id, "csg", &["acute_sexual_violence_care"])
        .await;
    let path: &[(&str, Who)] = match state {
        "draft" => &[],
        "submitted" => &[("submit", Who::SenderCaseworker)],
        "acknowledged" => &[("submit", Who::SenderCaseworker), ("acknowledge", Who::ReceiverIntake)],
        "accepted" => &[("submit", Who::SenderCaseworker), ("accept", Who::ReceiverIntake)],
        "in_care" => &[
            ("submit", Who::SenderCaseworker),
            ("accept", Who::ReceiverIntake),
            ("start_care", Who::ReceiverIntake),
        ],
        "completed" => &[
            ("submit", Who::SenderCaseworker),
            ("accept", Who::ReceiverIntake),
            ("complete", Who::ReceiverIntake),
        ],
        "declined" => &[("submit", Who::SenderCaseworker), ("decline", Who::ReceiverIntake)],
        "withdrawn" => &[("withdraw", Who::SenderCaseworker)],
        other => panic!("no path to {other}"),
    };
    for (action, who) in path {
        r = app.step(&token_for(app, *who), &r, body_for(action)).await;
    }
    assert_eq!(r["state"], state);
    r
}

async fn state_action_role_table(app: TestApp) {
    for state in STATES {
        let referral = referral_in(&app, state).await;
        for action in ACTIONS {
            for who in WHO {
                let allowed = ALLOWED.contains(&(state, action, who));
                let expected = if allowed {
                    200
                } else if who == Who::ThirdOrganisation
                    // Never handed over: a draft, or one withdrawn as a draft.
                    || (matches!(state, "draft" | "withdrawn") && matches!(who, Who::ReceiverIntake | Who::ReceiverCaseworker))
                {
                    404
                } else if matches!(who, Who::SenderIntake | Who::ReceiverCaseworker) {
                    403
                } else {
                    409
                };
                if allowed {
                    // A fresh referral, so the table's other cells keep their state.
                    let fresh = referral_in(&app, state).await;
                    let (status, body) = app.transition(&token_for(&app, who), &fresh, body_for(action)).await;
                    assert_eq!(status, 200, "{state} {action} {who:?}: {body}");
                    continue;
                }
                let (status, body) = app.transition(&token_for(&app, who), &referral, body_for(action)).await;
                assert_eq!(status, expected, "{state} {action} {who:?}: {body}");
                assert!(body["type"].is_string(), "problem body for {state} {action} {who:?}");
                if expected == 409 {
                    let listed: Vec<&str> = body["allowed_actions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| a.as_str().unwrap())
                        .collect();
                    let wanted: Vec<&str> = ACTIONS
                        .into_iter()
                        .filter(|act| ALLOWED.contains(&(state, act, who)))
                        .collect();
                    assert_eq!(listed, wanted, "{state} {action} {who:?}");
                }
            }
        }
    }
}
api_test!(state_action_role_table);

async fn transitions_need_fields_their_action_takes(app: TestApp) {
    let a = app.actors();
    let (_, submitted) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let (status, body) = app
        .transition(&a.csg_intake, &submitted, json!({"action": "decline"}))
        .await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["reason_code", "reason"]);
    let (status, _) = app
        .transition(
            &a.csg_intake,
            &submitted,
            json!({"action": "decline", "reason_code": "other", "reason": "   "}),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = app
        .transition(&a.csg_intake, &submitted, json!({"action": "accept", "outcome": "x"}))
        .await;
    assert_eq!(status, 422);
    let (status, _) = app
        .transition(&a.csg_intake, &submitted, json!({"action": "fly"}))
        .await;
    assert_eq!(status, 422);
    let declined = app
        .step(
            &a.csg_intake,
            &submitted,
            json!({"action": "decline", "reason_code": "not_eligible", "reason": "Buiten doelgroep"}),
        )
        .await;
    assert_eq!(declined["decline_reason"], "not_eligible");
    assert_eq!(declined["history"][1]["reason"], "Buiten doelgroep");
}
api_test!(transitions_need_fields_their_action_takes);

async fn etag_required_and_checked(app: TestApp) {
    let a = app.actors();
    let (_, submitted) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let url = app.url(&format!(
        "/api/v1/referrals/{}/transitions",
        submitted["id"].as_str().unwrap()
    ));
    let accept = json!({"action": "accept"});
    let send = |if_match: Option<&'static str>| {
        let mut request = app.client.post(&url).bearer_auth(&a.csg_intake).json(&accept);
        if let Some(value) = if_match {
            request = request.header("If-Match", value);
        }
        request.send()
    };
    expect_problem(send(None).await.unwrap(), 428).await;
    let star = expect_problem(send(Some("*")).await.unwrap(), 428).await;
    assert!(
        star["detail"].as_str().unwrap().contains("would match any version"),
        "{star}"
    );
    expect_problem(send(Some("\"1\"")).await.unwrap(), 412).await;
    expect_problem(send(Some("garbage")).await.unwrap(), 412).await;
    // Strong comparison (RFC 9110): the current version, but weak or unquoted, never matches.
    assert_eq!(submitted["version"], 2);
    expect_problem(send(Some("W/\"2\"")).await.unwrap(), 412).await;
    expect_problem(send(Some("2")).await.unwrap(), 412).await;
    // The GET's ETag is the one to send.
    let get = app
        .get(
            &format!("/api/v1/referrals/{}", submitted["id"].as_str().unwrap()),
            &a.csg_intake,
        )
        .await;
    let etag = get.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", submitted["version"]));
    let ok = app
        .client
        .post(&url)
        .bearer_auth(&a.csg_intake)
        .header("If-Match", etag.clone())
        .json(&accept)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_ne!(ok.headers()["etag"].to_str().unwrap(), etag);
}
api_test!(etag_required_and_checked);

async fn parallel_accepts_have_exactly_one_winner(app: TestApp) {
    let a = app.actors();
    let (_, submitted) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let url = app.url(&format!(
        "/api/v1/referrals/{}/transitions",
        submitted["id"].as_str().unwrap()
    ));
    let etag = format!("\"{}\"", submitted["version"]);
    let mut handles = Vec::new();
    for _ in 0..12 {
        // A client per request: separate connections, truly concurrent.
        let client = reqwest::Client::new();
        let (url, etag, token) = (url.clone(), etag.clone(), a.csg_intake.clone());
        handles.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .header("If-Match", etag)
                .json(&json!({"action": "accept"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for handle in handles {
        statuses.push(handle.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 412), "{statuses:?}");
    let seen: Value = app
        .get(
            &format!("/api/v1/referrals/{}", submitted["id"].as_str().unwrap()),
            &a.csg_intake,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["state"], "accepted");
    let accepts = seen["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["action"] == "accept")
        .count();
    assert_eq!(accepts, 1, "the transition was applied exactly once");
}
api_test!(parallel_accepts_have_exactly_one_winner);

async fn identifying_details_only_for_entitled_receivers(app: TestApp) {
    let a = app.actors();
    let mut body = adult_case();
    body["identifying_details"] =
        json!({"name": "Maria Testpersoon", "phone": "+31 6 1234 5678", "date_of_birth": "2000-02-29"});
    let case = app.create_case(&a.fier_caseworker, &body).await;
    assert_eq!(case["identifying_details"]["name"], "Maria Testpersoon");
    let id = case["id"].as_str().unwrap();
    let case_url = format!("/api/v1/cases/{id}");
    app.reasonable_grounds(&a.fier_caseworker, id).await;
    app.consent(&a.fier_caseworker, id, "referral", "csg").await;
    let draft = app
        .draft_referral(&a.fier_caseworker, id, "csg", &["acute_sexual_violence_care"])
        .await;

    // Before submission the receiver does not even see the case.
    expect_problem(app.get(&case_url, &a.csg_intake).await, 404).await;
    let submitted = app.step(&a.fier_caseworker, &draft, json!({"action": "submit"})).await;
    let seen: Value = app.get(&case_url, &a.csg_intake).await.json().await.unwrap();
    assert_eq!(seen["access"], "receiver");
    assert!(seen.get("identifying_details").is_none(), "{seen}");
    assert_eq!(seen["pseudonym"], "zonnebloem88");
    assert!(seen.get("nationality").is_none());

    // Accepted, but no data-sharing consent yet: still no details.
    let accepted = app.step(&a.csg_intake, &submitted, json!({"action": "accept"})).await;
    let seen: Value = app.get(&case_url, &a.csg_intake).await.json().await.unwrap();
    assert!(seen.get("identifying_details").is_none());

    let consent = app.consent(&a.fier_caseworker, id, "data_sharing", "csg").await;
    let seen: Value = app.get(&case_url, &a.csg_intake).await.json().await.unwrap();
    assert_eq!(seen["identifying_details"]["phone"], "+31 6 1234 5678");

    // Withdrawn data-sharing consent: gone again.
    app.post_ok(
        &format!(
            "/api/v1/cases/{id}/consents/{}/withdraw",
            consent["id"].as_str().unwrap()
        ),
        &a.fier_caseworker,
        &json!({}),
        200,
    )
    .await;
    let seen: Value = app.get(&case_url, &a.csg_intake).await.json().await.unwrap();
    assert!(seen.get("identifying_details").is_none());
    assert_eq!(accepted["state"], "accepted");

    // The focal point's coordinator sees facts only.
    let seen: Value = app.get(&case_url, &a.comensha_coordinator).await.json().await.unwrap();
    assert_eq!(seen["access"], "focal_point");
    assert!(
        seen.get("identifying_details").is_none() && seen.get("pseudonym").is_none(),
        "{seen}"
    );

    // Anyone else: 404 for the case and the referral; lists never carry details.
    for token in [
        &a.offlimits_intake,
        &a.police_officer,
        &a.shn_intake,
        &a.comensha_intake,
    ] {
        expect_problem(app.get(&case_url, token).await, 404).await;
        expect_problem(
            app.get(
                &format!("/api/v1/referrals/{}", submitted["id"].as_str().unwrap()),
                token,
            )
            .await,
            404,
        )
        .await;
    }
    let list = app.get("/api/v1/cases", &a.fier_caseworker).await.text().await.unwrap();
    assert!(!list.contains("Maria") && !list.contains("1234 5678"), "{list}");
    let incoming = app
        .get("/api/v1/referrals?direction=incoming", &a.csg_intake)
        .await
        .text()
        .await
        .unwrap();
    assert!(!incoming.contains("Maria"));
}
api_test!(identifying_details_only_for_entitled_receivers);

async fn bad_referral_input_is_422(app: TestApp) {
    let a = app.actors();
    let case = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let id = case["id"].as_str().unwrap();
    let response = app
        .post_json(
            &format!("/api/v1/cases/{id}/referrals"),
            &a.fier_caseworker,
            &json!({"to_organisation": "atlantis", "services": [], "urgency": "yesterday", "colour": "red"}),
        )
        .await;
    let body = expect_problem(response, 422).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["to_organisation", "services", "urgency", "colour"]);
    // Another organisation's case is not found; an intake user cannot refer.
    let other = app
        .post_json(
            &format!("/api/v1/cases/{id}/referrals"),
            &a.csg_caseworker,
            &json!({"to_organisation": "csg", "services": ["psychosocial_support"], "urgency": "routine"}),
        )
        .await;
    expect_problem(other, 404).await;
    let intake = app
        .post_json(
            &format!("/api/v1/cases/{id}/referrals"),
            &a.fier_intake,
            &json!({"to_organisation": "csg", "services": ["psychosocial_support"], "urgency": "routine"}),
        )
        .await;
    expect_problem(intake, 403).await;
    expect_problem(
        app.get("/api/v1/referrals?direction=sideways", &a.fier_caseworker)
            .await,
        422,
    )
    .await;
    expect_problem(app.get("/api/v1/referrals?state=lost", &a.fier_caseworker).await, 422).await;
    expect_problem(app.get("/api/v1/referrals/not-a-uuid", &a.fier_caseworker).await, 404).await;
}
api_test!(bad_referral_input_is_422);

/// The database-level guarantee under the race test: a write that names a version someone
/// else already replaced changes nothing.
async fn versioned_update_refuses_a_stale_version(app: TestApp) {
    let (_, submitted) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let db = nrm::startup::open_database(&app.settings).unwrap();
    let mut conn = db.get().unwrap();
    let id = nrm::db::Id(uuid::Uuid::parse_str(submitted["id"].as_str().unwrap()).unwrap());
    let mut row = nrm::db::referrals::find(&mut conn, id).unwrap().unwrap();
    let version = row.version;
    row.version += 1;
    assert!(nrm::db::referrals::update_versioned(&mut conn, &row, version).unwrap());
    row.version += 1;
    assert!(
        !nrm::db::referrals::update_versioned(&mut conn, &row, version).unwrap(),
        "stale version must not write"
    );
}
api_test!(versioned_update_refuses_a_stale_version);

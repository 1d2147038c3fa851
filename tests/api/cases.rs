//! Cases: validation, views, identification, PATCH, lists, idempotency and the anonymous
//! notification.

use chrono::{Days, Utc};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, adult_case, expect_problem, on};
use crate::{api_test, backend_test};

fn fields_of(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect()
}

async fn create_validates_every_field(app: TestApp) {
    let a = app.actors();
    let tomorrow = Utc::now()
        .date_naive()
        .checked_add_days(Days::new(2))
        .unwrap()
        .to_string();
    let bad = json!({
        "reporter_role": "neighbour",
        "contact_channel": 7,
        "contact_date": tomorrow,
        "exploitation_forms": [],
        "age_at_contact": 130,
        "age_uncertain": "yes",
        "gender": "x",
        "nationality": "XX",
        "region": "atlantis",
        "language": "klingon!",
        "pseudonym": "a\u{0}b",
        "identifying_details": {"email": "not-an-address", "phone": "call me", "shoe_size": 42},
        "favourite_colour": "blue"
    });
    let body = expect_problem(app.post_json("/api/v1/cases", &a.fier_caseworker, &bad).await, 422).await;
    assert_eq!(
        fields_of(&body),
        vec![
            "reporter_role",
            "contact_channel",
            "contact_date",
            "exploitation_forms",
            "age_at_contact",
            "age_uncertain",
            "gender",
            "nationality",
            "region",
            "language",
            "pseudonym",
            "identifying_details.phone",
            "identifying_details.email",
            "identifying_details.shoe_size",
            "favourite_colour"
        ]
    );
    // The messages say what is expected, never what was sent.
    let text = body.to_string();
    assert!(text.contains("must be one of: victim, concerned_person, professional"));
    assert!(!text.contains("neighbour") && !text.contains("atlantis") && !text.contains("call me"));

    let missing = expect_problem(
        app.post_json("/api/v1/cases", &a.fier_caseworker, &json!({})).await,
        422,
    )
    .await;
    assert_eq!(
        fields_of(&missing),
        vec!["reporter_role", "contact_channel", "contact_date", "exploitation_forms"]
    );

    // Only caseworkers file cases.
    expect_problem(app.post_json("/api/v1/cases", &a.csg_intake, &adult_case()).await, 403).await;

    let response = app.post_json("/api/v1/cases", &a.fier_caseworker, &adult_case()).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let created: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/cases/{}", created["id"].as_str().unwrap()));
    assert_eq!(created["organisation"], "fier");
    assert_eq!(created["identification"]["status"], "signal");
    assert_eq!(created["nationality_group"], "other_eu");
    assert_eq!(created["access"], "owner");
    assert!(
        uuid::Uuid::parse_str(created["id"].as_str().unwrap())
            .unwrap()
            .get_version_num()
            == 7
    );
}
api_test!(create_validates_every_field);

async fn presumed_minor_is_treated_as_child(app: TestApp) {
    let a = app.actors();
    let cases = [
        (json!(null), false, true, true),
        (json!(19), true, true, true),
        (json!(19), false, true, false),
        (json!(16), false, false, true),
        (json!(17), true, false, true),
        (json!(30), false, false, false),
    ];
    for (age, uncertain, presumed, minor) in cases {
        let mut body = adult_case();
        body["age_at_contact"] = age.clone();
        body["age_uncertain"] = json!(uncertain);
        body["presumed_minor"] = json!(presumed);
        let case = app.create_case(&a.fier_caseworker, &body).await;
        assert_eq!(
            case["minor"], minor,
            "age {age} uncertain {uncertain} presumed {presumed}"
        );
    }
}
api_test!(presumed_minor_is_treated_as_child);

async fn reasonable_grounds_start_reflection_period(app: TestApp) {
    let a = app.actors();
    let today = Utc::now().date_naive();
    let expected_end = today.checked_add_days(Days::new(90)).unwrap().to_string();

    let mut body = adult_case();
    body["nationality"] = json!("ma");
    let case = app.create_case(&a.fier_caseworker, &body).await;
    assert_eq!(case["nationality"], "MA");
    let after = app
        .reasonable_grounds(&a.fier_caseworker, case["id"].as_str().unwrap())
        .await;
    assert_eq!(after["identification"]["status"], "presumed_victim");
    assert_eq!(after["identification"]["reasonable_grounds_on"], today.to_string());
    assert_eq!(after["identification"]["reflection_period_end"], expected_end);
    assert_eq!(after["identification"]["decisions"][0]["actor_sub"], "cw-anna");

    // An EU national needs no reflection period.
    let case = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let after = app
        .reasonable_grounds(&a.fier_caseworker, case["id"].as_str().unwrap())
        .await;
    assert!(after["identification"]["reflection_period_end"].is_null());

    // Unknown nationality: recording it later starts the period from the grounds date.
    let mut body = adult_case();
    body.as_object_mut().unwrap().remove("nationality");
    let case = app.create_case(&a.fier_caseworker, &body).await;
    let id = case["id"].as_str().unwrap();
    let after = app.reasonable_grounds(&a.fier_caseworker, id).await;
    assert!(after["identification"]["reflection_period_end"].is_null());
    let patched = app
        .client
        .patch(app.url(&format!("/api/v1/cases/{id}")))
        .bearer_auth(&a.fier_caseworker)
        .header("If-Match", format!("\"{}\"", after["version"]))
        .json(&json!({"nationality": "NG"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["identification"]["reflection_period_end"], expected_end);
    // Twice is a conflict.
    let again = app
        .post_json(
            &format!("/api/v1/cases/{id}/identification"),
            &a.fier_caseworker,
            &json!({"decision": "reasonable_grounds", "basis": "x"}),
        )
        .await;
    expect_problem(again, 409).await;
}
api_test!(reasonable_grounds_start_reflection_period);

async fn identification_is_decided_by_the_focal_point(app: TestApp) {
    let a = app.actors();
    let case = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let id = case["id"].as_str().unwrap();
    let url = format!("/api/v1/cases/{id}/identification");
    let identified = json!({"decision": "identified", "basis": "Verklaring en signalen bevestigd"});
    // Before reasonable grounds: not possible.
    expect_problem(app.post_json(&url, &a.comensha_coordinator, &identified).await, 409).await;
    app.reasonable_grounds(&a.fier_caseworker, id).await;
    // The caseworker cannot identify; a coordinator of another organisation cannot either.
    expect_problem(app.post_json(&url, &a.fier_caseworker, &identified).await, 403).await;
    let fier_coordinator = app.token("coord-jan", "fier", &["coordinator"]);
    expect_problem(app.post_json(&url, &fier_coordinator, &identified).await, 403).await;
    let csg_coordinator = app.token("coord-kim", "csg", &["coordinator"]);
    expect_problem(app.post_json(&url, &csg_coordinator, &identified).await, 404).await;
    // The focal point's intake staff cannot either (coordinator role needed).
    expect_problem(app.post_json(&url, &a.comensha_intake, &identified).await, 404).await;
    // Reasonable grounds are the caseworker's, not the coordinator's.
    let grounds = json!({"decision": "reasonable_grounds", "basis": "x"});
    expect_problem(app.post_json(&url, &a.comensha_coordinator, &grounds).await, 403).await;

    let decided = app.post_ok(&url, &a.comensha_coordinator, &identified, 200).await;
    assert_eq!(decided["identification"]["status"], "identified");
    assert_eq!(decided["access"], "focal_point");
    assert!(decided.get("pseudonym").is_none());
    let owner: Value = app
        .get(&format!("/api/v1/cases/{id}"), &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    let decisions: Vec<&str> = owner["identification"]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, vec!["reasonable_grounds", "identified"]);
    expect_problem(
        app.post_json(
            &url,
            &a.comensha_coordinator,
            &json!({"decision": "not_identified", "basis": "y"}),
        )
        .await,
        409,
    )
    .await;
}
api_test!(identification_is_decided_by_the_focal_point);

async fn patch_changes_only_what_is_sent(app: TestApp) {
    let a = app.actors();
    let mut body = adult_case();
    body["identifying_details"] = json!({"name": "Iemand Anders"});
    let case = app.create_case(&a.fier_caseworker, &body).await;
    let id = case["id"].as_str().unwrap();
    let url = app.url(&format!("/api/v1/cases/{id}"));
    let patch = |token: &str, body: Value, if_match: Option<String>| {
        let mut request = app.client.patch(&url).bearer_auth(token.to_string()).json(&body);
        if let Some(value) = if_match {
            request = request.header("If-Match", value);
        }
        request.send()
    };
    let response = patch(
        &a.fier_caseworker,
        json!({"exploitation_forms": ["sexual", "criminal"], "pseudonym": null}),
        Some("\"1\"".into()),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["exploitation_forms"], json!(["sexual", "criminal"]));
    assert!(patched.get("pseudonym").is_none() || patched["pseudonym"].is_null());
    assert_eq!(patched["region"], "amsterdam");
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["identifying_details"]["name"], "Iemand Anders");
    // Without If-Match two caseworkers could overwrite each other: 428. Weak and unquoted
    // tags never match (strong comparison).
    expect_problem(
        patch(&a.fier_caseworker, json!({"region": "utrecht"}), None)
            .await
            .unwrap(),
        428,
    )
    .await;
    for tag in ["W/\"2\"", "2"] {
        expect_problem(
            patch(&a.fier_caseworker, json!({"region": "utrecht"}), Some(tag.into()))
                .await
                .unwrap(),
            412,
        )
        .await;
    }
    // Stale version.
    expect_problem(
        patch(&a.fier_caseworker, json!({"region": "utrecht"}), Some("\"1\"".into()))
            .await
            .unwrap(),
        412,
    )
    .await;
    // Required fields cannot be cleared; bad values are 422.
    let body = expect_problem(
        patch(
            &a.fier_caseworker,
            json!({"contact_date": null, "age_at_contact": -1}),
            None,
        )
        .await
        .unwrap(),
        422,
    )
    .await;
    assert_eq!(fields_of(&body), vec!["contact_date", "age_at_contact"]);
    // null removes identifying details.
    let response = patch(&a.fier_caseworker, json!({"identifying_details": null}), None)
        .await
        .unwrap();
    let cleared: Value = response.json().await.unwrap();
    assert!(cleared.get("identifying_details").is_none(), "{cleared}");
    // Other organisations: 404; the owner's intake staff: 403.
    expect_problem(
        patch(&a.csg_caseworker, json!({"region": "utrecht"}), None)
            .await
            .unwrap(),
        404,
    )
    .await;
    expect_problem(
        patch(&a.fier_intake, json!({"region": "utrecht"}), None).await.unwrap(),
        403,
    )
    .await;
}
api_test!(patch_changes_only_what_is_sent);

async fn list_filters_and_pages(app: TestApp) {
    let a = app.actors();
    let mut ids = Vec::new();
    for (forms, date) in [
        (json!(["sexual"]), "2024-01-10"),
        (json!(["criminal"]), "2024-02-10"),
        (json!(["labour", "criminal"]), "2024-03-10"),
    ] {
        let mut body = adult_case();
        body["exploitation_forms"] = forms;
        body["contact_date"] = json!(date);
        ids.push(
            app.create_case(&a.fier_caseworker, &body).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let page1: Value = app
        .get("/api/v1/cases?limit=2", &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    let got: Vec<&str> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[2].as_str(), ids[1].as_str()], "newest first");
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2: Value = app
        .get(&format!("/api/v1/cases?limit=2&cursor={cursor}"), &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page2["items"][0]["id"], ids[0].as_str());
    assert!(page2["next_cursor"].is_null());

    let criminal: Value = app
        .get("/api/v1/cases?exploitation_form=criminal", &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(criminal["items"].as_array().unwrap().len(), 2);
    let february: Value = app
        .get("/api/v1/cases?from=2024-02-01&to=2024-02-29", &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(february["items"].as_array().unwrap().len(), 1);
    let signals: Value = app
        .get("/api/v1/cases?status=signal", &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(signals["items"].as_array().unwrap().len(), 3);
    let none: Value = app
        .get("/api/v1/cases?status=identified", &a.fier_caseworker)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    // Another organisation sees none of them.
    let other: Value = app.get("/api/v1/cases", &a.csg_caseworker).await.json().await.unwrap();
    assert_eq!(other["items"].as_array().unwrap().len(), 0);
    for bad in [
        "limit=0",
        "limit=100000",
        "cursor=zzz",
        "from=2024-13-01",
        "status=lost",
        "exploitation_form=x",
        "limit=abc",
    ] {
        let response = app.get(&format!("/api/v1/cases?{bad}"), &a.fier_caseworker).await;
        expect_problem(response, 422).await;
    }
    expect_problem(app.get("/api/v1/cases", &a.fier_intake).await, 403).await;
}
api_test!(list_filters_and_pages);

async fn idempotency_key_replays_and_refuses_reuse(app: TestApp) {
    let a = app.actors();
    let send = |body: Value| {
        app.client
            .post(app.url("/api/v1/cases"))
            .bearer_auth(&a.fier_caseworker)
            .header("Idempotency-Key", "chat-4711-case")
            .json(&body)
            .send()
    };
    let first = send(adult_case()).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send(adult_case()).await.unwrap();
    assert_eq!(again.status(), 201);
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    let list: Value = app.get("/api/v1/cases", &a.fier_caseworker).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "the retry created nothing");
    let mut different = adult_case();
    different["age_at_contact"] = json!(31);
    expect_problem(send(different).await.unwrap(), 422).await;
    // Keys belong to their user: another caseworker's identical key is independent.
    let other = app.token("cw-other", "fier", &["caseworker"]);
    let response = app
        .client
        .post(app.url("/api/v1/cases"))
        .bearer_auth(&other)
        .header("Idempotency-Key", "chat-4711-case")
        .json(&adult_case())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response: Value = response.json().await.unwrap();
    assert_ne!(response["id"], first["id"]);
    // The same works for referrals.
    let id = first["id"].as_str().unwrap();
    let referral = json!({"to_organisation": "csg", "services": ["psychosocial_support"], "urgency": "routine"});
    let post = || {
        app.client
            .post(app.url(&format!("/api/v1/cases/{id}/referrals")))
            .bearer_auth(&a.fier_caseworker)
            .header("Idempotency-Key", "ref-1")
            .json(&referral)
            .send()
    };
    let r1: Value = post().await.unwrap().json().await.unwrap();
    let r2: Value = post().await.unwrap().json().await.unwrap();
    assert_eq!(r1["id"], r2["id"]);
    let bad_key = app
        .client
        .post(app.url("/api/v1/cases"))
        .bearer_auth(&a.fier_caseworker)
        .header("Idempotency-Key", "")
        .json(&adult_case())
        .send()
        .await
        .unwrap();
    expect_problem(bad_key, 400).await;
}
api_test!(idempotency_key_replays_and_refuses_reuse);

/// A key is remembered for `server.idempotency_key_ttl` (7 days here): after that it may be
/// used afresh, and housekeeping removes the old rows.
async fn idempotency_keys_expire_and_are_purged(backend: Backend) {
    let Some(app) = on(backend, |s| s.server.housekeeping_interval = "100ms".into()).await else {
        return;
    };
    let token = app.token("cw-anna", "fier", &["caseworker"]);
    let send = |body: Value| {
        app.client
            .post(app.url("/api/v1/cases"))
            .bearer_auth(&token)
            .header("Idempotency-Key", "chat-4711-case")
            .json(&body)
            .send()
    };
    let first: Value = send(adult_case()).await.unwrap().json().await.unwrap();
    let mut different = adult_case();
    different["age_at_contact"] = json!(31);
    app.clock
        .advance(chrono::Duration::days(7) - chrono::Duration::seconds(5));
    expect_problem(send(different.clone()).await.unwrap(), 422).await;
    let again: Value = send(adult_case()).await.unwrap().json().await.unwrap();
    assert_eq!(again["id"], first["id"], "still within the week: the same case");
    app.clock.advance(chrono::Duration::seconds(10));
    let fresh = send(different).await.unwrap();
    assert_eq!(fresh.status(), 201, "an expired key is used afresh");
    let fresh: Value = fresh.json().await.unwrap();
    assert_ne!(fresh["id"], first["id"]);
    // Another user's key of a week ago is purged by housekeeping, unasked.
    let other = app.token("cw-other", "fier", &["caseworker"]);
    app.client
        .post(app.url("/api/v1/cases"))
        .bearer_auth(&other)
        .header("Idempotency-Key", "k-1")
        .json(&adult_case())
        .send()
        .await
        .unwrap();
    let count = |db: nrm::db::Db| {
        use diesel::prelude::*;
        let mut conn = db.get().unwrap();
        nrm::db::schema::idempotency_keys::table
            .count()
            .get_result::<i64>(&mut **conn)
            .unwrap()
    };
    assert_eq!(count(app.db()), 2);
    app.clock.advance(chrono::Duration::days(8));
    let started = std::time::Instant::now();
    while count(app.db()) > 0 {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "never purged");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
backend_test!(idempotency_keys_expire_and_are_purged);

async fn anonymous_notification_for_non_consenting_adult(app: TestApp) {
    let a = app.actors();
    let mut body = adult_case();
    body["identifying_details"] = json!({"name": "Anoniem Blijven"});
    let case = app.create_case(&a.fier_caseworker, &body).await;
    let id = case["id"].as_str().unwrap();
    let url = format!("/api/v1/cases/{id}/anonymous-notification");
    let created = app.post_ok(&url, &a.fier_caseworker, &json!({}), 201).await;
    assert_eq!(created["focal_point"], "comensha");
    assert_eq!(created["nationality_group"], "other_eu");
    assert_eq!(created["exploitation_forms"], json!(["sexual"]));
    let text = created.to_string();
    assert!(!text.contains("zonnebloem") && !text.contains("Anoniem"));
    expect_problem(app.post_json(&url, &a.fier_caseworker, &json!({})).await, 409).await;

    // The focal point's coordinators see it; nobody else lists them.
    let list: Value = app
        .get("/api/v1/anonymous-notifications", &a.comensha_coordinator)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("zonnebloem"));
    expect_problem(
        app.get("/api/v1/anonymous-notifications", &a.fier_caseworker).await,
        403,
    )
    .await;

    // Not for a child, nor when the person consented to a referral.
    let mut child = adult_case();
    child["age_at_contact"] = json!(16);
    let child = app.create_case(&a.fier_caseworker, &child).await;
    let refusal = expect_problem(
        app.post_json(
            &format!("/api/v1/cases/{}/anonymous-notification", child["id"].as_str().unwrap()),
            &a.fier_caseworker,
            &json!({}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(refusal["guards"], json!(["case_is_minor"]));
    let consenting = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let cid = consenting["id"].as_str().unwrap();
    app.consent(&a.fier_caseworker, cid, "referral", "slachtofferhulp")
        .await;
    let refusal = expect_problem(
        app.post_json(
            &format!("/api/v1/cases/{cid}/anonymous-notification"),
            &a.fier_caseworker,
            &json!({}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(refusal["guards"], json!(["referral_consent_exists"]));
}
api_test!(anonymous_notification_for_non_consenting_adult);

async fn consent_needs_information_language(app: TestApp) {
    let a = app.actors();
    let case = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let id = case["id"].as_str().unwrap();
    let body = expect_problem(
        app.post_json(
            &format!("/api/v1/cases/{id}/consents"),
            &a.fier_caseworker,
            &json!({"scope": "referral", "organisation": "csg", "given_by": "victim", "method": "chat"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(fields_of(&body), vec!["information_language"]);
    let body = expect_problem(
        app.post_json(&format!("/api/v1/cases/{id}/consents"), &a.fier_caseworker, &json!({"scope": "everything", "organisation": "nowhere", "given_by": "neighbour", "method": "telepathy", "information_language": "12"})).await,
        422,
    )
    .await;
    assert_eq!(
        fields_of(&body),
        vec!["scope", "organisation", "given_by", "method", "information_language"]
    );
    expect_problem(
        app.get(&format!("/api/v1/cases/{id}/consents"), &a.csg_caseworker)
            .await,
        404,
    )
    .await;
    let bad = expect_problem(
        app.post_json(
            &format!("/api/v1/cases/{id}/legal-basis"),
            &a.fier_caseworker,
            &json!({"basis": "convenience", "justification": ""}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(fields_of(&bad), vec!["basis", "justification"]);
}
api_test!(consent_needs_information_language);

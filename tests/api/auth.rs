//! Every failure class of token verification answers the same 401 problem+json.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::api_test;
use crate::helpers::{
    Backend, TEST_HS256_SECRET, TEST_RSA_KID, TestApp, claims, expect_problem, fixture, now_unix, sign_hs256,
    sign_rs256, spawn_app_with, spawn_postgres_app,
};

const ORGS: &str = "/api/v1/organisations";

async fn status_with(app: &TestApp, token: Option<&str>) -> (u16, Value) {
    let mut request = app.client.get(app.url(ORGS));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status == 401 {
        let body = expect_problem(response, 401).await;
        (status, body)
    } else {
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn b64(value: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

async fn valid_tokens_open_the_api(app: TestApp) {
    let hs = sign_hs256(
        &claims("alice", "fier", &["caseworker"]),
        TEST_HS256_SECRET,
        Some("nrm-hs256"),
    );
    assert_eq!(status_with(&app, Some(&hs)).await.0, 200);
    // Without kid, the only HS256 key is used.
    let hs_no_kid = sign_hs256(&claims("alice", "fier", &["caseworker"]), TEST_HS256_SECRET, None);
    assert_eq!(status_with(&app, Some(&hs_no_kid)).await.0, 200);
    let rs = sign_rs256(
        &claims("bob", "csg", &["intake"]),
        "rsa_private.pem",
        Some(TEST_RSA_KID),
    );
    assert_eq!(status_with(&app, Some(&rs)).await.0, 200);
    // Unknown role names are ignored, not fatal.
    let odd_roles = sign_hs256(
        &claims("carol", "fier", &["offline_access", "intake"]),
        TEST_HS256_SECRET,
        None,
    );
    assert_eq!(status_with(&app, Some(&odd_roles)).await.0, 200);
    // `aud` may be an array that contains the audience, as Keycloak issues it (RFC 7519).
    let mut keycloak = claims("dana", "csg", &["intake"]);
    keycloak["aud"] = json!(["nrm", "account"]);
    let keycloak = sign_rs256(&keycloak, "rsa_private.pem", Some(TEST_RSA_KID));
    assert_eq!(status_with(&app, Some(&keycloak)).await.0, 200);
}
api_test!(valid_tokens_open_the_api);

async fn every_forged_or_expired_token_is_401(app: TestApp) {
    let good = claims("alice", "fier", &["caseworker"]);
    let mut cases: Vec<(&str, Option<String>)> = vec![
        ("missing header", None),
        ("malformed", Some("not.a.jwt".into())),
        ("garbage", Some("%%%".into())),
        ("two parts", Some("eyJhbGciOiJIUzI1NiJ9.e30".into())),
    ];
    let none_header = json!({"alg": "none", "typ": "JWT"});
    cases.push(("alg none", Some(format!("{}.{}.", b64(&none_header), b64(&good)))));
    let none_upper = json!({"alg": "None", "typ": "JWT", "kid": "nrm-hs256"});
    cases.push(("alg None", Some(format!("{}.{}.", b64(&none_upper), b64(&good)))));
    cases.push((
        "wrong secret",
        Some(sign_hs256(
            &good,
            "some-other-secret-of-sufficient-length-000",
            Some("nrm-hs256"),
        )),
    ));
    cases.push((
        "wrong rsa key",
        Some(sign_rs256(&good, "other_rsa_private.pem", Some(TEST_RSA_KID))),
    ));
    // The classic key confusion: HS256 with the RSA public key as the HMAC secret.
    let public_pem = std::fs::read_to_string(fixture("rsa_public.pem")).unwrap();
    cases.push((
        "hs256 with rsa public key, rsa kid",
        Some(sign_hs256(&good, &public_pem, Some(TEST_RSA_KID))),
    ));
    cases.push((
        "hs256 with rsa public key, no kid",
        Some(sign_hs256(&good, &public_pem, None)),
    ));
    // The RSA key under the HS256 key's kid.
    cases.push((
        "rs256 under hs kid",
        Some(sign_rs256(&good, "rsa_private.pem", Some("nrm-hs256"))),
    ));
    let mut expired = good.clone();
    expired["exp"] = json!(now_unix() - 3600);
    expired["iat"] = json!(now_unix() - 7200);
    cases.push((
        "expired",
        Some(sign_hs256(&expired, TEST_HS256_SECRET, Some("nrm-hs256"))),
    ));
    let mut not_yet = good.clone();
    not_yet["nbf"] = json!(now_unix() + 3600);
    cases.push((
        "not yet valid",
        Some(sign_hs256(&not_yet, TEST_HS256_SECRET, Some("nrm-hs256"))),
    ));
    let mut wrong_iss = good.clone();
    wrong_iss["iss"] = json!("someone-else");
    cases.push((
        "wrong iss",
        Some(sign_hs256(&wrong_iss, TEST_HS256_SECRET, Some("nrm-hs256"))),
    ));
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("another-service");
    cases.push((
        "wrong aud",
        Some(sign_hs256(&wrong_aud, TEST_HS256_SECRET, Some("nrm-hs256"))),
    ));
    let mut wrong_aud_list = good.clone();
    wrong_aud_list["aud"] = json!(["account", "another-service"]);
    cases.push((
        "aud array without nrm",
        Some(sign_hs256(&wrong_aud_list, TEST_HS256_SECRET, Some("nrm-hs256"))),
    ));
    cases.push((
        "unknown kid",
        Some(sign_hs256(&good, TEST_HS256_SECRET, Some("kid-nobody-knows"))),
    ));
    let unknown_org = claims("alice", "not-an-organisation", &["caseworker"]);
    cases.push((
        "unknown org",
        Some(sign_hs256(&unknown_org, TEST_HS256_SECRET, Some("nrm-hs256"))),
    ));
    let mut no_exp = good.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    cases.push((
        "no exp",
        Some(sign_hs256(&no_exp, TEST_HS256_SECRET, Some("nrm-hs256"))),
    ));
    let mut no_sub = good.clone();
    no_sub.as_object_mut().unwrap().remove("sub");
    cases.push((
        "no sub",
        Some(sign_hs256(&no_sub, TEST_HS256_SECRET, Some("nrm-hs256"))),
    ));
    // A token signed for HS512 is not in the allow-list, even with the right secret.
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS512),
        &good,
        &EncodingKey::from_secret(TEST_HS256_SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    cases.push(("hs512 not allowed", Some(hs512)));

    let mut details = Vec::new();
    for (name, token) in &cases {
        let (status, body) = status_with(&app, token.as_deref()).await;
        assert_eq!(status, 401, "{name}: expected 401, body {body}");
        details.push(body["detail"].clone());
    }
    // The caller is never told which check failed.
    assert!(
        details.windows(2).all(|w| w[0] == w[1]),
        "401 details differ: {details:?}"
    );
    // Other schemes than Bearer are refused too.
    let basic = app
        .client
        .get(app.url(ORGS))
        .header("Authorization", "Basic YWxpY2U6cw==")
        .send()
        .await
        .unwrap();
    expect_problem(basic, 401).await;
}
api_test!(every_forged_or_expired_token_is_401);

fn jwk_for(private_fixture: &str, kid: &str) -> Jwk {
    let pem = std::fs::read(fixture(private_fixture)).unwrap();
    let key = EncodingKey::from_rsa_pem(&pem).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some(kid.into());
    jwk
}

async fn jwks_file_is_reread_on_unknown_kid(backend: Backend, refresh_min_seconds: u64) {
    let dir = std::env::temp_dir().join(format!("nrm-jwks-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    let only_a = JwkSet {
        keys: vec![jwk_for("rsa_private.pem", "idp-a")],
    };
    std::fs::write(&path, serde_json::to_string(&only_a).unwrap()).unwrap();
    let adjust = |s: &mut nrm::config::Settings| {
        s.jwt.public_keys.clear();
        s.jwt.jwks_file = path.to_string_lossy().to_string();
        s.jwt.jwks_refresh_min_seconds = refresh_min_seconds;
    };
    let app = match backend {
        Backend::Sqlite => spawn_app_with(backend, adjust).await,
        Backend::Postgres => match spawn_postgres_app(adjust).await {
            Some(app) => app,
            None => return,
        },
    };
    let c = claims("idp-user", "csg", &["intake"]);
    assert_eq!(
        status_with(&app, Some(&sign_rs256(&c, "rsa_private.pem", Some("idp-a"))))
            .await
            .0,
        200
    );
    let token_b = sign_rs256(&c, "other_rsa_private.pem", Some("idp-b"));
    assert_eq!(status_with(&app, Some(&token_b)).await.0, 401);
    // The provider rotates: key b appears in the document.
    let both = JwkSet {
        keys: vec![
            jwk_for("rsa_private.pem", "idp-a"),
            jwk_for("other_rsa_private.pem", "idp-b"),
        ],
    };
    std::fs::write(&path, serde_json::to_string(&both).unwrap()).unwrap();
    let expected = if refresh_min_seconds == 0 { 200 } else { 401 };
    assert_eq!(
        status_with(&app, Some(&token_b)).await.0,
        expected,
        "refresh interval {refresh_min_seconds}s"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_file_rotation_sqlite() {
    jwks_file_is_reread_on_unknown_kid(Backend::Sqlite, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_file_rotation_postgres() {
    jwks_file_is_reread_on_unknown_kid(Backend::Postgres, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_refresh_is_rate_limited_sqlite() {
    jwks_file_is_reread_on_unknown_kid(Backend::Sqlite, 3600).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_refresh_is_rate_limited_postgres() {
    jwks_file_is_reread_on_unknown_kid(Backend::Postgres, 3600).await;
}

/// A JWKS served over HTTP by a fake identity provider on loopback, counting fetches.
async fn jwks_url_is_fetched_and_rate_limited(backend: Backend) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let document = serde_json::to_string(&JwkSet {
        keys: vec![jwk_for("rsa_private.pem", "idp-a")],
    })
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let counter = fetches.clone();
    let server = actix_web::HttpServer::new(move || {
        let counter = counter.clone();
        let document = document.clone();
        actix_web::App::new().route(
            "/certs",
            actix_web::web::get().to(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let document = document.clone();
                async move {
                    actix_web::HttpResponse::Ok()
                        .content_type("application/json")
                        .body(document)
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    let adjust = |s: &mut nrm::config::Settings| {
        s.jwt.public_keys.clear();
        s.jwt.jwks_url = format!("http://127.0.0.1:{port}/certs");
        s.jwt.jwks_refresh_min_seconds = 3600;
    };
    let app = match backend {
        Backend::Sqlite => spawn_app_with(backend, adjust).await,
        Backend::Postgres => match spawn_postgres_app(adjust).await {
            Some(app) => app,
            None => return,
        },
    };
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "fetched once at start-up");
    let c = claims("idp-user", "csg", &["intake"]);
    assert_eq!(
        status_with(&app, Some(&sign_rs256(&c, "rsa_private.pem", Some("idp-a"))))
            .await
            .0,
        200
    );
    for _ in 0..5 {
        let bogus = sign_rs256(&c, "other_rsa_private.pem", Some("bogus"));
        assert_eq!(status_with(&app, Some(&bogus)).await.0, 401);
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "unknown kids within the interval cause no fetch"
    );
    handle.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_url_sqlite() {
    jwks_url_is_fetched_and_rate_limited(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_url_postgres() {
    jwks_url_is_fetched_and_rate_limited(Backend::Postgres).await;
}

/// The JWKS document is re-read on a timer (`jwt.jwks_refresh_every`): a key the identity
/// provider removed stops being accepted although no token asked for an unknown key.
async fn a_key_removed_at_the_provider_stops_being_accepted(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("nrm-jwks-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    let both = JwkSet {
        keys: vec![
            jwk_for("rsa_private.pem", "idp-a"),
            jwk_for("other_rsa_private.pem", "idp-b"),
        ],
    };
    std::fs::write(&path, serde_json::to_string(&both).unwrap()).unwrap();
    let file = path.to_string_lossy().to_string();
    let Some(app) = crate::helpers::on(backend, move |s| {
        s.jwt.public_keys.clear();
        s.jwt.jwks_file = file;
        // Unknown kids never trigger a re-read here: only the timer does.
        s.jwt.jwks_refresh_min_seconds = 3600;
        s.jwt.jwks_refresh_every = "300ms".into();
    })
    .await
    else {
        return;
    };
    let c = claims("idp-user", "csg", &["intake"]);
    let token_a = sign_rs256(&c, "rsa_private.pem", Some("idp-a"));
    let token_b = sign_rs256(&c, "other_rsa_private.pem", Some("idp-b"));
    assert_eq!(status_with(&app, Some(&token_a)).await.0, 200);
    // Key a is withdrawn at the provider (compromised, say).
    let only_b = JwkSet {
        keys: vec![jwk_for("other_rsa_private.pem", "idp-b")],
    };
    std::fs::write(&path, serde_json::to_string(&only_b).unwrap()).unwrap();
    let started = std::time::Instant::now();
    while status_with(&app, Some(&token_a)).await.0 != 401 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "key a still accepted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status_with(&app, Some(&token_b)).await.0, 200, "key b stays");
    // A document that cannot be read keeps the keys last read.
    std::fs::write(&path, "not json").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(status_with(&app, Some(&token_b)).await.0, 200);
    let _ = std::fs::remove_dir_all(&dir);
}
crate::backend_test!(a_key_removed_at_the_provider_stops_being_accepted);

//! The test harness: the real `Application` on a random port, on a fresh SQLite file or a
//! fresh PostgreSQL database (copied from a migrated template), dropped afterwards.
//!
//! PostgreSQL: `NRM_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432`). When it
//! cannot be reached the PostgreSQL tests fail with instructions. `NRM_TEST_SKIP_POSTGRES=1`
//! opts out explicitly on a developer machine; it is refused when `CI` is set.

#![allow(dead_code)]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use nrm::config::{PublicKeySettings, Settings};
use nrm::startup::Application;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const TEST_HS256_SECRET: &str = "test-secret-for-the-nrm-suite-0123456789abcdef";
pub const TEST_RSA_KID: &str = "test-rsa";

/// Runs one async API test body against both backends, as two `#[test]`s.
#[macro_export]
macro_rules! api_test {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await;
                super::$name(app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::helpers::spawn_postgres_app(|_| {}).await {
                    super::$name(app).await;
                }
            }
        }
    };
}

/// For tests that build their own app(s): `async fn name(backend: Backend)` runs as
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! backend_test {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::postgres_enabled() {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            }
        }
    };
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    manifest_dir().join("tests/fixtures").join(name)
}

pub fn pg_base_url() -> String {
    std::env::var("NRM_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Whether PostgreSQL tests should run. Panics with instructions when it is unreachable.
pub fn postgres_enabled() -> bool {
    let skip = std::env::var("NRM_TEST_SKIP_POSTGRES")
        .map(|v| v == "1")
        .unwrap_or(false);
    if skip {
        if std::env::var("CI").is_ok() {
            panic!("NRM_TEST_SKIP_POSTGRES is not honoured in CI: every API test runs on PostgreSQL too");
        }
        eprintln!("NRM_TEST_SKIP_POSTGRES=1: PostgreSQL test NOT run (explicit opt-out)");
        return false;
    }
    true
}

fn admin_connection() -> PgConnection {
    let url = format!("{}/postgres", pg_base_url());
    PgConnection::establish(&url).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {url}: {e}\n\
             Start it (Debian: `pg_ctlcluster $(ls /etc/postgresql) main start`), or point \
             NRM_TEST_POSTGRES_URL at a server (trust auth, user with CREATEDB). To skip the \
             PostgreSQL half on a developer machine only, set NRM_TEST_SKIP_POSTGRES=1."
        )
    })
}

/// A template database with every migration applied, named by a hash of the migrations,
/// so tests copy it instead of migrating each time.
fn template_database() -> String {
    static CREATED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CREATED
        .get_or_init(|| {
            let mut hasher = DefaultHasher::new();
            let mut files: Vec<PathBuf> = walk(&manifest_dir().join("migrations/postgres"));
            files.sort();
            for file in files {
                file.to_string_lossy().hash(&mut hasher);
                std::fs::read(&file).unwrap_or_default().hash(&mut hasher);
            }
            let name = format!("nrm_test_template_{:016x}", hasher.finish());
            let mut admin = admin_connection();
            // Serialise template creation across concurrent test processes.
            admin
                .batch_execute("SELECT pg_advisory_lock(727274)")
                .expect("advisory lock");
            let exists: bool = diesel::select(diesel::dsl::exists(
                pg_database::table.filter(pg_database::datname.eq(&name)),
            ))
            .get_result(&mut admin)
            .expect("query pg_database");
            if !exists {
                // Templates of other migration sets are left alone: another test run (another
                // checkout, CI) may be cloning one right now.
                // Built under another name and renamed when complete, so a run killed halfway
                // never leaves a broken template behind.
                let building = format!("{name}_building");
                // One statement per call: PostgreSQL runs a multi-statement batch as one
                // transaction, and CREATE/DROP DATABASE refuse to run in one.
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"))
                    .expect("drop a half-built template");
                admin
                    .batch_execute(&format!("CREATE DATABASE \"{building}\""))
                    .expect("create template");
                let db = nrm::db::Db::open(
                    &format!("{}/{building}", pg_base_url()),
                    1,
                    Duration::from_secs(10),
                    1000,
                )
                .expect("open template");
                db.migrate().expect("migrate template");
                drop(db);
                admin
                    .batch_execute(&format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\""))
                    .expect("complete template");
            }
            admin
                .batch_execute("SELECT pg_advisory_unlock(727274)")
                .expect("advisory unlock");
            name
        })
        .clone()
}

diesel::table! {
    pg_database (datname) {
        datname -> Text,
    }
}
use diesel::prelude::*;

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Removes the test's database when the test ends, pass or fail.
pub enum DatabaseGuard {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Drop for DatabaseGuard {
    fn drop(&mut self) {
        match self {
            DatabaseGuard::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            DatabaseGuard::Postgres(name) => {
                if let Ok(mut admin) = PgConnection::establish(&format!("{}/postgres", pg_base_url())) {
                    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
                }
            }
        }
    }
}

/// A fresh database for one test: its URL and the guard that removes it.
pub fn fresh_database(backend: Backend) -> (String, DatabaseGuard) {
    // Every test starts here or in spawn_app: the place to set process-wide state.
    init_once();
    let unique = uuid::Uuid::now_v7().simple().to_string();
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("nrm-test-{unique}"));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let url = dir.join("nrm.sqlite").to_string_lossy().to_string();
            (url, DatabaseGuard::Sqlite(dir))
        }
        Backend::Postgres => {
            let template = template_database();
            let name = format!("nrm_test_{unique}");
            let mut admin = admin_connection();
            admin
                .batch_execute(&format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""))
                .expect("create test database");
            (format!("{}/{name}", pg_base_url()), DatabaseGuard::Postgres(name))
        }
    }
}

/// Settings for tests: random port, test keys (HS256 and an RSA public key), quiet logs.
pub fn test_settings(database_url: &str) -> Settings {
    let mut settings = Settings::defaults().expect("defaults");
    settings.server.bind = "127.0.0.1:0".into();
    settings.server.workers = 2;
    settings.database.url = database_url.into();
    settings.database.pool_size = 4;
    settings.jwt.hs256_secret = TEST_HS256_SECRET.into();
    settings.jwt.algorithms = vec!["HS256".into(), "RS256".into()];
    settings.jwt.public_keys = vec![PublicKeySettings {
        kid: TEST_RSA_KID.into(),
        algorithm: "RS256".into(),
        pem_file: fixture("rsa_public.pem"),
    }];
    settings.registry.organisations_file = manifest_dir().join("config/organisations.toml");
    settings.registry.routing_file = manifest_dir().join("config/routing.toml");
    // Hand-counted figures in the statistics tests are small: suppression has its own test.
    settings.stats.min_cell = 0;
    // Tests fire many requests a minute from one address; the limiter has its own test.
    settings.rate_limit.per_token_per_minute = 0;
    settings.rate_limit.per_address_per_minute = 0;
    settings
}

pub struct TestApp {
    pub backend: Backend,
    /// The app's clock: starts at the real time; tests move it.
    pub clock: nrm::clock::ManualClock,
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub settings: Settings,
    pub database_url: String,
    _guard: Option<DatabaseGuard>,
}

fn init_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        if std::env::var("TEST_LOG").is_ok() {
            nrm::telemetry::init(&nrm::config::LogSettings {
                format: nrm::config::LogFormat::Pretty,
                level: "debug".into(),
                protocol_errors_every: "1m".into(),
            });
        }
    });
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// For the PostgreSQL half of a test: `None` only under the explicit opt-out.
pub async fn spawn_postgres_app(adjust: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    if !postgres_enabled() {
        return None;
    }
    Some(spawn_app_with(Backend::Postgres, adjust).await)
}

pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    init_once();
    let (database_url, guard) = fresh_database(backend);
    start(backend, database_url, Some(guard), adjust).await
}

/// A second instance on the database of an app that is already running.
pub async fn spawn_app_on(other: &TestApp, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    start(other.backend, other.database_url.clone(), None, adjust).await
}

async fn start(
    backend: Backend,
    database_url: String,
    guard: Option<DatabaseGuard>,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = test_settings(&database_url);
    adjust(&mut settings);
    let clock = nrm::clock::ManualClock::new(chrono::Utc::now());
    let app = Application::build_with_clock(settings.clone(), std::sync::Arc::new(clock.clone()))
        .await
        .expect("application builds");
    let port = app.port();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        backend,
        clock,
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        settings,
        database_url,
        _guard: guard,
    }
}

/// Delivery through the test SMTP sink on `port`, polled every 50 ms.
pub fn with_smtp(settings: &mut Settings, port: u16) {
    settings.smtp.host = "127.0.0.1".into();
    settings.smtp.port = port;
    settings.smtp.tls = nrm::config::SmtpTls::None;
    settings.smtp.timeout = "2s".into();
    settings.notifications.poll_interval = "50ms".into();
    settings.notifications.deadline_check_interval = "50ms".into();
    settings.notifications.public_base_url = "https://nrm.test.example".into();
}

/// Runs a test body on SQLite and, unless explicitly opted out, on PostgreSQL.
pub async fn on(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    match backend {
        Backend::Sqlite => Some(spawn_app_with(backend, adjust).await),
        Backend::Postgres => spawn_postgres_app(adjust).await,
    }
}

pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

/// Standard claims for a user of `org` with `roles`, valid for an hour.
pub fn claims(sub: &str, org: &str, roles: &[&str]) -> Value {
    let now = now_unix();
    json!({
        "sub": sub, "org": org, "roles": roles,
        "iat": now, "exp": now + 3600, "iss": "nrm", "aud": "nrm",
    })
}

pub fn sign_hs256(claims: &Value, secret: &str, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()).expect("key"),
    )
    .expect("sign")
}

pub fn sign_rs256(claims: &Value, private_pem_fixture: &str, kid: Option<&str>) -> String {
    let pem = std::fs::read(fixture(private_pem_fixture)).expect("fixture");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(&pem).expect("rsa key")).expect("sign")
}

impl TestApp {
    /// A valid token for a user of `org` with `roles`.
    pub fn token(&self, sub: &str, org: &str, roles: &[&str]) -> String {
        sign_hs256(&claims(sub, org, roles), TEST_HS256_SECRET, Some("nrm-hs256"))
    }

    /// A connection to the test's database, for checks and tampering behind the API's back.
    pub fn db(&self) -> nrm::db::Db {
        nrm::startup::open_database(&self.settings).expect("open database")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }
}

/// Asserts a problem+json response with `status`, and returns its body.
pub async fn expect_problem(response: reqwest::Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "unexpected status; body: {body}");
    assert!(
        content_type.starts_with("application/problem+json"),
        "content-type was {content_type}; body {body}"
    );
    for key in ["type", "title", "status", "detail"] {
        assert!(body.get(key).is_some(), "problem lacks `{key}`: {body}");
    }
    assert_eq!(body["status"], status);
    body
}

// ---------------------------------------------------------------------------
// Domain helpers: the steps of a handover, through HTTP.
// ---------------------------------------------------------------------------

/// A realistic adult case after an anonymous chat.
pub fn adult_case() -> Value {
    json!({
        "reporter_role": "victim",
        "contact_channel": "chat",
        "contact_date": "2024-03-14",
        "exploitation_forms": ["sexual"],
        "age_at_contact": 24,
        "gender": "female",
        "nationality": "RO",
        "region": "amsterdam",
        "language": "ro",
        "pseudonym": "zonnebloem88"
    })
}

pub struct Actors {
    pub fier_caseworker: String,
    pub fier_intake: String,
    pub csg_intake: String,
    pub csg_caseworker: String,
    pub shn_intake: String,
    pub comensha_coordinator: String,
    pub comensha_intake: String,
    pub police_officer: String,
    pub offlimits_intake: String,
}

impl TestApp {
    pub fn actors(&self) -> Actors {
        Actors {
            fier_caseworker: self.token("cw-anna", "fier", &["caseworker"]),
            fier_intake: self.token("intake-bas", "fier", &["intake"]),
            csg_intake: self.token("intake-carla", "csg", &["intake"]),
            csg_caseworker: self.token("cw-dirk", "csg", &["caseworker"]),
            shn_intake: self.token("intake-eva", "slachtofferhulp", &["intake"]),
            comensha_coordinator: self.token("coord-femke", "comensha", &["coordinator"]),
            comensha_intake: self.token("intake-gijs", "comensha", &["intake"]),
            police_officer: self.token("rechercheur-hans", "police", &["intake"]),
            offlimits_intake: self.token("intake-ilse", "offlimits", &["intake"]),
        }
    }

    /// Creates a case and returns its body (asserting 201).
    pub async fn create_case(&self, token: &str, body: &Value) -> Value {
        let response = self.post_json("/api/v1/cases", token, body).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, 201, "create case: {text}");
        serde_json::from_str(&text).expect("json")
    }

    pub async fn post_ok(&self, path: &str, token: &str, body: &Value, expected: u16) -> Value {
        let response = self.post_json(path, token, body).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, expected, "POST {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn reasonable_grounds(&self, token: &str, case_id: &str) -> Value {
        self.post_ok(
            &format!("/api/v1/cases/{case_id}/identification"),
            token,
            &json!({"decision": "reasonable_grounds", "basis": "Signalen: controle door derden, schulden"}),
            200,
        )
        .await
    }

    pub async fn consent(&self, token: &str, case_id: &str, scope: &str, org: &str) -> Value {
        self.post_ok(
            &format!("/api/v1/cases/{case_id}/consents"),
            token,
            &json!({"scope": scope, "organisation": org, "given_by": "victim", "method": "chat", "information_language": "ro"}),
            201,
        )
        .await
    }

    pub async fn draft_referral(&self, token: &str, case_id: &str, to: &str, services: &[&str]) -> Value {
        self.post_ok(
            &format!("/api/v1/cases/{case_id}/referrals"),
            token,
            &json!({"to_organisation": to, "services": services, "urgency": "urgent", "note": "Graag contact via chat"}),
            201,
        )
        .await
    }

    /// Posts a transition with `If-Match: "<version>"`; returns status and body.
    pub async fn transition(&self, token: &str, referral: &Value, body: Value) -> (u16, Value) {
        let id = referral["id"].as_str().expect("id");
        let version = referral["version"].as_i64().expect("version");
        let response = self
            .client
            .post(self.url(&format!("/api/v1/referrals/{id}/transitions")))
            .bearer_auth(token)
            .header("If-Match", format!("\"{version}\""))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A transition that must succeed; returns the new referral.
    pub async fn step(&self, token: &str, referral: &Value, body: Value) -> Value {
        let (status, result) = self.transition(token, referral, body.clone()).await;
        assert_eq!(status, 200, "transition {body}: {result}");
        result
    }

    /// A case of Fier with reasonable grounds and referral consent for `to`, and a
    /// submitted referral to it.
    pub async fn submitted_referral(&self, to: &str, services: &[&str]) -> (Value, Value) {
        let a = self.actors();
        let case = self.create_case(&a.fier_caseworker, &adult_case()).await;
        let id = case["id"].as_str().expect("id").to_string();
        self.reasonable_grounds(&a.fier_caseworker, &id).await;
        self.consent(&a.fier_caseworker, &id, "referral", to).await;
        let draft = self.draft_referral(&a.fier_caseworker, &id, to, services).await;
        let submitted = self.step(&a.fier_caseworker, &draft, json!({"action": "submit"})).await;
        (case, submitted)
    }
}

/// What the statistics report and the flows are built from, counted one way.
type Counts = (
    nrm::domain::stats::CaseCounts,
    std::collections::BTreeMap<String, u64>,
    nrm::domain::stats::ReferralCounts,
    nrm::domain::stats::ThreeWayCounts,
    Vec<(String, String, String, i64)>,
    Vec<(String, i64)>,
);

fn counts(
    conn: &mut nrm::db::AnyConnection,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    counted: nrm::db::stats::Counted,
) -> Counts {
    use nrm::db::stats;
    nrm::db::report_transaction(conn, |conn| {
        let (cases, by_organisation) = stats::case_counts(conn, from, to, counted)?;
        Ok::<_, diesel::result::Error>((
            cases,
            by_organisation,
            stats::referral_counts(conn, from, to, counted)?,
            stats::three_way_counts(conn, from, to, counted)?,
            stats::flow_counts(conn, from, to, counted)?,
            stats::eligibility_overrides(conn, from, to, counted)?,
        ))
    })
    .expect("count")
}

/// Asserts that every additive figure of the statistics report and the flows for the period
/// is the same from the roll-ups as from the rows: with the deltas as they are, and again
/// after folding them all. Returns the figures, and how many deltas the fold took.
pub fn assert_rollups_match_rows(db: &nrm::db::Db, from: chrono::NaiveDate, to: chrono::NaiveDate) -> (Counts, u64) {
    use nrm::db::stats::Counted;
    let mut conn = db.get().expect("connection");
    let rows = counts(&mut conn, from, to, Counted::Rows);
    assert_eq!(
        counts(&mut conn, from, to, Counted::RollUps),
        rows,
        "roll-ups with pending deltas, {from} to {to}"
    );
    let folded = nrm::db::rollups::fold(&mut conn).expect("fold");
    assert_eq!(
        counts(&mut conn, from, to, Counted::RollUps),
        rows,
        "roll-ups after folding {folded} deltas, {from} to {to}"
    );
    (rows, folded)
}

/// Takes a background task's leadership for the test, so the service's own task stands by.
/// Call it from `on`'s settings closure, before the service starts, and keep the result.
pub fn hold_leadership(settings: &Settings, task: nrm::db::leader::SingletonTask) -> nrm::db::leader::Leadership {
    let db = nrm::startup::open_database(settings).expect("database");
    let mut leadership = nrm::db::leader::Leadership::new(&db, task);
    assert!(leadership.lead_blocking(), "the test leads {}", task.name());
    leadership
}

/// Audit entries that have waited a minute for their seal, longer than allowed.
pub fn stale_audit_entries(app: &TestApp, count: usize) {
    let minute_ago = nrm::db::Instant::from_utc(chrono::Utc::now() - chrono::Duration::minutes(1));
    let entry = nrm::db::audit::NewAuditEntry::new("case.create", "case", "x", None, "ok");
    let mut conn = app.db().get().expect("connection");
    for _ in 0..count {
        nrm::db::audit::append(&mut conn, &entry, minute_ago).expect("append");
    }
}

/// The singleton tasks the instance at `base` says it leads in its readiness answer, sorted;
/// none while it does not answer.
pub async fn leads_at(client: &reqwest::Client, base: &str) -> Vec<String> {
    let Ok(response) = client.get(format!("{base}/health/ready")).send().await else {
        return Vec::new();
    };
    let Ok(ready) = response.json::<Value>().await else {
        return Vec::new();
    };
    let mut tasks: Vec<String> = ready["leads"]
        .as_array()
        .map(|tasks| tasks.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    tasks.sort();
    tasks
}

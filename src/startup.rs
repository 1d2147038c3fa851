//! `Application::build`: the same server for `nrm serve` and for the tests.
//!
//! Start-up order: check key material → read the registry → open the database and migrate →
//! mirror the registry → build the verifier → bind. Any failure stops start-up with a
//! message that names the setting or file to fix.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpServer, web};
use utoipa_actix_web::AppExt;

use crate::api;
use crate::auth::{self, Authenticator, KeyError};
use crate::clock::{SharedClock, SystemClock};
use crate::config::parse_duration;
use crate::config::{Environment, Settings};
use crate::connections::{self, BodyReadTimeout, ConnectionLimits};
use crate::crypto::Keyring;
use crate::db::{self, Db, DbError, Instant};
use crate::domain::organisation::Registry;
use crate::domain::routing::RoutingRules;
use crate::notify::worker::{self, Delivery};
use crate::notify::{self, Notifier, deadlines};
use crate::ratelimit::{self, RateLimiter, TrustedProxies};
use crate::telemetry;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Keys(#[from] KeyError),
    #[error("organisation registry {file}: {problem}{hint}")]
    Registry {
        file: String,
        problem: String,
        hint: &'static str,
    },
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("routing rules {file}: {problem}{hint}")]
    Routing {
        file: String,
        problem: String,
        hint: &'static str,
    },
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {bind}: {problem}")]
    Bind { bind: String, problem: String },
}

/// Reads and checks the registry file; problems name the file and line.
pub fn load_registry(path: &Path) -> Result<Registry, StartupError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| StartupError::Registry {
        file: file.clone(),
        problem: e.to_string(),
        hint: " (set registry.organisations_file, or NRM__REGISTRY__ORGANISATIONS_FILE, to the registry's path; \
               a relative path in a --config file is read beside that file)",
    })?;
    Registry::parse(&text).map_err(|p| StartupError::Registry {
        file,
        problem: p.to_string(),
        hint: "",
    })
}

/// Reads the routing rules and checks them against the registry; problems name the file,
/// line and rule.
pub fn load_routing(path: &Path, registry: &Registry) -> Result<RoutingRules, StartupError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| StartupError::Routing {
        file: file.clone(),
        problem: e.to_string(),
        hint: " (set registry.routing_file, or NRM__REGISTRY__ROUTING_FILE, to the rules' path; \
               a relative path in a --config file is read beside that file)",
    })?;
    RoutingRules::parse(&text, registry).map_err(|p| StartupError::Routing {
        file,
        problem: p.to_string(),
        hint: "",
    })
}

/// Opens the pool from settings.
pub fn open_database(settings: &Settings) -> Result<Db, DbError> {
    Db::open(
        &settings.database.url,
        settings.database.pool_size,
        settings.pool_timeout(),
        settings.database.sqlite_busy_timeout_ms,
    )
}

/// Opens the database, applies migrations and mirrors the registry: what `serve` and
/// `migrate` share.
pub fn prepare_database(settings: &Settings, registry: &Registry) -> Result<Db, StartupError> {
    let db = open_database(settings)?;
    let mut conn = db.get()?;
    prepare(&mut conn, registry)?;
    drop(conn);
    Ok(db)
}

/// One connection without a pool, for one-shot commands. A pool keeps a background thread
/// connecting; a process that exits under it can crash inside the database client library.
pub fn connect_once(settings: &Settings) -> Result<db::AnyConnection, DbError> {
    let location = db::DatabaseLocation::parse(&settings.database.url)?;
    if let db::DatabaseLocation::SqliteFile(path) = &location
        && let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| DbError::Connect(format!("cannot create {}: {e}", parent.display())))?;
    }
    db::ConnectionMaker::new(location, settings.database.sqlite_busy_timeout_ms).connect()
}

/// Applies pending migrations and mirrors the registry on one connection.
pub fn prepare(conn: &mut db::AnyConnection, registry: &Registry) -> Result<(), StartupError> {
    let applied = db::run_migrations(conn)?;
    if !applied.is_empty() {
        tracing::info!(count = applied.len(), "migrations applied");
    }
    let changed = db::organisations::sync_registry(conn, registry, Instant::from_utc(chrono::Utc::now()))
        .map_err(DbError::from)?;
    tracing::info!(
        organisations = registry.organisations.len(),
        changed,
        "organisation registry mirrored"
    );
    Ok(())
}

pub struct Application {
    port: u16,
    server: Server,
    db: Db,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// As `build`, with the clock handlers and workers read (tests move time).
    pub async fn build_with_clock(settings: Settings, clock: SharedClock) -> Result<Self, StartupError> {
        auth::check_key_material(&settings)?;
        let keyring = Keyring::from_settings(&settings).map_err(|e| StartupError::Config(e.to_string()))?;
        if keyring.is_development() {
            tracing::warn!(
                "using the built-in development encryption key; set [crypto] keys (NRM__CRYPTO__KEYS) before any real use"
            );
        }
        if settings.environment == Environment::Development && auth::hs256_secret(&settings).1 {
            tracing::warn!(
                "using the built-in development JWT secret; set jwt.hs256_secret (NRM__JWT__HS256_SECRET) \
                 or asymmetric keys before any real use"
            );
        }
        let registry = load_registry(settings.registry.organisations_path())?;
        let routing = load_routing(&settings.registry.routing_file, &registry)?;
        let db = {
            let settings = settings.clone();
            let registry = registry.clone();
            tokio::task::spawn_blocking(move || prepare_database(&settings, &registry))
                .await
                .map_err(|_| DbError::Cancelled)??
        };
        // Blind indexes written under an older name normalisation are brought up to date
        // before the first search can miss them.
        let keyring = Arc::new(keyring);
        {
            let (db, keyring) = (db.clone(), keyring.clone());
            let reindexed = tokio::task::spawn_blocking(move || -> Result<usize, DbError> {
                let mut conn = db.get()?;
                let names = db::privacy::reindex_names(&mut conn, &keyring)?;
                Ok(names + db::cases::index_pseudonyms(&mut conn, &keyring)?)
            })
            .await
            .map_err(|_| DbError::Cancelled)??;
            if reindexed > 0 {
                tracing::info!(reindexed, "name and pseudonym indexes brought up to date");
            }
        }
        let slugs: HashSet<String> = registry.slugs().cloned().collect();
        let focal_point = registry.focal_point().map(|o| o.slug.clone());
        let authenticator = Authenticator::from_settings(&settings, slugs, focal_point)?;
        authenticator.prime().await?;
        let listener = TcpListener::bind(&settings.server.bind).map_err(|e| StartupError::Bind {
            bind: settings.server.bind.clone(),
            problem: e.to_string(),
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| StartupError::Bind {
                bind: settings.server.bind.clone(),
                problem: e.to_string(),
            })?
            .port();

        let db_data = web::Data::new(db.clone());
        let auth_data = web::Data::new(authenticator);
        let notifier = Notifier::new(Arc::new(registry.clone()), &settings.notifications.public_base_url);
        let delivery = Delivery::from_settings(&settings).map_err(|e| StartupError::Config(e.to_string()))?;
        let webhook_delivery =
            notify::webhooks::WebhookDelivery::from_settings(&settings, keyring.clone(), notifier.clone())
                .map_err(|e| StartupError::Config(e.to_string()))?;
        let limits = settings
            .deadline_limits()
            .map_err(|e| StartupError::Config(e.to_string()))?;
        let check_interval = parse_duration(&settings.notifications.deadline_check_interval)
            .map_err(|e| StartupError::Config(format!("notifications.deadline_check_interval: {e}")))?;
        // Background work: the outbox workers run on every instance and claim their rows;
        // the sealer, the deadline watcher, retention and the roll-up folder run on one leader
        // per database
        // (`db::leader`).
        let retention_policy = crate::retention::policy(&settings).map_err(StartupError::Config)?;
        let retention_interval = parse_duration(&settings.retention.check_interval)
            .map_err(|e| StartupError::Config(format!("retention.check_interval: {e}")))?;
        let protocol_errors_every = parse_duration(&settings.log.protocol_errors_every)
            .map_err(|e| StartupError::Config(format!("log.protocol_errors_every: {e}")))?;
        let body_read_timeout = parse_duration(&settings.server.body_read_timeout)
            .map_err(|e| StartupError::Config(format!("server.body_read_timeout: {e}")))?;
        let session_limits = crate::web::session_limits(&settings).map_err(StartupError::Config)?;
        let housekeeping_every = Housekeeping {
            every: parse_duration(&settings.server.housekeeping_interval)
                .map_err(|e| StartupError::Config(format!("server.housekeeping_interval: {e}")))?,
            idempotency_ttl: parse_duration(&settings.server.idempotency_key_ttl)
                .ok()
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .ok_or_else(|| StartupError::Config("server.idempotency_key_ttl: not a duration".into()))?,
        };
        let trusted = TrustedProxies::parse(&settings.server.trusted_proxies)
            .map_err(|e| StartupError::Config(format!("server.trusted_proxies: {e}")))?;
        let connection_limits = ConnectionLimits::new(settings.server.max_connections_per_address, trusted.clone());
        let jwks_every = parse_duration(&settings.jwt.jwks_refresh_every)
            .map_err(|e| StartupError::Config(format!("jwt.jwks_refresh_every: {e}")))?;
        let keys_for_timer = auth_data.clone();
        let tasks = vec![
            tokio::spawn(async move { keys_for_timer.refresh_keys_every(jwks_every).await }),
            tokio::spawn(crate::retention::run(
                db.clone(),
                clock.clone(),
                retention_policy,
                retention_interval,
            )),
            tokio::spawn(worker::run(db.clone(), clock.clone(), delivery, notify::worker_id())),
            tokio::spawn(notify::webhooks::run(
                db.clone(),
                clock.clone(),
                webhook_delivery,
                notify::worker_id(),
            )),
            tokio::spawn(db::audit::run_sealer(db.clone())),
            tokio::spawn(db::rollups::run_folder(db.clone())),
            tokio::spawn(telemetry::report_protocol_errors(protocol_errors_every)),
            tokio::spawn(housekeeping(
                db.clone(),
                clock.clone(),
                session_limits,
                housekeeping_every,
            )),
            tokio::spawn(deadlines::run(
                db.clone(),
                clock.clone(),
                notifier.clone(),
                limits,
                check_interval,
            )),
        ];
        let registry = Arc::new(registry);
        let services = crate::app::Services::new(
            registry.clone(),
            keyring.clone(),
            notifier.clone(),
            Arc::new(routing),
            Arc::new(settings.clone()),
        )
        .map_err(StartupError::Config)?;
        let services_data = web::Data::new(services);
        let registry_data = web::Data::from(registry);
        let notifier_data = web::Data::new(notifier);
        let keyring_data = web::Data::from(keyring);
        let limiter_data = web::Data::new(RateLimiter::new(
            settings.rate_limit.per_token_per_minute,
            settings.rate_limit.per_address_per_minute,
            trusted,
        ));
        let body_timeout_data = web::Data::new(BodyReadTimeout(body_read_timeout));
        let openapi_data = web::Data::new(api::OpenApiText(api::openapi_json_text()));
        let routes_data = web::Data::new(api::RouteTable::from_document(&api::openapi()));
        let settings_data = web::Data::new(settings.clone());
        let clock_data = web::Data::new(clock);
        let body_limit = settings.server.body_limit_bytes;
        let mut server = HttpServer::new(move || {
            let (json, path, query, payload) = api::extractor_configs(body_limit);
            let (app, _) = App::new()
                .into_utoipa_app()
                .app_data(json)
                .app_data(path)
                .app_data(query)
                .app_data(payload)
                .app_data(db_data.clone())
                .app_data(auth_data.clone())
                .app_data(registry_data.clone())
                .app_data(openapi_data.clone())
                .app_data(routes_data.clone())
                .app_data(settings_data.clone())
                .app_data(clock_data.clone())
                .app_data(notifier_data.clone())
                .app_data(services_data.clone())
                .app_data(keyring_data.clone())
                .app_data(limiter_data.clone())
                .app_data(body_timeout_data.clone())
                .configure(api::configure)
                .split_for_parts();
            let app = app.configure(crate::web::configure);
            // Outermost last: telemetry sees (and logs, with headers) the limiters' 429s.
            app.default_service(web::to(not_found))
                .wrap(from_fn(ratelimit::middleware))
                .wrap(from_fn(connections::middleware))
                .wrap(from_fn(telemetry::middleware))
                .wrap(Compress::default())
        })
        .on_connect(move |connection, extensions| connection_limits.on_connect(connection, extensions))
        .listen(listener)
        .map_err(|e| StartupError::Bind {
            bind: settings.server.bind.clone(),
            problem: e.to_string(),
        })?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.shutdown_timeout(10).run();
        tracing::info!(port, backend = db.location().backend_name(), "nrm listening");
        Ok(Self {
            port,
            server,
            db,
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Runs until the server stops (SIGINT/SIGTERM stop it gracefully), then stops the
    /// background tasks.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        for task in &self.tasks {
            task.abort();
        }
        result
    }
}

/// Unknown paths answer problem+json, except to a browser (`Accept: text/html`) outside
/// `/api` and `/health`, which gets a page in its language.
async fn not_found(
    req: actix_web::HttpRequest,
    routes: web::Data<api::RouteTable>,
) -> Result<actix_web::HttpResponse, actix_web::Error> {
    // Browsers ask for HTML and get a page; API clients get problem+json.
    let path = req.path();
    let wants_page = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if !wants_page || path.starts_with("/api/") || path == "/api" || path.starts_with("/health") {
        return api::not_found(req, routes).await.map_err(Into::into);
    }
    let lang = crate::web::page::language_of(&req);
    Err(crate::web::page::WebError::new(lang, crate::web::page::WebErrorKind::NotFound).into())
}

/// Ends abandoned web sessions now and then (a live request refuses them anyway).
/// What housekeeping removes, and how often.
struct Housekeeping {
    every: std::time::Duration,
    idempotency_ttl: chrono::Duration,
}

/// Removes expired web sessions and idempotency keys older than their TTL.
async fn housekeeping(db: Db, clock: SharedClock, limits: crate::app::sessions::SessionLimits, plan: Housekeeping) {
    let mut tick = tokio::time::interval(plan.every);
    loop {
        tick.tick().await;
        let now = Instant::from_utc(clock.now());
        let purged = db.run(move |conn| crate::app::sessions::purge(conn, now, limits)).await;
        match purged {
            Ok(0) => {}
            Ok(count) => tracing::debug!(count, "expired web sessions removed"),
            Err(error) => tracing::warn!("expired web sessions could not be removed: {error}"),
        }
        let before = Instant::from_utc(now.0 - plan.idempotency_ttl);
        let purged = db
            .run(move |conn| db::referrals::purge_idempotency(conn, before).map_err(DbError::from))
            .await;
        match purged {
            Ok(0) => {}
            Ok(count) => tracing::debug!(count, "expired idempotency keys removed"),
            Err(error) => tracing::warn!("expired idempotency keys could not be removed: {error}"),
        }
    }
}

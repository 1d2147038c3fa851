//! The use cases: one public function per user action, shared by the JSON API (`api/`) and
//! the web pages. Each runs a whole action inside the transaction it is handed: it loads
//! what the decision needs (with the visibility rules of `domain::access`), asks the pure
//! domain, and writes state, history, audit entry and outbox rows.
//!
//! Knows no HTTP: no actix types, no status codes, no headers. Errors are `AppError`, mapped
//! to problem+json once, in `crate::error`. May import `db`, `domain`, `crypto` and
//! `notify` (to queue mail in the same transaction); never `api`, `auth` or a web module.

pub mod access;
pub mod admin;
pub mod anonymous_notifications;
pub mod capacity;
pub mod cases;
pub mod consents;
pub mod fhir;
pub mod htcds;
pub mod identification;
pub mod oversight;
pub mod privacy;
pub mod referrals;
pub mod sessions;
pub mod three_way;
pub mod webhooks;

use std::sync::Arc;

use crate::config::Settings;
use crate::crypto::{CryptoError, Keyring};
use crate::db::audit::NewAuditEntry;
use crate::db::{AnyConnection, DbError, Id, Instant, RowError};
use crate::domain::access::{Actor, Denial};
use crate::domain::deadline::DeadlineLimits;
use crate::domain::ids::CaseId;
use crate::domain::organisation::Registry;
use crate::domain::problem::FieldError;
use crate::domain::routing::RoutingRules;
use crate::domain::text::Sealed;
use crate::notify::Notifier;

/// What every use case may need besides the connection: built once at start-up.
pub struct Services {
    pub registry: Arc<Registry>,
    pub keyring: Arc<Keyring>,
    pub notifier: Notifier,
    pub routing: Arc<RoutingRules>,
    pub settings: Arc<Settings>,
    /// The time allowed for each handover step (from `settings`).
    pub limits: DeadlineLimits,
    /// How long an Idempotency-Key is remembered (`server.idempotency_key_ttl`).
    pub idempotency_ttl: chrono::Duration,
}

impl Services {
    pub fn new(
        registry: Arc<Registry>,
        keyring: Arc<Keyring>,
        notifier: Notifier,
        routing: Arc<RoutingRules>,
        settings: Arc<Settings>,
    ) -> Result<Self, String> {
        let limits = settings.deadline_limits().map_err(|e| e.to_string())?;
        let idempotency_ttl = crate::config::parse_duration(&settings.server.idempotency_key_ttl)
            .ok()
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .ok_or("server.idempotency_key_ttl: not a duration")?;
        Ok(Self {
            idempotency_ttl,
            registry,
            keyring,
            notifier,
            routing,
            settings,
            limits,
        })
    }
}

/// One use case's context: the transaction's connection, who acts, when, and the services.
pub struct Ctx<'a> {
    pub conn: &'a mut AnyConnection,
    pub actor: &'a Actor,
    pub now: Instant,
    pub services: &'a Services,
}

impl<'a> Ctx<'a> {
    pub fn new(conn: &'a mut AnyConnection, actor: &'a Actor, now: Instant, services: &'a Services) -> Self {
        Self {
            conn,
            actor,
            now,
            services,
        }
    }

    pub fn keyring(&self) -> &Keyring {
        &self.services.keyring
    }

    pub fn registry(&self) -> &Registry {
        &self.services.registry
    }

    pub fn today(&self) -> chrono::NaiveDate {
        self.now.0.date_naive()
    }
}

/// Why a use case did not happen. Says what a person would need to know, never a value
/// they sent; `Internal` causes go to the log only.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The thing does not exist, or the caller may not learn that it does.
    #[error("not found")]
    NotFound,
    /// An organisation slug that is not in the registry.
    #[error("unknown organisation")]
    UnknownOrganisation,
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The state of the thing does not allow the action.
    #[error("conflict: {detail}")]
    Conflict {
        detail: String,
        allowed_actions: Option<Vec<String>>,
    },
    /// The version the caller saw is no longer the current one.
    #[error("stale version")]
    StaleVersion,
    /// A versioned change that does not name the version the person saw; the text says why
    /// when something else was named (`*`).
    #[error("version required")]
    VersionRequired(Option<&'static str>),
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// Handover requirements not met, with their stable codes.
    #[error("guards failed")]
    GuardsFailed { detail: String, guards: Vec<String> },
    /// Retryable: the database is busy or unreachable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl AppError {
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        AppError::Internal(cause.to_string())
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        AppError::Conflict {
            detail: detail.into(),
            allowed_actions: None,
        }
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<Denial> for AppError {
    fn from(denial: Denial) -> Self {
        match denial {
            Denial::Hidden => AppError::NotFound,
            Denial::Forbidden(needed) => AppError::Forbidden(needed.to_string()),
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::NotFound => AppError::NotFound,
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, info) => {
                AppError::Unavailable(format!("serialization failure: {}", info.message()))
            }
            // The connection died under the request (a failover, a restart): retryable, and
            // the pool checks that connection before handing it out again.
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                AppError::Unavailable(format!("database connection lost: {}", info.message()))
            }
            other => {
                let text = other.to_string();
                // SQLite under write contention past the busy timeout: retryable, not a bug.
                if text.contains("database is locked") {
                    AppError::Unavailable(text)
                } else {
                    AppError::Internal(text)
                }
            }
        }
    }
}

impl From<DbError> for AppError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Query(e) => e.into(),
            DbError::Pool(e) => AppError::Unavailable(e.to_string()),
            DbError::ConnectionLost(cause) => AppError::Unavailable(format!("database connection lost: {cause}")),
            other => AppError::Internal(other.to_string()),
        }
    }
}

/// A stored row that does not convert to its domain type is a bug or a broken database:
/// an internal error, logged with the request id, never a silent default.
impl From<RowError> for AppError {
    fn from(error: RowError) -> Self {
        AppError::Internal(error.to_string())
    }
}

impl From<CryptoError> for AppError {
    fn from(_: CryptoError) -> Self {
        AppError::Internal("a sealed value could not be opened: check [crypto] keys".into())
    }
}

pub type AppResult<T> = Result<T, AppError>;

impl Ctx<'_> {
    /// Appends the audit entry of a change (or of a read of identifying details) in this
    /// transaction. Call it last, after the change itself.
    pub fn audit(
        &mut self,
        action: &str,
        resource_type: &str,
        resource_id: uuid::Uuid,
        case_id: Option<CaseId>,
        outcome: &str,
    ) -> AppResult<()> {
        let entry = NewAuditEntry::new(
            action,
            resource_type,
            resource_id.to_string(),
            case_id.map(|c| Id(c.0)),
            outcome,
        )
        .by_actor(self.actor);
        crate::db::audit::append(self.conn, &entry, self.now)?;
        Ok(())
    }

    /// Opens a sealed value of `field` of `record`; an erased one (empty) stays empty.
    pub fn open(&self, field: &str, record: uuid::Uuid, sealed: &Option<Sealed>) -> AppResult<Option<String>> {
        match sealed {
            None => Ok(None),
            Some(value) if value.is_erased() => Ok(Some(String::new())),
            Some(value) => Ok(Some(self.keyring().open(field, Id(record), &value.0)?)),
        }
    }

    /// Seals `text` for `field` of `record`.
    pub fn seal(&self, field: &str, record: uuid::Uuid, text: &str) -> Sealed {
        Sealed(self.keyring().seal(field, Id(record), text))
    }

    pub fn seal_opt(&self, field: &str, record: uuid::Uuid, text: Option<&str>) -> Option<Sealed> {
        text.map(|t| self.seal(field, record, t))
    }

    /// A new id: UUIDv7, so ids sort by creation.
    pub fn new_id(&self) -> uuid::Uuid {
        uuid::Uuid::now_v7()
    }
}

/// One creating request's idempotency: a client key, the route, and a keyed hash of the
/// request. The same key with the same request gives the same resource again.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: Option<String>,
    pub route: String,
    pub hash: String,
}

impl Idempotency {
    /// Without a key: every request creates.
    pub fn none() -> Self {
        Self {
            key: None,
            route: String::new(),
            hash: String::new(),
        }
    }

    /// Inside the creating transaction: the id created by an earlier identical request.
    /// The same key with another request is refused.
    pub fn replay(&self, ctx: &mut Ctx) -> AppResult<Option<uuid::Uuid>> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let found = crate::db::referrals::find_idempotency(ctx.conn, &ctx.actor.org, &ctx.actor.sub, key)?;
        // A key older than the TTL is forgotten now, purged or not yet.
        let expired = Instant::from_utc(ctx.now.0 - ctx.services.idempotency_ttl);
        if let Some(row) = found.as_ref().filter(|row| row.created_at.0 < expired.0) {
            crate::db::referrals::forget_idempotency(ctx.conn, row)?;
            return Ok(None);
        }
        match found {
            None => Ok(None),
            Some(row) if row.route == self.route && row.request_hash == self.hash => Ok(Some(row.resource_id.0)),
            Some(_) => Err(AppError::field(
                "Idempotency-Key",
                "was already used for a different request; use a new key for a new request",
            )),
        }
    }

    /// Inside the same transaction, after creating: remember what the key created.
    pub fn remember(&self, ctx: &mut Ctx, id: uuid::Uuid) -> AppResult<()> {
        let Some(key) = &self.key else { return Ok(()) };
        let row = crate::db::referrals::IdempotencyRow {
            organisation: ctx.actor.org.clone(),
            actor_sub: ctx.actor.sub.clone(),
            key: key.clone(),
            route: self.route.clone(),
            request_hash: self.hash.clone(),
            resource_id: Id(id),
            created_at: ctx.now,
        };
        crate::db::referrals::insert_idempotency(ctx.conn, &row).map_err(|e| match e {
            diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
                AppError::conflict("a request with this Idempotency-Key is being processed; retry it")
            }
            other => other.into(),
        })
    }
}

/// A change requested for one field: keep the stored value, clear it, or set it.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch<T> {
    /// The field was not sent: keep the stored value.
    Keep,
    /// The field was sent empty (`null`): clear it.
    Clear,
    Set(T),
}

impl<T> Patch<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Patch::Keep => Patch::Keep,
            Patch::Clear => Patch::Clear,
            Patch::Set(value) => Patch::Set(f(value)),
        }
    }

    /// For a field that cannot be empty (parsers refuse `Clear` for those).
    pub fn apply_to(self, field: &mut T) {
        if let Patch::Set(value) = self {
            *field = value;
        }
    }

    pub fn apply_to_opt(self, field: &mut Option<T>) {
        match self {
            Patch::Keep => {}
            Patch::Clear => *field = None,
            Patch::Set(value) => *field = Some(value),
        }
    }
}

/// The version of a resource the person saw, as their request named it. A change of a
/// versioned resource must name it, so two people cannot overwrite each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenVersion {
    Named(i64),
    /// Nothing was named.
    Missing,
    /// "Any version" (`*`): refused, a change must name the version the person saw.
    Any,
    /// Something that can never be a current version.
    Unmatchable,
}

impl SeenVersion {
    /// Whether a change made by someone who saw this may apply to `current`.
    pub fn check(self, current: i64) -> AppResult<()> {
        match self {
            SeenVersion::Named(version) if version == current => Ok(()),
            SeenVersion::Named(_) | SeenVersion::Unmatchable => Err(AppError::StaleVersion),
            SeenVersion::Missing => Err(AppError::VersionRequired(None)),
            SeenVersion::Any => Err(AppError::VersionRequired(Some(
                "If-Match: * would match any version; send the ETag of the version you saw, e.g. \"3\"",
            ))),
        }
    }
}

/// A page size and keyset cursor (the last id of the previous page), checked.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    pub before: Option<uuid::Uuid>,
}

impl Page {
    pub fn parse(limit: Option<i64>, cursor: Option<&str>, settings: &Settings) -> AppResult<Self> {
        let (default, max) = (settings.cases.page_size_default, settings.cases.page_size_max);
        let limit = limit.unwrap_or(default);
        if !(1..=max).contains(&limit) {
            return Err(AppError::field("limit", format!("must be between 1 and {max}")));
        }
        let before = match cursor {
            None | Some("") => None,
            Some(text) => Some(
                uuid::Uuid::parse_str(text).map_err(|_| AppError::field("cursor", "is not a cursor from this API"))?,
            ),
        };
        Ok(Self { limit, before })
    }

    /// One row more than a page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// Cuts the extra row off; the cursor of the next page, if any.
    pub fn finish<T>(&self, mut rows: Vec<T>, id_of: impl Fn(&T) -> uuid::Uuid) -> (Vec<T>, Option<String>) {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next = if more {
            rows.last().map(|r| id_of(r).to_string())
        } else {
            None
        };
        (rows, next)
    }
}

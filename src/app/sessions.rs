//! Signing in to the web pages: a session per sign-in, kept in the database so every
//! instance knows it; idle and absolute timeouts; sign-out ends it in the database.
//!
//! The session secret lives only in the person's cookie; the table holds its SHA-256. Each
//! sign-in makes a new secret (the old session, if any, is ended), so a secret planted
//! before sign-in is worth nothing after it.

use chrono::Duration;

use super::{AppError, AppResult};
use crate::crypto::{random_token, same_secret, sha256_hex};
use crate::db::sessions::{self as session_rows, SessionRow};
use crate::db::{AnyConnection, Instant};
use crate::domain::access::{Actor, Role};

/// Who signs in, as the identity provider (or the development persona list) says.
#[derive(Debug, Clone)]
pub struct Identity {
    pub sub: String,
    pub org: String,
    pub roles: Vec<Role>,
    pub display_name: String,
    pub id_token_hint: Option<String>,
}

/// How long a session lasts.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Ended after this long without a request.
    pub idle: Duration,
    /// Ended this long after sign-in, however busy.
    pub absolute: Duration,
}

/// A session just begun: the secret goes into the cookie, and nowhere else.
#[derive(Debug)]
pub struct Started {
    pub secret: String,
}

/// A signed-in person, as a request finds them.
#[derive(Debug, Clone)]
pub struct Session {
    pub actor: Actor,
    pub display_name: String,
    /// Every state-changing form carries it.
    pub csrf_token: String,
    pub id_token_hint: Option<String>,
}

impl Session {
    /// Whether a form's token is this session's.
    pub fn csrf_matches(&self, token: Option<&str>) -> bool {
        token.is_some_and(|t| same_secret(t, &self.csrf_token))
    }
}

/// Begins a session for `identity`, ending the one the browser had (`previous`, its secret).
pub fn start(conn: &mut AnyConnection, identity: Identity, previous: Option<&str>, now: Instant) -> AppResult<Started> {
    if let Some(previous) = previous {
        session_rows::delete(conn, &sha256_hex(previous))?;
    }
    let secret = random_token(32);
    let roles = identity.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",");
    session_rows::insert(
        conn,
        &SessionRow {
            id_hash: sha256_hex(&secret),
            csrf_token: random_token(32),
            actor_sub: identity.sub.clone(),
            organisation: identity.org.clone(),
            roles: roles.clone(),
            display_name: identity.display_name.clone(),
            id_token_hint: identity.id_token_hint,
            created_at: now,
            last_seen_at: now,
        },
    )?;
    // Whom colleagues can hand a referral to, by name.
    crate::db::staff::upsert(
        conn,
        &crate::db::staff::StaffRow {
            organisation: identity.org.clone(),
            sub: identity.sub.clone(),
            display_name: identity.display_name,
            roles: roles.clone(),
            last_seen_at: now,
        },
    )?;
    let entry = crate::db::audit::NewAuditEntry::new("session.start", "session", identity.sub.clone(), None, "ok").by(
        &identity.sub,
        &identity.org,
        roles,
    );
    crate::db::audit::append(conn, &entry, now)?;
    Ok(Started { secret })
}

/// The session a cookie's secret names, if it is still alive; marks it used. A session past
/// a timeout is ended here.
pub fn resume(
    conn: &mut AnyConnection,
    secret: &str,
    now: Instant,
    limits: SessionLimits,
    focal_point: Option<&str>,
) -> AppResult<Option<Session>> {
    let id_hash = sha256_hex(secret);
    let Some(row) = session_rows::find(conn, &id_hash)? else {
        return Ok(None);
    };
    if now.0 - row.last_seen_at.0 > limits.idle || now.0 - row.created_at.0 > limits.absolute {
        session_rows::delete(conn, &id_hash)?;
        return Ok(None);
    }
    // One write a minute at most: a page with several requests does not write each time.
    if now.0 - row.last_seen_at.0 > Duration::seconds(60) {
        session_rows::touch(conn, &id_hash, now)?;
    }
    let mut roles = Vec::new();
    for name in row.roles.split(',').filter(|r| !r.is_empty()) {
        roles.push(Role::parse(name).ok_or_else(|| AppError::internal("web_sessions.roles holds an unknown role"))?);
    }
    Ok(Some(Session {
        actor: Actor {
            sub: row.actor_sub,
            at_focal_point: focal_point == Some(row.organisation.as_str()),
            org: row.organisation,
            roles,
            machine: None,
        },
        display_name: row.display_name,
        csrf_token: row.csrf_token,
        id_token_hint: row.id_token_hint,
    }))
}

/// Ends the session the secret names (sign-out); what the provider needs to end its own.
pub fn end(conn: &mut AnyConnection, secret: &str, now: Instant) -> AppResult<Option<String>> {
    let id_hash = sha256_hex(secret);
    let Some(row) = session_rows::find(conn, &id_hash)? else {
        return Ok(None);
    };
    session_rows::delete(conn, &id_hash)?;
    let entry = crate::db::audit::NewAuditEntry::new("session.end", "session", row.actor_sub.clone(), None, "ok").by(
        &row.actor_sub,
        &row.organisation,
        row.roles.clone(),
    );
    crate::db::audit::append(conn, &entry, now)?;
    Ok(row.id_token_hint)
}

/// Removes sessions past either timeout (run now and then; `resume` refuses them anyway).
pub fn purge(conn: &mut AnyConnection, now: Instant, limits: SessionLimits) -> AppResult<usize> {
    Ok(session_rows::purge(
        conn,
        Instant(now.0 - limits.idle),
        Instant(now.0 - limits.absolute),
    )?)
}

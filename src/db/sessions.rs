//! Web sessions, server-side, so every instance behind a load balancer knows them. A row is
//! found by the SHA-256 of the cookie's secret: a copy of the table opens no session.

use diesel::prelude::*;

use super::schema::web_sessions;
use super::{AnyConnection, Instant, update_where};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = web_sessions, treat_none_as_default_value = false)]
pub struct SessionRow {
    pub id_hash: String,
    pub csrf_token: String,
    pub actor_sub: String,
    pub organisation: String,
    /// Comma-separated role names, as the audit trail writes them.
    pub roles: String,
    /// How the header names the person: a persona, or the provider's name claim.
    pub display_name: String,
    /// The provider's id_token, for RP-initiated sign-out; none for personas.
    pub id_token_hint: Option<String>,
    pub created_at: Instant,
    pub last_seen_at: Instant,
}

pub fn insert(conn: &mut AnyConnection, row: &SessionRow) -> QueryResult<()> {
    diesel::insert_into(web_sessions::table).values(row).execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut AnyConnection, id_hash: &str) -> QueryResult<Option<SessionRow>> {
    web_sessions::table
        .find(id_hash)
        .select(SessionRow::as_select())
        .first(conn)
        .optional()
}

/// Marks the session used now.
pub fn touch(conn: &mut AnyConnection, id_hash: &str, now: Instant) -> QueryResult<()> {
    update_where(
        web_sessions::table,
        web_sessions::last_seen_at.eq(now),
        web_sessions::id_hash.eq(id_hash),
    )
    .execute(conn)?;
    Ok(())
}

pub fn delete(conn: &mut AnyConnection, id_hash: &str) -> QueryResult<usize> {
    diesel::delete(web_sessions::table.find(id_hash)).execute(conn)
}

/// Removes sessions idle since before `idle_before` or begun before `started_before`.
pub fn purge(conn: &mut AnyConnection, idle_before: Instant, started_before: Instant) -> QueryResult<usize> {
    diesel::delete(
        web_sessions::table.filter(
            web_sessions::last_seen_at
                .lt(idle_before)
                .or(web_sessions::created_at.lt(started_before)),
        ),
    )
    .execute(conn)
}

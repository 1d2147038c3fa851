//! Audit rows: appended inside the caller's transaction, never updated or deleted.
//!
//! Appending takes the chain head with `UPDATE ... RETURNING`, which locks the head row on
//! PostgreSQL until the transaction ends (SQLite serialises writers anyway), so concurrent
//! writers line up and the chain cannot fork. Append last in a transaction to hold the
//! head for as short a time as possible.

use diesel::prelude::*;

use super::schema::{audit_head, audit_log};
use super::{AnyConnection, Id, Instant};
use crate::domain::audit::{AuditRecord, ChainVerifier, Verification};

/// What happened, by whom, to what. No personal data.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub actor_sub: String,
    pub actor_org: String,
    pub actor_roles: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub case_id: Option<Id>,
    pub outcome: String,
}

impl NewAuditEntry {
    /// A change the service made itself (registry mirror, deadlines, retention); `by` names
    /// a person instead.
    pub fn new(
        action: &str,
        resource_type: &str,
        resource_id: impl Into<String>,
        case_id: Option<Id>,
        outcome: &str,
    ) -> Self {
        Self {
            actor_sub: "system".into(),
            actor_org: "system".into(),
            actor_roles: String::new(),
            action: action.into(),
            resource_type: resource_type.into(),
            resource_id: resource_id.into(),
            case_id,
            outcome: outcome.into(),
        }
    }

    pub fn by(mut self, sub: &str, org: &str, roles: String) -> Self {
        self.actor_sub = sub.into();
        self.actor_org = org.into();
        self.actor_roles = roles;
        self
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub seq: i64,
    pub at: Instant,
    pub actor_sub: String,
    pub actor_org: String,
    pub actor_roles: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub case_id: Option<Id>,
    pub outcome: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRow {
    pub fn record(&self) -> AuditRecord {
        AuditRecord {
            seq: self.seq,
            at: self.at.0.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            actor_sub: self.actor_sub.clone(),
            actor_org: self.actor_org.clone(),
            actor_roles: self.actor_roles.clone(),
            action: self.action.clone(),
            resource_type: self.resource_type.clone(),
            resource_id: self.resource_id.clone(),
            case_id: self.case_id.map(|c| c.0.to_string()),
            outcome: self.outcome.clone(),
            prev_hash: self.prev_hash.clone(),
        }
    }
}

/// Appends one entry to the chain; returns its sequence number.
pub fn append(conn: &mut AnyConnection, entry: &NewAuditEntry, at: Instant) -> QueryResult<i64> {
    let (seq, prev_hash): (i64, String) = diesel::update(audit_head::table.filter(audit_head::id.eq(1)))
        .set(audit_head::last_seq.eq(audit_head::last_seq + 1))
        .returning((audit_head::last_seq, audit_head::last_hash))
        .get_result(conn)?;
    let mut row = AuditRow {
        seq,
        at,
        actor_sub: entry.actor_sub.clone(),
        actor_org: entry.actor_org.clone(),
        actor_roles: entry.actor_roles.clone(),
        action: entry.action.clone(),
        resource_type: entry.resource_type.clone(),
        resource_id: entry.resource_id.clone(),
        case_id: entry.case_id,
        outcome: entry.outcome.clone(),
        prev_hash,
        hash: String::new(),
    };
    row.hash = row.record().hash();
    diesel::insert_into(audit_log::table).values(&row).execute(conn)?;
    diesel::update(audit_head::table.filter(audit_head::id.eq(1)))
        .set(audit_head::last_hash.eq(&row.hash))
        .execute(conn)?;
    Ok(seq)
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub case_id: Option<Id>,
    pub organisation: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<Instant>,
    pub to: Option<Instant>,
    /// Keyset cursor: entries with a smaller sequence number.
    pub before_seq: Option<i64>,
    pub limit: i64,
}

/// Entries matching the filter, newest first.
pub fn list(conn: &mut AnyConnection, filter: &AuditFilter) -> QueryResult<Vec<AuditRow>> {
    let mut query = audit_log::table.into_boxed();
    if let Some(case_id) = filter.case_id {
        query = query.filter(audit_log::case_id.eq(case_id));
    }
    if let Some(org) = &filter.organisation {
        query = query.filter(audit_log::actor_org.eq(org.clone()));
    }
    if let Some(actor) = &filter.actor {
        query = query.filter(audit_log::actor_sub.eq(actor.clone()));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_log::action.eq(action.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(audit_log::at.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(audit_log::at.lt(to));
    }
    if let Some(before) = filter.before_seq {
        query = query.filter(audit_log::seq.lt(before));
    }
    query
        .order(audit_log::seq.desc())
        .limit(filter.limit)
        .select(AuditRow::as_select())
        .load(conn)
}

/// Walks the whole chain in sequence order, in batches, and checks it against the head.
pub fn verify(conn: &mut AnyConnection) -> QueryResult<Verification> {
    const BATCH: i64 = 5_000;
    let mut verifier = ChainVerifier::default();
    let mut after = i64::MIN;
    loop {
        let rows: Vec<AuditRow> = audit_log::table
            .filter(audit_log::seq.gt(after))
            .order(audit_log::seq.asc())
            .limit(BATCH)
            .select(AuditRow::as_select())
            .load(conn)?;
        for row in &rows {
            verifier.check(&row.record(), &row.hash);
        }
        match rows.last() {
            Some(last) if rows.len() as i64 == BATCH => after = last.seq,
            _ => break,
        }
    }
    let (head_seq, head_hash): (i64, String) = audit_head::table
        .filter(audit_head::id.eq(1))
        .select((audit_head::last_seq, audit_head::last_hash))
        .first(conn)?;
    Ok(verifier.finish(head_seq, &head_hash))
}

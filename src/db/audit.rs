//! The audit trail: entries are written with the change they record and sealed into the
//! hash chain shortly after, in batches.
//!
//! A change calls `append`, which inserts into `audit_pending` inside the change's own
//! transaction: the entry commits or rolls back with the change, and the request takes no
//! lock shared with other requests. `seal` moves pending entries into `audit_log` in the order
//! it finds them, giving each its sequence number, previous hash and hash. It takes the chain
//! head with `UPDATE ... RETURNING` (a row lock on PostgreSQL until its commit; SQLite
//! serialises writers anyway), so sealers on several instances take turns and the chain
//! cannot fork. One head lock per batch instead of one per request is what lets concurrent
//! requests proceed (docs/architecture.md, "The audit trail"). One instance per database
//! leads the sealing (`db::leader`) and seals every `SEAL_INTERVAL`, at once again while it
//! finds full batches; reading the trail and verifying it seal first, so they cover every
//! entry committed before they started. An entry left unsealed for longer than
//! `SEAL_OVERDUE_AFTER` means no sealer is running: verification reports it.

use std::time::Duration;

use diesel::prelude::*;

use super::leader::{Leadership, SingletonTask};
use super::schema::{audit_head, audit_log, audit_pending};
use super::{AnyConnection, Db, DbError, Id, Instant, insert_all, report_transaction, update_where, write_transaction};
use crate::domain::access::{Actor, ActorKind};
use crate::domain::audit::{AuditRecord, ChainVerifier, Verification};

/// How often the leading instance seals what is pending: about the longest an entry stays
/// outside the chain while the service runs.
pub const SEAL_INTERVAL: Duration = Duration::from_millis(50);

/// How long an entry may wait for its seal before verification calls it overdue: many
/// intervals, so that a busy moment or a hand-over between instances is not an alarm, while
/// a stopped sealer is one within seconds.
pub const SEAL_OVERDUE_AFTER: Duration = Duration::from_secs(10);

/// Entries sealed per transaction.
const SEAL_BATCH: i64 = 1_000;

/// What happened, by whom, to what. No personal data.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub actor_kind: ActorKind,
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
            actor_kind: ActorKind::Person,
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

    /// A person, by name: `by_actor` for whoever a use case runs for.
    pub fn by(mut self, sub: &str, org: &str, roles: String) -> Self {
        self.actor_kind = ActorKind::Person;
        self.actor_sub = sub.into();
        self.actor_org = org.into();
        self.actor_roles = roles;
        self
    }

    /// The person or machine client a use case runs for (a machine's scopes stand where a
    /// person's roles do).
    pub fn by_actor(self, actor: &Actor) -> Self {
        let kind = actor.kind();
        let mut entry = self.by(&actor.sub, &actor.org, actor.roles_text());
        entry.actor_kind = kind;
        entry
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log, treat_none_as_default_value = false)]
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
    pub actor_kind: String,
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
            actor_kind: self.actor_kind.clone(),
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = audit_pending, treat_none_as_default_value = false)]
struct NewPending<'a> {
    at: Instant,
    actor_sub: &'a str,
    actor_org: &'a str,
    actor_roles: &'a str,
    action: &'a str,
    resource_type: &'a str,
    resource_id: &'a str,
    case_id: Option<Id>,
    outcome: &'a str,
    actor_kind: &'a str,
}

#[derive(Debug, Clone, Queryable)]
struct PendingRow {
    id: i64,
    at: Instant,
    actor_sub: String,
    actor_org: String,
    actor_roles: String,
    action: String,
    resource_type: String,
    resource_id: String,
    case_id: Option<Id>,
    outcome: String,
    actor_kind: String,
}

/// Records one entry in the caller's transaction; `seal` chains it after the commit.
pub fn append(conn: &mut AnyConnection, entry: &NewAuditEntry, at: Instant) -> QueryResult<()> {
    diesel::insert_into(audit_pending::table)
        .values(pending(entry, at))
        .execute(conn)?;
    Ok(())
}

/// As `append` for many entries, in their order, in multi-row inserts.
pub fn append_all(conn: &mut AnyConnection, entries: &[NewAuditEntry], at: Instant) -> QueryResult<()> {
    let rows: Vec<NewPending<'_>> = entries.iter().map(|entry| pending(entry, at)).collect();
    insert_all!(conn, audit_pending::table, rows);
    Ok(())
}

fn pending(entry: &NewAuditEntry, at: Instant) -> NewPending<'_> {
    NewPending {
        at,
        actor_sub: &entry.actor_sub,
        actor_org: &entry.actor_org,
        actor_roles: &entry.actor_roles,
        action: &entry.action,
        resource_type: &entry.resource_type,
        resource_id: &entry.resource_id,
        case_id: entry.case_id,
        outcome: &entry.outcome,
        actor_kind: entry.actor_kind.as_str(),
    }
}

/// Appends `rows` to the chain in their order, in the caller's transaction: takes the head,
/// gives each row its sequence number, previous hash and hash, inserts them, moves the head.
pub fn chain(conn: &mut AnyConnection, rows: &mut [AuditRow]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let (mut seq, mut prev_hash): (i64, String) = diesel::update(audit_head::table.filter(audit_head::id.eq(1)))
        .set(audit_head::last_seq.eq(audit_head::last_seq))
        .returning((audit_head::last_seq, audit_head::last_hash))
        .get_result(conn)?;
    for row in rows.iter_mut() {
        seq += 1;
        row.seq = seq;
        row.prev_hash = std::mem::take(&mut prev_hash);
        row.hash = row.record().hash();
        prev_hash = row.hash.clone();
    }
    insert_all!(conn, audit_log::table, rows);
    update_where(
        audit_head::table,
        (audit_head::last_seq.eq(seq), audit_head::last_hash.eq(&prev_hash)),
        audit_head::id.eq(1),
    )
    .execute(conn)?;
    Ok(())
}

/// Seals every entry pending when it starts (and any committed meanwhile), one transaction
/// per `SEAL_BATCH`; returns how many it sealed. Safe to run on every instance at once.
pub fn seal(conn: &mut AnyConnection) -> QueryResult<u64> {
    // Most calls find nothing: look before taking the head (and SQLite's write lock).
    let pending: Option<i64> = audit_pending::table.select(audit_pending::id).first(conn).optional()?;
    if pending.is_none() {
        return Ok(0);
    }
    let mut sealed = 0;
    loop {
        let batch = write_transaction(conn, seal_batch)?;
        sealed += batch;
        if batch < SEAL_BATCH as u64 {
            return Ok(sealed);
        }
    }
}

fn seal_batch(conn: &mut AnyConnection) -> QueryResult<u64> {
    // The head first: a second sealer waits here, then finds only what this one left.
    update_where(
        audit_head::table,
        audit_head::last_seq.eq(audit_head::last_seq),
        audit_head::id.eq(1),
    )
    .execute(conn)?;
    // By id, not by range: a row committed later with a smaller id stays for the next batch.
    let ids: Vec<i64> = audit_pending::table
        .select(audit_pending::id)
        .order(audit_pending::id.asc())
        .limit(SEAL_BATCH)
        .load(conn)?;
    let mut pending: Vec<PendingRow> = diesel::delete(audit_pending::table.filter(audit_pending::id.eq_any(&ids)))
        .returning(audit_pending::all_columns)
        .load(conn)?;
    pending.sort_by_key(|row| row.id);
    let mut rows: Vec<AuditRow> = pending
        .into_iter()
        .map(|p| AuditRow {
            seq: 0,
            at: p.at,
            actor_sub: p.actor_sub,
            actor_org: p.actor_org,
            actor_roles: p.actor_roles,
            action: p.action,
            resource_type: p.resource_type,
            resource_id: p.resource_id,
            case_id: p.case_id,
            outcome: p.outcome,
            prev_hash: String::new(),
            hash: String::new(),
            actor_kind: p.actor_kind,
        })
        .collect();
    chain(conn, &mut rows)?;
    Ok(rows.len() as u64)
}

/// Entries written but not yet sealed.
pub fn unsealed(conn: &mut AnyConnection) -> QueryResult<u64> {
    let count: i64 = audit_pending::table.count().get_result(conn)?;
    Ok(count as u64)
}

/// Entries that have waited for their seal since before `before`, and the oldest one's time.
pub fn waiting_since(conn: &mut AnyConnection, before: Instant) -> QueryResult<(u64, Option<Instant>)> {
    let count: i64 = audit_pending::table
        .filter(audit_pending::at.lt(before))
        .count()
        .get_result(conn)?;
    if count == 0 {
        return Ok((0, None));
    }
    let oldest: Option<Instant> = audit_pending::table
        .select(audit_pending::at)
        .order(audit_pending::at.asc())
        .first(conn)
        .optional()?;
    Ok((count as u64, oldest))
}

/// Seals every `SEAL_INTERVAL` while this instance leads the sealing, until the process ends.
pub async fn run_sealer(db: Db) {
    let mut leadership = Leadership::new(&db, SingletonTask::Sealer);
    loop {
        leadership.next_pass(SEAL_INTERVAL).await;
        match db.run(|conn| seal(conn).map_err(DbError::from)).await {
            Ok(_) => {}
            Err(error) => tracing::error!(error = %error, "sealing audit entries failed"),
        }
    }
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

/// Counts the entries that have waited for their seal for longer than `SEAL_OVERDUE_AFTER`
/// at `now` (before sealing them, so a stopped sealer shows), seals what is pending, then
/// walks the whole chain in sequence order, in batches, and checks it against the head, all
/// in one snapshot: a sealer committing meanwhile cannot make the head and the walk
/// disagree. `unsealed` counts entries committed after the seal.
pub fn verify(conn: &mut AnyConnection, now: Instant) -> QueryResult<Verification> {
    let allowance = chrono::Duration::from_std(SEAL_OVERDUE_AFTER).unwrap_or_else(|_| chrono::Duration::seconds(10));
    let (overdue, oldest) = waiting_since(conn, Instant::from_utc(now.0 - allowance))?;
    seal(conn)?;
    let verification = report_transaction(conn, walk)?;
    Ok(verification.with_overdue_seals(overdue, oldest.map(|at| at.0)))
}

fn walk(conn: &mut AnyConnection) -> QueryResult<Verification> {
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
    let unsealed = unsealed(conn)?;
    Ok(verifier.finish(head_seq, &head_hash, unsealed))
}

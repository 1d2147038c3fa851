//! The notification outbox and escalation records.
//!
//! Messages are inserted in the transaction of the change that causes them. Delivery
//! workers claim due messages with a lease: on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so
//! several instances never claim the same message at once; on SQLite inside an immediate
//! transaction (one instance). A claimed message whose worker died becomes claimable again
//! when its lease runs out: delivery is at least once.

use diesel::prelude::*;

use super::schema::{escalations, notifications};
use super::{AnyConnection, Id, Instant, insert_all, update_where};
use crate::domain::notification::{DeliveryStatus, NotificationKind};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = notifications, treat_none_as_default_value = false)]
pub struct NotificationRow {
    pub id: Id,
    pub kind: String,
    pub recipient: String,
    pub recipient_org: String,
    pub referral_id: Option<Id>,
    pub subject: String,
    pub body: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Instant,
    pub lease_until: Option<Instant>,
    pub leased_by: Option<String>,
    pub last_error: Option<String>,
    pub created_at: Instant,
    pub sent_at: Option<Instant>,
}

/// A message to queue.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub kind: NotificationKind,
    pub recipient: String,
    pub recipient_org: String,
    pub referral_id: Option<Id>,
    pub subject: String,
    pub body: String,
}

pub fn enqueue(conn: &mut AnyConnection, message: &NewNotification, now: Instant) -> QueryResult<Id> {
    let row = pending(message, now);
    diesel::insert_into(notifications::table).values(&row).execute(conn)?;
    Ok(row.id)
}

/// As `enqueue` for many messages, in multi-row inserts.
pub fn enqueue_all(conn: &mut AnyConnection, messages: &[NewNotification], now: Instant) -> QueryResult<()> {
    let rows: Vec<NotificationRow> = messages.iter().map(|m| pending(m, now)).collect();
    insert_all!(conn, notifications::table, rows);
    Ok(())
}

fn pending(message: &NewNotification, now: Instant) -> NotificationRow {
    let id = Id(uuid::Uuid::now_v7());
    NotificationRow {
        id,
        kind: message.kind.as_str().into(),
        recipient: message.recipient.clone(),
        recipient_org: message.recipient_org.clone(),
        referral_id: message.referral_id,
        subject: message.subject.clone(),
        body: message.body.clone(),
        status: DeliveryStatus::Pending.as_str().into(),
        attempts: 0,
        next_attempt_at: now,
        lease_until: None,
        leased_by: None,
        last_error: None,
        created_at: now,
        sent_at: None,
    }
}

/// Claims up to `limit` due messages for `worker` until `lease_until`.
pub fn claim(
    conn: &mut AnyConnection,
    worker: &str,
    now: Instant,
    lease_until: Instant,
    limit: i64,
) -> QueryResult<Vec<NotificationRow>> {
    let due = notifications::status
        .eq(DeliveryStatus::Pending.as_str())
        .and(notifications::next_attempt_at.le(now))
        .and(
            notifications::lease_until
                .is_null()
                .or(notifications::lease_until.lt(now)),
        );
    super::write_transaction(conn, |conn| {
        let ids: Vec<Id> = super::load_for_claim!(
            conn,
            notifications::table
                .filter(due)
                .order((notifications::next_attempt_at.asc(), notifications::id.asc()))
                .limit(limit)
                .select(notifications::id)
        );
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(notifications::table.filter(notifications::id.eq_any(&ids)))
            .set((
                notifications::lease_until.eq(Some(lease_until)),
                notifications::leased_by.eq(Some(worker)),
            ))
            .execute(conn)?;
        notifications::table
            .filter(notifications::id.eq_any(&ids))
            .order((notifications::next_attempt_at.asc(), notifications::id.asc()))
            .select(NotificationRow::as_select())
            .load(conn)
    })
}

/// Delivered: only the worker holding the lease records it.
pub fn mark_sent(conn: &mut AnyConnection, id: Id, worker: &str, now: Instant) -> QueryResult<bool> {
    let changed = update_where(
        notifications::table,
        (
            notifications::status.eq(DeliveryStatus::Sent.as_str()),
            notifications::sent_at.eq(Some(now)),
            notifications::attempts.eq(notifications::attempts + 1),
            notifications::lease_until.eq(None::<Instant>),
            notifications::last_error.eq(None::<String>),
        ),
        notifications::id.eq(id).and(notifications::leased_by.eq(worker)),
    )
    .execute(conn)?;
    Ok(changed == 1)
}

/// A failed attempt: retry at `next_attempt_at`, or give up (`dead`) when `dead` is set.
pub fn mark_failed(
    conn: &mut AnyConnection,
    id: Id,
    worker: &str,
    error: &str,
    next_attempt_at: Instant,
    dead: bool,
) -> QueryResult<bool> {
    let status = if dead {
        DeliveryStatus::Dead
    } else {
        DeliveryStatus::Pending
    };
    let changed = update_where(
        notifications::table,
        (
            notifications::status.eq(status.as_str()),
            notifications::attempts.eq(notifications::attempts + 1),
            notifications::next_attempt_at.eq(next_attempt_at),
            notifications::lease_until.eq(None::<Instant>),
            notifications::last_error.eq(Some(error)),
        ),
        notifications::id.eq(id).and(notifications::leased_by.eq(worker)),
    )
    .execute(conn)?;
    Ok(changed == 1)
}

pub fn find(conn: &mut AnyConnection, id: Id) -> QueryResult<Option<NotificationRow>> {
    notifications::table
        .find(id)
        .select(NotificationRow::as_select())
        .first(conn)
        .optional()
}

/// Messages by status, newest first; `recipient_org` limits them to one organisation.
pub fn list(
    conn: &mut AnyConnection,
    status: Option<DeliveryStatus>,
    recipient_org: Option<&str>,
    before: Option<Id>,
    limit: i64,
) -> QueryResult<Vec<NotificationRow>> {
    let mut query = notifications::table.into_boxed();
    if let Some(status) = status {
        query = query.filter(notifications::status.eq(status.as_str()));
    }
    if let Some(org) = recipient_org {
        query = query.filter(notifications::recipient_org.eq(org.to_string()));
    }
    if let Some(before) = before {
        query = query.filter(notifications::id.lt(before));
    }
    query
        .order(notifications::id.desc())
        .limit(limit)
        .select(NotificationRow::as_select())
        .load(conn)
}

/// Re-queues a message for immediate delivery with a fresh attempt count.
pub fn requeue(conn: &mut AnyConnection, id: Id, now: Instant) -> QueryResult<bool> {
    let changed = update_where(
        notifications::table,
        (
            notifications::status.eq(DeliveryStatus::Pending.as_str()),
            notifications::attempts.eq(0),
            notifications::next_attempt_at.eq(now),
            notifications::lease_until.eq(None::<Instant>),
            notifications::leased_by.eq(None::<String>),
        ),
        notifications::id.eq(id),
    )
    .execute(conn)?;
    Ok(changed == 1)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = escalations, treat_none_as_default_value = false)]
pub struct EscalationRow {
    pub referral_id: Id,
    pub step: String,
    pub due_at: Instant,
    pub escalated_at: Instant,
}

/// Records many escalations at once and returns those not recorded before (the others are
/// left alone): one read of what exists, one multi-row insert. Under the deadline watcher's
/// single leader nobody else writes them; should a hand-over overlap, the primary key fails
/// the batch and the next pass does it again.
pub fn record_escalations(conn: &mut AnyConnection, rows: Vec<EscalationRow>) -> QueryResult<Vec<EscalationRow>> {
    let ids: Vec<Id> = rows.iter().map(|r| r.referral_id).collect();
    let existing: std::collections::HashSet<(Id, String)> = escalations_of(conn, &ids)?
        .into_iter()
        .map(|e| (e.referral_id, e.step))
        .collect();
    let new: Vec<EscalationRow> = rows
        .into_iter()
        .filter(|r| !existing.contains(&(r.referral_id, r.step.clone())))
        .collect();
    insert_all!(conn, escalations::table, new);
    Ok(new)
}

/// The escalations of several referrals (an overdue list's), in bounded batches.
pub fn escalations_of(conn: &mut AnyConnection, referral_ids: &[Id]) -> QueryResult<Vec<EscalationRow>> {
    let mut out = Vec::new();
    for batch in referral_ids.chunks(500) {
        out.extend(
            escalations::table
                .filter(escalations::referral_id.eq_any(batch))
                .select(EscalationRow::as_select())
                .load(conn)?,
        );
    }
    Ok(out)
}

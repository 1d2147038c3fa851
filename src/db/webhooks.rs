//! Webhook subscriptions and the webhook outbox.
//!
//! Deliveries are inserted in the transaction of the change that raises them, one per
//! subscription that listens, and claimed by delivery workers with a lease exactly as the
//! e-mail outbox is (`db::outbox`): `FOR UPDATE SKIP LOCKED` on PostgreSQL, the single
//! writer on SQLite. Only deliveries of active subscriptions are claimed: a paused one's wait.

use diesel::prelude::*;

use super::schema::{webhook_deliveries, webhook_subscriptions};
use super::{AnyConnection, Id, Instant, insert_all, update_where};
use crate::domain::webhook::{DeliveryState, EventType, SubscriptionStatus};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = webhook_subscriptions, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct SubscriptionRow {
    pub id: Id,
    pub organisation: String,
    pub url: String,
    pub event_types: String,
    pub contact_email: String,
    /// Sealed (`webhook_subscriptions.secret`).
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<Instant>,
    pub status: String,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<Instant>,
    pub created_by: String,
    pub created_at: Instant,
    pub updated_at: Instant,
}

impl SubscriptionRow {
    pub fn listens_to(&self, event: EventType) -> bool {
        self.event_types.split_whitespace().any(|e| e == event.as_str())
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_deliveries, treat_none_as_default_value = false)]
pub struct DeliveryRow {
    pub id: Id,
    pub subscription_id: Id,
    pub event_type: String,
    pub body: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Instant,
    pub lease_until: Option<Instant>,
    pub leased_by: Option<String>,
    pub last_status: Option<i32>,
    pub last_latency_ms: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: Instant,
    pub delivered_at: Option<Instant>,
}

pub fn insert_subscription(conn: &mut AnyConnection, row: &SubscriptionRow) -> QueryResult<()> {
    diesel::insert_into(webhook_subscriptions::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn save_subscription(conn: &mut AnyConnection, row: &SubscriptionRow) -> QueryResult<()> {
    update_where(webhook_subscriptions::table, row, webhook_subscriptions::id.eq(row.id))
        .execute(conn)
        .map(|_| ())
}

/// Deletes the deliveries and leaves a tombstone: no endpoint, no events, no secret.
pub fn delete_subscription(conn: &mut AnyConnection, id: Id, now: Instant) -> QueryResult<()> {
    diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::subscription_id.eq(id))).execute(conn)?;
    update_where(
        webhook_subscriptions::table,
        (
            webhook_subscriptions::status.eq(SubscriptionStatus::Deleted.as_str()),
            webhook_subscriptions::url.eq(""),
            webhook_subscriptions::event_types.eq(""),
            webhook_subscriptions::contact_email.eq(""),
            webhook_subscriptions::secret.eq(""),
            webhook_subscriptions::previous_secret.eq(None::<String>),
            webhook_subscriptions::previous_secret_until.eq(None::<Instant>),
            webhook_subscriptions::updated_at.eq(now),
        ),
        webhook_subscriptions::id.eq(id),
    )
    .execute(conn)
    .map(|_| ())
}

pub fn subscription(conn: &mut AnyConnection, id: Id) -> QueryResult<Option<SubscriptionRow>> {
    webhook_subscriptions::table
        .find(id)
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()
}

/// The organisation's subscriptions, oldest first (not the deleted ones).
pub fn subscriptions_of(conn: &mut AnyConnection, organisation: &str) -> QueryResult<Vec<SubscriptionRow>> {
    webhook_subscriptions::table
        .filter(webhook_subscriptions::organisation.eq(organisation))
        .filter(webhook_subscriptions::status.ne(SubscriptionStatus::Deleted.as_str()))
        .order((webhook_subscriptions::created_at.asc(), webhook_subscriptions::id.asc()))
        .select(SubscriptionRow::as_select())
        .load(conn)
}

/// Queues each event's body for every subscription of its organisation that listens to the
/// event and is not disabled (a paused one keeps its deliveries for when it resumes): the
/// subscriptions of all the events' organisations read at once, the deliveries written in
/// multi-row inserts.
pub fn enqueue_all(conn: &mut AnyConnection, events: &[(&str, EventType, String)], now: Instant) -> QueryResult<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    // One look-up for every organisation the events name (a handover step tells both parties).
    let mut organisations: Vec<&str> = events.iter().map(|(o, _, _)| *o).collect();
    organisations.sort_unstable();
    organisations.dedup();
    let subscriptions: Vec<SubscriptionRow> = webhook_subscriptions::table
        .filter(webhook_subscriptions::organisation.eq_any(&organisations))
        .filter(webhook_subscriptions::status.ne_all([
            SubscriptionStatus::Disabled.as_str(),
            SubscriptionStatus::Deleted.as_str(),
        ]))
        .order((webhook_subscriptions::created_at.asc(), webhook_subscriptions::id.asc()))
        .select(SubscriptionRow::as_select())
        .load(conn)?;
    let mut rows: Vec<DeliveryRow> = Vec::new();
    for (organisation, event, body) in events {
        let listening = subscriptions
            .iter()
            .filter(|s| s.organisation == *organisation && s.listens_to(*event));
        rows.extend(listening.map(|subscription| DeliveryRow {
            id: Id(uuid::Uuid::now_v7()),
            subscription_id: subscription.id,
            event_type: event.as_str().into(),
            body: body.clone(),
            status: DeliveryState::Pending.as_str().into(),
            attempts: 0,
            next_attempt_at: now,
            lease_until: None,
            leased_by: None,
            last_status: None,
            last_latency_ms: None,
            last_error: None,
            created_at: now,
            delivered_at: None,
        }));
    }
    insert_all!(conn, webhook_deliveries::table, rows);
    Ok(rows.len())
}

/// Claims up to `limit` due deliveries of active subscriptions for `worker`.
pub fn claim(
    conn: &mut AnyConnection,
    worker: &str,
    now: Instant,
    lease_until: Instant,
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    let active = webhook_subscriptions::table
        .filter(webhook_subscriptions::status.eq(SubscriptionStatus::Active.as_str()))
        .select(webhook_subscriptions::id);
    let due = webhook_deliveries::status
        .eq(DeliveryState::Pending.as_str())
        .and(webhook_deliveries::next_attempt_at.le(now))
        .and(
            webhook_deliveries::lease_until
                .is_null()
                .or(webhook_deliveries::lease_until.lt(now)),
        );
    super::write_transaction(conn, |conn| {
        let ids: Vec<Id> = super::load_for_claim!(
            conn,
            webhook_deliveries::table
                .filter(due)
                .filter(webhook_deliveries::subscription_id.eq_any(active))
                .order((webhook_deliveries::next_attempt_at.asc(), webhook_deliveries::id.asc()))
                .limit(limit)
                .select(webhook_deliveries::id)
        );
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(&ids)))
            .set((
                webhook_deliveries::lease_until.eq(Some(lease_until)),
                webhook_deliveries::leased_by.eq(Some(worker)),
            ))
            .execute(conn)?;
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq_any(&ids))
            .order((webhook_deliveries::next_attempt_at.asc(), webhook_deliveries::id.asc()))
            .select(DeliveryRow::as_select())
            .load(conn)
    })
}

/// The outcome of one attempt, as the delivery log keeps it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub at: Instant,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy)]
pub enum After {
    Delivered,
    RetryAt(Instant),
    /// Given up: the endpoint is gone or disabled.
    Failed,
}

/// Records an attempt; only the worker holding the lease may. False when it no longer held it.
pub fn record_attempt(
    conn: &mut AnyConnection,
    id: Id,
    worker: &str,
    attempt: &Attempt,
    after: After,
) -> QueryResult<bool> {
    let (status, next, delivered_at) = match after {
        After::Delivered => (DeliveryState::Delivered, None, Some(attempt.at)),
        After::RetryAt(next) => (DeliveryState::Pending, Some(next), None),
        After::Failed => (DeliveryState::Failed, None, None),
    };
    let changed = update_where(
        webhook_deliveries::table,
        (
            webhook_deliveries::status.eq(status.as_str()),
            webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
            webhook_deliveries::lease_until.eq(None::<Instant>),
            webhook_deliveries::last_status.eq(attempt.status),
            webhook_deliveries::last_latency_ms.eq(Some(attempt.latency_ms)),
            webhook_deliveries::last_error.eq(attempt.error.as_deref()),
            webhook_deliveries::delivered_at.eq(delivered_at),
        ),
        webhook_deliveries::id
            .eq(id)
            .and(webhook_deliveries::leased_by.eq(worker)),
    )
    .execute(conn)?;
    if let Some(next) = next {
        update_where(
            webhook_deliveries::table,
            webhook_deliveries::next_attempt_at.eq(next),
            webhook_deliveries::id.eq(id),
        )
        .execute(conn)?;
    }
    Ok(changed == 1)
}

/// Gives up the pending deliveries of a subscription that was disabled.
pub fn fail_pending(conn: &mut AnyConnection, subscription: Id, reason: &str) -> QueryResult<usize> {
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::subscription_id.eq(subscription))
            .filter(webhook_deliveries::status.eq(DeliveryState::Pending.as_str())),
    )
    .set((
        webhook_deliveries::status.eq(DeliveryState::Failed.as_str()),
        webhook_deliveries::last_error.eq(Some(reason)),
        webhook_deliveries::lease_until.eq(None::<Instant>),
    ))
    .execute(conn)
}

/// A subscription's deliveries, newest first, before the cursor.
pub fn deliveries_of(
    conn: &mut AnyConnection,
    subscription: Id,
    before: Option<Id>,
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    let mut query = webhook_deliveries::table
        .filter(webhook_deliveries::subscription_id.eq(subscription))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(webhook_deliveries::id.lt(before));
    }
    query
        .order(webhook_deliveries::id.desc())
        .limit(limit)
        .select(DeliveryRow::as_select())
        .load(conn)
}

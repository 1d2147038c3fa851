//! Webhook subscriptions, managed by each organisation's admins: an endpoint, the events it
//! hears, a signing secret shown once, rotation with an overlap, pause and resume, and the
//! delivery log. Delivery itself is `notify::webhooks`.

use serde::Serialize;
use utoipa::ToSchema;

use super::{AppError, AppResult, Ctx, Page};
use crate::db::Id;
use crate::db::webhooks::{self as rows, DeliveryRow, SubscriptionRow};
use crate::domain::access;
use crate::domain::ids::SubscriptionId;
use crate::domain::text::Text;
use crate::domain::webhook::{EventType, SubscriptionStatus, check_endpoint, secret_text};
use crate::notify::webhooks::{SECRET_FIELD, allowed_addresses};

/// What an admin sends to subscribe an endpoint.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub url: String,
    pub event_types: Vec<EventType>,
    /// Who hears that the endpoint was disabled; `None`: the organisation's intake address.
    pub contact_email: Option<Text>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: uuid::Uuid,
    pub organisation: String,
    pub url: String,
    /// e.g. `referral.received`.
    pub event_types: Vec<String>,
    /// Empty: the organisation's intake address.
    pub contact_email: String,
    /// `active`, `paused` (by an admin; deliveries wait) or `disabled` (by the service).
    pub status: SubscriptionStatus,
    /// Why it was disabled: `gone` (the endpoint answered 410) or `failing`.
    pub disabled_reason: Option<String>,
    /// The first failed attempt since the last delivered one.
    pub failing_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Until when the previous secret still signs, after a rotation.
    pub previous_secret_until: Option<chrono::DateTime<chrono::Utc>>,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A subscription with its new signing secret: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionWithSecret {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    /// `whsec_` and the base64 of 32 random bytes (Standard Webhooks). Store it now: it is
    /// never shown again.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionList {
    pub items: Vec<SubscriptionView>,
}

/// One delivery in the log: what was sent when, and how the endpoint answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// The `webhook-id` of every attempt of this delivery.
    pub id: uuid::Uuid,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    /// The HTTP status of the last attempt; none when no answer came.
    pub last_status: Option<i32>,
    pub last_latency_ms: Option<i32>,
    /// What went wrong at the last attempt, in a few words. Response bodies are not kept.
    pub last_error: Option<String>,
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryLog {
    pub items: Vec<DeliveryView>,
    pub next_cursor: Option<String>,
}

fn view(row: &SubscriptionRow) -> AppResult<SubscriptionView> {
    Ok(SubscriptionView {
        id: row.id.0,
        organisation: row.organisation.clone(),
        url: row.url.clone(),
        event_types: row.event_types.split_whitespace().map(str::to_string).collect(),
        contact_email: row.contact_email.clone(),
        status: crate::db::code("webhook_subscriptions", "status", &row.status)?,
        disabled_reason: row.disabled_reason.clone(),
        failing_since: row.failing_since.map(|t| t.0),
        previous_secret_until: row.previous_secret_until.map(|t| t.0),
        created_by: row.created_by.clone(),
        created_at: row.created_at.0,
        updated_at: row.updated_at.0,
    })
}

fn delivery_view(row: &DeliveryRow) -> DeliveryView {
    DeliveryView {
        id: row.id.0,
        event_type: row.event_type.clone(),
        status: row.status.clone(),
        attempts: row.attempts,
        last_status: row.last_status,
        last_latency_ms: row.last_latency_ms,
        last_error: row.last_error.clone(),
        next_attempt_at: (row.status == "pending").then_some(row.next_attempt_at.0),
        created_at: row.created_at.0,
        delivered_at: row.delivered_at.map(|t| t.0),
    }
}

/// A new secret, sealed for the row, and its shown form.
fn new_secret(ctx: &Ctx, id: Id) -> (String, String) {
    let shown = secret_text(&crate::crypto::random_bytes(32));
    let sealed = ctx.keyring().seal(SECRET_FIELD, id, &shown);
    (sealed, shown)
}

/// The caller's organisation's subscription, deleted ones included, or not found.
fn own_or_deleted(ctx: &mut Ctx, id: SubscriptionId) -> AppResult<SubscriptionRow> {
    let row = rows::subscription(ctx.conn, Id(id.0))?.ok_or(AppError::NotFound)?;
    access::manage_webhooks(ctx.actor.principal(), Some(&row.organisation))?;
    Ok(row)
}

/// The caller's organisation's subscription, or not found.
fn own(ctx: &mut Ctx, id: SubscriptionId) -> AppResult<SubscriptionRow> {
    let row = own_or_deleted(ctx, id)?;
    if row.status == SubscriptionStatus::Deleted.as_str() {
        return Err(AppError::NotFound);
    }
    Ok(row)
}

/// Subscribes an endpoint (admin of the organisation; audited). The secret is in the answer
/// and nowhere else.
#[tracing::instrument(skip_all)]
pub fn create(ctx: &mut Ctx, new: NewSubscription) -> AppResult<SubscriptionWithSecret> {
    access::manage_webhooks(ctx.actor.principal(), None)?;
    let allowed = allowed_addresses(&ctx.services.settings);
    let url = check_endpoint(&new.url, &allowed).map_err(|problem| AppError::field("url", problem.to_string()))?;
    let id = Id(ctx.new_id());
    let (secret, shown) = new_secret(ctx, id);
    let mut events = new.event_types;
    events.sort();
    events.dedup();
    let row = SubscriptionRow {
        id,
        organisation: ctx.actor.org.clone(),
        url: url.to_string(),
        event_types: events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(" "),
        contact_email: new.contact_email.map(|e| e.as_str().to_string()).unwrap_or_default(),
        secret,
        previous_secret: None,
        previous_secret_until: None,
        status: SubscriptionStatus::Active.as_str().into(),
        disabled_reason: None,
        failing_since: None,
        created_by: ctx.actor.sub.clone(),
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    rows::insert_subscription(ctx.conn, &row)?;
    ctx.audit("webhook.create", "webhook_subscription", id.0, None, "active")?;
    Ok(SubscriptionWithSecret {
        subscription: view(&row)?,
        secret: shown,
    })
}

/// The organisation's subscriptions (admin).
#[tracing::instrument(skip_all)]
pub fn list(ctx: &mut Ctx) -> AppResult<SubscriptionList> {
    access::manage_webhooks(ctx.actor.principal(), None)?;
    let org = ctx.actor.org.clone();
    let items = rows::subscriptions_of(ctx.conn, &org)?
        .iter()
        .map(view)
        .collect::<AppResult<_>>()?;
    Ok(SubscriptionList { items })
}

#[tracing::instrument(skip_all, fields(subscription = %id))]
pub fn get(ctx: &mut Ctx, id: SubscriptionId) -> AppResult<SubscriptionView> {
    view(&own(ctx, id)?)
}

/// A new secret; the previous one keeps signing beside it for `overlap` (at most
/// `webhooks.max_rotation_overlap`), so the receiver can switch without losing a delivery.
#[tracing::instrument(skip_all, fields(subscription = %id))]
pub fn rotate_secret(
    ctx: &mut Ctx,
    id: SubscriptionId,
    overlap: chrono::Duration,
) -> AppResult<SubscriptionWithSecret> {
    let mut row = own(ctx, id)?;
    let max = crate::config::parse_duration(&ctx.services.settings.webhooks.max_rotation_overlap)
        .ok()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .unwrap_or_else(|| chrono::Duration::days(7));
    if overlap < chrono::Duration::zero() || overlap > max {
        return Err(AppError::field(
            "overlap",
            format!(
                "must be between 0s and {}",
                ctx.services.settings.webhooks.max_rotation_overlap
            ),
        ));
    }
    let (secret, shown) = new_secret(ctx, row.id);
    row.previous_secret = Some(std::mem::replace(&mut row.secret, secret));
    row.previous_secret_until = Some(crate::db::Instant::from_utc(ctx.now.0 + overlap));
    row.updated_at = ctx.now;
    rows::save_subscription(ctx.conn, &row)?;
    ctx.audit("webhook.rotate_secret", "webhook_subscription", id.0, None, "ok")?;
    Ok(SubscriptionWithSecret {
        subscription: view(&row)?,
        secret: shown,
    })
}

/// Pauses deliveries (they wait), or resumes them: also a subscription the service disabled,
/// whose failure record starts afresh.
#[tracing::instrument(skip_all, fields(subscription = %id))]
pub fn set_active(ctx: &mut Ctx, id: SubscriptionId, active: bool) -> AppResult<SubscriptionView> {
    let mut row = own(ctx, id)?;
    let status = if active {
        SubscriptionStatus::Active
    } else {
        SubscriptionStatus::Paused
    };
    if !active && row.status == SubscriptionStatus::Disabled.as_str() {
        return Err(AppError::conflict(
            "a disabled subscription is not delivering: resume it, or delete it",
        ));
    }
    row.status = status.as_str().into();
    if active {
        row.disabled_reason = None;
        row.failing_since = None;
    }
    row.updated_at = ctx.now;
    rows::save_subscription(ctx.conn, &row)?;
    let action = if active { "webhook.resume" } else { "webhook.pause" };
    ctx.audit(action, "webhook_subscription", id.0, None, status.as_str())?;
    view(&row)
}

/// Deletes a subscription with its delivery log (admin; audited). Again: nothing more.
#[tracing::instrument(skip_all, fields(subscription = %id))]
pub fn delete(ctx: &mut Ctx, id: SubscriptionId) -> AppResult<()> {
    let row = own_or_deleted(ctx, id)?;
    if row.status != SubscriptionStatus::Deleted.as_str() {
        rows::delete_subscription(ctx.conn, row.id, ctx.now)?;
        ctx.audit("webhook.delete", "webhook_subscription", id.0, None, "deleted")?;
    }
    Ok(())
}

/// The subscription's deliveries, newest first (admin).
#[tracing::instrument(skip_all, fields(subscription = %id))]
pub fn deliveries(ctx: &mut Ctx, id: SubscriptionId, page: Page) -> AppResult<DeliveryLog> {
    let row = own(ctx, id)?;
    let found = rows::deliveries_of(ctx.conn, row.id, page.before.map(Id), page.fetch())?;
    let (found, next_cursor) = page.finish(found, |d| d.id.0);
    Ok(DeliveryLog {
        items: found.iter().map(delivery_view).collect(),
        next_cursor,
    })
}

//! Administration: the notification outbox. Admins of the national focal point see every
//! message; admins of other organisations see the messages addressed to their organisation.

use serde::Serialize;
use utoipa::ToSchema;

use super::{AppError, AppResult, Ctx, Page};
use crate::db::Id;
use crate::db::outbox::{self, NotificationRow};
use crate::domain::access::{self, OutboxScope};
use crate::domain::ids::NotificationId;
use crate::domain::notification::{DeliveryStatus, NotificationKind};

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: uuid::Uuid,
    pub kind: NotificationKind,
    pub recipient: String,
    pub recipient_org: String,
    pub referral_id: Option<uuid::Uuid>,
    pub subject: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: chrono::DateTime<chrono::Utc>,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationList {
    pub items: Vec<NotificationView>,
    pub next_cursor: Option<String>,
}

fn view(row: &NotificationRow) -> AppResult<NotificationView> {
    const T: &str = "notifications";
    Ok(NotificationView {
        id: row.id.0,
        kind: crate::db::code(T, "kind", &row.kind)?,
        recipient: row.recipient.clone(),
        recipient_org: row.recipient_org.clone(),
        referral_id: row.referral_id.map(|r| r.0),
        subject: row.subject.clone(),
        status: crate::db::code(T, "status", &row.status)?,
        attempts: row.attempts,
        next_attempt_at: row.next_attempt_at.0,
        last_error: row.last_error.clone(),
        created_at: row.created_at.0,
        sent_at: row.sent_at.map(|t| t.0),
    })
}

/// Notifications by delivery status, newest first (admin).
#[tracing::instrument(skip_all)]
pub fn outbox(ctx: &mut Ctx, status: Option<DeliveryStatus>, page: Page) -> AppResult<NotificationList> {
    let org = match access::outbox(ctx.actor.principal())? {
        OutboxScope::All => None,
        OutboxScope::Organisation(org) => Some(org.to_string()),
    };
    let rows = outbox::list(ctx.conn, status, org.as_deref(), page.before.map(Id), page.fetch())?;
    let (rows, next_cursor) = page.finish(rows, |r| r.id.0);
    let items = rows.iter().map(view).collect::<AppResult<_>>()?;
    Ok(NotificationList { items, next_cursor })
}

/// Re-queues a notification for immediate delivery with a fresh attempt count (admin).
#[tracing::instrument(skip_all, fields(notification = %id))]
pub fn retry(ctx: &mut Ctx, id: NotificationId) -> AppResult<NotificationView> {
    access::outbox(ctx.actor.principal())?;
    let row = outbox::find(ctx.conn, Id(id.0))?.ok_or(AppError::NotFound)?;
    access::outbox_message(ctx.actor.principal(), &row.recipient_org)?;
    if row.status == DeliveryStatus::Sent.as_str() {
        return Err(AppError::conflict("this notification was already sent"));
    }
    outbox::requeue(ctx.conn, Id(id.0), ctx.now)?;
    ctx.audit("notification.retry", "notification", id.0, None, "pending")?;
    view(&outbox::find(ctx.conn, Id(id.0))?.ok_or(AppError::NotFound)?)
}

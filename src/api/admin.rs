//! Administration: the notification outbox. Admins of the national focal point see every
//! message; admins of other organisations see the messages addressed to their organisation.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::cases::Context;
use super::common::{self, Page, parse_id};
use crate::auth::Actor;
use crate::db::outbox::{self, NotificationRow};
use crate::domain::access;
use crate::domain::notification::{DeliveryStatus, NotificationKind};
use crate::error::ApiError;

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

fn view(row: &NotificationRow) -> Result<NotificationView, ApiError> {
    Ok(NotificationView {
        id: row.id.0,
        kind: row.kind.parse().map_err(ApiError::internal)?,
        recipient: row.recipient.clone(),
        recipient_org: row.recipient_org.clone(),
        referral_id: row.referral_id.map(|r| r.0),
        subject: row.subject.clone(),
        status: row.status.parse().map_err(ApiError::internal)?,
        attempts: row.attempts,
        next_attempt_at: row.next_attempt_at.0,
        last_error: row.last_error.clone(),
        created_at: row.created_at.0,
        sent_at: row.sent_at.map(|t| t.0),
    })
}

/// Which organisation's messages the admin may see: `None` = all (focal point).
fn scope(actor: &Actor) -> Result<Option<String>, ApiError> {
    Ok(match access::outbox(actor.principal())? {
        access::OutboxScope::All => None,
        access::OutboxScope::Organisation(org) => Some(org.to_string()),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    /// `pending`, `sent` or `dead`.
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Notifications by delivery status, newest first (admin).
#[utoipa::path(
    tag = "admin",
    params(OutboxQuery),
    responses(
        (status = 200, body = NotificationList),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/admin/outbox")]
pub async fn outbox_list(actor: Actor, ctx: Context, query: web::Query<OutboxQuery>) -> Result<HttpResponse, ApiError> {
    let org = scope(&actor)?;
    let query = query.into_inner();
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(
            s.parse::<DeliveryStatus>()
                .map_err(|_| ApiError::field("status", "must be pending, sent or dead"))?,
        ),
    };
    let page = Page::parse(
        query.limit,
        query.cursor.as_deref(),
        ctx.settings.cases.page_size_default,
        ctx.settings.cases.page_size_max,
    )?;
    let (before, limit) = (page.before, page.fetch());
    let rows = ctx
        .db
        .run(move |conn| outbox::list(conn, status, org.as_deref(), before, limit).map_err(ApiError::from))
        .await?;
    let (rows, next_cursor) = page.finish(rows, |r| r.id);
    let items = rows.iter().map(view).collect::<Result<_, _>>()?;
    Ok(HttpResponse::Ok().json(NotificationList { items, next_cursor }))
}

#[derive(Deserialize, IntoParams)]
pub struct NotificationPath {
    /// The notification id.
    pub id: String,
}

/// Re-queues a notification for immediate delivery with a fresh attempt count (admin).
#[utoipa::path(
    tag = "admin",
    params(NotificationPath),
    responses(
        (status = 200, body = NotificationView),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/admin/outbox/{id}/retry")]
pub async fn outbox_retry(
    actor: Actor,
    ctx: Context,
    path: web::Path<NotificationPath>,
) -> Result<HttpResponse, ApiError> {
    scope(&actor)?;
    let id = parse_id(&path.id)?;
    let now = ctx.now();
    let row = ctx
        .db
        .write(move |conn| {
            let row = outbox::find(conn, id)?.ok_or(ApiError::NotFound)?;
            access::outbox_message(actor.principal(), &row.recipient_org)?;
            if row.status == DeliveryStatus::Sent.as_str() {
                return Err(ApiError::Conflict {
                    detail: "this notification was already sent".into(),
                    allowed_actions: None,
                });
            }
            outbox::requeue(conn, id, now)?;
            common::audit(
                conn,
                &actor,
                "notification.retry",
                "notification",
                id,
                None,
                "pending",
                now,
            )?;
            outbox::find(conn, id)?.ok_or(ApiError::NotFound)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view(&row)?))
}

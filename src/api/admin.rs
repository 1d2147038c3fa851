//! Administration: the notification outbox. Admins of the national focal point see every
//! message; admins of other organisations see the messages addressed to their organisation.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::common::parse_id;
use super::context::Context;
use crate::app::admin::{NotificationList, NotificationView};
use crate::app::{self, Page};
use crate::domain::access::Actor;
use crate::domain::ids::NotificationId;
use crate::domain::notification::DeliveryStatus;
use crate::error::ApiError;

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
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/admin/outbox")]
pub async fn outbox_list(actor: Actor, ctx: Context, query: web::Query<OutboxQuery>) -> Result<HttpResponse, ApiError> {
    crate::domain::access::outbox(actor.principal())?;
    let query = query.into_inner();
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(
            s.parse::<DeliveryStatus>()
                .map_err(|_| ApiError::field("status", "must be pending, sent or dead"))?,
        ),
    };
    let page = Page::parse(query.limit, query.cursor.as_deref(), ctx.settings())?;
    let found = ctx.read(actor, move |c| app::admin::outbox(c, status, page)).await?;
    Ok(HttpResponse::Ok().json(found))
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
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/admin/outbox/{id}/retry")]
pub async fn outbox_retry(
    actor: Actor,
    ctx: Context,
    path: web::Path<NotificationPath>,
) -> Result<HttpResponse, ApiError> {
    crate::domain::access::outbox(actor.principal())?;
    let id = parse_id(&path.id, NotificationId)?;
    let view = ctx.write(actor, move |c| app::admin::retry(c, id)).await?;
    Ok(HttpResponse::Ok().json(view))
}

//! Webhook subscriptions of the caller's organisation (its admins): Standard Webhooks with a
//! secret shown once, rotation with an overlap, pause and resume, and the delivery log.
//! `docs/integration.md` §2 has the events, the payload and the signature.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::common::{PageQuery, created, parse_id};
use super::context::Context;
use super::input::{self, Fields};
use crate::app::webhooks::{DeliveryLog, NewSubscription, SubscriptionList, SubscriptionView, SubscriptionWithSecret};
use crate::app::{self, Page};
use crate::domain::access::Actor;
use crate::domain::ids::SubscriptionId;
use crate::domain::text::parse_email;
use crate::domain::webhook::EventType;
use crate::error::ApiError;

/// The body of `POST /webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct WebhookInput {
    /// The endpoint: https, on a public address (docs/integration.md §2).
    pub url: String,
    /// The events to deliver, e.g. `referral.received`, `referral.withdrawn`.
    pub event_types: Vec<String>,
    /// Who hears that the endpoint was disabled; default: the organisation's intake address.
    pub contact_email: Option<String>,
}

/// The body of `POST /webhooks/{id}/rotate-secret`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct RotationInput {
    /// How long the previous secret keeps signing beside the new one, in seconds (default one
    /// day; at most `webhooks.max_rotation_overlap`).
    pub overlap_seconds: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
pub struct WebhookPath {
    /// The subscription id.
    pub id: String,
}

impl WebhookPath {
    fn id(&self) -> Result<SubscriptionId, ApiError> {
        parse_id(&self.id, SubscriptionId)
    }
}

fn parse_subscription(body: Value) -> Result<NewSubscription, ApiError> {
    let mut f = Fields::new(body, "WebhookInput")?;
    let url = f.required("url", |v| input::string(v).map(str::to_string));
    let event_types = f.required("event_types", |v| {
        input::list_of(v, |item| {
            let text = input::string(item)?;
            EventType::parse(text)
                .ok_or_else(|| format!("must be one of: {}", EventType::ALL.map(|e| e.as_str()).join(", ")))
        })
    });
    let contact_email = f.optional("contact_email", input::text_with(parse_email));
    f.finish()?;
    match (url, event_types, contact_email) {
        (Some(url), Some(event_types), Some(contact_email)) => Ok(NewSubscription {
            url,
            event_types,
            contact_email,
        }),
        _ => Err(ApiError::internal("validated field missing")),
    }
}

/// Subscribes an endpoint to events (admin of the organisation; audited). The answer holds
/// the signing secret, the only time it is shown.
#[utoipa::path(
    tag = "webhooks",
    request_body = WebhookInput,
    responses(
        (status = 201, body = SubscriptionWithSecret, headers(("Location" = String))),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/webhooks")]
pub async fn create(actor: Actor, ctx: Context, body: web::Json<Value>) -> Result<HttpResponse, ApiError> {
    let new = parse_subscription(body.into_inner())?;
    let made = ctx.write(actor, move |c| app::webhooks::create(c, new)).await?;
    Ok(created(
        format!("/api/v1/webhooks/{}", made.subscription.id),
        None,
        made,
    ))
}

/// The organisation's subscriptions (admin).
#[utoipa::path(
    tag = "webhooks",
    responses(
        (status = 200, body = SubscriptionList),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/webhooks")]
pub async fn list(actor: Actor, ctx: Context) -> Result<HttpResponse, ApiError> {
    let found = ctx.read(actor, app::webhooks::list).await?;
    Ok(HttpResponse::Ok().json(found))
}

/// One subscription (admin of its organisation).
#[utoipa::path(
    tag = "webhooks",
    params(WebhookPath),
    responses(
        (status = 200, body = SubscriptionView),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/webhooks/{id}")]
pub async fn get(actor: Actor, ctx: Context, path: web::Path<WebhookPath>) -> Result<HttpResponse, ApiError> {
    let id = path.id()?;
    let found = ctx.read(actor, move |c| app::webhooks::get(c, id)).await?;
    Ok(HttpResponse::Ok().json(found))
}

/// Deletes a subscription and its delivery log (admin; audited). Deleting it again answers
/// the same.
#[utoipa::path(
    tag = "webhooks",
    params(WebhookPath),
    responses(
        (status = 204),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/webhooks/{id}")]
pub async fn remove(actor: Actor, ctx: Context, path: web::Path<WebhookPath>) -> Result<HttpResponse, ApiError> {
    let id = path.id()?;
    ctx.write(actor, move |c| app::webhooks::delete(c, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new signing secret, shown once; the previous one keeps signing for the overlap (admin;
/// audited).
#[utoipa::path(
    tag = "webhooks",
    params(WebhookPath),
    request_body = RotationInput,
    responses(
        (status = 200, body = SubscriptionWithSecret),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/webhooks/{id}/rotate-secret")]
pub async fn rotate_secret(
    actor: Actor,
    ctx: Context,
    path: web::Path<WebhookPath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = path.id()?;
    let mut f = Fields::new(body.into_inner(), "RotationInput")?;
    let overlap = f.defaulted("overlap_seconds", 86_400, input::integer);
    f.finish()?;
    let overlap = chrono::Duration::seconds(overlap.ok_or_else(|| ApiError::internal("validated field missing"))?);
    let rotated = ctx
        .write(actor, move |c| app::webhooks::rotate_secret(c, id, overlap))
        .await?;
    Ok(HttpResponse::Ok().json(rotated))
}

/// Pauses deliveries: they wait, and go out on resume (admin; audited).
#[utoipa::path(
    tag = "webhooks",
    params(WebhookPath),
    responses(
        (status = 200, body = SubscriptionView),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/webhooks/{id}/pause")]
pub async fn pause(actor: Actor, ctx: Context, path: web::Path<WebhookPath>) -> Result<HttpResponse, ApiError> {
    let id = path.id()?;
    let view = ctx
        .write(actor, move |c| app::webhooks::set_active(c, id, false))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Resumes deliveries, also of a subscription the service disabled (admin; audited).
#[utoipa::path(
    tag = "webhooks",
    params(WebhookPath),
    responses(
        (status = 200, body = SubscriptionView),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/webhooks/{id}/resume")]
pub async fn resume(actor: Actor, ctx: Context, path: web::Path<WebhookPath>) -> Result<HttpResponse, ApiError> {
    let id = path.id()?;
    let view = ctx
        .write(actor, move |c| app::webhooks::set_active(c, id, true))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The subscription's deliveries, newest first: status, attempts, the last answer's status
/// and latency (admin).
#[utoipa::path(
    tag = "webhooks",
    params(WebhookPath, PageQuery),
    responses(
        (status = 200, body = DeliveryLog),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/webhooks/{id}/deliveries")]
pub async fn deliveries(
    actor: Actor,
    ctx: Context,
    path: web::Path<WebhookPath>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = path.id()?;
    let page = Page::parse(query.limit, query.cursor.as_deref(), ctx.settings())?;
    let log = ctx.read(actor, move |c| app::webhooks::deliveries(c, id, page)).await?;
    Ok(HttpResponse::Ok().json(log))
}

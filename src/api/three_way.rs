//! Three-way conversations (driehoeksgesprekken): a police investigator joins the chat to
//! explain reporting. Offered → declined | scheduled (needs a `police_contact` consent) →
//! held → evaluated. Nothing here gates assistance.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::cases::{CasePath, organisation_slug};
use super::common::{self, parse_id};
use super::context::Context;
use super::input::{self, Fields};
use crate::app;
use crate::app::three_way::{ThreeWayList, ThreeWayView};
use crate::db::Instant;
use crate::domain::access::Actor;
use crate::domain::ids::ConversationId;
use crate::domain::organisation::OrganisationKind;
use crate::domain::three_way::{ReportingIntention, ThreeWayAction, ThreeWayRequest};
use crate::error::ApiError;

/// The body of `POST /cases/{id}/three-way-conversations`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ThreeWayInput {
    /// The police organisation (slug); default `police`.
    pub police_organisation: Option<String>,
}

/// Offers a three-way conversation (caseworker of the owning organisation).
#[utoipa::path(
    tag = "three-way conversations",
    params(CasePath, ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation key")),
    request_body = ThreeWayInput,
    responses(
        (status = 201, body = ThreeWayView, headers(("Location" = String), ("ETag" = String))),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/three-way-conversations")]
pub async fn create(
    actor: Actor,
    ctx: Context,
    req: HttpRequest,
    path: web::Path<CasePath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let case_id = path.id()?;
    let body = body.into_inner();
    let idempotency = common::idempotency(
        &ctx.services.keyring,
        &req,
        &format!("POST /cases/{}/three-way-conversations", case_id.0),
        &body,
    )?;
    let police = parse_offer(body, ctx.registry())?;
    let view = ctx
        .write(actor, move |c| app::three_way::offer(c, case_id, police, &idempotency))
        .await?;
    Ok(common::created(
        format!("/api/v1/three-way-conversations/{}", view.id),
        Some(view.version),
        view,
    ))
}

/// The case's three-way conversations (owning organisation).
#[utoipa::path(
    tag = "three-way conversations",
    params(CasePath),
    responses(
        (status = 200, body = ThreeWayList),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases/{id}/three-way-conversations")]
pub async fn list_for_case(actor: Actor, ctx: Context, path: web::Path<CasePath>) -> Result<HttpResponse, ApiError> {
    let case_id = path.id()?;
    let found = ctx
        .read(actor, move |c| app::three_way::list_for_case(c, case_id))
        .await?;
    Ok(HttpResponse::Ok().json(found))
}

/// The conversations the calling investigator is invited to.
#[utoipa::path(
    tag = "three-way conversations",
    responses(
        (status = 200, body = ThreeWayList),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/three-way-conversations")]
pub async fn list_invited(actor: Actor, ctx: Context) -> Result<HttpResponse, ApiError> {
    let found = ctx.read(actor, app::three_way::invitations).await?;
    Ok(HttpResponse::Ok().json(found))
}

#[derive(Deserialize, IntoParams)]
pub struct ThreeWayPath {
    /// The conversation id.
    pub id: String,
}

/// One conversation (owning organisation's caseworkers, or the invited investigator).
#[utoipa::path(
    tag = "three-way conversations",
    params(ThreeWayPath),
    responses(
        (status = 200, body = ThreeWayView, headers(("ETag" = String))),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/three-way-conversations/{id}")]
pub async fn get(actor: Actor, ctx: Context, path: web::Path<ThreeWayPath>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.id, ConversationId)?;
    let view = ctx.read(actor, move |c| app::three_way::get(c, id)).await?;
    Ok(common::ok_with_etag(view.version, view))
}

/// The body of `POST /three-way-conversations/{id}/transitions`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ThreeWayTransitionInput {
    pub action: ThreeWayAction,
    /// With `schedule`: the investigator's `sub`.
    pub police_officer: Option<String>,
    /// With `schedule`: when (RFC 3339).
    pub scheduled_for: Option<chrono::DateTime<chrono::Utc>>,
    /// With `evaluate`.
    pub care_evaluation: Option<String>,
    /// With `evaluate`.
    pub police_evaluation: Option<String>,
    /// With `evaluate`: the person's stated intention on reporting.
    pub reporting_intention: Option<ReportingIntention>,
}

pub fn parse_transition(body: Value) -> Result<ThreeWayRequest, ApiError> {
    let mut f = Fields::new(body, "ThreeWayTransitionInput")?;
    let action = f.required("action", input::one_of(&ThreeWayAction::ALL, ThreeWayAction::as_str));
    let officer = f.optional("police_officer", input::line);
    let scheduled_for = f.optional("scheduled_for", |v| {
        chrono::DateTime::parse_from_rfc3339(input::string(v)?)
            .map(|t| Instant::from_utc(t.with_timezone(&chrono::Utc)).0)
            .map_err(|_| "must be a date and time in RFC 3339, e.g. 2025-03-01T14:00:00Z".to_string())
    });
    // Blank texts are left to the domain, which says which step needs them.
    let text = |v: &Value| -> Result<String, String> {
        let raw = input::string(v)?;
        if raw.trim().is_empty() {
            Ok(String::new())
        } else {
            input::note(v).map(|t| t.into_string())
        }
    };
    let care = f.optional("care_evaluation", text);
    let police = f.optional("police_evaluation", text);
    let intention = f.optional(
        "reporting_intention",
        input::one_of(&ReportingIntention::ALL, ReportingIntention::as_str),
    );
    f.finish()?;
    let (Some(action), Some(officer), Some(scheduled_for), Some(care), Some(police), Some(intention)) =
        (action, officer, scheduled_for, care, police, intention)
    else {
        return Err(ApiError::internal("validated field missing"));
    };
    Ok(ThreeWayRequest {
        action,
        police_officer: officer.map(|o| o.into_string()),
        scheduled_for,
        care_evaluation: care,
        police_evaluation: police,
        reporting_intention: intention,
    })
}

/// Moves a conversation on (caseworker of the owning organisation; `If-Match` required).
#[utoipa::path(
    tag = "three-way conversations",
    params(ThreeWayPath, ("If-Match" = String, Header, description = "The conversation's current ETag")),
    request_body = ThreeWayTransitionInput,
    responses(
        (status = 200, body = ThreeWayView, headers(("ETag" = String))),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/three-way-conversations/{id}/transitions")]
pub async fn transition(
    actor: Actor,
    ctx: Context,
    req: HttpRequest,
    path: web::Path<ThreeWayPath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.id, ConversationId)?;
    let request = parse_transition(body.into_inner())?;
    let seen = common::seen_version(&req);
    let view = ctx
        .write(actor, move |c| app::three_way::transition(c, id, request, seen))
        .await?;
    Ok(common::ok_with_etag(view.version, view))
}

/// The police organisation an offer names (default `police`).
pub fn parse_offer(body: Value, registry: &crate::domain::organisation::Registry) -> Result<String, ApiError> {
    let mut f = Fields::new(body, "ThreeWayInput")?;
    let police = f.defaulted("police_organisation", "police".to_string(), |v| {
        let slug = organisation_slug(registry)(v)?;
        match registry.get(&slug) {
            Some(org) if org.kind == OrganisationKind::Police => Ok(slug),
            _ => Err("must be a police organisation of the registry".to_string()),
        }
    });
    f.finish()?;
    police.ok_or_else(|| ApiError::internal("validated field missing"))
}

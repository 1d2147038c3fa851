//! Referrals: the handover of a case from one organisation to another, moved through the
//! state machine in `domain::referral` by transitions that need the current ETag.

use actix_web::{HttpRequest, HttpResponse, get, post, put, web};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::cases::{CasePath, organisation_slug};
use super::common::{self, parse_id};
use super::context::Context;
use super::input::{self, Fields};
use crate::app::referrals::{
    AssignCommand, Assigned, ListFilter, NewReferral, ReferralList, ReferralView, TransitionCommand,
};
use crate::app::{self, Page};
use crate::db::referrals::Direction;
use crate::domain::access::Actor;
use crate::domain::ids::ReferralId;
use crate::domain::referral::{Action, DeclineReason, Outcome, ReferralState, TransitionRequest, Urgency};
use crate::error::ApiError;

/// The body of `POST /cases/{id}/referrals`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ReferralInput {
    /// The receiving organisation (slug).
    pub to_organisation: String,
    /// Requested services, from the registry's vocabulary; at least one.
    pub services: Vec<String>,
    pub urgency: Urgency,
    /// A note for the receiver.
    pub note: Option<String>,
}

/// A draft referral as the body asks for it, checked against the registry's vocabulary.
pub fn parse_new_referral(
    body: Value,
    registry: &crate::domain::organisation::Registry,
) -> Result<NewReferral, ApiError> {
    let mut f = Fields::new(body, "ReferralInput")?;
    let to = f.required("to_organisation", organisation_slug(registry));
    let services = f.required("services", |v| {
        input::list_of(v, |item| {
            let code = input::string(item)?;
            if registry.services.contains(code) {
                Ok(code.to_string())
            } else {
                Err(format!(
                    "is not a service of the registry, which has: {}",
                    registry.services.iter().cloned().collect::<Vec<_>>().join(", ")
                ))
            }
        })
    });
    let urgency = f.required("urgency", input::one_of(&Urgency::ALL, Urgency::as_str));
    let note = f.optional("note", input::note);
    f.finish()?;
    let (Some(to_organisation), Some(services), Some(urgency), Some(note)) = (to, services, urgency, note) else {
        return Err(ApiError::internal("validated field missing"));
    };
    Ok(NewReferral {
        to_organisation,
        services,
        urgency,
        note,
    })
}

/// Creates a draft referral of the case (caseworker of the owning organisation, which is
/// the sender). Honours `Idempotency-Key`.
#[utoipa::path(
    tag = "referrals",
    params(CasePath, ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation key")),
    request_body = ReferralInput,
    responses(
        (status = 201, body = ReferralView, headers(("Location" = String), ("ETag" = String))),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/referrals")]
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
        &format!("POST /cases/{}/referrals", case_id.0),
        &body,
    )?;
    let new = parse_new_referral(body, ctx.registry())?;
    let view = ctx
        .write(actor, move |c| app::referrals::draft(c, case_id, new, &idempotency))
        .await?;
    Ok(common::created(
        format!("/api/v1/referrals/{}", view.id),
        Some(view.version),
        view,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReferralListQuery {
    /// `incoming` (to the caller's organisation) or `outgoing` (from it). Default incoming.
    pub direction: Option<String>,
    /// Only referrals in this state.
    pub state: Option<String>,
    /// Incoming only: `me` for the referrals the caller took on, `nobody` for those nobody
    /// at the organisation took on yet.
    pub assigned_to: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Referrals to or from the caller's organisation, newest first.
#[utoipa::path(
    tag = "referrals",
    params(ReferralListQuery),
    responses(
        (status = 200, body = ReferralList),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/referrals")]
pub async fn list(actor: Actor, ctx: Context, query: web::Query<ReferralListQuery>) -> Result<HttpResponse, ApiError> {
    crate::domain::access::list_referrals(actor.principal())?;
    let query = query.into_inner();
    let direction = match query.direction.as_deref() {
        None | Some("incoming") => Direction::Incoming,
        Some("outgoing") => Direction::Outgoing,
        Some(_) => return Err(ApiError::field("direction", "must be incoming or outgoing")),
    };
    let state = match query.state.as_deref() {
        None => None,
        Some(s) => Some(s.parse::<ReferralState>().map_err(|_| {
            ApiError::field(
                "state",
                format!("must be one of: {}", ReferralState::ALL.map(|s| s.as_str()).join(", ")),
            )
        })?),
    };
    let assigned = match (query.assigned_to.as_deref(), direction) {
        (None, _) => None,
        (Some("me"), Direction::Incoming) => Some(Assigned::ToMe),
        (Some("nobody"), Direction::Incoming) => Some(Assigned::ToNobody),
        (Some(_), Direction::Incoming) => return Err(ApiError::field("assigned_to", "must be me or nobody")),
        (Some(_), Direction::Outgoing) => {
            return Err(ApiError::field("assigned_to", "applies to incoming referrals only"));
        }
    };
    let page = Page::parse(query.limit, query.cursor.as_deref(), ctx.settings())?;
    let filter = ListFilter {
        direction,
        state,
        assigned,
        page,
    };
    let found = ctx.read(actor, move |c| app::referrals::list(c, filter)).await?;
    Ok(HttpResponse::Ok().json(found))
}

#[derive(Deserialize, IntoParams)]
pub struct ReferralPath {
    /// The referral id.
    pub id: String,
}

/// One referral, with its history and the actions the caller may take.
#[utoipa::path(
    tag = "referrals",
    params(ReferralPath),
    responses(
        (status = 200, body = ReferralView, headers(("ETag" = String))),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/referrals/{id}")]
pub async fn get(actor: Actor, ctx: Context, path: web::Path<ReferralPath>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.id, ReferralId)?;
    let view = ctx.read(actor, move |c| app::referrals::get(c, id)).await?;
    Ok(common::ok_with_etag(view.version, view))
}

/// The body of `POST /referrals/{id}/transitions`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct TransitionInput {
    pub action: Action,
    /// With `decline`.
    pub reason_code: Option<DeclineReason>,
    /// With `decline` and `withdraw`.
    pub reason: Option<String>,
    /// With `complete`.
    pub outcome_code: Option<Outcome>,
    /// With `complete`: the closed loop back to the sender.
    pub outcome: Option<String>,
    /// With `submit`: why the referral is handed over although the service directory says
    /// the receiver's service does not fit (capacity, age, gender, ...). Required then; the
    /// override is counted in oversight.
    pub override_reason: Option<String>,
}

pub fn parse_transition(body: Value) -> Result<(TransitionRequest, Option<String>), ApiError> {
    let mut f = Fields::new(body, "TransitionInput")?;
    let action = f.required("action", input::one_of(&Action::ALL, Action::as_str));
    let reason_code = f.optional("reason_code", input::one_of(&DeclineReason::ALL, DeclineReason::as_str));
    // Blank texts are left to the domain, which says which action needs them.
    let free_text = |v: &Value| -> Result<String, String> {
        let text = input::string(v)?;
        if text.trim().is_empty() {
            Ok(String::new())
        } else {
            input::note(v).map(|t| t.into_string())
        }
    };
    let reason = f.optional("reason", free_text);
    let outcome_code = f.optional("outcome_code", input::one_of(&Outcome::ALL, Outcome::as_str));
    let outcome = f.optional("outcome", free_text);
    let override_reason = f.optional("override_reason", input::note);
    if action.is_some_and(|a| a != Action::Submit) && matches!(override_reason, Some(Some(_))) {
        f.error("override_reason", "applies only to submit");
    }
    f.finish()?;
    let (Some(action), Some(reason_code), Some(reason), Some(outcome_code), Some(outcome), Some(override_reason)) =
        (action, reason_code, reason, outcome_code, outcome, override_reason)
    else {
        return Err(ApiError::internal("validated field missing"));
    };
    Ok((
        TransitionRequest {
            action,
            reason_code,
            reason,
            outcome_code,
            outcome,
        },
        override_reason.map(|r| r.into_string()),
    ))
}

/// Moves a referral through the handover state machine. Needs `If-Match` with the current
/// ETag: 428 without it, 412 when stale. 409 when the state or the caller does not allow
/// the action (the body lists `allowed_actions`); 422 when submit guards fail (the body
/// lists their codes) or a required reason or outcome is missing.
#[utoipa::path(
    tag = "referrals",
    params(ReferralPath, ("If-Match" = String, Header, description = "The referral's current ETag")),
    request_body = TransitionInput,
    responses(
        (status = 200, body = ReferralView, headers(("ETag" = String))),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/referrals/{id}/transitions")]
pub async fn transition(
    actor: Actor,
    ctx: Context,
    req: HttpRequest,
    path: web::Path<ReferralPath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.id, ReferralId)?;
    let (request, override_reason) = parse_transition(body.into_inner())?;
    let command = TransitionCommand {
        request,
        override_reason,
        seen: common::seen_version(&req),
    };
    let view = ctx
        .write(actor, move |c| app::referrals::transition(c, id, command))
        .await?;
    Ok(common::ok_with_etag(view.version, view))
}

/// The body of `PUT /referrals/{id}/assignee`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct AssigneeInput {
    /// The `sub` of the person at the receiving organisation who takes the referral on:
    /// the caller, or an intake colleague who has signed in to the pages before. `null`
    /// hands it back to the organisation's queue.
    pub assigned_to: Option<String>,
}

pub fn parse_assignee(body: Value) -> Result<Option<String>, ApiError> {
    let mut f = Fields::new(body, "AssigneeInput")?;
    let assigned_to = f.optional("assigned_to", |v| {
        let text = input::string(v)?;
        let text = text.trim();
        if text.is_empty() || text.chars().count() > 200 || text.chars().any(char::is_control) {
            Err("must be a person's id of 1 to 200 characters".to_string())
        } else {
            Ok(text.to_string())
        }
    });
    f.finish()?;
    assigned_to.ok_or_else(|| ApiError::internal("validated field missing"))
}

/// Takes an incoming referral on, hands it to an intake colleague, or back to the queue.
/// For the receiving organisation's intake staff while the referral is open; audited.
/// Needs `If-Match` like a transition: the change bumps the version.
#[utoipa::path(
    tag = "referrals",
    params(ReferralPath, ("If-Match" = String, Header, description = "The referral's current ETag")),
    request_body = AssigneeInput,
    responses(
        (status = 200, body = ReferralView, headers(("ETag" = String))),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[put("/referrals/{id}/assignee")]
pub async fn assign(
    actor: Actor,
    ctx: Context,
    req: HttpRequest,
    path: web::Path<ReferralPath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.id, ReferralId)?;
    let command = AssignCommand {
        assigned_to: parse_assignee(body.into_inner())?,
        seen: common::seen_version(&req),
    };
    let view = ctx
        .write(actor, move |c| app::referrals::assign(c, id, command))
        .await?;
    Ok(common::ok_with_etag(view.version, view))
}

//! The person's data over its lifetime: the disclosure register, subject access (export),
//! closure, erasure on request, and search by name through the blind index.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::cases::CasePath;
use super::context::Context;
use super::input::{self, Fields};
use crate::app;
use crate::app::cases::CaseView;
use crate::app::privacy::{CaseExport, ClosureReason, DisclosureList, ErasureReason, SearchResult};
use crate::domain::access::Actor;
use crate::error::ApiError;

/// Who outside the owning organisation saw the identifying details, when, and on which basis
/// (owning organisation), to answer the person or the data protection officer.
#[utoipa::path(
    tag = "privacy",
    params(CasePath),
    responses(
        (status = 200, body = DisclosureList),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases/{id}/disclosures")]
pub async fn disclosures(actor: Actor, ctx: Context, path: web::Path<CasePath>) -> Result<HttpResponse, ApiError> {
    let id = path.id()?;
    let found = ctx.read(actor, move |c| app::privacy::disclosures(c, id)).await?;
    Ok(HttpResponse::Ok().json(found))
}

/// Subject access: everything held about the person, as one document (owning organisation;
/// audited).
#[utoipa::path(
    tag = "privacy",
    params(CasePath),
    responses(
        (status = 200, body = CaseExport),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases/{id}/export")]
pub async fn export(actor: Actor, ctx: Context, path: web::Path<CasePath>) -> Result<HttpResponse, ApiError> {
    let id = path.id()?;
    let document = ctx.write(actor, move |c| app::privacy::export(c, id)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"nrm-case-{}.json\"", id.0),
        ))
        .json(document))
}

/// The body of `POST /cases/{id}/close`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct CloseInput {
    pub reason_code: ClosureReason,
}

/// Closes a case once all its referrals are finished; it becomes read-only and the
/// retention periods start (owning organisation).
#[utoipa::path(
    tag = "privacy",
    params(CasePath),
    request_body = CloseInput,
    responses(
        (status = 200, body = CaseView),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/close")]
pub async fn close(
    actor: Actor,
    ctx: Context,
    path: web::Path<CasePath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = path.id()?;
    let mut f = Fields::new(body.into_inner(), "CloseInput")?;
    let reason = f.required("reason_code", input::one_of(&ClosureReason::ALL, ClosureReason::as_str));
    f.finish()?;
    let reason = reason.ok_or_else(|| ApiError::internal("validated field missing"))?;
    let view = ctx.write(actor, move |c| app::privacy::close(c, id, reason)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The body of `POST /cases/{id}/erase`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct EraseInput {
    pub reason: ErasureReason,
}

/// Erases the person's identifying details, pseudonym and free text now (GDPR Art. 17),
/// keeping the statistical facts; the organisations that held referrals are told (admin of
/// the owning organisation; audited).
#[utoipa::path(
    tag = "privacy",
    params(CasePath),
    request_body = EraseInput,
    responses(
        (status = 200, body = CaseView),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/erase")]
pub async fn erase(
    actor: Actor,
    ctx: Context,
    path: web::Path<CasePath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = path.id()?;
    let mut f = Fields::new(body.into_inner(), "EraseInput")?;
    let reason = f.required("reason", input::one_of(&ErasureReason::ALL, ErasureReason::as_str));
    f.finish()?;
    let reason = reason.ok_or_else(|| ApiError::internal("validated field missing"))?;
    let view = ctx.write(actor, move |c| app::privacy::erase(c, id, reason)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The body of `POST /cases/search`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct SearchInput {
    /// The person's name; matched exactly, ignoring case and extra spaces.
    pub name: String,
}

/// Finds the caller organisation's cases by the person's name, through a keyed hash of the
/// name (the database holds no name in the clear). A POST, so names stay out of URLs and logs.
#[utoipa::path(
    tag = "privacy",
    request_body = SearchInput,
    responses(
        (status = 200, body = SearchResult),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/search")]
pub async fn search(actor: Actor, ctx: Context, body: web::Json<Value>) -> Result<HttpResponse, ApiError> {
    crate::domain::access::list_cases(actor.principal())?;
    let mut f = Fields::new(body.into_inner(), "SearchInput")?;
    let name = f.required("name", input::line);
    f.finish()?;
    let name = name.ok_or_else(|| ApiError::internal("validated field missing"))?;
    let result = ctx.read(actor, move |c| app::privacy::search(c, &name)).await?;
    Ok(HttpResponse::Ok().json(result))
}

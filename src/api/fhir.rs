//! `GET /fhir/Task/{id}` and `GET /fhir/Task`: referrals as FHIR R4 `Task` resources, to the
//! organisations that may read them through the API, with the same bearer tokens. Errors are
//! problem+json like everywhere else in `nrm` (docs/integration.md §3).

use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use super::common::parse_id;
use super::context::Context;
use crate::app::fhir::TaskSearch;
use crate::app::{self, Page};
use crate::domain::access::Actor;
use crate::domain::fhir::{state_of_task_status, task_status};
use crate::domain::ids::ReferralId;
use crate::domain::referral::ReferralState;
use crate::error::ApiError;

/// FHIR's JSON media type, R4.
pub const FHIR_JSON: &str = "application/fhir+json; fhirVersion=4.0";

#[derive(Deserialize, IntoParams)]
pub struct TaskPath {
    /// The referral id.
    pub id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    /// The receiving organisation: its slug, or `Organization/<slug>`.
    pub owner: Option<String>,
    /// A FHIR task status: draft, requested, received, accepted, in-progress, completed,
    /// rejected or cancelled.
    pub status: Option<String>,
    /// Page size (default and maximum from `cases.page_size_*`).
    #[serde(rename = "_count")]
    #[param(rename = "_count")]
    pub count: Option<i64>,
    /// The cursor of the bundle's `next` link.
    #[serde(rename = "_cursor")]
    #[param(rename = "_cursor")]
    pub cursor: Option<String>,
}

/// One referral as a FHIR R4 `Task`, with the `ServiceRequest` it fulfils contained.
#[utoipa::path(
    tag = "fhir",
    params(TaskPath),
    responses(
        (status = 200, body = Object, content_type = "application/fhir+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/fhir/Task/{id}")]
pub async fn task(actor: Actor, ctx: Context, path: web::Path<TaskPath>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.id, ReferralId)?;
    let found: Value = ctx.read(actor, move |c| app::fhir::get_task(c, id)).await?;
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).json(found))
}

/// The referrals to and from the caller's organisation as a FHIR `searchset` Bundle of
/// `Task` resources, newest first.
#[utoipa::path(
    tag = "fhir",
    params(TaskQuery),
    responses(
        (status = 200, body = Object, content_type = "application/fhir+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/fhir/Task")]
pub async fn search(actor: Actor, ctx: Context, query: web::Query<TaskQuery>) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let owner = match query.owner.as_deref() {
        None => None,
        Some(text) => {
            let slug = text.strip_prefix("Organization/").unwrap_or(text);
            if ctx.registry().get(slug).is_none() {
                return Err(ApiError::field("owner", "is not an organisation of the registry"));
            }
            Some(slug.to_string())
        }
    };
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(state_of_task_status(text).ok_or_else(|| {
            ApiError::field(
                "status",
                format!("must be one of: {}", ReferralState::ALL.map(task_status).join(", ")),
            )
        })?),
    };
    let search = TaskSearch {
        owner,
        status,
        status_text: status.map(|s| task_status(s).to_string()),
        page: Page::parse(query.count, query.cursor.as_deref(), ctx.settings())?,
    };
    let bundle: Value = ctx.read(actor, move |c| app::fhir::search_tasks(c, search)).await?;
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).json(bundle))
}

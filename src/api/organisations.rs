//! The organisation registry and service directory, readable by every authenticated user;
//! live capacity, updated by each organisation's own intake staff and admins.

use actix_web::{HttpResponse, get, put, web};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::context::Context;
use super::input::{self, Fields};
use crate::app;
use crate::app::capacity::{CapacityReport, OrganisationList, OrganisationView};
use crate::domain::access::Actor;
use crate::error::{ApiError, FieldError};

#[derive(Debug, Deserialize, IntoParams)]
pub struct SlugPath {
    /// The organisation's slug, e.g. `comensha`.
    pub slug: String,
}

/// Every active partner organisation.
#[utoipa::path(
    tag = "organisations",
    responses(
        (status = 200, body = OrganisationList),
    )
)]
#[get("/organisations")]
pub async fn list(actor: Actor, ctx: Context) -> Result<HttpResponse, ApiError> {
    let found = ctx.read(actor, app::capacity::directory).await?;
    Ok(HttpResponse::Ok().json(found))
}

/// One partner organisation.
#[utoipa::path(
    tag = "organisations",
    params(SlugPath),
    responses(
        (status = 200, body = OrganisationView),
    )
)]
#[get("/organisations/{slug}")]
pub async fn get(actor: Actor, ctx: Context, path: web::Path<SlugPath>) -> Result<HttpResponse, ApiError> {
    let slug = path.into_inner().slug;
    let view = ctx.read(actor, move |c| app::capacity::organisation(c, &slug)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The body of `PUT /organisations/{slug}/capacity`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct CapacityInput {
    /// One entry per capacity-managed service to update; others keep their last report.
    pub services: Vec<CapacityEntry>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct CapacityEntry {
    pub service: String,
    /// Places free now, 0 to 10000. With 0 the service is not suggested.
    pub places_free: i64,
}

/// Reports live capacity (intake staff or admins of the organisation itself; audited).
#[utoipa::path(
    tag = "organisations",
    params(SlugPath),
    request_body = CapacityInput,
    responses(
        (status = 200, body = OrganisationView),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[put("/organisations/{slug}/capacity")]
pub async fn set_capacity(
    actor: Actor,
    ctx: Context,
    path: web::Path<SlugPath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let slug = path.into_inner().slug;
    // Who may report comes before what was sent, as it always has for this route.
    if crate::domain::organisation::is_valid_slug(&slug) && ctx.registry().get(&slug).is_some() {
        crate::domain::access::report_capacity(actor.principal(), &slug)?;
    }
    let reports = parse_reports(body.into_inner())?;
    let view = ctx
        .write(actor, move |c| app::capacity::report(c, &slug, reports))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The shape of a capacity report; which services may be reported is the use case's.
pub fn parse_reports(body: Value) -> Result<Vec<CapacityReport>, ApiError> {
    let mut f = Fields::new(body, "CapacityInput")?;
    let entries = f.required("services", |v| {
        let items = v.as_array().ok_or_else(|| "must be a list".to_string())?;
        if items.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(items.clone())
    });
    f.finish()?;
    let entries = entries.ok_or_else(|| ApiError::internal("validated field missing"))?;
    let mut reports = Vec::new();
    let mut problems = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let mut e = match Fields::new(entry, "CapacityEntry") {
            Ok(e) => e,
            Err(_) => {
                problems.push(FieldError::new(format!("services.{index}"), "must be an object"));
                continue;
            }
        };
        let service = e.required("service", |v| input::string(v).map(str::to_string));
        let places = e.required("places_free", input::integer);
        match e.finish() {
            Ok(()) => {
                if let (Some(service), Some(places_free)) = (service, places) {
                    reports.push(CapacityReport { service, places_free });
                }
            }
            Err(ApiError::Validation(errors)) => problems.extend(
                errors
                    .into_iter()
                    .map(|p| FieldError::new(format!("services.{index}.{}", p.field), p.message)),
            ),
            Err(other) => return Err(other),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    Ok(reports)
}

//! The organisation registry and service directory, readable by every authenticated user;
//! live capacity, updated by each organisation's own intake staff and admins.

use actix_web::{HttpResponse, get, put, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::cases::Context;
use super::input::{self, Fields};
use crate::auth::Actor;
use crate::db::organisations::{self, CapacityRow, OrganisationRow};
use crate::domain::organisation::{OrganisationKind, Registry, ServiceOffer, is_valid_slug};
use crate::error::{ApiError, FieldError};

/// Places free in a capacity-managed service, as last reported.
#[derive(Debug, Serialize, ToSchema)]
pub struct CapacityView {
    pub service: String,
    pub places_free: i32,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A partner organisation, with its service directory entry and live capacity.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganisationView {
    pub slug: String,
    pub name: String,
    pub kind: OrganisationKind,
    /// Service codes from the registry's vocabulary.
    pub services: Vec<String>,
    /// Region codes, or `["national"]`.
    pub regions: Vec<String>,
    pub intake_email: String,
    pub accepts_minors: bool,
    pub available_24_7: bool,
    /// The national focal point for referrals.
    pub focal_point: bool,
    /// Per service: who is eligible, when it is available, whether capacity is managed.
    pub offers: Vec<ServiceOffer>,
    /// Live capacity of capacity-managed services; a service not listed has not reported.
    pub capacity: Vec<CapacityView>,
}

fn view(row: &OrganisationRow, registry: &Registry, capacity: &[CapacityRow]) -> OrganisationView {
    let org = row.to_organisation();
    OrganisationView {
        offers: registry.offers_of(&org.slug).to_vec(),
        capacity: capacity
            .iter()
            .filter(|c| c.organisation == org.slug)
            .map(|c| CapacityView {
                service: c.service.clone(),
                places_free: c.places_free,
                updated_at: c.updated_at.0,
            })
            .collect(),
        slug: org.slug,
        name: org.name,
        kind: org.kind,
        services: org.services,
        regions: org.regions,
        intake_email: org.intake_email,
        accepts_minors: org.accepts_minors,
        available_24_7: org.available_24_7,
        focal_point: org.focal_point,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganisationList {
    pub items: Vec<OrganisationView>,
}

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
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/organisations")]
pub async fn list(_actor: Actor, ctx: Context) -> Result<HttpResponse, ApiError> {
    let (rows, capacity) = ctx
        .db
        .run(|conn| Ok::<_, ApiError>((organisations::list_active(conn)?, organisations::capacity(conn)?)))
        .await?;
    let items = rows.iter().map(|r| view(r, &ctx.registry, &capacity)).collect();
    Ok(HttpResponse::Ok().json(OrganisationList { items }))
}

/// One partner organisation.
#[utoipa::path(
    tag = "organisations",
    params(SlugPath),
    responses(
        (status = 200, body = OrganisationView),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/organisations/{slug}")]
pub async fn get(_actor: Actor, ctx: Context, path: web::Path<SlugPath>) -> Result<HttpResponse, ApiError> {
    let slug = path.into_inner().slug;
    if !is_valid_slug(&slug) {
        return Err(ApiError::UnknownOrganisation);
    }
    let (row, capacity) = ctx
        .db
        .run(move |conn| {
            let row = organisations::find_active(conn, &slug)?.ok_or(ApiError::UnknownOrganisation)?;
            let capacity = organisations::capacity_of(conn, &slug)?;
            Ok::<_, ApiError>((row, capacity))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view(&row, &ctx.registry, &capacity)))
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
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
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
    if !is_valid_slug(&slug) || ctx.registry.get(&slug).is_none() {
        return Err(ApiError::UnknownOrganisation);
    }
    crate::domain::access::report_capacity(actor.principal(), &slug)?;
    let mut f = Fields::new(body.into_inner())?;
    let entries = f.required("services", |v| {
        let items = v.as_array().ok_or_else(|| "must be a list".to_string())?;
        if items.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(items.clone())
    });
    f.finish()?;
    let entries = entries.ok_or_else(|| ApiError::internal("validated field missing"))?;
    let mut updates = Vec::new();
    let mut problems = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let mut e = match Fields::new(entry) {
            Ok(e) => e,
            Err(_) => {
                problems.push(FieldError::new(format!("services.{index}"), "must be an object"));
                continue;
            }
        };
        let service = e.required("service", |v| {
            let code = input::string(v)?;
            match ctx.registry.offer(&slug, code) {
                Some(offer) if offer.capacity_managed => Ok(code.to_string()),
                Some(_) => Err("is not a capacity-managed service of this organisation".to_string()),
                None => Err("is not a service of this organisation".to_string()),
            }
        });
        let places = e.required("places_free", |v| {
            input::integer(v).and_then(|n| {
                i32::try_from(n)
                    .ok()
                    .filter(|n| (0..=10_000).contains(n))
                    .ok_or_else(|| "must be 0 to 10000".into())
            })
        });
        match e.finish() {
            Ok(()) => {
                if let (Some(service), Some(places)) = (service, places) {
                    updates.push((service, places));
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
    let now = ctx.now();
    let org = slug.clone();
    let (row, capacity) = ctx
        .db
        .write(move |conn| {
            for (service, places_free) in &updates {
                organisations::set_capacity(
                    conn,
                    &CapacityRow {
                        organisation: org.clone(),
                        service: service.clone(),
                        places_free: *places_free,
                        updated_by: actor.sub.clone(),
                        updated_at: now,
                    },
                )?;
            }
            let outcome = updates
                .iter()
                .map(|(s, n)| format!("{s}={n}"))
                .collect::<Vec<_>>()
                .join(",");
            let entry = crate::db::audit::NewAuditEntry::new(
                "organisation.capacity",
                "organisation",
                org.clone(),
                None,
                &outcome,
            )
            .by(&actor.sub, &actor.org, actor.roles_text());
            crate::db::audit::append(conn, &entry, now)?;
            let row = organisations::find_active(conn, &org)?.ok_or(ApiError::NotFound)?;
            Ok::<_, ApiError>((row, organisations::capacity_of(conn, &org)?))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view(&row, &ctx.registry, &capacity)))
}

//! The organisation registry, readable by every authenticated user.

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Actor;
use crate::db::{Db, organisations};
use crate::domain::organisation::{OrganisationKind, is_valid_slug};
use crate::error::ApiError;

/// A partner organisation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
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
}

impl From<&organisations::OrganisationRow> for OrganisationView {
    fn from(row: &organisations::OrganisationRow) -> Self {
        let org = row.to_organisation();
        Self {
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
pub async fn list(_actor: Actor, db: web::Data<Db>) -> Result<HttpResponse, ApiError> {
    let rows = db
        .run(|conn| organisations::list_active(conn).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(OrganisationList {
        items: rows.iter().map(OrganisationView::from).collect(),
    }))
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
pub async fn get(
    _actor: Actor,
    db: web::Data<Db>,
    path: web::Path<SlugPath>,
) -> Result<HttpResponse, ApiError> {
    let slug = path.into_inner().slug;
    if !is_valid_slug(&slug) {
        return Err(ApiError::NotFound);
    }
    let row = db
        .run(move |conn| organisations::find_active(conn, &slug).map_err(ApiError::from))
        .await?;
    let row = row.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(OrganisationView::from(&row)))
}

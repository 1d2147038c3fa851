//! Liveness and readiness, without authentication, for load balancers and orchestrators.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::{self, Db};
use crate::error::ApiError;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `up` or `ready`.
    pub status: &'static str,
    /// `sqlite` or `postgresql` (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
    /// The once-per-database tasks this instance leads now: `sealer`, `deadline-watcher`,
    /// `retention`, `roll-ups` (readiness only). Of several instances on one database, one leads each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leads: Option<Vec<&'static str>>,
}

/// The process is up and answering.
#[utoipa::path(tag = "health", responses((status = 200, body = Health)))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "up",
        database: None,
        leads: None,
    })
}

/// The database is reachable and every migration is applied.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, body = Health),
        (status = 503, description = "Database unreachable or migrations pending", body = crate::error::Problem,
         content_type = "application/problem+json"),
    )
)]
#[get("/health/ready")]
pub async fn ready(db: web::Data<Db>) -> Result<HttpResponse, ApiError> {
    let backend = db.location().backend_name();
    let complete = db
        .run(db::migrations_complete)
        .await
        .map_err(|e| ApiError::Unavailable(format!("readiness: {e}")))?;
    if !complete {
        return Err(ApiError::Unavailable("readiness: migrations pending".into()));
    }
    Ok(HttpResponse::Ok().json(Health {
        status: "ready",
        database: Some(backend),
        leads: Some(db.leading().tasks()),
    }))
}

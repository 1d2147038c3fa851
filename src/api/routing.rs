//! Routing: explained suggestions of where a case could go next, from the declarative rules
//! in `config/routing.toml` and the service directory (see docs/routing.md).

use actix_web::{HttpResponse, get, web};

use super::cases::CasePath;
use super::context::Context;
use crate::app;
use crate::domain::access::Actor;
use crate::domain::routing::Routing;
use crate::error::ApiError;

/// Ranked suggestions for the case, each with the rules that matched and why, and the
/// organisations left out with the reason (caseworker of the owning organisation).
#[utoipa::path(
    tag = "routing",
    params(CasePath),
    responses(
        (status = 200, body = Routing),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases/{id}/routing")]
pub async fn suggestions(actor: Actor, ctx: Context, path: web::Path<CasePath>) -> Result<HttpResponse, ApiError> {
    let id = path.id()?;
    let routing = ctx.read(actor, move |c| app::referrals::suggestions(c, id)).await?;
    Ok(HttpResponse::Ok().json(routing))
}

//! Routing: explained suggestions of where a case could go next, from the declarative rules
//! in `config/routing.toml` and the service directory (see docs/routing.md).

use actix_web::{HttpResponse, get, web};
use chrono::NaiveDate;

use super::cases::{CasePath, Context, forms_of, is_minor, needs_of};
use super::common::{case_for, parse_id};
use crate::auth::Actor;
use crate::db::cases::CaseRow;
use crate::db::organisations::{self as organisation_rows, CapacityRow};
use crate::db::referrals::{self as referral_rows, ReferralRow};
use crate::domain::access::CaseAction;
use crate::domain::case::{CountryCode, ExploitationForms};
use crate::domain::referral::ReferralState;
use crate::domain::routing::{Capacity, CaseProfile, Routing, suggest};
use crate::error::ApiError;

/// The facts routing looks at, from the case and its referrals.
pub fn profile_of(case: &CaseRow, referrals: &[ReferralRow], today: NaiveDate) -> Result<CaseProfile, ApiError> {
    let forms = ExploitationForms::parse(forms_of(case)).map_err(ApiError::internal)?;
    let mut profile = CaseProfile::new(forms);
    profile.age = case.age_at_contact.and_then(|a| u8::try_from(a).ok());
    profile.minor = is_minor(case);
    profile.gender = case.gender.as_deref().and_then(|g| g.parse().ok());
    profile.nationality = case.nationality.as_deref().and_then(|n| CountryCode::parse(n).ok());
    profile.region = case.region.clone();
    profile.language = case.language.clone();
    profile.last_incident_date = case.last_incident_date;
    profile.needs = needs_of(case).into_iter().collect();
    profile.unaccompanied = case.unaccompanied;
    profile.in_reflection_period = case.reflection_period_end.is_some_and(|end| end >= today);
    profile.declined_by = referrals
        .iter()
        .filter(|r| r.state == ReferralState::Declined.as_str())
        .map(|r| r.to_organisation.clone())
        .collect();
    Ok(profile)
}

pub fn capacity_map(rows: &[CapacityRow]) -> Capacity {
    rows.iter()
        .map(|r| {
            (
                (r.organisation.clone(), r.service.clone()),
                u32::try_from(r.places_free).unwrap_or(0),
            )
        })
        .collect()
}

/// Ranked suggestions for the case, each with the rules that matched and why, and the
/// organisations left out with the reason (caseworker of the owning organisation).
#[utoipa::path(
    tag = "routing",
    params(CasePath),
    responses(
        (status = 200, body = Routing),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases/{id}/routing")]
pub async fn suggestions(actor: Actor, ctx: Context, path: web::Path<CasePath>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.id)?;
    let today = ctx.now().0.date_naive();
    let (rules, registry) = (ctx.routing.clone(), ctx.registry.clone());
    let routing = ctx
        .db
        .run(move |conn| {
            let case = case_for(conn, &actor, id, CaseAction::Refer)?;
            let referrals = referral_rows::for_case(conn, id)?;
            let capacity = capacity_map(&organisation_rows::capacity(conn)?);
            let profile = profile_of(&case, &referrals, today)?;
            Ok::<_, ApiError>(suggest(&rules, &registry, &capacity, &actor.org, &profile, today))
        })
        .await?;
    Ok(HttpResponse::Ok().json(routing))
}

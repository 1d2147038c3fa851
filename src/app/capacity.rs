//! The organisation registry and service directory, readable by every authenticated user,
//! and live capacity, reported by each organisation's own intake staff and admins.

use serde::Serialize;
use utoipa::ToSchema;

use super::{AppError, AppResult, Ctx};
use crate::db::organisations::{self as rows, CapacityRow, OrganisationRow};
use crate::domain::access;
use crate::domain::organisation::{OrganisationKind, Registry, ServiceOffer, is_valid_slug};
use crate::domain::problem::FieldError;
use crate::domain::routing::Capacity;

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

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganisationList {
    pub items: Vec<OrganisationView>,
}

fn view(row: &OrganisationRow, registry: &Registry, capacity: &[CapacityRow]) -> AppResult<OrganisationView> {
    let org = row.to_organisation()?;
    Ok(OrganisationView {
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
    })
}

/// Live capacity by (organisation, service), as routing reads it.
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

/// Every active partner organisation.
#[tracing::instrument(skip_all)]
pub fn directory(ctx: &mut Ctx) -> AppResult<OrganisationList> {
    let organisations = rows::list_active(ctx.conn)?;
    let capacity = rows::capacity(ctx.conn)?;
    let items = organisations
        .iter()
        .map(|r| view(r, ctx.registry(), &capacity))
        .collect::<AppResult<_>>()?;
    Ok(OrganisationList { items })
}

/// One partner organisation.
#[tracing::instrument(skip_all)]
pub fn organisation(ctx: &mut Ctx, slug: &str) -> AppResult<OrganisationView> {
    if !is_valid_slug(slug) {
        return Err(AppError::UnknownOrganisation);
    }
    let row = rows::find_active(ctx.conn, slug)?.ok_or(AppError::UnknownOrganisation)?;
    let capacity = rows::capacity_of(ctx.conn, slug)?;
    view(&row, ctx.registry(), &capacity)
}

/// One reported figure as sent: a service code and a number, not yet checked.
#[derive(Debug, Clone)]
pub struct CapacityReport {
    pub service: String,
    pub places_free: i64,
}

/// Reports live capacity of the organisation's own capacity-managed services (intake staff
/// or admins of the organisation itself; audited). Every bad entry is named at once.
#[tracing::instrument(skip_all)]
pub fn report(ctx: &mut Ctx, slug: &str, reports: Vec<CapacityReport>) -> AppResult<OrganisationView> {
    if !is_valid_slug(slug) || ctx.registry().get(slug).is_none() {
        return Err(AppError::UnknownOrganisation);
    }
    access::report_capacity(ctx.actor.principal(), slug)?;
    let mut updates = Vec::new();
    let mut problems = Vec::new();
    for (index, entry) in reports.iter().enumerate() {
        let service = match ctx.registry().offer(slug, &entry.service) {
            Some(offer) if offer.capacity_managed => Some(entry.service.clone()),
            Some(_) => {
                problems.push(FieldError::new(
                    format!("services.{index}.service"),
                    "is not a capacity-managed service of this organisation",
                ));
                None
            }
            None => {
                problems.push(FieldError::new(
                    format!("services.{index}.service"),
                    "is not a service of this organisation",
                ));
                None
            }
        };
        let places = i32::try_from(entry.places_free)
            .ok()
            .filter(|n| (0..=10_000).contains(n));
        if places.is_none() {
            problems.push(FieldError::new(
                format!("services.{index}.places_free"),
                "must be 0 to 10000",
            ));
        }
        if let (Some(service), Some(places)) = (service, places) {
            updates.push((service, places));
        }
    }
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems));
    }
    for (service, places_free) in &updates {
        rows::set_capacity(
            ctx.conn,
            &CapacityRow {
                organisation: slug.to_string(),
                service: service.clone(),
                places_free: *places_free,
                updated_by: ctx.actor.sub.clone(),
                updated_at: ctx.now,
            },
        )?;
    }
    let outcome = updates
        .iter()
        .map(|(s, n)| format!("{s}={n}"))
        .collect::<Vec<_>>()
        .join(",");
    let entry = crate::db::audit::NewAuditEntry::new("organisation.capacity", "organisation", slug, None, &outcome)
        .by_actor(ctx.actor);
    crate::db::audit::append(ctx.conn, &entry, ctx.now)?;
    organisation(ctx, slug)
}

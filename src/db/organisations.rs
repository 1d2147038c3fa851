//! Organisation rows: the registry mirrored into the database, so referrals, audit entries
//! and foreign keys can point at organisations, and live data (later: capacity) has a home.

use diesel::prelude::*;

use super::audit::{NewAuditEntry, append};
use super::schema::{organisation_capacity, organisations};
use super::{AnyConnection, Instant};
use crate::domain::organisation::{Organisation, OrganisationKind, Registry};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = organisations, treat_none_as_default_value = false)]
pub struct OrganisationRow {
    pub slug: String,
    pub name: String,
    pub kind: String,
    pub services: String,
    pub regions: String,
    pub intake_email: String,
    pub accepts_minors: bool,
    pub available_24_7: bool,
    pub focal_point: bool,
    pub active: bool,
    pub updated_at: Instant,
}

impl OrganisationRow {
    fn from_registry(org: &Organisation, now: Instant) -> Self {
        Self {
            slug: org.slug.clone(),
            name: org.name.clone(),
            kind: org.kind.as_str().to_string(),
            services: serde_json::to_string(&org.services).unwrap_or_else(|_| "[]".into()),
            regions: serde_json::to_string(&org.regions).unwrap_or_else(|_| "[]".into()),
            intake_email: org.intake_email.clone(),
            accepts_minors: org.accepts_minors,
            available_24_7: org.available_24_7,
            focal_point: org.focal_point,
            active: true,
            updated_at: now,
        }
    }

    /// The registry view of a row; a value this version cannot read is an error.
    pub fn to_organisation(&self) -> Result<Organisation, super::RowError> {
        const T: &str = "organisations";
        let broken = |column| super::RowError { table: T, column };
        Ok(Organisation {
            slug: self.slug.clone(),
            name: self.name.clone(),
            kind: OrganisationKind::parse(&self.kind).ok_or(broken("kind"))?,
            services: serde_json::from_str(&self.services).map_err(|_| broken("services"))?,
            regions: serde_json::from_str(&self.regions).map_err(|_| broken("regions"))?,
            intake_email: self.intake_email.clone(),
            accepts_minors: self.accepts_minors,
            available_24_7: self.available_24_7,
            focal_point: self.focal_point,
        })
    }
}

/// Mirrors the registry into the table: inserts new, updates changed, marks missing inactive.
/// Idempotent; rows that did not change are not written. Returns how many rows changed.
pub fn sync_registry(conn: &mut AnyConnection, registry: &Registry, now: Instant) -> QueryResult<usize> {
    super::write_transaction(conn, |conn| {
        let existing: Vec<OrganisationRow> = organisations::table.select(OrganisationRow::as_select()).load(conn)?;
        let mut changed = 0;
        for org in registry.organisations.values() {
            let wanted = OrganisationRow::from_registry(org, now);
            let action = match existing.iter().find(|row| row.slug == org.slug) {
                None => {
                    diesel::insert_into(organisations::table)
                        .values(&wanted)
                        .execute(conn)?;
                    "organisation.create"
                }
                Some(row) if !same_content(row, &wanted) => {
                    diesel::update(organisations::table.find(&org.slug))
                        .set(&wanted)
                        .execute(conn)?;
                    "organisation.update"
                }
                Some(_) => continue,
            };
            audit_change(conn, &org.slug, action, now)?;
            changed += 1;
        }
        for row in existing
            .iter()
            .filter(|r| r.active && !registry.organisations.contains_key(&r.slug))
        {
            diesel::update(organisations::table.find(&row.slug))
                .set((organisations::active.eq(false), organisations::updated_at.eq(now)))
                .execute(conn)?;
            audit_change(conn, &row.slug, "organisation.deactivate", now)?;
            changed += 1;
        }
        Ok(changed)
    })
}

/// Registry changes are made by the service at start-up, from the registry file.
fn audit_change(conn: &mut AnyConnection, slug: &str, action: &str, now: Instant) -> QueryResult<()> {
    append(
        conn,
        &NewAuditEntry::new(action, "organisation", slug, None, "registry file"),
        now,
    )
}

fn same_content(a: &OrganisationRow, b: &OrganisationRow) -> bool {
    (
        &a.name,
        &a.kind,
        &a.services,
        &a.regions,
        &a.intake_email,
        a.accepts_minors,
        a.available_24_7,
        a.focal_point,
        a.active,
    ) == (
        &b.name,
        &b.kind,
        &b.services,
        &b.regions,
        &b.intake_email,
        b.accepts_minors,
        b.available_24_7,
        b.focal_point,
        b.active,
    )
}

pub fn list_active(conn: &mut AnyConnection) -> QueryResult<Vec<OrganisationRow>> {
    organisations::table
        .filter(organisations::active.eq(true))
        .order(organisations::slug.asc())
        .select(OrganisationRow::as_select())
        .load(conn)
}

pub fn find_active(conn: &mut AnyConnection, slug: &str) -> QueryResult<Option<OrganisationRow>> {
    organisations::table
        .filter(organisations::slug.eq(slug))
        .filter(organisations::active.eq(true))
        .select(OrganisationRow::as_select())
        .first(conn)
        .optional()
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = organisation_capacity, treat_none_as_default_value = false)]
pub struct CapacityRow {
    pub organisation: String,
    pub service: String,
    pub places_free: i32,
    pub updated_by: String,
    pub updated_at: Instant,
}

/// Live capacity of every organisation, as routing reads it.
pub fn capacity(conn: &mut AnyConnection) -> QueryResult<Vec<CapacityRow>> {
    organisation_capacity::table.select(CapacityRow::as_select()).load(conn)
}

pub fn capacity_of(conn: &mut AnyConnection, organisation: &str) -> QueryResult<Vec<CapacityRow>> {
    organisation_capacity::table
        .filter(organisation_capacity::organisation.eq(organisation))
        .order(organisation_capacity::service.asc())
        .select(CapacityRow::as_select())
        .load(conn)
}

pub fn set_capacity(conn: &mut AnyConnection, row: &CapacityRow) -> QueryResult<()> {
    diesel::delete(
        organisation_capacity::table
            .filter(organisation_capacity::organisation.eq(&row.organisation))
            .filter(organisation_capacity::service.eq(&row.service)),
    )
    .execute(conn)?;
    diesel::insert_into(organisation_capacity::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

//! The people of an organisation who signed in to the pages: whom a referral can be
//! assigned to, by name.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::schema::staff_members;
use super::{AnyConnection, Instant, update_where};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = staff_members, treat_none_as_default_value = false)]
pub struct StaffRow {
    pub organisation: String,
    pub sub: String,
    pub display_name: String,
    /// Comma-separated role names.
    pub roles: String,
    pub last_seen_at: Instant,
}

/// Records a person at sign-in: their current name and roles.
pub fn upsert(conn: &mut AnyConnection, row: &StaffRow) -> QueryResult<()> {
    let updated = update_where(
        staff_members::table,
        row,
        staff_members::organisation
            .eq(&row.organisation)
            .and(staff_members::sub.eq(&row.sub)),
    )
    .execute(conn)?;
    if updated == 0 {
        match diesel::insert_into(staff_members::table).values(row).execute(conn) {
            // Signed in twice at once: the other sign-in wrote the same person.
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) | Ok(_) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

pub fn find(conn: &mut AnyConnection, organisation: &str, sub: &str) -> QueryResult<Option<StaffRow>> {
    staff_members::table
        .find((organisation, sub))
        .select(StaffRow::as_select())
        .first(conn)
        .optional()
}

/// Everyone of an organisation, by name.
pub fn of_organisation(conn: &mut AnyConnection, organisation: &str) -> QueryResult<Vec<StaffRow>> {
    staff_members::table
        .filter(staff_members::organisation.eq(organisation))
        .order((staff_members::display_name.asc(), staff_members::sub.asc()))
        .select(StaffRow::as_select())
        .load(conn)
}

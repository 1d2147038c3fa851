//! Case rows, their identifying details (a table of their own), identification decisions,
//! consents, statutory bases and anonymous notifications.

use chrono::NaiveDate;
use diesel::prelude::*;

use super::schema::{
    anonymous_notifications, case_identifying_details, cases, consents, identification_decisions, legal_bases,
};
use super::{AnyConnection, Id, Instant};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = cases, treat_none_as_null = true)]
pub struct CaseRow {
    pub id: Id,
    pub organisation: String,
    pub created_by: String,
    pub created_at: Instant,
    pub updated_at: Instant,
    pub version: i64,
    pub reporter_role: String,
    pub contact_channel: String,
    pub contact_date: NaiveDate,
    pub exploitation_sexual: bool,
    pub exploitation_criminal: bool,
    pub exploitation_labour: bool,
    pub exploitation_other: bool,
    pub age_at_contact: Option<i32>,
    pub age_uncertain: bool,
    pub presumed_minor: bool,
    pub gender: Option<String>,
    pub nationality: Option<String>,
    pub region: Option<String>,
    pub language: Option<String>,
    pub pseudonym: Option<String>,
    pub police_report_intention: Option<String>,
    pub identification_status: String,
    pub reasonable_grounds_on: Option<NaiveDate>,
    pub reflection_period_end: Option<NaiveDate>,
    pub last_incident_date: Option<NaiveDate>,
    /// JSON array of need codes (`domain::routing::Need`).
    pub needs: String,
    pub unaccompanied: bool,
    /// Closed cases are read-only; retention counts from here.
    pub closed_at: Option<Instant>,
    pub closed_reason: Option<String>,
    pub identifying_erased_at: Option<Instant>,
    pub free_text_erased_at: Option<Instant>,
    pub erasure_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = case_identifying_details, treat_none_as_null = true)]
/// Sealed values (see `crate::crypto`); `name_index` is the blind index of the name.
pub struct IdentifyingRow {
    pub case_id: Id,
    pub name: Option<String>,
    pub date_of_birth: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub name_index: Option<String>,
    pub updated_at: Instant,
    /// Which `domain::text::name_key` scheme `name_index` was computed with.
    pub name_index_scheme: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = identification_decisions)]
pub struct IdentificationDecisionRow {
    pub id: Id,
    pub case_id: Id,
    pub decision: String,
    pub basis: String,
    pub actor_sub: String,
    pub actor_org: String,
    pub decided_at: Instant,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = consents)]
pub struct ConsentRow {
    pub id: Id,
    pub case_id: Id,
    pub scope: String,
    pub organisation: String,
    pub given_by: String,
    pub method: String,
    pub information_language: String,
    pub recorded_by: String,
    pub recorded_at: Instant,
    pub withdrawn_at: Option<Instant>,
    pub withdrawn_by: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = legal_bases)]
pub struct LegalBasisRow {
    pub id: Id,
    pub case_id: Id,
    pub basis: String,
    pub justification: String,
    pub recorded_by: String,
    pub recorded_org: String,
    pub recorded_at: Instant,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = anonymous_notifications)]
pub struct AnonymousNotificationRow {
    pub id: Id,
    pub case_id: Id,
    pub from_organisation: String,
    pub focal_point: String,
    pub minor: bool,
    pub age_at_contact: Option<i32>,
    pub gender: Option<String>,
    pub nationality_group: String,
    pub exploitation_sexual: bool,
    pub exploitation_criminal: bool,
    pub exploitation_labour: bool,
    pub exploitation_other: bool,
    pub region: Option<String>,
    pub contact_date: NaiveDate,
    pub created_by: String,
    pub created_at: Instant,
}

pub fn insert(conn: &mut AnyConnection, row: &CaseRow) -> QueryResult<()> {
    diesel::insert_into(cases::table).values(row).execute(conn).map(|_| ())
}

pub fn find(conn: &mut AnyConnection, id: Id) -> QueryResult<Option<CaseRow>> {
    cases::table
        .find(id)
        .select(CaseRow::as_select())
        .first(conn)
        .optional()
}

/// Writes the row if its version is still `expected_version`; false when it was not.
pub fn update_versioned(conn: &mut AnyConnection, row: &CaseRow, expected_version: i64) -> QueryResult<bool> {
    let changed = diesel::update(
        cases::table
            .filter(cases::id.eq(row.id))
            .filter(cases::version.eq(expected_version)),
    )
    .set(row)
    .execute(conn)?;
    Ok(changed == 1)
}

/// Filters of the caller organisation's case list.
#[derive(Debug, Default, Clone)]
pub struct CaseFilter {
    pub identification_status: Option<String>,
    pub contact_from: Option<NaiveDate>,
    pub contact_to: Option<NaiveDate>,
    pub exploitation_form: Option<String>,
    /// Keyset cursor: only ids below this one (UUIDv7 ids are time-ordered).
    pub before: Option<Id>,
    pub limit: i64,
}

pub fn list_for_organisation(
    conn: &mut AnyConnection,
    organisation: &str,
    filter: &CaseFilter,
) -> QueryResult<Vec<CaseRow>> {
    let mut query = cases::table.filter(cases::organisation.eq(organisation)).into_boxed();
    if let Some(status) = &filter.identification_status {
        query = query.filter(cases::identification_status.eq(status.clone()));
    }
    if let Some(from) = filter.contact_from {
        query = query.filter(cases::contact_date.ge(from));
    }
    if let Some(to) = filter.contact_to {
        query = query.filter(cases::contact_date.le(to));
    }
    match filter.exploitation_form.as_deref() {
        Some("sexual") => query = query.filter(cases::exploitation_sexual.eq(true)),
        Some("criminal") => query = query.filter(cases::exploitation_criminal.eq(true)),
        Some("labour") => query = query.filter(cases::exploitation_labour.eq(true)),
        Some("other") => query = query.filter(cases::exploitation_other.eq(true)),
        _ => {}
    }
    if let Some(before) = filter.before {
        query = query.filter(cases::id.lt(before));
    }
    query
        .order(cases::id.desc())
        .limit(filter.limit)
        .select(CaseRow::as_select())
        .load(conn)
}

pub fn identifying_details(conn: &mut AnyConnection, case_id: Id) -> QueryResult<Option<IdentifyingRow>> {
    case_identifying_details::table
        .find(case_id)
        .select(IdentifyingRow::as_select())
        .first(conn)
        .optional()
}

/// Stores the details, or removes them when `row` is `None`.
pub fn replace_identifying_details(
    conn: &mut AnyConnection,
    case_id: Id,
    row: Option<&IdentifyingRow>,
) -> QueryResult<()> {
    diesel::delete(case_identifying_details::table.find(case_id)).execute(conn)?;
    if let Some(row) = row {
        diesel::insert_into(case_identifying_details::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

pub fn insert_identification_decision(conn: &mut AnyConnection, row: &IdentificationDecisionRow) -> QueryResult<()> {
    diesel::insert_into(identification_decisions::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn identification_decisions_for(
    conn: &mut AnyConnection,
    case_id: Id,
) -> QueryResult<Vec<IdentificationDecisionRow>> {
    identification_decisions::table
        .filter(identification_decisions::case_id.eq(case_id))
        .order((
            identification_decisions::decided_at.asc(),
            identification_decisions::id.asc(),
        ))
        .select(IdentificationDecisionRow::as_select())
        .load(conn)
}

pub fn insert_consent(conn: &mut AnyConnection, row: &ConsentRow) -> QueryResult<()> {
    diesel::insert_into(consents::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn consents_for(conn: &mut AnyConnection, case_id: Id) -> QueryResult<Vec<ConsentRow>> {
    consents::table
        .filter(consents::case_id.eq(case_id))
        .order(consents::id.asc())
        .select(ConsentRow::as_select())
        .load(conn)
}

/// Marks a consent withdrawn if it is not yet; false when it already was.
pub fn withdraw_consent(conn: &mut AnyConnection, id: Id, by: &str, at: Instant) -> QueryResult<bool> {
    let changed = diesel::update(
        consents::table
            .filter(consents::id.eq(id))
            .filter(consents::withdrawn_at.is_null()),
    )
    .set((consents::withdrawn_at.eq(Some(at)), consents::withdrawn_by.eq(Some(by))))
    .execute(conn)?;
    Ok(changed == 1)
}

pub fn insert_legal_basis(conn: &mut AnyConnection, row: &LegalBasisRow) -> QueryResult<()> {
    diesel::insert_into(legal_bases::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn legal_bases_for(conn: &mut AnyConnection, case_id: Id) -> QueryResult<Vec<LegalBasisRow>> {
    legal_bases::table
        .filter(legal_bases::case_id.eq(case_id))
        .order(legal_bases::id.asc())
        .select(LegalBasisRow::as_select())
        .load(conn)
}

pub fn insert_anonymous_notification(conn: &mut AnyConnection, row: &AnonymousNotificationRow) -> QueryResult<()> {
    diesel::insert_into(anonymous_notifications::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn anonymous_notification_for(
    conn: &mut AnyConnection,
    case_id: Id,
) -> QueryResult<Option<AnonymousNotificationRow>> {
    anonymous_notifications::table
        .filter(anonymous_notifications::case_id.eq(case_id))
        .select(AnonymousNotificationRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_anonymous_notification(conn: &mut AnyConnection, id: Id) -> QueryResult<Option<AnonymousNotificationRow>> {
    anonymous_notifications::table
        .find(id)
        .select(AnonymousNotificationRow::as_select())
        .first(conn)
        .optional()
}

pub fn anonymous_notifications_for_focal_point(
    conn: &mut AnyConnection,
    focal_point: &str,
    before: Option<Id>,
    limit: i64,
) -> QueryResult<Vec<AnonymousNotificationRow>> {
    let mut query = anonymous_notifications::table
        .filter(anonymous_notifications::focal_point.eq(focal_point))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(anonymous_notifications::id.lt(before));
    }
    query
        .order(anonymous_notifications::id.desc())
        .limit(limit)
        .select(AnonymousNotificationRow::as_select())
        .load(conn)
}

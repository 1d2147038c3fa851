//! Case rows, their identifying details (a table of their own), identification decisions,
//! consents, statutory bases and anonymous notifications.

use chrono::NaiveDate;
use diesel::prelude::*;

use super::schema::{
    anonymous_notifications, case_identifying_details, cases, consents, identification_decisions, legal_bases,
};
use super::{AnyConnection, Id, Instant, update_where};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = cases, treat_none_as_null = true, treat_none_as_default_value = false)]
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
#[diesel(table_name = case_identifying_details, treat_none_as_null = true, treat_none_as_default_value = false)]
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
#[diesel(table_name = identification_decisions, treat_none_as_default_value = false)]
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
#[diesel(table_name = consents, treat_none_as_default_value = false)]
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
#[diesel(table_name = legal_bases, treat_none_as_default_value = false)]
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
#[diesel(table_name = anonymous_notifications, treat_none_as_default_value = false)]
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
    let changed = update_where(
        cases::table,
        row,
        cases::id.eq(row.id).and(cases::version.eq(expected_version)),
    )
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
    /// Only cases treated as a child (`Some(true)`) or only the others (`Some(false)`).
    pub minor: Option<bool>,
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
    // `domain::case::treated_as_minor` in SQL: under 18 by the recorded age, or presumed a
    // child while the age is unknown or uncertain. Never NULL, so NOT is exact.
    const MINOR: &str = "((age_at_contact IS NOT NULL AND age_at_contact < 18) \
                         OR (presumed_minor AND (age_at_contact IS NULL OR age_uncertain)))";
    match filter.minor {
        Some(true) => query = query.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(MINOR)),
        Some(false) => query = query.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!("NOT {MINOR}"))),
        None => {}
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
    let changed = update_where(
        consents::table,
        (consents::withdrawn_at.eq(Some(at)), consents::withdrawn_by.eq(Some(by))),
        consents::id.eq(id).and(consents::withdrawn_at.is_null()),
    )
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

// ---------------------------------------------------------------------------
// Typed: rows converted to domain types once, here
// ---------------------------------------------------------------------------

use super::{DbError, RowError, code, code_opt};
use crate::domain::case::{Age, Case, CountryCode, ExploitationForm, ExploitationForms};
use crate::domain::consent::Consent;
use crate::domain::ids::{CaseId, ConsentId};
use crate::domain::text::Sealed;

/// The four stored flags as the set of forms.
pub fn forms_from_flags(sexual: bool, criminal: bool, labour: bool, other: bool) -> Vec<ExploitationForm> {
    [
        (sexual, ExploitationForm::Sexual),
        (criminal, ExploitationForm::Criminal),
        (labour, ExploitationForm::Labour),
        (other, ExploitationForm::Other),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, form)| form)
    .collect()
}

impl TryFrom<CaseRow> for Case {
    type Error = RowError;

    fn try_from(row: CaseRow) -> Result<Self, RowError> {
        const T: &str = "cases";
        let forms = forms_from_flags(
            row.exploitation_sexual,
            row.exploitation_criminal,
            row.exploitation_labour,
            row.exploitation_other,
        );
        Ok(Case {
            id: CaseId(row.id.0),
            reporter_role: code(T, "reporter_role", &row.reporter_role)?,
            contact_channel: code(T, "contact_channel", &row.contact_channel)?,
            forms: ExploitationForms::parse(forms).map_err(|_| RowError {
                table: T,
                column: "exploitation_*",
            })?,
            age_at_contact: row
                .age_at_contact
                .map(|a| Age::parse(i64::from(a)))
                .transpose()
                .map_err(|_| RowError {
                    table: T,
                    column: "age_at_contact",
                })?,
            gender: code_opt(T, "gender", row.gender.as_deref())?,
            nationality: row
                .nationality
                .as_deref()
                .map(CountryCode::parse)
                .transpose()
                .map_err(|_| RowError {
                    table: T,
                    column: "nationality",
                })?,
            police_report_intention: code_opt(T, "police_report_intention", row.police_report_intention.as_deref())?,
            identification_status: code(T, "identification_status", &row.identification_status)?,
            needs: serde_json::from_str(&row.needs).map_err(|_| RowError {
                table: T,
                column: "needs",
            })?,
            organisation: row.organisation,
            created_by: row.created_by,
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
            version: row.version,
            contact_date: row.contact_date,
            age_uncertain: row.age_uncertain,
            presumed_minor: row.presumed_minor,
            region: row.region,
            language: row.language,
            pseudonym: row.pseudonym.map(Sealed),
            reasonable_grounds_on: row.reasonable_grounds_on,
            reflection_period_end: row.reflection_period_end,
            last_incident_date: row.last_incident_date,
            unaccompanied: row.unaccompanied,
            closed_at: row.closed_at.map(|t| t.0),
            closed_reason: row.closed_reason,
            identifying_erased_at: row.identifying_erased_at.map(|t| t.0),
            free_text_erased_at: row.free_text_erased_at.map(|t| t.0),
            erasure_reason: row.erasure_reason,
        })
    }
}

impl From<&Case> for CaseRow {
    fn from(c: &Case) -> Self {
        CaseRow {
            id: Id(c.id.0),
            organisation: c.organisation.clone(),
            created_by: c.created_by.clone(),
            created_at: Instant(c.created_at),
            updated_at: Instant(c.updated_at),
            version: c.version,
            reporter_role: c.reporter_role.as_str().into(),
            contact_channel: c.contact_channel.as_str().into(),
            contact_date: c.contact_date,
            exploitation_sexual: c.forms.contains(ExploitationForm::Sexual),
            exploitation_criminal: c.forms.contains(ExploitationForm::Criminal),
            exploitation_labour: c.forms.contains(ExploitationForm::Labour),
            exploitation_other: c.forms.contains(ExploitationForm::Other),
            age_at_contact: c.age_at_contact.map(|a| i32::from(a.years())),
            age_uncertain: c.age_uncertain,
            presumed_minor: c.presumed_minor,
            gender: c.gender.map(|g| g.as_str().into()),
            nationality: c.nationality.map(|n| n.as_str().into()),
            region: c.region.clone(),
            language: c.language.clone(),
            pseudonym: c.pseudonym.as_ref().map(|p| p.0.clone()),
            police_report_intention: c.police_report_intention.map(|p| p.as_str().into()),
            identification_status: c.identification_status.as_str().into(),
            reasonable_grounds_on: c.reasonable_grounds_on,
            reflection_period_end: c.reflection_period_end,
            last_incident_date: c.last_incident_date,
            needs: serde_json::to_string(&c.needs).unwrap_or_else(|_| "[]".into()),
            unaccompanied: c.unaccompanied,
            closed_at: c.closed_at.map(Instant),
            closed_reason: c.closed_reason.clone(),
            identifying_erased_at: c.identifying_erased_at.map(Instant),
            free_text_erased_at: c.free_text_erased_at.map(Instant),
            erasure_reason: c.erasure_reason.clone(),
        }
    }
}

impl TryFrom<ConsentRow> for Consent {
    type Error = RowError;

    fn try_from(row: ConsentRow) -> Result<Self, RowError> {
        const T: &str = "consents";
        Ok(Consent {
            id: ConsentId(row.id.0),
            case_id: CaseId(row.case_id.0),
            scope: code(T, "scope", &row.scope)?,
            given_by: code(T, "given_by", &row.given_by)?,
            method: code(T, "method", &row.method)?,
            organisation: row.organisation,
            information_language: row.information_language,
            recorded_by: row.recorded_by,
            recorded_at: row.recorded_at.0,
            withdrawn_at: row.withdrawn_at.map(|t| t.0),
            withdrawn_by: row.withdrawn_by,
        })
    }
}

impl From<&Consent> for ConsentRow {
    fn from(c: &Consent) -> Self {
        ConsentRow {
            id: Id(c.id.0),
            case_id: Id(c.case_id.0),
            scope: c.scope.as_str().into(),
            organisation: c.organisation.clone(),
            given_by: c.given_by.as_str().into(),
            method: c.method.as_str().into(),
            information_language: c.information_language.clone(),
            recorded_by: c.recorded_by.clone(),
            recorded_at: Instant(c.recorded_at),
            withdrawn_at: c.withdrawn_at.map(Instant),
            withdrawn_by: c.withdrawn_by.clone(),
        }
    }
}

pub fn case(conn: &mut AnyConnection, id: CaseId) -> Result<Option<Case>, DbError> {
    Ok(find(conn, Id(id.0))?.map(Case::try_from).transpose()?)
}

/// Several cases in one query (a list's cases), in no particular order.
pub fn cases(conn: &mut AnyConnection, ids: &[CaseId]) -> Result<Vec<Case>, DbError> {
    let ids: Vec<Id> = ids.iter().map(|c| Id(c.0)).collect();
    let mut out = Vec::with_capacity(ids.len());
    // Bounded batches keep the statement within every backend's parameter limit.
    for batch in ids.chunks(500) {
        let rows: Vec<CaseRow> = cases::table
            .filter(cases::id.eq_any(batch))
            .select(CaseRow::as_select())
            .load(conn)?;
        for row in rows {
            out.push(Case::try_from(row)?);
        }
    }
    Ok(out)
}

pub fn create_case(conn: &mut AnyConnection, case: &Case) -> QueryResult<()> {
    insert(conn, &CaseRow::from(case))
}

/// Writes the case if it is still at `expected_version`; false when someone else changed it.
pub fn save_case(conn: &mut AnyConnection, case: &Case, expected_version: i64) -> QueryResult<bool> {
    update_versioned(conn, &CaseRow::from(case), expected_version)
}

pub fn case_page(conn: &mut AnyConnection, organisation: &str, filter: &CaseFilter) -> Result<Vec<Case>, DbError> {
    list_for_organisation(conn, organisation, filter)?
        .into_iter()
        .map(|r| Case::try_from(r).map_err(DbError::from))
        .collect()
}

pub fn consents_of(conn: &mut AnyConnection, case_id: CaseId) -> Result<Vec<Consent>, DbError> {
    consents_for(conn, Id(case_id.0))?
        .into_iter()
        .map(|r| Consent::try_from(r).map_err(DbError::from))
        .collect()
}

pub fn record_consent(conn: &mut AnyConnection, consent: &Consent) -> QueryResult<()> {
    insert_consent(conn, &ConsentRow::from(consent))
}

/// Sets (or clears) the blind index of a case's pseudonym; written with the pseudonym.
pub fn set_pseudonym_index(conn: &mut AnyConnection, case_id: CaseId, index: Option<&str>) -> QueryResult<()> {
    update_where(
        cases::table,
        cases::pseudonym_index.eq(index),
        cases::id.eq(Id(case_id.0)),
    )
    .execute(conn)?;
    Ok(())
}

/// The organisation's cases whose pseudonym has this blind index, newest first (a few).
pub fn cases_with_pseudonym_index(
    conn: &mut AnyConnection,
    organisation: &str,
    index: &str,
) -> QueryResult<Vec<CaseId>> {
    let ids: Vec<Id> = cases::table
        .filter(cases::organisation.eq(organisation))
        .filter(cases::pseudonym_index.eq(index))
        .select(cases::id)
        .order(cases::id.desc())
        .limit(5)
        .load(conn)?;
    Ok(ids.into_iter().map(|id| CaseId(id.0)).collect())
}

/// Gives pseudonyms stored before the index existed their index (at start-up).
pub fn index_pseudonyms(conn: &mut AnyConnection, keyring: &crate::crypto::Keyring) -> QueryResult<usize> {
    let mut changed = 0;
    loop {
        let rows: Vec<(Id, String, Option<String>)> = cases::table
            .filter(cases::pseudonym_index.is_null())
            .filter(cases::pseudonym.is_not_null())
            .filter(cases::free_text_erased_at.is_null())
            .select((cases::id, cases::organisation, cases::pseudonym))
            .order(cases::id.asc())
            .limit(500)
            .load(conn)?;
        if rows.is_empty() {
            return Ok(changed);
        }
        // A batch per transaction: one commit per case made this take an hour at 1 M cases.
        let written = super::write_transaction(conn, |conn| {
            let mut written = 0;
            for (id, organisation, sealed) in rows {
                let Some(sealed) = sealed else { continue };
                let index = match keyring.open("cases.pseudonym", id, &sealed) {
                    Ok(pseudonym) => keyring.pseudonym_index(&organisation, &pseudonym),
                    // Unreadable (a missing key): marked, so the loop ends; `nrm keys` reports it.
                    Err(_) => String::from("unreadable"),
                };
                written += diesel::update(cases::table.find(id))
                    .set(cases::pseudonym_index.eq(Some(index)))
                    .execute(conn)?;
            }
            Ok::<usize, diesel::result::Error>(written)
        })?;
        changed += written;
        if written == 0 {
            return Ok(changed);
        }
    }
}

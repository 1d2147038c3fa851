//! Referral rows, their transition history, three-way conversations and idempotency keys.

use diesel::prelude::*;

use super::schema::{idempotency_keys, referral_history, referrals, three_way_conversations};
use super::{AnyConnection, Id, Instant};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = referrals, treat_none_as_null = true)]
pub struct ReferralRow {
    pub id: Id,
    pub case_id: Id,
    pub from_organisation: String,
    pub to_organisation: String,
    pub services: String,
    pub urgency: String,
    pub note: Option<String>,
    pub state: String,
    pub version: i64,
    pub consent_id: Option<Id>,
    pub created_by: String,
    pub created_at: Instant,
    pub updated_at: Instant,
    pub submitted_at: Option<Instant>,
    pub acknowledged_at: Option<Instant>,
    pub decided_at: Option<Instant>,
    pub care_started_at: Option<Instant>,
    pub closed_at: Option<Instant>,
    pub decline_reason: Option<String>,
    pub outcome: Option<String>,
    /// Submitted against the directory's eligibility, with the caseworker's reason.
    pub eligibility_override: Option<String>,
}

impl ReferralRow {
    pub fn service_list(&self) -> Vec<String> {
        serde_json::from_str(&self.services).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = referral_history)]
pub struct HistoryRow {
    pub id: Id,
    pub referral_id: Id,
    pub seq: i32,
    pub action: String,
    pub from_state: String,
    pub to_state: String,
    pub actor_sub: String,
    pub actor_org: String,
    pub at: Instant,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    pub outcome_code: Option<String>,
    pub outcome: Option<String>,
}

pub fn insert(conn: &mut AnyConnection, row: &ReferralRow) -> QueryResult<()> {
    diesel::insert_into(referrals::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut AnyConnection, id: Id) -> QueryResult<Option<ReferralRow>> {
    referrals::table
        .find(id)
        .select(ReferralRow::as_select())
        .first(conn)
        .optional()
}

/// Writes the row only if nobody changed it since `expected_version` was read.
/// Under concurrency this is what makes exactly one of N identical transitions win.
pub fn update_versioned(conn: &mut AnyConnection, row: &ReferralRow, expected_version: i64) -> QueryResult<bool> {
    let changed = diesel::update(
        referrals::table
            .filter(referrals::id.eq(row.id))
            .filter(referrals::version.eq(expected_version)),
    )
    .set(row)
    .execute(conn)?;
    Ok(changed == 1)
}

pub fn for_case(conn: &mut AnyConnection, case_id: Id) -> QueryResult<Vec<ReferralRow>> {
    referrals::table
        .filter(referrals::case_id.eq(case_id))
        .order(referrals::id.asc())
        .select(ReferralRow::as_select())
        .load(conn)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Incoming,
    Outgoing,
}

pub fn list(
    conn: &mut AnyConnection,
    organisation: &str,
    direction: Direction,
    state: Option<&str>,
    before: Option<Id>,
    limit: i64,
) -> QueryResult<Vec<ReferralRow>> {
    let mut query = referrals::table.into_boxed();
    query = match direction {
        // Receivers see what was handed over, never drafts (nor drafts withdrawn as such).
        Direction::Incoming => query
            .filter(referrals::to_organisation.eq(organisation))
            .filter(referrals::submitted_at.is_not_null()),
        Direction::Outgoing => query.filter(referrals::from_organisation.eq(organisation)),
    };
    if let Some(state) = state {
        query = query.filter(referrals::state.eq(state.to_string()));
    }
    if let Some(before) = before {
        query = query.filter(referrals::id.lt(before));
    }
    query
        .order(referrals::id.desc())
        .limit(limit)
        .select(ReferralRow::as_select())
        .load(conn)
}

pub fn history(conn: &mut AnyConnection, referral_id: Id) -> QueryResult<Vec<HistoryRow>> {
    referral_history::table
        .filter(referral_history::referral_id.eq(referral_id))
        .order(referral_history::seq.asc())
        .select(HistoryRow::as_select())
        .load(conn)
}

pub fn insert_history(conn: &mut AnyConnection, row: &HistoryRow) -> QueryResult<()> {
    diesel::insert_into(referral_history::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn next_history_seq(conn: &mut AnyConnection, referral_id: Id) -> QueryResult<i32> {
    let max: Option<i32> = referral_history::table
        .filter(referral_history::referral_id.eq(referral_id))
        .select(diesel::dsl::max(referral_history::seq))
        .first(conn)?;
    Ok(max.unwrap_or(0) + 1)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = three_way_conversations, treat_none_as_null = true)]
pub struct ThreeWayRow {
    pub id: Id,
    pub case_id: Id,
    pub organisation: String,
    pub police_organisation: String,
    pub police_officer: Option<String>,
    pub state: String,
    pub version: i64,
    pub scheduled_for: Option<Instant>,
    pub held_at: Option<Instant>,
    pub care_evaluation: Option<String>,
    pub police_evaluation: Option<String>,
    pub reporting_intention: Option<String>,
    pub created_by: String,
    pub created_at: Instant,
    pub updated_at: Instant,
}

pub fn insert_three_way(conn: &mut AnyConnection, row: &ThreeWayRow) -> QueryResult<()> {
    diesel::insert_into(three_way_conversations::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find_three_way(conn: &mut AnyConnection, id: Id) -> QueryResult<Option<ThreeWayRow>> {
    three_way_conversations::table
        .find(id)
        .select(ThreeWayRow::as_select())
        .first(conn)
        .optional()
}

pub fn update_three_way(conn: &mut AnyConnection, row: &ThreeWayRow, expected_version: i64) -> QueryResult<bool> {
    let changed = diesel::update(
        three_way_conversations::table
            .filter(three_way_conversations::id.eq(row.id))
            .filter(three_way_conversations::version.eq(expected_version)),
    )
    .set(row)
    .execute(conn)?;
    Ok(changed == 1)
}

pub fn three_way_for_case(conn: &mut AnyConnection, case_id: Id) -> QueryResult<Vec<ThreeWayRow>> {
    three_way_conversations::table
        .filter(three_way_conversations::case_id.eq(case_id))
        .order(three_way_conversations::id.asc())
        .select(ThreeWayRow::as_select())
        .load(conn)
}

/// Conversations a police officer is invited to.
pub fn three_way_for_officer(
    conn: &mut AnyConnection,
    police_org: &str,
    officer: &str,
) -> QueryResult<Vec<ThreeWayRow>> {
    three_way_conversations::table
        .filter(three_way_conversations::police_organisation.eq(police_org))
        .filter(three_way_conversations::police_officer.eq(officer))
        .order(three_way_conversations::id.desc())
        .limit(200)
        .select(ThreeWayRow::as_select())
        .load(conn)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRow {
    pub organisation: String,
    pub actor_sub: String,
    pub key: String,
    pub route: String,
    pub request_hash: String,
    pub resource_id: Id,
    pub created_at: Instant,
}

pub fn find_idempotency(
    conn: &mut AnyConnection,
    organisation: &str,
    sub: &str,
    key: &str,
) -> QueryResult<Option<IdempotencyRow>> {
    idempotency_keys::table
        .find((organisation, sub, key))
        .select(IdempotencyRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert_idempotency(conn: &mut AnyConnection, row: &IdempotencyRow) -> QueryResult<()> {
    diesel::insert_into(idempotency_keys::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

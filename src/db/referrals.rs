//! Referral rows, their transition history, three-way conversations and idempotency keys.

use diesel::prelude::*;

use super::schema::{idempotency_keys, referral_history, referrals, three_way_conversations};
use super::{AnyConnection, Id, Instant, update_where};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = referrals, treat_none_as_null = true, treat_none_as_default_value = false)]
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
    /// Who at the receiving organisation took the referral on.
    pub assigned_to: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = referral_history, treat_none_as_default_value = false)]
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
    let changed = update_where(
        referrals::table,
        row,
        referrals::id.eq(row.id).and(referrals::version.eq(expected_version)),
    )
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

/// Whose referrals a list shows, by who took them on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignedFilter {
    To(String),
    Nobody,
}

pub fn list(
    conn: &mut AnyConnection,
    organisation: &str,
    direction: Direction,
    state: Option<&str>,
    assigned: Option<&AssignedFilter>,
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
    match assigned {
        Some(AssignedFilter::To(sub)) => query = query.filter(referrals::assigned_to.eq(sub.clone())),
        Some(AssignedFilter::Nobody) => query = query.filter(referrals::assigned_to.is_null()),
        None => {}
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

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = three_way_conversations, treat_none_as_null = true, treat_none_as_default_value = false)]
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
    let changed = update_where(
        three_way_conversations::table,
        row,
        three_way_conversations::id
            .eq(row.id)
            .and(three_way_conversations::version.eq(expected_version)),
    )
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
#[diesel(table_name = idempotency_keys, treat_none_as_default_value = false)]
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

pub fn forget_idempotency(conn: &mut AnyConnection, row: &IdempotencyRow) -> QueryResult<()> {
    diesel::delete(idempotency_keys::table.find((&row.organisation, &row.actor_sub, &row.key)))
        .execute(conn)
        .map(|_| ())
}

/// Removes the keys made before `before`; returns how many.
pub fn purge_idempotency(conn: &mut AnyConnection, before: Instant) -> QueryResult<usize> {
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(before))).execute(conn)
}

pub fn insert_idempotency(conn: &mut AnyConnection, row: &IdempotencyRow) -> QueryResult<()> {
    diesel::insert_into(idempotency_keys::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

// ---------------------------------------------------------------------------
// Typed: rows converted to domain types once, here
// ---------------------------------------------------------------------------

use super::{DbError, RowError, code, code_opt};
use crate::domain::ids::{CaseId, ConsentId, ConversationId, ReferralId};
use crate::domain::referral::{HistoryEntry, Referral};
use crate::domain::text::Sealed;
use crate::domain::three_way::Conversation;

fn sealed(text: Option<String>) -> Option<Sealed> {
    text.map(Sealed)
}

fn unsealed(text: &Option<Sealed>) -> Option<String> {
    text.as_ref().map(|s| s.0.clone())
}

impl TryFrom<ReferralRow> for Referral {
    type Error = RowError;

    fn try_from(row: ReferralRow) -> Result<Self, RowError> {
        const T: &str = "referrals";
        Ok(Referral {
            id: ReferralId(row.id.0),
            case_id: CaseId(row.case_id.0),
            services: serde_json::from_str(&row.services).map_err(|_| RowError {
                table: T,
                column: "services",
            })?,
            urgency: code(T, "urgency", &row.urgency)?,
            state: code(T, "state", &row.state)?,
            decline_reason: code_opt(T, "decline_reason", row.decline_reason.as_deref())?,
            outcome: code_opt(T, "outcome", row.outcome.as_deref())?,
            from_organisation: row.from_organisation,
            to_organisation: row.to_organisation,
            note: sealed(row.note),
            version: row.version,
            consent_id: row.consent_id.map(|c| ConsentId(c.0)),
            created_by: row.created_by,
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
            submitted_at: row.submitted_at.map(|t| t.0),
            acknowledged_at: row.acknowledged_at.map(|t| t.0),
            decided_at: row.decided_at.map(|t| t.0),
            care_started_at: row.care_started_at.map(|t| t.0),
            closed_at: row.closed_at.map(|t| t.0),
            eligibility_override: sealed(row.eligibility_override),
            assigned_to: row.assigned_to,
        })
    }
}

impl From<&Referral> for ReferralRow {
    fn from(r: &Referral) -> Self {
        ReferralRow {
            id: Id(r.id.0),
            case_id: Id(r.case_id.0),
            from_organisation: r.from_organisation.clone(),
            to_organisation: r.to_organisation.clone(),
            services: serde_json::to_string(&r.services).unwrap_or_else(|_| "[]".into()),
            urgency: r.urgency.as_str().into(),
            note: unsealed(&r.note),
            state: r.state.as_str().into(),
            version: r.version,
            consent_id: r.consent_id.map(|c| Id(c.0)),
            created_by: r.created_by.clone(),
            created_at: Instant(r.created_at),
            updated_at: Instant(r.updated_at),
            submitted_at: r.submitted_at.map(Instant),
            acknowledged_at: r.acknowledged_at.map(Instant),
            decided_at: r.decided_at.map(Instant),
            care_started_at: r.care_started_at.map(Instant),
            closed_at: r.closed_at.map(Instant),
            decline_reason: r.decline_reason.map(|d| d.as_str().into()),
            outcome: r.outcome.map(|o| o.as_str().into()),
            eligibility_override: unsealed(&r.eligibility_override),
            assigned_to: r.assigned_to.clone(),
        }
    }
}

impl TryFrom<HistoryRow> for HistoryEntry {
    type Error = RowError;

    fn try_from(row: HistoryRow) -> Result<Self, RowError> {
        const T: &str = "referral_history";
        Ok(HistoryEntry {
            id: row.id.0,
            referral_id: ReferralId(row.referral_id.0),
            seq: row.seq,
            action: code(T, "action", &row.action)?,
            from: code(T, "from_state", &row.from_state)?,
            to: code(T, "to_state", &row.to_state)?,
            actor_sub: row.actor_sub,
            actor_org: row.actor_org,
            at: row.at.0,
            reason_code: code_opt(T, "reason_code", row.reason_code.as_deref())?,
            reason: sealed(row.reason),
            outcome_code: code_opt(T, "outcome_code", row.outcome_code.as_deref())?,
            outcome: sealed(row.outcome),
        })
    }
}

impl From<&HistoryEntry> for HistoryRow {
    fn from(h: &HistoryEntry) -> Self {
        HistoryRow {
            id: Id(h.id),
            referral_id: Id(h.referral_id.0),
            seq: h.seq,
            action: h.action.as_str().into(),
            from_state: h.from.as_str().into(),
            to_state: h.to.as_str().into(),
            actor_sub: h.actor_sub.clone(),
            actor_org: h.actor_org.clone(),
            at: Instant(h.at),
            reason_code: h.reason_code.map(|r| r.as_str().into()),
            reason: unsealed(&h.reason),
            outcome_code: h.outcome_code.map(|o| o.as_str().into()),
            outcome: unsealed(&h.outcome),
        }
    }
}

impl TryFrom<ThreeWayRow> for Conversation {
    type Error = RowError;

    fn try_from(row: ThreeWayRow) -> Result<Self, RowError> {
        const T: &str = "three_way_conversations";
        Ok(Conversation {
            id: ConversationId(row.id.0),
            case_id: CaseId(row.case_id.0),
            state: code(T, "state", &row.state)?,
            reporting_intention: code_opt(T, "reporting_intention", row.reporting_intention.as_deref())?,
            organisation: row.organisation,
            police_organisation: row.police_organisation,
            police_officer: row.police_officer,
            version: row.version,
            scheduled_for: row.scheduled_for.map(|t| t.0),
            held_at: row.held_at.map(|t| t.0),
            care_evaluation: sealed(row.care_evaluation),
            police_evaluation: sealed(row.police_evaluation),
            created_by: row.created_by,
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
        })
    }
}

impl From<&Conversation> for ThreeWayRow {
    fn from(c: &Conversation) -> Self {
        ThreeWayRow {
            id: Id(c.id.0),
            case_id: Id(c.case_id.0),
            organisation: c.organisation.clone(),
            police_organisation: c.police_organisation.clone(),
            police_officer: c.police_officer.clone(),
            state: c.state.as_str().into(),
            version: c.version,
            scheduled_for: c.scheduled_for.map(Instant),
            held_at: c.held_at.map(Instant),
            care_evaluation: unsealed(&c.care_evaluation),
            police_evaluation: unsealed(&c.police_evaluation),
            reporting_intention: c.reporting_intention.map(|r| r.as_str().into()),
            created_by: c.created_by.clone(),
            created_at: Instant(c.created_at),
            updated_at: Instant(c.updated_at),
        }
    }
}

fn typed<R, T: TryFrom<R, Error = RowError>>(rows: Vec<R>) -> Result<Vec<T>, DbError> {
    rows.into_iter()
        .map(|r| T::try_from(r).map_err(DbError::from))
        .collect()
}

pub fn referral(conn: &mut AnyConnection, id: ReferralId) -> Result<Option<Referral>, DbError> {
    Ok(find(conn, Id(id.0))?.map(Referral::try_from).transpose()?)
}

pub fn referrals_of(conn: &mut AnyConnection, case_id: CaseId) -> Result<Vec<Referral>, DbError> {
    typed(for_case(conn, Id(case_id.0))?)
}

pub fn referral_page(
    conn: &mut AnyConnection,
    organisation: &str,
    direction: Direction,
    state: Option<crate::domain::referral::ReferralState>,
    assigned: Option<&AssignedFilter>,
    before: Option<ReferralId>,
    limit: i64,
) -> Result<Vec<Referral>, DbError> {
    typed(list(
        conn,
        organisation,
        direction,
        state.map(|s| s.as_str()),
        assigned,
        before.map(|b| Id(b.0)),
        limit,
    )?)
}

/// The referrals `organisation` may read, for the FHIR task search: handed over to it or
/// sent by it; with `owner`, only those its receiver is (`owner` = the caller: incoming).
pub fn task_page(
    conn: &mut AnyConnection,
    organisation: &str,
    owner: Option<&str>,
    state: Option<crate::domain::referral::ReferralState>,
    before: Option<ReferralId>,
    limit: i64,
) -> Result<Vec<Referral>, DbError> {
    let org = organisation.to_string();
    let mut query = referrals::table.into_boxed();
    let incoming = referrals::to_organisation
        .eq(org.clone())
        .and(referrals::submitted_at.is_not_null());
    query = match owner {
        Some(owner) if owner == organisation => query.filter(incoming),
        Some(owner) => query
            .filter(referrals::from_organisation.eq(org))
            .filter(referrals::to_organisation.eq(owner.to_string())),
        None => query.filter(incoming.or(referrals::from_organisation.eq(org))),
    };
    if let Some(state) = state {
        query = query.filter(referrals::state.eq(state.as_str()));
    }
    if let Some(before) = before {
        query = query.filter(referrals::id.lt(Id(before.0)));
    }
    let rows: Vec<ReferralRow> = query
        .order(referrals::id.desc())
        .limit(limit)
        .select(ReferralRow::as_select())
        .load(conn)?;
    typed(rows)
}

/// Every organisation's referrals submitted in `[from, to)`, oldest first (the HTCDS export).
pub fn submitted_between(conn: &mut AnyConnection, from: Instant, to: Instant) -> Result<Vec<Referral>, DbError> {
    let rows: Vec<ReferralRow> = referrals::table
        .filter(referrals::submitted_at.ge(from))
        .filter(referrals::submitted_at.lt(to))
        .order((referrals::submitted_at.asc(), referrals::id.asc()))
        .select(ReferralRow::as_select())
        .load(conn)?;
    typed(rows)
}

/// The cases opened in `[from, to)` that were never handed over to anyone.
pub fn cases_never_referred(conn: &mut AnyConnection, from: Instant, to: Instant) -> QueryResult<Vec<CaseId>> {
    use super::schema::cases;
    let handed_over = referrals::table
        .filter(referrals::case_id.eq(cases::id))
        .filter(referrals::submitted_at.is_not_null());
    let ids: Vec<Id> = cases::table
        .filter(cases::created_at.ge(from))
        .filter(cases::created_at.lt(to))
        .filter(diesel::dsl::not(diesel::dsl::exists(handed_over)))
        .order(cases::created_at.asc())
        .select(cases::id)
        .load(conn)?;
    Ok(ids.into_iter().map(|id| CaseId(id.0)).collect())
}

pub fn create_referral(conn: &mut AnyConnection, referral: &Referral) -> QueryResult<()> {
    insert(conn, &ReferralRow::from(referral))
}

/// Writes the referral if it is still at `expected_version`; false when someone else moved it.
pub fn save_referral(conn: &mut AnyConnection, referral: &Referral, expected_version: i64) -> QueryResult<bool> {
    update_versioned(conn, &ReferralRow::from(referral), expected_version)
}

/// The histories of several referrals (a page's) in one query per 500, each in order.
pub fn histories_of(
    conn: &mut AnyConnection,
    ids: &[ReferralId],
) -> Result<std::collections::HashMap<ReferralId, Vec<HistoryEntry>>, DbError> {
    let mut out: std::collections::HashMap<ReferralId, Vec<HistoryEntry>> = Default::default();
    let ids: Vec<Id> = ids.iter().map(|r| Id(r.0)).collect();
    for batch in ids.chunks(500) {
        let rows: Vec<HistoryRow> = referral_history::table
            .filter(referral_history::referral_id.eq_any(batch))
            .order((referral_history::referral_id.asc(), referral_history::seq.asc()))
            .select(HistoryRow::as_select())
            .load(conn)?;
        for row in rows {
            let referral = ReferralId(row.referral_id.0);
            out.entry(referral).or_default().push(HistoryEntry::try_from(row)?);
        }
    }
    Ok(out)
}

/// A referral with its case and its history in order, in one query: what a transition
/// decides on and answers with, and what a referral's view shows. The history is as current
/// as the referral's version: every entry is written with a versioned update of its referral,
/// so a transition whose update of this version succeeds knows the history it read is whole.
pub fn referral_in_full(
    conn: &mut AnyConnection,
    id: ReferralId,
) -> Result<Option<(Referral, crate::domain::case::Case, Vec<HistoryEntry>)>, DbError> {
    use super::cases::CaseRow;
    use super::schema::cases;
    let rows: Vec<(ReferralRow, CaseRow, Option<HistoryRow>)> = referrals::table
        .inner_join(cases::table)
        .left_join(referral_history::table)
        .filter(referrals::id.eq(Id(id.0)))
        .order(referral_history::seq.asc())
        .select((
            ReferralRow::as_select(),
            CaseRow::as_select(),
            Option::<HistoryRow>::as_select(),
        ))
        .load(conn)?;
    let mut rows = rows.into_iter();
    let Some((referral, case, first)) = rows.next() else {
        return Ok(None);
    };
    let history = first
        .into_iter()
        .chain(rows.filter_map(|(_, _, entry)| entry))
        .map(HistoryEntry::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((
        Referral::try_from(referral)?,
        crate::domain::case::Case::try_from(case)?,
        history,
    )))
}

/// One referral's history, in order.
pub fn history_of(conn: &mut AnyConnection, id: ReferralId) -> Result<Vec<HistoryEntry>, DbError> {
    referral_history::table
        .filter(referral_history::referral_id.eq(Id(id.0)))
        .order(referral_history::seq.asc())
        .select(HistoryRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|row| HistoryEntry::try_from(row).map_err(DbError::from))
        .collect()
}

pub fn add_history(conn: &mut AnyConnection, entry: &HistoryEntry) -> QueryResult<()> {
    insert_history(conn, &HistoryRow::from(entry))
}

pub fn conversation(conn: &mut AnyConnection, id: ConversationId) -> Result<Option<Conversation>, DbError> {
    Ok(find_three_way(conn, Id(id.0))?
        .map(Conversation::try_from)
        .transpose()?)
}

pub fn conversations_of(conn: &mut AnyConnection, case_id: CaseId) -> Result<Vec<Conversation>, DbError> {
    typed(three_way_for_case(conn, Id(case_id.0))?)
}

pub fn invitations(conn: &mut AnyConnection, police_org: &str, officer: &str) -> Result<Vec<Conversation>, DbError> {
    typed(three_way_for_officer(conn, police_org, officer)?)
}

pub fn create_conversation(conn: &mut AnyConnection, conversation: &Conversation) -> QueryResult<()> {
    insert_three_way(conn, &ThreeWayRow::from(conversation))
}

pub fn save_conversation(
    conn: &mut AnyConnection,
    conversation: &Conversation,
    expected_version: i64,
) -> QueryResult<bool> {
    update_three_way(conn, &ThreeWayRow::from(conversation), expected_version)
}

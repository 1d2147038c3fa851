//! Personal data over its lifetime: the disclosure register, erasure (by retention or on
//! request) and re-encryption under a new key.

use diesel::prelude::*;

use super::schema::{
    case_identifying_details, cases, disclosures, identification_decisions, legal_bases, referral_history, referrals,
    three_way_conversations,
};
use super::{AnyConnection, Id, Instant};
use crate::crypto::Keyring;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = disclosures, treat_none_as_default_value = false)]
pub struct DisclosureRow {
    pub id: Id,
    pub case_id: Id,
    pub organisation: String,
    pub actor_sub: String,
    pub at: Instant,
    pub basis_type: String,
    pub basis_ref: String,
}

pub fn record_disclosure(conn: &mut AnyConnection, row: &DisclosureRow) -> QueryResult<()> {
    diesel::insert_into(disclosures::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn disclosures_for(conn: &mut AnyConnection, case_id: Id) -> QueryResult<Vec<DisclosureRow>> {
    disclosures::table
        .filter(disclosures::case_id.eq(case_id))
        .order(disclosures::id.asc())
        .select(DisclosureRow::as_select())
        .load(conn)
}

/// Removes the identifying details of a case.
///
/// Returns whether this call is the first to erase them: the marker is set only where it is
/// still empty, and on PostgreSQL a concurrent erasure waits for the row and then finds it set.
pub fn erase_identifying(conn: &mut AnyConnection, case_id: Id, now: Instant) -> QueryResult<bool> {
    let first = diesel::update(
        cases::table
            .find(case_id)
            .filter(cases::identifying_erased_at.is_null()),
    )
    .set(cases::identifying_erased_at.eq(Some(now)))
    .execute(conn)?
        > 0;
    diesel::delete(case_identifying_details::table.find(case_id)).execute(conn)?;
    Ok(first)
}

/// Removes the pseudonym and every free text that may name the person: notes, reasons,
/// outcomes, evaluations, identification bases, justifications. Codes and dates stay, so
/// statistics and the audit trail are unchanged.
///
/// Returns whether this call is the first to erase them, as `erase_identifying`.
pub fn erase_free_text(conn: &mut AnyConnection, case_id: Id, now: Instant) -> QueryResult<bool> {
    let first = diesel::update(cases::table.find(case_id).filter(cases::free_text_erased_at.is_null()))
        .set(cases::free_text_erased_at.eq(Some(now)))
        .execute(conn)?
        > 0;
    diesel::update(cases::table.find(case_id))
        .set((
            cases::pseudonym.eq(None::<String>),
            cases::pseudonym_index.eq(None::<String>),
        ))
        .execute(conn)?;
    diesel::update(identification_decisions::table.filter(identification_decisions::case_id.eq(case_id)))
        .set(identification_decisions::basis.eq(""))
        .execute(conn)?;
    diesel::update(legal_bases::table.filter(legal_bases::case_id.eq(case_id)))
        .set(legal_bases::justification.eq(""))
        .execute(conn)?;
    let referral_ids: Vec<Id> = referrals::table
        .filter(referrals::case_id.eq(case_id))
        .select(referrals::id)
        .load(conn)?;
    diesel::update(referrals::table.filter(referrals::case_id.eq(case_id)))
        .set(referrals::note.eq(None::<String>))
        .execute(conn)?;
    // The override's reason text goes; that there was an override stays (oversight counts
    // it), and a referral without one does not gain one.
    diesel::update(
        referrals::table
            .filter(referrals::case_id.eq(case_id))
            .filter(referrals::eligibility_override.is_not_null()),
    )
    .set(referrals::eligibility_override.eq(Some("")))
    .execute(conn)?;
    diesel::update(referral_history::table.filter(referral_history::referral_id.eq_any(&referral_ids)))
        .set((
            referral_history::reason.eq(None::<String>),
            referral_history::outcome.eq(None::<String>),
        ))
        .execute(conn)?;
    diesel::update(three_way_conversations::table.filter(three_way_conversations::case_id.eq(case_id)))
        .set((
            three_way_conversations::care_evaluation.eq(None::<String>),
            three_way_conversations::police_evaluation.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(first)
}

/// A closed case: (id, closed at, identifying details erased at, free text erased at).
pub type RetentionCandidate = (Id, Option<Instant>, Option<Instant>, Option<Instant>);

/// Closed cases with personal data still to erase at `identifying_before` /
/// `free_text_before` (closure instants older than those are due).
pub fn retention_due(
    conn: &mut AnyConnection,
    identifying_before: Instant,
    free_text_before: Instant,
    limit: i64,
) -> QueryResult<Vec<RetentionCandidate>> {
    cases::table
        .filter(cases::closed_at.is_not_null())
        .filter(
            cases::closed_at
                .lt(identifying_before)
                .and(cases::identifying_erased_at.is_null())
                .or(cases::closed_at
                    .lt(free_text_before)
                    .and(cases::free_text_erased_at.is_null())),
        )
        .order(cases::closed_at.asc())
        .limit(limit)
        .select((
            cases::id,
            cases::closed_at,
            cases::identifying_erased_at,
            cases::free_text_erased_at,
        ))
        .load(conn)
}

/// Re-seals up to `limit` values of one column that are not under the current key.
/// Returns how many were re-sealed; call until it returns 0 (resumable at any point).
pub fn rotate_batch(
    conn: &mut AnyConnection,
    keyring: &Keyring,
    column: SealedColumn,
    limit: usize,
) -> QueryResult<usize> {
    let rows = column.load(conn)?;
    let mut done = 0;
    for (record, value) in rows
        .into_iter()
        .filter(|(_, v)| !v.is_empty() && !keyring.is_current(v))
    {
        if done >= limit {
            break;
        }
        let Ok(plain) = keyring.open(column.field(), record, &value) else {
            // Unreadable with the configured keys: leave it, the operator must add the key.
            continue;
        };
        let sealed = keyring.seal(column.field(), record, &plain);
        if column.replace(conn, record, &value, &sealed)? {
            done += 1;
        }
    }
    Ok(done)
}

/// Every column that holds sealed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedColumn {
    Pseudonym,
    Name,
    DateOfBirth,
    Phone,
    Email,
    Address,
    IdentificationBasis,
    Justification,
    Note,
    Override,
    Reason,
    Outcome,
    CareEvaluation,
    PoliceEvaluation,
}

impl SealedColumn {
    pub const ALL: [SealedColumn; 14] = [
        Self::Pseudonym,
        Self::Name,
        Self::DateOfBirth,
        Self::Phone,
        Self::Email,
        Self::Address,
        Self::IdentificationBasis,
        Self::Justification,
        Self::Note,
        Self::Override,
        Self::Reason,
        Self::Outcome,
        Self::CareEvaluation,
        Self::PoliceEvaluation,
    ];

    /// The name bound into each value's associated data.
    pub fn field(self) -> &'static str {
        match self {
            Self::Pseudonym => "cases.pseudonym",
            Self::Name => "case_identifying_details.name",
            Self::DateOfBirth => "case_identifying_details.date_of_birth",
            Self::Phone => "case_identifying_details.phone",
            Self::Email => "case_identifying_details.email",
            Self::Address => "case_identifying_details.address",
            Self::IdentificationBasis => "identification_decisions.basis",
            Self::Justification => "legal_bases.justification",
            Self::Note => "referrals.note",
            Self::Override => "referrals.eligibility_override",
            Self::Reason => "referral_history.reason",
            Self::Outcome => "referral_history.outcome",
            Self::CareEvaluation => "three_way_conversations.care_evaluation",
            Self::PoliceEvaluation => "three_way_conversations.police_evaluation",
        }
    }

    fn load(self, conn: &mut AnyConnection) -> QueryResult<Vec<(Id, String)>> {
        use diesel::dsl::not;
        let pairs: Vec<(Id, Option<String>)> = match self {
            Self::Pseudonym => cases::table
                .select((cases::id, cases::pseudonym))
                .filter(cases::pseudonym.is_not_null())
                .load(conn)?,
            Self::Name => case_identifying_details::table
                .select((case_identifying_details::case_id, case_identifying_details::name))
                .load(conn)?,
            Self::DateOfBirth => case_identifying_details::table
                .select((
                    case_identifying_details::case_id,
                    case_identifying_details::date_of_birth,
                ))
                .load(conn)?,
            Self::Phone => case_identifying_details::table
                .select((case_identifying_details::case_id, case_identifying_details::phone))
                .load(conn)?,
            Self::Email => case_identifying_details::table
                .select((case_identifying_details::case_id, case_identifying_details::email))
                .load(conn)?,
            Self::Address => case_identifying_details::table
                .select((case_identifying_details::case_id, case_identifying_details::address))
                .load(conn)?,
            Self::IdentificationBasis => identification_decisions::table
                .filter(not(identification_decisions::basis.eq("")))
                .select((identification_decisions::id, identification_decisions::basis.nullable()))
                .load(conn)?,
            Self::Justification => legal_bases::table
                .filter(not(legal_bases::justification.eq("")))
                .select((legal_bases::id, legal_bases::justification.nullable()))
                .load(conn)?,
            Self::Note => referrals::table
                .select((referrals::id, referrals::note))
                .filter(referrals::note.is_not_null())
                .load(conn)?,
            Self::Override => referrals::table
                .select((referrals::id, referrals::eligibility_override))
                .filter(referrals::eligibility_override.is_not_null())
                .load(conn)?,
            Self::Reason => referral_history::table
                .select((referral_history::id, referral_history::reason))
                .filter(referral_history::reason.is_not_null())
                .load(conn)?,
            Self::Outcome => referral_history::table
                .select((referral_history::id, referral_history::outcome))
                .filter(referral_history::outcome.is_not_null())
                .load(conn)?,
            Self::CareEvaluation => three_way_conversations::table
                .select((three_way_conversations::id, three_way_conversations::care_evaluation))
                .filter(three_way_conversations::care_evaluation.is_not_null())
                .load(conn)?,
            Self::PoliceEvaluation => three_way_conversations::table
                .select((three_way_conversations::id, three_way_conversations::police_evaluation))
                .filter(three_way_conversations::police_evaluation.is_not_null())
                .load(conn)?,
        };
        Ok(pairs.into_iter().filter_map(|(id, v)| v.map(|v| (id, v))).collect())
    }

    /// Replaces `old` by `new` unless the value changed meanwhile (the service keeps running).
    fn replace(self, conn: &mut AnyConnection, record: Id, old: &str, new: &str) -> QueryResult<bool> {
        macro_rules! swap {
            ($table:ident, $key:ident, $column:ident) => {
                diesel::update(
                    $table::table
                        .filter($table::$key.eq(record))
                        .filter($table::$column.eq(old)),
                )
                .set($table::$column.eq(new))
                .execute(conn)?
            };
        }
        let changed = match self {
            Self::Pseudonym => swap!(cases, id, pseudonym),
            Self::Name => swap!(case_identifying_details, case_id, name),
            Self::DateOfBirth => swap!(case_identifying_details, case_id, date_of_birth),
            Self::Phone => swap!(case_identifying_details, case_id, phone),
            Self::Email => swap!(case_identifying_details, case_id, email),
            Self::Address => swap!(case_identifying_details, case_id, address),
            Self::IdentificationBasis => swap!(identification_decisions, id, basis),
            Self::Justification => swap!(legal_bases, id, justification),
            Self::Note => swap!(referrals, id, note),
            Self::Override => swap!(referrals, id, eligibility_override),
            Self::Reason => swap!(referral_history, id, reason),
            Self::Outcome => swap!(referral_history, id, outcome),
            Self::CareEvaluation => swap!(three_way_conversations, id, care_evaluation),
            Self::PoliceEvaluation => swap!(three_way_conversations, id, police_evaluation),
        };
        Ok(changed == 1)
    }
}

/// Cases of `organisation` whose name has this blind index.
pub fn cases_by_name_index(conn: &mut AnyConnection, organisation: &str, index: &str) -> QueryResult<Vec<Id>> {
    case_identifying_details::table
        .inner_join(cases::table)
        .filter(case_identifying_details::name_index.eq(index))
        .filter(cases::organisation.eq(organisation))
        .select(cases::id)
        .order(cases::id.desc())
        .limit(100)
        .load(conn)
}

/// Brings every blind index of a name written under an older normalisation scheme to the
/// current one (`domain::text::name_key`), in batches of 500; returns how many rows changed.
/// Resumable at any point. A name that cannot be opened with the configured keys keeps its
/// old index (and a warning is logged): add the key it was sealed under and run it again.
pub fn reindex_names(conn: &mut AnyConnection, keyring: &Keyring) -> QueryResult<usize> {
    use crate::domain::text::NAME_KEY_SCHEME;
    let mut changed = 0;
    let mut after: Option<Id> = None;
    loop {
        let mut query = case_identifying_details::table
            .filter(case_identifying_details::name_index_scheme.lt(NAME_KEY_SCHEME))
            .select((case_identifying_details::case_id, case_identifying_details::name))
            .order(case_identifying_details::case_id.asc())
            .limit(500)
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(case_identifying_details::case_id.gt(after));
        }
        let rows: Vec<(Id, Option<String>)> = query.load(conn)?;
        let Some((last, _)) = rows.last() else {
            return Ok(changed);
        };
        after = Some(*last);
        for (case_id, sealed) in rows {
            let index = match sealed.as_deref() {
                None => None,
                Some(sealed) => match keyring.open(SealedColumn::Name.field(), case_id, sealed) {
                    Ok(name) => Some(keyring.blind_index(&name)),
                    Err(_) => {
                        tracing::warn!(case_id = %case_id.0, "a name could not be opened to re-index it: check [crypto] keys");
                        continue;
                    }
                },
            };
            changed += diesel::update(case_identifying_details::table.find(case_id))
                .set((
                    case_identifying_details::name_index.eq(index),
                    case_identifying_details::name_index_scheme.eq(NAME_KEY_SCHEME),
                ))
                .execute(conn)?;
        }
    }
}

/// Marks a case erased on request, with the reason: from now on it is read-only.
pub fn mark_erased(conn: &mut AnyConnection, case_id: Id, reason: &str) -> QueryResult<()> {
    diesel::update(cases::table.find(case_id))
        .set(cases::erasure_reason.eq(Some(reason)))
        .execute(conn)
        .map(|_| ())
}

//! The person's data over its lifetime: the disclosure register, subject access (export),
//! closure, erasure on request, and search by name through the blind index.

use serde::Serialize;
use utoipa::ToSchema;

use super::access::{case_for, writable};
use super::anonymous_notifications::{AnonymousNotificationView, notification_view};
use super::cases::{CaseBundle, CaseView, list_view};
use super::consents::{ConsentView, consent_view};
use super::referrals::{ReferralView, render_all};
use super::three_way::ThreeWayView;
use super::{AppError, AppResult, Ctx};
use crate::db::Id;
use crate::db::cases as case_rows;
use crate::db::privacy::{self as privacy_rows, DisclosureRow};
use crate::db::referrals as referral_rows;
use crate::domain::access::{self, CaseAction};
use crate::domain::case::text_enum;
use crate::domain::ids::CaseId;
use crate::domain::text::Text;

text_enum! {
    /// Why a case is closed.
    pub enum ClosureReason {
        SupportCompleted = "support_completed",
        ReferredElsewhere = "referred_elsewhere",
        LostContact = "lost_contact",
        NoIndicationOfTrafficking = "no_indication_of_trafficking",
        Other = "other",
    }
}

text_enum! {
    /// Why personal data is erased before its retention period ends.
    pub enum ErasureReason {
        /// The person asked (GDPR Art. 17).
        DataSubjectRequest = "data_subject_request",
        /// The data should not have been recorded.
        UnlawfullyProcessed = "unlawfully_processed",
        /// The person's safety requires it.
        SafetyRisk = "safety_risk",
        Other = "other",
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DisclosureView {
    pub id: uuid::Uuid,
    /// The organisation whose user saw the identifying details.
    pub organisation: String,
    pub actor_sub: String,
    pub at: chrono::DateTime<chrono::Utc>,
    /// `consent` or `statutory`.
    pub basis_type: String,
    /// The consent id, or the statutory basis.
    pub basis_ref: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DisclosureList {
    pub items: Vec<DisclosureView>,
}

fn disclosure_view(row: DisclosureRow) -> DisclosureView {
    DisclosureView {
        id: row.id.0,
        organisation: row.organisation,
        actor_sub: row.actor_sub,
        at: row.at.0,
        basis_type: row.basis_type,
        basis_ref: row.basis_ref,
    }
}

/// Who outside the owning organisation saw the identifying details, when, and on which
/// basis (owning organisation), to answer the person or the data protection officer.
#[tracing::instrument(skip_all, fields(case = %id))]
pub fn disclosures(ctx: &mut Ctx, id: CaseId) -> AppResult<DisclosureList> {
    case_for(ctx, id, CaseAction::ReadDisclosures)?;
    Ok(DisclosureList {
        items: privacy_rows::disclosures_for(ctx.conn, Id(id.0))?
            .into_iter()
            .map(disclosure_view)
            .collect(),
    })
}

/// Everything `nrm` holds about the person of a case (GDPR Art. 15).
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseExport {
    pub exported_at: chrono::DateTime<chrono::Utc>,
    /// The case with its identifying details, identification decisions and statutory bases.
    pub case: CaseView,
    pub consents: Vec<ConsentView>,
    /// Every referral, with its history.
    pub referrals: Vec<ReferralView>,
    pub three_way_conversations: Vec<ThreeWayView>,
    pub disclosures: Vec<DisclosureView>,
    pub anonymous_notification: Option<AnonymousNotificationView>,
}

/// Subject access: everything held about the person, as one document (owning
/// organisation; audited).
#[tracing::instrument(skip_all, fields(case = %id))]
pub fn export(ctx: &mut Ctx, id: CaseId) -> AppResult<CaseExport> {
    case_for(ctx, id, CaseAction::Export)?;
    let case = CaseBundle::load(ctx, id)?.view();
    let consents = case_rows::consents_of(ctx.conn, id)?.iter().map(consent_view).collect();
    let rows = referral_rows::referrals_of(ctx.conn, id)?;
    let referrals = render_all(ctx, &rows)?;
    let three_way_conversations = super::three_way::of_case(ctx, id)?;
    let disclosures = privacy_rows::disclosures_for(ctx.conn, Id(id.0))?
        .into_iter()
        .map(disclosure_view)
        .collect();
    let anonymous_notification = case_rows::anonymous_notification_for(ctx.conn, Id(id.0))?
        .map(|n| notification_view(&n))
        .transpose()?;
    ctx.audit("case.export", "case", id.0, Some(id), "ok")?;
    Ok(CaseExport {
        exported_at: ctx.now.0,
        case,
        consents,
        referrals,
        three_way_conversations,
        disclosures,
        anonymous_notification,
    })
}

/// Closes a case once all its referrals are finished and its three-way conversations
/// evaluated or declined; it becomes read-only and the retention periods start.
#[tracing::instrument(skip_all, fields(case = %id))]
pub fn close(ctx: &mut Ctx, id: CaseId, reason: ClosureReason) -> AppResult<CaseView> {
    let mut case = case_for(ctx, id, CaseAction::Close)?;
    writable(&case)?;
    let open = referral_rows::referrals_of(ctx.conn, id)?
        .iter()
        .filter(|r| !r.state.is_terminal())
        .count();
    let conversations = referral_rows::conversations_of(ctx.conn, id)?
        .iter()
        .filter(|c| !c.state.is_terminal())
        .count();
    if conversations > 0 {
        return Err(AppError::conflict(format!(
            "{conversations} three-way conversation(s) are not evaluated or declined yet"
        )));
    }
    if open > 0 {
        return Err(AppError::conflict(format!(
            "{open} referral(s) of this case are not finished: complete, decline or withdraw them first"
        )));
    }
    let version = case.version;
    case.closed_at = Some(ctx.now.0);
    case.closed_reason = Some(reason.as_str().into());
    case.version += 1;
    case.updated_at = ctx.now.0;
    if !case_rows::save_case(ctx.conn, &case, version)? {
        return Err(AppError::StaleVersion);
    }
    ctx.audit("case.close", "case", id.0, Some(id), reason.as_str())?;
    Ok(CaseBundle::load(ctx, id)?.view())
}

/// Erases the person's identifying details, pseudonym and free text now (GDPR Art. 17),
/// keeping the statistical facts, and freezes the case with everything on it (admin of the
/// owning organisation; audited).
#[tracing::instrument(skip_all, fields(case = %id, reason = %reason))]
pub fn erase(ctx: &mut Ctx, id: CaseId, reason: ErasureReason) -> AppResult<CaseView> {
    let case = case_for(ctx, id, CaseAction::Erase)?;
    if case.erasure_reason.is_some() {
        return Err(AppError::conflict("this case's personal data was already erased"));
    }
    // Everything on the case freezes with it. Drafts, which no receiver ever saw, are
    // withdrawn, before the free text goes; handed-over referrals stay in the state they
    // reached (statistics keep counting them as they were) and are no longer chased as
    // overdue: the receivers are told below and go on outside `nrm`.
    let referrals = referral_rows::referrals_of(ctx.conn, id)?;
    for referral in referrals.iter().filter(|r| !r.handed_over()) {
        super::referrals::withdraw_by_system(ctx, referral, "case erased")?;
    }
    privacy_rows::erase_identifying(ctx.conn, Id(id.0), ctx.now)?;
    privacy_rows::erase_free_text(ctx.conn, Id(id.0), ctx.now)?;
    privacy_rows::mark_erased(ctx.conn, Id(id.0), reason.as_str())?;
    // Everyone anything was handed to hears of it once: receivers of submitted referrals,
    // and the police of conversations they were invited to.
    let mut told = std::collections::BTreeSet::new();
    for referral in referrals.iter().filter(|r| r.handed_over()) {
        if told.insert(referral.to_organisation.clone()) {
            let row = referral_rows::ReferralRow::from(referral);
            ctx.services.notifier.case_erased(ctx.conn, &row, ctx.now)?;
        }
    }
    for conversation in referral_rows::conversations_of(ctx.conn, id)?
        .iter()
        .filter(|c| c.police_officer.is_some())
    {
        if told.insert(conversation.police_organisation.clone()) {
            let row = referral_rows::ThreeWayRow::from(conversation);
            ctx.services.notifier.case_erased_to_police(ctx.conn, &row, ctx.now)?;
        }
    }
    ctx.audit("case.erase", "case", id.0, Some(id), reason.as_str())?;
    Ok(CaseBundle::load(ctx, id)?.view())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    pub items: Vec<CaseView>,
}

/// The caller organisation's cases with this name, through the blind index of the name's
/// caseless form (the database holds no name in the clear).
#[tracing::instrument(skip_all)]
pub fn search(ctx: &mut Ctx, name: &Text) -> AppResult<SearchResult> {
    access::list_cases(ctx.actor.principal())?;
    let index = ctx.keyring().blind_index(name.as_str());
    let org = ctx.actor.org.clone();
    let mut items = Vec::new();
    for id in privacy_rows::cases_by_name_index(ctx.conn, &org, &index)? {
        let case = case_rows::case(ctx.conn, CaseId(id.0))?.ok_or(AppError::NotFound)?;
        items.push(list_view(ctx, &case)?);
    }
    Ok(SearchResult { items })
}

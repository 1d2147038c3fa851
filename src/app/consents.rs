//! Consent and the statutory basis for a child's referral: recording, listing and
//! withdrawing consent (with what withdrawal does to referrals, `domain::consent`), and
//! recording a child-protection basis.

use serde::Serialize;
use utoipa::ToSchema;

use super::access::{case_for, writable};
use super::cases::{LegalBasisView, legal_basis_view};
use super::{AppError, AppResult, Ctx, Idempotency};
use crate::db::Id;
use crate::db::cases::{self as case_rows, LegalBasisRow};
use crate::db::referrals as referral_rows;
use crate::domain::access::CaseAction;
use crate::domain::consent::{Consent, ConsentGiver, ConsentMethod, ConsentScope};
use crate::domain::ids::{CaseId, ConsentId, LegalBasisId};
use crate::domain::text::{LanguageTag, Text};

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentView {
    pub id: uuid::Uuid,
    pub case_id: uuid::Uuid,
    pub scope: ConsentScope,
    pub organisation: String,
    pub given_by: ConsentGiver,
    pub method: ConsentMethod,
    pub information_language: String,
    pub recorded_by: String,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    pub withdrawn: bool,
    pub withdrawn_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentList {
    pub items: Vec<ConsentView>,
}

pub fn consent_view(consent: &Consent) -> ConsentView {
    ConsentView {
        id: consent.id.0,
        case_id: consent.case_id.0,
        scope: consent.scope,
        organisation: consent.organisation.clone(),
        given_by: consent.given_by,
        method: consent.method,
        information_language: consent.information_language.clone(),
        recorded_by: consent.recorded_by.clone(),
        recorded_at: consent.recorded_at,
        withdrawn: !consent.standing(),
        withdrawn_at: consent.withdrawn_at,
    }
}

/// A consent as the caseworker records it.
#[derive(Debug, Clone)]
pub struct NewConsent {
    pub scope: ConsentScope,
    /// A slug of the registry.
    pub organisation: String,
    pub given_by: ConsentGiver,
    pub method: ConsentMethod,
    pub information_language: LanguageTag,
}

fn find(ctx: &mut Ctx, case_id: CaseId, id: ConsentId) -> AppResult<Consent> {
    case_rows::consents_of(ctx.conn, case_id)?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(AppError::NotFound)
}

/// Records informed consent (caseworker of the owning organisation).
#[tracing::instrument(skip_all, fields(case = %case_id, scope = %new.scope))]
pub fn record(ctx: &mut Ctx, case_id: CaseId, new: NewConsent, idempotency: &Idempotency) -> AppResult<ConsentView> {
    writable(&case_for(ctx, case_id, CaseAction::RecordConsent)?)?;
    let id = match idempotency.replay(ctx)? {
        Some(id) => ConsentId(id),
        None => {
            let id = ConsentId(ctx.new_id());
            let consent = Consent {
                id,
                case_id,
                scope: new.scope,
                organisation: new.organisation,
                given_by: new.given_by,
                method: new.method,
                information_language: new.information_language.as_str().into(),
                recorded_by: ctx.actor.sub.clone(),
                recorded_at: ctx.now.0,
                withdrawn_at: None,
                withdrawn_by: None,
            };
            case_rows::record_consent(ctx.conn, &consent)?;
            idempotency.remember(ctx, id.0)?;
            ctx.audit("consent.create", "consent", id.0, Some(case_id), new.scope.as_str())?;
            id
        }
    };
    Ok(consent_view(&find(ctx, case_id, id)?))
}

/// The case's consents, standing and withdrawn (caseworkers of the owning organisation).
#[tracing::instrument(skip_all, fields(case = %case_id))]
pub fn list(ctx: &mut Ctx, case_id: CaseId) -> AppResult<ConsentList> {
    case_for(ctx, case_id, CaseAction::ReadConsents)?;
    let items = case_rows::consents_of(ctx.conn, case_id)?
        .iter()
        .map(consent_view)
        .collect();
    Ok(ConsentList { items })
}

/// Withdraws a consent. Referrals that relied on it are withdrawn by the system where the
/// state machine still allows it; receivers of open handovers on it are told.
#[tracing::instrument(skip_all, fields(case = %case_id, consent = %consent_id))]
pub fn withdraw(ctx: &mut Ctx, case_id: CaseId, consent_id: ConsentId) -> AppResult<ConsentView> {
    writable(&case_for(ctx, case_id, CaseAction::WithdrawConsent)?)?;
    let consents = case_rows::consents_of(ctx.conn, case_id)?;
    let consent = consents
        .iter()
        .find(|c| c.id == consent_id)
        .ok_or(AppError::NotFound)?
        .clone();
    let sub = ctx.actor.sub.clone();
    if !case_rows::withdraw_consent(ctx.conn, Id(consent_id.0), &sub, ctx.now)? {
        return Err(AppError::conflict("this consent was already withdrawn"));
    }
    let referrals = referral_rows::referrals_of(ctx.conn, case_id)?;
    let effects = crate::domain::referral::withdrawal(&consent, &consents, &referrals);
    for referral in referrals.iter().filter(|r| effects.withdraw.contains(&r.id)) {
        super::referrals::withdraw_by_system(ctx, referral, "consent withdrawn")?;
    }
    for referral in referrals.iter().filter(|r| effects.tell.contains(&r.id)) {
        let row = referral_rows::ReferralRow::from(referral);
        ctx.services.notifier.consent_withdrawn(ctx.conn, &row, ctx.now)?;
    }
    ctx.audit(
        "consent.withdraw",
        "consent",
        consent_id.0,
        Some(case_id),
        consent.scope.as_str(),
    )?;
    Ok(consent_view(&find(ctx, case_id, consent_id)?))
}

/// Records a statutory child-protection basis for referring a minor without consent
/// (caseworker of the owning organisation). Only `child_protection` exists.
#[tracing::instrument(skip_all, fields(case = %case_id))]
pub fn record_legal_basis(
    ctx: &mut Ctx,
    case_id: CaseId,
    justification: Text,
    idempotency: &Idempotency,
) -> AppResult<LegalBasisView> {
    writable(&case_for(ctx, case_id, CaseAction::RecordLegalBasis)?)?;
    let id = match idempotency.replay(ctx)? {
        Some(id) => LegalBasisId(id),
        None => {
            let id = LegalBasisId(ctx.new_id());
            case_rows::insert_legal_basis(
                ctx.conn,
                &LegalBasisRow {
                    id: Id(id.0),
                    case_id: Id(case_id.0),
                    basis: "child_protection".into(),
                    justification: ctx
                        .keyring()
                        .seal("legal_bases.justification", Id(id.0), justification.as_str()),
                    recorded_by: ctx.actor.sub.clone(),
                    recorded_org: ctx.actor.org.clone(),
                    recorded_at: ctx.now,
                },
            )?;
            idempotency.remember(ctx, id.0)?;
            ctx.audit(
                "legal_basis.create",
                "legal_basis",
                id.0,
                Some(case_id),
                "child_protection",
            )?;
            id
        }
    };
    let row = case_rows::legal_bases_for(ctx.conn, Id(case_id.0))?
        .into_iter()
        .find(|b| b.id.0 == id.0)
        .ok_or(AppError::NotFound)?;
    legal_basis_view(ctx, &row)
}

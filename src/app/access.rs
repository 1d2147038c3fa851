//! Loading with the visibility rules: every use case gets the case, referral or
//! conversation it acts on through these, so `domain::access` decides before anything about
//! the thing's state is looked at.

use super::{AppError, AppResult, Ctx};
use crate::db::{cases as case_rows, referrals as referral_rows};
use crate::domain::access::{self, CaseAccess, CaseAction, CaseFacts, ReferralFacts, ThreeWayFacts};
use crate::domain::case::{Case, ReadOnly};
use crate::domain::ids::{CaseId, ConversationId, ReferralId};
use crate::domain::referral::Referral;
use crate::domain::three_way::Conversation;

/// The organisations that received a submitted referral, whatever its state now.
pub fn receivers(referrals: &[Referral]) -> Vec<&str> {
    referrals
        .iter()
        .filter(|r| r.handed_over())
        .map(|r| r.to_organisation.as_str())
        .collect()
}

/// A case with its referrals: what access to a case is decided on.
pub struct LoadedCase {
    pub case: Case,
    pub referrals: Vec<Referral>,
}

impl LoadedCase {
    pub fn load(ctx: &mut Ctx, id: CaseId) -> AppResult<Self> {
        let case = case_rows::case(ctx.conn, id)?.ok_or(AppError::NotFound)?;
        let referrals = referral_rows::referrals_of(ctx.conn, id)?;
        Ok(Self { case, referrals })
    }

    fn with_facts<T>(&self, decide: impl FnOnce(CaseFacts) -> T) -> T {
        let receivers = receivers(&self.referrals);
        decide(CaseFacts {
            owner: &self.case.organisation,
            receivers: &receivers,
        })
    }

    /// How the caller may see the case (`domain::access::read_case`).
    pub fn access(&self, ctx: &Ctx) -> AppResult<CaseAccess> {
        Ok(self.with_facts(|facts| access::read_case(ctx.actor.principal(), facts))?)
    }
}

/// Loads a case the caller may take `action` on: visibility first (not found), then the
/// role (forbidden); the caller checks the case's state only after this.
pub fn case_for(ctx: &mut Ctx, id: CaseId, action: CaseAction) -> AppResult<Case> {
    let loaded = LoadedCase::load(ctx, id)?;
    loaded.with_facts(|facts| access::act_on_case(ctx.actor.principal(), facts, action))?;
    Ok(loaded.case)
}

/// As `case_for`, for recording identification decisions (owner and focal point).
pub fn case_for_identification(ctx: &mut Ctx, id: CaseId) -> AppResult<Case> {
    let loaded = LoadedCase::load(ctx, id)?;
    loaded.with_facts(|facts| access::record_identification(ctx.actor.principal(), facts))?;
    Ok(loaded.case)
}

/// Closed and erased cases, and everything on them, are read-only: 409.
pub fn writable(case: &Case) -> AppResult<()> {
    case.writable()
        .map_err(|why: ReadOnly| AppError::conflict(why.to_string()))
}

pub fn referral_facts(referral: &Referral) -> ReferralFacts<'_> {
    ReferralFacts {
        from: &referral.from_organisation,
        to: &referral.to_organisation,
        handed_over: referral.handed_over(),
    }
}

/// A referral the caller may read: sender or receiver staff; drafts the sender's alone.
pub fn readable_referral(ctx: &mut Ctx, id: ReferralId) -> AppResult<Referral> {
    let referral = referral_rows::referral(ctx.conn, id)?.ok_or(AppError::NotFound)?;
    access::read_referral(ctx.actor.principal(), referral_facts(&referral))?;
    Ok(referral)
}

pub fn conversation_facts(conversation: &Conversation) -> ThreeWayFacts<'_> {
    ThreeWayFacts {
        owner: &conversation.organisation,
        police: &conversation.police_organisation,
        officer: conversation.police_officer.as_deref(),
    }
}

/// A conversation the caller may read: the owner's caseworkers or the invited investigator.
pub fn readable_conversation(ctx: &mut Ctx, id: ConversationId) -> AppResult<Conversation> {
    let conversation = referral_rows::conversation(ctx.conn, id)?.ok_or(AppError::NotFound)?;
    access::read_three_way(ctx.actor.principal(), conversation_facts(&conversation))?;
    Ok(conversation)
}

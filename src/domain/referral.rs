//! The referral: an explicit handover of a case from a sending organisation
//! to a receiving one. Its states, the one transition table that says who may
//! do what from which state, the fields each action needs, and the guards
//! that must hold before a referral may be submitted.
//!
//! Everything here is a pure decision over values the caller loaded. This
//! module must not read the database, the clock or the token, and must not
//! know about HTTP: it returns [`TransitionRefusal`] and [`GuardCode`]s, and
//! the API layer maps them to status codes. The state diagram in
//! `docs/workflow.md` is [`mermaid()`]'s output, generated from
//! [`TRANSITIONS`].

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use crate::domain::case::{IdentificationStatus, has_reasonable_grounds};
use crate::domain::consent::{Consent, ConsentGiver, ConsentScope};
use crate::domain::ids::{CaseId, ConsentId, ReferralId};
use crate::domain::notification::NotificationKind;
use crate::domain::problem::{FieldProblem, check_field};
use crate::domain::text::Sealed;
use crate::domain::text::text_enum;

text_enum! {
    /// Where a referral stands.
    pub enum ReferralState {
        /// Being prepared by the sender; the receiver cannot see it yet.
        Draft = "draft",
        /// Sent; waiting for the receiver. Submit guards held at this moment.
        Submitted = "submitted",
        /// The receiver has seen it and is assessing it.
        Acknowledged = "acknowledged",
        /// The receiver will provide support; care has not started yet.
        Accepted = "accepted",
        /// The receiver is providing support.
        InCare = "in_care",
        /// Terminal: support ended, with an outcome.
        Completed = "completed",
        /// Terminal: the receiver refused, with a reason code and reason.
        Declined = "declined",
        /// Terminal: the sender (or the system, on withdrawal of consent)
        /// took it back before acceptance.
        Withdrawn = "withdrawn",
    }
}

impl ReferralState {
    /// No action leads out of a terminal state.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Declined | Self::Withdrawn)
    }

    pub fn is_open(&self) -> bool {
        !self.is_terminal()
    }
}

text_enum! {
    /// What a party asks to do to a referral.
    pub enum Action {
        Submit = "submit",
        Acknowledge = "acknowledge",
        Accept = "accept",
        Decline = "decline",
        Withdraw = "withdraw",
        StartCare = "start_care",
        Complete = "complete",
    }
}

text_enum! {
    /// The capacity in which someone acts on a referral.
    pub enum Party {
        /// A caseworker of the sending organisation.
        SendingCaseworker = "sending_caseworker",
        /// An intake worker of the receiving organisation.
        ReceivingIntake = "receiving_intake",
        /// The service itself, e.g. withdrawing referrals when consent is
        /// withdrawn. Never derived from a user's token.
        System = "system",
    }
}

text_enum! {
    /// How soon the receiver should respond.
    pub enum Urgency {
        Routine = "routine",
        Urgent = "urgent",
        Acute = "acute",
    }
}

text_enum! {
    /// Why a receiver declined.
    pub enum DeclineReason {
        NoCapacity = "no_capacity",
        NotEligible = "not_eligible",
        OutOfRegion = "out_of_region",
        ClientUnreachable = "client_unreachable",
        Other = "other",
    }
}

text_enum! {
    /// How support ended.
    pub enum Outcome {
        SupportProvided = "support_provided",
        ReferredOn = "referred_on",
        ClientDeclinedSupport = "client_declined_support",
        LostContact = "lost_contact",
        Other = "other",
    }
}

// ---------------------------------------------------------------------------
// The referral and what a transition does to it
// ---------------------------------------------------------------------------

/// A referral as stored, with its texts still sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct Referral {
    pub id: ReferralId,
    pub case_id: CaseId,
    pub from_organisation: String,
    pub to_organisation: String,
    /// Requested service codes, from the registry's vocabulary.
    pub services: Vec<String>,
    pub urgency: Urgency,
    pub note: Option<Sealed>,
    pub state: ReferralState,
    /// Bumped by every change; the ETag.
    pub version: i64,
    /// The consent the submission relied on (none for a statutory basis).
    pub consent_id: Option<ConsentId>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    pub care_started_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub decline_reason: Option<DeclineReason>,
    pub outcome: Option<Outcome>,
    /// Submitted against the directory's eligibility: the caseworker's reason, sealed
    /// (empty once erased, so the override stays countable).
    pub eligibility_override: Option<Sealed>,
    /// Who at the receiving organisation took it on (a person's `sub`); none = nobody yet.
    pub assigned_to: Option<String>,
}

impl Referral {
    /// Whether the referral was ever submitted: only then does the receiver know of it.
    pub fn handed_over(&self) -> bool {
        self.submitted_at.is_some()
    }
}

/// One row of a referral's history, texts sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub id: uuid::Uuid,
    pub referral_id: ReferralId,
    pub seq: i32,
    pub action: Action,
    pub from: ReferralState,
    pub to: ReferralState,
    /// `system` for steps the service took itself.
    pub actor_sub: String,
    pub actor_org: String,
    pub at: DateTime<Utc>,
    pub reason_code: Option<DeclineReason>,
    pub reason: Option<Sealed>,
    pub outcome_code: Option<Outcome>,
    pub outcome: Option<Sealed>,
}

/// Who hears of a step by e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeTo {
    Sender,
    Receiver,
}

/// What a decided transition changes, decided once here so every caller (a person, the
/// system) writes the same: the new state, the timestamp the action stamps, the codes it
/// records, whether the referral closes, and who is told.
#[derive(Debug, Clone, PartialEq)]
pub struct Effects {
    /// The referral after the step (version bumped), texts not yet sealed in.
    pub referral: Referral,
    pub from: ReferralState,
    /// Who is told, and with which notice; `None` for steps the system takes (the
    /// withdrawal of consent or the erasure sends its own notice).
    pub notice: Option<(NoticeTo, NotificationKind)>,
}

/// The effects of taking `request` (already allowed by [`decide`], leading to `next`) on
/// `referral` at `now`. `by_system` steps notify nobody.
pub fn effects(
    referral: &Referral,
    request: &TransitionRequest,
    next: ReferralState,
    now: DateTime<Utc>,
    by_system: bool,
) -> Effects {
    let mut after = referral.clone();
    after.state = next;
    after.version += 1;
    after.updated_at = now;
    match request.action {
        Action::Submit => after.submitted_at = Some(now),
        Action::Acknowledge => after.acknowledged_at = Some(now),
        Action::Accept => after.decided_at = Some(now),
        Action::Decline => {
            after.decided_at = Some(now);
            after.decline_reason = request.reason_code;
        }
        Action::StartCare => after.care_started_at = Some(now),
        Action::Complete => after.outcome = request.outcome_code,
        Action::Withdraw => {}
    }
    if next.is_terminal() {
        after.closed_at = Some(now);
    }
    use NotificationKind as K;
    let notice = match request.action {
        _ if by_system => None,
        Action::Submit => Some((NoticeTo::Receiver, K::ReferralSubmitted)),
        Action::Acknowledge => Some((NoticeTo::Sender, K::ReferralAcknowledged)),
        Action::Accept => Some((NoticeTo::Sender, K::ReferralAccepted)),
        Action::Decline => Some((NoticeTo::Sender, K::ReferralDeclined)),
        Action::Complete => Some((NoticeTo::Sender, K::ReferralCompleted)),
        // A draft was never seen by the receiver: nothing to withdraw there.
        Action::Withdraw if referral.handed_over() => Some((NoticeTo::Receiver, K::ReferralWithdrawn)),
        Action::Withdraw | Action::StartCare => None,
    };
    Effects {
        referral: after,
        from: referral.state,
        notice,
    }
}

// ---------------------------------------------------------------------------
// What withdrawing consent does to referrals
// ---------------------------------------------------------------------------

/// What withdrawing a consent means for the case's referrals.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Withdrawal {
    /// Referrals that relied on the consent: the system withdraws those it still may
    /// (drafts, and handovers not yet accepted); past acceptance the receiver has its own
    /// relationship with the person.
    pub withdraw: Vec<ReferralId>,
    /// Open, handed-over referrals to the organisation the consent names: their receivers
    /// are told (not for a `police_contact` consent, which no referral rests on).
    pub tell: Vec<ReferralId>,
}

/// The effects of withdrawing `consent`, given every consent and referral of the case as
/// they stood before. Another standing referral consent for the same organisation keeps
/// its referrals going.
pub fn withdrawal(consent: &Consent, consents: &[Consent], referrals: &[Referral]) -> Withdrawal {
    let tell = if consent.scope == ConsentScope::PoliceContact {
        Vec::new()
    } else {
        referrals
            .iter()
            .filter(|r| r.to_organisation == consent.organisation && r.handed_over() && r.state.is_open())
            .map(|r| r.id)
            .collect()
    };
    let still_covered = consents.iter().any(|c| {
        c.id != consent.id
            && c.standing()
            && c.scope == ConsentScope::Referral
            && c.organisation == consent.organisation
    });
    let withdraw = if consent.scope == ConsentScope::Referral && !still_covered {
        referrals
            .iter()
            .filter(|r| {
                r.consent_id == Some(consent.id)
                    || (r.state == ReferralState::Draft && r.to_organisation == consent.organisation)
            })
            .map(|r| r.id)
            .collect()
    } else {
        Vec::new()
    };
    Withdrawal { withdraw, tell }
}

// ---------------------------------------------------------------------------
// The transition table
// ---------------------------------------------------------------------------

/// One row of the state machine: `action`, taken from any state in `from`
/// by any party in `by`, leads to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub action: Action,
    pub from: &'static [ReferralState],
    pub by: &'static [Party],
    pub to: ReferralState,
}

impl Transition {
    /// Whether this row lets one of `parties` act from `state`.
    pub fn allows(&self, state: ReferralState, parties: &[Party]) -> bool {
        self.from.contains(&state) && parties.iter().any(|p| self.by.contains(p))
    }
}

/// The referral state machine; the only place it is written down.
///
/// Invariants (tested): exactly one row per [`Action`], in [`Action::ALL`]
/// order; no row leaves a terminal state.
pub const TRANSITIONS: &[Transition] = {
    use Party::{ReceivingIntake, SendingCaseworker, System};
    use ReferralState::*;
    &[
        Transition {
            action: Action::Submit,
            from: &[Draft],
            by: &[SendingCaseworker],
            to: Submitted,
        },
        Transition {
            action: Action::Acknowledge,
            from: &[Submitted],
            by: &[ReceivingIntake],
            to: Acknowledged,
        },
        Transition {
            action: Action::Accept,
            from: &[Submitted, Acknowledged],
            by: &[ReceivingIntake],
            to: Accepted,
        },
        Transition {
            action: Action::Decline,
            from: &[Submitted, Acknowledged],
            by: &[ReceivingIntake],
            to: Declined,
        },
        Transition {
            action: Action::Withdraw,
            from: &[Draft, Submitted, Acknowledged],
            by: &[SendingCaseworker, System],
            to: Withdrawn,
        },
        Transition {
            action: Action::StartCare,
            from: &[Accepted],
            by: &[ReceivingIntake],
            to: InCare,
        },
        Transition {
            action: Action::Complete,
            from: &[Accepted, InCare],
            by: &[ReceivingIntake],
            to: Completed,
        },
    ]
};

/// The table row for `action`.
pub fn transition_for(action: Action) -> Option<&'static Transition> {
    TRANSITIONS.iter().find(|t| t.action == action)
}

/// What the auth layer knows about the caller's roles in their own
/// organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RolesView {
    pub caseworker: bool,
    pub intake: bool,
}

/// The parties a user acts as on a referral from `from_org` to `to_org`.
///
/// Never yields [`Party::System`]: the service passes that explicitly.
/// Empty means the user is no party to the referral at all (the API layer
/// answers that before asking [`decide`]).
pub fn parties(actor_org: &str, actor_roles: RolesView, from_org: &str, to_org: &str) -> Vec<Party> {
    let mut parties = Vec::new();
    if actor_org == from_org && actor_roles.caseworker {
        parties.push(Party::SendingCaseworker);
    }
    if actor_org == to_org && actor_roles.intake {
        parties.push(Party::ReceivingIntake);
    }
    parties
}

/// The actions `parties` may take from `state`, in table order. Submit
/// guards and required fields are not considered here.
pub fn allowed_actions(state: ReferralState, parties: &[Party]) -> Vec<Action> {
    TRANSITIONS
        .iter()
        .filter(|t| t.allows(state, parties))
        .map(|t| t.action)
        .collect()
}

// ---------------------------------------------------------------------------
// Deciding a transition
// ---------------------------------------------------------------------------

/// A request to take `action`, with the fields some actions need:
/// decline needs `reason_code` and `reason`, withdraw needs `reason`,
/// complete needs `outcome_code` and `outcome`. Other actions take none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionRequest {
    pub action: Action,
    pub reason_code: Option<DeclineReason>,
    pub reason: Option<String>,
    pub outcome_code: Option<Outcome>,
    pub outcome: Option<String>,
}

impl TransitionRequest {
    /// A request for `action` with no fields.
    pub fn new(action: Action) -> Self {
        Self {
            action,
            reason_code: None,
            reason: None,
            outcome_code: None,
            outcome: None,
        }
    }
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionRefusal {
    /// The state, or the caller's parties, do not allow the action (HTTP
    /// 409). `allowed` is what this caller may do from this state.
    #[error("cannot {action} a referral that is {state} as this caller; allowed: {}", list(.allowed))]
    NotAllowed {
        action: Action,
        state: ReferralState,
        allowed: Vec<Action>,
    },
    /// Required fields are missing or blank, or fields were sent that the
    /// action does not take (HTTP 422). Only reported once the action itself
    /// is allowed.
    #[error("invalid fields: {}", .0.iter().map(|p| p.field).collect::<Vec<_>>().join(", "))]
    MissingFields(Vec<FieldProblem>),
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// The state `request` leads to from `state`, taken by someone acting as
/// `parties`; or why not.
///
/// The state and the parties are checked before the fields, so a request
/// that is wrong in both ways gets [`TransitionRefusal::NotAllowed`]. Submit
/// guards are separate: see [`submit_guards`].
pub fn decide(
    state: ReferralState,
    request: &TransitionRequest,
    parties: &[Party],
) -> Result<ReferralState, TransitionRefusal> {
    let action = request.action;
    let row = match transition_for(action) {
        Some(row) if row.allows(state, parties) => row,
        _ => {
            return Err(TransitionRefusal::NotAllowed {
                action,
                state,
                allowed: allowed_actions(state, parties),
            });
        }
    };
    let problems = field_problems(request);
    if !problems.is_empty() {
        return Err(TransitionRefusal::MissingFields(problems));
    }
    Ok(row.to)
}

fn field_problems(request: &TransitionRequest) -> Vec<FieldProblem> {
    let action = request.action;
    let (needs_reason_code, needs_reason, needs_outcome_code, needs_outcome) = match action {
        Action::Decline => (true, true, false, false),
        Action::Withdraw => (false, true, false, false),
        Action::Complete => (false, false, true, true),
        Action::Submit | Action::Acknowledge | Action::Accept | Action::StartCare => (false, false, false, false),
    };
    let mut problems = Vec::new();
    check_field(
        &mut problems,
        action,
        "reason_code",
        needs_reason_code,
        request.reason_code.map(|_| true),
    );
    check_field(
        &mut problems,
        action,
        "reason",
        needs_reason,
        request.reason.as_deref().map(is_filled),
    );
    check_field(
        &mut problems,
        action,
        "outcome_code",
        needs_outcome_code,
        request.outcome_code.map(|_| true),
    );
    check_field(
        &mut problems,
        action,
        "outcome",
        needs_outcome,
        request.outcome.as_deref().map(is_filled),
    );
    problems
}

fn is_filled(text: &str) -> bool {
    !text.trim().is_empty()
}

// ---------------------------------------------------------------------------
// Submit guards
// ---------------------------------------------------------------------------

text_enum! {
    /// A condition that must hold before a referral may be submitted.
    /// The text is stable: clients and statistics depend on it.
    pub enum GuardCode {
        /// Identification is neither presumed victim nor identified. Art.
        /// 11(2): assistance starts as soon as there are reasonable grounds,
        /// and a referral is assistance.
        NoReasonableGrounds = "no_reasonable_grounds",
        /// No standing referral consent covers the receiver; for a child,
        /// also no recorded child-protection basis. CoE Convention Art. 12;
        /// Directive Art. 11(5)/(6): assistance on an informed and
        /// consensual basis.
        NoReferralConsent = "no_referral_consent",
        /// The person is (presumed) a child and the receiver does not take
        /// children. Art. 14 and 16: the best interests of the child.
        ReceiverDoesNotAcceptMinors = "receiver_does_not_accept_minors",
        /// A requested service is not one the receiver offers.
        ServiceNotOffered = "service_not_offered",
        /// The case's region is one the receiver does not serve, and the
        /// receiver is not national.
        RegionNotServed = "region_not_served",
        /// An organisation referring to itself.
        ReceiverIsSender = "receiver_is_sender",
        /// The case already has another open referral to this receiver.
        DuplicateOpenReferral = "duplicate_open_referral",
    }
}

impl GuardCode {
    /// A short English sentence for people reading an error.
    pub fn description(&self) -> &'static str {
        match self {
            Self::NoReasonableGrounds => "No reasonable grounds have been recorded that the person is a victim.",
            Self::NoReferralConsent => {
                "No standing referral consent covers the receiving organisation (nor, for a child, a recorded child-protection basis)."
            }
            Self::ReceiverDoesNotAcceptMinors => {
                "The person is a child and the receiving organisation does not accept children."
            }
            Self::ServiceNotOffered => "The receiving organisation does not offer every requested service.",
            Self::RegionNotServed => "The receiving organisation does not serve the case's region.",
            Self::ReceiverIsSender => "An organisation cannot refer a case to itself.",
            Self::DuplicateOpenReferral => "The case already has an open referral to the receiving organisation.",
        }
    }
}

/// The receiving organisation as the guards see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverFacts<'a> {
    pub slug: &'a str,
    pub accepts_minors: bool,
    /// Service codes the receiver offers.
    pub offers: &'a [String],
    /// Serves every region; `regions` is then not consulted.
    pub national: bool,
    pub regions: &'a [String],
}

/// Everything the submit guards look at, loaded by the caller.
///
/// There is deliberately no input about the person's willingness to
/// cooperate with the police or the prosecution, nor about a report to the
/// police: Art. 11(3) makes assistance and support unconditional on it, so
/// no guard can depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmitFacts<'a> {
    pub identification: IdentificationStatus,
    /// From [`crate::domain::case::is_minor`].
    pub is_minor: bool,
    /// Who gave the standing `referral` consent that covers the receiving
    /// organisation, if there is one.
    pub referral_consent: Option<ConsentGiver>,
    /// A recorded statutory child-protection basis for referring a child.
    /// Ignored for adults.
    pub child_protection_basis: bool,
    /// The sending organisation's slug.
    pub sender: &'a str,
    pub receiver: ReceiverFacts<'a>,
    pub requested_services: &'a [String],
    /// The case's region; `None` skips the region guard.
    pub case_region: Option<&'a str>,
    /// Another referral of this case to the same receiver is still open.
    pub other_open_referral_to_receiver: bool,
}

/// Every unmet submit guard, in [`GuardCode::ALL`] order; empty means the
/// referral may be submitted.
pub fn submit_guards(facts: &SubmitFacts<'_>) -> Vec<GuardCode> {
    let receiver = &facts.receiver;
    // A consent given by the victim, a guardian or a legal representative
    // all count; for a child a statutory basis may stand in for consent.
    let consented = facts.referral_consent.is_some() || (facts.is_minor && facts.child_protection_basis);
    let region_served = match facts.case_region {
        None => true,
        Some(region) => receiver.national || receiver.regions.iter().any(|r| r == region),
    };
    let unmet = [
        (
            GuardCode::NoReasonableGrounds,
            !has_reasonable_grounds(facts.identification),
        ),
        (GuardCode::NoReferralConsent, !consented),
        (
            GuardCode::ReceiverDoesNotAcceptMinors,
            facts.is_minor && !receiver.accepts_minors,
        ),
        (
            GuardCode::ServiceNotOffered,
            facts.requested_services.iter().any(|s| !receiver.offers.contains(s)),
        ),
        (GuardCode::RegionNotServed, !region_served),
        (GuardCode::ReceiverIsSender, facts.sender == receiver.slug),
        (GuardCode::DuplicateOpenReferral, facts.other_open_referral_to_receiver),
    ];
    unmet
        .into_iter()
        .filter_map(|(code, failed)| failed.then_some(code))
        .collect()
}

// ---------------------------------------------------------------------------
// Taking a referral on
// ---------------------------------------------------------------------------

/// Whom a referral is to be assigned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    /// The person asking.
    Me,
    /// Another person of the receiving organisation; `intake` says whether they hold the
    /// intake role there (known from their last sign-in).
    Colleague { sub: String, intake: bool },
    /// Nobody: the referral goes back to the organisation's queue.
    Nobody,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentRefusal {
    /// Only the receiving organisation's intake staff divide its work.
    #[error("only intake staff of the receiving organisation assign a referral")]
    NotReceiver,
    /// A closed referral is nobody's work any more.
    #[error("the referral is {0}: it can no longer be assigned")]
    Closed(ReferralState),
    /// The colleague is unknown here, or not intake staff.
    #[error("the colleague is not intake staff of the receiving organisation")]
    NotIntakeColleague,
}

/// The person to record, if the receiver's intake staff may assign the referral now: it
/// is handed over (not a draft) and not yet closed, and it goes to the asker, to an intake
/// colleague, or back to nobody.
pub fn assignment(
    referral: &Referral,
    parties: &[Party],
    asker: &str,
    to: &Assignee,
) -> Result<Option<String>, AssignmentRefusal> {
    if !parties.contains(&Party::ReceivingIntake) {
        return Err(AssignmentRefusal::NotReceiver);
    }
    if !referral.handed_over() || referral.state.is_terminal() {
        return Err(AssignmentRefusal::Closed(referral.state));
    }
    match to {
        Assignee::Me => Ok(Some(asker.to_string())),
        Assignee::Colleague { sub, .. } if sub == asker => Ok(Some(asker.to_string())),
        Assignee::Colleague { sub, intake: true } => Ok(Some(sub.clone())),
        Assignee::Colleague { intake: false, .. } => Err(AssignmentRefusal::NotIntakeColleague),
        Assignee::Nobody => Ok(None),
    }
}

// ---------------------------------------------------------------------------
// Diagram
// ---------------------------------------------------------------------------

/// The state machine as a mermaid `stateDiagram-v2`, generated from
/// [`TRANSITIONS`]: one edge per (from, to) pair of each row in table order,
/// labelled with the action and the parties, then one exit per terminal
/// state in [`ReferralState::ALL`] order. Deterministic; ends with a newline.
pub fn mermaid() -> String {
    let mut out = String::from("stateDiagram-v2\n");
    out.push_str("    [*] --> draft\n");
    for t in TRANSITIONS {
        let by = t.by.iter().map(Party::as_str).collect::<Vec<_>>().join(" or ");
        for from in t.from {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "    {from} --> {} : {} by {by}", t.to, t.action);
        }
    }
    for state in ReferralState::ALL.iter().filter(|s| s.is_terminal()) {
        let _ = writeln!(out, "    {state} --> [*]");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use Action as A;
    use Party as P;
    use ReferralState as S;

    fn referral(state: S, handed_over: bool) -> Referral {
        let at = chrono::DateTime::UNIX_EPOCH;
        Referral {
            id: ReferralId(uuid::Uuid::nil()),
            case_id: CaseId(uuid::Uuid::nil()),
            from_organisation: "fier".into(),
            to_organisation: "csg".into(),
            services: vec!["psychosocial_support".into()],
            urgency: Urgency::Urgent,
            note: None,
            state,
            version: 3,
            consent_id: None,
            created_by: "anna".into(),
            created_at: at,
            updated_at: at,
            submitted_at: handed_over.then_some(at),
            acknowledged_at: None,
            decided_at: None,
            care_started_at: None,
            closed_at: None,
            decline_reason: None,
            outcome: None,
            eligibility_override: None,
            assigned_to: None,
        }
    }

    #[test]
    fn only_the_receivers_intake_staff_assign_an_open_handed_over_referral() {
        let open = referral(S::Acknowledged, true);
        let receiver = [P::ReceivingIntake];
        let colleague = |intake| Assignee::Colleague {
            sub: "bo".into(),
            intake,
        };
        assert_eq!(
            assignment(&open, &receiver, "anna", &Assignee::Me),
            Ok(Some("anna".into()))
        );
        assert_eq!(
            assignment(&open, &receiver, "anna", &colleague(true)),
            Ok(Some("bo".into()))
        );
        assert_eq!(
            assignment(&open, &receiver, "anna", &colleague(false)),
            Err(AssignmentRefusal::NotIntakeColleague)
        );
        assert_eq!(assignment(&open, &receiver, "anna", &Assignee::Nobody), Ok(None));
        assert_eq!(
            assignment(&open, &[P::SendingCaseworker], "anna", &Assignee::Me),
            Err(AssignmentRefusal::NotReceiver)
        );
        for state in S::ALL {
            let handed_over = state != S::Draft;
            let result = assignment(&referral(state, handed_over), &receiver, "anna", &Assignee::Me);
            assert_eq!(result.is_ok(), handed_over && !state.is_terminal(), "{state:?}");
        }
        assert!(assignment(&referral(S::Withdrawn, false), &receiver, "anna", &Assignee::Me).is_err());
    }

    #[test]
    fn each_step_stamps_its_own_time_and_tells_the_other_side() {
        use NotificationKind as K;
        let now = chrono::DateTime::UNIX_EPOCH + chrono::Duration::hours(5);
        type Case = (S, A, Option<(NoticeTo, K)>);
        let cases: &[Case] = &[
            (S::Draft, A::Submit, Some((NoticeTo::Receiver, K::ReferralSubmitted))),
            (
                S::Submitted,
                A::Acknowledge,
                Some((NoticeTo::Sender, K::ReferralAcknowledged)),
            ),
            (
                S::Acknowledged,
                A::Accept,
                Some((NoticeTo::Sender, K::ReferralAccepted)),
            ),
            (S::Submitted, A::Decline, Some((NoticeTo::Sender, K::ReferralDeclined))),
            (S::Accepted, A::StartCare, None),
            (S::InCare, A::Complete, Some((NoticeTo::Sender, K::ReferralCompleted))),
            (
                S::Submitted,
                A::Withdraw,
                Some((NoticeTo::Receiver, K::ReferralWithdrawn)),
            ),
        ];
        for (from, action, notice) in cases {
            let before = referral(*from, *from != S::Draft);
            let mut request = TransitionRequest::new(*action);
            request.reason_code = Some(DeclineReason::NoCapacity);
            request.outcome_code = Some(Outcome::SupportProvided);
            let next = transition_for(*action).unwrap().to;
            let effects = effects(&before, &request, next, now, false);
            let after = &effects.referral;
            assert_eq!(after.state, next);
            assert_eq!(after.version, 4, "{action:?}");
            assert_eq!(after.updated_at, now);
            assert_eq!(effects.from, *from);
            assert_eq!(effects.notice, *notice, "{action:?}");
            let stamped = match action {
                A::Submit => after.submitted_at,
                A::Acknowledge => after.acknowledged_at,
                A::Accept | A::Decline => after.decided_at,
                A::StartCare => after.care_started_at,
                A::Complete | A::Withdraw => after.closed_at,
            };
            assert_eq!(stamped, Some(now), "{action:?} stamps its time");
            assert_eq!(after.closed_at.is_some(), next.is_terminal(), "{action:?}");
            assert_eq!(after.decline_reason.is_some(), *action == A::Decline);
            assert_eq!(after.outcome.is_some(), *action == A::Complete);
        }
        // A draft withdrawn was never seen by the receiver: nobody is told.
        let draft = referral(S::Draft, false);
        let withdraw = TransitionRequest::new(A::Withdraw);
        assert_eq!(effects(&draft, &withdraw, S::Withdrawn, now, false).notice, None);
        // The system's own steps send no notice of their own.
        let submitted = referral(S::Submitted, true);
        assert_eq!(effects(&submitted, &withdraw, S::Withdrawn, now, true).notice, None);
    }

    /// The state machine written out by hand, independently of TRANSITIONS:
    /// (from, action, party, to).
    const EXPECTED: &[(S, A, P, S)] = &[
        (S::Draft, A::Submit, P::SendingCaseworker, S::Submitted),
        (S::Submitted, A::Acknowledge, P::ReceivingIntake, S::Acknowledged),
        (S::Submitted, A::Accept, P::ReceivingIntake, S::Accepted),
        (S::Acknowledged, A::Accept, P::ReceivingIntake, S::Accepted),
        (S::Submitted, A::Decline, P::ReceivingIntake, S::Declined),
        (S::Acknowledged, A::Decline, P::ReceivingIntake, S::Declined),
        (S::Draft, A::Withdraw, P::SendingCaseworker, S::Withdrawn),
        (S::Draft, A::Withdraw, P::System, S::Withdrawn),
        (S::Submitted, A::Withdraw, P::SendingCaseworker, S::Withdrawn),
        (S::Submitted, A::Withdraw, P::System, S::Withdrawn),
        (S::Acknowledged, A::Withdraw, P::SendingCaseworker, S::Withdrawn),
        (S::Acknowledged, A::Withdraw, P::System, S::Withdrawn),
        (S::Accepted, A::StartCare, P::ReceivingIntake, S::InCare),
        (S::Accepted, A::Complete, P::ReceivingIntake, S::Completed),
        (S::InCare, A::Complete, P::ReceivingIntake, S::Completed),
    ];

    const PARTY_SETS: &[&[P]] = &[
        &[],
        &[P::SendingCaseworker],
        &[P::ReceivingIntake],
        &[P::System],
        &[P::SendingCaseworker, P::ReceivingIntake],
    ];

    /// Written out so that a variant added to an enum but not to the
    /// machine makes the tests fail.
    const ALL_STATES: [S; 8] = [
        S::Draft,
        S::Submitted,
        S::Acknowledged,
        S::Accepted,
        S::InCare,
        S::Completed,
        S::Declined,
        S::Withdrawn,
    ];
    const ALL_ACTIONS: [A; 7] = [
        A::Submit,
        A::Acknowledge,
        A::Accept,
        A::Decline,
        A::Withdraw,
        A::StartCare,
        A::Complete,
    ];

    fn expected_to(state: S, action: A, parties: &[P]) -> Option<S> {
        EXPECTED
            .iter()
            .find(|(f, a, p, _)| *f == state && *a == action && parties.contains(p))
            .map(|(_, _, _, to)| *to)
    }

    fn expected_allowed(state: S, parties: &[P]) -> Vec<A> {
        ALL_ACTIONS
            .into_iter()
            .filter(|a| expected_to(state, *a, parties).is_some())
            .collect()
    }

    /// A request for `action` with exactly the fields it needs.
    fn valid_request(action: A) -> TransitionRequest {
        let mut r = TransitionRequest::new(action);
        match action {
            A::Decline => {
                r.reason_code = Some(DeclineReason::NoCapacity);
                r.reason = Some("no beds until March".into());
            }
            A::Withdraw => r.reason = Some("client moved abroad".into()),
            A::Complete => {
                r.outcome_code = Some(Outcome::SupportProvided);
                r.outcome = Some("housing arranged".into());
            }
            A::Submit | A::Acknowledge | A::Accept | A::StartCare => {}
        }
        r
    }

    fn needs_fields(action: A) -> bool {
        matches!(action, A::Decline | A::Withdraw | A::Complete)
    }

    fn fields(refusal: Result<S, TransitionRefusal>) -> Vec<(&'static str, String)> {
        match refusal {
            Err(TransitionRefusal::MissingFields(p)) => p.into_iter().map(|p| (p.field, p.message)).collect(),
            other => panic!("expected MissingFields, got {other:?}"),
        }
    }

    #[test]
    fn enums_cover_exactly_the_expected_variants() {
        assert_eq!(ReferralState::ALL, ALL_STATES);
        assert_eq!(Action::ALL, ALL_ACTIONS);
    }

    #[test]
    fn every_state_action_and_party_set() {
        let mut allowed_seen = 0;
        for state in ALL_STATES {
            for action in ALL_ACTIONS {
                for parties in PARTY_SETS {
                    let got = decide(state, &valid_request(action), parties);
                    let want = match expected_to(state, action, parties) {
                        Some(to) => {
                            allowed_seen += 1;
                            Ok(to)
                        }
                        None => Err(TransitionRefusal::NotAllowed {
                            action,
                            state,
                            allowed: expected_allowed(state, parties),
                        }),
                    };
                    assert_eq!(got, want, "{state} / {action} / {parties:?}");
                    assert_eq!(
                        allowed_actions(state, parties),
                        expected_allowed(state, parties),
                        "{state} / {parties:?}"
                    );
                }
            }
        }
        // Guards against a vacuous expectation table.
        assert_eq!(allowed_seen, 27);
    }

    #[test]
    fn table_has_one_row_per_action_in_order_and_none_from_terminal_states() {
        let actions: Vec<A> = TRANSITIONS.iter().map(|t| t.action).collect();
        assert_eq!(actions, ALL_ACTIONS.to_vec());
        for t in TRANSITIONS {
            assert!(t.from.iter().all(|s| s.is_open()), "{:?}", t.action);
            assert!(!t.by.is_empty());
        }
    }

    #[test]
    fn terminal_and_open_states() {
        let terminal: Vec<S> = ALL_STATES.into_iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(terminal, vec![S::Completed, S::Declined, S::Withdrawn]);
        assert!(S::InCare.is_open());
        assert!(!S::Declined.is_open());
    }

    #[test]
    fn parties_from_organisation_and_roles() {
        let cw = RolesView {
            caseworker: true,
            intake: false,
        };
        let intake = RolesView {
            caseworker: false,
            intake: true,
        };
        let both = RolesView {
            caseworker: true,
            intake: true,
        };
        assert_eq!(parties("a", cw, "a", "b"), vec![P::SendingCaseworker]);
        assert_eq!(parties("a", intake, "a", "b"), Vec::<P>::new());
        assert_eq!(parties("b", intake, "a", "b"), vec![P::ReceivingIntake]);
        assert_eq!(parties("b", cw, "a", "b"), Vec::<P>::new());
        assert_eq!(parties("c", both, "a", "b"), Vec::<P>::new());
        assert_eq!(parties("b", both, "a", "b"), vec![P::ReceivingIntake]);
        assert_eq!(
            parties("a", both, "a", "a"),
            vec![P::SendingCaseworker, P::ReceivingIntake]
        );
        assert_eq!(parties("a", RolesView::default(), "a", "b"), Vec::<P>::new());
    }

    #[test]
    fn decline_needs_reason_code_and_reason() {
        let mut r = TransitionRequest::new(A::Decline);
        let got = fields(decide(S::Submitted, &r, &[P::ReceivingIntake]));
        assert_eq!(
            got.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
            vec!["reason_code", "reason"]
        );
        assert!(got[0].1.contains("required"), "{}", got[0].1);

        r.reason_code = Some(DeclineReason::OutOfRegion);
        r.reason = Some("  \n\t".into());
        let got = fields(decide(S::Acknowledged, &r, &[P::ReceivingIntake]));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "reason");
        assert!(got[0].1.contains("blank"), "{}", got[0].1);

        r.reason = Some("we only serve Limburg".into());
        assert_eq!(decide(S::Acknowledged, &r, &[P::ReceivingIntake]), Ok(S::Declined));
    }

    #[test]
    fn fields_that_do_not_belong_are_refused() {
        let mut decline = valid_request(A::Decline);
        decline.outcome = Some("done".into());
        decline.outcome_code = Some(Outcome::Other);
        let got = fields(decide(S::Submitted, &decline, &[P::ReceivingIntake]));
        assert_eq!(
            got,
            vec![
                ("outcome_code", "does not apply to decline".to_owned()),
                ("outcome", "does not apply to decline".to_owned()),
            ]
        );

        let mut withdraw = valid_request(A::Withdraw);
        withdraw.reason_code = Some(DeclineReason::Other);
        let got = fields(decide(S::Draft, &withdraw, &[P::SendingCaseworker]));
        assert_eq!(got, vec![("reason_code", "does not apply to withdraw".to_owned())]);

        let mut accept = TransitionRequest::new(A::Accept);
        accept.reason = Some("".into());
        let got = fields(decide(S::Submitted, &accept, &[P::ReceivingIntake]));
        assert_eq!(got, vec![("reason", "does not apply to accept".to_owned())]);

        let mut complete = valid_request(A::Complete);
        complete.reason = Some("why".into());
        let got = fields(decide(S::InCare, &complete, &[P::ReceivingIntake]));
        assert_eq!(got, vec![("reason", "does not apply to complete".to_owned())]);
    }

    #[test]
    fn withdraw_needs_reason_even_for_the_system() {
        let r = TransitionRequest::new(A::Withdraw);
        let got = fields(decide(S::Submitted, &r, &[P::System]));
        assert_eq!(got.iter().map(|(f, _)| *f).collect::<Vec<_>>(), vec!["reason"]);
        let mut r = r;
        r.reason = Some(" ".into());
        let got = fields(decide(S::Submitted, &r, &[P::System]));
        assert_eq!(got.iter().map(|(f, _)| *f).collect::<Vec<_>>(), vec!["reason"]);
    }

    #[test]
    fn complete_needs_outcome_code_and_outcome() {
        let r = TransitionRequest::new(A::Complete);
        let got = fields(decide(S::Accepted, &r, &[P::ReceivingIntake]));
        assert_eq!(
            got.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
            vec!["outcome_code", "outcome"]
        );
        let mut r = valid_request(A::Complete);
        r.outcome = Some(String::new());
        let got = fields(decide(S::InCare, &r, &[P::ReceivingIntake]));
        assert_eq!(got.iter().map(|(f, _)| *f).collect::<Vec<_>>(), vec!["outcome"]);
    }

    #[test]
    fn state_conflict_beats_missing_fields() {
        // Wrong state and no fields: 409, not 422.
        let r = TransitionRequest::new(A::Decline);
        assert_eq!(
            decide(S::Draft, &r, &[P::ReceivingIntake]),
            Err(TransitionRefusal::NotAllowed {
                action: A::Decline,
                state: S::Draft,
                allowed: vec![],
            })
        );
        // Right state, wrong party, no fields: 409 listing what the caller may do.
        assert_eq!(
            decide(S::Submitted, &r, &[P::SendingCaseworker]),
            Err(TransitionRefusal::NotAllowed {
                action: A::Decline,
                state: S::Submitted,
                allowed: vec![A::Withdraw],
            })
        );
    }

    #[test]
    fn refusal_messages_name_the_problem() {
        let refusal = decide(S::Completed, &valid_request(A::Accept), &[P::ReceivingIntake])
            .unwrap_err()
            .to_string();
        assert_eq!(
            refusal,
            "cannot accept a referral that is completed as this caller; allowed: none"
        );
        let refusal = decide(S::Submitted, &valid_request(A::Submit), &[P::ReceivingIntake])
            .unwrap_err()
            .to_string();
        assert!(refusal.ends_with("allowed: acknowledge, accept, decline"), "{refusal}");
    }

    // --- submit guards ---------------------------------------------------

    struct Fixture {
        offers: Vec<String>,
        regions: Vec<String>,
        requested: Vec<String>,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                offers: vec!["shelter".into(), "legal_aid".into()],
                regions: vec!["utrecht".into(), "gelderland".into()],
                requested: vec!["shelter".into()],
            }
        }

        /// Facts that pass every guard.
        fn passing(&self) -> SubmitFacts<'_> {
            SubmitFacts {
                identification: IdentificationStatus::PresumedVictim,
                is_minor: false,
                referral_consent: Some(ConsentGiver::Victim),
                child_protection_basis: false,
                sender: "fier",
                receiver: ReceiverFacts {
                    slug: "shelter-utrecht",
                    accepts_minors: false,
                    offers: &self.offers,
                    national: false,
                    regions: &self.regions,
                },
                requested_services: &self.requested,
                case_region: Some("utrecht"),
                other_open_referral_to_receiver: false,
            }
        }
    }

    #[test]
    fn passing_facts_pass() {
        let fx = Fixture::new();
        assert_eq!(submit_guards(&fx.passing()), vec![]);
        let identified = SubmitFacts {
            identification: IdentificationStatus::Identified,
            ..fx.passing()
        };
        assert_eq!(submit_guards(&identified), vec![]);
    }

    #[test]
    fn every_guard_alone() {
        use GuardCode as G;
        let fx = Fixture::new();
        let unoffered = vec!["shelter".to_owned(), "dentist".to_owned()];
        let base = fx.passing();
        let cases: Vec<(SubmitFacts<'_>, G)> = vec![
            (
                SubmitFacts {
                    identification: IdentificationStatus::Signal,
                    ..base
                },
                G::NoReasonableGrounds,
            ),
            (
                SubmitFacts {
                    identification: IdentificationStatus::NotIdentified,
                    ..base
                },
                G::NoReasonableGrounds,
            ),
            (
                SubmitFacts {
                    referral_consent: None,
                    ..base
                },
                G::NoReferralConsent,
            ),
            (
                // A child-protection basis does not stand in for an adult's consent.
                SubmitFacts {
                    referral_consent: None,
                    child_protection_basis: true,
                    ..base
                },
                G::NoReferralConsent,
            ),
            (SubmitFacts { is_minor: true, ..base }, G::ReceiverDoesNotAcceptMinors),
            (
                SubmitFacts {
                    requested_services: &unoffered,
                    ..base
                },
                G::ServiceNotOffered,
            ),
            (
                SubmitFacts {
                    case_region: Some("limburg"),
                    ..base
                },
                G::RegionNotServed,
            ),
            (
                SubmitFacts {
                    sender: "shelter-utrecht",
                    ..base
                },
                G::ReceiverIsSender,
            ),
            (
                SubmitFacts {
                    other_open_referral_to_receiver: true,
                    ..base
                },
                G::DuplicateOpenReferral,
            ),
        ];
        for (facts, code) in &cases {
            assert_eq!(submit_guards(facts), vec![*code], "{code}");
        }
        // Every guard code has a case above.
        for code in G::ALL {
            assert!(cases.iter().any(|(_, c)| *c == code), "{code} untested");
        }
    }

    #[test]
    fn all_guards_at_once() {
        let fx = Fixture::new();
        let unoffered = vec!["dentist".to_owned()];
        let facts = SubmitFacts {
            identification: IdentificationStatus::Signal,
            is_minor: true,
            referral_consent: None,
            child_protection_basis: false,
            sender: "shelter-utrecht",
            requested_services: &unoffered,
            case_region: Some("zeeland"),
            other_open_referral_to_receiver: true,
            ..fx.passing()
        };
        assert_eq!(submit_guards(&facts), GuardCode::ALL.to_vec());
        assert_eq!(GuardCode::ALL.len(), 7);
    }

    #[test]
    fn region_guard_skips_national_receivers_and_unknown_regions() {
        let fx = Fixture::new();
        let base = fx.passing();
        let national = SubmitFacts {
            case_region: Some("limburg"),
            receiver: ReceiverFacts {
                national: true,
                regions: &[],
                ..base.receiver
            },
            ..base
        };
        assert_eq!(submit_guards(&national), vec![]);
        let no_region = SubmitFacts {
            case_region: None,
            receiver: ReceiverFacts {
                regions: &[],
                ..base.receiver
            },
            ..base
        };
        assert_eq!(submit_guards(&no_region), vec![]);
    }

    #[test]
    fn children() {
        let fx = Fixture::new();
        let base = fx.passing();
        let child_receiver = ReceiverFacts {
            accepts_minors: true,
            ..base.receiver
        };
        let guardian = SubmitFacts {
            is_minor: true,
            referral_consent: Some(ConsentGiver::Guardian),
            receiver: child_receiver,
            ..base
        };
        assert_eq!(submit_guards(&guardian), vec![]);
        let legal_rep = SubmitFacts {
            referral_consent: Some(ConsentGiver::LegalRepresentative),
            ..guardian
        };
        assert_eq!(submit_guards(&legal_rep), vec![]);
        let statutory = SubmitFacts {
            referral_consent: None,
            child_protection_basis: true,
            ..guardian
        };
        assert_eq!(submit_guards(&statutory), vec![]);
        let neither = SubmitFacts {
            child_protection_basis: false,
            ..statutory
        };
        assert_eq!(submit_guards(&neither), vec![GuardCode::NoReferralConsent]);

        // A presumed minor (no age known) to an organisation for adults only.
        let presumed = crate::domain::case::is_minor(None, true);
        let to_adults_only = SubmitFacts {
            is_minor: presumed,
            referral_consent: Some(ConsentGiver::Guardian),
            ..base
        };
        assert_eq!(
            submit_guards(&to_adults_only),
            vec![GuardCode::ReceiverDoesNotAcceptMinors]
        );
    }

    #[test]
    fn guard_codes_have_stable_text_and_descriptions() {
        let texts: Vec<&str> = GuardCode::ALL.iter().map(GuardCode::as_str).collect();
        assert_eq!(
            texts,
            vec![
                "no_reasonable_grounds",
                "no_referral_consent",
                "receiver_does_not_accept_minors",
                "service_not_offered",
                "region_not_served",
                "receiver_is_sender",
                "duplicate_open_referral",
            ]
        );
        for code in GuardCode::ALL {
            let d = code.description();
            assert!(d.ends_with('.') && d.len() > 20, "{code}: {d}");
        }
    }

    #[test]
    fn enum_text_round_trips() {
        fn check<T>(all: &[T])
        where
            T: Copy + PartialEq + fmt::Debug + Serialize + std::str::FromStr + fmt::Display,
            T::Err: fmt::Debug,
        {
            for v in all {
                assert_eq!(serde_json::to_string(v).unwrap(), format!("\"{v}\""));
                assert_eq!(v.to_string().parse::<T>().ok(), Some(*v));
            }
        }
        check(&ReferralState::ALL);
        check(&Action::ALL);
        check(&Party::ALL);
        check(&Urgency::ALL);
        check(&DeclineReason::ALL);
        check(&Outcome::ALL);
        check(&GuardCode::ALL);
        assert_eq!(S::InCare.as_str(), "in_care");
        assert_eq!(A::StartCare.as_str(), "start_care");
        assert!("in-care".parse::<S>().is_err());
    }

    // --- diagram ---------------------------------------------------------

    #[test]
    fn mermaid_contains_every_edge() {
        let m = mermaid();
        assert!(m.starts_with("stateDiagram-v2\n    [*] --> draft\n"));
        assert!(m.ends_with('\n'));
        for (from, action, _, to) in EXPECTED {
            let prefix = format!("    {from} --> {to} : {action} by ");
            let line = m
                .lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("missing edge {prefix}\n{m}"));
            for (f, a, party, _) in EXPECTED {
                if f == from && a == action {
                    assert!(line.contains(party.as_str()), "{line} lacks {party}");
                }
            }
        }
        for terminal in ["completed", "declined", "withdrawn"] {
            assert!(m.contains(&format!("    {terminal} --> [*]\n")), "{terminal}");
        }
        // One line per edge, the entry and the three exits, nothing else.
        let distinct_edges: std::collections::BTreeSet<(S, A)> = EXPECTED.iter().map(|(f, a, _, _)| (*f, *a)).collect();
        assert_eq!(m.lines().count(), 1 + 1 + distinct_edges.len() + 3);
        assert_eq!(m, mermaid());
        assert!(m.contains("    draft --> withdrawn : withdraw by sending_caseworker or system\n"));
    }

    // --- property: random walks ------------------------------------------

    proptest! {
        #[test]
        fn random_walks_stay_inside_the_table(
            steps in prop::collection::vec((0..ALL_ACTIONS.len(), 0..PARTY_SETS.len(), any::<bool>()), 0..40)
        ) {
            let mut state = S::Draft;
            for (a, p, with_fields) in steps {
                let action = ALL_ACTIONS[a];
                let parties = PARTY_SETS[p];
                let request = if with_fields { valid_request(action) } else { TransitionRequest::new(action) };
                let was_terminal = state.is_terminal();
                let expected = expected_to(state, action, parties);
                match decide(state, &request, parties) {
                    Ok(next) => {
                        prop_assert!(!was_terminal, "left terminal state {}", state);
                        prop_assert_eq!(Some(next), expected);
                        state = next;
                    }
                    Err(TransitionRefusal::NotAllowed { allowed, .. }) => {
                        prop_assert_eq!(expected, None);
                        if was_terminal {
                            prop_assert!(allowed.is_empty());
                        }
                    }
                    Err(TransitionRefusal::MissingFields(problems)) => {
                        prop_assert!(expected.is_some());
                        prop_assert!(!with_fields && needs_fields(action));
                        prop_assert!(!problems.is_empty());
                    }
                }
                prop_assert!(ALL_STATES.contains(&state));
                if was_terminal {
                    for action in ALL_ACTIONS {
                        for parties in PARTY_SETS {
                            let refused = matches!(
                                decide(state, &valid_request(action), parties),
                                Err(TransitionRefusal::NotAllowed { .. })
                            );
                            prop_assert!(refused);
                        }
                    }
                }
            }
        }
    }
}

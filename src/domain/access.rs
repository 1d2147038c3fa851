//! Who may see and do what: the one place that decides it.
//!
//! Every route, single or list, asks one function here before it answers, and before any
//! state check: a caller who may not know a resource exists gets [`Denial::Hidden`] (404)
//! whatever state the resource is in, so no answer tells another organisation that a case,
//! referral or conversation exists. A caller who may know it exists but may not do this gets
//! [`Denial::Forbidden`] (403). `docs/privacy.md` §2 is the same table in prose.
//!
//! Pure: the callers load the facts (who owns the case, who received it) and pass them in.

use std::fmt;

use crate::domain::text::text_enum;

text_enum! {
    /// What a user may do in `nrm`, from the token's `roles`. Unknown role names are ignored.
    pub enum Role {
        /// Hulpverlener: files cases and referrals.
        Caseworker = "caseworker",
        /// Intake staff of a partner organisation: answers handovers.
        Intake = "intake",
        /// National focal point staff: audits flows and statistics.
        Coordinator = "coordinator",
        /// Administers the organisation's account and notifications.
        Admin = "admin",
    }
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        text.parse().ok()
    }
}

/// What a machine client may do: a system of an organisation (the chat platform of Fier, a
/// partner's case system) holding a client-credentials token. Machines have no roles; each
/// scope opens one action, and every action not listed here is kept for people
/// (`docs/integration.md`, "Machine clients").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Open a case, e.g. when a chat ends with a request for help.
    CaseOpen,
    /// Record on a case of the organisation that consent was given (in the chat).
    ConsentRecord,
    /// Read the referrals to and from the organisation (API and FHIR): the pull after a
    /// webhook told.
    ReferralRead,
    /// Report the organisation's live capacity.
    CapacityReport,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::CaseOpen,
        Scope::ConsentRecord,
        Scope::ReferralRead,
        Scope::CapacityReport,
    ];

    /// The scope's name in a token's `scope` claim.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::CaseOpen => "nrm:case.open",
            Scope::ConsentRecord => "nrm:consent.record",
            Scope::ReferralRead => "nrm:referral.read",
            Scope::CapacityReport => "nrm:capacity.report",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

text_enum! {
    /// Who acted, as the audit trail records it.
    pub enum ActorKind {
        /// A person, signed in or with a user token (the service itself counts as one: `system`).
        Person = "person",
        /// A system of an organisation, with a client-credentials token.
        Machine = "machine",
    }
}

/// The roles that handle handovers and so may read referral views (with the pseudonym, the
/// note and the history texts).
pub const REFERRAL_STAFF: &[Role] = &[Role::Caseworker, Role::Intake, Role::Admin];

/// The authenticated caller: who, for which organisation, in which roles. Made from a
/// verified token (`auth`) or a web session; the service acts as `Actor::system`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub sub: String,
    pub org: String,
    pub roles: Vec<Role>,
    /// Whether `org` is the registry's national focal point.
    pub at_focal_point: bool,
    /// A machine client's scopes (then `sub` is its client id and `roles` is empty); `None`
    /// for a person.
    pub machine: Option<Vec<Scope>>,
}

impl Actor {
    /// The service itself, acting in `org` (consent withdrawal, erasure, deadlines).
    pub fn system(org: &str) -> Self {
        Self {
            sub: "system".into(),
            org: org.to_string(),
            roles: Vec::new(),
            at_focal_point: false,
            machine: None,
        }
    }

    pub fn kind(&self) -> ActorKind {
        if self.machine.is_some() {
            ActorKind::Machine
        } else {
            ActorKind::Person
        }
    }

    pub fn is_system(&self) -> bool {
        self.sub == "system" && self.roles.is_empty()
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The caller as the decisions below see them.
    pub fn principal(&self) -> Principal<'_> {
        Principal {
            sub: &self.sub,
            org: &self.org,
            roles: &self.roles,
            at_focal_point: self.at_focal_point,
            machine: self.machine.as_deref(),
        }
    }

    /// The roles as the audit trail records them: `caseworker,intake`; for a machine client
    /// its scopes: `nrm:case.open nrm:consent.record`.
    pub fn roles_text(&self) -> String {
        match &self.machine {
            Some(scopes) => scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "),
            None => self.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(","),
        }
    }
}

/// The caller, as access decisions see them.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    pub sub: &'a str,
    pub org: &'a str,
    pub roles: &'a [Role],
    /// Whether `org` is the national focal point of the registry.
    pub at_focal_point: bool,
    /// A machine client's scopes; `None` for a person.
    pub machine: Option<&'a [Scope]>,
}

impl Principal<'_> {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }

    pub fn is_focal_point_coordinator(&self) -> bool {
        self.at_focal_point && self.has(Role::Coordinator)
    }
}

/// What a refused caller needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    Role(Role),
    AnyRole(&'static [Role]),
    FocalPointCoordinator,
    /// Only the organisation itself (its capacity).
    SameOrganisation,
    /// Only the caseworkers of the organisation holding the conversation record its steps.
    ConversationOwner,
    /// A person: the action is not one a machine client may take.
    Person,
    /// A machine client whose token carries this scope.
    Scope(Scope),
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Role(role) => write!(f, "this action needs the `{}` role", role.as_str()),
            Requirement::AnyRole(roles) => {
                let names: Vec<String> = roles.iter().map(|r| format!("`{}`", r.as_str())).collect();
                write!(f, "this action needs one of the roles {}", names.join(", "))
            }
            Requirement::FocalPointCoordinator => f.write_str("this is for coordinators of the national focal point"),
            Requirement::SameOrganisation => f.write_str("only the organisation itself reports its capacity"),
            Requirement::ConversationOwner => {
                f.write_str("only the caseworkers of the organisation holding the case record these steps")
            }
            Requirement::Person => f.write_str(
                "this action is kept for people: a machine client may open a case, record consent given in \
                 the chat, read referrals and report capacity, but a person submits, answers and closes",
            ),
            Requirement::Scope(scope) => write!(f, "this machine client's token lacks the scope `{}`", scope.as_str()),
        }
    }
}

/// Why a caller is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The caller may not learn that the resource exists (HTTP 404).
    Hidden,
    /// The caller may know the resource but may not do this (HTTP 403).
    Forbidden(Requirement),
}

/// A refusal to someone who may know the resource. A machine client lacks a role because it
/// has none: what it hears is that the action is kept for people.
fn forbidden(p: Principal, needed: Requirement) -> Denial {
    let role_needed = matches!(
        needed,
        Requirement::Role(_)
            | Requirement::AnyRole(_)
            | Requirement::FocalPointCoordinator
            | Requirement::ConversationOwner
    );
    Denial::Forbidden(if p.machine.is_some() && role_needed {
        Requirement::Person
    } else {
        needed
    })
}

fn allow_if(p: Principal, ok: bool, needed: Requirement) -> Result<(), Denial> {
    if ok { Ok(()) } else { Err(forbidden(p, needed)) }
}

/// For a machine client, the answer to an action that `scope` opens; `None` for a person,
/// whose roles decide.
fn machine_grant(p: Principal, scope: Scope) -> Option<Result<(), Denial>> {
    p.machine.map(|scopes| {
        if scopes.contains(&scope) {
            Ok(())
        } else {
            Err(Denial::Forbidden(Requirement::Scope(scope)))
        }
    })
}

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

/// How the caller may see a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseAccess {
    /// A caseworker or admin of the organisation that owns the case: everything.
    Owner,
    /// A coordinator of the national focal point: facts for identification and oversight,
    /// never the pseudonym or identifying details.
    FocalPoint,
    /// Staff of an organisation holding a (non-draft) referral of the case: the minimum
    /// case data; identifying details only when entitled.
    Receiver,
}

/// What access decisions need to know about a case.
#[derive(Debug, Clone, Copy)]
pub struct CaseFacts<'a> {
    /// The owning organisation.
    pub owner: &'a str,
    /// Organisations that received a submitted referral of the case, whatever its state now.
    pub receivers: &'a [&'a str],
}

/// Reading one case (`GET /cases/{id}`): which view, or why not.
pub fn read_case(p: Principal, case: CaseFacts) -> Result<CaseAccess, Denial> {
    let owner_org = p.org == case.owner;
    let receiver_org = case.receivers.contains(&p.org);
    if owner_org && p.has_any(&[Role::Caseworker, Role::Admin]) {
        return Ok(CaseAccess::Owner);
    }
    if p.is_focal_point_coordinator() {
        return Ok(CaseAccess::FocalPoint);
    }
    if receiver_org && p.has_any(&[Role::Intake, Role::Caseworker]) {
        return Ok(CaseAccess::Receiver);
    }
    if owner_org {
        return Err(forbidden(p, Requirement::Role(Role::Caseworker)));
    }
    if receiver_org {
        return Err(forbidden(p, Requirement::Role(Role::Intake)));
    }
    Err(Denial::Hidden)
}

/// What someone does to a case (beyond reading it), each with who may do it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseAction {
    /// Change the facts or identifying details.
    Update,
    /// Record reasonable grounds (Art. 11(2)).
    RecordReasonableGrounds,
    /// Decide identified / not identified.
    DecideIdentification,
    ReadConsents,
    RecordConsent,
    WithdrawConsent,
    RecordLegalBasis,
    NotifyAnonymously,
    /// Draft a referral, or ask for routing suggestions.
    Refer,
    ReadThreeWay,
    OfferThreeWay,
    Close,
    Export,
    ReadDisclosures,
    Erase,
}

/// Who may take a case action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taker {
    /// Caseworkers of the owning organisation.
    OwnerCaseworker,
    /// Caseworkers and admins of the owning organisation.
    OwnerStaff,
    /// Admins of the owning organisation.
    OwnerAdmin,
    FocalPointCoordinator,
}

impl CaseAction {
    pub const ALL: [CaseAction; 15] = [
        Self::Update,
        Self::RecordReasonableGrounds,
        Self::DecideIdentification,
        Self::ReadConsents,
        Self::RecordConsent,
        Self::WithdrawConsent,
        Self::RecordLegalBasis,
        Self::NotifyAnonymously,
        Self::Refer,
        Self::ReadThreeWay,
        Self::OfferThreeWay,
        Self::Close,
        Self::Export,
        Self::ReadDisclosures,
        Self::Erase,
    ];

    /// The scope that lets a machine client take this action on its organisation's case;
    /// `None`: kept for people.
    pub fn machine_scope(self) -> Option<Scope> {
        match self {
            Self::RecordConsent => Some(Scope::ConsentRecord),
            _ => None,
        }
    }

    fn taker(self) -> Taker {
        match self {
            Self::Close | Self::Export | Self::ReadDisclosures => Taker::OwnerStaff,
            Self::Erase => Taker::OwnerAdmin,
            Self::DecideIdentification => Taker::FocalPointCoordinator,
            Self::Update
            | Self::RecordReasonableGrounds
            | Self::ReadConsents
            | Self::RecordConsent
            | Self::WithdrawConsent
            | Self::RecordLegalBasis
            | Self::NotifyAnonymously
            | Self::Refer
            | Self::ReadThreeWay
            | Self::OfferThreeWay => Taker::OwnerCaseworker,
        }
    }
}

/// Whether the caller may take `action` on the case. Other organisations get
/// [`Denial::Hidden`] for every action they may not take, even where they may read the case
/// (a receiver, the focal point): another organisation's resources answer 404. Only the
/// owning organisation's own staff hear that they lack a role (403).
pub fn act_on_case(p: Principal, case: CaseFacts, action: CaseAction) -> Result<(), Denial> {
    let owner_org = p.org == case.owner;
    match action.taker() {
        Taker::FocalPointCoordinator if p.is_focal_point_coordinator() => Ok(()),
        Taker::FocalPointCoordinator if owner_org => Err(forbidden(p, Requirement::FocalPointCoordinator)),
        _ if !owner_org => Err(Denial::Hidden),
        Taker::FocalPointCoordinator => Err(Denial::Hidden),
        _ if p.machine.is_some() => match action.machine_scope().and_then(|scope| machine_grant(p, scope)) {
            Some(machine) => machine,
            None => Err(Denial::Forbidden(Requirement::Person)),
        },
        Taker::OwnerCaseworker => allow_if(p, p.has(Role::Caseworker), Requirement::Role(Role::Caseworker)),
        Taker::OwnerStaff => allow_if(
            p,
            p.has_any(&[Role::Caseworker, Role::Admin]),
            Requirement::AnyRole(&[Role::Caseworker, Role::Admin]),
        ),
        Taker::OwnerAdmin => allow_if(p, p.has(Role::Admin), Requirement::Role(Role::Admin)),
    }
}

/// Recording identification decisions: reasonable grounds by the owner's caseworkers, the
/// final decision by the focal point's coordinators. This is the route-level check; which
/// decision each may take is `case::decide_identification`'s.
pub fn record_identification(p: Principal, case: CaseFacts) -> Result<(), Denial> {
    if p.is_focal_point_coordinator() {
        return Ok(());
    }
    act_on_case(p, case, CaseAction::RecordReasonableGrounds)
}

/// Opening a case (`POST /cases`).
pub fn open_case(p: Principal) -> Result<(), Denial> {
    if let Some(machine) = machine_grant(p, Scope::CaseOpen) {
        return machine;
    }
    allow_if(p, p.has(Role::Caseworker), Requirement::Role(Role::Caseworker))
}

/// Looking up the organisation's cases by pseudonym, before opening a new one: whether this
/// is someone already known is a caseworker's judgement, not a machine's.
pub fn find_by_pseudonym(p: Principal) -> Result<(), Denial> {
    allow_if(p, p.has(Role::Caseworker), Requirement::Role(Role::Caseworker))
}

/// The organisation's case list and the search by name.
pub fn list_cases(p: Principal) -> Result<(), Denial> {
    allow_if(
        p,
        p.has_any(&[Role::Caseworker, Role::Admin]),
        Requirement::AnyRole(&[Role::Caseworker, Role::Admin]),
    )
}

// ---------------------------------------------------------------------------
// Referrals
// ---------------------------------------------------------------------------

/// What access decisions need to know about a referral.
#[derive(Debug, Clone, Copy)]
pub struct ReferralFacts<'a> {
    pub from: &'a str,
    pub to: &'a str,
    /// Submitted at some point: drafts (and drafts withdrawn as such) are the sender's alone.
    pub handed_over: bool,
}

/// Reading a referral view: staff of the sender, and of the receiver once handed over.
pub fn read_referral(p: Principal, referral: ReferralFacts) -> Result<(), Denial> {
    let sender = p.org == referral.from;
    let receiver = p.org == referral.to && referral.handed_over;
    if !(sender || receiver) {
        return Err(Denial::Hidden);
    }
    list_referrals(p)
}

/// Listing referrals to or from the caller's organisation: the same roles as reading one.
pub fn list_referrals(p: Principal) -> Result<(), Denial> {
    if let Some(machine) = machine_grant(p, Scope::ReferralRead) {
        return machine;
    }
    allow_if(p, p.has_any(REFERRAL_STAFF), Requirement::AnyRole(REFERRAL_STAFF))
}

/// Moving a referral on: the caller must see it, then act as one of its parties (the
/// sender's caseworkers, the receiver's intake). Which actions each party may take from
/// which state is `referral::decide`'s.
pub fn move_referral(p: Principal, referral: ReferralFacts) -> Result<(), Denial> {
    read_referral(p, referral)?;
    let sending_caseworker = p.org == referral.from && p.has(Role::Caseworker);
    let receiving_intake = p.org == referral.to && p.has(Role::Intake);
    let needed = if p.org == referral.from {
        Role::Caseworker
    } else {
        Role::Intake
    };
    allow_if(p, sending_caseworker || receiving_intake, Requirement::Role(needed))
}

// ---------------------------------------------------------------------------
// Three-way conversations
// ---------------------------------------------------------------------------

/// What access decisions need to know about a three-way conversation.
#[derive(Debug, Clone, Copy)]
pub struct ThreeWayFacts<'a> {
    /// The organisation holding the case.
    pub owner: &'a str,
    pub police: &'a str,
    /// The invited investigator's `sub`, once scheduled.
    pub officer: Option<&'a str>,
}

/// How the caller takes part in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreeWaySide {
    /// A caseworker of the organisation holding the case: records the steps.
    Owner,
    /// The invited investigator: reads.
    Investigator,
}

/// The roles an invited investigator's token must carry.
const INVESTIGATOR_ROLES: &[Role] = &[Role::Intake, Role::Caseworker];

pub fn read_three_way(p: Principal, conversation: ThreeWayFacts) -> Result<ThreeWaySide, Denial> {
    let owner_org = p.org == conversation.owner;
    let invited = p.org == conversation.police && conversation.officer == Some(p.sub);
    if owner_org && p.has(Role::Caseworker) {
        return Ok(ThreeWaySide::Owner);
    }
    if invited && p.has_any(INVESTIGATOR_ROLES) {
        return Ok(ThreeWaySide::Investigator);
    }
    if owner_org {
        return Err(forbidden(p, Requirement::Role(Role::Caseworker)));
    }
    if invited {
        return Err(forbidden(p, Requirement::AnyRole(INVESTIGATOR_ROLES)));
    }
    Err(Denial::Hidden)
}

pub fn move_three_way(p: Principal, conversation: ThreeWayFacts) -> Result<(), Denial> {
    match read_three_way(p, conversation)? {
        ThreeWaySide::Owner => Ok(()),
        ThreeWaySide::Investigator => Err(forbidden(p, Requirement::ConversationOwner)),
    }
}

/// The conversations the calling investigator is invited to.
pub fn list_invitations(p: Principal) -> Result<(), Denial> {
    allow_if(
        p,
        p.has_any(INVESTIGATOR_ROLES),
        Requirement::AnyRole(INVESTIGATOR_ROLES),
    )
}

// ---------------------------------------------------------------------------
// The focal point, administration, the registry
// ---------------------------------------------------------------------------

/// Oversight, statistics, the audit trail and anonymous notifications.
pub fn oversee(p: Principal) -> Result<(), Denial> {
    allow_if(p, p.is_focal_point_coordinator(), Requirement::FocalPointCoordinator)
}

/// Whose outbox messages an admin sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxScope<'a> {
    /// The focal point's admins: every organisation's.
    All,
    Organisation(&'a str),
}

impl OutboxScope<'_> {
    pub fn includes(&self, recipient_org: &str) -> bool {
        match self {
            OutboxScope::All => true,
            OutboxScope::Organisation(org) => *org == recipient_org,
        }
    }
}

pub fn outbox<'a>(p: Principal<'a>) -> Result<OutboxScope<'a>, Denial> {
    allow_if(p, p.has(Role::Admin), Requirement::Role(Role::Admin))?;
    Ok(if p.at_focal_point {
        OutboxScope::All
    } else {
        OutboxScope::Organisation(p.org)
    })
}

/// One outbox message: outside the admin's scope it does not exist for them.
pub fn outbox_message(p: Principal, recipient_org: &str) -> Result<(), Denial> {
    if outbox(p)?.includes(recipient_org) {
        Ok(())
    } else {
        Err(Denial::Hidden)
    }
}

/// Managing the organisation's webhook subscriptions and reading their delivery logs: its
/// admins. A subscription of another organisation does not exist for them.
pub fn manage_webhooks(p: Principal, owner: Option<&str>) -> Result<(), Denial> {
    if owner.is_some_and(|owner| owner != p.org) {
        return Err(Denial::Hidden);
    }
    allow_if(p, p.has(Role::Admin), Requirement::Role(Role::Admin))
}

/// Every organisation's live capacity at a glance: the focal point's coordinators and
/// admins, who place victims in shelter. (The directory itself, capacity included, is
/// readable by everyone signed in; this is the overview page.)
pub fn capacity_overview(p: Principal) -> Result<(), Denial> {
    const FOCAL_POINT_STAFF: &[Role] = &[Role::Coordinator, Role::Admin];
    allow_if(
        p,
        p.at_focal_point && p.has_any(FOCAL_POINT_STAFF),
        Requirement::AnyRole(FOCAL_POINT_STAFF),
    )
}

/// Reporting live capacity: intake or admin of the organisation itself.
pub fn report_capacity(p: Principal, organisation: &str) -> Result<(), Denial> {
    allow_if(p, p.org == organisation, Requirement::SameOrganisation)?;
    if let Some(machine) = machine_grant(p, Scope::CapacityReport) {
        return machine;
    }
    allow_if(
        p,
        p.has_any(&[Role::Intake, Role::Admin]),
        Requirement::AnyRole(&[Role::Intake, Role::Admin]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORGS: [&str; 5] = ["fier", "csg", "comensha", "police", "offlimits"];

    fn role_sets() -> Vec<Vec<Role>> {
        let mut sets = vec![Vec::new()];
        for role in Role::ALL {
            sets.push(vec![role]);
        }
        sets.push(Role::ALL.to_vec());
        sets
    }

    fn principal<'a>(org: &'a str, roles: &'a [Role]) -> Principal<'a> {
        Principal {
            sub: "someone",
            org,
            roles,
            at_focal_point: org == "comensha",
            machine: None,
        }
    }

    const CASE: CaseFacts = CaseFacts {
        owner: "fier",
        receivers: &["csg"],
    };

    #[test]
    fn strangers_never_learn_that_a_case_exists() {
        for roles in role_sets() {
            let p = principal("offlimits", &roles);
            assert_eq!(read_case(p, CASE), Err(Denial::Hidden));
            for action in CaseAction::ALL {
                assert_eq!(
                    act_on_case(p, CASE, action),
                    Err(Denial::Hidden),
                    "{action:?} {roles:?}"
                );
            }
        }
    }

    #[test]
    fn case_views_by_organisation_and_role() {
        use CaseAccess::*;
        let cases: &[(&str, &[Role], Result<CaseAccess, Denial>)] = &[
            ("fier", &[Role::Caseworker], Ok(Owner)),
            ("fier", &[Role::Admin], Ok(Owner)),
            (
                "fier",
                &[Role::Intake],
                Err(Denial::Forbidden(Requirement::Role(Role::Caseworker))),
            ),
            ("fier", &[], Err(Denial::Forbidden(Requirement::Role(Role::Caseworker)))),
            ("comensha", &[Role::Coordinator], Ok(FocalPoint)),
            ("comensha", &[Role::Intake], Err(Denial::Hidden)),
            ("csg", &[Role::Intake], Ok(Receiver)),
            ("csg", &[Role::Caseworker], Ok(Receiver)),
            (
                "csg",
                &[Role::Admin],
                Err(Denial::Forbidden(Requirement::Role(Role::Intake))),
            ),
            (
                "csg",
                &[Role::Coordinator],
                Err(Denial::Forbidden(Requirement::Role(Role::Intake))),
            ),
            ("police", &Role::ALL, Err(Denial::Hidden)),
        ];
        for (org, roles, expected) in cases {
            assert_eq!(read_case(principal(org, roles), CASE), *expected, "{org} {roles:?}");
        }
    }

    #[test]
    fn only_the_owner_acts_on_a_case_and_the_focal_point_decides_identification() {
        for org in ORGS {
            for roles in role_sets() {
                let p = principal(org, &roles);
                for action in CaseAction::ALL {
                    let allowed = act_on_case(p, CASE, action).is_ok();
                    let expected = match action {
                        CaseAction::DecideIdentification => org == "comensha" && roles.contains(&Role::Coordinator),
                        CaseAction::Erase => org == "fier" && roles.contains(&Role::Admin),
                        CaseAction::Close | CaseAction::Export | CaseAction::ReadDisclosures => {
                            org == "fier" && (roles.contains(&Role::Caseworker) || roles.contains(&Role::Admin))
                        }
                        _ => org == "fier" && roles.contains(&Role::Caseworker),
                    };
                    assert_eq!(allowed, expected, "{org} {roles:?} {action:?}");
                }
            }
        }
    }

    #[test]
    fn other_organisations_hear_404_even_where_they_may_read_the_case() {
        for org in ["csg", "comensha", "police", "offlimits"] {
            for roles in role_sets() {
                let p = principal(org, &roles);
                for action in CaseAction::ALL {
                    if action == CaseAction::DecideIdentification && p.is_focal_point_coordinator() {
                        continue;
                    }
                    assert_eq!(
                        act_on_case(p, CASE, action),
                        Err(Denial::Hidden),
                        "{org} {roles:?} {action:?}"
                    );
                }
            }
        }
        let owner_intake = principal("fier", &[Role::Intake]);
        assert_eq!(
            act_on_case(owner_intake, CASE, CaseAction::Erase),
            Err(Denial::Forbidden(Requirement::Role(Role::Admin)))
        );
        assert_eq!(
            record_identification(principal("csg", &[Role::Intake]), CASE),
            Err(Denial::Hidden)
        );
    }

    #[test]
    fn referrals_are_for_handover_staff_of_the_two_parties() {
        let submitted = ReferralFacts {
            from: "fier",
            to: "csg",
            handed_over: true,
        };
        let draft = ReferralFacts {
            handed_over: false,
            ..submitted
        };
        for org in ORGS {
            for roles in role_sets() {
                let p = principal(org, &roles);
                let staff = roles.iter().any(|r| REFERRAL_STAFF.contains(r));
                let party = org == "fier" || org == "csg";
                let expected = if !party {
                    Err(Denial::Hidden)
                } else if staff {
                    Ok(())
                } else {
                    Err(Denial::Forbidden(Requirement::AnyRole(REFERRAL_STAFF)))
                };
                assert_eq!(read_referral(p, submitted), expected, "{org} {roles:?}");
                assert_eq!(list_referrals(p).is_ok(), staff, "{org} {roles:?}");
                if org == "csg" {
                    assert_eq!(read_referral(p, draft), Err(Denial::Hidden), "drafts stay the sender's");
                }
                let moves = (org == "fier" && roles.contains(&Role::Caseworker))
                    || (org == "csg" && roles.contains(&Role::Intake));
                assert_eq!(move_referral(p, submitted).is_ok(), moves, "{org} {roles:?}");
            }
        }
    }

    #[test]
    fn focal_point_coordinators_get_no_referral_views() {
        let to_focal_point = ReferralFacts {
            from: "fier",
            to: "comensha",
            handed_over: true,
        };
        let coordinator = principal("comensha", &[Role::Coordinator]);
        assert!(read_referral(coordinator, to_focal_point).is_err());
        assert!(list_referrals(coordinator).is_err());
        assert!(read_referral(principal("comensha", &[Role::Intake]), to_focal_point).is_ok());
    }

    #[test]
    fn conversations_for_the_owner_and_the_invited_investigator() {
        let conversation = ThreeWayFacts {
            owner: "fier",
            police: "police",
            officer: Some("someone"),
        };
        assert_eq!(
            read_three_way(principal("fier", &[Role::Caseworker]), conversation),
            Ok(ThreeWaySide::Owner)
        );
        assert_eq!(
            read_three_way(principal("police", &[Role::Intake]), conversation),
            Ok(ThreeWaySide::Investigator)
        );
        assert!(matches!(
            read_three_way(principal("police", &[]), conversation),
            Err(Denial::Forbidden(_))
        ));
        let other_officer = Principal {
            sub: "another",
            ..principal("police", &[Role::Intake])
        };
        assert_eq!(read_three_way(other_officer, conversation), Err(Denial::Hidden));
        assert_eq!(
            move_three_way(principal("police", &[Role::Intake]), conversation),
            Err(Denial::Forbidden(Requirement::ConversationOwner))
        );
        assert_eq!(
            read_three_way(principal("comensha", &[Role::Coordinator]), conversation),
            Err(Denial::Hidden)
        );
    }

    #[test]
    fn outbox_scopes() {
        assert_eq!(
            outbox(principal("csg", &[Role::Admin])),
            Ok(OutboxScope::Organisation("csg"))
        );
        assert_eq!(outbox(principal("comensha", &[Role::Admin])), Ok(OutboxScope::All));
        assert!(outbox(principal("comensha", &[Role::Coordinator])).is_err());
        assert_eq!(
            outbox_message(principal("fier", &[Role::Admin]), "csg"),
            Err(Denial::Hidden)
        );
        assert_eq!(outbox_message(principal("csg", &[Role::Admin]), "csg"), Ok(()));
    }

    #[test]
    fn webhooks_are_managed_by_the_organisations_own_admins() {
        assert_eq!(manage_webhooks(principal("csg", &[Role::Admin]), None), Ok(()));
        assert_eq!(manage_webhooks(principal("csg", &[Role::Admin]), Some("csg")), Ok(()));
        assert_eq!(
            manage_webhooks(principal("csg", &[Role::Intake]), Some("csg")),
            Err(Denial::Forbidden(Requirement::Role(Role::Admin)))
        );
        for roles in role_sets() {
            assert_eq!(
                manage_webhooks(principal("comensha", &roles), Some("csg")),
                Err(Denial::Hidden),
                "not even the focal point's admins see another organisation's endpoints"
            );
        }
    }

    #[test]
    fn capacity_is_reported_by_the_organisation_itself() {
        assert!(report_capacity(principal("csg", &[Role::Intake]), "csg").is_ok());
        assert!(report_capacity(principal("csg", &[Role::Admin]), "csg").is_ok());
        assert!(report_capacity(principal("csg", &[Role::Caseworker]), "csg").is_err());
        assert_eq!(
            report_capacity(principal("fier", &Role::ALL), "csg"),
            Err(Denial::Forbidden(Requirement::SameOrganisation))
        );
    }
    fn machine<'a>(org: &'a str, scopes: &'a [Scope]) -> Principal<'a> {
        Principal {
            sub: "fier-chat",
            org,
            roles: &[],
            at_focal_point: org == "comensha",
            machine: Some(scopes),
        }
    }

    const KEPT_FOR_PEOPLE: Result<(), Denial> = Err(Denial::Forbidden(Requirement::Person));

    #[test]
    fn a_machine_opens_cases_and_records_consent_and_people_do_the_rest() {
        let all = Scope::ALL;
        let chat = machine("fier", &all);
        assert_eq!(open_case(chat), Ok(()));
        for action in CaseAction::ALL {
            let expected = if action == CaseAction::RecordConsent {
                Ok(())
            } else {
                KEPT_FOR_PEOPLE
            };
            assert_eq!(act_on_case(chat, CASE, action), expected, "{action:?}");
            assert_eq!(
                act_on_case(machine("offlimits", &all), CASE, action),
                Err(Denial::Hidden),
                "another organisation's case stays hidden from its machines too"
            );
        }
        assert_eq!(read_case(chat, CASE), Err(Denial::Forbidden(Requirement::Person)));
        assert_eq!(list_cases(chat), KEPT_FOR_PEOPLE);
        assert_eq!(find_by_pseudonym(chat), KEPT_FOR_PEOPLE);
        assert_eq!(record_identification(chat, CASE), KEPT_FOR_PEOPLE);
        let submitted = ReferralFacts {
            from: "fier",
            to: "csg",
            handed_over: true,
        };
        assert_eq!(read_referral(chat, submitted), Ok(()));
        assert_eq!(read_referral(machine("csg", &all), submitted), Ok(()));
        assert_eq!(read_referral(machine("police", &all), submitted), Err(Denial::Hidden));
        assert_eq!(move_referral(chat, submitted), KEPT_FOR_PEOPLE);
        assert_eq!(move_referral(machine("csg", &all), submitted), KEPT_FOR_PEOPLE);
        assert_eq!(report_capacity(chat, "fier"), Ok(()));
        assert_eq!(
            report_capacity(chat, "csg"),
            Err(Denial::Forbidden(Requirement::SameOrganisation))
        );
        assert_eq!(oversee(machine("comensha", &all)), KEPT_FOR_PEOPLE);
        assert_eq!(outbox(chat), Err(Denial::Forbidden(Requirement::Person)));
        assert_eq!(list_invitations(chat), KEPT_FOR_PEOPLE);
        assert_eq!(manage_webhooks(chat, Some("fier")), KEPT_FOR_PEOPLE);
    }

    #[test]
    fn a_machine_needs_the_one_scope_of_each_action() {
        let submitted = ReferralFacts {
            from: "fier",
            to: "csg",
            handed_over: true,
        };
        let lacks = |scope| Err(Denial::Forbidden(Requirement::Scope(scope)));
        for scope in Scope::ALL {
            let only = [scope];
            let p = machine("fier", &only);
            let may = |wanted: Scope| if scope == wanted { Ok(()) } else { lacks(wanted) };
            assert_eq!(open_case(p), may(Scope::CaseOpen));
            assert_eq!(
                act_on_case(p, CASE, CaseAction::RecordConsent),
                may(Scope::ConsentRecord)
            );
            assert_eq!(read_referral(p, submitted), may(Scope::ReferralRead));
            assert_eq!(list_referrals(p), may(Scope::ReferralRead));
            assert_eq!(report_capacity(p, "fier"), may(Scope::CapacityReport));
        }
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        assert_eq!(Scope::parse("case:open"), None);
    }
}

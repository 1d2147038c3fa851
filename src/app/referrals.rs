//! Referrals: drafting a handover, the lists of incoming and outgoing ones, one referral as
//! its parties see it, and moving it through the state machine of `domain::referral`.

use serde::Serialize;
use utoipa::ToSchema;

use super::access::{LoadedCase, case_for, readable_referral, referral_facts, writable};
use super::{AppError, AppResult, Ctx, Idempotency, Page, SeenVersion};
use crate::db::referrals::{self as referral_rows, AssignedFilter, Direction};
use crate::db::{cases as case_rows, organisations as organisation_rows, outbox, staff as staff_rows};
use crate::domain::access::{self, Actor, CaseAction, Role};
use crate::domain::case::{Case, ExploitationForm, IdentificationStatus};
use crate::domain::consent::ConsentScope;
use crate::domain::deadline::{Step, StepClock, overdue_steps};
use crate::domain::ids::{CaseId, ReferralId};
use crate::domain::referral::{
    self as rules, Action, Assignee, AssignmentRefusal, DeclineReason, Effects, GuardCode, NoticeTo, Outcome, Party,
    ReceiverFacts, Referral, ReferralState, RolesView, SubmitFacts, TransitionRefusal, TransitionRequest, Urgency,
};
use crate::domain::routing::{eligibility, overridable_exclusions};
use crate::domain::text::Text;

// ---------------------------------------------------------------------------
// What a referral looks like to its parties
// ---------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub seq: i32,
    pub action: Action,
    pub from: ReferralState,
    pub to: ReferralState,
    /// `system` for transitions the service made itself (consent withdrawn).
    pub actor_sub: String,
    pub actor_org: String,
    pub at: chrono::DateTime<chrono::Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// The minimum case data a handover needs.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralCaseSummary {
    pub age_at_contact: Option<i32>,
    pub minor: bool,
    pub exploitation_forms: Vec<ExploitationForm>,
    pub region: Option<String>,
    pub language: Option<String>,
    pub pseudonym: Option<String>,
    pub identification_status: IdentificationStatus,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralView {
    pub id: uuid::Uuid,
    pub case_id: uuid::Uuid,
    pub from_organisation: String,
    pub to_organisation: String,
    pub services: Vec<String>,
    pub urgency: Urgency,
    pub note: Option<String>,
    pub state: ReferralState,
    /// Also the ETag; transitions need it in `If-Match`.
    pub version: i64,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub submitted_at: Option<chrono::DateTime<chrono::Utc>>,
    pub acknowledged_at: Option<chrono::DateTime<chrono::Utc>>,
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
    pub care_started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub closed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub decline_reason: Option<DeclineReason>,
    /// The closed loop: how support ended, reported back to the sender.
    pub outcome: Option<Outcome>,
    pub case: ReferralCaseSummary,
    pub history: Vec<HistoryEntry>,
    /// Steps past their deadline now, and whether the focal point was alerted.
    pub overdue: Vec<OverdueStep>,
    /// What the caller may do next.
    pub allowed_actions: Vec<Action>,
    /// Who at the receiving organisation took it on (their `sub`), and their name as they
    /// last signed in to the pages. Shown to the receiver only.
    pub assigned_to: Option<String>,
    pub assigned_name: Option<String>,
    /// Whether the caller may assign it now (`PUT .../assignee`).
    pub assignable: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverdueStep {
    pub step: Step,
    /// The deadline; the step is overdue since then.
    pub due_at: chrono::DateTime<chrono::Utc>,
    /// When the national focal point was alerted, once the deadline watcher has run.
    pub escalated_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralList {
    pub items: Vec<ReferralView>,
    pub next_cursor: Option<String>,
}

/// The parties the caller acts as on this referral.
fn parties_of(actor: &Actor, referral: &Referral) -> Vec<Party> {
    rules::parties(
        &actor.org,
        RolesView {
            caseworker: actor.has(Role::Caseworker),
            intake: actor.has(Role::Intake),
        },
        &referral.from_organisation,
        &referral.to_organisation,
    )
}

/// The referral as the caller sees it: note and history texts opened, the case summary,
/// overdue steps and what the caller may do next.
pub fn render(ctx: &mut Ctx, referral: &Referral) -> AppResult<ReferralView> {
    let mut views = render_all(ctx, std::slice::from_ref(referral))?;
    views.pop().ok_or(AppError::NotFound)
}

/// Renders several referrals (a list's page), reading their cases, histories and
/// escalations in one query each instead of one each per referral.
pub fn render_all(ctx: &mut Ctx, referrals: &[Referral]) -> AppResult<Vec<ReferralView>> {
    let case_ids: Vec<CaseId> = referrals.iter().map(|r| r.case_id).collect();
    let cases: std::collections::HashMap<CaseId, Case> = case_rows::cases(ctx.conn, &case_ids)?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let ids: Vec<ReferralId> = referrals.iter().map(|r| r.id).collect();
    let mut histories = referral_rows::histories_of(ctx.conn, &ids)?;
    let owing: Vec<crate::db::Id> = referrals
        .iter()
        .filter(|r| !overdue_steps(&step_clock(r), &ctx.services.limits, ctx.now.0).is_empty())
        .map(|r| crate::db::Id(r.id.0))
        .collect();
    let mut escalations: std::collections::HashMap<uuid::Uuid, Vec<outbox::EscalationRow>> = Default::default();
    if !owing.is_empty() {
        for e in outbox::escalations_of(ctx.conn, &owing)? {
            escalations.entry(e.referral_id.0).or_default().push(e);
        }
    }
    referrals
        .iter()
        .map(|referral| {
            let case = cases.get(&referral.case_id).ok_or(AppError::NotFound)?;
            let history = histories.remove(&referral.id).unwrap_or_default();
            let escalations = escalations.remove(&referral.id.0).unwrap_or_default();
            render_one(ctx, referral, case, &history, &escalations)
        })
        .collect()
}

/// Renders a referral whose case and history are in hand; reads only its escalations, and
/// only when it owes an overdue step.
fn render_known(
    ctx: &mut Ctx,
    referral: &Referral,
    case: &Case,
    history: &[crate::domain::referral::HistoryEntry],
) -> AppResult<ReferralView> {
    let escalations = if overdue_steps(&step_clock(referral), &ctx.services.limits, ctx.now.0).is_empty() {
        Vec::new()
    } else {
        outbox::escalations_of(ctx.conn, &[crate::db::Id(referral.id.0)])?
    };
    render_one(ctx, referral, case, history, &escalations)
}

fn step_clock(referral: &Referral) -> StepClock {
    StepClock {
        state: referral.state,
        urgency: referral.urgency,
        submitted_at: referral.submitted_at,
        decided_at: referral.decided_at,
    }
}

fn render_one(
    ctx: &mut Ctx,
    referral: &Referral,
    case: &Case,
    history: &[crate::domain::referral::HistoryEntry],
    escalations: &[outbox::EscalationRow],
) -> AppResult<ReferralView> {
    let history = history
        .iter()
        .map(|h| {
            Ok(HistoryEntry {
                seq: h.seq,
                action: h.action,
                from: h.from,
                to: h.to,
                actor_sub: h.actor_sub.clone(),
                actor_org: h.actor_org.clone(),
                at: h.at,
                reason_code: h.reason_code.map(|c| c.as_str().to_string()),
                reason: ctx.open("referral_history.reason", h.id, &h.reason)?,
                outcome_code: h.outcome_code.map(|c| c.as_str().to_string()),
                outcome: ctx.open("referral_history.outcome", h.id, &h.outcome)?,
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    let due = overdue_steps(&step_clock(referral), &ctx.services.limits, ctx.now.0);
    let overdue = due
        .into_iter()
        .map(|o| OverdueStep {
            step: o.step,
            due_at: o.due_at,
            escalated_at: escalations
                .iter()
                .find(|e| e.step == o.step.as_str())
                .map(|e| e.escalated_at.0),
        })
        .collect();
    // A closed or erased case is read-only: nothing on it can move.
    let parties = parties_of(ctx.actor, referral);
    let writable = case.writable().is_ok();
    let allowed_actions = if writable {
        rules::allowed_actions(referral.state, &parties)
    } else {
        Vec::new()
    };
    let assignable = writable && rules::assignment(referral, &parties, &ctx.actor.sub, &Assignee::Nobody).is_ok();
    // Who does the work inside the receiving organisation is its own business.
    let (assigned_to, assigned_name) = match &referral.assigned_to {
        Some(sub) if ctx.actor.org == referral.to_organisation => {
            let name = staff_rows::find(ctx.conn, &referral.to_organisation, sub)?.map(|s| s.display_name);
            (Some(sub.clone()), name)
        }
        _ => (None, None),
    };
    Ok(ReferralView {
        id: referral.id.0,
        case_id: referral.case_id.0,
        from_organisation: referral.from_organisation.clone(),
        to_organisation: referral.to_organisation.clone(),
        services: referral.services.clone(),
        urgency: referral.urgency,
        note: ctx.open("referrals.note", referral.id.0, &referral.note)?,
        state: referral.state,
        version: referral.version,
        created_by: referral.created_by.clone(),
        created_at: referral.created_at,
        updated_at: referral.updated_at,
        submitted_at: referral.submitted_at,
        acknowledged_at: referral.acknowledged_at,
        decided_at: referral.decided_at,
        care_started_at: referral.care_started_at,
        closed_at: referral.closed_at,
        decline_reason: referral.decline_reason,
        outcome: referral.outcome,
        case: summary(ctx, case)?,
        history,
        overdue,
        allowed_actions,
        assigned_to,
        assigned_name,
        assignable,
    })
}

fn summary(ctx: &Ctx, case: &Case) -> AppResult<ReferralCaseSummary> {
    Ok(ReferralCaseSummary {
        age_at_contact: case.age_at_contact.map(|a| i32::from(a.years())),
        minor: case.is_minor(),
        exploitation_forms: case.forms.to_vec(),
        region: case.region.clone(),
        language: case.language.clone(),
        pseudonym: ctx.open("cases.pseudonym", case.id.0, &case.pseudonym)?,
        identification_status: case.identification_status,
    })
}

// ---------------------------------------------------------------------------
// Use cases
// ---------------------------------------------------------------------------

/// A draft referral as asked for.
#[derive(Debug, Clone)]
pub struct NewReferral {
    /// A slug of the registry.
    pub to_organisation: String,
    /// Codes of the registry's vocabulary, at least one.
    pub services: Vec<String>,
    pub urgency: Urgency,
    pub note: Option<Text>,
}

/// Drafts a referral of the case (caseworker of the owning organisation, the sender).
#[tracing::instrument(skip_all, fields(case = %case_id))]
pub fn draft(ctx: &mut Ctx, case_id: CaseId, new: NewReferral, idempotency: &Idempotency) -> AppResult<ReferralView> {
    writable(&case_for(ctx, case_id, CaseAction::Refer)?)?;
    let id = match idempotency.replay(ctx)? {
        Some(id) => ReferralId(id),
        None => {
            let id = ReferralId(ctx.new_id());
            let now = ctx.now.0;
            let referral = Referral {
                id,
                case_id,
                from_organisation: ctx.actor.org.clone(),
                to_organisation: new.to_organisation,
                services: new.services,
                urgency: new.urgency,
                note: ctx.seal_opt("referrals.note", id.0, new.note.as_ref().map(Text::as_str)),
                state: ReferralState::Draft,
                version: 1,
                consent_id: None,
                created_by: ctx.actor.sub.clone(),
                created_at: now,
                updated_at: now,
                submitted_at: None,
                acknowledged_at: None,
                decided_at: None,
                care_started_at: None,
                closed_at: None,
                decline_reason: None,
                outcome: None,
                eligibility_override: None,
                assigned_to: None,
            };
            referral_rows::create_referral(ctx.conn, &referral)?;
            idempotency.remember(ctx, id.0)?;
            ctx.audit("referral.create", "referral", id.0, Some(case_id), "draft")?;
            id
        }
    };
    let referral = readable_referral(ctx, id)?;
    render(ctx, &referral)
}

/// Ranked suggestions of where the case could go next, each with the rules that matched
/// and why, and the organisations left out with the reason (caseworker of the owner).
#[tracing::instrument(skip_all, fields(case = %case_id))]
pub fn suggestions(ctx: &mut Ctx, case_id: CaseId) -> AppResult<crate::domain::routing::Routing> {
    let case = case_for(ctx, case_id, CaseAction::Refer)?;
    let referrals = referral_rows::referrals_of(ctx.conn, case_id)?;
    let capacity = super::capacity::capacity_map(&organisation_rows::capacity(ctx.conn)?);
    let today = ctx.today();
    let profile = super::cases::profile_of(&case, &referrals, today);
    let services = ctx.services;
    Ok(crate::domain::routing::suggest(
        &services.routing,
        &services.registry,
        &capacity,
        &ctx.actor.org,
        &profile,
        today,
    ))
}

/// The referrals of one case, newest first, as the owning organisation's caseworker sees
/// them on the case page.
#[tracing::instrument(skip_all, fields(case = %case_id))]
pub fn of_case(ctx: &mut Ctx, case_id: CaseId) -> AppResult<Vec<ReferralView>> {
    case_for(ctx, case_id, CaseAction::Refer)?;
    let mut referrals = referral_rows::referrals_of(ctx.conn, case_id)?;
    referrals.sort_by_key(|r| std::cmp::Reverse(r.id.0));
    render_all(ctx, &referrals)
}

/// Which referrals a list shows.
#[derive(Debug, Clone)]
pub struct ListFilter {
    pub direction: Direction,
    pub state: Option<ReferralState>,
    /// Incoming only: whom they are assigned to.
    pub assigned: Option<Assigned>,
    pub page: Page,
}

/// The "mine" and "not taken on yet" filters of the incoming list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assigned {
    ToMe,
    ToNobody,
}

/// "Mine" is the caller's own `sub`.
fn assigned_filter(actor: &Actor, assigned: Option<Assigned>) -> Option<AssignedFilter> {
    match assigned? {
        Assigned::ToMe => Some(AssignedFilter::To(actor.sub.clone())),
        Assigned::ToNobody => Some(AssignedFilter::Nobody),
    }
}

/// Referrals to (handed over) or from the caller's organisation, newest first.
#[tracing::instrument(skip_all)]
pub fn list(ctx: &mut Ctx, filter: ListFilter) -> AppResult<ReferralList> {
    access::list_referrals(ctx.actor.principal())?;
    let org = ctx.actor.org.clone();
    let assigned = assigned_filter(ctx.actor, filter.assigned);
    let rows = referral_rows::referral_page(
        ctx.conn,
        &org,
        filter.direction,
        filter.state,
        assigned.as_ref(),
        filter.page.before.map(ReferralId),
        filter.page.fetch(),
    )?;
    let (rows, next_cursor) = filter.page.finish(rows, |r| r.id.0);
    let items = render_all(ctx, &rows)?;
    Ok(ReferralList { items, next_cursor })
}

/// A referral as a line of a work queue: what the inbox shows, without the history, texts
/// or case details a full view opens.
#[derive(Debug, Clone)]
pub struct QueueItem {
    pub id: uuid::Uuid,
    pub from_organisation: String,
    pub to_organisation: String,
    pub services: Vec<String>,
    pub urgency: Urgency,
    pub state: ReferralState,
    pub submitted_at: Option<chrono::DateTime<chrono::Utc>>,
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
    pub minor: bool,
    pub assigned_to: Option<String>,
    pub assigned_name: Option<String>,
}

impl From<&ReferralView> for QueueItem {
    fn from(r: &ReferralView) -> Self {
        QueueItem {
            id: r.id,
            from_organisation: r.from_organisation.clone(),
            to_organisation: r.to_organisation.clone(),
            services: r.services.clone(),
            urgency: r.urgency,
            state: r.state,
            submitted_at: r.submitted_at,
            decided_at: r.decided_at,
            minor: r.case.minor,
            assigned_to: r.assigned_to.clone(),
            assigned_name: r.assigned_name.clone(),
        }
    }
}

/// The incoming work queue of the caller's organisation, newest first (the referrals and
/// filter of `list`, at most `limit`), as queue lines: a few queries however long it is.
#[tracing::instrument(skip_all)]
pub fn queue(ctx: &mut Ctx, assigned: Option<Assigned>, limit: i64) -> AppResult<Vec<QueueItem>> {
    access::list_referrals(ctx.actor.principal())?;
    let org = ctx.actor.org.clone();
    let assigned = assigned_filter(ctx.actor, assigned);
    let rows = referral_rows::referral_page(
        ctx.conn,
        &org,
        Direction::Incoming,
        None,
        assigned.as_ref(),
        None,
        limit,
    )?;
    let case_ids: Vec<CaseId> = rows.iter().map(|r| r.case_id).collect();
    let minors: std::collections::HashMap<CaseId, bool> = case_rows::cases(ctx.conn, &case_ids)?
        .iter()
        .map(|c| (c.id, c.is_minor()))
        .collect();
    let staff: std::collections::HashMap<String, String> = staff_rows::of_organisation(ctx.conn, &org)?
        .into_iter()
        .map(|s| (s.sub, s.display_name))
        .collect();
    Ok(rows
        .into_iter()
        .map(|r| QueueItem {
            id: r.id.0,
            minor: minors.get(&r.case_id).copied().unwrap_or(false),
            assigned_name: r.assigned_to.as_ref().and_then(|sub| staff.get(sub).cloned()),
            assigned_to: r.assigned_to,
            from_organisation: r.from_organisation,
            to_organisation: r.to_organisation,
            services: r.services,
            urgency: r.urgency,
            state: r.state,
            submitted_at: r.submitted_at,
            decided_at: r.decided_at,
        })
        .collect())
}

/// One referral, with its history and the actions the caller may take.
#[tracing::instrument(skip_all, fields(referral = %id))]
pub fn get(ctx: &mut Ctx, id: ReferralId) -> AppResult<ReferralView> {
    let (referral, case, history) = referral_rows::referral_in_full(ctx.conn, id)?.ok_or(AppError::NotFound)?;
    access::read_referral(ctx.actor.principal(), referral_facts(&referral))?;
    render_known(ctx, &referral, &case, &history)
}

/// A step asked for: the domain's request, the version the person saw, and for a submit
/// the caseworker's reason to hand over against the directory's eligibility.
#[derive(Debug, Clone)]
pub struct TransitionCommand {
    pub request: TransitionRequest,
    pub override_reason: Option<String>,
    pub seen: SeenVersion,
}

/// Moves a referral on. Visibility and party first, then the version, then the case being
/// writable, then the state machine, then (for submit) the guards.
#[tracing::instrument(skip_all, fields(referral = %id, action = %command.request.action))]
pub fn transition(ctx: &mut Ctx, id: ReferralId, command: TransitionCommand) -> AppResult<ReferralView> {
    let (referral, case, history) = referral_rows::referral_in_full(ctx.conn, id)?.ok_or(AppError::NotFound)?;
    access::move_referral(ctx.actor.principal(), referral_facts(&referral))?;
    command.seen.check(referral.version)?;
    writable(&case)?;
    let request = command.request;
    let next = rules::decide(referral.state, &request, &parties_of(ctx.actor, &referral))?;
    let mut referral = referral;
    let mut overridden = None;
    if request.action == Action::Submit {
        let passed = check_submit_guards(ctx, &case, &referral, command.override_reason.as_deref())?;
        referral.consent_id = passed.consent;
        if !passed.overridden.is_empty() {
            referral.eligibility_override = ctx.seal_opt(
                "referrals.eligibility_override",
                referral.id.0,
                command.override_reason.as_deref(),
            );
            overridden = Some(passed.overridden);
        }
    }
    let effects = rules::effects(&referral, &request, next, ctx.now.0, false);
    let (after, history) = write_transition(ctx, &referral, history, &request, effects)?;
    // The answer is rendered from what is in hand: the referral just written, its case and
    // its history (no second read).
    let view = render_known(ctx, &after, &case, &history)?;
    ctx.audit(
        &format!("referral.{}", request.action.as_str()),
        "referral",
        after.id.0,
        Some(after.case_id),
        after.state.as_str(),
    )?;
    if let Some(reasons) = overridden {
        // Counted in oversight; the reason text stays on the referral.
        ctx.audit(
            "referral.eligibility_override",
            "referral",
            after.id.0,
            Some(after.case_id),
            &reasons.join(","),
        )?;
    }
    Ok(view)
}

/// Taking a referral on, handing it to a colleague, or back to the queue (`None`), with
/// the version the person saw.
#[derive(Debug, Clone)]
pub struct AssignCommand {
    pub assigned_to: Option<String>,
    pub seen: SeenVersion,
}

/// Assigns an incoming referral within the receiving organisation. Audited; bumps the
/// version, so a form rendered before the change is stale like after any other change.
#[tracing::instrument(skip_all, fields(referral = %id))]
pub fn assign(ctx: &mut Ctx, id: ReferralId, command: AssignCommand) -> AppResult<ReferralView> {
    let referral = referral_rows::referral(ctx.conn, id)?.ok_or(AppError::NotFound)?;
    access::move_referral(ctx.actor.principal(), referral_facts(&referral))?;
    let to = match command.assigned_to {
        None => Assignee::Nobody,
        Some(sub) if sub == ctx.actor.sub => Assignee::Me,
        Some(sub) => {
            let intake = staff_rows::find(ctx.conn, &referral.to_organisation, &sub)?
                .is_some_and(|s| s.roles.split(',').any(|r| r == Role::Intake.as_str()));
            Assignee::Colleague { sub, intake }
        }
    };
    // Who may assign, and to whom, before the version: a sender learns it is not theirs to
    // assign whatever version they name.
    let assigned = rules::assignment(&referral, &parties_of(ctx.actor, &referral), &ctx.actor.sub, &to)?;
    command.seen.check(referral.version)?;
    let case = case_rows::case(ctx.conn, referral.case_id)?.ok_or(AppError::NotFound)?;
    writable(&case)?;
    let mut after = referral.clone();
    after.assigned_to = assigned;
    after.version += 1;
    after.updated_at = ctx.now.0;
    if !referral_rows::save_referral(ctx.conn, &after, referral.version)? {
        return Err(AppError::StaleVersion);
    }
    let outcome = match to {
        Assignee::Me => "self",
        Assignee::Colleague { .. } => "colleague",
        Assignee::Nobody => "nobody",
    };
    ctx.audit("referral.assign", "referral", after.id.0, Some(after.case_id), outcome)?;
    render(ctx, &after)
}

/// A person a referral can be assigned to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Colleague {
    pub sub: String,
    pub name: String,
}

/// The caller's intake colleagues (themselves included), as they last signed in.
pub fn colleagues(ctx: &mut Ctx) -> AppResult<Vec<Colleague>> {
    let org = ctx.actor.org.clone();
    Ok(staff_rows::of_organisation(ctx.conn, &org)?
        .into_iter()
        .filter(|s| s.roles.split(',').any(|r| r == Role::Intake.as_str()))
        .map(|s| Colleague {
            sub: s.sub,
            name: s.display_name,
        })
        .collect())
}

/// Withdraws a referral on the person's behalf (consent withdrawn, case erased), if the
/// state machine lets the system do so; past acceptance the receiver carries on.
pub(crate) fn withdraw_by_system(ctx: &mut Ctx, referral: &Referral, reason: &str) -> AppResult<()> {
    let mut request = TransitionRequest::new(Action::Withdraw);
    request.reason = Some(reason.to_string());
    let Ok(next) = rules::decide(referral.state, &request, &[Party::System]) else {
        return Ok(());
    };
    // The history and audit name the system, in the caseworker's organisation.
    let system = Actor::system(&ctx.actor.org);
    let mut as_system = Ctx::new(ctx.conn, &system, ctx.now, ctx.services);
    let effects = rules::effects(referral, &request, next, as_system.now.0, true);
    // Read before the versioned update, which fails if a step added an entry since.
    let history = referral_rows::history_of(as_system.conn, referral.id)?;
    let (after, _) = write_transition(&mut as_system, referral, history, &request, effects)?;
    as_system.audit(
        "referral.withdraw",
        "referral",
        after.id.0,
        Some(after.case_id),
        after.state.as_str(),
    )
}

/// Writes a decided transition: the referral (only if nobody moved it meanwhile), the
/// history entry with its texts sealed, and the notice the domain decided on.
fn write_transition(
    ctx: &mut Ctx,
    before: &Referral,
    mut history: Vec<crate::domain::referral::HistoryEntry>,
    request: &TransitionRequest,
    effects: Effects,
) -> AppResult<(Referral, Vec<crate::domain::referral::HistoryEntry>)> {
    let Effects {
        referral: after,
        from,
        notice,
    } = effects;
    let saved = referral_rows::save_referral(ctx.conn, &after, before.version).map_err(|e| match e {
        // The partial unique index caught a concurrent submit of the same case to the same
        // receiver: the same refusal the guard gives.
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
            guards_failed(vec![(
                GuardCode::DuplicateOpenReferral.as_str().to_string(),
                GuardCode::DuplicateOpenReferral.description().to_string(),
            )])
        }
        other => other.into(),
    })?;
    if !saved {
        return Err(AppError::StaleVersion);
    }
    // Read with the referral: the versioned update succeeded, so no step added an entry
    // since (`referral_rows::referral_in_full`). The history answers the request too.
    let seq = history.last().map_or(1, |h| h.seq + 1);
    let entry_id = ctx.new_id();
    fn texts(text: &Option<String>) -> Option<&str> {
        text.as_deref().filter(|t| !t.is_empty())
    }
    let entry = rules::HistoryEntry {
        id: entry_id,
        referral_id: after.id,
        seq,
        action: request.action,
        from,
        to: after.state,
        actor_sub: ctx.actor.sub.clone(),
        actor_org: ctx.actor.org.clone(),
        at: ctx.now.0,
        reason_code: request.reason_code,
        reason: ctx.seal_opt("referral_history.reason", entry_id, texts(&request.reason)),
        outcome_code: request.outcome_code,
        outcome: ctx.seal_opt("referral_history.outcome", entry_id, texts(&request.outcome)),
    };
    referral_rows::add_history(ctx.conn, &entry)?;
    history.push(entry);
    ctx.services.notifier.referral_event(
        ctx.conn,
        &referral_rows::ReferralRow::from(&after),
        request.action.as_str(),
        ctx.now,
    )?;
    if let Some((to, kind)) = notice {
        let recipient = match to {
            NoticeTo::Sender => after.from_organisation.clone(),
            NoticeTo::Receiver => after.to_organisation.clone(),
        };
        ctx.services.notifier.referral_notice(
            ctx.conn,
            &referral_rows::ReferralRow::from(&after),
            kind,
            &recipient,
            ctx.now,
        )?;
    }
    Ok((after, history))
}

/// What a passed submit check yields.
struct SubmitCheck {
    /// The consent the submission relies on (none for a statutory basis).
    consent: Option<crate::domain::ids::ConsentId>,
    /// Eligibility codes the caseworker overrode with a reason.
    overridden: Vec<String>,
}

/// Loads what the submit guards look at and asks the domain: the referral guards
/// (`domain::referral::submit_guards`, never overridable) and the service directory's
/// eligibility (`domain::routing::overridable_exclusions`, overridable with a reason).
fn check_submit_guards(
    ctx: &mut Ctx,
    case: &Case,
    referral: &Referral,
    override_reason: Option<&str>,
) -> AppResult<SubmitCheck> {
    let consents = case_rows::consents_of(ctx.conn, referral.case_id)?;
    let consent = consents
        .iter()
        .find(|c| c.standing() && c.scope == ConsentScope::Referral && c.organisation == referral.to_organisation);
    let child_protection = case_rows::legal_bases_for(ctx.conn, crate::db::Id(referral.case_id.0))?
        .iter()
        .any(|b| b.basis == "child_protection");
    let loaded = LoadedCase::load(ctx, referral.case_id)?;
    let other_open = loaded.referrals.iter().any(|r| {
        r.id != referral.id
            && r.to_organisation == referral.to_organisation
            && r.state != ReferralState::Draft
            && r.state.is_open()
    });
    let registry = ctx.services.registry.clone();
    let receiver = registry.get(&referral.to_organisation).ok_or(AppError::NotFound)?;
    let facts = SubmitFacts {
        identification: case.identification_status,
        is_minor: case.is_minor(),
        referral_consent: consent.map(|c| c.given_by),
        child_protection_basis: child_protection,
        sender: &referral.from_organisation,
        receiver: ReceiverFacts {
            slug: &receiver.slug,
            accepts_minors: receiver.accepts_minors,
            offers: &receiver.services,
            national: receiver.is_national(),
            regions: &receiver.regions,
        },
        requested_services: &referral.services,
        case_region: case.region.as_deref(),
        other_open_referral_to_receiver: other_open,
    };
    let mut unmet: Vec<(String, String)> = rules::submit_guards(&facts)
        .iter()
        .map(|g| (g.as_str().to_string(), g.description().to_string()))
        .collect();
    let capacity = super::capacity::capacity_map(&organisation_rows::capacity(ctx.conn)?);
    let profile = super::cases::profile_of(case, &loaded.referrals, ctx.today());
    let exclusions = eligibility(
        &registry,
        &capacity,
        &profile,
        &referral.to_organisation,
        &referral.services,
    );
    let eligibility_codes = overridable_exclusions(&exclusions, receiver.accepts_minors);
    if override_reason.is_none() {
        unmet.extend(eligibility_codes.iter().cloned());
    }
    if !unmet.is_empty() {
        return Err(guards_failed(unmet));
    }
    Ok(SubmitCheck {
        consent: consent.map(|c| c.id),
        overridden: eligibility_codes.into_iter().map(|(code, _)| code).collect(),
    })
}

/// The refusal listing unmet guards, their codes and descriptions in order.
fn guards_failed(unmet: Vec<(String, String)>) -> AppError {
    let (guards, descriptions): (Vec<String>, Vec<String>) = unmet.into_iter().unzip();
    AppError::GuardsFailed {
        detail: descriptions.join(" "),
        guards,
    }
}

impl From<TransitionRefusal> for AppError {
    fn from(refusal: TransitionRefusal) -> Self {
        match refusal {
            TransitionRefusal::NotAllowed { action, state, allowed } => AppError::Conflict {
                detail: format!(
                    "`{}` is not allowed for you while the referral is `{}`",
                    action.as_str(),
                    state.as_str()
                ),
                allowed_actions: Some(allowed.iter().map(|a| a.as_str().to_string()).collect()),
            },
            TransitionRefusal::MissingFields(problems) => {
                AppError::Invalid(problems.into_iter().map(Into::into).collect())
            }
        }
    }
}

impl From<AssignmentRefusal> for AppError {
    fn from(refusal: AssignmentRefusal) -> Self {
        match refusal {
            AssignmentRefusal::NotReceiver => AppError::Forbidden(refusal.to_string()),
            AssignmentRefusal::Closed(_) => AppError::conflict(refusal.to_string()),
            AssignmentRefusal::NotIntakeColleague => AppError::Invalid(vec![crate::domain::problem::FieldError::new(
                "assigned_to",
                refusal.to_string(),
            )]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_problem_lists_codes_in_order() {
        let error = guards_failed(vec![("a".into(), "A.".into()), ("b".into(), "B.".into())]);
        let AppError::GuardsFailed { guards, detail } = error else {
            panic!("not guards")
        };
        assert_eq!(guards, vec!["a", "b"]);
        assert_eq!(detail, "A. B.");
    }

    #[test]
    fn refusals_are_conflicts_with_the_allowed_actions() {
        let conflict: AppError = TransitionRefusal::NotAllowed {
            action: Action::Accept,
            state: ReferralState::Draft,
            allowed: vec![Action::Submit],
        }
        .into();
        assert!(
            matches!(conflict, AppError::Conflict { allowed_actions: Some(ref a), .. } if a == &vec!["submit".to_string()])
        );
    }
}

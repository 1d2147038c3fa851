//! Three-way conversations (driehoeksgesprekken): a police investigator joins the chat to
//! explain reporting. Offered → declined | scheduled (needs a `police_contact` consent) →
//! held → evaluated. Nothing here gates assistance.

use serde::Serialize;
use utoipa::ToSchema;

use super::access::{case_for, conversation_facts, readable_conversation, writable};
use super::{AppError, AppResult, Ctx, Idempotency, SeenVersion};
use crate::db::cases as case_rows;
use crate::db::referrals as rows;
use crate::domain::access::{self, CaseAction, ThreeWaySide};
use crate::domain::consent::ConsentScope;
use crate::domain::ids::{CaseId, ConversationId};
use crate::domain::three_way::{
    self as rules, Conversation, ReportingIntention, ThreeWayAction, ThreeWayRefusal, ThreeWayRequest, ThreeWayState,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct ThreeWayView {
    pub id: uuid::Uuid,
    pub case_id: uuid::Uuid,
    pub organisation: String,
    pub police_organisation: String,
    /// The invited investigator (`sub`), once scheduled.
    pub police_officer: Option<String>,
    pub state: ThreeWayState,
    pub version: i64,
    pub scheduled_for: Option<chrono::DateTime<chrono::Utc>>,
    pub held_at: Option<chrono::DateTime<chrono::Utc>>,
    pub care_evaluation: Option<String>,
    pub police_evaluation: Option<String>,
    pub reporting_intention: Option<ReportingIntention>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub allowed_actions: Vec<ThreeWayAction>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ThreeWayList {
    pub items: Vec<ThreeWayView>,
}

pub fn view(ctx: &Ctx, conversation: &Conversation) -> AppResult<ThreeWayView> {
    let may_act =
        access::read_three_way(ctx.actor.principal(), conversation_facts(conversation)) == Ok(ThreeWaySide::Owner);
    Ok(ThreeWayView {
        id: conversation.id.0,
        case_id: conversation.case_id.0,
        organisation: conversation.organisation.clone(),
        police_organisation: conversation.police_organisation.clone(),
        police_officer: conversation.police_officer.clone(),
        state: conversation.state,
        version: conversation.version,
        scheduled_for: conversation.scheduled_for,
        held_at: conversation.held_at,
        care_evaluation: ctx.open(
            "three_way_conversations.care_evaluation",
            conversation.id.0,
            &conversation.care_evaluation,
        )?,
        police_evaluation: ctx.open(
            "three_way_conversations.police_evaluation",
            conversation.id.0,
            &conversation.police_evaluation,
        )?,
        reporting_intention: conversation.reporting_intention,
        created_at: conversation.created_at,
        updated_at: conversation.updated_at,
        allowed_actions: if may_act {
            rules::allowed_actions(conversation.state)
        } else {
            Vec::new()
        },
    })
}

/// Offers a three-way conversation with `police` (a police organisation of the registry;
/// caseworker of the owning organisation).
#[tracing::instrument(skip_all, fields(case = %case_id))]
pub fn offer(ctx: &mut Ctx, case_id: CaseId, police: String, idempotency: &Idempotency) -> AppResult<ThreeWayView> {
    writable(&case_for(ctx, case_id, CaseAction::OfferThreeWay)?)?;
    let id = match idempotency.replay(ctx)? {
        Some(id) => ConversationId(id),
        None => {
            let id = ConversationId(ctx.new_id());
            let now = ctx.now.0;
            rows::create_conversation(
                ctx.conn,
                &Conversation {
                    id,
                    case_id,
                    organisation: ctx.actor.org.clone(),
                    police_organisation: police,
                    police_officer: None,
                    state: ThreeWayState::Offered,
                    version: 1,
                    scheduled_for: None,
                    held_at: None,
                    care_evaluation: None,
                    police_evaluation: None,
                    reporting_intention: None,
                    created_by: ctx.actor.sub.clone(),
                    created_at: now,
                    updated_at: now,
                },
            )?;
            idempotency.remember(ctx, id.0)?;
            ctx.audit(
                "three_way.create",
                "three_way_conversation",
                id.0,
                Some(case_id),
                "offered",
            )?;
            id
        }
    };
    let conversation = readable_conversation(ctx, id)?;
    view(ctx, &conversation)
}

/// The case's conversations (caseworkers of the owning organisation).
#[tracing::instrument(skip_all, fields(case = %case_id))]
pub fn list_for_case(ctx: &mut Ctx, case_id: CaseId) -> AppResult<ThreeWayList> {
    case_for(ctx, case_id, CaseAction::ReadThreeWay)?;
    let items = rows::conversations_of(ctx.conn, case_id)?
        .iter()
        .map(|c| view(ctx, c))
        .collect::<AppResult<_>>()?;
    Ok(ThreeWayList { items })
}

/// The case's conversations as the owning organisation sees them, without an access check
/// of its own (for the subject-access export, which checked already).
pub(crate) fn of_case(ctx: &mut Ctx, case_id: CaseId) -> AppResult<Vec<ThreeWayView>> {
    rows::conversations_of(ctx.conn, case_id)?
        .iter()
        .map(|c| view(ctx, c))
        .collect()
}

/// The conversations the calling investigator is invited to.
#[tracing::instrument(skip_all)]
pub fn invitations(ctx: &mut Ctx) -> AppResult<ThreeWayList> {
    access::list_invitations(ctx.actor.principal())?;
    let (org, sub) = (ctx.actor.org.clone(), ctx.actor.sub.clone());
    let items = rows::invitations(ctx.conn, &org, &sub)?
        .iter()
        .map(|c| view(ctx, c))
        .collect::<AppResult<_>>()?;
    Ok(ThreeWayList { items })
}

/// One conversation (the owner's caseworkers, or the invited investigator).
#[tracing::instrument(skip_all, fields(conversation = %id))]
pub fn get(ctx: &mut Ctx, id: ConversationId) -> AppResult<ThreeWayView> {
    let conversation = readable_conversation(ctx, id)?;
    view(ctx, &conversation)
}

/// Moves a conversation on (caseworker of the owning organisation), at the version seen.
#[tracing::instrument(skip_all, fields(conversation = %id, action = %request.action))]
pub fn transition(
    ctx: &mut Ctx,
    id: ConversationId,
    request: ThreeWayRequest,
    seen: SeenVersion,
) -> AppResult<ThreeWayView> {
    let conversation = rows::conversation(ctx.conn, id)?.ok_or(AppError::NotFound)?;
    access::move_three_way(ctx.actor.principal(), conversation_facts(&conversation))?;
    seen.check(conversation.version)?;
    writable(&case_rows::case(ctx.conn, conversation.case_id)?.ok_or(AppError::NotFound)?)?;
    let consent = case_rows::consents_of(ctx.conn, conversation.case_id)?.iter().any(|c| {
        c.scope == ConsentScope::PoliceContact && c.organisation == conversation.police_organisation && c.standing()
    });
    let next = rules::decide(conversation.state, &request, consent)?;
    let mut after = rules::apply(&conversation, &request, next, ctx.now.0);
    if request.action == ThreeWayAction::Evaluate {
        after.care_evaluation = ctx.seal_opt(
            "three_way_conversations.care_evaluation",
            id.0,
            request.care_evaluation.as_deref(),
        );
        after.police_evaluation = ctx.seal_opt(
            "three_way_conversations.police_evaluation",
            id.0,
            request.police_evaluation.as_deref(),
        );
    }
    if !rows::save_conversation(ctx.conn, &after, conversation.version)? {
        return Err(AppError::StaleVersion);
    }
    if request.action == ThreeWayAction::Schedule {
        ctx.services
            .notifier
            .three_way_requested(ctx.conn, id.0, &after.police_organisation, ctx.now)?;
    }
    ctx.audit(
        &format!("three_way.{}", request.action.as_str()),
        "three_way_conversation",
        id.0,
        Some(after.case_id),
        next.as_str(),
    )?;
    view(ctx, &after)
}

impl From<ThreeWayRefusal> for AppError {
    fn from(refusal: ThreeWayRefusal) -> Self {
        match refusal {
            ThreeWayRefusal::NotAllowed { action, state, allowed } => AppError::Conflict {
                detail: format!(
                    "`{}` is not possible while the conversation is `{}`",
                    action.as_str(),
                    state.as_str()
                ),
                allowed_actions: Some(allowed.iter().map(|a| a.as_str().to_string()).collect()),
            },
            ThreeWayRefusal::GuardFailed(guards) => AppError::GuardsFailed {
                detail: guards.iter().map(|g| g.description()).collect::<Vec<_>>().join(" "),
                guards: guards.iter().map(|g| g.as_str().to_string()).collect(),
            },
            ThreeWayRefusal::MissingFields(found) => AppError::Invalid(found.into_iter().map(Into::into).collect()),
        }
    }
}

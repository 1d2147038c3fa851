//! Referrals: the handover of a case from one organisation to another, moved through the
//! state machine in `domain::referral` by transitions that need the current ETag.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::cases::{CasePath, Context, forms_of, is_minor, organisation_slug};
use super::cases::{open_case, open_opt};
use super::common::{self, Idempotency, Page, case_for, parse_id};
use super::input::{self, Fields};
use super::routing::{capacity_map, profile_of};
use crate::auth::{Actor, Role};
use crate::crypto::Keyring;
use crate::db::cases::{self as case_rows, CaseRow};
use crate::db::organisations as organisation_rows;
use crate::db::outbox;
use crate::db::referrals::{self as referral_rows, Direction, HistoryRow, ReferralRow};
use crate::db::{AnyConnection, Id, Instant};
use crate::domain::access::{self, CaseAction, ReferralFacts};
use crate::domain::case::{ExploitationForm, IdentificationStatus};
use crate::domain::consent::{ConsentGiver, ConsentScope};
use crate::domain::deadline::{DeadlineLimits, Step, StepClock, overdue_steps};
use crate::domain::organisation::Registry;
use crate::domain::referral::{
    Action, DeclineReason, Outcome, Party, ReceiverFacts, ReferralState, RolesView, SubmitFacts, TransitionRefusal,
    TransitionRequest, Urgency, allowed_actions, decide, parties, submit_guards,
};
use crate::domain::routing::{ExclusionReason, eligibility};
use crate::error::{ApiError, FieldError};
use crate::notify::Notifier;

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
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverdueStep {
    pub step: Step,
    /// The deadline; the step is overdue since then.
    pub due_at: chrono::DateTime<chrono::Utc>,
    /// When the national focal point was alerted, once the deadline watcher has run.
    pub escalated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What rendering a referral needs besides the rows: the deadlines and the time.
#[derive(Clone)]
pub struct ViewContext {
    pub limits: DeadlineLimits,
    pub now: Instant,
    pub keyring: web::Data<Keyring>,
}

impl ViewContext {
    pub fn new(ctx: &Context) -> Result<Self, ApiError> {
        Ok(Self {
            limits: ctx.settings.deadline_limits().map_err(ApiError::internal)?,
            now: ctx.now(),
            keyring: ctx.keyring.clone(),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralList {
    pub items: Vec<ReferralView>,
    pub next_cursor: Option<String>,
}

fn caller_parties(actor: &Actor, row: &ReferralRow) -> Vec<Party> {
    parties(
        &actor.org,
        RolesView {
            caseworker: actor.has(Role::Caseworker),
            intake: actor.has(Role::Intake),
        },
        &row.from_organisation,
        &row.to_organisation,
    )
}

fn parse_state(text: &str) -> Result<ReferralState, ApiError> {
    text.parse().map_err(ApiError::internal)
}

pub fn referral_view(
    actor: &Actor,
    row: &ReferralRow,
    case: &CaseRow,
    history: &[HistoryRow],
    overdue: Vec<OverdueStep>,
) -> Result<ReferralView, ApiError> {
    let state = parse_state(&row.state)?;
    Ok(ReferralView {
        id: row.id.0,
        case_id: row.case_id.0,
        from_organisation: row.from_organisation.clone(),
        to_organisation: row.to_organisation.clone(),
        services: row.service_list(),
        urgency: row.urgency.parse().map_err(ApiError::internal)?,
        note: row.note.clone(),
        state,
        version: row.version,
        created_by: row.created_by.clone(),
        created_at: row.created_at.0,
        updated_at: row.updated_at.0,
        submitted_at: row.submitted_at.map(|t| t.0),
        acknowledged_at: row.acknowledged_at.map(|t| t.0),
        decided_at: row.decided_at.map(|t| t.0),
        care_started_at: row.care_started_at.map(|t| t.0),
        closed_at: row.closed_at.map(|t| t.0),
        decline_reason: row.decline_reason.as_deref().and_then(|r| r.parse().ok()),
        outcome: row.outcome.as_deref().and_then(|o| o.parse().ok()),
        case: ReferralCaseSummary {
            age_at_contact: case.age_at_contact,
            minor: is_minor(case),
            exploitation_forms: forms_of(case),
            region: case.region.clone(),
            language: case.language.clone(),
            pseudonym: case.pseudonym.clone(),
            identification_status: case
                .identification_status
                .parse()
                .unwrap_or(IdentificationStatus::Signal),
        },
        history: history
            .iter()
            .map(|h| {
                Ok(HistoryEntry {
                    seq: h.seq,
                    action: h.action.parse().map_err(ApiError::internal)?,
                    from: parse_state(&h.from_state)?,
                    to: parse_state(&h.to_state)?,
                    actor_sub: h.actor_sub.clone(),
                    actor_org: h.actor_org.clone(),
                    at: h.at.0,
                    reason_code: h.reason_code.clone(),
                    reason: h.reason.clone(),
                    outcome_code: h.outcome_code.clone(),
                    outcome: h.outcome.clone(),
                })
            })
            .collect::<Result<_, ApiError>>()?,
        overdue,
        // A closed or erased case is read-only: nothing on it can move.
        allowed_actions: if common::writable(case).is_ok() {
            allowed_actions(state, &caller_parties(actor, row))
        } else {
            Vec::new()
        },
    })
}

fn facts(row: &ReferralRow) -> ReferralFacts<'_> {
    ReferralFacts {
        from: &row.from_organisation,
        to: &row.to_organisation,
        handed_over: row.submitted_at.is_some(),
    }
}

/// Loads a referral the caller may see (`domain::access::read_referral`): sender or
/// receiver staff; drafts only for the sender. Everyone else gets 404.
fn visible_referral(conn: &mut AnyConnection, actor: &Actor, id: Id) -> Result<ReferralRow, ApiError> {
    let row = referral_rows::find(conn, id)?.ok_or(ApiError::NotFound)?;
    access::read_referral(actor.principal(), facts(&row))?;
    Ok(row)
}

fn load_view(conn: &mut AnyConnection, actor: &Actor, id: Id, vc: &ViewContext) -> Result<ReferralView, ApiError> {
    let row = visible_referral(conn, actor, id)?;
    render(conn, actor, &row, vc)
}

pub fn render(
    conn: &mut AnyConnection,
    actor: &Actor,
    row: &ReferralRow,
    vc: &ViewContext,
) -> Result<ReferralView, ApiError> {
    let keyring = &vc.keyring;
    let case = open_case(keyring, case_rows::find(conn, row.case_id)?.ok_or(ApiError::NotFound)?)?;
    let history = referral_rows::history(conn, row.id)?
        .into_iter()
        .map(|mut h| {
            h.reason = open_opt(keyring, "referral_history.reason", h.id, h.reason.as_deref())?;
            h.outcome = open_opt(keyring, "referral_history.outcome", h.id, h.outcome.as_deref())?;
            Ok(h)
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let mut row = row.clone();
    row.note = open_opt(keyring, "referrals.note", row.id, row.note.as_deref())?;
    let row = &row;
    let clock = StepClock {
        state: parse_state(&row.state)?,
        urgency: row.urgency.parse().map_err(ApiError::internal)?,
        submitted_at: row.submitted_at.map(|t| t.0),
        decided_at: row.decided_at.map(|t| t.0),
    };
    let due = overdue_steps(&clock, &vc.limits, vc.now.0);
    let escalations = if due.is_empty() {
        Vec::new()
    } else {
        outbox::escalations_for(conn, row.id)?
    };
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
    referral_view(actor, row, &case, &history, overdue)
}

/// The body of `POST /cases/{id}/referrals`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ReferralInput {
    /// The receiving organisation (slug).
    pub to_organisation: String,
    /// Requested services, from the registry's vocabulary; at least one.
    pub services: Vec<String>,
    pub urgency: Urgency,
    /// A note for the receiver.
    pub note: Option<String>,
}

/// Creates a draft referral of the case (caseworker of the owning organisation, which is
/// the sender). Honours `Idempotency-Key`.
#[utoipa::path(
    tag = "referrals",
    params(CasePath, ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation key")),
    request_body = ReferralInput,
    responses(
        (status = 201, body = ReferralView, headers(("Location" = String), ("ETag" = String))),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/referrals")]
pub async fn create(
    actor: Actor,
    ctx: Context,
    req: HttpRequest,
    path: web::Path<CasePath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let case_id = parse_id(&path.id)?;
    let body = body.into_inner();
    let idempotency = Idempotency::new(
        &ctx.keyring,
        &req,
        &format!("POST /cases/{}/referrals", case_id.0),
        &body,
    )?;
    let registry = ctx.registry.clone();
    let mut f = Fields::new(body)?;
    let to = f.required("to_organisation", organisation_slug(&registry));
    let services = f.required("services", |v| {
        input::list_of(v, |item| {
            let code = input::string(item)?;
            if registry.services.contains(code) {
                Ok(code.to_string())
            } else {
                Err(format!(
                    "is not a service of the registry, which has: {}",
                    registry.services.iter().cloned().collect::<Vec<_>>().join(", ")
                ))
            }
        })
    });
    let urgency = f.required("urgency", input::one_of(&Urgency::ALL, Urgency::as_str));
    let note = f.optional("note", input::note);
    f.finish()?;
    let (Some(to), Some(services), Some(urgency), Some(note)) = (to, services, urgency, note) else {
        return Err(ApiError::internal("validated field missing"));
    };
    let now = ctx.now();
    let vc = ViewContext::new(&ctx)?;
    let view = ctx
        .db
        .write(move |conn| {
            common::writable(&case_for(conn, &actor, case_id, CaseAction::Refer)?)?;
            let id = match idempotency.replay(conn, &actor)? {
                Some(id) => id,
                None => {
                    let id = Id(uuid::Uuid::now_v7());
                    referral_rows::insert(
                        conn,
                        &ReferralRow {
                            id,
                            case_id,
                            from_organisation: actor.org.clone(),
                            to_organisation: to,
                            services: serde_json::to_string(&services).map_err(ApiError::internal)?,
                            urgency: urgency.as_str().into(),
                            note: vc
                                .keyring
                                .seal_opt("referrals.note", id, note.as_ref().map(|n| n.as_str())),
                            state: ReferralState::Draft.as_str().into(),
                            version: 1,
                            consent_id: None,
                            created_by: actor.sub.clone(),
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
                        },
                    )?;
                    idempotency.remember(conn, &actor, id, now)?;
                    common::audit(
                        conn,
                        &actor,
                        "referral.create",
                        "referral",
                        id,
                        Some(case_id),
                        "draft",
                        now,
                    )?;
                    id
                }
            };
            load_view(conn, &actor, id, &vc)
        })
        .await?;
    Ok(common::created(
        format!("/api/v1/referrals/{}", view.id),
        Some(view.version),
        view,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReferralListQuery {
    /// `incoming` (to the caller's organisation) or `outgoing` (from it). Default incoming.
    pub direction: Option<String>,
    /// Only referrals in this state.
    pub state: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Referrals to or from the caller's organisation, newest first.
#[utoipa::path(
    tag = "referrals",
    params(ReferralListQuery),
    responses(
        (status = 200, body = ReferralList),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/referrals")]
pub async fn list(actor: Actor, ctx: Context, query: web::Query<ReferralListQuery>) -> Result<HttpResponse, ApiError> {
    access::list_referrals(actor.principal())?;
    let query = query.into_inner();
    let direction = match query.direction.as_deref() {
        None | Some("incoming") => Direction::Incoming,
        Some("outgoing") => Direction::Outgoing,
        Some(_) => return Err(ApiError::field("direction", "must be incoming or outgoing")),
    };
    let state = match query.state.as_deref() {
        None => None,
        Some(s) => Some(s.parse::<ReferralState>().map_err(|_| {
            ApiError::field(
                "state",
                format!("must be one of: {}", ReferralState::ALL.map(|s| s.as_str()).join(", ")),
            )
        })?),
    };
    let page = Page::parse(
        query.limit,
        query.cursor.as_deref(),
        ctx.settings.cases.page_size_default,
        ctx.settings.cases.page_size_max,
    )?;
    let (before, limit) = (page.before, page.fetch());
    let vc = ViewContext::new(&ctx)?;
    let views = ctx
        .db
        .run(move |conn| {
            let rows = referral_rows::list(conn, &actor.org, direction, state.map(|s| s.as_str()), before, limit)?;
            let (rows, next) = page.finish(rows, |r| r.id);
            let mut items = Vec::with_capacity(rows.len());
            for row in &rows {
                items.push(render(conn, &actor, row, &vc)?);
            }
            Ok::<_, ApiError>(ReferralList {
                items,
                next_cursor: next,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(views))
}

#[derive(Deserialize, IntoParams)]
pub struct ReferralPath {
    /// The referral id.
    pub id: String,
}

/// One referral, with its history and the actions the caller may take.
#[utoipa::path(
    tag = "referrals",
    params(ReferralPath),
    responses(
        (status = 200, body = ReferralView, headers(("ETag" = String))),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/referrals/{id}")]
pub async fn get(actor: Actor, ctx: Context, path: web::Path<ReferralPath>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.id)?;
    let vc = ViewContext::new(&ctx)?;
    let view = ctx.db.run(move |conn| load_view(conn, &actor, id, &vc)).await?;
    Ok(common::ok_with_etag(view.version, view))
}

/// The body of `POST /referrals/{id}/transitions`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct TransitionInput {
    pub action: Action,
    /// With `decline`.
    pub reason_code: Option<DeclineReason>,
    /// With `decline` and `withdraw`.
    pub reason: Option<String>,
    /// With `complete`.
    pub outcome_code: Option<Outcome>,
    /// With `complete`: the closed loop back to the sender.
    pub outcome: Option<String>,
}

/// A transition as requested: the domain's request, plus the caseworker's reason to submit
/// against the service directory's eligibility.
struct Requested {
    request: TransitionRequest,
    override_reason: Option<String>,
}

fn parse_transition(body: Value) -> Result<Requested, ApiError> {
    let mut f = Fields::new(body)?;
    let action = f.required("action", input::one_of(&Action::ALL, Action::as_str));
    let reason_code = f.optional("reason_code", input::one_of(&DeclineReason::ALL, DeclineReason::as_str));
    // Blank texts are left to the domain, which says which action needs them.
    let free_text = |v: &Value| -> Result<String, String> {
        let text = input::string(v)?;
        if text.trim().is_empty() {
            Ok(String::new())
        } else {
            input::note(v).map(|t| t.into_string())
        }
    };
    let reason = f.optional("reason", free_text);
    let outcome_code = f.optional("outcome_code", input::one_of(&Outcome::ALL, Outcome::as_str));
    let outcome = f.optional("outcome", free_text);
    let override_reason = f.optional("override_reason", input::note);
    if action.is_some_and(|a| a != Action::Submit) && matches!(override_reason, Some(Some(_))) {
        f.error("override_reason", "applies only to submit");
    }
    f.finish()?;
    let (Some(action), Some(reason_code), Some(reason), Some(outcome_code), Some(outcome), Some(override_reason)) =
        (action, reason_code, reason, outcome_code, outcome, override_reason)
    else {
        return Err(ApiError::internal("validated field missing"));
    };
    Ok(Requested {
        request: TransitionRequest {
            action,
            reason_code,
            reason,
            outcome_code,
            outcome,
        },
        override_reason: override_reason.map(|r| r.into_string()),
    })
}

/// Moves a referral through the handover state machine. Needs `If-Match` with the current
/// ETag: 428 without it, 412 when stale. 409 when the state or the caller does not allow
/// the action (the body lists `allowed_actions`); 422 when submit guards fail (the body
/// lists their codes) or a required reason or outcome is missing.
#[utoipa::path(
    tag = "referrals",
    params(ReferralPath, ("If-Match" = String, Header, description = "The referral's current ETag")),
    request_body = TransitionInput,
    responses(
        (status = 200, body = ReferralView, headers(("ETag" = String))),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 412, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 428, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/referrals/{id}/transitions")]
pub async fn transition(
    actor: Actor,
    ctx: Context,
    req: HttpRequest,
    path: web::Path<ReferralPath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.id)?;
    let Requested {
        request,
        override_reason,
    } = parse_transition(body.into_inner())?;
    let expected = common::required_if_match(&req)?;
    let now = ctx.now();
    let registry = ctx.registry.clone();
    let notifier = ctx.notifier.clone();
    let vc = ViewContext::new(&ctx)?;
    let view = ctx
        .db
        .write(move |conn| {
            let mut row = referral_rows::find(conn, id)?.ok_or(ApiError::NotFound)?;
            access::move_referral(actor.principal(), facts(&row))?;
            let who = caller_parties(&actor, &row);
            if row.version != expected {
                return Err(ApiError::PreconditionFailed);
            }
            // Nothing on a closed or erased case moves any more.
            common::writable(&case_rows::find(conn, row.case_id)?.ok_or(ApiError::NotFound)?)?;
            let state = parse_state(&row.state)?;
            let next = decide(state, &request, &who).map_err(refusal_to_error)?;
            let mut overridden = None;
            if request.action == Action::Submit {
                let passed = check_submit_guards(conn, &registry, &row, override_reason.as_deref(), now)?;
                row.consent_id = passed.consent;
                if !passed.overridden.is_empty() {
                    row.eligibility_override =
                        vc.keyring
                            .seal_opt("referrals.eligibility_override", row.id, override_reason.as_deref());
                    overridden = Some(passed.overridden);
                }
            }
            change_state(conn, &notifier, &vc.keyring, &mut row, &request, next, &actor, now)?;
            // The answer is rendered from the row just written (no second read of the referral).
            let view = render(conn, &actor, &row, &vc)?;
            audit_transition(conn, &actor, &row, &request, next, now)?;
            if let Some(reasons) = overridden {
                // Counted in oversight; the reason text stays on the referral.
                common::audit(
                    conn,
                    &actor,
                    "referral.eligibility_override",
                    "referral",
                    row.id,
                    Some(row.case_id),
                    &reasons.join(","),
                    now,
                )?;
            }
            Ok(view)
        })
        .await?;
    Ok(common::ok_with_etag(view.version, view))
}

fn refusal_to_error(refusal: TransitionRefusal) -> ApiError {
    match refusal {
        TransitionRefusal::NotAllowed { action, state, allowed } => ApiError::Conflict {
            detail: format!(
                "`{}` is not allowed for you while the referral is `{}`",
                action.as_str(),
                state.as_str()
            ),
            allowed_actions: Some(allowed.iter().map(|a| a.as_str().to_string()).collect()),
        },
        TransitionRefusal::MissingFields(problems) => ApiError::Validation(
            problems
                .into_iter()
                .map(|p| FieldError::new(p.field, p.message))
                .collect(),
        ),
    }
}

/// Loads what the submit guards look at, asks the domain, and returns the consent the
/// submission relies on (none for a statutory basis).
/// What a passed submit check yields.
struct SubmitCheck {
    /// The consent the submission relies on (none for a statutory basis).
    consent: Option<Id>,
    /// Eligibility codes the caseworker overrode with a reason.
    overridden: Vec<String>,
}

/// Loads what the submit guards look at and asks the domain: the referral guards
/// (`domain::referral::submit_guards`, never overridable) and the service directory's
/// eligibility (`domain::routing::eligibility`, overridable with a reason).
fn check_submit_guards(
    conn: &mut AnyConnection,
    registry: &Registry,
    row: &ReferralRow,
    override_reason: Option<&str>,
    now: Instant,
) -> Result<SubmitCheck, ApiError> {
    let case = case_rows::find(conn, row.case_id)?.ok_or(ApiError::NotFound)?;
    let consents = case_rows::consents_for(conn, row.case_id)?;
    let consent = consents.iter().find(|c| {
        c.withdrawn_at.is_none() && c.scope == ConsentScope::Referral.as_str() && c.organisation == row.to_organisation
    });
    let child_protection = case_rows::legal_bases_for(conn, row.case_id)?
        .iter()
        .any(|b| b.basis == "child_protection");
    let others = referral_rows::for_case(conn, row.case_id)?;
    let other_open = others.iter().any(|r| {
        r.id != row.id
            && r.to_organisation == row.to_organisation
            && r.state != ReferralState::Draft.as_str()
            && r.state.parse::<ReferralState>().map(|s| s.is_open()).unwrap_or(false)
    });
    let receiver = registry.get(&row.to_organisation).ok_or(ApiError::NotFound)?;
    let services = row.service_list();
    let identification = case.identification_status.parse().map_err(ApiError::internal)?;
    let facts = SubmitFacts {
        identification,
        is_minor: is_minor(&case),
        referral_consent: consent.and_then(|c| c.given_by.parse::<ConsentGiver>().ok()),
        child_protection_basis: child_protection,
        sender: &row.from_organisation,
        receiver: ReceiverFacts {
            slug: &receiver.slug,
            accepts_minors: receiver.accepts_minors,
            offers: &receiver.services,
            national: receiver.is_national(),
            regions: &receiver.regions,
        },
        requested_services: &services,
        case_region: case.region.as_deref(),
        other_open_referral_to_receiver: other_open,
    };
    let mut unmet: Vec<(String, String)> = submit_guards(&facts)
        .iter()
        .map(|g| (g.as_str().to_string(), g.description().to_string()))
        .collect();
    let capacity = capacity_map(&organisation_rows::capacity(conn)?);
    let profile = profile_of(&case, &others, now.0.date_naive())?;
    let exclusions = eligibility(registry, &capacity, &profile, &row.to_organisation, &services);
    // Organisation-wide region, minors and sender checks are the referral guards' own
    // (and not overridable); the directory adds the per-service ones.
    let covered = [
        ExclusionReason::OutOfRegion,
        ExclusionReason::DoesNotAcceptMinors,
        ExclusionReason::IsSender,
    ];
    let eligibility_codes: Vec<(String, String)> = exclusions
        .iter()
        .filter(|e| !(e.service.is_none() && covered.contains(&e.reason)))
        .filter(|e| e.reason != ExclusionReason::DoesNotAcceptMinors || receiver.accepts_minors)
        .map(|e| {
            let place = match &e.service {
                Some(service) => format!("{service} at {}", e.organisation),
                None => e.organisation.clone(),
            };
            (
                format!("eligibility_{}", e.reason.as_str()),
                format!("{place}: {}", e.reason.description()),
            )
        })
        .collect();
    if override_reason.is_none() {
        unmet.extend(eligibility_codes.iter().cloned());
    }
    if !unmet.is_empty() {
        return Err(guards_failed(
            unmet.iter().map(|(code, text)| (code.as_str(), text.as_str())),
        ));
    }
    Ok(SubmitCheck {
        consent: consent.map(|c| c.id),
        overridden: eligibility_codes.into_iter().map(|(code, _)| code).collect(),
    })
}

fn guards_failed<'a>(unmet: impl Iterator<Item = (&'a str, &'a str)>) -> ApiError {
    let (codes, descriptions): (Vec<String>, Vec<&str>) = unmet.map(|(code, text)| (code.to_string(), text)).unzip();
    ApiError::GuardsFailed {
        detail: descriptions.join(" "),
        guards: codes,
    }
}

/// Writes a decided transition and its audit entry.
#[allow(clippy::too_many_arguments)]
fn apply_transition(
    conn: &mut AnyConnection,
    notifier: &Notifier,
    keyring: &Keyring,
    row: &mut ReferralRow,
    request: &TransitionRequest,
    next: ReferralState,
    actor: &Actor,
    now: Instant,
) -> Result<(), ApiError> {
    change_state(conn, notifier, keyring, row, request, next, actor, now)?;
    audit_transition(conn, actor, row, request, next, now)
}

/// The audit entry of a transition, in the transition's transaction.
fn audit_transition(
    conn: &mut AnyConnection,
    actor: &Actor,
    row: &ReferralRow,
    request: &TransitionRequest,
    next: ReferralState,
    now: Instant,
) -> Result<(), ApiError> {
    let action = format!("referral.{}", request.action.as_str());
    common::audit(
        conn,
        actor,
        &action,
        "referral",
        row.id,
        Some(row.case_id),
        next.as_str(),
        now,
    )
}

/// Writes a decided transition: the new state and its timestamps, the version bump (only if
/// nobody else moved the referral meanwhile), the history entry and the notice.
#[allow(clippy::too_many_arguments)]
fn change_state(
    conn: &mut AnyConnection,
    notifier: &Notifier,
    keyring: &Keyring,
    row: &mut ReferralRow,
    request: &TransitionRequest,
    next: ReferralState,
    actor: &Actor,
    now: Instant,
) -> Result<(), ApiError> {
    let from = row.state.clone();
    let expected = row.version;
    row.state = next.as_str().into();
    row.version += 1;
    row.updated_at = now;
    match request.action {
        Action::Submit => row.submitted_at = Some(now),
        Action::Acknowledge => row.acknowledged_at = Some(now),
        Action::Accept => row.decided_at = Some(now),
        Action::Decline => {
            row.decided_at = Some(now);
            row.decline_reason = request.reason_code.map(|r| r.as_str().into());
        }
        Action::StartCare => row.care_started_at = Some(now),
        Action::Complete => row.outcome = request.outcome_code.map(|o| o.as_str().into()),
        Action::Withdraw => {}
    }
    if next.is_terminal() {
        row.closed_at = Some(now);
    }
    let updated = referral_rows::update_versioned(conn, row, expected).map_err(|e| match e {
        // The partial unique index caught a concurrent submit of the same case to the same
        // receiver: the same refusal the guard gives.
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
            let code = crate::domain::referral::GuardCode::DuplicateOpenReferral;
            guards_failed(std::iter::once((code.as_str(), code.description())))
        }
        other => other.into(),
    })?;
    if !updated {
        return Err(ApiError::PreconditionFailed);
    }
    let seq = referral_rows::next_history_seq(conn, row.id)?;
    let history_id = Id(uuid::Uuid::now_v7());
    let seal = |field: &str, text: &Option<String>| {
        keyring.seal_opt(field, history_id, text.as_deref().filter(|t| !t.is_empty()))
    };
    referral_rows::insert_history(
        conn,
        &HistoryRow {
            id: history_id,
            referral_id: row.id,
            seq,
            action: request.action.as_str().into(),
            from_state: from,
            to_state: next.as_str().into(),
            actor_sub: actor.sub.clone(),
            actor_org: actor.org.clone(),
            at: now,
            reason_code: request.reason_code.map(|r| r.as_str().into()),
            reason: seal("referral_history.reason", &request.reason),
            outcome_code: request.outcome_code.map(|o| o.as_str().into()),
            outcome: seal("referral_history.outcome", &request.outcome),
        },
    )?;
    // System withdrawals follow a consent withdrawal, which sends its own notice.
    if actor.sub != "system" {
        notifier.referral_moved(conn, row, request.action.as_str(), now)?;
    }
    Ok(())
}

/// Withdraws a referral on the person's behalf when the consent it relied on is withdrawn.
/// Referrals past acknowledgement (accepted, in care) are left to the receiver, who now has
/// its own relationship with the person.
pub fn withdraw_by_system(
    conn: &mut AnyConnection,
    notifier: &Notifier,
    keyring: &Keyring,
    mut row: ReferralRow,
    actor: &Actor,
    now: Instant,
    reason: &str,
) -> Result<(), ApiError> {
    let state = parse_state(&row.state)?;
    let mut request = TransitionRequest::new(Action::Withdraw);
    request.reason = Some(reason.to_string());
    match decide(state, &request, &[Party::System]) {
        Ok(next) => {
            // The history names the system as actor, in the caseworker's organisation.
            apply_transition(
                conn,
                notifier,
                keyring,
                &mut row,
                &request,
                next,
                &common::system_actor(&actor.org),
                now,
            )
        }
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_problem_lists_codes_in_order() {
        let error = guards_failed([("a", "A."), ("b", "B.")].into_iter());
        let ApiError::GuardsFailed { guards, detail } = error else {
            panic!("not guards")
        };
        assert_eq!(guards, vec!["a", "b"]);
        assert_eq!(detail, "A. B.");
    }

    #[test]
    fn refusals_map_to_409_and_422() {
        let conflict = refusal_to_error(TransitionRefusal::NotAllowed {
            action: Action::Accept,
            state: ReferralState::Draft,
            allowed: vec![Action::Submit],
        });
        assert!(
            matches!(conflict, ApiError::Conflict { allowed_actions: Some(ref a), .. } if a == &vec!["submit".to_string()])
        );
    }
}

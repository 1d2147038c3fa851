//! Three-way conversations (driehoeksgesprekken): a police investigator joins the chat to
//! explain reporting. Offered → declined | scheduled (needs a `police_contact` consent) →
//! held → evaluated. Nothing here gates assistance.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::cases::open_opt;
use super::cases::{CasePath, Context, organisation_slug};
use super::common::{self, Idempotency, case_for, parse_id};
use super::input::{self, Fields};
use crate::auth::Actor;
use crate::crypto::Keyring;
use crate::db::cases as case_rows;
use crate::db::referrals::{self as rows, ThreeWayRow};
use crate::db::{AnyConnection, Id, Instant};
use crate::domain::access::{self, CaseAction, ThreeWayFacts, ThreeWaySide};
use crate::domain::consent::ConsentScope;
use crate::domain::organisation::OrganisationKind;
use crate::domain::three_way::{
    ReportingIntention, ThreeWayAction, ThreeWayRefusal, ThreeWayRequest, ThreeWayState, allowed_actions, decide,
};
use crate::error::{ApiError, FieldError};

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

fn view(actor: &Actor, keyring: &Keyring, row: &ThreeWayRow) -> Result<ThreeWayView, ApiError> {
    let state: ThreeWayState = row.state.parse().map_err(ApiError::internal)?;
    let may_act = access::read_three_way(actor.principal(), facts(row)) == Ok(ThreeWaySide::Owner);
    Ok(ThreeWayView {
        id: row.id.0,
        case_id: row.case_id.0,
        organisation: row.organisation.clone(),
        police_organisation: row.police_organisation.clone(),
        police_officer: row.police_officer.clone(),
        state,
        version: row.version,
        scheduled_for: row.scheduled_for.map(|t| t.0),
        held_at: row.held_at.map(|t| t.0),
        care_evaluation: open_opt(
            keyring,
            "three_way_conversations.care_evaluation",
            row.id,
            row.care_evaluation.as_deref(),
        )?,
        police_evaluation: open_opt(
            keyring,
            "three_way_conversations.police_evaluation",
            row.id,
            row.police_evaluation.as_deref(),
        )?,
        reporting_intention: row.reporting_intention.as_deref().and_then(|r| r.parse().ok()),
        created_at: row.created_at.0,
        updated_at: row.updated_at.0,
        allowed_actions: if may_act { allowed_actions(state) } else { Vec::new() },
    })
}

fn facts(row: &ThreeWayRow) -> ThreeWayFacts<'_> {
    ThreeWayFacts {
        owner: &row.organisation,
        police: &row.police_organisation,
        officer: row.police_officer.as_deref(),
    }
}

/// The conversation if the caller may see it (`domain::access::read_three_way`): the owning
/// organisation's caseworkers, or the invited investigator. Everyone else: 404.
fn visible(conn: &mut AnyConnection, actor: &Actor, id: Id) -> Result<ThreeWayRow, ApiError> {
    let row = rows::find_three_way(conn, id)?.ok_or(ApiError::NotFound)?;
    access::read_three_way(actor.principal(), facts(&row))?;
    Ok(row)
}

/// The body of `POST /cases/{id}/three-way-conversations`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ThreeWayInput {
    /// The police organisation (slug); default `police`.
    pub police_organisation: Option<String>,
}

/// Offers a three-way conversation (caseworker of the owning organisation).
#[utoipa::path(
    tag = "three-way conversations",
    params(CasePath, ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation key")),
    request_body = ThreeWayInput,
    responses(
        (status = 201, body = ThreeWayView, headers(("Location" = String), ("ETag" = String))),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/three-way-conversations")]
pub async fn create(
    actor: Actor,
    ctx: Context,
    req: HttpRequest,
    path: web::Path<CasePath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let keyring = ctx.keyring.clone();
    let case_id = parse_id(&path.id)?;
    let body = body.into_inner();
    let idempotency = Idempotency::new(
        &ctx.keyring,
        &req,
        &format!("POST /cases/{}/three-way-conversations", case_id.0),
        &body,
    )?;
    let registry = ctx.registry.clone();
    let mut f = Fields::new(body)?;
    let police = f.defaulted("police_organisation", "police".to_string(), |v| {
        let slug = organisation_slug(&registry)(v)?;
        match registry.get(&slug) {
            Some(org) if org.kind == OrganisationKind::Police => Ok(slug),
            _ => Err("must be a police organisation of the registry".to_string()),
        }
    });
    f.finish()?;
    let police = police.ok_or_else(|| ApiError::internal("validated field missing"))?;
    let now = ctx.now();
    let result = ctx
        .db
        .write(move |conn| {
            common::writable(&case_for(conn, &actor, case_id, CaseAction::OfferThreeWay)?)?;
            let id = match idempotency.replay(conn, &actor)? {
                Some(id) => id,
                None => {
                    let id = Id(uuid::Uuid::now_v7());
                    rows::insert_three_way(
                        conn,
                        &ThreeWayRow {
                            id,
                            case_id,
                            organisation: actor.org.clone(),
                            police_organisation: police,
                            police_officer: None,
                            state: ThreeWayState::Offered.as_str().into(),
                            version: 1,
                            scheduled_for: None,
                            held_at: None,
                            care_evaluation: None,
                            police_evaluation: None,
                            reporting_intention: None,
                            created_by: actor.sub.clone(),
                            created_at: now,
                            updated_at: now,
                        },
                    )?;
                    idempotency.remember(conn, &actor, id, now)?;
                    common::audit(
                        conn,
                        &actor,
                        "three_way.create",
                        "three_way_conversation",
                        id,
                        Some(case_id),
                        "offered",
                        now,
                    )?;
                    id
                }
            };
            let row = visible(conn, &actor, id)?;
            view(&actor, &keyring, &row)
        })
        .await?;
    Ok(common::created(
        format!("/api/v1/three-way-conversations/{}", result.id),
        Some(result.version),
        result,
    ))
}

/// The case's three-way conversations (owning organisation).
#[utoipa::path(
    tag = "three-way conversations",
    params(CasePath),
    responses(
        (status = 200, body = ThreeWayList),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases/{id}/three-way-conversations")]
pub async fn list_for_case(actor: Actor, ctx: Context, path: web::Path<CasePath>) -> Result<HttpResponse, ApiError> {
    let keyring = ctx.keyring.clone();
    let case_id = parse_id(&path.id)?;
    let list = ctx
        .db
        .run(move |conn| {
            case_for(conn, &actor, case_id, CaseAction::ReadThreeWay)?;
            let items = rows::three_way_for_case(conn, case_id)?
                .iter()
                .map(|r| view(&actor, &keyring, r))
                .collect::<Result<_, _>>()?;
            Ok::<_, ApiError>(ThreeWayList { items })
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// The conversations the calling investigator is invited to.
#[utoipa::path(
    tag = "three-way conversations",
    responses(
        (status = 200, body = ThreeWayList),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/three-way-conversations")]
pub async fn list_invited(actor: Actor, ctx: Context) -> Result<HttpResponse, ApiError> {
    access::list_invitations(actor.principal())?;
    let keyring = ctx.keyring.clone();
    let list = ctx
        .db
        .run(move |conn| {
            let items = rows::three_way_for_officer(conn, &actor.org, &actor.sub)?
                .iter()
                .map(|r| view(&actor, &keyring, r))
                .collect::<Result<_, _>>()?;
            Ok::<_, ApiError>(ThreeWayList { items })
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Deserialize, IntoParams)]
pub struct ThreeWayPath {
    /// The conversation id.
    pub id: String,
}

/// One conversation (owning organisation's caseworkers, or the invited investigator).
#[utoipa::path(
    tag = "three-way conversations",
    params(ThreeWayPath),
    responses(
        (status = 200, body = ThreeWayView, headers(("ETag" = String))),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/three-way-conversations/{id}")]
pub async fn get(actor: Actor, ctx: Context, path: web::Path<ThreeWayPath>) -> Result<HttpResponse, ApiError> {
    let keyring = ctx.keyring.clone();
    let id = parse_id(&path.id)?;
    let result = ctx
        .db
        .run(move |conn| visible(conn, &actor, id).and_then(|r| view(&actor, &keyring, &r)))
        .await?;
    Ok(common::ok_with_etag(result.version, result))
}

/// The body of `POST /three-way-conversations/{id}/transitions`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ThreeWayTransitionInput {
    pub action: ThreeWayAction,
    /// With `schedule`: the investigator's `sub`.
    pub police_officer: Option<String>,
    /// With `schedule`: when (RFC 3339).
    pub scheduled_for: Option<chrono::DateTime<chrono::Utc>>,
    /// With `evaluate`.
    pub care_evaluation: Option<String>,
    /// With `evaluate`.
    pub police_evaluation: Option<String>,
    /// With `evaluate`: the person's stated intention on reporting.
    pub reporting_intention: Option<ReportingIntention>,
}

/// Moves a conversation on (caseworker of the owning organisation; `If-Match` required).
#[utoipa::path(
    tag = "three-way conversations",
    params(ThreeWayPath, ("If-Match" = String, Header, description = "The conversation's current ETag")),
    request_body = ThreeWayTransitionInput,
    responses(
        (status = 200, body = ThreeWayView, headers(("ETag" = String))),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 412, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 428, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/three-way-conversations/{id}/transitions")]
pub async fn transition(
    actor: Actor,
    ctx: Context,
    req: HttpRequest,
    path: web::Path<ThreeWayPath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let keyring = ctx.keyring.clone();
    let id = parse_id(&path.id)?;
    let mut f = Fields::new(body.into_inner())?;
    let action = f.required("action", input::one_of(&ThreeWayAction::ALL, ThreeWayAction::as_str));
    let officer = f.optional("police_officer", input::line);
    let scheduled_for = f.optional("scheduled_for", |v| {
        chrono::DateTime::parse_from_rfc3339(input::string(v)?)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|_| "must be a date and time in RFC 3339, e.g. 2025-03-01T14:00:00Z".to_string())
    });
    let text = |v: &Value| -> Result<String, String> {
        let raw = input::string(v)?;
        if raw.trim().is_empty() {
            Ok(String::new())
        } else {
            input::note(v).map(|t| t.into_string())
        }
    };
    let care = f.optional("care_evaluation", text);
    let police = f.optional("police_evaluation", text);
    let intention = f.optional(
        "reporting_intention",
        input::one_of(&ReportingIntention::ALL, ReportingIntention::as_str),
    );
    f.finish()?;
    let (Some(action), Some(officer), Some(scheduled_for), Some(care), Some(police), Some(intention)) =
        (action, officer, scheduled_for, care, police, intention)
    else {
        return Err(ApiError::internal("validated field missing"));
    };
    let scheduling = action == ThreeWayAction::Schedule;
    let mut problems = Vec::new();
    if scheduling && officer.is_none() {
        problems.push(FieldError::new("police_officer", "is required to schedule"));
    }
    if scheduling && scheduled_for.is_none() {
        problems.push(FieldError::new("scheduled_for", "is required to schedule"));
    }
    if !scheduling && officer.is_some() {
        problems.push(FieldError::new(
            "police_officer",
            format!("does not apply to {}", action.as_str()),
        ));
    }
    if !scheduling && scheduled_for.is_some() {
        problems.push(FieldError::new(
            "scheduled_for",
            format!("does not apply to {}", action.as_str()),
        ));
    }
    let expected = common::required_if_match(&req)?;
    let now = ctx.now();
    let result = ctx
        .db
        .write(move |conn| {
            let mut row = rows::find_three_way(conn, id)?.ok_or(ApiError::NotFound)?;
            access::move_three_way(actor.principal(), facts(&row))?;
            if row.version != expected {
                return Err(ApiError::PreconditionFailed);
            }
            common::writable(&case_rows::find(conn, row.case_id)?.ok_or(ApiError::NotFound)?)?;
            let consent = case_rows::consents_for(conn, row.case_id)?.iter().any(|c| {
                c.scope == ConsentScope::PoliceContact.as_str()
                    && c.organisation == row.police_organisation
                    && c.withdrawn_at.is_none()
            });
            let state: ThreeWayState = row.state.parse().map_err(ApiError::internal)?;
            let request = ThreeWayRequest {
                action,
                care_evaluation: care,
                police_evaluation: police,
                reporting_intention: intention,
            };
            let next = decide(state, &request, consent).map_err(|refusal| match refusal {
                ThreeWayRefusal::NotAllowed { action, state, allowed } => ApiError::Conflict {
                    detail: format!(
                        "`{}` is not possible while the conversation is `{}`",
                        action.as_str(),
                        state.as_str()
                    ),
                    allowed_actions: Some(allowed.iter().map(|a| a.as_str().to_string()).collect()),
                },
                ThreeWayRefusal::GuardFailed(guards) => ApiError::GuardsFailed {
                    detail: guards.iter().map(|g| g.description()).collect::<Vec<_>>().join(" "),
                    guards: guards.iter().map(|g| g.as_str().to_string()).collect(),
                },
                ThreeWayRefusal::MissingFields(found) => {
                    let mut all = problems.clone();
                    all.extend(found.into_iter().map(|p| FieldError::new(p.field, p.message)));
                    ApiError::Validation(all)
                }
            })?;
            if !problems.is_empty() {
                return Err(ApiError::Validation(problems));
            }
            let version = row.version;
            row.state = next.as_str().into();
            row.version += 1;
            row.updated_at = now;
            match action {
                ThreeWayAction::Schedule => {
                    row.police_officer = officer.map(|o| o.into_string());
                    row.scheduled_for = scheduled_for.map(Instant::from_utc);
                }
                ThreeWayAction::Hold => row.held_at = Some(now),
                ThreeWayAction::Evaluate => {
                    row.care_evaluation = keyring.seal_opt(
                        "three_way_conversations.care_evaluation",
                        row.id,
                        request.care_evaluation.as_deref(),
                    );
                    row.police_evaluation = keyring.seal_opt(
                        "three_way_conversations.police_evaluation",
                        row.id,
                        request.police_evaluation.as_deref(),
                    );
                    row.reporting_intention = request.reporting_intention.map(|r| r.as_str().into());
                }
                ThreeWayAction::Decline => {}
            }
            if !rows::update_three_way(conn, &row, version)? {
                return Err(ApiError::PreconditionFailed);
            }
            let audit_action = format!("three_way.{}", action.as_str());
            common::audit(
                conn,
                &actor,
                &audit_action,
                "three_way_conversation",
                row.id,
                Some(row.case_id),
                next.as_str(),
                now,
            )?;
            view(&actor, &keyring, &row)
        })
        .await?;
    Ok(common::ok_with_etag(result.version, result))
}

/// The case's conversations as the owning organisation sees them (for the subject-access export).
pub fn for_case(
    conn: &mut AnyConnection,
    actor: &Actor,
    keyring: &Keyring,
    case_id: Id,
) -> Result<Vec<ThreeWayView>, ApiError> {
    rows::three_way_for_case(conn, case_id)?
        .iter()
        .map(|r| view(actor, keyring, r))
        .collect()
}

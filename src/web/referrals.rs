//! Referral pages for both sides: a new referral from a routing suggestion, the intake
//! inbox with deadline badges, and the referral page with its timeline and only the actions
//! the signed-in person may take now.

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use chrono::{DateTime, Duration, Utc};

use super::forms::{FormPost, FormState, Refusal};
use super::i18n::{Lang, Tr};
use super::page::{Chrome, WebError, WebErrorKind, html, language_of, see_other};
use super::parts::{Choice, Done, Fact, choices, form_idempotency, notice_of, organisation_name, short_ref};
use super::time;
use super::{session, web_error};
use crate::api::context::Context;
use crate::api::referrals::{parse_assignee, parse_new_referral, parse_transition};
use crate::app::referrals::{AssignCommand, Assigned, Colleague, QueueItem, ReferralView, TransitionCommand};
use crate::app::sessions::Session;
use crate::crypto::random_token;
use crate::domain::deadline::{DeadlineLimits, StepClock, pending_steps};
use crate::domain::ids::{CaseId, ReferralId};
use crate::domain::referral::{Action, DeclineReason, Outcome, Urgency};
use crate::domain::routing::is_overridable;
use crate::error::ApiError;

/// A step due within this time is shown as due soon.
const DUE_SOON: i64 = 2;

/// The deadline badge of a referral: overdue, due soon, on time, or nothing owed.
#[derive(Debug, Clone)]
pub struct Deadline {
    /// `overdue`, `due-soon`, `on-time` or `none` (the badge's modifier class).
    pub kind: &'static str,
    pub text: String,
    /// For sorting the inbox: the earliest owed step's deadline.
    pub due_at: Option<DateTime<Utc>>,
}

/// The badge from the domain's deadlines (`domain::deadline`), as of `now`.
pub fn deadline(tr: &Tr, referral: &QueueItem, now: DateTime<Utc>, limits: &DeadlineLimits) -> Deadline {
    let clock = StepClock {
        state: referral.state,
        urgency: referral.urgency,
        submitted_at: referral.submitted_at,
        decided_at: referral.decided_at,
    };
    let Some(next) = pending_steps(&clock, limits).into_iter().min_by_key(|s| s.due_at) else {
        return Deadline {
            kind: "none",
            text: tr.t("deadline-none"),
            due_at: None,
        };
    };
    let step = tr.label("step", &next.step);
    let when = time::date_time(tr.lang, next.due_at);
    let (kind, key) = if now > next.due_at {
        ("overdue", "deadline-overdue")
    } else if next.due_at - now <= Duration::hours(DUE_SOON) {
        ("due-soon", "deadline-due-soon")
    } else {
        ("on-time", "deadline-on-time")
    };
    Deadline {
        kind,
        text: tr.with(key, &[("step", &step), ("time", &when)]),
        due_at: Some(next.due_at),
    }
}

/// A referral as a line of a list or table.
pub struct ReferralLine {
    pub href: String,
    pub link_text: String,
    pub from: String,
    pub to: String,
    pub services: String,
    pub urgency: String,
    pub state: String,
    pub deadline: Deadline,
    pub minor: bool,
    pub overdue: bool,
    /// Who at the receiving organisation took it on (shown to that organisation only).
    pub assignee: String,
}

pub fn referral_line(
    tr: &Tr,
    ctx: &Context,
    r: &QueueItem,
    now: DateTime<Utc>,
    limits: &DeadlineLimits,
    me: &str,
) -> ReferralLine {
    let deadline = deadline(tr, r, now, limits);
    ReferralLine {
        href: format!("/referrals/{}", r.id),
        link_text: tr.with("referral-link", &[("ref", &short_ref(r.id))]),
        from: organisation_name(ctx, &r.from_organisation),
        to: organisation_name(ctx, &r.to_organisation),
        services: r
            .services
            .iter()
            .map(|s| tr.label("service", s))
            .collect::<Vec<_>>()
            .join(", "),
        urgency: tr.label("urgency", &r.urgency),
        state: tr.label("state", &r.state),
        overdue: deadline.kind == "overdue",
        deadline,
        minor: r.minor,
        assignee: assignee_name(tr, &r.assigned_to, &r.assigned_name, me),
    }
}

/// How a page names who took a referral on: "you", a colleague's name, or nobody.
fn assignee_name(tr: &Tr, assigned_to: &Option<String>, assigned_name: &Option<String>, me: &str) -> String {
    match (assigned_to, assigned_name) {
        (None, _) => tr.t("assigned-nobody"),
        (Some(sub), _) if sub == me => tr.t("assigned-you"),
        (Some(_), Some(name)) => name.clone(),
        (Some(sub), None) => sub.clone(),
    }
}

fn parse_uuid(lang: Lang, text: &str) -> Result<uuid::Uuid, WebError> {
    uuid::Uuid::parse_str(text).map_err(|_| WebError::new(lang, WebErrorKind::NotFound))
}

// ---------------------------------------------------------------------------
// A new referral
// ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "referral_new.html")]
struct NewReferralPage {
    chrome: Chrome,
    form: FormState,
    form_id: String,
    action: String,
    back: String,
    organisations: Vec<Choice>,
    services: Vec<Choice>,
    urgencies: Vec<Choice>,
}

fn new_referral_page(tr: Tr, session: &Session, ctx: &Context, case_id: CaseId, form: FormState) -> NewReferralPage {
    let registry = ctx.registry();
    NewReferralPage {
        chrome: Chrome::signed_in(
            tr.lang,
            &format!("/cases/{}/referrals/new", case_id.0),
            tr.t("referral-new-title"),
            session,
            registry,
        ),
        form,
        form_id: random_token(16),
        action: format!("/cases/{}/referrals", case_id.0),
        back: format!("/cases/{}", case_id.0),
        organisations: registry
            .organisations
            .values()
            .filter(|o| o.slug != session.actor.org)
            .map(|o| Choice {
                value: o.slug.clone(),
                label: o.name.clone(),
            })
            .collect(),
        services: registry
            .services
            .iter()
            .map(|s| Choice {
                value: s.clone(),
                label: tr.label("service", s),
            })
            .collect(),
        urgencies: choices(&tr, "urgency", &Urgency::ALL),
    }
}

/// The form, with the organisation and services of a suggestion already chosen.
#[get("/cases/{id}/referrals/new")]
pub async fn new_form(req: HttpRequest, ctx: Context, path: web::Path<String>) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let session = session(&req, &ctx).await?;
    let case_id = CaseId(parse_uuid(lang, &path)?);
    // The same check as drafting: only the owner's caseworkers refer, and the case must exist.
    ctx.read(session.actor.clone(), move |c| {
        crate::app::access::case_for(c, case_id, crate::domain::access::CaseAction::Refer).map(|_| ())
    })
    .await
    .map_err(|e| web_error(lang, e))?;
    let mut values: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .filter(|(k, _)| k == "to_organisation" || k == "services")
        .collect();
    values.push(("urgency".into(), "routine".into()));
    let page = new_referral_page(Tr::new(lang), &session, &ctx, case_id, FormState::with_values(values));
    Ok(html(StatusCode::OK, &page))
}

#[post("/cases/{id}/referrals")]
pub async fn create(
    req: HttpRequest,
    ctx: Context,
    path: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    let case_id = CaseId(parse_uuid(lang, &path)?);
    let form = FormPost::read(&req, &body, &session, tr)?;
    let route = format!("POST /cases/{}/referrals", case_id.0);
    let result = match form
        .json("ReferralInput", &["form_id"])
        .and_then(|json| Ok((parse_new_referral(json.clone(), ctx.registry())?, json)))
    {
        Ok((new, json)) => {
            let idempotency = form_idempotency(&ctx, &form, &route, &json);
            ctx.write(session.actor.clone(), move |c| {
                crate::app::referrals::draft(c, case_id, new, &idempotency)
            })
            .await
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(view) => Ok(see_other(&format!("/referrals/{}?done=referral-drafted", view.id))),
        Err(ApiError::Validation(errors)) => {
            let mut state = form.state();
            state.add_api_errors(tr, &errors);
            let page = new_referral_page(tr, &session, &ctx, case_id, state);
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(other) => Err(web_error(lang, other)),
    }
}

// ---------------------------------------------------------------------------
// The inbox
// ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    chrome: Chrome,
    lines: Vec<ReferralLine>,
    closed: Vec<ReferralLine>,
    /// The filter links: (value of `assigned_to`, label, whether it is the one shown).
    filters: Vec<(String, String, bool)>,
}

#[derive(serde::Deserialize)]
pub struct InboxQuery {
    /// As the API's list: `me` or `nobody`.
    assigned_to: Option<String>,
}

/// Incoming referrals that still need the organisation, overdue first, then by deadline;
/// "mine" and "not taken on yet" narrow it down.
#[get("/inbox")]
pub async fn inbox(req: HttpRequest, ctx: Context, query: web::Query<InboxQuery>) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    let assigned = match query.assigned_to.as_deref() {
        Some("me") => Some(Assigned::ToMe),
        Some("nobody") => Some(Assigned::ToNobody),
        _ => None,
    };
    let limit = ctx.settings().cases.page_size_max;
    let found = ctx
        .report(session.actor.clone(), move |c| {
            crate::app::referrals::queue(c, assigned, limit)
        })
        .await
        .map_err(|e| web_error(lang, e))?;
    let now = ctx.now().0;
    let limits = &ctx.services.limits;
    let me = session.actor.sub.as_str();
    let (open, closed): (Vec<&QueueItem>, Vec<&QueueItem>) = found.iter().partition(|r| r.state.is_open());
    let mut lines: Vec<ReferralLine> = open
        .iter()
        .map(|r| referral_line(&tr, &ctx, r, now, limits, me))
        .collect();
    lines.sort_by_key(|l| (!l.overdue, l.deadline.due_at.is_none(), l.deadline.due_at));
    let closed = closed
        .iter()
        .take(20)
        .map(|r| referral_line(&tr, &ctx, r, now, limits, me))
        .collect();
    let shown = query
        .assigned_to
        .as_deref()
        .filter(|v| ["me", "nobody"].contains(v))
        .unwrap_or("");
    let filters = [
        ("", "inbox-filter-all"),
        ("me", "inbox-filter-mine"),
        ("nobody", "inbox-filter-nobody"),
    ]
    .into_iter()
    .map(|(value, key)| (value.to_string(), tr.t(key), value == shown))
    .collect();
    let page = InboxPage {
        chrome: Chrome::signed_in(lang, "/inbox", tr.t("inbox-title"), &session, ctx.registry()),
        lines,
        closed,
        filters,
    };
    Ok(html(StatusCode::OK, &page))
}

// ---------------------------------------------------------------------------
// The referral page
// ---------------------------------------------------------------------------

pub struct TimelineEntry {
    pub what: String,
    pub when: String,
    pub when_machine: String,
    pub by: String,
    pub details: Vec<String>,
}

/// One action the person may take now, as a form.
pub struct ActionForm {
    pub action: String,
    pub label: String,
    /// `primary` for the step forward, `secondary` for the rest.
    pub weight: &'static str,
    /// Fields this action asks for: `decline`, `withdraw`, `complete`, `submit`.
    pub needs: &'static str,
}

#[derive(Template)]
#[template(path = "referral.html")]
struct ReferralPage {
    chrome: Chrome,
    facts: Vec<Fact>,
    state: String,
    deadline: Deadline,
    timeline: Vec<TimelineEntry>,
    actions: Vec<ActionForm>,
    action_url: String,
    version: i64,
    form: FormState,
    guards: Vec<String>,
    may_override: bool,
    stale: bool,
    outcome: Option<String>,
    case_href: Option<String>,
    decline_reasons: Vec<Choice>,
    outcomes: Vec<Choice>,
    assign: Option<AssignForm>,
}

/// Taking the referral on, or handing it to a colleague, for the receiver's intake staff.
pub struct AssignForm {
    pub url: String,
    /// Who has it now, as the page names them.
    pub current: String,
    pub current_sub: String,
    /// The person's own id, for "take it on myself" (hidden unless it is someone else's).
    pub me: String,
    pub mine: bool,
    pub colleagues: Vec<Choice>,
}

fn timeline(tr: &Tr, ctx: &Context, r: &ReferralView) -> Vec<TimelineEntry> {
    r.history
        .iter()
        .rev()
        .map(|h| {
            let mut details = Vec::new();
            if let Some(code) = &h.reason_code {
                details.push(tr.label("decline", code));
            }
            if let Some(code) = &h.outcome_code {
                details.push(tr.label("outcome", code));
            }
            details.extend(
                h.reason
                    .iter()
                    .chain(h.outcome.iter())
                    .filter(|t| !t.is_empty())
                    .cloned(),
            );
            TimelineEntry {
                // The step alone: its past-tense label ("Aangenomen") already says where it
                // left the referral, and "Aangenomen: Aangenomen" said it twice.
                what: tr.label("action", &h.action),
                when: time::date_time(tr.lang, h.at),
                when_machine: time::machine(h.at),
                by: if h.actor_sub == "system" {
                    tr.t("history-by-system")
                } else {
                    organisation_name(ctx, &h.actor_org)
                },
                details,
            }
        })
        .collect()
}

fn referral_page(
    tr: Tr,
    session: &Session,
    ctx: &Context,
    r: &ReferralView,
    refusal: Option<Refusal>,
    colleagues: &[Colleague],
) -> ReferralPage {
    let now = ctx.now().0;
    let me = session.actor.sub.as_str();
    let mut facts = vec![
        Fact {
            term: tr.t("fact-from"),
            value: organisation_name(ctx, &r.from_organisation),
        },
        Fact {
            term: tr.field("to_organisation"),
            value: organisation_name(ctx, &r.to_organisation),
        },
        Fact {
            term: tr.field("services"),
            value: r
                .services
                .iter()
                .map(|s| tr.label("service", s))
                .collect::<Vec<_>>()
                .join(", "),
        },
        Fact {
            term: tr.field("urgency"),
            value: tr.label("urgency", &r.urgency),
        },
        Fact {
            term: tr.t("fact-pseudonym"),
            value: r.case.pseudonym.clone().unwrap_or_else(|| tr.t("not-recorded")),
        },
        Fact {
            term: tr.field("exploitation_forms"),
            value: r
                .case
                .exploitation_forms
                .iter()
                .map(|f| tr.label("form", f))
                .collect::<Vec<_>>()
                .join(", "),
        },
        Fact {
            term: tr.t("fact-minor"),
            value: tr.t(if r.case.minor { "yes" } else { "no" }),
        },
        Fact {
            term: tr.field("note"),
            value: r.note.clone().unwrap_or_else(|| tr.t("not-recorded")),
        },
    ];
    if r.to_organisation == session.actor.org {
        facts.push(Fact {
            term: tr.field("assigned_to"),
            value: assignee_name(&tr, &r.assigned_to, &r.assigned_name, me),
        });
    }
    let assign_form = r.assignable.then(|| AssignForm {
        url: format!("/referrals/{}/assignee", r.id),
        current: assignee_name(&tr, &r.assigned_to, &r.assigned_name, me),
        current_sub: r.assigned_to.clone().unwrap_or_default(),
        me: me.to_string(),
        mine: r.assigned_to.as_deref() == Some(me),
        colleagues: colleagues
            .iter()
            .map(|c| Choice {
                value: c.sub.clone(),
                label: if c.sub == me {
                    tr.t("assigned-you")
                } else {
                    c.name.clone()
                },
            })
            .collect(),
    });
    let actions = r
        .allowed_actions
        .iter()
        .map(|a| ActionForm {
            action: a.as_str().to_string(),
            label: tr.label("do", a),
            weight: match a {
                Action::Withdraw | Action::Decline => "secondary",
                _ => "primary",
            },
            needs: match a {
                Action::Decline => "decline",
                Action::Withdraw => "withdraw",
                Action::Complete => "complete",
                Action::Submit => "submit",
                _ => "",
            },
        })
        .collect();
    let refusal = refusal.unwrap_or_default();
    let may_override = refusal.guards.iter().any(|g| is_overridable(g));
    let outcome = r.outcome.map(|o| {
        let text = r
            .history
            .iter()
            .rev()
            .find_map(|h| h.outcome.clone())
            .filter(|t| !t.is_empty());
        match text {
            Some(text) => format!("{} — {text}", tr.label("outcome", &o)),
            None => tr.label("outcome", &o),
        }
    });
    ReferralPage {
        chrome: Chrome::signed_in(
            tr.lang,
            &format!("/referrals/{}", r.id),
            tr.with("referral-title", &[("ref", &short_ref(r.id))]),
            session,
            ctx.registry(),
        ),
        facts,
        state: tr.label("state", &r.state),
        deadline: deadline(&tr, &QueueItem::from(r), now, &ctx.services.limits),
        timeline: timeline(&tr, ctx, r),
        actions,
        action_url: format!("/referrals/{}/transition", r.id),
        version: r.version,
        form: refusal.form,
        guards: refusal.guards.iter().map(|g| tr.label("guard", g)).collect(),
        may_override,
        stale: refusal.stale,
        outcome,
        case_href: (r.from_organisation == session.actor.org).then(|| format!("/cases/{}", r.case_id)),
        decline_reasons: choices(&tr, "decline", &DeclineReason::ALL),
        outcomes: choices(&tr, "outcome", &Outcome::ALL),
        assign: assign_form,
    }
}

/// The referral and, when the person may assign it, their intake colleagues: one read.
async fn referral_and_colleagues(
    ctx: &Context,
    session: &Session,
    id: ReferralId,
) -> Result<(ReferralView, Vec<Colleague>), ApiError> {
    ctx.read(session.actor.clone(), move |c| {
        let view = crate::app::referrals::get(c, id)?;
        let colleagues = if view.assignable {
            crate::app::referrals::colleagues(c)?
        } else {
            Vec::new()
        };
        Ok((view, colleagues))
    })
    .await
}

#[get("/referrals/{id}")]
pub async fn show(
    req: HttpRequest,
    ctx: Context,
    path: web::Path<String>,
    done: web::Query<Done>,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    let id = ReferralId(parse_uuid(lang, &path)?);
    let (view, colleagues) = referral_and_colleagues(&ctx, &session, id)
        .await
        .map_err(|e| web_error(lang, e))?;
    let mut page = referral_page(tr, &session, &ctx, &view, None, &colleagues);
    if let Some(notice) = notice_of(&done.done) {
        page.chrome = page.chrome.with_notice(&notice);
    }
    Ok(html(StatusCode::OK, &page))
}

/// Takes one step. The form carries the version it was rendered from: if the referral
/// changed meanwhile, nothing is applied and the page shows the current state.
#[post("/referrals/{id}/transition")]
pub async fn transition(
    req: HttpRequest,
    ctx: Context,
    path: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    let id = ReferralId(parse_uuid(lang, &path)?);
    let form = FormPost::read(&req, &body, &session, tr)?;
    let seen = form.seen_version();
    let result = match form.json("TransitionInput", &[]).and_then(parse_transition) {
        Ok((request, override_reason)) => {
            let command = TransitionCommand {
                request,
                override_reason,
                seen,
            };
            ctx.write(session.actor.clone(), move |c| {
                crate::app::referrals::transition(c, id, command)
            })
            .await
        }
        Err(error) => Err(error),
    };
    let error = match result {
        Ok(_) => return Ok(see_other(&format!("/referrals/{}?done=step-done", id.0))),
        Err(error) => error,
    };
    let (status, refusal) = Refusal::of(tr, &form, error).map_err(|e| web_error(lang, e))?;
    refused_page(tr, &session, &ctx, id, status, refusal).await
}

async fn refused_page(
    tr: Tr,
    session: &Session,
    ctx: &Context,
    id: ReferralId,
    status: StatusCode,
    refusal: Refusal,
) -> Result<HttpResponse, WebError> {
    let (view, colleagues) = referral_and_colleagues(ctx, session, id)
        .await
        .map_err(|e| web_error(tr.lang, e))?;
    Ok(html(
        status,
        &referral_page(tr, session, ctx, &view, Some(refusal), &colleagues),
    ))
}

/// Takes the referral on, hands it to a colleague, or back to the queue: `PUT .../assignee`
/// of the API, with the version the page was rendered from.
#[post("/referrals/{id}/assignee")]
pub async fn assign_referral(
    req: HttpRequest,
    ctx: Context,
    path: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    let id = ReferralId(parse_uuid(lang, &path)?);
    let form = FormPost::read(&req, &body, &session, tr)?;
    let seen = form.seen_version();
    let result = match form.json("AssigneeInput", &[]).and_then(parse_assignee) {
        Ok(assigned_to) => {
            let command = AssignCommand { assigned_to, seen };
            ctx.write(session.actor.clone(), move |c| {
                crate::app::referrals::assign(c, id, command)
            })
            .await
        }
        Err(error) => Err(error),
    };
    let error = match result {
        Ok(_) => return Ok(see_other(&format!("/referrals/{}?done=assigned", id.0))),
        Err(error) => error,
    };
    let (status, refusal) = Refusal::of(tr, &form, error).map_err(|e| web_error(lang, e))?;
    refused_page(tr, &session, &ctx, id, status, refusal).await
}

// ---------------------------------------------------------------------------
// The organisation's capacity
// ---------------------------------------------------------------------------

pub struct CapacityLine {
    pub service: String,
    pub label: String,
    pub places_free: String,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "capacity.html")]
struct CapacityPage {
    chrome: Chrome,
    lines: Vec<CapacityLine>,
    form: FormState,
}

async fn capacity_page(tr: Tr, session: &Session, ctx: &Context, form: FormState) -> Result<CapacityPage, WebError> {
    let org = session.actor.org.clone();
    let view = ctx
        .read(session.actor.clone(), move |c| {
            crate::app::capacity::organisation(c, &org)
        })
        .await
        .map_err(|e| web_error(tr.lang, e))?;
    let lines = view
        .offers
        .iter()
        .filter(|o| o.capacity_managed)
        .map(|o| {
            let reported = view.capacity.iter().find(|c| c.service == o.service);
            CapacityLine {
                service: o.service.clone(),
                label: tr.label("service", &o.service),
                places_free: reported.map(|c| c.places_free.to_string()).unwrap_or_default(),
                updated: reported
                    .map(|c| time::date_time(tr.lang, c.updated_at))
                    .unwrap_or_else(|| tr.t("capacity-never")),
            }
        })
        .collect();
    Ok(CapacityPage {
        chrome: Chrome::signed_in(tr.lang, "/capacity", tr.t("capacity-title"), session, ctx.registry()),
        lines,
        form,
    })
}

/// Places free per capacity-managed service of the person's own organisation.
#[get("/capacity")]
pub async fn capacity(req: HttpRequest, ctx: Context, done: web::Query<Done>) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let session = session(&req, &ctx).await?;
    crate::domain::access::report_capacity(session.actor.principal(), &session.actor.org)
        .map_err(|_| WebError::new(lang, WebErrorKind::Forbidden))?;
    let mut page = capacity_page(Tr::new(lang), &session, &ctx, FormState::default()).await?;
    if let Some(notice) = notice_of(&done.done) {
        page.chrome = page.chrome.with_notice(&notice);
    }
    Ok(html(StatusCode::OK, &page))
}

/// Reports one service's places free: the API's `CapacityEntry`, one per form.
#[post("/capacity")]
pub async fn report_capacity(req: HttpRequest, ctx: Context, body: Bytes) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    let form = FormPost::read(&req, &body, &session, tr)?;
    let slug = session.actor.org.clone();
    let result = match form
        .json("CapacityEntry", &[])
        .and_then(|entry| crate::api::organisations::parse_reports(serde_json::json!({ "services": [entry] })))
    {
        Ok(reports) => ctx
            .write(session.actor.clone(), move |c| {
                crate::app::capacity::report(c, &slug, reports)
            })
            .await
            .map(|_| ()),
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => Ok(see_other("/capacity?done=capacity-reported")),
        Err(ApiError::Validation(errors)) => {
            // `services.0.places_free` is the form's `places_free`.
            let errors: Vec<_> = errors
                .into_iter()
                .map(|e| crate::error::FieldError::new(e.field.rsplit('.').next().unwrap_or(""), e.message))
                .collect();
            let mut state = form.state();
            state.add_api_errors(tr, &errors);
            let page = capacity_page(tr, &session, &ctx, state).await?;
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(other) => Err(web_error(lang, other)),
    }
}

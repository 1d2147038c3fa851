//! A three-way conversation (driehoeksgesprek) after it was offered on the case page: its
//! course, and the caseworker's next step (schedule with an investigator, held, evaluated,
//! or declined by the person) through the API's own parser and use case.

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;

use super::forms::{FormPost, FormState, Refusal};
use super::i18n::Tr;
use super::page::{Chrome, WebError, WebErrorKind, html, language_of, see_other};
use super::parts::{Choice, Done, Fact, choices, notice_of, organisation_name, short_ref};
use super::time;
use super::{session, web_error};
use crate::api::context::Context;
use crate::api::three_way::parse_transition;
use crate::app::SeenVersion;
use crate::app::sessions::Session;
use crate::app::three_way::ThreeWayView;
use crate::domain::ids::ConversationId;
use crate::domain::three_way::{ReportingIntention, ThreeWayAction};
use crate::error::ApiError;

/// One step the caseworker may take now, as a form.
pub struct StepForm {
    pub action: String,
    pub label: String,
    pub weight: &'static str,
}

#[derive(Template)]
#[template(path = "three_way.html")]
struct ConversationPage {
    chrome: Chrome,
    facts: Vec<Fact>,
    state: String,
    steps: Vec<StepForm>,
    action_url: String,
    version: i64,
    form: FormState,
    /// Conditions that do not hold for the step asked for, said why.
    guards: Vec<String>,
    stale: bool,
    case_href: String,
    intentions: Vec<Choice>,
}

fn conversation_page(tr: Tr, session: &Session, ctx: &Context, c: &ThreeWayView, refusal: Refusal) -> ConversationPage {
    let not_recorded = || tr.t("not-recorded");
    let mut facts = vec![
        Fact {
            term: tr.t("three-way-police"),
            value: organisation_name(ctx, &c.police_organisation),
        },
        Fact {
            term: tr.t("three-way-offered-at"),
            value: time::date_time(tr.lang, c.created_at),
        },
    ];
    if let Some(officer) = &c.police_officer {
        facts.push(Fact {
            term: tr.field("police_officer"),
            value: officer.clone(),
        });
    }
    if let Some(at) = c.scheduled_for {
        facts.push(Fact {
            term: tr.field("scheduled_for"),
            value: time::date_time(tr.lang, at),
        });
    }
    if let Some(at) = c.held_at {
        facts.push(Fact {
            term: tr.t("three-way-held-at"),
            value: time::date_time(tr.lang, at),
        });
    }
    if let Some(intention) = c.reporting_intention {
        facts.push(Fact {
            term: tr.field("reporting_intention"),
            value: tr.label("intention", &intention),
        });
        for (field, text) in [
            ("care_evaluation", &c.care_evaluation),
            ("police_evaluation", &c.police_evaluation),
        ] {
            facts.push(Fact {
                term: tr.field(field),
                value: text.clone().unwrap_or_else(not_recorded),
            });
        }
    }
    let steps = c
        .allowed_actions
        .iter()
        .map(|a| StepForm {
            action: a.as_str().to_string(),
            label: tr.label("three-way-do", a),
            weight: if *a == ThreeWayAction::Decline {
                "secondary"
            } else {
                "primary"
            },
        })
        .collect();
    ConversationPage {
        chrome: Chrome::signed_in(
            tr.lang,
            &format!("/three-way-conversations/{}", c.id),
            tr.with("three-way-title", &[("ref", &short_ref(c.id))]),
            session,
            ctx.registry(),
        ),
        facts,
        state: tr.label("three-way", &c.state),
        steps,
        action_url: format!("/three-way-conversations/{}/transition", c.id),
        version: c.version,
        form: refusal.form,
        guards: refusal.guards.iter().map(|g| tr.label("guard", g)).collect(),
        stale: refusal.stale,
        case_href: format!("/cases/{}", c.case_id),
        intentions: choices(&tr, "intention", &ReportingIntention::ALL),
    }
}

fn parse_id(lang: super::i18n::Lang, text: &str) -> Result<ConversationId, WebError> {
    uuid::Uuid::parse_str(text)
        .map(ConversationId)
        .map_err(|_| WebError::new(lang, WebErrorKind::NotFound))
}

#[get("/three-way-conversations/{id}")]
pub async fn show(
    req: HttpRequest,
    ctx: Context,
    path: web::Path<String>,
    done: web::Query<Done>,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let session = session(&req, &ctx).await?;
    let id = parse_id(lang, &path)?;
    let view = ctx
        .read(session.actor.clone(), move |c| crate::app::three_way::get(c, id))
        .await
        .map_err(|e| web_error(lang, e))?;
    let mut page = conversation_page(Tr::new(lang), &session, &ctx, &view, Refusal::default());
    if let Some(notice) = notice_of(&done.done) {
        page.chrome = page.chrome.with_notice(&notice);
    }
    Ok(html(StatusCode::OK, &page))
}

/// The form as the API's `ThreeWayTransitionInput`: the time the caseworker typed on the
/// Amsterdam clock (`datetime-local`) becomes the instant the API takes.
fn as_api_form(form: &FormPost) -> Result<Vec<(String, String)>, ApiError> {
    form.pairs()
        .iter()
        .map(|(name, value)| {
            if name != "scheduled_for" || value.trim().is_empty() {
                return Ok((name.clone(), value.clone()));
            }
            let local = chrono::NaiveDateTime::parse_from_str(value.trim(), "%Y-%m-%dT%H:%M")
                .map_err(|_| ApiError::field("scheduled_for", "must be a date and time"))?;
            Ok((name.clone(), time::from_local(local).to_rfc3339()))
        })
        .collect()
}

/// Takes the conversation's next step, at the version the page showed.
#[post("/three-way-conversations/{id}/transition")]
pub async fn transition(
    req: HttpRequest,
    ctx: Context,
    path: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    let id = parse_id(lang, &path)?;
    let form = FormPost::read(&req, &body, &session, tr)?;
    let seen: SeenVersion = form.seen_version();
    let parsed = as_api_form(&form)
        .and_then(|pairs| crate::api::input::form_to_json("ThreeWayTransitionInput", &pairs))
        .and_then(parse_transition);
    let result = match parsed {
        Ok(request) => {
            ctx.write(session.actor.clone(), move |c| {
                crate::app::three_way::transition(c, id, request, seen)
            })
            .await
        }
        Err(error) => Err(error),
    };
    let error = match result {
        Ok(_) => {
            return Ok(see_other(&format!(
                "/three-way-conversations/{}?done=three-way-step",
                id.0
            )));
        }
        Err(error) => error,
    };
    let (status, refusal) = Refusal::of(tr, &form, error).map_err(|e| web_error(lang, e))?;
    let view = ctx
        .read(session.actor.clone(), move |c| crate::app::three_way::get(c, id))
        .await
        .map_err(|e| web_error(lang, e))?;
    Ok(html(status, &conversation_page(tr, &session, &ctx, &view, refusal)))
}

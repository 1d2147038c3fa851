//! Caseworker pages: the organisation's cases, a new case after a chat (with the duplicate
//! check by pseudonym), and the case page with identification, consents, routing
//! suggestions, referrals and three-way conversations.

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;

use super::forms::{FormPost, FormState};
use super::i18n::Tr;
use super::page::{Chrome, WebError, WebErrorKind, html, language_of, see_other};
use super::parts::{Choice, Done, Fact, choices, form_idempotency, notice_of, organisation_name, short_ref};
use super::referrals::{ReferralLine, referral_line};
use super::time;
use super::{session, web_error};
use crate::api::cases::{CaseListQuery, parse_case_query, parse_consent, parse_identification, parse_new_case};
use crate::api::context::Context;
use crate::app::cases::CaseView;
use crate::app::consents::ConsentView;
use crate::app::sessions::Session;
use crate::app::three_way::ThreeWayView;
use crate::crypto::random_token;
use crate::domain::case::{ContactChannel, ExploitationForm, Gender, IdentificationStatus, ReporterRole};
use crate::domain::consent::{ConsentGiver, ConsentMethod, ConsentScope};
use crate::domain::ids::{CaseId, ConsentId};
use crate::domain::routing::{Need, Routing};
use crate::domain::text::Text;
use crate::domain::three_way::ReportingIntention;
use crate::error::ApiError;

fn parse_case_id(lang: super::i18n::Lang, text: &str) -> Result<CaseId, WebError> {
    uuid::Uuid::parse_str(text)
        .map(CaseId)
        .map_err(|_| WebError::new(lang, WebErrorKind::NotFound))
}

// ---------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------

pub struct CaseLine {
    pub href: String,
    pub link_text: String,
    pub contact_date: String,
    pub reporter_role: String,
    pub forms: String,
    pub minor: bool,
    pub status: String,
}

#[derive(Template)]
#[template(path = "cases.html")]
struct CaseListPage {
    chrome: Chrome,
    lines: Vec<CaseLine>,
    filters: FormState,
    statuses: Vec<Choice>,
    forms: Vec<Choice>,
    minor_choices: Vec<Choice>,
    next_page: Option<String>,
}

fn blank_none(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

#[get("/cases")]
pub async fn list(req: HttpRequest, ctx: Context, query: web::Query<CaseListQuery>) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    let q = query.into_inner();
    let shown: Vec<(String, String)> = [
        ("status", &q.status),
        ("from", &q.from),
        ("to", &q.to),
        ("exploitation_form", &q.exploitation_form),
        ("minor", &q.minor),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), v.clone())))
    .collect();
    let q = CaseListQuery {
        status: blank_none(q.status),
        from: blank_none(q.from),
        to: blank_none(q.to),
        exploitation_form: blank_none(q.exploitation_form),
        minor: blank_none(q.minor),
        limit: Some(25),
        cursor: blank_none(q.cursor),
    };
    let mut filters = FormState::with_values(shown.clone());
    let found = match parse_case_query(q, ctx.settings()) {
        Ok(query) => Some(
            ctx.read(session.actor.clone(), move |c| crate::app::cases::list(c, query))
                .await
                .map_err(|e| web_error(lang, e))?,
        ),
        Err(ApiError::Validation(errors)) => {
            filters.add_api_errors(tr, &errors);
            None
        }
        Err(other) => return Err(web_error(lang, other)),
    };
    let (lines, next_page) = match found {
        Some(list) => {
            let next = list.next_cursor.map(|cursor| {
                let mut pairs = shown.clone();
                pairs.push(("cursor".into(), cursor));
                let query: String = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs)
                    .finish();
                format!("/cases?{query}")
            });
            (list.items.iter().map(|c| case_line(&tr, c)).collect(), next)
        }
        None => (Vec::new(), None),
    };
    let title = tr.t("cases-title");
    let page = CaseListPage {
        chrome: Chrome::signed_in(lang, "/cases", title, &session, ctx.registry()),
        lines,
        statuses: choices(&tr, "status", &IdentificationStatus::ALL),
        forms: choices(&tr, "form", &ExploitationForm::ALL),
        minor_choices: vec![
            Choice {
                value: "true".into(),
                label: tr.t("minor-only-children"),
            },
            Choice {
                value: "false".into(),
                label: tr.t("minor-only-adults"),
            },
        ],
        filters,
        next_page,
    };
    let status = if page.filters.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(html(status, &page))
}

/// A case as a line of the list: no pseudonym, no identifying detail.
fn case_line(tr: &Tr, case: &CaseView) -> CaseLine {
    let contact_date = case.contact_date.map(|d| time::date(tr.lang, d)).unwrap_or_default();
    CaseLine {
        href: format!("/cases/{}", case.id),
        link_text: tr.with("case-link", &[("date", &contact_date), ("ref", &short_ref(case.id))]),
        reporter_role: case.reporter_role.map(|r| tr.label("reporter", &r)).unwrap_or_default(),
        forms: case
            .exploitation_forms
            .iter()
            .map(|f| tr.label("form", f))
            .collect::<Vec<_>>()
            .join(", "),
        minor: case.minor,
        status: tr.label("status", &case.identification.status),
        contact_date,
    }
}

// ---------------------------------------------------------------------------
// A new case
// ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "case_new.html")]
struct NewCasePage {
    chrome: Chrome,
    form: FormState,
    form_id: String,
    reporter_roles: Vec<Choice>,
    channels: Vec<Choice>,
    forms: Vec<Choice>,
    genders: Vec<Choice>,
    intentions: Vec<Choice>,
    needs: Vec<Choice>,
    regions: Vec<Choice>,
    /// Cases of this organisation with the same pseudonym: shown before creating another.
    duplicates: Vec<Choice>,
}

fn new_case_page(tr: Tr, session: &Session, ctx: &Context, form: FormState) -> NewCasePage {
    let regions = ctx
        .registry()
        .regions
        .iter()
        .map(|r| Choice {
            value: r.clone(),
            label: tr.label("region", r),
        })
        .collect();
    NewCasePage {
        chrome: Chrome::signed_in(tr.lang, "/cases/new", tr.t("case-new-title"), session, ctx.registry()),
        form_id: random_token(16),
        reporter_roles: choices(&tr, "reporter", &ReporterRole::ALL),
        channels: choices(&tr, "channel", &ContactChannel::ALL),
        forms: choices(&tr, "form", &ExploitationForm::ALL),
        genders: choices(&tr, "gender", &Gender::ALL),
        intentions: choices(&tr, "intention", &ReportingIntention::ALL),
        needs: choices(&tr, "need", &Need::ALL),
        regions,
        duplicates: Vec::new(),
        form,
    }
}

#[get("/cases/new")]
pub async fn new_form(req: HttpRequest, ctx: Context) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let session = session(&req, &ctx).await?;
    crate::domain::access::open_case(session.actor.principal())
        .map_err(|_| WebError::new(lang, WebErrorKind::Forbidden))?;
    let today = ctx.now().0.date_naive().to_string();
    let form = FormState::with_values(vec![
        ("contact_date".into(), today),
        ("contact_channel".into(), "chat".into()),
    ]);
    Ok(html(
        StatusCode::OK,
        &new_case_page(Tr::new(lang), &session, &ctx, form),
    ))
}

/// Files the case. A pseudonym the organisation already has is shown first, with the
/// choice to open the existing case or to create a new one anyway.
#[post("/cases")]
pub async fn create(req: HttpRequest, ctx: Context, body: Bytes) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    let form = FormPost::read(&req, &body, &session, tr)?;
    let page_fields = ["form_id", "duplicate_checked"];
    let parsed = form.json("CaseInput", &page_fields).and_then(|json| {
        let new = parse_new_case(json.clone(), ctx.registry(), ctx.now().0.date_naive())?;
        Ok((json, new))
    });
    let (json, new) = match parsed {
        Ok(parsed) => parsed,
        Err(ApiError::Validation(errors)) => {
            let mut state = form.state();
            state.add_api_errors(tr, &errors);
            return Ok(html(
                StatusCode::UNPROCESSABLE_ENTITY,
                &new_case_page(tr, &session, &ctx, state),
            ));
        }
        Err(other) => return Err(web_error(lang, other)),
    };
    if let (Some(pseudonym), None) = (&new.pseudonym, form.get("duplicate_checked")) {
        let pseudonym: Text = pseudonym.clone();
        let existing = ctx
            .read(session.actor.clone(), move |c| {
                crate::app::cases::with_pseudonym(c, &pseudonym)
            })
            .await
            .map_err(|e| web_error(lang, e))?;
        if !existing.is_empty() {
            let mut page = new_case_page(tr, &session, &ctx, form.state());
            page.duplicates = existing
                .iter()
                .map(|id| Choice {
                    value: format!("/cases/{}", id.0),
                    label: tr.with("case-ref", &[("ref", &short_ref(id.0))]),
                })
                .collect();
            return Ok(html(StatusCode::OK, &page));
        }
    }
    let idempotency = form_idempotency(&ctx, &form, "POST /cases", &json);
    let view = ctx
        .write(session.actor.clone(), move |c| {
            crate::app::cases::open(c, new, &idempotency)
        })
        .await
        .map_err(|e| web_error(lang, e))?;
    Ok(see_other(&format!("/cases/{}?done=case-created", view.id)))
}

// ---------------------------------------------------------------------------
// The case page
// ---------------------------------------------------------------------------

pub struct ConsentLine {
    pub scope: String,
    pub organisation: String,
    pub given: String,
    pub withdrawn: Option<String>,
    pub withdraw_action: Option<String>,
}

pub struct SuggestionLine {
    pub organisation: String,
    pub services: String,
    pub explanations: Vec<String>,
    pub href: String,
}

pub struct ExclusionLine {
    pub organisation: String,
    pub reason: String,
}

pub struct ConversationLine {
    pub href: String,
    pub link_text: String,
    pub police: String,
    pub state: String,
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    chrome: Chrome,
    facts: Vec<Fact>,
    minor: bool,
    age_uncertain: bool,
    status: String,
    reasonable_grounds: bool,
    reasonable_grounds_on: Option<String>,
    reflection_period_end: Option<String>,
    identification_action: String,
    identification_form: FormState,
    consents: Vec<ConsentLine>,
    consent_action: String,
    consent_form: FormState,
    consent_form_id: String,
    scopes: Vec<Choice>,
    givers: Vec<Choice>,
    methods: Vec<Choice>,
    organisations: Vec<Choice>,
    suggestions: Vec<SuggestionLine>,
    exclusions: Vec<ExclusionLine>,
    referrals: Vec<ReferralLine>,
    new_referral_href: String,
    conversations: Vec<ConversationLine>,
    three_way_action: String,
    anonymous_action: Option<String>,
    anonymous_filed: bool,
    /// A refused button on the page (three-way offer, anonymous notification), said why.
    problem: Option<String>,
    writable: bool,
}

/// Everything the case page shows, loaded in one transaction.
struct CaseData {
    case: CaseView,
    consents: Vec<ConsentView>,
    routing: Routing,
    referrals: Vec<crate::app::referrals::ReferralView>,
    conversations: Vec<ThreeWayView>,
    anonymous_filed: bool,
    writable: bool,
}

async fn load_case(ctx: &Context, session: &Session, id: CaseId) -> Result<CaseData, ApiError> {
    // Most views disclose nothing: one read-only snapshot, no write lock. A view that
    // shows identifying details records the disclosure, so it is a write.
    let found = ctx
        .report(
            session.actor.clone(),
            move |c| match crate::app::cases::get_if_nothing_disclosed(c, id)? {
                Some(case) => case_data(c, id, case).map(Some),
                None => Ok(None),
            },
        )
        .await?;
    match found {
        Some(data) => Ok(data),
        None => {
            ctx.write(session.actor.clone(), move |c| {
                let case = crate::app::cases::get(c, id)?;
                case_data(c, id, case)
            })
            .await
        }
    }
}

/// The rest of the case page, around the case.
fn case_data(c: &mut crate::app::Ctx, id: CaseId, case: CaseView) -> crate::app::AppResult<CaseData> {
    let consents = crate::app::consents::list(c, id)?.items;
    let routing = crate::app::referrals::suggestions(c, id)?;
    let referrals = crate::app::referrals::of_case(c, id)?;
    let conversations = crate::app::three_way::list_for_case(c, id)?.items;
    let anonymous_filed = crate::app::anonymous_notifications::filed_for(c, id)?;
    let writable = crate::app::access::case_for(c, id, crate::domain::access::CaseAction::Update)
        .map(|case| case.writable().is_ok())?;
    Ok(CaseData {
        case,
        consents,
        routing,
        referrals,
        conversations,
        anonymous_filed,
        writable,
    })
}

fn case_page(
    tr: Tr,
    session: &Session,
    ctx: &Context,
    data: CaseData,
    identification_form: FormState,
    consent_form: FormState,
) -> CasePage {
    let case = &data.case;
    let id = case.id;
    let yes_no = |b: bool| tr.t(if b { "yes" } else { "no" });
    let mut facts = vec![
        Fact {
            term: tr.t("fact-pseudonym"),
            value: case.pseudonym.clone().unwrap_or_else(|| tr.t("not-recorded")),
        },
        Fact {
            term: tr.field("reporter_role"),
            value: case.reporter_role.map(|r| tr.label("reporter", &r)).unwrap_or_default(),
        },
        Fact {
            term: tr.field("contact_channel"),
            value: case
                .contact_channel
                .map(|c| tr.label("channel", &c))
                .unwrap_or_default(),
        },
        Fact {
            term: tr.field("contact_date"),
            value: case.contact_date.map(|d| time::date(tr.lang, d)).unwrap_or_default(),
        },
        Fact {
            term: tr.field("exploitation_forms"),
            value: case
                .exploitation_forms
                .iter()
                .map(|f| tr.label("form", f))
                .collect::<Vec<_>>()
                .join(", "),
        },
        Fact {
            term: tr.field("age_at_contact"),
            value: match case.age_at_contact {
                Some(age) if case.age_uncertain => tr.with("age-uncertain-value", &[("age", &age.to_string())]),
                Some(age) => age.to_string(),
                None => tr.t("not-recorded"),
            },
        },
        Fact {
            term: tr.t("fact-minor"),
            value: yes_no(case.minor),
        },
    ];
    if let Some(date) = case.last_incident_date {
        facts.push(Fact {
            term: tr.field("last_incident_date"),
            value: time::date(tr.lang, date),
        });
    }
    if let Some(gender) = case.gender {
        facts.push(Fact {
            term: tr.field("gender"),
            value: tr.label("gender", &gender),
        });
    }
    if let Some(nationality) = &case.nationality {
        facts.push(Fact {
            term: tr.field("nationality"),
            value: nationality.clone(),
        });
    }
    if let Some(region) = &case.region {
        facts.push(Fact {
            term: tr.field("region"),
            value: tr.label("region", region),
        });
    }
    if !case.needs.is_empty() {
        facts.push(Fact {
            term: tr.field("needs"),
            value: case
                .needs
                .iter()
                .map(|n| tr.label("need", n))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if let Some(intention) = case.police_report_intention {
        facts.push(Fact {
            term: tr.field("police_report_intention"),
            value: tr.label("intention", &intention),
        });
    }
    let consents = data
        .consents
        .iter()
        .map(|c| ConsentLine {
            scope: tr.label("scope", &c.scope),
            organisation: organisation_name(ctx, &c.organisation),
            given: tr.with(
                "consent-given",
                &[
                    // Mid-sentence: "gegeven door het slachtoffer".
                    ("giver", &tr.label("given-by", &c.given_by)),
                    ("method", &tr.label("method", &c.method)),
                    ("date", &time::date_time(tr.lang, c.recorded_at)),
                ],
            ),
            withdrawn: c.withdrawn_at.map(|at| time::date_time(tr.lang, at)),
            withdraw_action: (!c.withdrawn && data.writable).then(|| format!("/cases/{id}/consents/{}/withdraw", c.id)),
        })
        .collect();
    let suggestions = data
        .routing
        .suggestions
        .iter()
        .map(|s| {
            let mut pairs = vec![("to_organisation".to_string(), s.organisation.clone())];
            pairs.extend(s.services.iter().map(|v| ("services".to_string(), v.clone())));
            let query: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            SuggestionLine {
                organisation: organisation_name(ctx, &s.organisation),
                services: s
                    .services
                    .iter()
                    .map(|v| tr.label("service", v))
                    .collect::<Vec<_>>()
                    .join(", "),
                explanations: s.matched_rules.iter().map(|r| r.explanation.clone()).collect(),
                href: format!("/cases/{id}/referrals/new?{query}"),
            }
        })
        .collect();
    let exclusions = data
        .routing
        .excluded
        .iter()
        .map(|e| ExclusionLine {
            organisation: match &e.service {
                Some(service) => format!(
                    "{} ({})",
                    organisation_name(ctx, &e.organisation),
                    tr.label("service", service)
                ),
                None => organisation_name(ctx, &e.organisation),
            },
            reason: tr.label("exclusion", &e.reason),
        })
        .collect();
    let organisations = ctx
        .registry()
        .organisations
        .values()
        .filter(|o| o.slug != session.actor.org)
        .map(|o| Choice {
            value: o.slug.clone(),
            label: o.name.clone(),
        })
        .collect();
    let now = ctx.now().0;
    let limits = &ctx.services.limits;
    CasePage {
        chrome: Chrome::signed_in(
            tr.lang,
            &format!("/cases/{id}"),
            tr.with("case-title", &[("ref", &short_ref(id))]),
            session,
            ctx.registry(),
        ),
        facts,
        minor: case.minor,
        age_uncertain: case.age_uncertain,
        status: tr.label("status", &case.identification.status),
        reasonable_grounds: case.identification.reasonable_grounds_on.is_some(),
        reasonable_grounds_on: case
            .identification
            .reasonable_grounds_on
            .map(|d| time::date(tr.lang, d)),
        reflection_period_end: case
            .identification
            .reflection_period_end
            .map(|d| time::date(tr.lang, d)),
        identification_action: format!("/cases/{id}/identification"),
        identification_form,
        consents,
        consent_action: format!("/cases/{id}/consents"),
        consent_form,
        consent_form_id: random_token(16),
        scopes: choices(&tr, "scope", &ConsentScope::ALL),
        givers: choices(&tr, "giver", &ConsentGiver::ALL),
        methods: choices(&tr, "method", &ConsentMethod::ALL),
        organisations,
        suggestions,
        exclusions,
        referrals: data
            .referrals
            .iter()
            .map(|r| referral_line(&tr, ctx, &r.into(), now, limits, &session.actor.sub))
            .collect(),
        new_referral_href: format!("/cases/{id}/referrals/new"),
        conversations: data
            .conversations
            .iter()
            .map(|c| ConversationLine {
                href: format!("/three-way-conversations/{}", c.id),
                link_text: tr.with("three-way-title", &[("ref", &short_ref(c.id))]),
                police: organisation_name(ctx, &c.police_organisation),
                state: tr.label("three-way", &c.state),
            })
            .collect(),
        three_way_action: format!("/cases/{id}/three-way-conversations"),
        anonymous_action: (!case.minor && data.writable && !data.anonymous_filed)
            .then(|| format!("/cases/{id}/anonymous-notification")),
        anonymous_filed: data.anonymous_filed,
        problem: None,
        writable: data.writable,
    }
}

#[get("/cases/{id}")]
pub async fn show(
    req: HttpRequest,
    ctx: Context,
    path: web::Path<String>,
    done: web::Query<Done>,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    let id = parse_case_id(lang, &path)?;
    let data = load_case(&ctx, &session, id).await.map_err(|e| web_error(lang, e))?;
    let consent_form = default_consent_form(&data.case);
    let mut page = case_page(tr, &session, &ctx, data, FormState::default(), consent_form);
    if let Some(notice) = notice_of(&done.done) {
        page.chrome = page.chrome.with_notice(&notice);
    }
    Ok(html(StatusCode::OK, &page))
}

fn default_consent_form(case: &CaseView) -> FormState {
    let language = case.language.clone().unwrap_or_else(|| "nl".into());
    FormState::with_values(vec![
        ("information_language".into(), language),
        (
            "given_by".into(),
            if case.minor { "guardian".into() } else { "victim".into() },
        ),
        ("method".into(), "chat".into()),
    ])
}

/// After a form on the case page fails: the page again, with that form's problems.
async fn case_page_with_errors(
    tr: Tr,
    session: &Session,
    ctx: &Context,
    id: CaseId,
    which: &str,
    form: FormState,
) -> Result<HttpResponse, WebError> {
    let data = load_case(ctx, session, id).await.map_err(|e| web_error(tr.lang, e))?;
    let consent_default = default_consent_form(&data.case);
    let page = match which {
        "identification" => case_page(tr, session, ctx, data, form, consent_default),
        _ => case_page(tr, session, ctx, data, FormState::default(), form),
    };
    Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

/// A refusal of a case-page form as problems on that form: validation per field, a state
/// that does not allow it as a message on the form; anything else is a page of its own.
fn form_problems(tr: Tr, form: &FormPost, error: ApiError) -> Result<FormState, WebError> {
    let mut state = form.state();
    match error {
        ApiError::Validation(errors) => state.add_api_errors(tr, &errors),
        ApiError::Conflict { .. } => state.add("form", tr.t("error-conflict")),
        other => return Err(web_error(tr.lang, other)),
    }
    Ok(state)
}

#[post("/cases/{id}/identification")]
pub async fn identification(
    req: HttpRequest,
    ctx: Context,
    path: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    let id = parse_case_id(lang, &path)?;
    let form = FormPost::read(&req, &body, &session, tr)?;
    let result = match form.json("IdentificationInput", &[]).and_then(parse_identification) {
        Ok((decision, basis)) => ctx
            .write(session.actor.clone(), move |c| {
                crate::app::identification::record(c, id, decision, basis)
            })
            .await
            .map(|_| ()),
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => Ok(see_other(&format!("/cases/{}?done=grounds-recorded", id.0))),
        Err(error) => {
            let state = form_problems(tr, &form, error)?;
            case_page_with_errors(tr, &session, &ctx, id, "identification", state).await
        }
    }
}

#[post("/cases/{id}/consents")]
pub async fn record_consent(
    req: HttpRequest,
    ctx: Context,
    path: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    let id = parse_case_id(lang, &path)?;
    let form = FormPost::read(&req, &body, &session, tr)?;
    let route = format!("POST /cases/{}/consents", id.0);
    let result = match form
        .json("ConsentInput", &["form_id"])
        .and_then(|json| Ok((parse_consent(json.clone(), ctx.registry())?, json)))
    {
        Ok((new, json)) => {
            let idempotency = form_idempotency(&ctx, &form, &route, &json);
            ctx.write(session.actor.clone(), move |c| {
                crate::app::consents::record(c, id, new, &idempotency)
            })
            .await
            .map(|_| ())
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => Ok(see_other(&format!("/cases/{}?done=consent-recorded", id.0))),
        Err(error) => {
            let state = form_problems(tr, &form, error)?;
            case_page_with_errors(tr, &session, &ctx, id, "consent", state).await
        }
    }
}

#[post("/cases/{id}/consents/{consent_id}/withdraw")]
pub async fn withdraw_consent(
    req: HttpRequest,
    ctx: Context,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    let id = parse_case_id(lang, &path.0)?;
    let consent_id = uuid::Uuid::parse_str(&path.1)
        .map(ConsentId)
        .map_err(|_| WebError::new(lang, WebErrorKind::NotFound))?;
    FormPost::read(&req, &body, &session, tr)?;
    ctx.write(session.actor.clone(), move |c| {
        crate::app::consents::withdraw(c, id, consent_id)
    })
    .await
    .map_err(|e| web_error(lang, e))?;
    Ok(see_other(&format!("/cases/{}?done=consent-withdrawn", id.0)))
}

// ---------------------------------------------------------------------------
// The printable intake sheet
// ---------------------------------------------------------------------------

/// One question of the sheet: the form field's own label, hint and choices, so the sheet
/// and the new-case form never ask differently.
pub struct SheetQuestion {
    pub label: String,
    pub hint: String,
    pub choices: Vec<String>,
    /// `short`, `long`, or empty when the choices are the answer.
    pub lines: &'static str,
}

#[derive(Template)]
#[template(path = "intake_sheet.html")]
struct IntakeSheetPage {
    chrome: Chrome,
    questions: Vec<SheetQuestion>,
    consent_questions: Vec<SheetQuestion>,
}

fn question(tr: &Tr, field: &str, choices: Vec<Choice>, lines: &'static str) -> SheetQuestion {
    SheetQuestion {
        label: tr.field(field),
        hint: tr.hint(field),
        choices: choices.into_iter().map(|c| c.label).collect(),
        lines,
    }
}

/// The questions of a first conversation, on paper, for an intake held without a computer;
/// typed into the new-case form afterwards.
#[get("/intake-sheet")]
pub async fn intake_sheet(req: HttpRequest, ctx: Context) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    crate::domain::access::open_case(session.actor.principal())
        .map_err(|_| WebError::new(lang, WebErrorKind::Forbidden))?;
    let yes_no = || {
        vec![
            Choice {
                value: "true".into(),
                label: tr.t("yes"),
            },
            Choice {
                value: "false".into(),
                label: tr.t("no"),
            },
        ]
    };
    let questions = vec![
        question(&tr, "reporter_role", choices(&tr, "reporter", &ReporterRole::ALL), ""),
        question(
            &tr,
            "contact_channel",
            choices(&tr, "channel", &ContactChannel::ALL),
            "",
        ),
        question(&tr, "contact_date", Vec::new(), "short"),
        question(
            &tr,
            "exploitation_forms",
            choices(&tr, "form", &ExploitationForm::ALL),
            "",
        ),
        question(&tr, "age_at_contact", Vec::new(), "short"),
        question(&tr, "age_uncertain", yes_no(), ""),
        question(&tr, "presumed_minor", yes_no(), ""),
        question(&tr, "pseudonym", Vec::new(), "short"),
        question(&tr, "needs", choices(&tr, "need", &Need::ALL), ""),
        question(
            &tr,
            "police_report_intention",
            choices(&tr, "intention", &ReportingIntention::ALL),
            "",
        ),
        question(&tr, "last_incident_date", Vec::new(), "short"),
        question(&tr, "basis", Vec::new(), "long"),
    ];
    let consent_questions = vec![
        question(&tr, "scope", choices(&tr, "scope", &ConsentScope::ALL), ""),
        question(&tr, "organisation", Vec::new(), "short"),
        question(&tr, "given_by", choices(&tr, "giver", &ConsentGiver::ALL), ""),
        question(&tr, "method", choices(&tr, "method", &ConsentMethod::ALL), ""),
        question(&tr, "information_language", Vec::new(), "short"),
    ];
    let page = IntakeSheetPage {
        chrome: Chrome::signed_in(lang, "/intake-sheet", tr.t("sheet-title"), &session, ctx.registry()),
        questions,
        consent_questions,
    };
    Ok(html(StatusCode::OK, &page))
}

/// A button on the case page whose use case refused: the page again, saying why.
async fn case_page_with_problem(
    tr: Tr,
    session: &Session,
    ctx: &Context,
    id: CaseId,
    error: ApiError,
) -> Result<HttpResponse, WebError> {
    let problem = match error {
        ApiError::Conflict { .. } => tr.t("error-conflict"),
        ApiError::Validation(errors) => {
            let mut state = FormState::default();
            state.add_api_errors(tr, &errors);
            state
                .errors
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join(" ")
        }
        other => return Err(web_error(tr.lang, other)),
    };
    let data = load_case(ctx, session, id).await.map_err(|e| web_error(tr.lang, e))?;
    let consent_form = default_consent_form(&data.case);
    let mut page = case_page(tr, session, ctx, data, FormState::default(), consent_form);
    page.problem = Some(problem);
    Ok(html(StatusCode::CONFLICT, &page))
}

/// Offers a three-way conversation with the police (the API's `ThreeWayInput`).
#[post("/cases/{id}/three-way-conversations")]
pub async fn offer_three_way(
    req: HttpRequest,
    ctx: Context,
    path: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    let id = parse_case_id(lang, &path)?;
    let form = FormPost::read(&req, &body, &session, tr)?;
    let route = format!("POST /cases/{}/three-way-conversations", id.0);
    let result = match form
        .json("ThreeWayInput", &["form_id"])
        .and_then(|json| Ok((crate::api::three_way::parse_offer(json.clone(), ctx.registry())?, json)))
    {
        Ok((police, json)) => {
            let idempotency = form_idempotency(&ctx, &form, &route, &json);
            ctx.write(session.actor.clone(), move |c| {
                crate::app::three_way::offer(c, id, police, &idempotency)
            })
            .await
            .map(|_| ())
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => Ok(see_other(&format!("/cases/{}?done=three-way-offered", id.0))),
        Err(error) => case_page_with_problem(tr, &session, &ctx, id, error).await,
    }
}

/// Files the anonymous notification to the focal point for an adult who consents to no
/// referral (the API's empty `AnonymousNotificationInput`).
#[post("/cases/{id}/anonymous-notification")]
pub async fn anonymous_notification(
    req: HttpRequest,
    ctx: Context,
    path: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    let id = parse_case_id(lang, &path)?;
    let form = FormPost::read(&req, &body, &session, tr)?;
    let route = format!("POST /cases/{}/anonymous-notification", id.0);
    let json = serde_json::json!({});
    let idempotency = form_idempotency(&ctx, &form, &route, &json);
    let result = ctx
        .write(session.actor.clone(), move |c| {
            crate::app::anonymous_notifications::file(c, id, &idempotency)
        })
        .await;
    match result {
        Ok(_) => Ok(see_other(&format!("/cases/{}?done=anonymous-filed", id.0))),
        Err(error) => case_page_with_problem(tr, &session, &ctx, id, error).await,
    }
}

//! The public central information point (`/hulp/{nl|en}/...`): who helps with what, for
//! whom, where, in which languages and when, from the registry's service directory
//! (`domain::information`), with anonymous online help first.
//!
//! For people who may be watched: no sign-in, no cookies, nothing stored or logged of what
//! they answer (the access log has the route pattern, never the query), no request to
//! another host, a "leave this page" link and the Escape key on every page, a page under
//! 100 kB with its own small stylesheet. The language is in the path, so no cookie is
//! needed to keep it.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, web};
use askama::Template;

use super::assets;
use super::i18n::{Lang, Tr};
use super::page::LanguageOption;
use crate::api::context::Context;
use crate::domain::case::ExploitationForm;
use crate::domain::information::{self, Entry, Fit, Question};
use crate::domain::organisation::Registry;
use crate::error::FieldError;

/// As the pages' policy, plus this site's own script (the leave button and Escape key).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
     img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Languages people may say they speak, each named in itself: those most asked for in the
/// Netherlands' victim support. A language an organisation lists is offered too.
pub const LANGUAGES: [(&str, &str); 16] = [
    ("nl", "Nederlands"),
    ("en", "English"),
    ("pl", "Polski"),
    ("ro", "Română"),
    ("bg", "Български"),
    ("hu", "Magyar"),
    ("uk", "Українська"),
    ("ru", "Русский"),
    ("ar", "العربية"),
    ("ti", "ትግርኛ"),
    ("es", "Español"),
    ("pt", "Português"),
    ("fr", "Français"),
    ("tr", "Türkçe"),
    ("vi", "Tiếng Việt"),
    ("zh", "中文"),
];

/// The audiences with a page of their own, by path segment.
pub const AUDIENCES: [&str; 3] = ["slachtoffers", "naasten", "professionals"];

/// The frame of every information point page.
pub struct Frame {
    pub tr: Tr,
    pub title: String,
    pub base: String,
    pub leave_url: String,
    pub languages: Vec<LanguageOption>,
    /// The theme's tokens, then this sheet.
    pub stylesheets: [String; 2],
    pub script: String,
}

impl Frame {
    fn new(req: &HttpRequest, ctx: &Context, lang: Lang, title_key: &str) -> Self {
        let tr = Tr::new(lang);
        // The same page in the other language: swap the path's language, keep the question.
        let rest = req.path().strip_prefix(&format!("/hulp/{}", lang.code())).unwrap_or("");
        let query = req.query_string();
        let languages = Lang::ALL
            .iter()
            .map(|other| LanguageOption {
                code: other.code(),
                name: match other {
                    Lang::Nl => "Nederlands",
                    Lang::En => "English",
                },
                href: if query.is_empty() {
                    format!("/hulp/{}{rest}", other.code())
                } else {
                    format!("/hulp/{}{rest}?{query}", other.code())
                },
                current: *other == lang,
            })
            .collect();
        Self {
            title: tr.t(title_key),
            base: format!("/hulp/{}", lang.code()),
            leave_url: ctx.settings().web.information_point.leave_url.clone(),
            languages,
            stylesheets: [assets::url("theme.css"), assets::url("public.css")],
            script: assets::url("leave.js"),
            tr,
        }
    }
}

/// A choice of a select: value, label, and the label's language when not the page's.
pub struct SelectOption {
    pub value: String,
    pub label: String,
    pub lang: Option<&'static str>,
    pub selected: bool,
}

/// The four optional questions as the form shows them.
pub struct QuestionForm {
    pub age: String,
    pub forms: Vec<SelectOption>,
    pub regions: Vec<SelectOption>,
    pub languages: Vec<SelectOption>,
    /// (field, message), in the form's order.
    pub errors: Vec<(String, String)>,
}

impl QuestionForm {
    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|(f, _)| f == field).map(|(_, m)| m.as_str())
    }
}

/// What the query asked, as text: unchecked.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Answers {
    age: Option<String>,
    form: Option<String>,
    region: Option<String>,
    language: Option<String>,
}

fn answered(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn language_name(tag: &str) -> &str {
    LANGUAGES
        .iter()
        .find(|(code, _)| *code == tag)
        .map(|(_, name)| *name)
        .unwrap_or(tag)
}

/// A language's name in the page's language, for sentences; its own name when the
/// catalogue has none.
fn spoken_name(tr: &Tr, tag: &str) -> String {
    let key = format!("language-name-{tag}");
    let name = tr.t(&key);
    if name == key {
        language_name(tag).to_string()
    } else {
        name
    }
}

/// Every language on offer: the common ones, then any an organisation lists besides.
fn known_languages(registry: &Registry) -> Vec<String> {
    let mut all: Vec<String> = LANGUAGES.iter().map(|(code, _)| code.to_string()).collect();
    for language in registry.offers.values().flatten().flat_map(|o| o.languages.iter()) {
        if !all.contains(language) {
            all.push(language.clone());
        }
    }
    all
}

/// Parses the answers: unanswered stays `None`; anything else must be one of the choices.
pub fn parse_answers(answers: &Answers, registry: &Registry) -> Result<Question, Vec<FieldError>> {
    let mut problems = Vec::new();
    let age = match answered(&answers.age) {
        None => None,
        Some(text) => match text.parse::<u8>() {
            Ok(age) if age <= 120 => Some(age),
            _ => {
                problems.push(FieldError::new("age", "must be a whole number of years, 0 to 120"));
                None
            }
        },
    };
    let form = match answered(&answers.form) {
        None => None,
        Some(text) => match text.parse::<ExploitationForm>() {
            Ok(form) => Some(form),
            Err(_) => {
                problems.push(FieldError::new("form", "must be a form of exploitation"));
                None
            }
        },
    };
    let region = match answered(&answers.region) {
        None => None,
        Some(text) if registry.regions.contains(text) => Some(text.to_string()),
        Some(_) => {
            problems.push(FieldError::new("region", "must be a region of the registry"));
            None
        }
    };
    let language = match answered(&answers.language) {
        None => None,
        Some(text) if known_languages(registry).iter().any(|l| l == text) => Some(text.to_string()),
        Some(_) => {
            problems.push(FieldError::new("language", "must be one of the languages listed"));
            None
        }
    };
    if problems.is_empty() {
        Ok(Question {
            age,
            form,
            region,
            language,
        })
    } else {
        Err(problems)
    }
}

fn question_form(tr: &Tr, registry: &Registry, answers: &Answers, errors: &[FieldError]) -> QuestionForm {
    let chosen = |value: &Option<String>, option: &str| answered(value) == Some(option);
    QuestionForm {
        age: answered(&answers.age).unwrap_or("").to_string(),
        forms: ExploitationForm::ALL
            .iter()
            .map(|f| SelectOption {
                value: f.as_str().to_string(),
                label: tr.label("info-form", f),
                lang: None,
                selected: chosen(&answers.form, f.as_str()),
            })
            .collect(),
        regions: registry
            .regions
            .iter()
            .map(|r| SelectOption {
                value: r.clone(),
                label: tr.label("region", r),
                lang: None,
                selected: chosen(&answers.region, r),
            })
            .collect(),
        languages: known_languages(registry)
            .into_iter()
            .map(|code| {
                let own = LANGUAGES.iter().find(|(c, _)| *c == code);
                SelectOption {
                    label: language_name(&code).to_string(),
                    // Named in itself: marked as that language unless it is the page's.
                    lang: own.map(|(c, _)| *c).filter(|c| *c != tr.code()),
                    selected: chosen(&answers.language, &code),
                    value: code,
                }
            })
            .collect(),
        errors: errors
            .iter()
            .map(|e| (e.field.clone(), tr.t(&format!("info-error-{}", e.field))))
            .collect(),
    }
}

/// A way to reach an organisation.
pub struct Contact {
    pub href: String,
    pub label: String,
}

pub struct LanguageName {
    pub code: String,
    pub name: String,
}

/// An organisation as a card on the pages.
pub struct Card {
    pub slug: String,
    pub name: String,
    pub about: String,
    /// The description's language when it is not the page's.
    pub about_lang: Option<String>,
    /// Why it fits the answers (results only).
    pub reasons: Vec<String>,
    pub helps_with: Vec<String>,
    pub for_whom: String,
    pub area: String,
    pub languages: Vec<LanguageName>,
    pub when: String,
    pub contacts: Vec<Contact>,
}

fn card(tr: &Tr, entry: &Entry, helps_with: Vec<String>, reasons: Vec<String>) -> Card {
    let (about_lang, about) = entry
        .listing
        .about_in(tr.code())
        .map(|(tag, text)| ((tag != tr.code()).then(|| tag.to_string()), text.to_string()))
        .unwrap_or((None, String::new()));
    let organisation = entry.organisation;
    let area = if organisation.is_national() {
        tr.t("info-national")
    } else {
        organisation
            .regions
            .iter()
            .map(|r| tr.label("region", r))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let when = if entry.around_the_clock() {
        tr.t("info-around-the-clock")
    } else if entry.hours().is_empty() {
        tr.t("info-hours-unknown")
    } else {
        entry.hours().join("; ")
    };
    let mut contacts = Vec::new();
    if let Some(chat) = &entry.listing.chat {
        contacts.push(Contact {
            href: chat.clone(),
            label: tr.t(if entry.listing.anonymous {
                "info-contact-chat-anonymous"
            } else {
                "info-contact-chat"
            }),
        });
    }
    if let Some(phone) = &entry.listing.phone {
        let digits: String = phone.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect();
        contacts.push(Contact {
            href: format!("tel:{digits}"),
            label: tr.t1("info-contact-phone", "number", phone),
        });
    }
    if let Some(website) = &entry.listing.website {
        contacts.push(Contact {
            href: website.clone(),
            label: tr.t1(
                "info-contact-website",
                "site",
                &website.trim_start_matches("https://").trim_end_matches('/'),
            ),
        });
    }
    Card {
        slug: organisation.slug.clone(),
        name: organisation.name.clone(),
        about,
        about_lang,
        reasons,
        helps_with,
        for_whom: entry
            .audiences()
            .iter()
            .map(|a| tr.label("audience", a))
            .collect::<Vec<_>>()
            .join(", "),
        area,
        languages: entry
            .languages()
            .iter()
            .map(|code| LanguageName {
                code: code.to_string(),
                name: language_name(code).to_string(),
            })
            .collect(),
        when,
        contacts,
    }
}

fn topic_labels(tr: &Tr, entry: &Entry) -> Vec<String> {
    entry.topics().iter().map(|t| tr.label("topic", t)).collect()
}

fn fit_card(tr: &Tr, fit: &Fit) -> Card {
    let mut reasons = Vec::new();
    if fit.anonymous_online {
        reasons.push(tr.t("info-reason-anonymous"));
    }
    if fit.for_this_form {
        reasons.push(tr.t("info-reason-form"));
    }
    if fit.speaks_language {
        reasons.push(tr.t("info-reason-language"));
    }
    if fit.in_region {
        reasons.push(tr.t("info-reason-region"));
    }
    let services = fit.offers.iter().map(|o| tr.label("service", &o.service)).collect();
    card(tr, &fit.entry, services, reasons)
}

/// The anonymous online help, offered first on every page.
fn anonymous_help(tr: &Tr, registry: &Registry) -> Vec<Card> {
    information::directory(registry)
        .iter()
        .filter(|e| e.anonymous_online())
        .map(|e| card(tr, e, topic_labels(tr, e), Vec::new()))
        .collect()
}

fn police(tr: &Tr, registry: &Registry) -> Vec<Card> {
    information::directory(registry)
        .iter()
        .filter(|e| e.is_police)
        .map(|e| card(tr, e, Vec::new(), Vec::new()))
        .collect()
}

/// A page of the information point: the headers that keep it out of caches and other
/// hosts' sight, and never a cookie.
fn public_page(status: StatusCode, template: &impl Template) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    super::page::headers_with_policy(&mut response, CONTENT_SECURITY_POLICY);
    match template.render() {
        Ok(body) => response.content_type("text/html; charset=utf-8").body(body),
        Err(error) => {
            tracing::error!("an information point template failed to render: {error}");
            response
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .content_type("text/plain; charset=utf-8")
                .body("500")
        }
    }
}

#[derive(Template)]
#[template(path = "public_not_found.html")]
struct NotFoundPage {
    frame: Frame,
}

fn not_found(req: &HttpRequest, ctx: &Context) -> HttpResponse {
    let lang = Lang::negotiate(req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    public_page(
        StatusCode::NOT_FOUND,
        &NotFoundPage {
            frame: Frame::new(req, ctx, lang, "info-not-found-title"),
        },
    )
}

/// The path's language, exactly as written (`nl`, `en`).
fn lang_of(code: &str) -> Option<Lang> {
    Lang::parse(code).filter(|l| l.code() == code)
}

/// The start, in the browser's language (no cookie remembers it).
#[get("/hulp")]
pub async fn start(req: HttpRequest) -> HttpResponse {
    let lang = Lang::negotiate(req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/hulp/{}", lang.code())))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::VARY, HeaderValue::from_static("Accept-Language")))
        .finish()
}

#[derive(Template)]
#[template(path = "public_home.html")]
struct HomePage {
    frame: Frame,
    anonymous: Vec<Card>,
    question: QuestionForm,
}

#[get("/hulp/{lang}")]
pub async fn home(req: HttpRequest, ctx: Context, path: web::Path<String>) -> HttpResponse {
    let Some(lang) = lang_of(&path) else {
        return not_found(&req, &ctx);
    };
    let tr = Tr::new(lang);
    let registry = ctx.registry();
    public_page(
        StatusCode::OK,
        &HomePage {
            anonymous: anonymous_help(&tr, registry),
            question: question_form(&tr, registry, &Answers::default(), &[]),
            frame: Frame::new(&req, &ctx, lang, "info-home-title"),
        },
    )
}

#[derive(Template)]
#[template(path = "public_audience.html")]
struct AudiencePage {
    frame: Frame,
    audience: String,
    anonymous: Vec<Card>,
    question: QuestionForm,
}

/// A page for victims, for the people around them, or for professionals.
#[get("/hulp/{lang}/voor/{audience}")]
pub async fn audience(req: HttpRequest, ctx: Context, path: web::Path<(String, String)>) -> HttpResponse {
    let (code, audience) = path.into_inner();
    let Some(lang) = lang_of(&code) else {
        return not_found(&req, &ctx);
    };
    if !AUDIENCES.contains(&audience.as_str()) {
        return not_found(&req, &ctx);
    }
    let tr = Tr::new(lang);
    let registry = ctx.registry();
    public_page(
        StatusCode::OK,
        &AudiencePage {
            anonymous: anonymous_help(&tr, registry),
            question: question_form(&tr, registry, &Answers::default(), &[]),
            frame: Frame::new(&req, &ctx, lang, &format!("info-for-{audience}-title")),
            audience,
        },
    )
}

#[derive(Template)]
#[template(path = "public_results.html")]
struct ResultsPage {
    frame: Frame,
    question: QuestionForm,
    /// What was asked, in words.
    asked: Vec<String>,
    /// No organisation that fits lists the language asked for.
    language_missing: Option<String>,
    cards: Vec<Card>,
    police: Vec<Card>,
    anonymous: Vec<Card>,
}

/// The organisations that fit the answers, best first. Nothing of the answers is kept.
#[get("/hulp/{lang}/zoeken")]
pub async fn search(
    req: HttpRequest,
    ctx: Context,
    path: web::Path<String>,
    answers: web::Query<Answers>,
) -> HttpResponse {
    let Some(lang) = lang_of(&path) else {
        return not_found(&req, &ctx);
    };
    let tr = Tr::new(lang);
    let registry = ctx.registry();
    let (status, question, errors) = match parse_answers(&answers, registry) {
        Ok(question) => (StatusCode::OK, Some(question), Vec::new()),
        Err(errors) => (StatusCode::UNPROCESSABLE_ENTITY, None, errors),
    };
    let mut asked = Vec::new();
    let mut cards = Vec::new();
    let mut language_missing = None;
    if let Some(question) = &question {
        if let Some(age) = question.age {
            asked.push(tr.t1("info-asked-age", "age", &age));
        }
        if let Some(form) = question.form {
            asked.push(tr.label("info-form", &form));
        }
        if let Some(region) = &question.region {
            asked.push(tr.t1("info-asked-region", "region", &tr.label("region", region)));
        }
        if let Some(language) = &question.language {
            asked.push(tr.t1("info-asked-language", "language", &spoken_name(&tr, language)));
        }
        let fits = information::fitting(registry, question);
        if let Some(language) = &question.language
            && !fits.iter().any(|f| f.speaks_language)
        {
            language_missing = Some(spoken_name(&tr, language));
        }
        cards = fits.iter().map(|f| fit_card(&tr, f)).collect();
    }
    public_page(
        status,
        &ResultsPage {
            question: question_form(&tr, registry, &answers, &errors),
            asked,
            language_missing,
            cards,
            police: police(&tr, registry),
            anonymous: anonymous_help(&tr, registry),
            frame: Frame::new(&req, &ctx, lang, "info-results-title"),
        },
    )
}

#[derive(Template)]
#[template(path = "public_organisations.html")]
struct OrganisationsPage {
    frame: Frame,
    cards: Vec<Card>,
}

/// Every organisation on the information point, anonymous online help first, then in the
/// registry's order, the police last.
#[get("/hulp/{lang}/organisaties")]
pub async fn organisations(req: HttpRequest, ctx: Context, path: web::Path<String>) -> HttpResponse {
    let Some(lang) = lang_of(&path) else {
        return not_found(&req, &ctx);
    };
    let tr = Tr::new(lang);
    let mut entries = information::directory(ctx.registry());
    entries.sort_by_key(|e| (!e.anonymous_online(), e.is_police));
    public_page(
        StatusCode::OK,
        &OrganisationsPage {
            cards: entries
                .iter()
                .map(|e| card(&tr, e, topic_labels(&tr, e), Vec::new()))
                .collect(),
            frame: Frame::new(&req, &ctx, lang, "info-organisations-title"),
        },
    )
}

#[derive(Template)]
#[template(path = "public_what_happens.html")]
struct WhatHappensPage {
    frame: Frame,
}

/// What happens if I ask for help.
#[get("/hulp/{lang}/wat-gebeurt-er")]
pub async fn what_happens(req: HttpRequest, ctx: Context, path: web::Path<String>) -> HttpResponse {
    let Some(lang) = lang_of(&path) else {
        return not_found(&req, &ctx);
    };
    public_page(
        StatusCode::OK,
        &WhatHappensPage {
            frame: Frame::new(&req, &ctx, lang, "info-what-happens-title"),
        },
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        Registry::parse(include_str!("../../config/organisations.toml")).unwrap()
    }

    fn answers(age: &str, form: &str, region: &str, language: &str) -> Answers {
        let some = |v: &str| Some(v.to_string());
        Answers {
            age: some(age),
            form: some(form),
            region: some(region),
            language: some(language),
        }
    }

    #[test]
    fn blank_answers_are_unanswered_and_wrong_ones_are_named() {
        let registry = registry();
        assert_eq!(
            parse_answers(&answers("", " ", "", ""), &registry).unwrap(),
            Question::default()
        );
        let question = parse_answers(&answers("16", "criminal", "rotterdam", "pl"), &registry).unwrap();
        assert_eq!(question.age, Some(16));
        assert_eq!(question.form, Some(ExploitationForm::Criminal));
        let problems = parse_answers(&answers("zestien", "drugs", "mars", "xx"), &registry).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["age", "form", "region", "language"]);
        assert!(parse_answers(&answers("121", "", "", ""), &registry).is_err());
        assert!(parse_answers(&answers("-1", "", "", ""), &registry).is_err());
    }
}

//! Signing in and out. In development a page lists personas (organisation × role) from the
//! registry, so the whole handover can be tried without an identity provider. Production
//! refuses personas: people sign in at the configured OpenID Connect provider.

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;

use super::i18n::Tr;
use super::page::{Chrome, WebError, WebErrorKind, html, language_of, local_path, see_other};
use super::{ReturnTo, SESSION_COOKIE, SIGN_IN_COOKIE, cookie, web_error};
use crate::api::context::Context;
use crate::app::AppError;
use crate::app::sessions::{self, Identity};
use crate::config::Environment;
use crate::crypto::{random_token, same_secret};
use crate::domain::access::Role;
use crate::domain::organisation::{OrganisationKind, Registry};
use crate::error::ApiError;

/// A development persona: one organisation, one role.
#[derive(Debug, Clone)]
pub struct Persona {
    pub organisation: String,
    pub role: Role,
}

impl Persona {
    /// `fier:caseworker`, the value the sign-in form posts.
    pub fn code(&self) -> String {
        format!("{}:{}", self.organisation, self.role.as_str())
    }

    pub fn parse(text: &str, registry: &Registry) -> Option<Self> {
        let (organisation, role) = text.split_once(':')?;
        let persona = Self {
            organisation: organisation.to_string(),
            role: Role::parse(role)?,
        };
        personas(registry).into_iter().find(|p| p.code() == persona.code())
    }
}

/// The personas of the registry: the roles each kind of organisation has people in.
pub fn personas(registry: &Registry) -> Vec<Persona> {
    let mut out = Vec::new();
    for organisation in registry.organisations.values() {
        let roles: &[Role] = if organisation.focal_point {
            &[Role::Coordinator, Role::Caseworker, Role::Intake, Role::Admin]
        } else if organisation.kind == OrganisationKind::Police {
            &[Role::Intake]
        } else {
            &[Role::Caseworker, Role::Intake, Role::Admin]
        };
        for role in roles {
            out.push(Persona {
                organisation: organisation.slug.clone(),
                role: *role,
            });
        }
    }
    out
}

pub struct PersonaGroup {
    pub organisation_name: String,
    pub personas: Vec<PersonaChoice>,
}

pub struct PersonaChoice {
    pub code: String,
    pub label: String,
    /// "Casemanager bij Fier": the visible label first (WCAG 2.5.3).
    pub accessible_name: String,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    development: bool,
    groups: Vec<PersonaGroup>,
    csrf_token: String,
    return_to: String,
}

#[get("/sign-in")]
pub async fn form(req: HttpRequest, ctx: Context, query: web::Query<ReturnTo>) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let development = ctx.settings().environment == Environment::Development;
    let registry = ctx.registry();
    let mut groups: Vec<PersonaGroup> = Vec::new();
    if development {
        for persona in personas(registry) {
            let name = registry
                .get(&persona.organisation)
                .map(|o| o.name.clone())
                .unwrap_or_else(|| persona.organisation.clone());
            let label = tr.label("role", &persona.role);
            let choice = PersonaChoice {
                code: persona.code(),
                accessible_name: tr.with("sign-in-as", &[("role", &label), ("organisation", &name)]),
                label,
            };
            match groups.last_mut() {
                Some(group) if group.organisation_name == name => group.personas.push(choice),
                _ => groups.push(PersonaGroup {
                    organisation_name: name,
                    personas: vec![choice],
                }),
            }
        }
    }
    let token = random_token(24);
    let mut cookie = cookie(&req, &ctx, SIGN_IN_COOKIE, token.clone());
    cookie.set_same_site(actix_web::cookie::SameSite::Strict);
    let page = SignInPage {
        chrome: Chrome::anonymous(lang, "/sign-in", "sign-in-title"),
        development,
        groups,
        csrf_token: token,
        return_to: local_path(query.return_to.as_deref()),
    };
    let mut response = html(StatusCode::OK, &page);
    response
        .add_cookie(&cookie)
        .map_err(|e| WebError::new(lang, WebErrorKind::Internal(e.to_string())))?;
    Ok(response)
}

/// Signs in as a persona (development only), with a new session id.
#[post("/sign-in")]
pub async fn submit(req: HttpRequest, ctx: Context, body: Bytes) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    if ctx.settings().environment != Environment::Development {
        return Err(WebError::new(lang, WebErrorKind::NotFound));
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let expected = req.cookie(SIGN_IN_COOKIE).map(|c| c.value().to_string());
    let csrf_ok = match (field("csrf_token"), expected.as_deref()) {
        (Some(sent), Some(expected)) => same_secret(sent, expected),
        _ => false,
    };
    if !csrf_ok {
        return Err(WebError::new(lang, WebErrorKind::Csrf));
    }
    let persona = field("persona")
        .and_then(|p| Persona::parse(p, ctx.registry()))
        .ok_or_else(|| WebError::new(lang, WebErrorKind::BadRequest))?;
    let identity = Identity {
        sub: format!("persona:{}", persona.code()),
        org: persona.organisation.clone(),
        roles: vec![persona.role],
        display_name: tr.with("persona-name", &[("role", &tr.label("role", &persona.role))]),
        id_token_hint: None,
    };
    let previous = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string());
    let now = ctx.now();
    let started = ctx
        .db
        .write(move |conn| sessions::start(conn, identity, previous.as_deref(), now))
        .await
        .map_err(|e: AppError| web_error(lang, ApiError::from(e)))?;
    let mut response = see_other(&local_path(field("return_to")));
    let session_cookie = cookie(&req, &ctx, SESSION_COOKIE, started.secret);
    let mut spent = cookie(&req, &ctx, SIGN_IN_COOKIE, String::new());
    spent.make_removal();
    for c in [&session_cookie, &spent] {
        response
            .add_cookie(c)
            .map_err(|e| WebError::new(lang, WebErrorKind::Internal(e.to_string())))?;
    }
    Ok(response)
}

/// Ends the session in the database and in the browser.
#[post("/sign-out")]
pub async fn sign_out(req: HttpRequest, ctx: Context, body: Bytes) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let session = super::session(&req, &ctx).await?;
    super::forms::FormPost::read(&req, &body, &session, Tr::new(lang))?;
    let secret = req
        .cookie(SESSION_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    let now = ctx.now();
    ctx.db
        .write(move |conn| sessions::end(conn, &secret, now))
        .await
        .map_err(|e: AppError| web_error(lang, ApiError::from(e)))?;
    let mut response = see_other("/sign-in");
    let mut removal = cookie(&req, &ctx, SESSION_COOKIE, String::new());
    removal.make_removal();
    response
        .add_cookie(&removal)
        .map_err(|e| WebError::new(lang, WebErrorKind::Internal(e.to_string())))?;
    Ok(response)
}

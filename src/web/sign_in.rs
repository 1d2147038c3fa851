//! Signing in and out. In development a page lists personas (organisation × role) from the
//! registry, so the whole handover can be tried without an identity provider. Production
//! refuses personas: people sign in at the configured OpenID Connect provider
//! (`auth::oidc`), and signing out here also ends the session there.

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;

use super::i18n::Tr;
use super::page::{Chrome, WebError, WebErrorKind, html, language_of, local_path, see_other};
use super::{OIDC_COOKIE, ReturnTo, SESSION_COOKIE, SIGN_IN_COOKIE, cookie, web_error};
use crate::api::context::Context;
use crate::app::AppError;
use crate::app::sessions::{self, Identity};
use crate::auth::Authenticator;
use crate::auth::oidc::{OidcError, Pending};
use crate::config::Environment;
use crate::crypto::{random_token, same_secret};
use crate::domain::access::Role;
use crate::domain::organisation::{OrganisationKind, Registry};
use crate::error::ApiError;

/// A development persona: one organisation, one role; intake has a second person, so a
/// referral can be handed to a colleague.
#[derive(Debug, Clone)]
pub struct Persona {
    pub organisation: String,
    pub role: Role,
    pub second: bool,
}

impl Persona {
    /// `fier:caseworker` or `csg:intake:2`, the value the sign-in form posts.
    pub fn code(&self) -> String {
        let second = if self.second { ":2" } else { "" };
        format!("{}:{}{second}", self.organisation, self.role.as_str())
    }

    pub fn parse(text: &str, registry: &Registry) -> Option<Self> {
        personas(registry).into_iter().find(|p| p.code() == text)
    }

    /// The button's text and the name the header shows.
    fn label(&self, tr: &Tr) -> String {
        let role = tr.label("role", &self.role);
        if self.second {
            tr.with("persona-second", &[("role", &role)])
        } else {
            role
        }
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
            for second in [false, true] {
                if second && *role != Role::Intake {
                    continue;
                }
                out.push(Persona {
                    organisation: organisation.slug.clone(),
                    role: *role,
                    second,
                });
            }
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
    /// Whether an OpenID provider is configured.
    provider: bool,
    groups: Vec<PersonaGroup>,
    csrf_token: String,
    return_to: String,
}

#[get("/sign-in")]
pub async fn form(
    req: HttpRequest,
    ctx: Context,
    auth: web::Data<Authenticator>,
    query: web::Query<ReturnTo>,
) -> Result<HttpResponse, WebError> {
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
            let label = persona.label(&tr);
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
        provider: auth.oidc().is_some(),
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
        display_name: tr.with("persona-name", &[("role", &persona.label(&tr))]),
        id_token_hint: None,
    };
    let mut spent = cookie(&req, &ctx, SIGN_IN_COOKIE, String::new());
    spent.make_removal();
    begin_session(&req, &ctx, identity, &local_path(field("return_to")), spent).await
}

/// Starts signing in at the OpenID provider: remembers state, nonce and code verifier in
/// a short-lived cookie and sends the browser to the provider.
#[get("/sign-in/oidc")]
pub async fn start_at_provider(
    req: HttpRequest,
    ctx: Context,
    auth: web::Data<Authenticator>,
    query: web::Query<ReturnTo>,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let oidc = auth.oidc().ok_or_else(|| WebError::new(lang, WebErrorKind::NotFound))?;
    let pending = Pending::new(&local_path(query.return_to.as_deref()));
    let location = oidc
        .authorization_url(&pending)
        .await
        .map_err(|e| provider_error(lang, &e))?;
    let mut remember = cookie(&req, &ctx, OIDC_COOKIE, pending.to_cookie());
    remember.set_path("/sign-in");
    remember.set_max_age(actix_web::cookie::time::Duration::minutes(10));
    let mut response = see_other(&location);
    response
        .add_cookie(&remember)
        .map_err(|e| WebError::new(lang, WebErrorKind::Internal(e.to_string())))?;
    Ok(response)
}

#[derive(serde::Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The provider sends the browser back here: verify, then a new session.
#[get("/sign-in/callback")]
pub async fn callback(
    req: HttpRequest,
    ctx: Context,
    auth: web::Data<Authenticator>,
    query: web::Query<Callback>,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let pending = req
        .cookie(OIDC_COOKIE)
        .and_then(|c| Pending::from_cookie(c.value()))
        .ok_or_else(|| provider_error(lang, &OidcError::State))?;
    if let Some(error) = &query.error {
        return Err(provider_error(
            lang,
            &OidcError::Refused(error.chars().take(64).collect()),
        ));
    }
    let (Some(code), Some(state)) = (&query.code, &query.state) else {
        return Err(provider_error(lang, &OidcError::State));
    };
    let signed_in = auth
        .sign_in(&pending, state, code)
        .await
        .map_err(|e| provider_error(lang, &e))?;
    let actor = signed_in.actor;
    let display_name = match signed_in.name {
        Some(name) if !name.trim().is_empty() => name,
        _ => actor
            .roles
            .first()
            .map(|role| tr.label("role", role))
            .unwrap_or_else(|| actor.org.clone()),
    };
    let identity = Identity {
        sub: actor.sub,
        org: actor.org,
        roles: actor.roles,
        display_name,
        id_token_hint: Some(signed_in.id_token),
    };
    let mut spent = cookie(&req, &ctx, OIDC_COOKIE, String::new());
    spent.set_path("/sign-in");
    spent.make_removal();
    begin_session(&req, &ctx, identity, &local_path(Some(&pending.return_to)), spent).await
}

/// A new session for the person (ending the browser's previous one), then on to
/// `return_to`; `spent` removes the cookie the sign-in used.
async fn begin_session(
    req: &HttpRequest,
    ctx: &Context,
    identity: Identity,
    return_to: &str,
    spent: actix_web::cookie::Cookie<'_>,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(req);
    let previous = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string());
    let now = ctx.now();
    let started = ctx
        .db
        .write(move |conn| sessions::start(conn, identity, previous.as_deref(), now))
        .await
        .map_err(|e: AppError| web_error(lang, ApiError::from(e)))?;
    let mut response = see_other(return_to);
    let session_cookie = cookie(req, ctx, SESSION_COOKIE, started.secret);
    for c in [&session_cookie, &spent] {
        response
            .add_cookie(c)
            .map_err(|e| WebError::new(lang, WebErrorKind::Internal(e.to_string())))?;
    }
    Ok(response)
}

/// Why a sign-in at the provider failed goes to the log (never a token or code); the person
/// sees that it failed and can start again.
fn provider_error(lang: super::i18n::Lang, error: &OidcError) -> WebError {
    match error {
        OidcError::Provider(problem) => {
            tracing::warn!(%problem, "OpenID provider unavailable");
            WebError::new(lang, WebErrorKind::Unavailable)
        }
        other => {
            tracing::info!(check = %other, "sign-in at the OpenID provider refused");
            WebError::new(lang, WebErrorKind::SignInFailed)
        }
    }
}

#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOutPage {
    chrome: Chrome,
    provider_url: String,
}

/// Ends the session in the database and in the browser; with an OpenID provider, then at
/// the provider too (RP-initiated logout).
#[post("/sign-out")]
pub async fn sign_out(
    req: HttpRequest,
    ctx: Context,
    auth: web::Data<Authenticator>,
    body: Bytes,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let session = super::session(&req, &ctx).await?;
    super::forms::FormPost::read(&req, &body, &session, Tr::new(lang))?;
    let secret = req
        .cookie(SESSION_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    let now = ctx.now();
    let id_token_hint = ctx
        .db
        .write(move |conn| sessions::end(conn, &secret, now))
        .await
        .map_err(|e: AppError| web_error(lang, ApiError::from(e)))?;
    let provider_url = match (auth.oidc(), id_token_hint) {
        (Some(oidc), Some(hint)) => oidc.end_session_url(Some(&hint)).await,
        _ => None,
    };
    // The page's CSP allows forms to go to this site only, and a redirect after a form post
    // counts as the form's target: so the way to the provider is a page of our own.
    let mut response = match provider_url {
        Some(provider_url) => html(
            StatusCode::OK,
            &SignedOutPage {
                // The language switch comes back to the sign-in page: sign-out is a post.
                chrome: Chrome::anonymous(lang, "/sign-in", "signed-out-title"),
                provider_url,
            },
        ),
        None => see_other("/sign-in"),
    };
    let mut removal = cookie(&req, &ctx, SESSION_COOKIE, String::new());
    removal.make_removal();
    response
        .add_cookie(&removal)
        .map_err(|e| WebError::new(lang, WebErrorKind::Internal(e.to_string())))?;
    Ok(response)
}

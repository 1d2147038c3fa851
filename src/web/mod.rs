//! The web application: server-rendered pages for caseworkers and intake staff, beside the
//! JSON API and over the same use cases.
//!
//! A page handler is an adapter like an API handler: it finds the session, reads the form
//! with the API's own parser (`forms`), runs one use case of `app` through the API's
//! `Context`, and renders a template (`web/templates`, checked at compile time). No rule,
//! guard or visibility check is written here. `docs/web.md` explains the parts.

pub mod admin;
pub mod assets;
pub mod cases;
pub mod console;
pub mod forms;
pub mod i18n;
pub mod information_point;
pub mod page;
pub mod parts;
pub mod referrals;
pub mod sign_in;
pub mod three_way;
pub mod time;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpRequest, HttpResponse, get, web};

use crate::api::context::Context;
use crate::app::AppError;
use crate::app::sessions::{self, Session, SessionLimits};
use crate::config::{Environment, parse_duration};
use crate::domain::access::Role;
use crate::error::ApiError;
use page::{WebError, WebErrorKind, language_of, local_path, see_other};

pub const SESSION_COOKIE: &str = "nrm_session";
pub const LANGUAGE_COOKIE: &str = "nrm_lang";
/// Before sign-in there is no session to hold a CSRF token: the sign-in form's token is
/// also in this cookie (double submit).
pub const SIGN_IN_COOKIE: &str = "nrm_sign_in";
/// State, nonce and PKCE verifier while the browser is at the OpenID provider.
pub const OIDC_COOKIE: &str = "nrm_oidc";

/// Registers the pages. The API's routes are registered before these.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(assets::serve)
        .service(information_point::start)
        .service(information_point::home)
        .service(information_point::audience)
        .service(information_point::search)
        .service(information_point::organisations)
        .service(information_point::what_happens)
        .service(home)
        .service(language)
        .service(sign_in::form)
        .service(sign_in::submit)
        .service(sign_in::start_at_provider)
        .service(sign_in::callback)
        .service(sign_in::sign_out)
        .service(cases::list)
        .service(cases::new_form)
        .service(cases::create)
        .service(cases::show)
        .service(cases::identification)
        .service(cases::record_consent)
        .service(cases::withdraw_consent)
        .service(cases::intake_sheet)
        .service(cases::offer_three_way)
        .service(cases::anonymous_notification)
        .service(referrals::new_form)
        .service(referrals::create)
        .service(referrals::inbox)
        .service(referrals::show)
        .service(referrals::transition)
        .service(referrals::assign_referral)
        .service(admin::capacity)
        .service(admin::outbox)
        .service(admin::retry)
        .service(admin::webhooks)
        .service(admin::webhook)
        .service(admin::webhook_switch)
        .service(console::overview)
        .service(console::audit)
        .service(console::three_way_course)
        .service(console::statistics)
        .service(console::statistics_csv)
        .service(console::eu_export)
        .service(three_way::show)
        .service(three_way::transition)
        .service(referrals::capacity)
        .service(referrals::report_capacity);
}

/// The session limits from settings (checked at start-up).
pub fn session_limits(settings: &crate::config::Settings) -> Result<SessionLimits, String> {
    let idle =
        parse_duration(&settings.web.session_idle_timeout).map_err(|e| format!("web.session_idle_timeout: {e}"))?;
    let absolute = parse_duration(&settings.web.session_absolute_timeout)
        .map_err(|e| format!("web.session_absolute_timeout: {e}"))?;
    let chrono = |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::hours(8));
    Ok(SessionLimits {
        idle: chrono(idle),
        absolute: chrono(absolute),
    })
}

/// Cookies are `Secure` except in development on a loopback address (plain HTTP there).
fn secure_cookies(req: &HttpRequest, ctx: &Context) -> bool {
    if ctx.settings().environment != Environment::Development {
        return true;
    }
    let info = req.connection_info();
    let host = info.host();
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    !matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

pub fn cookie<'a>(req: &HttpRequest, ctx: &Context, name: &'a str, value: String) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .secure(secure_cookies(req, ctx))
        .same_site(SameSite::Lax)
        .finish()
}

/// The signed-in person of this request; without one, the sign-in page (and back here).
pub async fn session(req: &HttpRequest, ctx: &Context) -> Result<Session, WebError> {
    let lang = language_of(req);
    let return_to = || {
        // After a post the person comes back to the page the form was on, not the post.
        let path = if req.method() == actix_web::http::Method::GET {
            req.uri().path_and_query().map(|p| p.as_str().to_string())
        } else {
            req.headers()
                .get(actix_web::http::header::REFERER)
                .and_then(|v| v.to_str().ok())
                .and_then(|r| r.split_once("://").map(|(_, rest)| rest))
                .and_then(|rest| rest.find('/').map(|i| rest[i..].to_string()))
        };
        WebError::new(
            lang,
            WebErrorKind::SignInFirst {
                return_to: local_path(path.as_deref()),
            },
        )
    };
    let Some(secret) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string()) else {
        return Err(return_to());
    };
    let limits = session_limits(ctx.settings()).map_err(|e| WebError::new(lang, WebErrorKind::Internal(e)))?;
    let now = ctx.now();
    let focal_point = ctx.registry().focal_point().map(|o| o.slug.clone());
    let found = ctx
        .db
        .run(move |conn| sessions::resume(conn, &secret, now, limits, focal_point.as_deref()))
        .await
        .map_err(|e: AppError| web_error(lang, ApiError::from(e)))?;
    found.ok_or_else(return_to)
}

/// An error of a use case, as a page. Form problems are shown on their form by the handler;
/// what reaches here is a page of its own.
pub fn web_error(lang: i18n::Lang, error: ApiError) -> WebError {
    let kind = match error {
        ApiError::NotFound | ApiError::UnknownOrganisation => WebErrorKind::NotFound,
        ApiError::Forbidden(_) => WebErrorKind::Forbidden,
        ApiError::Unavailable(_) | ApiError::TooManyRequests { .. } => WebErrorKind::Unavailable,
        ApiError::Internal(cause) => WebErrorKind::Internal(cause),
        _ => WebErrorKind::BadRequest,
    };
    WebError::new(lang, kind)
}

/// The start page: sign in, then the person's own work.
#[get("/")]
pub async fn home(req: HttpRequest, ctx: Context) -> Result<HttpResponse, WebError> {
    let session = session(&req, &ctx).await?;
    let actor = &session.actor;
    if actor.has(Role::Intake) {
        Ok(see_other("/inbox"))
    } else if actor.has(Role::Caseworker) {
        Ok(see_other("/cases"))
    } else if crate::domain::access::oversee(actor.principal()).is_ok() {
        Ok(see_other("/console"))
    } else if crate::domain::access::outbox(actor.principal()).is_ok() {
        Ok(see_other("/admin/outbox"))
    } else {
        Err(WebError::new(language_of(&req), WebErrorKind::Forbidden))
    }
}

#[derive(serde::Deserialize)]
pub struct ReturnTo {
    return_to: Option<String>,
}

/// The language switch: remembered in a cookie, then back to the page.
#[get("/language/{code}")]
pub async fn language(
    req: HttpRequest,
    ctx: Context,
    code: web::Path<String>,
    query: web::Query<ReturnTo>,
) -> Result<HttpResponse, WebError> {
    let lang = i18n::Lang::parse(&code).ok_or_else(|| WebError::new(language_of(&req), WebErrorKind::NotFound))?;
    let mut response = see_other(&local_path(query.return_to.as_deref()));
    let mut cookie = cookie(&req, &ctx, LANGUAGE_COOKIE, lang.code().to_string());
    cookie.set_max_age(actix_web::cookie::time::Duration::days(365));
    response
        .add_cookie(&cookie)
        .map_err(|e| WebError::new(lang, WebErrorKind::Internal(e.to_string())))?;
    Ok(response)
}

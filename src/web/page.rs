//! What every page has: the frame around the content (header, navigation, language switch),
//! the response headers that keep case data out of caches and other hosts out of the page,
//! and the pages shown when something goes wrong.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use super::assets;
use super::i18n::{Lang, Tr};
use crate::app::sessions::Session;
use crate::domain::access::Role;
use crate::domain::organisation::Registry;

/// No script, no inline style, nothing from another host; forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The signed-in person as the header shows them.
#[derive(Debug, Clone)]
pub struct UserBar {
    pub display_name: String,
    pub organisation_name: String,
    pub csrf_token: String,
}

#[derive(Debug, Clone)]
pub struct NavItem {
    pub href: &'static str,
    pub label: String,
    pub current: bool,
}

#[derive(Debug, Clone)]
pub struct LanguageOption {
    pub code: &'static str,
    pub name: &'static str,
    pub href: String,
    pub current: bool,
}

/// The frame of a page.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub tr: Tr,
    pub title: String,
    pub user: Option<UserBar>,
    pub nav: Vec<NavItem>,
    /// A confirmation of what just happened ("Verwijzing ingediend").
    pub notice: Option<String>,
    /// The path of this page, for the language switch to come back to.
    path: String,
}

impl Chrome {
    /// The frame for a page without a signed-in person.
    pub fn anonymous(lang: Lang, path: &str, title_key: &str) -> Self {
        let tr = Tr::new(lang);
        Self {
            title: tr.t(title_key),
            tr,
            user: None,
            nav: Vec::new(),
            notice: None,
            path: path.to_string(),
        }
    }

    /// The frame for a signed-in person: their name, sign-out and the pages their roles use.
    pub fn signed_in(lang: Lang, path: &str, title: String, session: &Session, registry: &Registry) -> Self {
        let tr = Tr::new(lang);
        let actor = &session.actor;
        let mut nav = Vec::new();
        let mut item = |href: &'static str, key: &str| {
            nav.push(NavItem {
                href,
                label: tr.t(key),
                current: path == href || path.starts_with(&format!("{href}/")),
            })
        };
        if actor.has(Role::Intake) {
            item("/inbox", "nav-inbox");
        }
        if crate::domain::access::report_capacity(actor.principal(), &actor.org).is_ok()
            && registry.offers_of(&actor.org).iter().any(|o| o.capacity_managed)
        {
            item("/capacity", "nav-capacity");
        }
        if crate::domain::access::oversee(actor.principal()).is_ok() {
            item("/console", "nav-console");
            item("/console/statistics", "nav-statistics");
            item("/console/three-way-conversations", "nav-three-way-course");
            item("/console/audit", "nav-audit");
        }
        if crate::domain::access::capacity_overview(actor.principal()).is_ok() {
            item("/admin/capacity", "nav-capacity-overview");
        }
        if crate::domain::access::outbox(actor.principal()).is_ok() {
            item("/admin/outbox", "nav-outbox");
        }
        if crate::domain::access::manage_webhooks(actor.principal(), None).is_ok() {
            item("/admin/webhooks", "nav-webhooks");
        }
        if actor.has(Role::Caseworker) {
            item("/cases", "nav-cases");
            item("/cases/new", "nav-new-case");
            item("/intake-sheet", "nav-intake-sheet");
        }
        // "New case" is under "/cases" too, the audit trail under "/console": only the most
        // specific link is the current one.
        for (inner, outer) in [
            ("/cases/new", "/cases"),
            ("/console/audit", "/console"),
            ("/console/statistics", "/console"),
            ("/console/three-way-conversations", "/console"),
        ] {
            if nav.iter().any(|n| n.href == inner && n.current) {
                for n in nav.iter_mut().filter(|n| n.href == outer) {
                    n.current = false;
                }
            }
        }
        let organisation_name = registry
            .get(&actor.org)
            .map(|o| o.name.clone())
            .unwrap_or_else(|| actor.org.clone());
        Self {
            tr,
            title,
            user: Some(UserBar {
                display_name: session.display_name.clone(),
                organisation_name,
                csrf_token: session.csrf_token.clone(),
            }),
            nav,
            notice: None,
            path: path.to_string(),
        }
    }

    pub fn with_notice(mut self, key: &str) -> Self {
        self.notice = Some(self.tr.t(key));
        self
    }

    pub fn stylesheets(&self) -> Vec<String> {
        assets::STYLESHEETS.iter().map(|name| assets::url(name)).collect()
    }

    pub fn languages(&self) -> Vec<LanguageOption> {
        Lang::ALL
            .iter()
            .map(|lang| LanguageOption {
                code: lang.code(),
                name: match lang {
                    Lang::Nl => "Nederlands",
                    Lang::En => "English",
                },
                href: format!("/language/{}?return_to={}", lang.code(), encode_component(&self.path)),
                current: *lang == self.tr.lang,
            })
            .collect()
    }
}

/// Percent-encodes a query value.
pub fn encode_component(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A path on this site to return to after sign-in or a language switch; anything else
/// (another host, `//host`, a scheme) is replaced by the start page.
pub fn local_path(candidate: Option<&str>) -> String {
    match candidate {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

/// A rendered page with the headers every page carries.
pub fn html(status: StatusCode, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(body) => {
            let mut response = HttpResponse::build(status);
            secure_headers(&mut response);
            response.content_type("text/html; charset=utf-8").body(body)
        }
        Err(error) => {
            tracing::error!("a page template failed to render: {error}");
            let mut response = HttpResponse::InternalServerError();
            secure_headers(&mut response);
            response
                .content_type("text/plain; charset=utf-8")
                .body("500 Internal Server Error")
        }
    }
}

/// A redirect after a form (303: the browser follows with GET).
pub fn see_other(location: &str) -> HttpResponse {
    let mut response = HttpResponse::SeeOther();
    secure_headers(&mut response);
    response
        .insert_header((header::LOCATION, location.to_string()))
        .finish()
}

/// Pages hold case data: never cached, never framed, never sent with a referrer.
pub fn secure_headers(response: &mut actix_web::HttpResponseBuilder) {
    headers_with_policy(response, CONTENT_SECURITY_POLICY);
}

/// The same headers with another content security policy (the information point's).
pub fn headers_with_policy(response: &mut actix_web::HttpResponseBuilder, policy: &'static str) {
    response
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy)))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .insert_header((header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .insert_header((
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ));
}

/// Why a page cannot be shown, in the language of the person asking.
#[derive(Debug)]
pub struct WebError {
    pub lang: Lang,
    pub kind: WebErrorKind,
}

#[derive(Debug)]
pub enum WebErrorKind {
    /// No live session: sign in, then come back here.
    SignInFirst {
        return_to: String,
    },
    NotFound,
    /// Signed in, but this is not for the person's roles.
    Forbidden,
    /// A form without this session's CSRF token: nothing was changed.
    Csrf,
    /// Signing in at the OpenID provider did not complete (refused, expired, or forged).
    SignInFailed,
    /// A request the pages never send (wrong content type, undecodable body).
    BadRequest,
    /// The database is busy or unreachable: try again.
    Unavailable,
    /// A bug or a broken database; the cause is in the log.
    Internal(String),
}

impl WebError {
    pub fn new(lang: Lang, kind: WebErrorKind) -> Self {
        Self { lang, kind }
    }
}

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.kind)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    heading: String,
    text: String,
    sign_in: bool,
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self.kind {
            WebErrorKind::SignInFirst { .. } => StatusCode::SEE_OTHER,
            WebErrorKind::NotFound => StatusCode::NOT_FOUND,
            WebErrorKind::Forbidden | WebErrorKind::Csrf => StatusCode::FORBIDDEN,
            WebErrorKind::BadRequest | WebErrorKind::SignInFailed => StatusCode::BAD_REQUEST,
            WebErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            WebErrorKind::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let key = match &self.kind {
            WebErrorKind::SignInFirst { return_to } => {
                return see_other(&format!("/sign-in?return_to={}", encode_component(return_to)));
            }
            WebErrorKind::NotFound => "not-found",
            WebErrorKind::Forbidden => "forbidden",
            WebErrorKind::Csrf => "csrf",
            WebErrorKind::BadRequest => "bad-request",
            WebErrorKind::SignInFailed => "sign-in-failed",
            WebErrorKind::Unavailable => "unavailable",
            WebErrorKind::Internal(cause) => {
                tracing::error!("a page failed: {cause}");
                "internal"
            }
        };
        let chrome = Chrome::anonymous(self.lang, "/", &format!("error-{key}-title"));
        let page = ErrorPage {
            heading: chrome.tr.t(&format!("error-{key}-title")),
            text: chrome.tr.t(&format!("error-{key}-text")),
            sign_in: matches!(self.kind, WebErrorKind::SignInFailed),
            chrome,
        };
        let mut response = html(self.status_code(), &page);
        if matches!(self.kind, WebErrorKind::Unavailable) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        response
    }
}

/// The language of a request: the person's choice (cookie), else `Accept-Language`.
pub fn language_of(req: &HttpRequest) -> Lang {
    req.cookie(super::LANGUAGE_COOKIE)
        .and_then(|c| Lang::parse(c.value()))
        .unwrap_or_else(|| Lang::negotiate(req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_site_are_returned_to() {
        assert_eq!(local_path(Some("/referrals/1?x=2")), "/referrals/1?x=2");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(Some("/a\nb")), "/");
        assert_eq!(local_path(None), "/");
    }
}

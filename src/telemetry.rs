//! Logging and per-request middleware: request ids, one access log line per request,
//! problem+json for errors that did not come from our handlers, and security headers.
//!
//! What is logged about a request: method, route pattern (never the raw path or query),
//! status, duration and request id. Never a body, a header value or a token.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};
use crate::error::{ApiError, PROBLEM_JSON};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global subscriber. `RUST_LOG` overrides `log.level`. Safe to call twice.
///
/// Colour codes only on a terminal. HTTP protocol errors of clients (malformed requests,
/// connections that break off), which actix logs at ERROR one by one, are counted instead and
/// reported as one WARN a minute by `report_protocol_errors`: noise from the internet must
/// not bury a real error.
pub fn init(settings: &LogSettings) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let fmt = match settings.format {
        LogFormat::Json => fmt.json().flatten_event(true).with_current_span(true).boxed(),
        LogFormat::Pretty => fmt.compact().boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt.with_filter(tracing_subscriber::filter::filter_fn(|meta| !is_protocol_error(meta))))
        .with(ProtocolErrorCounter)
        .try_init();
}

/// actix-http's per-connection errors: a client sent something that is not HTTP, or broke
/// off. Never a fault of the service.
fn is_protocol_error(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() == tracing::Level::ERROR && meta.target().starts_with("actix_http::h1")
}

static PROTOCOL_ERRORS: AtomicU64 = AtomicU64::new(0);

struct ProtocolErrorCounter;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ProtocolErrorCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        if is_protocol_error(event.metadata()) {
            PROTOCOL_ERRORS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Logs how many client protocol errors the last `interval` saw, when there were any.
pub async fn report_protocol_errors(interval: std::time::Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let count = PROTOCOL_ERRORS.swap(0, Ordering::Relaxed);
        if count > 0 {
            tracing::warn!(
                count,
                "connections ended with an HTTP protocol error (malformed requests or clients breaking off)"
            );
        }
    }
}

/// Set by the `Actor` extractor once a token is verified: the access log tells requests of
/// signed-in callers from anonymous noise.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated;

/// The request id of the current request, stored in request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Accepts a caller's `X-Request-Id` when it is short and plain; otherwise makes one.
fn request_id_from(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Request id, access log, problem+json for bare errors, and security headers.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let id = request_id_from(&req);
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().to_string();
    let span = tracing::info_span!("request", request_id = %id, method = %method);
    let started = Instant::now();
    // Handler errors arrive here as responses; an `Err` only comes from framework layers,
    // and actix renders it through the same `ResponseError` (ours are problem+json).
    let mut response = next.call(req).instrument(span.clone()).await?.map_into_boxed_body();
    if (response.status().is_client_error() || response.status().is_server_error())
        && !is_problem(&response)
        && !is_page(&response)
    {
        response = bare_error_to_problem(response);
    }
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID, value);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The API serves no HTML; should anything render a response, it may load nothing. The
    // web pages set their own policy (`web::page`).
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    // Responses may carry personal data: no shared or browser caches.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "<unmatched>".into());
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    // Refused requests of callers without a valid token are noise (scanners, broken
    // clients): at DEBUG, so they cannot flood the log at INFO.
    let anonymous = response.request().extensions().get::<Authenticated>().is_none();
    span.in_scope(|| {
        if anonymous && response.status().is_client_error() {
            tracing::debug!(route = %route, status, elapsed_ms, "request handled");
        } else {
            tracing::info!(route = %route, status, elapsed_ms, "request handled");
        }
    });
    Ok(response)
}

fn is_problem(response: &ServiceResponse<BoxBody>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON))
}

/// A web page's own error page (`web::page::WebError`), in the person's language.
fn is_page(response: &ServiceResponse<BoxBody>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

/// Errors produced by the framework itself (405, a payload error outside our extractors...)
/// get the same problem+json body as ours.
fn bare_error_to_problem(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    let error = match status.as_u16() {
        400 => ApiError::BadRequest("the request is malformed".into()),
        401 => ApiError::Unauthorized { invalid_token: false },
        404 => ApiError::NotFound,
        405 => ApiError::MethodNotAllowed { allow: String::new() },
        413 => ApiError::PayloadTooLarge,
        415 => ApiError::UnsupportedMediaType,
        s if s >= 500 => ApiError::Internal(format!("framework error {status}")),
        _ => ApiError::BadRequest(status.canonical_reason().unwrap_or("bad request").to_lowercase()),
    };
    let (request, old) = response.into_parts();
    let mut new = error.error_response();
    *new.status_mut() = status;
    for (name, value) in old.headers() {
        if name == header::ALLOW {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(request, new)
}

//! What several handlers share: ids from paths, paging and ETag headers, idempotency keys,
//! and the 201/200 responses with their headers.

use actix_web::HttpRequest;
use actix_web::http::header;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::{Idempotency, Page, SeenVersion};
use crate::crypto::Keyring;
use crate::error::ApiError;

/// Parses an id from a path segment; anything else is simply not found.
pub fn parse_id<T>(text: &str, id: fn(uuid::Uuid) -> T) -> Result<T, ApiError> {
    uuid::Uuid::parse_str(text).map(id).map_err(|_| ApiError::NotFound)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size (default and maximum from `cases.page_size_*`).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn page(&self, settings: &crate::config::Settings) -> Result<Page, ApiError> {
        Ok(Page::parse(self.limit, self.cursor.as_deref(), settings)?)
    }
}

pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// The version an `If-Match` header names, for the use case to check (428 when absent or
/// `*`, 412 when it cannot match).
pub fn seen_version(req: &HttpRequest) -> SeenVersion {
    // An empty header names no version at all: the same as none.
    let Some(value) = req
        .headers()
        .get(header::IF_MATCH)
        .filter(|v| !v.as_bytes().iter().all(u8::is_ascii_whitespace))
    else {
        return SeenVersion::Missing;
    };
    match value
        .to_str()
        .map_err(|_| ApiError::PreconditionFailed)
        .and_then(parse_if_match)
    {
        Ok(version) => SeenVersion::Named(version),
        Err(ApiError::PreconditionRequired(_)) => SeenVersion::Any,
        Err(_) => SeenVersion::Unmatchable,
    }
}

/// The version an `If-Match` value names, compared strongly (RFC 9110 §13.1.1): only a
/// quoted tag such as `"3"` can match. `*` is refused with 428: it would match any version,
/// and a change must name the version the person saw. A weak tag (`W/"3"`), an unquoted
/// `3`, a list or anything else can never match a current version: 412.
pub fn parse_if_match(text: &str) -> Result<i64, ApiError> {
    let text = text.trim();
    if text == "*" {
        return Err(ApiError::PreconditionRequired(Some(
            "If-Match: * would match any version; send the ETag of the version you saw, e.g. \"3\"",
        )));
    }
    text.strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse::<i64>().ok())
        .ok_or(ApiError::PreconditionFailed)
}

/// The `Idempotency-Key` header, if sent: 1 to 255 visible ASCII characters.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    match req.headers().get("Idempotency-Key") {
        None => Ok(None),
        Some(value) => {
            let text = value.to_str().unwrap_or("");
            if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ApiError::BadRequest(
                    "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
                ));
            }
            Ok(Some(text.to_string()))
        }
    }
}

/// A request fingerprint for idempotency: the route and the body in canonical form
/// (serde_json sorts object keys), hashed so no body is stored.
///
/// Keyed (HMAC), so a stored fingerprint cannot be used to test guesses of what a body held.
pub fn request_hash(keyring: &Keyring, route: &str, body: &serde_json::Value) -> String {
    keyring.keyed_hash(format!("{route}\0{body}").as_bytes())
}

/// A creating request's idempotency: the `Idempotency-Key` header, the route and a keyed
/// fingerprint of the body.
pub fn idempotency(
    keyring: &Keyring,
    req: &HttpRequest,
    route: &str,
    body: &serde_json::Value,
) -> Result<Idempotency, ApiError> {
    Ok(Idempotency {
        key: idempotency_key(req)?,
        route: route.to_string(),
        hash: request_hash(keyring, route, body),
    })
}

/// 201 with `Location`, and the `ETag` when the resource has a version.
pub fn created(location: String, version: Option<i64>, body: impl serde::Serialize) -> actix_web::HttpResponse {
    let mut response = actix_web::HttpResponse::Created();
    response.insert_header((header::LOCATION, location));
    if let Some(version) = version {
        response.insert_header((header::ETAG, etag(version)));
    }
    response.json(body)
}

/// 200 with the resource's `ETag`.
pub fn ok_with_etag(version: i64, body: impl serde::Serialize) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .insert_header((header::ETAG, etag(version)))
        .json(body)
}

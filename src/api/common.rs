//! What several handlers share: request context, paging, ETags, idempotency keys, and who
//! may see a case.

use actix_web::HttpRequest;
use actix_web::http::header;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Actor;
use crate::crypto::Keyring;
use crate::db::cases::CaseRow;
use crate::db::referrals::{self as referral_rows, IdempotencyRow, ReferralRow};
use crate::db::{AnyConnection, Id, Instant};
use crate::domain::access::{self, CaseAction, CaseFacts};
use crate::domain::consent::ConsentScope;
use crate::domain::referral::ReferralState;
use crate::error::ApiError;

/// Parses an id from a path segment; anything else is simply not found.
pub fn parse_id(text: &str) -> Result<Id, ApiError> {
    uuid::Uuid::parse_str(text).map(Id).map_err(|_| ApiError::NotFound)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size (default and maximum from `cases.page_size_*`).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page size and keyset cursor, checked.
pub struct Page {
    pub limit: i64,
    pub before: Option<Id>,
}

impl Page {
    pub fn parse(limit: Option<i64>, cursor: Option<&str>, default: i64, max: i64) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(default);
        if !(1..=max).contains(&limit) {
            return Err(ApiError::field("limit", format!("must be between 1 and {max}")));
        }
        let before =
            match cursor {
                None | Some("") => None,
                Some(text) => Some(Id(uuid::Uuid::parse_str(text)
                    .map_err(|_| ApiError::field("cursor", "is not a cursor from this API"))?)),
            };
        Ok(Self { limit, before })
    }

    /// Asks the database for one row more than a page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// Cuts the extra row off and returns the cursor of the next page, if any.
    pub fn finish<T>(&self, mut rows: Vec<T>, id_of: impl Fn(&T) -> Id) -> (Vec<T>, Option<String>) {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next = if more {
            rows.last().map(|r| id_of(r).0.to_string())
        } else {
            None
        };
        (rows, next)
    }
}

pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// The version an `If-Match` header names: 428 when absent, 412 when it cannot match.
pub fn required_if_match(req: &HttpRequest) -> Result<i64, ApiError> {
    let value = req
        .headers()
        .get(header::IF_MATCH)
        .ok_or(ApiError::PreconditionRequired(None))?;
    parse_if_match(value.to_str().map_err(|_| ApiError::PreconditionFailed)?)
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

/// One creating request's idempotency context.
pub struct Idempotency {
    pub key: Option<String>,
    pub route: String,
    pub hash: String,
}

impl Idempotency {
    pub fn new(keyring: &Keyring, req: &HttpRequest, route: &str, body: &serde_json::Value) -> Result<Self, ApiError> {
        Ok(Self {
            key: idempotency_key(req)?,
            route: route.to_string(),
            hash: request_hash(keyring, route, body),
        })
    }

    /// Inside the creating transaction: the id created by an earlier identical request, if any.
    /// The same key with another request is a 422.
    pub fn replay(&self, conn: &mut AnyConnection, actor: &Actor) -> Result<Option<Id>, ApiError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        match referral_rows::find_idempotency(conn, &actor.org, &actor.sub, key)? {
            None => Ok(None),
            Some(row) if row.route == self.route && row.request_hash == self.hash => Ok(Some(row.resource_id)),
            Some(_) => Err(ApiError::field(
                "Idempotency-Key",
                "was already used for a different request; use a new key for a new request",
            )),
        }
    }

    /// Inside the same transaction, after creating: remember what the key created.
    pub fn remember(&self, conn: &mut AnyConnection, actor: &Actor, id: Id, now: Instant) -> Result<(), ApiError> {
        let Some(key) = &self.key else { return Ok(()) };
        let row = IdempotencyRow {
            organisation: actor.org.clone(),
            actor_sub: actor.sub.clone(),
            key: key.clone(),
            route: self.route.clone(),
            request_hash: self.hash.clone(),
            resource_id: id,
            created_at: now,
        };
        referral_rows::insert_idempotency(conn, &row).map_err(|e| match e {
            diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
                ApiError::Conflict {
                    detail: "a request with this Idempotency-Key is being processed; retry it".into(),
                    allowed_actions: None,
                }
            }
            other => other.into(),
        })
    }
}

pub use crate::domain::access::CaseAccess;

/// The organisations that received a submitted referral of the case, whatever its state now.
fn receivers(referrals: &[ReferralRow]) -> Vec<&str> {
    referrals
        .iter()
        .filter(|r| r.submitted_at.is_some())
        .map(|r| r.to_organisation.as_str())
        .collect()
}

/// Decides what the caller sees of a case (`domain::access::read_case`): 404 for those who
/// may not know it exists, 403 for the owning organisation's staff without a case role.
pub fn case_access(actor: &Actor, case: &CaseRow, referrals: &[ReferralRow]) -> Result<CaseAccess, ApiError> {
    let receivers = receivers(referrals);
    let facts = CaseFacts {
        owner: &case.organisation,
        receivers: &receivers,
    };
    Ok(access::read_case(actor.principal(), facts)?)
}

/// Loads a case the caller may take `action` on: visibility first (404), then the role
/// (403), and only then, in the caller, any check of the case's state.
pub fn case_for(conn: &mut AnyConnection, actor: &Actor, id: Id, action: CaseAction) -> Result<CaseRow, ApiError> {
    let case = crate::db::cases::find(conn, id)?.ok_or(ApiError::NotFound)?;
    let referrals = referral_rows::for_case(conn, id)?;
    let receivers = receivers(&referrals);
    let facts = CaseFacts {
        owner: &case.organisation,
        receivers: &receivers,
    };
    access::act_on_case(actor.principal(), facts, action)?;
    Ok(case)
}

/// As `case_for`, for the identification route, where the owner and the focal point each
/// take their own decisions.
pub fn case_for_identification(conn: &mut AnyConnection, actor: &Actor, id: Id) -> Result<CaseRow, ApiError> {
    let case = crate::db::cases::find(conn, id)?.ok_or(ApiError::NotFound)?;
    let referrals = referral_rows::for_case(conn, id)?;
    let receivers = receivers(&referrals);
    let facts = CaseFacts {
        owner: &case.organisation,
        receivers: &receivers,
    };
    access::record_identification(actor.principal(), facts)?;
    Ok(case)
}

/// Whether a receiving organisation may see identifying details: it holds an accepted
/// referral (accepted or in care) and a standing `data_sharing` consent names it.
/// Returns the consent that allows it, the basis recorded in the disclosure register.
pub fn receiver_sees_identifying_details(
    org: &str,
    referrals: &[ReferralRow],
    consents: &[crate::db::cases::ConsentRow],
) -> Option<Id> {
    let accepted = referrals.iter().any(|r| {
        r.to_organisation == org
            && (r.state == ReferralState::Accepted.as_str() || r.state == ReferralState::InCare.as_str())
    });
    let consent = consents
        .iter()
        .find(|c| c.organisation == org && c.scope == ConsentScope::DataSharing.as_str() && c.withdrawn_at.is_none());
    consent.filter(|_| accepted).map(|c| c.id)
}

/// Closed cases, and cases whose personal data was erased, are read-only: so are their
/// consents, referrals and three-way conversations.
pub fn writable(case: &CaseRow) -> Result<(), ApiError> {
    if case.erasure_reason.is_some() {
        return Err(ApiError::Conflict {
            detail: "this case's personal data was erased; it and everything on it are read-only".into(),
            allowed_actions: None,
        });
    }
    if case.closed_at.is_some() {
        return Err(ApiError::Conflict {
            detail: "this case is closed and read-only".into(),
            allowed_actions: None,
        });
    }
    Ok(())
}

/// Appends the audit entry of a change (or of a read of identifying details) in the
/// caller's transaction. Call it last, after the change itself.
#[allow(clippy::too_many_arguments)]
pub fn audit(
    conn: &mut AnyConnection,
    actor: &Actor,
    action: &str,
    resource_type: &str,
    resource_id: Id,
    case_id: Option<Id>,
    outcome: &str,
    now: Instant,
) -> Result<(), ApiError> {
    let entry =
        crate::db::audit::NewAuditEntry::new(action, resource_type, resource_id.0.to_string(), case_id, outcome).by(
            &actor.sub,
            &actor.org,
            actor.roles_text(),
        );
    crate::db::audit::append(conn, &entry, now)?;
    Ok(())
}

/// The actor the service itself acts as (consent withdrawal, deadlines, retention).
pub fn system_actor(org: &str) -> Actor {
    Actor {
        sub: "system".into(),
        org: org.to_string(),
        roles: Vec::new(),
        at_focal_point: false,
    }
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

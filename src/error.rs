//! `ApiError`: the one place HTTP errors are shaped, as RFC 9457 `application/problem+json`.
//!
//! Rule: a 5xx body never carries the cause; the cause goes to the log with the request id.
//! Messages shown to clients name fields and codes, never values a client sent, so personal
//! data cannot echo back through an error.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppError;
use crate::db::DbError;
use crate::domain::access::{Denial, Role};

pub const PROBLEM_JSON: &str = "application/problem+json";

pub use crate::domain::problem::FieldError;

/// RFC 9457 problem details, as every error response of `nrm` carries them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`about:blank` or `https://nrm.example/problems/...`).
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Field-level problems of a 422.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// Stable codes of unmet guards (422) or the actions the caller may take (409).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guards: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_actions: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No token (`invalid_token: false`), or a token that failed a check.
    #[error("unauthorized")]
    Unauthorized { invalid_token: bool },
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    /// 405; `allow` lists the methods the resource has (the `Allow` header).
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    /// 404 for an organisation slug that is not in the registry, saying so.
    #[error("unknown organisation")]
    UnknownOrganisation,
    #[error("conflict: {detail}")]
    Conflict {
        detail: String,
        allowed_actions: Option<Vec<String>>,
    },
    #[error("precondition failed")]
    PreconditionFailed,
    /// 428; the detail says why when the header was sent but cannot be used (`*`).
    #[error("precondition required")]
    PreconditionRequired(Option<&'static str>),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("guards failed")]
    GuardsFailed { detail: String, guards: Vec<String> },
    /// 429 with `Retry-After: retry_after` (seconds).
    #[error("too many requests")]
    TooManyRequests { retry_after: u64 },
    /// 408: the request body did not arrive within `server.body_read_timeout`.
    #[error("request timeout")]
    RequestTimeout,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    pub fn forbidden_role(role: Role) -> Self {
        ApiError::Forbidden(format!("this action needs the `{}` role", role.as_str()))
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => ("bad-request", "Bad request"),
            ApiError::Unauthorized { .. } => ("unauthorized", "Unauthorized"),
            ApiError::Forbidden(_) => ("forbidden", "Forbidden"),
            ApiError::NotFound => ("not-found", "Not found"),
            ApiError::MethodNotAllowed { .. } => ("method-not-allowed", "Method not allowed"),
            ApiError::UnknownOrganisation => ("not-found", "Not found"),
            ApiError::Conflict { .. } => ("conflict", "Conflict"),
            ApiError::PreconditionFailed => ("precondition-failed", "Precondition failed"),
            ApiError::PreconditionRequired(_) => ("precondition-required", "Precondition required"),
            ApiError::PayloadTooLarge => ("payload-too-large", "Payload too large"),
            ApiError::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            ApiError::Validation(_) => ("validation", "Invalid input"),
            ApiError::GuardsFailed { .. } => ("guards-failed", "Handover requirements not met"),
            ApiError::TooManyRequests { .. } => ("too-many-requests", "Too many requests"),
            ApiError::RequestTimeout => ("request-timeout", "Request timeout"),
            ApiError::Unavailable(_) => ("unavailable", "Service unavailable"),
            ApiError::Internal(_) => ("internal", "Internal server error"),
        }
    }

    pub fn problem(&self) -> Problem {
        let (slug, title) = self.slug_and_title();
        let status = self.status_code().as_u16();
        let detail = match self {
            ApiError::BadRequest(detail) | ApiError::Forbidden(detail) => detail.clone(),
            ApiError::Unauthorized { .. } => "a valid bearer token is required".into(),
            ApiError::NotFound => "no such resource".into(),
            ApiError::MethodNotAllowed { .. } => {
                "this method is not allowed on this resource; the Allow header lists those that are".into()
            }
            ApiError::UnknownOrganisation => {
                "no organisation with this slug is in the registry; GET /api/v1/organisations lists them".into()
            }
            ApiError::Conflict { detail, .. } | ApiError::GuardsFailed { detail, .. } => detail.clone(),
            ApiError::PreconditionFailed => "the resource has changed: fetch it again and retry with its ETag".into(),
            ApiError::PreconditionRequired(Some(why)) => (*why).into(),
            ApiError::PreconditionRequired(None) => {
                "this request needs an If-Match header with the resource's ETag".into()
            }
            ApiError::PayloadTooLarge => "the request body is larger than the configured limit".into(),
            ApiError::UnsupportedMediaType => "the request body must be application/json".into(),
            ApiError::Validation(_) => "one or more fields are invalid".into(),
            ApiError::TooManyRequests { .. } => "too many requests: wait as Retry-After says and try again".into(),
            ApiError::RequestTimeout => "the request body did not arrive in time; send it again, whole".into(),
            // Never the cause: it may hold internals. The log has it, under the request id.
            ApiError::Unavailable(_) => "the service cannot handle the request right now; retry later".into(),
            ApiError::Internal(_) => "an unexpected error occurred; it has been logged".into(),
        };
        Problem {
            problem_type: format!("https://nrm.example/problems/{slug}"),
            title: title.into(),
            status,
            detail,
            errors: match self {
                ApiError::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
            guards: match self {
                ApiError::GuardsFailed { guards, .. } => Some(guards.clone()),
                _ => None,
            },
            allowed_actions: match self {
                ApiError::Conflict { allowed_actions, .. } => allowed_actions.clone(),
                _ => None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnknownOrganisation => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::PreconditionRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) | ApiError::GuardsFailed { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(cause) => tracing::error!(cause = %cause, "request failed"),
            ApiError::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "request could not be served")
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        if let ApiError::Unauthorized { invalid_token } = self {
            // RFC 6750 §3: no error code when no token was sent.
            let challenge = if *invalid_token {
                "Bearer error=\"invalid_token\""
            } else {
                "Bearer"
            };
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge)));
        }
        if let ApiError::MethodNotAllowed { allow } = self
            && !allow.is_empty()
            && let Ok(value) = HeaderValue::from_str(allow)
        {
            response.insert_header((header::ALLOW, value));
        }
        if let ApiError::TooManyRequests { retry_after } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after.to_string())
        {
            response.insert_header((header::RETRY_AFTER, value));
        }
        response.json(self.problem())
    }
}

/// The application layer's refusals, mapped to HTTP once, here.
impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::NotFound => ApiError::NotFound,
            AppError::UnknownOrganisation => ApiError::UnknownOrganisation,
            AppError::Forbidden(detail) => ApiError::Forbidden(detail),
            AppError::Conflict {
                detail,
                allowed_actions,
            } => ApiError::Conflict {
                detail,
                allowed_actions,
            },
            AppError::StaleVersion => ApiError::PreconditionFailed,
            AppError::VersionRequired(why) => ApiError::PreconditionRequired(why),
            AppError::Invalid(errors) => ApiError::Validation(errors),
            AppError::GuardsFailed { detail, guards } => ApiError::GuardsFailed { detail, guards },
            AppError::Unavailable(cause) => ApiError::Unavailable(cause),
            AppError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<Denial> for ApiError {
    fn from(denial: Denial) -> Self {
        match denial {
            Denial::Hidden => ApiError::NotFound,
            Denial::Forbidden(needed) => ApiError::Forbidden(needed.to_string()),
        }
    }
}

/// Database errors outside a use case mean what they mean inside one (`AppError`).
impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        AppError::from(error).into()
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        AppError::from(error).into()
    }
}

//! Form posts: decoded once, checked against the session's CSRF token, and turned into the
//! JSON body the API's own parser reads (`api::input::form_to_json`), so a form and an API
//! call are the same request with the same rules. What goes wrong comes back as a form
//! with its values and one message per field, in the person's language.

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::Bytes;
use serde_json::Value;

use super::i18n::Tr;
use super::page::{WebError, WebErrorKind};
use crate::app::SeenVersion;
use crate::app::sessions::Session;
use crate::error::{ApiError, FieldError};

/// Fields a form carries that are not the API's: the CSRF token and the version the page
/// was rendered from (the API's `If-Match`).
const PAGE_FIELDS: [&str; 2] = ["csrf_token", "version"];

/// A decoded form post whose CSRF token was this session's.
#[derive(Debug, Clone, Default)]
pub struct FormPost {
    pairs: Vec<(String, String)>,
    version: Option<String>,
}

impl FormPost {
    /// Decodes `application/x-www-form-urlencoded` and checks the CSRF token before anything
    /// else: a post without this session's token changes nothing.
    pub fn read(req: &HttpRequest, body: &Bytes, session: &Session, tr: Tr) -> Result<Self, WebError> {
        let form_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim()
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        let pairs = decode(body).filter(|_| form_type);
        let Some(pairs) = pairs else {
            // Without a readable form the token cannot be found either: refused as such.
            return Err(WebError::new(tr.lang, WebErrorKind::Csrf));
        };
        let token = pairs.iter().find(|(k, _)| k == "csrf_token").map(|(_, v)| v.as_str());
        if !session.csrf_matches(token) {
            return Err(WebError::new(tr.lang, WebErrorKind::Csrf));
        }
        let version = pairs.iter().find(|(k, _)| k == "version").map(|(_, v)| v.clone());
        let pairs = pairs
            .into_iter()
            .filter(|(k, _)| !PAGE_FIELDS.contains(&k.as_str()))
            .collect();
        Ok(Self { pairs, version })
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The first value of a field, trimmed; empty counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The form without the fields a page adds for itself (`names`).
    pub fn without(&self, names: &[&str]) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .filter(|(k, _)| !names.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    /// The JSON body of the API operation whose request schema is `schema`.
    pub fn json(&self, schema: &str, skip: &[&str]) -> Result<Value, ApiError> {
        crate::api::input::form_to_json(schema, &self.without(skip))
    }

    /// The version the page showed, as `If-Match` would name it.
    pub fn seen_version(&self) -> SeenVersion {
        match self.version.as_deref().map(str::trim) {
            None | Some("") => SeenVersion::Missing,
            Some(text) => text.parse().map(SeenVersion::Named).unwrap_or(SeenVersion::Unmatchable),
        }
    }

    /// The form as the page shows it again.
    pub fn state(&self) -> FormState {
        FormState {
            values: self.pairs.clone(),
            errors: Vec::new(),
        }
    }
}

fn decode(body: &Bytes) -> Option<Vec<(String, String)>> {
    std::str::from_utf8(body).ok()?;
    Some(
        form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    )
}

/// A problem shown beside its field and in the summary at the top of the form.
#[derive(Debug, Clone)]
pub struct FieldProblem {
    /// The input's name; its element's id is `field-<name>`.
    pub field: String,
    pub message: String,
}

/// The values of a form being shown (again) and its problems.
#[derive(Debug, Clone, Default)]
pub struct FormState {
    values: Vec<(String, String)>,
    pub errors: Vec<FieldProblem>,
}

impl FormState {
    pub fn with_values(values: Vec<(String, String)>) -> Self {
        Self {
            values,
            errors: Vec::new(),
        }
    }

    pub fn value(&self, name: &str) -> &str {
        self.values
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Whether a list field holds `value` (checkboxes, radio buttons).
    pub fn has(&self, name: &str, value: &str) -> bool {
        self.values.iter().any(|(k, v)| k == name && v == value)
    }

    pub fn error(&self, name: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.field == name).map(|e| e.message.as_str())
    }

    pub fn invalid(&self, name: &str) -> bool {
        self.error(name).is_some()
    }

    /// The API's field problems, in the person's language. The API's messages are English
    /// and for programmers; each field has its own message in the catalogue, saying what
    /// the field needs. Nested fields (`identifying_details.name`) keep their dotted name.
    pub fn add_api_errors(&mut self, tr: Tr, errors: &[FieldError]) {
        for error in errors {
            let field = error.field.clone();
            let label = tr.field(&field);
            // The field's own message says what to give ("Kies wie contact opneemt."),
            // missing or wrong alike; the generic ones only where a field has none.
            let key = format!("error-{field}");
            let specific = tr.t(&key);
            let message = if specific != key {
                specific
            } else if error.message == "is required" {
                tr.with("error-required", &[("label", &label)])
            } else {
                tr.with("error-invalid", &[("label", &label)])
            };
            if self.error(&field).is_none() {
                self.errors.push(FieldProblem { field, message });
            }
        }
    }

    pub fn add(&mut self, field: &str, message: String) {
        self.errors.push(FieldProblem {
            field: field.to_string(),
            message,
        });
    }
}

/// Why a versioned step on a page (a referral's or a conversation's) was not applied: the
/// form with its problems, the guards that did not hold (their codes), or the version the
/// page showed being stale. The page is shown again with the current state.
#[derive(Debug, Clone, Default)]
pub struct Refusal {
    pub form: FormState,
    pub guards: Vec<String>,
    pub stale: bool,
}

impl Refusal {
    /// The refusal a use case's error stands for, and its status; an error that is not a
    /// refusal of this form (not found, unavailable, ...) is given back.
    pub fn of(tr: Tr, form: &FormPost, error: ApiError) -> Result<(actix_web::http::StatusCode, Self), ApiError> {
        use actix_web::http::StatusCode;
        let mut refusal = Refusal {
            form: form.state(),
            ..Refusal::default()
        };
        let status = match error {
            ApiError::Validation(errors) => {
                refusal.form.add_api_errors(tr, &errors);
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::GuardsFailed { guards, .. } => {
                refusal.guards = guards;
                StatusCode::UNPROCESSABLE_ENTITY
            }
            // Someone else moved it on, or the step no longer fits: show what is now.
            ApiError::PreconditionFailed | ApiError::PreconditionRequired(_) | ApiError::Conflict { .. } => {
                refusal.form = FormState::default();
                refusal.stale = true;
                StatusCode::CONFLICT
            }
            other => return Err(other),
        };
        Ok((status, refusal))
    }
}

//! One problem with one input field: what every layer reports when input does not parse or
//! a required field is missing. Messages name the field and what was expected, never the
//! value sent (personal data must not echo back through an error).

use std::fmt;

use serde::Serialize;
use utoipa::ToSchema;

/// One problem with one input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field, as a JSON path from the body root (e.g. `identifying_details.email`),
    /// or a query/path parameter name.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<FieldProblem> for FieldError {
    fn from(problem: FieldProblem) -> Self {
        Self::new(problem.field, problem.message)
    }
}

/// One problem with one request field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// The request field's name as the API spells it.
    pub field: &'static str,
    pub message: String,
}

/// Records a problem with `field` for `action`, if there is one. `value` is
/// `None` when the field is absent, `Some(false)` when present but blank,
/// `Some(true)` when present and filled.
pub(crate) fn check_field<A: fmt::Display>(
    problems: &mut Vec<FieldProblem>,
    action: A,
    field: &'static str,
    required: bool,
    value: Option<bool>,
) {
    let message = match (required, value) {
        (true, None) => format!("is required to {action}"),
        (true, Some(false)) => format!("must not be blank to {action}"),
        (false, Some(_)) => format!("does not apply to {action}"),
        (true, Some(true)) | (false, None) => return,
    };
    problems.push(FieldProblem { field, message });
}

//! One problem with one input field: what every layer reports when input does not parse or
//! a required field is missing. Messages name the field and what was expected, never the
//! value sent (personal data must not echo back through an error).

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

impl From<crate::domain::referral::FieldProblem> for FieldError {
    fn from(problem: crate::domain::referral::FieldProblem) -> Self {
        Self::new(problem.field, problem.message)
    }
}

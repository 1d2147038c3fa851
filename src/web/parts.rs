//! Pieces several pages show: choices with labels, facts, short references, confirmations.

use serde::Deserialize;

use super::forms::FormPost;
use super::i18n::Tr;
use crate::api::context::Context;
use crate::app::Idempotency;

/// A value a form may choose, with its label.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

pub fn choices<T: std::fmt::Display>(tr: &Tr, kind: &str, all: &[T]) -> Vec<Choice> {
    all.iter()
        .map(|v| Choice {
            value: v.to_string(),
            label: tr.label(kind, v),
        })
        .collect()
}

/// The first characters of an id's random part: enough to tell cases apart on a page.
pub fn short_ref(id: uuid::Uuid) -> String {
    id.simple().to_string()[24..].to_uppercase()
}

pub struct Fact {
    pub term: String,
    pub value: String,
}

pub fn organisation_name(ctx: &Context, slug: &str) -> String {
    ctx.registry()
        .get(slug)
        .map(|o| o.name.clone())
        .unwrap_or_else(|| slug.to_string())
}

#[derive(Deserialize)]
pub struct Done {
    pub done: Option<String>,
}

/// Confirmations a redirect may ask for (`?done=`); anything else is ignored.
pub const NOTICES: [&str; 14] = [
    "case-created",
    "grounds-recorded",
    "consent-recorded",
    "consent-withdrawn",
    "referral-drafted",
    "step-done",
    "capacity-reported",
    "three-way-offered",
    "anonymous-filed",
    "assigned",
    "three-way-step",
    "retried",
    "webhook-paused",
    "webhook-resumed",
];

pub fn notice_of(done: &Option<String>) -> Option<String> {
    done.as_deref()
        .filter(|d| NOTICES.contains(d))
        .map(|d| format!("done-{d}"))
}

/// A form's one-time id, so a double click creates one thing, not two (the API's
/// `Idempotency-Key`).
pub fn form_idempotency(ctx: &Context, form: &FormPost, route: &str, body: &serde_json::Value) -> Idempotency {
    Idempotency {
        key: form.get("form_id").map(|k| format!("web:{k}")),
        route: route.to_string(),
        hash: crate::api::common::request_hash(&ctx.services.keyring, route, body),
    }
}

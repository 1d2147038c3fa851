//! Parsing JSON bodies field by field into domain types, collecting every problem, so a 422
//! lists all bad fields at once and names each. Unknown fields are refused.
//!
//! Messages name the field and what was expected; they never repeat the value sent.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::domain::text::{Text, TextProblem};
use crate::error::{ApiError, FieldError};

pub use crate::app::Patch;

pub struct Fields {
    map: Map<String, Value>,
    prefix: String,
    seen: BTreeSet<String>,
    errors: Vec<FieldError>,
}

impl Fields {
    /// The body must be a JSON object.
    pub fn new(body: Value) -> Result<Self, ApiError> {
        match body {
            Value::Object(map) => Ok(Self::from_map(map, "")),
            _ => Err(ApiError::field("body", "must be a JSON object")),
        }
    }

    fn from_map(map: Map<String, Value>, prefix: &str) -> Self {
        Self {
            map,
            prefix: prefix.to_string(),
            seen: BTreeSet::new(),
            errors: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn error(&mut self, name: &str, message: impl Into<String>) {
        let path = self.path(name);
        self.errors.push(FieldError::new(path, message));
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        self.seen.insert(name.to_string());
        self.map.get(name).cloned()
    }

    /// A field that must be present and not null.
    pub fn required<T>(&mut self, name: &str, parse: impl FnOnce(&Value) -> Result<T, String>) -> Option<T> {
        match self.take(name) {
            None | Some(Value::Null) => {
                self.error(name, "is required");
                None
            }
            Some(value) => match parse(&value) {
                Ok(parsed) => Some(parsed),
                Err(message) => {
                    self.error(name, message);
                    None
                }
            },
        }
    }

    /// A field that may be absent or null. `None` in the outer option means it was invalid.
    pub fn optional<T>(&mut self, name: &str, parse: impl FnOnce(&Value) -> Result<T, String>) -> Option<Option<T>> {
        match self.take(name) {
            None | Some(Value::Null) => Some(None),
            Some(value) => match parse(&value) {
                Ok(parsed) => Some(Some(parsed)),
                Err(message) => {
                    self.error(name, message);
                    None
                }
            },
        }
    }

    /// An optional field with a default when absent.
    pub fn defaulted<T>(
        &mut self,
        name: &str,
        default: T,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Option<T> {
        self.optional(name, parse).map(|v| v.unwrap_or(default))
    }

    /// A PATCH field: absent keeps, null clears (only when `nullable`), a value sets.
    pub fn patch<T>(
        &mut self,
        name: &str,
        nullable: bool,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Option<Patch<T>> {
        match self.take(name) {
            None => Some(Patch::Keep),
            Some(Value::Null) if nullable => Some(Patch::Clear),
            Some(Value::Null) => {
                self.error(name, "cannot be cleared");
                None
            }
            Some(value) => match parse(&value) {
                Ok(parsed) => Some(Patch::Set(parsed)),
                Err(message) => {
                    self.error(name, message);
                    None
                }
            },
        }
    }

    /// Whether the field is present and `null` (PATCH: clear it).
    pub fn is_null(&self, name: &str) -> bool {
        matches!(self.map.get(name), Some(Value::Null))
    }

    /// A nested object, parsed with its own `Fields` (errors carry `name.` as prefix).
    pub fn object<T>(&mut self, name: &str, parse: impl FnOnce(&mut Fields) -> Option<T>) -> Option<Option<T>> {
        match self.take(name) {
            None | Some(Value::Null) => Some(None),
            Some(Value::Object(map)) => {
                let mut inner = Fields::from_map(map, &format!("{}{name}.", self.prefix));
                let parsed = parse(&mut inner);
                inner.reject_unknown();
                let ok = inner.errors.is_empty();
                self.errors.append(&mut inner.errors);
                if ok { parsed.map(Some) } else { None }
            }
            Some(_) => {
                self.error(name, "must be an object");
                None
            }
        }
    }

    fn reject_unknown(&mut self) {
        let unknown: Vec<String> = self.map.keys().filter(|k| !self.seen.contains(*k)).cloned().collect();
        for key in unknown {
            // The key is the client's text: show it only when it is a plain identifier.
            let shown = if key.len() <= 64 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                key
            } else {
                "(unnamed)".into()
            };
            self.error(&shown, "is not a known field");
        }
    }

    /// Ends parsing: any problem, including unknown fields, is a 422 listing them all.
    pub fn finish(mut self) -> Result<(), ApiError> {
        self.reject_unknown();
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

// Parsers for common shapes. Each returns a message for the field on failure.

pub fn string(value: &Value) -> Result<&str, String> {
    value.as_str().ok_or_else(|| "must be a string".to_string())
}

pub fn boolean(value: &Value) -> Result<bool, String> {
    value.as_bool().ok_or_else(|| "must be true or false".to_string())
}

pub fn integer(value: &Value) -> Result<i64, String> {
    value.as_i64().ok_or_else(|| "must be a whole number".to_string())
}

pub fn date(value: &Value) -> Result<NaiveDate, String> {
    let text = string(value)?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| "must be a date as YYYY-MM-DD".to_string())
}

/// One of an enum's snake_case names; the message lists them.
pub fn one_of<E: FromStr + Copy>(
    all: &[E],
    names: fn(&E) -> &'static str,
) -> impl Fn(&Value) -> Result<E, String> + '_ {
    move |value| {
        let text = string(value)?;
        all.iter().copied().find(|e| names(e) == text).ok_or_else(|| {
            format!(
                "must be one of: {}",
                all.iter().map(names).collect::<Vec<_>>().join(", ")
            )
        })
    }
}

pub fn text_with(parse: fn(&str) -> Result<Text, TextProblem>) -> impl Fn(&Value) -> Result<Text, String> {
    move |value| parse(string(value)?).map_err(|p| p.to_string())
}

pub fn line(value: &Value) -> Result<Text, String> {
    text_with(Text::line)(value)
}

pub fn note(value: &Value) -> Result<Text, String> {
    text_with(Text::note)(value)
}

pub fn uuid(value: &Value) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(string(value)?).map_err(|_| "must be a UUID".to_string())
}

/// A non-empty list of distinct strings, each parsed by `item`.
pub fn list_of<T: PartialEq>(value: &Value, item: impl Fn(&Value) -> Result<T, String>) -> Result<Vec<T>, String> {
    let items = value.as_array().ok_or_else(|| "must be a list".to_string())?;
    if items.is_empty() {
        return Err("must not be empty".into());
    }
    if items.len() > 32 {
        return Err("must have at most 32 entries".into());
    }
    let mut out = Vec::new();
    for (index, raw) in items.iter().enumerate() {
        let parsed = item(raw).map_err(|m| format!("entry {index} {m}"))?;
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn collects_every_problem_with_its_path() {
        let mut fields = Fields::new(json!({
            "a": 5, "c": "2024-13-01", "extra": true, "nested": {"x": "", "y": 1}
        }))
        .unwrap();
        assert_eq!(fields.required("a", |v| string(v).map(str::to_string)), None);
        assert_eq!(fields.required("b", boolean), None);
        assert_eq!(fields.optional("c", date), None);
        let nested = fields.object("nested", |inner| inner.required("x", line));
        assert_eq!(nested, None);
        let Err(ApiError::Validation(errors)) = fields.finish() else {
            panic!("expected validation")
        };
        let paths: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(paths, vec!["a", "b", "c", "nested.x", "nested.y", "extra"]);
    }

    #[test]
    fn patch_semantics() {
        let mut fields = Fields::new(json!({"keep_me": null, "set": "x"})).unwrap();
        assert_eq!(fields.patch("absent", true, line), Some(Patch::Keep));
        assert_eq!(fields.patch("keep_me", true, line), Some(Patch::Clear));
        assert!(matches!(fields.patch("set", true, line), Some(Patch::Set(_))));
        assert!(fields.finish().is_ok());
        let mut fields = Fields::new(json!({"required_thing": null})).unwrap();
        assert_eq!(fields.patch("required_thing", false, line), None);
        assert!(fields.finish().is_err());
    }
}

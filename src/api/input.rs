//! Parsing JSON bodies field by field into domain types, collecting every problem, so a 422
//! lists all bad fields at once and names each. Unknown fields are refused.
//!
//! Messages name the field and what was expected; they never repeat the value sent.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::OnceLock;

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
    /// The documented schema of this body; every field read is checked against it.
    schema: Option<&'static BodySchema>,
    /// Fields read otherwise than the document describes them: a bug, reported at finish.
    undocumented: Vec<String>,
}

/// What the OpenAPI document says of one request body: its fields, which are required, and
/// which hold a nested object (by schema name). The parser is held to it, so the document
/// and what the API accepts cannot drift apart.
#[derive(Debug, Default)]
pub struct BodySchema {
    properties: BTreeSet<String>,
    required: BTreeSet<String>,
    nested: BTreeMap<String, String>,
    /// The JSON type of each field (`string`, `integer`, `boolean`, `array`, `object`), so a
    /// form's text values become the JSON the same parser reads.
    kinds: BTreeMap<String, String>,
}

/// Every object schema of the document, read once.
fn schemas() -> &'static BTreeMap<String, BodySchema> {
    static SCHEMAS: OnceLock<BTreeMap<String, BodySchema>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let document = serde_json::to_value(crate::api::openapi()).unwrap_or(Value::Null);
        let mut out = BTreeMap::new();
        let Some(components) = document.pointer("/components/schemas").and_then(Value::as_object) else {
            return out;
        };
        for (name, schema) in components {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                if schema.get("type").and_then(Value::as_str) == Some("object") {
                    out.insert(name.clone(), BodySchema::default());
                }
                continue;
            };
            let mut body = BodySchema::default();
            for (field, property) in properties {
                body.properties.insert(field.clone());
                let reference = property
                    .get("$ref")
                    .or_else(|| {
                        property
                            .get("oneOf")
                            .and_then(Value::as_array)
                            .and_then(|options| options.iter().find_map(|o| o.get("$ref")))
                    })
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/components/schemas/"));
                let declared = match property.get("type") {
                    Some(Value::String(kind)) => Some(kind.clone()),
                    Some(Value::Array(kinds)) => kinds
                        .iter()
                        .filter_map(Value::as_str)
                        .find(|k| *k != "null")
                        .map(str::to_string),
                    _ => None,
                };
                let referenced = reference.and_then(|target| {
                    components
                        .get(target)
                        .and_then(|s| s.get("type"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                });
                if let Some(kind) = declared.or(referenced) {
                    body.kinds.insert(field.clone(), kind);
                }
                if let Some(target) = reference {
                    body.nested.insert(field.clone(), target.to_string());
                }
            }
            for field in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                if let Some(field) = field.as_str() {
                    body.required.insert(field.to_string());
                }
            }
            out.insert(name.clone(), body);
        }
        out
    })
}

impl Fields {
    /// The body must be a JSON object, parsed as the document's schema `schema` describes.
    pub fn new(body: Value, schema: &str) -> Result<Self, ApiError> {
        let documented = schemas()
            .get(schema)
            .ok_or_else(|| ApiError::internal(format!("no schema {schema} in the OpenAPI document")))?;
        match body {
            Value::Object(map) => Ok(Self::from_map(map, "", Some(documented))),
            _ => Err(ApiError::field("body", "must be a JSON object")),
        }
    }

    /// Notes a field read as `required` (or not) that the document describes otherwise.
    fn check(&mut self, name: &str, required: bool) {
        if let Some(schema) = self.schema {
            let known = schema.properties.contains(name);
            if !known || schema.required.contains(name) != required {
                self.undocumented.push(format!("{}{name}", self.prefix));
            }
        }
    }

    fn from_map(map: Map<String, Value>, prefix: &str, schema: Option<&'static BodySchema>) -> Self {
        Self {
            map,
            prefix: prefix.to_string(),
            seen: BTreeSet::new(),
            errors: Vec::new(),
            schema,
            undocumented: Vec::new(),
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
        self.check(name, true);
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
        self.check(name, false);
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
        self.check(name, false);
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
        self.check(name, false);
        let nested = self
            .schema
            .and_then(|s| s.nested.get(name))
            .and_then(|target| schemas().get(target));
        if self.schema.is_some() && nested.is_none() {
            self.undocumented.push(format!("{}{name} (an object)", self.prefix));
        }
        match self.take(name) {
            None | Some(Value::Null) => Some(None),
            Some(Value::Object(map)) => {
                let mut inner = Fields::from_map(map, &format!("{}{name}.", self.prefix), nested);
                let parsed = parse(&mut inner);
                inner.reject_unknown();
                let ok = inner.errors.is_empty();
                self.errors.append(&mut inner.errors);
                self.undocumented.append(&mut inner.undocumented);
                // A nested parser stops at its first bad field; only a clean one must have
                // read every documented field.
                if ok {
                    inner.missed_documented(&mut self.undocumented);
                }
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

    /// Documented fields this parser never read.
    fn missed_documented(&self, out: &mut Vec<String>) {
        if let Some(schema) = self.schema {
            for field in schema.properties.difference(&self.seen) {
                out.push(format!("{}{field} (never read)", self.prefix));
            }
        }
    }

    /// Ends parsing: any problem, including unknown fields, is a 422 listing them all. A
    /// parser that reads differently from the document is a bug: 500, with the fields in
    /// the log.
    pub fn finish(mut self) -> Result<(), ApiError> {
        let mut disagree = std::mem::take(&mut self.undocumented);
        if self.errors.is_empty() {
            self.missed_documented(&mut disagree);
        }
        if !disagree.is_empty() {
            return Err(ApiError::internal(format!(
                "the parser and the OpenAPI document disagree on: {}",
                disagree.join(", ")
            )));
        }
        self.reject_unknown();
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// A form post as the JSON body the API's parser for `schema` reads: field names are the
/// API's property names (`identifying_details.name` for a nested one), and each text value
/// becomes the JSON type the document gives the field. An empty value is an absent field;
/// a value that is not of the field's type stays text, and the parser names the problem.
pub fn form_to_json(schema: &str, pairs: &[(String, String)]) -> Result<Value, ApiError> {
    let all = schemas();
    let documented = all
        .get(schema)
        .ok_or_else(|| ApiError::internal(format!("no schema {schema} in the OpenAPI document")))?;
    let mut out = Map::new();
    for (name, raw) in pairs {
        let value = raw.trim();
        if value.is_empty() {
            continue;
        }
        let (target, body, field) = match name.split_once('.') {
            Some((outer, inner)) => {
                let nested = documented.nested.get(outer).and_then(|t| all.get(t));
                let object = out
                    .entry(outer.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                match (object, nested) {
                    (Value::Object(object), Some(nested)) => (object, Some(nested), inner),
                    _ => return Err(ApiError::field(outer, "is not an object")),
                }
            }
            None => (&mut out, Some(documented), name.as_str()),
        };
        let kind = body.and_then(|b| b.kinds.get(field)).map(String::as_str);
        let converted = match kind {
            Some("integer") => value
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(value)),
            Some("boolean") => match value {
                "true" | "on" => Value::Bool(true),
                "false" => Value::Bool(false),
                other => Value::from(other),
            },
            _ => Value::from(value),
        };
        if kind == Some("array") {
            match target
                .entry(field.to_string())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                Value::Array(items) => items.push(converted),
                _ => return Err(ApiError::field(field, "is sent twice")),
            }
        } else if target.insert(field.to_string(), converted).is_some() {
            return Err(ApiError::field(field, "is sent twice"));
        }
    }
    Ok(Value::Object(out))
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

    impl Fields {
        fn untyped(body: Value) -> Self {
            match body {
                Value::Object(map) => Fields::from_map(map, "", None),
                _ => panic!("not an object"),
            }
        }
    }

    #[test]
    fn every_body_is_read_as_its_schema_says() {
        // A parser reading a field the document lacks, or missing one it has, is a bug.
        let mut fields = Fields::new(json!({"name": "Anna"}), "SearchInput").unwrap();
        assert!(fields.required("name", line).is_some());
        assert!(fields.finish().is_ok());
        let mut fields = Fields::new(json!({"name": "Anna"}), "SearchInput").unwrap();
        assert!(fields.optional("name", line).is_some(), "documented as required");
        assert!(matches!(fields.finish(), Err(ApiError::Internal(_))));
        let fields = Fields::new(json!({}), "SearchInput").unwrap();
        assert!(matches!(fields.finish(), Err(ApiError::Internal(m)) if m.contains("name (never read)")));
        let mut fields = Fields::new(json!({}), "SearchInput").unwrap();
        let _ = fields.required("name", line);
        let _ = fields.optional("nickname", line);
        assert!(matches!(fields.finish(), Err(ApiError::Internal(m)) if m.contains("nickname")));
    }

    #[test]
    fn collects_every_problem_with_its_path() {
        let mut fields = Fields::untyped(json!({
            "a": 5, "c": "2024-13-01", "extra": true, "nested": {"x": "", "y": 1}
        }));
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
    fn a_form_becomes_the_json_body_its_schema_describes() {
        let pairs: Vec<(String, String)> = [
            ("reporter_role", "victim"),
            ("age_at_contact", "17"),
            ("age_uncertain", "true"),
            ("exploitation_forms", "sexual"),
            ("exploitation_forms", "criminal"),
            ("pseudonym", "  "),
            ("identifying_details.name", "Anna"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let body = form_to_json("CaseInput", &pairs).unwrap();
        assert_eq!(
            body,
            json!({
                "reporter_role": "victim", "age_at_contact": 17, "age_uncertain": true,
                "exploitation_forms": ["sexual", "criminal"], "identifying_details": {"name": "Anna"}
            })
        );
        let twice = [
            ("age_at_contact".to_string(), "1".to_string()),
            ("age_at_contact".to_string(), "2".to_string()),
        ];
        assert!(form_to_json("CaseInput", &twice).is_err());
        let not_a_number = [("age_at_contact".to_string(), "seventeen".to_string())];
        assert_eq!(
            form_to_json("CaseInput", &not_a_number).unwrap(),
            json!({"age_at_contact": "seventeen"})
        );
    }

    #[test]
    fn patch_semantics() {
        let mut fields = Fields::untyped(json!({"keep_me": null, "set": "x"}));
        assert_eq!(fields.patch("absent", true, line), Some(Patch::Keep));
        assert_eq!(fields.patch("keep_me", true, line), Some(Patch::Clear));
        assert!(matches!(fields.patch("set", true, line), Some(Patch::Set(_))));
        assert!(fields.finish().is_ok());
        let mut fields = Fields::untyped(json!({"required_thing": null}));
        assert_eq!(fields.patch("required_thing", false, line), None);
        assert!(fields.finish().is_err());
    }
}

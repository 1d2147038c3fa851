//! The words on the pages: message catalogues per language, Dutch first.
//!
//! Catalogues are files in Fluent syntax (`web/i18n/nl.ftl`, `web/i18n/en.ftl`), embedded in
//! the binary. Only the part of Fluent the pages need is read: `key = text` messages,
//! continuation lines indented by spaces, `#` comments, and `{ $name }` placeables. Anything
//! else in a catalogue is a start-up error, not a silent gap; a test checks that both
//! languages have exactly the same keys.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Nl,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Nl, Lang::En];

    /// The BCP 47 tag, for `lang` attributes.
    pub fn code(&self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }

    pub fn parse(text: &str) -> Option<Lang> {
        match text.trim().to_ascii_lowercase().as_str() {
            "nl" => Some(Lang::Nl),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first language of an `Accept-Language` header the pages have, by quality; Dutch
    /// when none fits.
    pub fn negotiate(accept_language: Option<&str>) -> Lang {
        let Some(header) = accept_language else {
            return Lang::Nl;
        };
        let mut offers: Vec<(f32, usize, Lang)> = Vec::new();
        for (position, item) in header.split(',').enumerate() {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            if let Some(lang) = Lang::parse(primary)
                && quality > 0.0
            {
                offers.push((quality, position, lang));
            }
        }
        offers.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        offers.first().map(|o| o.2).unwrap_or(Lang::Nl)
    }

    fn source(&self) -> &'static str {
        match self {
            Lang::Nl => include_str!("../../web/i18n/nl.ftl"),
            Lang::En => include_str!("../../web/i18n/en.ftl"),
        }
    }
}

/// One language's messages.
#[derive(Debug, Default)]
pub struct Catalogue {
    messages: BTreeMap<String, String>,
}

/// A line of a catalogue that is not in the subset of Fluent read here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct CatalogueError {
    pub line: usize,
    pub problem: String,
}

impl Catalogue {
    pub fn parse(source: &str) -> Result<Self, CatalogueError> {
        let mut messages: BTreeMap<String, String> = BTreeMap::new();
        let mut current: Option<String> = None;
        for (index, raw) in source.lines().enumerate() {
            let line = index + 1;
            let problem = |problem: &str| CatalogueError {
                line,
                problem: problem.to_string(),
            };
            if raw.trim().is_empty() {
                current = None;
                continue;
            }
            if raw.starts_with('#') {
                continue;
            }
            if raw.starts_with(' ') {
                let key = current
                    .as_ref()
                    .ok_or_else(|| problem("an indented line belongs to no message"))?;
                let text = messages.entry(key.clone()).or_default();
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(raw.trim());
                continue;
            }
            let (key, value) = raw.split_once('=').ok_or_else(|| problem("expected `key = text`"))?;
            let key = key.trim();
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(problem("a key is letters, digits, `-` and `_`"));
            }
            if messages.contains_key(key) {
                return Err(problem(&format!("`{key}` is defined twice")));
            }
            messages.insert(key.to_string(), value.trim().to_string());
            current = Some(key.to_string());
        }
        for (key, text) in &messages {
            if text.is_empty() {
                return Err(CatalogueError {
                    line: 0,
                    problem: format!("`{key}` has no text"),
                });
            }
        }
        Ok(Self { messages })
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.messages.keys().map(String::as_str)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.messages.get(key).map(String::as_str)
    }
}

/// Both catalogues, parsed once. A catalogue that does not parse is a build defect: the
/// test suite parses them, and here the broken one is reported with its line.
pub fn catalogue(lang: Lang) -> &'static Catalogue {
    static CATALOGUES: OnceLock<[Catalogue; 2]> = OnceLock::new();
    let all = CATALOGUES.get_or_init(|| {
        Lang::ALL.map(|l| {
            Catalogue::parse(l.source()).unwrap_or_else(|e| {
                tracing::error!(lang = l.code(), "message catalogue does not parse: {e}");
                Catalogue::default()
            })
        })
    });
    match lang {
        Lang::Nl => &all[0],
        Lang::En => &all[1],
    }
}

/// The messages of one language, as templates use them.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    pub lang: Lang,
}

impl Tr {
    pub fn new(lang: Lang) -> Self {
        Self { lang }
    }

    /// The message `key`. A missing key shows as the key itself (and the test suite fails).
    pub fn t(&self, key: &str) -> String {
        catalogue(self.lang).get(key).unwrap_or(key).to_string()
    }

    /// The message `key` with its placeables filled in.
    pub fn with(&self, key: &str, args: &[(&str, &str)]) -> String {
        fill(catalogue(self.lang).get(key).unwrap_or(key), args)
    }

    /// A message with one placeable, for templates.
    pub fn t1(&self, key: &str, name: &str, value: &dyn std::fmt::Display) -> String {
        self.with(key, &[(name, &value.to_string())])
    }

    /// The label of a stored value: `state-accepted`, `form-sexual`. A code a deployment
    /// added to its registry (a service, a region) without a label shows as the code.
    pub fn label(&self, kind: &str, value: &dyn std::fmt::Display) -> String {
        let value = value.to_string();
        catalogue(self.lang)
            .get(&format!("{kind}-{value}"))
            .map(str::to_string)
            .unwrap_or(value)
    }

    pub fn code(&self) -> &'static str {
        self.lang.code()
    }

    /// The label of a form field named as the API names it (`field-contact_date`).
    pub fn field(&self, name: &str) -> String {
        self.t(&format!("field-{name}"))
    }

    /// What a form field is for and what it takes (`hint-contact_date`).
    pub fn hint(&self, name: &str) -> String {
        self.t(&format!("hint-{name}"))
    }
}

/// Replaces `{ $name }` by its value.
fn fill(text: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim().trim_start_matches('$');
        match args.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[start..start + end + 2]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogues_parse_and_have_the_same_keys() {
        let nl = Catalogue::parse(Lang::Nl.source()).unwrap();
        let en = Catalogue::parse(Lang::En.source()).unwrap();
        let only_nl: Vec<&str> = nl.keys().filter(|k| en.get(k).is_none()).collect();
        let only_en: Vec<&str> = en.keys().filter(|k| nl.get(k).is_none()).collect();
        assert!(only_nl.is_empty(), "missing in en.ftl: {only_nl:?}");
        assert!(only_en.is_empty(), "missing in nl.ftl: {only_en:?}");
        assert!(nl.keys().count() > 50);
    }

    #[test]
    fn the_subset_of_fluent_is_read_and_the_rest_refused() {
        let catalogue = Catalogue::parse("# comment\nhello = Hallo { $name },\n  welkom.\n\nbye = Dag").unwrap();
        assert_eq!(catalogue.get("hello"), Some("Hallo { $name }, welkom."));
        assert_eq!(
            fill(catalogue.get("hello").unwrap(), &[("name", "Anna")]),
            "Hallo Anna, welkom."
        );
        assert!(Catalogue::parse("a = 1\na = 2").is_err());
        assert!(Catalogue::parse("no equals sign").is_err());
        assert!(Catalogue::parse("-term = x").is_ok());
        assert!(Catalogue::parse("key.attr = x").is_err());
        assert!(Catalogue::parse("  dangling").is_err());
        assert!(Catalogue::parse("empty =").is_err());
    }

    #[test]
    fn accept_language_picks_the_best_language_the_pages_have() {
        assert_eq!(Lang::negotiate(None), Lang::Nl);
        assert_eq!(Lang::negotiate(Some("en-GB,en;q=0.9")), Lang::En);
        assert_eq!(Lang::negotiate(Some("de-DE, en;q=0.5, nl;q=0.8")), Lang::Nl);
        assert_eq!(Lang::negotiate(Some("fr, de")), Lang::Nl);
        assert_eq!(Lang::negotiate(Some("en;q=0, nl;q=0.1")), Lang::Nl);
        assert_eq!(Lang::negotiate(Some("EN")), Lang::En);
    }
}

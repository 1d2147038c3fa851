//! Text that people type: names, notes, reasons. Parsed once at the edge so the rest of the
//! code never sees control characters (PostgreSQL refuses NUL), untrimmed or endless text.

use serde::Serialize;

/// A text value that names no variant of the enum it was parsed for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownVariant {
    /// The enum that was being parsed, e.g. `ReferralState`.
    pub kind: &'static str,
    /// The text that did not match.
    pub value: String,
}

/// Declares a fieldless enum that is stored and sent as snake_case text.
///
/// Each variant is written with its text (`Variant = "variant"`); the macro
/// adds the serde derives with `rename_all = "snake_case"`, `as_str`,
/// `Display`, `FromStr` (error: [`UnknownVariant`]) and `const ALL`, in
/// declaration order. Every module's tests check that serde's text and
/// `as_str` agree.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            ::serde::Serialize, ::serde::Deserialize, ::utoipa::ToSchema,
        )]
        #[serde(rename_all = "snake_case")]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [Self; [$($text),+].len()] = [$(Self::$variant),+];

            /// The stored and serialised text of this variant.
            pub const fn as_str(&self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::text::UnknownVariant;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok(Self::$variant), )+
                    _ => Err($crate::domain::text::UnknownVariant {
                        kind: stringify!($name),
                        value: s.to_owned(),
                    }),
                }
            }
        }
    };
}
pub(crate) use text_enum;

/// A problem with a piece of text, phrased for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextProblem {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {0} characters")]
    TooLong(usize),
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("{0}")]
    Format(&'static str),
}

/// Trimmed, non-empty text of bounded length without control characters (newlines and tabs
/// are allowed when `multiline`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Text(String);

impl Text {
    pub fn parse(input: &str, max_chars: usize, multiline: bool) -> Result<Self, TextProblem> {
        let text = input.trim();
        if text.is_empty() {
            return Err(TextProblem::Empty);
        }
        if text.chars().count() > max_chars {
            return Err(TextProblem::TooLong(max_chars));
        }
        if text
            .chars()
            .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t' || c == '\r')))
        {
            return Err(TextProblem::ControlCharacter);
        }
        Ok(Text(text.to_string()))
    }

    /// A single line, e.g. a name or a pseudonym.
    pub fn line(input: &str) -> Result<Self, TextProblem> {
        Self::parse(input, 200, false)
    }

    /// A free-text note or reason.
    pub fn note(input: &str) -> Result<Self, TextProblem> {
        Self::parse(input, 4000, true)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A BCP 47 language tag such as `nl`, `en`, `ro`, `ti`, `pt-BR` (simplified: a 2–3 letter
/// primary language and optional 2–8 character subtags). Stored in canonical case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct LanguageTag(String);

impl LanguageTag {
    pub fn parse(input: &str) -> Result<Self, TextProblem> {
        const PROBLEM: TextProblem = TextProblem::Format("must be a language tag such as `nl`, `en` or `pt-BR`");
        let mut parts = input.trim().split('-');
        let primary = parts.next().unwrap_or("");
        if !(2..=3).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(PROBLEM);
        }
        let mut canonical = primary.to_ascii_lowercase();
        for part in parts {
            if !(2..=8).contains(&part.len()) || !part.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(PROBLEM);
            }
            canonical.push('-');
            // Region subtags are upper case by convention (pt-BR), others lower case.
            if part.len() == 2 {
                canonical.push_str(&part.to_ascii_uppercase());
            } else {
                canonical.push_str(&part.to_ascii_lowercase());
            }
        }
        Ok(LanguageTag(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A value sealed at rest (`crate::crypto`): ciphertext the domain carries but cannot read.
/// Empty once erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed(pub String);

impl Sealed {
    pub fn is_erased(&self) -> bool {
        self.0.is_empty()
    }
}

/// The normalisation scheme `name_key` implements (stored with each blind index).
pub const NAME_KEY_SCHEME: i32 = 2;

/// The form of a name that its blind index is computed from, so that every way of typing
/// the same name finds the same case: Unicode compatibility caseless matching (Unicode
/// §3.13, D146: NFKD(casefold(NFKD(casefold(NFD(name)))))), then runs of white space as one
/// space, trimmed. "Zoë Ångström" in NFC or NFD, "ZOË ÅNGSTRÖM", "ﬁ" as "fi", full-width
/// letters, "Straße" and "STRASSE" all meet. Accents are kept: "Zoe" is another name.
pub fn name_key(name: &str) -> String {
    use caseless::Caseless;
    use unicode_normalization::UnicodeNormalization;
    let folded: String = name
        .nfd()
        .default_case_fold()
        .nfkd()
        .default_case_fold()
        .nfkd()
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An e-mail address, checked for shape only (the person may have given an alias).
pub fn parse_email(input: &str) -> Result<Text, TextProblem> {
    let text = Text::parse(input, 254, false)?;
    let valid = match text.as_str().split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !text.as_str().contains(char::is_whitespace)
        }
        None => false,
    };
    if valid {
        Ok(text)
    } else {
        Err(TextProblem::Format("must be an e-mail address"))
    }
}

/// A phone number: digits with optional leading `+` and spaces, dashes, dots or brackets.
pub fn parse_phone(input: &str) -> Result<Text, TextProblem> {
    let text = Text::parse(input, 32, false)?;
    let digits = text.as_str().chars().filter(char::is_ascii_digit).count();
    let allowed = text
        .as_str()
        .char_indices()
        .all(|(i, c)| c.is_ascii_digit() || " -.()".contains(c) || (c == '+' && i == 0));
    if allowed && (6..=15).contains(&digits) {
        Ok(text)
    } else {
        Err(TextProblem::Format(
            "must be a phone number (6 to 15 digits, optional leading +)",
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_name_has_one_key() {
        let nfc = "Zo\u{eb} \u{c5}ngstr\u{f6}m";
        let nfd = "Zoe\u{308} A\u{30a}ngstro\u{308}m";
        assert_ne!(nfc, nfd);
        let key = name_key(nfc);
        for spelling in [
            nfd,
            "ZOË ÅNGSTRÖM",
            "  zoë\t ångström ",
            "Zo\u{eb}\u{a0}\u{c5}ngstr\u{f6}m",
        ] {
            assert_eq!(name_key(spelling), key, "{spelling:?}");
        }
        assert_eq!(name_key("Straße"), name_key("STRASSE"));
        assert_eq!(name_key("\u{fb01}lip"), name_key("Filip"), "ligatures fold");
        assert_eq!(name_key("ＡＮＮＡ"), name_key("anna"), "full-width letters fold");
        assert_ne!(name_key("Zoe"), key, "accents are part of the name");
        assert_ne!(name_key("Anna Bakker"), name_key("Anna  Bakkers"));
    }

    #[test]
    fn text_rules() {
        assert_eq!(Text::line("  Anna  ").unwrap().as_str(), "Anna");
        assert_eq!(Text::line("   "), Err(TextProblem::Empty));
        assert_eq!(Text::line("a\u{0}b"), Err(TextProblem::ControlCharacter));
        assert_eq!(Text::line("a\nb"), Err(TextProblem::ControlCharacter));
        assert!(Text::note("line one\nline two").is_ok());
        assert_eq!(Text::line(&"x".repeat(201)), Err(TextProblem::TooLong(200)));
        assert!(Text::line(&"é".repeat(200)).is_ok());
    }

    #[test]
    fn language_tags() {
        assert_eq!(LanguageTag::parse("NL").unwrap().as_str(), "nl");
        assert_eq!(LanguageTag::parse("pt-br").unwrap().as_str(), "pt-BR");
        assert_eq!(LanguageTag::parse("ti").unwrap().as_str(), "ti");
        for bad in ["", "n", "dutch", "nl_NL", "nl-", "1a"] {
            assert!(LanguageTag::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_and_phones() {
        assert!(parse_email("a@b.nl").is_ok());
        for bad in ["a", "a@b", "@b.nl", "a b@c.nl", "a@b@c.nl"] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
        assert!(parse_phone("+31 6 1234 5678").is_ok());
        assert!(parse_phone("06-12345678").is_ok());
        for bad in ["12", "phone", "+31+6123456", "0612345678901234567"] {
            assert!(parse_phone(bad).is_err(), "{bad}");
        }
    }
}

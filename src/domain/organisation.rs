//! The organisation registry: partner organisations, the services they offer and the regions
//! they serve, parsed and checked from the text of `config/organisations.toml`.
//!
//! Pure: takes the file's text and returns a `Registry` or a problem with its line. Reading
//! the file and storing the registry happen elsewhere.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// What kind of organisation this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrganisationKind {
    SupportOrganisation,
    NationalCoordinator,
    CareCoordination,
    Guardianship,
    Police,
    SpecialistCare,
}

impl OrganisationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SupportOrganisation => "support_organisation",
            Self::NationalCoordinator => "national_coordinator",
            Self::CareCoordination => "care_coordination",
            Self::Guardianship => "guardianship",
            Self::Police => "police",
            Self::SpecialistCare => "specialist_care",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::SupportOrganisation,
            Self::NationalCoordinator,
            Self::CareCoordination,
            Self::Guardianship,
            Self::Police,
            Self::SpecialistCare,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// The region code that means "the whole country".
pub const NATIONAL: &str = "national";

/// One partner organisation, as checked against the registry's vocabularies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub slug: String,
    pub name: String,
    pub kind: OrganisationKind,
    pub services: Vec<String>,
    /// `["national"]` or region codes.
    pub regions: Vec<String>,
    pub intake_email: String,
    pub accepts_minors: bool,
    pub available_24_7: bool,
    /// The national focal point for referrals (Directive 2011/36/EU Art. 11(4)); exactly one.
    pub focal_point: bool,
}

impl Organisation {
    pub fn is_national(&self) -> bool {
        self.regions.iter().any(|r| r == NATIONAL)
    }

    pub fn serves_region(&self, region: &str) -> bool {
        self.is_national() || self.regions.iter().any(|r| r == region)
    }

    pub fn offers(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }
}

/// The whole registry: vocabularies and organisations by slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub services: BTreeSet<String>,
    pub regions: BTreeSet<String>,
    pub organisations: BTreeMap<String, Organisation>,
}

/// A problem in the registry file, with the 1-based line where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct RegistryProblem {
    pub line: usize,
    pub problem: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    services: Vec<toml::Spanned<String>>,
    regions: Vec<toml::Spanned<String>>,
    #[serde(default)]
    organisation: Vec<toml::Spanned<OrganisationEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrganisationEntry {
    slug: String,
    name: String,
    kind: OrganisationKind,
    services: Vec<String>,
    regions: Vec<String>,
    intake_email: String,
    accepts_minors: bool,
    available_24_7: bool,
    #[serde(default)]
    focal_point: bool,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map(|before| before.matches('\n').count() + 1)
        .unwrap_or(1)
}

/// A slug: lowercase ASCII letters, digits and single hyphens, 2 to 64 characters.
pub fn is_valid_slug(slug: &str) -> bool {
    (2..=64).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && !slug.contains("--")
}

fn is_plausible_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text
                    .chars()
                    .any(|c| c.is_whitespace() || c == ',' || c == ';')
                && !domain.contains('@')
        }
        None => false,
    }
}

impl Registry {
    /// Parses and checks the registry file's text.
    pub fn parse(text: &str) -> Result<Self, RegistryProblem> {
        let file: RegistryFile = toml::from_str(text).map_err(|e| RegistryProblem {
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(1),
            problem: e.message().to_string(),
        })?;
        let mut services = BTreeSet::new();
        for service in &file.services {
            let line = line_of(text, service.span().start);
            if !is_valid_code(service.get_ref()) {
                return Err(RegistryProblem {
                    line,
                    problem: format!("service `{}` is not a snake_case code", service.get_ref()),
                });
            }
            if !services.insert(service.get_ref().clone()) {
                return Err(RegistryProblem {
                    line,
                    problem: format!("service `{}` is listed twice", service.get_ref()),
                });
            }
        }
        let mut regions = BTreeSet::new();
        for region in &file.regions {
            let line = line_of(text, region.span().start);
            if region.get_ref() == NATIONAL || !is_valid_slug(region.get_ref()) {
                return Err(RegistryProblem {
                    line,
                    problem: format!("region `{}` is not a valid region code", region.get_ref()),
                });
            }
            if !regions.insert(region.get_ref().clone()) {
                return Err(RegistryProblem {
                    line,
                    problem: format!("region `{}` is listed twice", region.get_ref()),
                });
            }
        }
        let mut organisations = BTreeMap::new();
        for spanned in &file.organisation {
            let line = line_of(text, spanned.span().start);
            let entry = spanned.get_ref();
            let fail = |problem: String| RegistryProblem {
                line,
                problem: format!("organisation `{}`: {problem}", entry.slug),
            };
            if !is_valid_slug(&entry.slug) {
                return Err(fail(
                    "slug must be 2-64 lowercase letters, digits and single hyphens".into(),
                ));
            }
            if entry.name.trim().is_empty() {
                return Err(fail("name is empty".into()));
            }
            if entry.services.is_empty() {
                return Err(fail("offers no services".into()));
            }
            if let Some(unknown) = entry.services.iter().find(|s| !services.contains(*s)) {
                return Err(fail(format!(
                    "service `{unknown}` is not in the `services` list"
                )));
            }
            if entry.regions.is_empty() {
                return Err(fail(
                    "serves no regions (use [\"national\"] for the whole country)".into(),
                ));
            }
            if entry.regions.iter().any(|r| r == NATIONAL) && entry.regions.len() > 1 {
                return Err(fail(
                    "`national` cannot be combined with other regions".into(),
                ));
            }
            if let Some(unknown) = entry
                .regions
                .iter()
                .find(|r| *r != NATIONAL && !regions.contains(*r))
            {
                return Err(fail(format!(
                    "region `{unknown}` is not in the `regions` list"
                )));
            }
            if !is_plausible_email(&entry.intake_email) {
                return Err(fail("intake_email is not an e-mail address".into()));
            }
            let organisation = Organisation {
                slug: entry.slug.clone(),
                name: entry.name.trim().to_string(),
                kind: entry.kind,
                services: entry.services.clone(),
                regions: entry.regions.clone(),
                intake_email: entry.intake_email.clone(),
                accepts_minors: entry.accepts_minors,
                available_24_7: entry.available_24_7,
                focal_point: entry.focal_point,
            };
            if organisations
                .insert(entry.slug.clone(), organisation)
                .is_some()
            {
                return Err(fail("slug is used twice".into()));
            }
        }
        let focal_points: Vec<&String> = organisations
            .values()
            .filter(|o| o.focal_point)
            .map(|o| &o.slug)
            .collect();
        if focal_points.len() != 1 {
            return Err(RegistryProblem {
                line: 1,
                problem: format!(
                    "exactly one organisation must have focal_point = true (the national focal point); found {}",
                    focal_points.len()
                ),
            });
        }
        Ok(Registry {
            services,
            regions,
            organisations,
        })
    }

    pub fn get(&self, slug: &str) -> Option<&Organisation> {
        self.organisations.get(slug)
    }

    pub fn focal_point(&self) -> Option<&Organisation> {
        self.organisations.values().find(|o| o.focal_point)
    }

    pub fn slugs(&self) -> impl Iterator<Item = &String> {
        self.organisations.keys()
    }
}

fn is_valid_code(code: &str) -> bool {
    !code.is_empty()
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../config/organisations.toml");

    #[test]
    fn shipped_registry_is_valid_and_complete() {
        let registry = Registry::parse(SHIPPED).unwrap();
        for slug in [
            "fier",
            "slachtofferhulp",
            "csg",
            "comensha",
            "offlimits",
            "nidos",
            "police",
        ] {
            assert!(registry.get(slug).is_some(), "{slug} missing");
        }
        let coordination = registry
            .organisations
            .values()
            .filter(|o| o.kind == OrganisationKind::CareCoordination)
            .count();
        assert!(coordination >= 4);
        assert_eq!(
            registry.focal_point().map(|o| o.slug.as_str()),
            Some("comensha")
        );
    }

    fn minimal(org: &str) -> String {
        format!(
            "services = [\"a\", \"b\"]\nregions = [\"north\"]\n\n[[organisation]]\n{org}\n\n[[organisation]]\nslug = \"fp\"\nname = \"FP\"\nkind = \"national_coordinator\"\nservices = [\"a\"]\nregions = [\"national\"]\nintake_email = \"fp@x.example\"\naccepts_minors = true\navailable_24_7 = false\nfocal_point = true\n"
        )
    }

    const GOOD: &str = "slug = \"org-a\"\nname = \"A\"\nkind = \"police\"\nservices = [\"a\"]\nregions = [\"north\"]\nintake_email = \"a@x.example\"\naccepts_minors = true\navailable_24_7 = false";

    #[test]
    fn minimal_registry_parses() {
        let registry = Registry::parse(&minimal(GOOD)).unwrap();
        assert!(registry.get("org-a").unwrap().serves_region("north"));
        assert!(!registry.get("org-a").unwrap().serves_region("south"));
        assert!(registry.get("fp").unwrap().serves_region("south"));
    }

    #[test]
    fn problems_name_their_line() {
        let cases = [
            // Checks on an entry point at its `[[organisation]]` line; parse errors at the key.
            (GOOD.replace("[\"a\"]", "[\"zzz\"]"), 4, "service `zzz`"),
            (
                GOOD.replace("[\"north\"]", "[\"south\"]"),
                4,
                "region `south`",
            ),
            (
                GOOD.replace("a@x.example", "not-an-address"),
                4,
                "intake_email",
            ),
            (GOOD.replace("org-a", "Org A"), 4, "slug"),
            (
                GOOD.replace("\"police\"", "\"bakery\""),
                7,
                "unknown variant",
            ),
            (format!("{GOOD}\ncolour = \"red\""), 13, "unknown field"),
        ];
        for (entry, line, needle) in cases {
            let problem = Registry::parse(&minimal(&entry)).unwrap_err();
            assert!(
                problem.problem.contains(needle),
                "{problem} should mention {needle}"
            );
            assert_eq!(problem.line, line, "{problem}");
        }
    }

    #[test]
    fn exactly_one_focal_point() {
        let two = minimal(&format!("{GOOD}\nfocal_point = true"));
        assert!(
            Registry::parse(&two)
                .unwrap_err()
                .problem
                .contains("exactly one")
        );
    }

    #[test]
    fn duplicate_slug_is_refused() {
        let text = format!("{}\n[[organisation]]\n{GOOD}\n", minimal(GOOD));
        assert!(
            Registry::parse(&text)
                .unwrap_err()
                .problem
                .contains("used twice")
        );
    }

    #[test]
    fn slugs() {
        assert!(is_valid_slug("zorgcoordinatie-amsterdam"));
        assert!(!is_valid_slug("a"));
        assert!(!is_valid_slug("-a"));
        assert!(!is_valid_slug("a--b"));
        assert!(!is_valid_slug("A"));
    }
}

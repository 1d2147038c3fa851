//! The organisation registry: partner organisations, the services they offer and the regions
//! they serve, parsed and checked from the text of `config/organisations.toml`.
//!
//! It is also the service directory (in the spirit of Open Referral HSDS): every service an
//! organisation offers has a [`ServiceOffer`] saying who is eligible for it (ages, minors,
//! adults, forms of exploitation, gender, nationality), which languages it works in, whether
//! it is available around the clock and whether it has live capacity (e.g. shelter places).
//! Routing (`domain::routing`) reads these; nothing here decides a referral.
//!
//! Pure: takes the file's text and returns a `Registry` or a problem with its line. Reading
//! the file and storing the registry happen elsewhere.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::domain::case::{Age, ExploitationForm, Gender, NationalityGroup};
use crate::domain::text::LanguageTag;

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

/// One service as one organisation offers it: who is eligible, and how it is available.
///
/// Every service in an organisation's `services` has exactly one offer: written in the file
/// as an `[[organisation.offer]]` table, or defaulted from the organisation (minors as its
/// `accepts_minors`, adults yes, every age, form, gender and nationality, 24/7 as the
/// organisation, no capacity management).
///
/// Invariants (checked by [`Registry::parse`]): `minors || adults`; `min_age <= max_age`;
/// the age range contains at least one age of a group it admits (a minor is under 18).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ServiceOffer {
    /// A service code from the registry's `services`, offered by the organisation.
    pub service: String,
    /// A short description for people (informational).
    pub description: Option<String>,
    /// Lowest age admitted, in years.
    pub min_age: Option<u8>,
    /// Highest age admitted, in years.
    pub max_age: Option<u8>,
    /// Admits people treated as minors (under 18, or presumed minor).
    pub minors: bool,
    /// Admits adults.
    pub adults: bool,
    /// Forms of exploitation admitted; empty means every form. A case qualifies when it has
    /// at least one of these forms.
    pub exploitation_forms: Vec<ExploitationForm>,
    /// Genders admitted; empty means every gender. A case whose gender is not known is not
    /// refused on gender.
    pub genders: Vec<Gender>,
    /// Nationality groups admitted; empty means every nationality.
    pub nationalities: Vec<NationalityGroup>,
    /// Language tags (`nl`, `en`, `ro`, ...) the service works in; empty means not recorded.
    /// Informational: routing never refuses on language.
    pub languages: Vec<String>,
    pub available_24_7: bool,
    /// Opening hours in words when not 24/7, e.g. "ma-vr 09:00-17:00" (informational).
    pub hours: Option<String>,
    /// The service has live capacity (e.g. shelter places), set by the organisation's intake
    /// staff; with none free it is not suggested.
    pub capacity_managed: bool,
}

impl ServiceOffer {
    /// The offer an organisation's service gets when the file has no `offer` table for it.
    pub fn default_for(organisation: &Organisation, service: &str) -> Self {
        Self {
            service: service.to_string(),
            description: None,
            min_age: None,
            max_age: None,
            minors: organisation.accepts_minors,
            adults: true,
            exploitation_forms: Vec::new(),
            genders: Vec::new(),
            nationalities: Vec::new(),
            languages: Vec::new(),
            available_24_7: organisation.available_24_7,
            hours: None,
            capacity_managed: false,
        }
    }

    /// Whether an age in years is within `min_age..=max_age`.
    pub fn admits_age(&self, years: u8) -> bool {
        self.min_age.is_none_or(|min| years >= min) && self.max_age.is_none_or(|max| years <= max)
    }

    /// Whether some age in `low..=high` is within `min_age..=max_age`.
    pub fn admits_some_age_in(&self, low: u8, high: u8) -> bool {
        low <= high && self.min_age.is_none_or(|min| high >= min) && self.max_age.is_none_or(|max| low <= max)
    }

    pub fn admits_form(&self, form: ExploitationForm) -> bool {
        self.exploitation_forms.is_empty() || self.exploitation_forms.contains(&form)
    }

    pub fn admits_gender(&self, gender: Gender) -> bool {
        self.genders.is_empty() || self.genders.contains(&gender)
    }

    pub fn admits_nationality(&self, group: NationalityGroup) -> bool {
        self.nationalities.is_empty() || self.nationalities.contains(&group)
    }
}

/// The whole registry: vocabularies, organisations by slug, and the service directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub services: BTreeSet<String>,
    pub regions: BTreeSet<String>,
    pub organisations: BTreeMap<String, Organisation>,
    /// Per organisation slug, one offer per service it offers, in the order of its
    /// `services`.
    pub offers: BTreeMap<String, Vec<ServiceOffer>>,
    /// The organisations on the public information point, in the order of the file, with
    /// how the public reaches them. An organisation without a `public` table is not there.
    pub listings: Vec<PublicListing>,
}

/// How members of the public find and reach one organisation on the information point.
///
/// Invariants (checked by [`Registry::parse`]): `about` has at least one language; web
/// addresses are `https://`; a phone number holds only digits, spaces, `+`, `-` and
/// brackets; `anonymous` needs a `chat` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicListing {
    pub slug: String,
    /// The organisation's own words about what it does, per language tag, as configured.
    pub about: BTreeMap<String, String>,
    pub website: Option<String>,
    pub phone: Option<String>,
    /// An online chat people can use.
    pub chat: Option<String>,
    /// The chat can be used without giving a name or any other detail.
    pub anonymous: bool,
}

impl PublicListing {
    /// The description in `lang` if written in it, else in the first configured language:
    /// (language tag, text).
    pub fn about_in(&self, lang: &str) -> Option<(&str, &str)> {
        self.about
            .get_key_value(lang)
            .or_else(|| self.about.iter().next())
            .map(|(tag, text)| (tag.as_str(), text.as_str()))
    }
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
    #[serde(default)]
    offer: Vec<toml::Spanned<OfferEntry>>,
    public: Option<PublicEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicEntry {
    #[serde(default)]
    about: BTreeMap<String, String>,
    website: Option<String>,
    phone: Option<String>,
    chat: Option<String>,
    #[serde(default)]
    anonymous: bool,
}

/// A web address people may be sent to: `https://`, a host, nothing that could break out of
/// an attribute.
fn is_public_address(text: &str) -> bool {
    text.strip_prefix("https://").is_some_and(|rest| {
        let host = rest.split('/').next().unwrap_or("");
        host.contains('.')
            && !text
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '<' | '>' | '\\'))
    })
}

fn is_phone_number(text: &str) -> bool {
    text.chars().filter(char::is_ascii_digit).count() >= 3
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')'))
}

fn public_listing(slug: &str, entry: &PublicEntry) -> Result<PublicListing, String> {
    if entry.about.is_empty() {
        return Err("public: `about` needs a description in at least one language".into());
    }
    let mut about = BTreeMap::new();
    for (tag, text) in &entry.about {
        let tag = LanguageTag::parse(tag).map_err(|_| format!("public: `about.{tag}` is not a language tag"))?;
        if text.trim().is_empty() {
            return Err(format!("public: `about.{}` is empty", tag.as_str()));
        }
        about.insert(tag.as_str().to_string(), text.trim().to_string());
    }
    for (name, address) in [("website", &entry.website), ("chat", &entry.chat)] {
        if let Some(address) = address
            && !is_public_address(address)
        {
            return Err(format!("public: `{name}` must be an https:// address"));
        }
    }
    if let Some(phone) = &entry.phone
        && !is_phone_number(phone)
    {
        return Err("public: `phone` may hold only digits, spaces, +, - and brackets".into());
    }
    if entry.anonymous && entry.chat.is_none() {
        return Err("public: `anonymous` help needs a `chat` address".into());
    }
    Ok(PublicListing {
        slug: slug.to_string(),
        about,
        website: entry.website.clone(),
        phone: entry.phone.as_ref().map(|p| p.trim().to_string()),
        chat: entry.chat.clone(),
        anonymous: entry.anonymous,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OfferEntry {
    service: String,
    description: Option<String>,
    min_age: Option<u8>,
    max_age: Option<u8>,
    minors: Option<bool>,
    adults: Option<bool>,
    #[serde(default)]
    exploitation_forms: Vec<ExploitationForm>,
    #[serde(default)]
    genders: Vec<Gender>,
    #[serde(default)]
    nationalities: Vec<NationalityGroup>,
    #[serde(default)]
    languages: Vec<String>,
    available_24_7: Option<bool>,
    hours: Option<String>,
    #[serde(default)]
    capacity_managed: bool,
}

/// The 1-based line of a byte offset in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
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
                && !text.chars().any(|c| c.is_whitespace() || c == ',' || c == ';')
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
        let mut offers = BTreeMap::new();
        let mut listings = Vec::new();
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
            if let Some(twice) = entry
                .services
                .iter()
                .enumerate()
                .find(|(i, s)| entry.services[..*i].contains(s))
                .map(|(_, s)| s)
            {
                return Err(fail(format!("service `{twice}` is listed twice")));
            }
            if let Some(unknown) = entry.services.iter().find(|s| !services.contains(*s)) {
                return Err(fail(format!("service `{unknown}` is not in the `services` list")));
            }
            if entry.regions.is_empty() {
                return Err(fail(
                    "serves no regions (use [\"national\"] for the whole country)".into(),
                ));
            }
            if entry.regions.iter().any(|r| r == NATIONAL) && entry.regions.len() > 1 {
                return Err(fail("`national` cannot be combined with other regions".into()));
            }
            if let Some(unknown) = entry.regions.iter().find(|r| *r != NATIONAL && !regions.contains(*r)) {
                return Err(fail(format!("region `{unknown}` is not in the `regions` list")));
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
            if let Some(public) = &entry.public {
                listings.push(public_listing(&entry.slug, public).map_err(fail)?);
            }
            let directory = service_offers(text, &organisation, &entry.offer)?;
            if organisations.insert(entry.slug.clone(), organisation).is_some() {
                return Err(fail("slug is used twice".into()));
            }
            offers.insert(entry.slug.clone(), directory);
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
            offers,
            listings,
        })
    }

    /// How `organisation` offers `service`; `None` when it does not offer it (or is unknown).
    pub fn offer(&self, organisation: &str, service: &str) -> Option<&ServiceOffer> {
        self.offers
            .get(organisation)
            .and_then(|offers| offers.iter().find(|o| o.service == service))
    }

    /// Every offer of `organisation`, in the order of its `services`; empty when unknown.
    pub fn offers_of(&self, organisation: &str) -> &[ServiceOffer] {
        self.offers.get(organisation).map_or(&[], Vec::as_slice)
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

/// The offers of one organisation: the file's `offer` tables checked against it, and a
/// default offer for every service without one, in the order of its `services`.
fn service_offers(
    text: &str,
    organisation: &Organisation,
    entries: &[toml::Spanned<OfferEntry>],
) -> Result<Vec<ServiceOffer>, RegistryProblem> {
    let mut written: BTreeMap<&str, ServiceOffer> = BTreeMap::new();
    for spanned in entries {
        let line = line_of(text, spanned.span().start);
        let entry = spanned.get_ref();
        let fail = |problem: String| RegistryProblem {
            line,
            problem: format!(
                "organisation `{}`, offer `{}`: {problem}",
                organisation.slug, entry.service
            ),
        };
        if !organisation.offers(&entry.service) {
            return Err(fail("the service is not in the organisation's `services`".into()));
        }
        let default = ServiceOffer::default_for(organisation, &entry.service);
        let minors = entry.minors.unwrap_or(default.minors);
        let adults = entry.adults.unwrap_or(default.adults);
        if minors && !organisation.accepts_minors {
            return Err(fail(
                "minors = true, but the organisation has accepts_minors = false".into(),
            ));
        }
        if !minors && !adults {
            return Err(fail("admits nobody (minors = false and adults = false)".into()));
        }
        for (name, age) in [("min_age", entry.min_age), ("max_age", entry.max_age)] {
            if age.is_some_and(|a| a > Age::MAX) {
                return Err(fail(format!("{name} is above {}", Age::MAX)));
            }
        }
        let min = entry.min_age.unwrap_or(0);
        let max = entry.max_age.unwrap_or(Age::MAX);
        if min > max {
            return Err(fail(format!("min_age {min} is above max_age {max}")));
        }
        // Contradictions are refused rather than guessed at: say `minors = false` or
        // `adults = false` explicitly when the age range rules a group out.
        if minors && min >= Age::MAJORITY {
            return Err(fail(format!("min_age {min} admits no minors; set minors = false")));
        }
        if adults && max < Age::MAJORITY {
            return Err(fail(format!("max_age {max} admits no adults; set adults = false")));
        }
        let mut languages = Vec::new();
        for tag in &entry.languages {
            match LanguageTag::parse(tag) {
                Ok(tag) => languages.push(tag.as_str().to_string()),
                Err(_) => {
                    return Err(fail(format!(
                        "language `{tag}` is not a language tag such as `nl`, `en` or `pt-BR`"
                    )));
                }
            }
        }
        // An unknown gender or nationality is never refused, so listing it would mislead.
        if entry.genders.contains(&Gender::Unknown) {
            return Err(fail(
                "genders cannot list `unknown`: a case whose gender is not known is never refused on gender".into(),
            ));
        }
        if entry.nationalities.contains(&NationalityGroup::Unknown) {
            return Err(fail(
                "nationalities cannot list `unknown`: a case whose nationality is not known is never refused on nationality".into(),
            ));
        }
        let description = match entry.description.as_deref().map(str::trim) {
            Some("") => return Err(fail("description is empty".into())),
            other => other.map(str::to_string),
        };
        let offer = ServiceOffer {
            service: entry.service.clone(),
            description,
            min_age: entry.min_age,
            max_age: entry.max_age,
            minors,
            adults,
            exploitation_forms: dedup(&entry.exploitation_forms),
            genders: dedup(&entry.genders),
            nationalities: dedup(&entry.nationalities),
            languages,
            available_24_7: entry.available_24_7.unwrap_or(default.available_24_7),
            hours: entry
                .hours
                .as_deref()
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_string),
            capacity_managed: entry.capacity_managed,
        };
        if written.insert(entry.service.as_str(), offer).is_some() {
            return Err(fail("the service has two `offer` tables".into()));
        }
    }
    Ok(organisation
        .services
        .iter()
        .map(|service| {
            written
                .remove(service.as_str())
                .unwrap_or_else(|| ServiceOffer::default_for(organisation, service))
        })
        .collect())
}

fn dedup<T: Copy + Ord>(items: &[T]) -> Vec<T> {
    let mut seen = BTreeSet::new();
    items.iter().copied().filter(|i| seen.insert(*i)).collect()
}

fn is_valid_code(code: &str) -> bool {
    !code.is_empty()
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
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
        assert_eq!(registry.focal_point().map(|o| o.slug.as_str()), Some("comensha"));
    }

    fn minimal(org: &str) -> String {
        format!(
            "services = [\"a\", \"b\"]\nregions = [\"north\"]\n\n[[organisation]]\n{org}\n\n[[organisation]]\nslug = \"fp\"\nname = \"FP\"\nkind = \"national_coordinator\"\nservices = [\"a\"]\nregions = [\"national\"]\nintake_email = \"fp@x.example\"\naccepts_minors = true\navailable_24_7 = false\nfocal_point = true\n"
        )
    }

    const GOOD: &str = "slug = \"org-a\"\nname = \"A\"\nkind = \"police\"\nservices = [\"a\"]\nregions = [\"north\"]\nintake_email = \"a@x.example\"\naccepts_minors = true\navailable_24_7 = false";

    #[test]
    fn a_public_listing_is_checked_and_keeps_the_files_order() {
        let listed = |public: &str| Registry::parse(&minimal(&format!("{GOOD}\n\n[organisation.public]\n{public}")));
        let registry = listed(
            "about.nl = \"Wij helpen.\"\nabout.pl = \"Pomagamy.\"\nwebsite = \"https://a.example/hulp\"\nphone = \"+31 (0)900-1234\"\nchat = \"https://chat.a.example\"\nanonymous = true",
        )
        .unwrap();
        let listing = &registry.listings[0];
        assert_eq!(listing.slug, "org-a");
        assert_eq!(listing.about_in("pl"), Some(("pl", "Pomagamy.")));
        assert_eq!(
            listing.about_in("en"),
            Some(("nl", "Wij helpen.")),
            "another language when not written in this one"
        );
        assert!(listing.anonymous);
        assert_eq!(registry.listings.len(), 1, "the focal point has no public table");
        for (public, problem) in [
            ("website = \"https://a.example\"", "`about` needs a description"),
            (
                "about.nl = \"x\"\nwebsite = \"http://a.example\"",
                "`website` must be an https:// address",
            ),
            (
                "about.nl = \"x\"\nchat = \"https://a.example/\\\"onclick\"",
                "`chat` must be an https://",
            ),
            ("about.nl = \"x\"\nphone = \"bel ons\"", "`phone` may hold only"),
            ("about.nl = \"x\"\nanonymous = true", "needs a `chat` address"),
            ("about.nederlands = \"x\"", "not a language tag"),
            ("about.nl = \"  \"", "`about.nl` is empty"),
        ] {
            let error = listed(public).unwrap_err();
            assert!(error.problem.contains(problem), "{public}: {error}");
            assert!(error.problem.contains("organisation `org-a`"), "{error}");
        }
    }

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
            (GOOD.replace("[\"north\"]", "[\"south\"]"), 4, "region `south`"),
            (GOOD.replace("a@x.example", "not-an-address"), 4, "intake_email"),
            (GOOD.replace("org-a", "Org A"), 4, "slug"),
            (GOOD.replace("\"police\"", "\"bakery\""), 7, "unknown variant"),
            (format!("{GOOD}\ncolour = \"red\""), 13, "unknown field"),
        ];
        for (entry, line, needle) in cases {
            let problem = Registry::parse(&minimal(&entry)).unwrap_err();
            assert!(problem.problem.contains(needle), "{problem} should mention {needle}");
            assert_eq!(problem.line, line, "{problem}");
        }
    }

    #[test]
    fn exactly_one_focal_point() {
        let two = minimal(&format!("{GOOD}\nfocal_point = true"));
        assert!(Registry::parse(&two).unwrap_err().problem.contains("exactly one"));
    }

    #[test]
    fn duplicate_slug_is_refused() {
        let text = format!("{}\n[[organisation]]\n{GOOD}\n", minimal(GOOD));
        assert!(Registry::parse(&text).unwrap_err().problem.contains("used twice"));
    }

    #[test]
    fn slugs() {
        assert!(is_valid_slug("zorgcoordinatie-amsterdam"));
        assert!(!is_valid_slug("a"));
        assert!(!is_valid_slug("-a"));
        assert!(!is_valid_slug("a--b"));
        assert!(!is_valid_slug("A"));
    }

    #[test]
    fn shipped_directory() {
        let registry = Registry::parse(SHIPPED).unwrap();
        let offer = |org: &str, service: &str| {
            registry
                .offer(org, service)
                .unwrap_or_else(|| panic!("{org} {service}"))
                .clone()
        };
        // Every service of every organisation has exactly one offer, in `services` order.
        for org in registry.organisations.values() {
            let services: Vec<&String> = registry.offers_of(&org.slug).iter().map(|o| &o.service).collect();
            assert_eq!(services, org.services.iter().collect::<Vec<_>>(), "{}", org.slug);
        }
        // COSM: adults only, foreign victims, live capacity.
        let cosm = offer("comensha", "shelter_placement");
        assert!(!cosm.minors && cosm.adults && cosm.capacity_managed);
        assert_eq!(cosm.nationalities, [NationalityGroup::OtherEu, NationalityGroup::NonEu]);
        // Nidos: minors only, foreign minors.
        for service in ["guardianship", "shelter_placement"] {
            let nidos = offer("nidos", service);
            assert!(nidos.minors && !nidos.adults, "{service}");
            assert!(!nidos.admits_nationality(NationalityGroup::Dutch));
        }
        assert!(offer("nidos", "shelter_placement").capacity_managed);
        // CSG: acute care around the clock for every age and gender, after sexual violence.
        let csg = offer("csg", "acute_sexual_violence_care");
        assert!(csg.available_24_7 && csg.minors && csg.adults);
        assert!(csg.genders.is_empty() && csg.min_age.is_none() && csg.max_age.is_none());
        assert_eq!(csg.exploitation_forms, [ExploitationForm::Sexual]);
        // Offlimits removes images; Slachtofferhulp gives the three kinds of support.
        assert!(registry.get("offlimits").unwrap().offers("image_removal"));
        for service in ["psychosocial_support", "practical_support", "legal_support"] {
            assert!(offer("slachtofferhulp", service).adults);
        }
        // Fier: young people, 12 to 27; its shelter has live capacity.
        for service in ["psychosocial_support", "shelter_placement"] {
            let fier = offer("fier", service);
            assert_eq!((fier.min_age, fier.max_age), (Some(12), Some(27)), "{service}");
            assert!(fier.minors && fier.adults);
        }
        assert!(offer("fier", "shelter_placement").capacity_managed);
        assert!(offer("fier", "online_chat").min_age.is_none());
        // Regional care coordinators: coordination for everyone, shelter for adults.
        let coordinators: Vec<&Organisation> = registry
            .organisations
            .values()
            .filter(|o| o.kind == OrganisationKind::CareCoordination)
            .collect();
        assert!(coordinators.len() >= 4);
        for org in coordinators {
            let care = offer(&org.slug, "care_coordination");
            assert!(care.minors && care.adults, "{}", org.slug);
            let shelter = offer(&org.slug, "shelter_placement");
            assert!(!shelter.minors && shelter.adults && shelter.capacity_managed);
        }
        // Regions without a care coordinator are known and intended (see docs/routing.md).
        assert!(registry.regions.contains("den-haag"));
        assert!(
            !registry
                .organisations
                .values()
                .any(|o| o.kind == OrganisationKind::CareCoordination && o.serves_region("den-haag"))
        );
    }

    #[test]
    fn services_without_an_offer_table_get_the_organisations_defaults() {
        let registry = Registry::parse(&minimal(GOOD)).unwrap();
        let org = registry.get("org-a").unwrap();
        let offer = registry.offer("org-a", "a").unwrap();
        assert_eq!(offer, &ServiceOffer::default_for(org, "a"));
        assert!(offer.minors && offer.adults && !offer.capacity_managed);
        assert!(!offer.available_24_7);
        assert!(registry.offer("org-a", "b").is_none());
        assert!(registry.offer("nobody", "a").is_none());
        assert!(registry.offers_of("nobody").is_empty());
    }

    #[test]
    fn offer_tables_are_read() {
        let entry = format!(
            "{GOOD}\n\n[[organisation.offer]]\nservice = \"a\"\ndescription = \" Shelter \"\nmin_age = 12\nmax_age = 27\nexploitation_forms = [\"sexual\", \"criminal\", \"sexual\"]\ngenders = [\"female\"]\nnationalities = [\"non_eu\"]\nlanguages = [\"NL\", \"pt-br\"]\navailable_24_7 = true\ncapacity_managed = true\n"
        );
        let registry = Registry::parse(&minimal(&entry)).unwrap();
        let offer = registry.offer("org-a", "a").unwrap();
        assert_eq!(offer.description.as_deref(), Some("Shelter"));
        assert_eq!((offer.min_age, offer.max_age), (Some(12), Some(27)));
        assert!(offer.minors && offer.adults && offer.available_24_7 && offer.capacity_managed);
        assert_eq!(
            offer.exploitation_forms,
            [ExploitationForm::Sexual, ExploitationForm::Criminal]
        );
        assert_eq!(offer.languages, ["nl", "pt-BR"]);
        assert!(offer.admits_age(12) && offer.admits_age(27));
        assert!(!offer.admits_age(11) && !offer.admits_age(28));
        assert!(offer.admits_some_age_in(0, 12) && !offer.admits_some_age_in(0, 11));
        assert!(offer.admits_form(ExploitationForm::Criminal));
        assert!(!offer.admits_form(ExploitationForm::Labour));
        assert!(offer.admits_gender(Gender::Female) && !offer.admits_gender(Gender::Male));
        assert!(!offer.admits_nationality(NationalityGroup::Dutch));
    }

    #[test]
    fn offer_problems_name_their_line() {
        // The offer table starts on line 14 of `minimal` (org-a's entry is lines 4 to 12).
        let with_offer = |offer: &str| minimal(&format!("{GOOD}\n\n[[organisation.offer]]\nservice = \"a\"\n{offer}"));
        let cases = [
            (
                with_offer("").replace("service = \"a\"\n", "service = \"b\"\n"),
                14,
                "offer `b`: the service is not in the organisation's `services`",
            ),
            (
                with_offer("min_age = 30\nmax_age = 20"),
                14,
                "min_age 30 is above max_age 20",
            ),
            (with_offer("max_age = 121"), 14, "max_age is above 120"),
            (
                with_offer("min_age = 18"),
                14,
                "min_age 18 admits no minors; set minors = false",
            ),
            (
                with_offer("max_age = 17"),
                14,
                "max_age 17 admits no adults; set adults = false",
            ),
            (with_offer("minors = false\nadults = false"), 14, "admits nobody"),
            (with_offer("languages = [\"dutch\"]"), 14, "language `dutch`"),
            (
                with_offer("genders = [\"unknown\"]"),
                14,
                "genders cannot list `unknown`",
            ),
            (
                with_offer("nationalities = [\"unknown\"]"),
                14,
                "nationalities cannot list `unknown`",
            ),
            (with_offer("description = \" \""), 14, "description is empty"),
            (
                with_offer("\n[[organisation.offer]]\nservice = \"a\"\n"),
                17,
                "the service has two `offer` tables",
            ),
            (
                minimal(&format!(
                    "{}\n\n[[organisation.offer]]\nservice = \"a\"\nminors = true",
                    GOOD.replace("accepts_minors = true", "accepts_minors = false")
                )),
                14,
                "minors = true, but the organisation has accepts_minors = false",
            ),
            // Parse errors point at the key.
            (with_offer("colour = \"red\""), 16, "unknown field `colour`"),
            (with_offer("genders = [\"robot\"]"), 16, "unknown variant `robot`"),
            (with_offer("min_age = -1"), 16, "invalid value"),
            (
                GOOD.replace("[\"a\"]", "[\"a\", \"a\"]"),
                4,
                "service `a` is listed twice",
            ),
        ];
        for (text, line, needle) in cases {
            let text = if text.starts_with("services") {
                text
            } else {
                minimal(&text)
            };
            let problem = Registry::parse(&text).unwrap_err();
            assert!(
                problem.problem.contains(needle),
                "`{problem}` should contain `{needle}`"
            );
            assert_eq!(problem.line, line, "{problem}");
        }
    }

    #[test]
    fn an_offer_with_minors_false_is_fine_for_an_organisation_without_minors() {
        let entry = format!(
            "{}\n\n[[organisation.offer]]\nservice = \"a\"\nmin_age = 18\n",
            GOOD.replace("accepts_minors = true", "accepts_minors = false")
        );
        let registry = Registry::parse(&minimal(&entry)).unwrap();
        let offer = registry.offer("org-a", "a").unwrap();
        assert!(!offer.minors && offer.adults);
    }
}

//! Routing: from the facts of a case to ranked, explained suggestions of where the person could
//! go next, and the hard eligibility checks the referral submit guard shares with them.
//!
//! The rules are declarative (`config/routing.toml`, see `docs/routing.md`): each rule has
//! conditions on the case's facts, yields needs, and names where those needs are met: one
//! organisation, the care coordinator of the case's region, or any organisation whose offer
//! admits the person. The service directory (who is eligible for what) lives in the registry
//! ([`crate::domain::organisation::ServiceOffer`]).
//!
//! Pure: the rules, the registry, the live capacity and `today` come in as arguments. This
//! module must not read files, the clock or the database and knows nothing of HTTP. It never
//! suggests the police and has no input about cooperation with the police: assistance does not
//! depend on it (Directive 2011/36/EU Art. 11(3)).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

pub use crate::domain::case::Need;
use crate::domain::case::{Age, CountryCode, ExploitationForm, ExploitationForms, Gender, NationalityGroup};
use crate::domain::organisation::{Organisation, OrganisationKind, Registry, ServiceOffer, is_valid_slug, line_of};
use crate::domain::text::text_enum;

text_enum! {
    /// Why an organisation, or one of its services, is not suggested or not eligible.
    /// The text is stable: clients and statistics depend on it.
    pub enum ExclusionReason {
        /// The organisation is the one asking; it is never suggested to itself.
        IsSender = "is_sender",
        /// The organisation declined a referral of this case before.
        DeclinedBefore = "declined_before",
        /// The organisation is regional and does not serve the case's region.
        OutOfRegion = "out_of_region",
        /// The person is (presumed) a minor and the service admits adults only. Art. 13(2)
        /// and 16: a presumed child is treated as a child.
        DoesNotAcceptMinors = "does_not_accept_minors",
        /// The person is an adult and the service admits minors only.
        MinorsOnly = "minors_only",
        /// The person's age (or, if unknown, every age their minority allows) is outside
        /// the service's age range.
        NotEligibleAge = "not_eligible_age",
        /// The service does not admit the person's gender.
        NotEligibleGender = "not_eligible_gender",
        /// The service does not admit any of the case's forms of exploitation.
        NotEligibleExploitationForm = "not_eligible_exploitation_form",
        /// The service does not admit the person's nationality group.
        NotEligibleNationality = "not_eligible_nationality",
        /// The service manages capacity and reports no places free.
        NoCapacity = "no_capacity",
    }
}

impl ExclusionReason {
    /// A short English sentence for people reading a suggestion or an error.
    pub fn description(&self) -> &'static str {
        match self {
            Self::IsSender => "This is the organisation that is referring.",
            Self::DeclinedBefore => "The organisation declined a referral of this case before.",
            Self::OutOfRegion => "The organisation does not serve the case's region.",
            Self::DoesNotAcceptMinors => "The person is (presumed) a minor and the service is for adults only.",
            Self::MinorsOnly => "The person is an adult and the service is for minors only.",
            Self::NotEligibleAge => "The person's age is outside the service's age range.",
            Self::NotEligibleExploitationForm => "The service is not for the case's form(s) of exploitation.",
            Self::NotEligibleGender => "The service is not for the person's gender.",
            Self::NotEligibleNationality => "The service is not for the person's nationality.",
            Self::NoCapacity => "The service has no places free.",
        }
    }
}

// ---------------------------------------------------------------------------
// Case facts
// ---------------------------------------------------------------------------

/// The facts of a case that routing looks at, filled in by the API layer from the case.
///
/// Unknown facts never exclude: a service with an age range, a gender or a nationality
/// restriction is not refused because the person's age, gender or nationality is not
/// recorded. Rule conditions, on the other hand, only hold when the facts establish them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseProfile {
    /// Age in years, when known. With `minor` set, an age of 18 or over is disregarded
    /// (the presumption of minority wins, Art. 13(2)).
    pub age: Option<u8>,
    /// Treated as a minor (see [`crate::domain::case::treated_as_minor`]).
    pub minor: bool,
    pub gender: Option<Gender>,
    pub nationality: Option<CountryCode>,
    /// Region code from the registry, when known.
    pub region: Option<String>,
    /// Language tag the person prefers. Informational: routing does not use it.
    pub language: Option<String>,
    pub exploitation_forms: ExploitationForms,
    /// The most recent incident of violence or exploitation, when known.
    pub last_incident_date: Option<NaiveDate>,
    pub needs: BTreeSet<Need>,
    /// A minor without a parent or legal guardian in the Netherlands.
    pub unaccompanied: bool,
    /// The reflection and recovery period (B8/3 *bedenktijd*) is running.
    pub in_reflection_period: bool,
    /// Slugs of organisations that declined a referral of this case.
    pub declined_by: BTreeSet<String>,
}

impl CaseProfile {
    /// A profile with only the forms of exploitation known.
    pub fn new(exploitation_forms: ExploitationForms) -> Self {
        Self {
            age: None,
            minor: false,
            gender: None,
            nationality: None,
            region: None,
            language: None,
            exploitation_forms,
            last_incident_date: None,
            needs: BTreeSet::new(),
            unaccompanied: false,
            in_reflection_period: false,
            declined_by: BTreeSet::new(),
        }
    }

    /// Treated as a minor: marked so, or a recorded age under 18.
    pub fn is_minor(&self) -> bool {
        self.minor || self.age.is_some_and(|a| a < Age::MAJORITY)
    }

    /// The ages the person may have: the recorded age, or every age their minority allows.
    fn age_span(&self) -> (u8, u8) {
        let adult_from = Age::MAJORITY;
        match (self.is_minor(), self.age) {
            (true, Some(a)) if a < adult_from => (a, a),
            (true, _) => (0, adult_from - 1),
            (false, Some(a)) => (a, a),
            (false, None) => (adult_from, Age::MAX),
        }
    }

    pub fn nationality_group(&self) -> NationalityGroup {
        NationalityGroup::of(self.nationality)
    }

    /// Whole days from the last incident to `today`; `None` when unknown or in the future.
    pub fn days_since_incident(&self, today: NaiveDate) -> Option<u32> {
        let days = (today - self.last_incident_date?).num_days();
        u32::try_from(days).ok()
    }
}

// ---------------------------------------------------------------------------
// The rules
// ---------------------------------------------------------------------------

/// The parsed and checked rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingRules {
    /// Which services meet each need, in the file's order per need.
    pub needs: BTreeMap<Need, Vec<String>>,
    /// Highest priority first; rules of equal priority in file order.
    pub rules: Vec<Rule>,
}

/// One rule: when its conditions hold for a case, it yields needs met at its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Lowercase letters, digits and hyphens; unique.
    pub id: String,
    /// 0..=1000, higher first.
    pub priority: u16,
    /// Why, in words a coordinator understands; shown with every suggestion it makes.
    pub explanation: String,
    /// The line of its `[[rule]]` header.
    pub line: usize,
    pub when: Conditions,
    /// Needs the rule yields; services are `RoutingRules::needs` of these.
    pub needs: Vec<Need>,
    pub target: Target,
}

/// Conditions on the case; all that are set must hold. Empty lists and `None` mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// The case has at least one of these forms of exploitation.
    pub forms: Vec<ExploitationForm>,
    /// The case records at least one of these needs.
    pub needs: Vec<Need>,
    pub minor: Option<bool>,
    /// Every age the person may have is at least this (a recorded age, or the span minority
    /// allows when no age is recorded).
    pub min_age: Option<u8>,
    /// Every age the person may have is at most this.
    pub max_age: Option<u8>,
    /// The person's gender is one of these (`unknown` matches a gender not recorded).
    pub genders: Vec<Gender>,
    /// The person's nationality group is one of these (`unknown` when not recorded).
    pub nationalities: Vec<NationalityGroup>,
    /// The case's region is one of these.
    pub regions: Vec<String>,
    pub unaccompanied: Option<bool>,
    pub in_reflection_period: Option<bool>,
    /// The last incident is known and at most this many days before today.
    pub incident_within_days: Option<u16>,
}

/// Where a rule's needs are met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// This organisation.
    Organisation(String),
    /// The care coordinator(s) of the case's region (organisations of kind
    /// `care_coordination` that are not national and serve the region). The rule does not
    /// apply to a case without a region. When the region has no care coordinator, the
    /// fallback organisation, if any, with its own explanation.
    RegionalCareCoordinator { fallback: Option<Fallback> },
    /// Every organisation that offers one of the services and serves the case's region
    /// (national organisations serve every region; without a region, only national ones).
    AnyOffering,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    pub organisation: String,
    pub explanation: String,
}

/// A problem in the rules file, with the 1-based line and, where there is one, the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {}{problem}", rule_prefix(.rule))]
pub struct RoutingProblem {
    pub line: usize,
    pub rule: Option<String>,
    pub problem: String,
}

fn rule_prefix(rule: &Option<String>) -> String {
    match rule {
        Some(id) => format!("rule `{id}`: "),
        None => String::new(),
    }
}

/// The placeholder an explanation may use for the case's region (regional rules only).
const REGION_PLACEHOLDER: &str = "{region}";
/// The highest priority a rule may have.
pub const MAX_PRIORITY: u16 = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    needs: BTreeMap<String, toml::Spanned<Vec<toml::Spanned<String>>>>,
    #[serde(default)]
    rule: Vec<toml::Spanned<RuleEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    id: String,
    priority: toml::Spanned<u16>,
    explanation: toml::Spanned<String>,
    #[serde(default)]
    when: WhenEntry,
    then: toml::Spanned<ThenEntry>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WhenEntry {
    #[serde(default)]
    forms: Vec<ExploitationForm>,
    #[serde(default)]
    needs: Vec<Need>,
    minor: Option<toml::Spanned<bool>>,
    min_age: Option<toml::Spanned<u8>>,
    max_age: Option<toml::Spanned<u8>>,
    #[serde(default)]
    genders: Vec<Gender>,
    #[serde(default)]
    nationalities: Vec<NationalityGroup>,
    #[serde(default)]
    regions: Vec<toml::Spanned<String>>,
    unaccompanied: Option<bool>,
    in_reflection_period: Option<toml::Spanned<bool>>,
    incident_within_days: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThenEntry {
    needs: toml::Spanned<Vec<Need>>,
    organisation: Option<toml::Spanned<String>>,
    #[serde(default)]
    regional_care_coordinator: bool,
    fallback: Option<toml::Spanned<String>>,
    fallback_explanation: Option<toml::Spanned<String>>,
}

/// Only the ids, to name the rule a syntax or type error is in.
#[derive(Deserialize)]
struct LenientFile {
    #[serde(default)]
    rule: Vec<LenientRule>,
}

#[derive(Deserialize)]
struct LenientRule {
    id: Option<String>,
}

impl RoutingRules {
    /// Parses the rules file's text and checks it against the registry: unknown needs,
    /// services, organisations and regions, duplicate ids, and rules that can never apply
    /// or never yield an eligible service. Problems name the rule and the line.
    pub fn parse(text: &str, registry: &Registry) -> Result<Self, RoutingProblem> {
        let file: RulesFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            RoutingProblem {
                line: e.span().map_or(1, |s| line_of(text, s.start)),
                rule: rule_at(text, offset),
                problem: e.message().to_string(),
            }
        })?;

        let mut needs = BTreeMap::new();
        // In file order, so the first problem reported is the first in the file.
        let mut entries: Vec<_> = file.needs.iter().collect();
        entries.sort_by_key(|(_, services)| services.span().start);
        for (name, services) in entries {
            let line = line_of(text, services.span().start);
            let fail = |problem: String| RoutingProblem {
                line,
                rule: None,
                problem,
            };
            let need: Need = name
                .parse()
                .map_err(|_| fail(format!("`{name}` in [needs] is not a known need")))?;
            if services.get_ref().is_empty() {
                return Err(fail(format!("need `{need}` lists no services")));
            }
            let mut list = Vec::new();
            for service in services.get_ref() {
                let line = line_of(text, service.span().start);
                if !registry.services.contains(service.get_ref()) {
                    return Err(RoutingProblem {
                        line,
                        rule: None,
                        problem: format!("need `{need}`: service `{}` is not in the registry", service.get_ref()),
                    });
                }
                if !list.contains(service.get_ref()) {
                    list.push(service.get_ref().clone());
                }
            }
            needs.insert(need, list);
        }

        let mut rules: Vec<Rule> = Vec::new();
        for spanned in &file.rule {
            let rule = check_rule(text, registry, &needs, spanned)?;
            if rules.iter().any(|r| r.id == rule.id) {
                return Err(RoutingProblem {
                    line: rule.line,
                    rule: Some(rule.id.clone()),
                    problem: "the id is used twice".into(),
                });
            }
            rules.push(rule);
        }
        // Stable: rules of equal priority keep file order.
        rules.sort_by_key(|r| std::cmp::Reverse(r.priority));
        Ok(RoutingRules { needs, rules })
    }

    /// The services that meet `needs`, in order, without repeats.
    pub fn services_for(&self, needs: &[Need]) -> Vec<String> {
        let mut services: Vec<String> = Vec::new();
        for service in needs.iter().filter_map(|n| self.needs.get(n)).flatten() {
            if !services.contains(service) {
                services.push(service.clone());
            }
        }
        services
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

/// The id of the rule whose table holds byte `offset`, if the offset is inside a rule and
/// the ids can be read.
fn rule_at(text: &str, offset: usize) -> Option<String> {
    // Up to the end of the offset's line: an error may point at the `[[rule]]` header.
    let end = text
        .get(offset..)
        .and_then(|rest| rest.find('\n'))
        .map_or(text.len(), |i| offset + i);
    let before = text.get(..end)?;
    // Count the `[[rule]]` headers up to the offset, and whether the last table header
    // before it belongs to a rule.
    let mut index: Option<usize> = None;
    let mut in_rule = false;
    for line in before.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(name) = table_header(line) else {
            continue;
        };
        if line.starts_with("[[") && name == "rule" {
            index = Some(index.map_or(0, |i| i + 1));
            in_rule = true;
        } else {
            in_rule = name.starts_with("rule.");
        }
    }
    if !in_rule {
        return None;
    }
    let lenient: LenientFile = toml::from_str(text).ok()?;
    lenient.rule.into_iter().nth(index?)?.id
}

/// The name of a `[table]` or `[[array]]` header line.
fn table_header(line: &str) -> Option<&str> {
    let inner = line
        .strip_prefix("[[")
        .and_then(|l| l.strip_suffix("]]"))
        .or_else(|| line.strip_prefix('[').and_then(|l| l.strip_suffix(']')))?
        .trim();
    let plain = !inner.is_empty()
        && inner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    plain.then_some(inner)
}

fn check_rule(
    text: &str,
    registry: &Registry,
    needs_map: &BTreeMap<Need, Vec<String>>,
    spanned: &toml::Spanned<RuleEntry>,
) -> Result<Rule, RoutingProblem> {
    let entry = spanned.get_ref();
    let header = line_of(text, spanned.span().start);
    let at = |offset: usize| line_of(text, offset);
    let fail = |line: usize, problem: String| RoutingProblem {
        line,
        rule: Some(entry.id.clone()),
        problem,
    };

    if !is_valid_slug(&entry.id) {
        return Err(fail(
            header,
            "the id must be 2-64 lowercase letters, digits and single hyphens".into(),
        ));
    }
    let priority = *entry.priority.get_ref();
    if priority > MAX_PRIORITY {
        return Err(fail(
            at(entry.priority.span().start),
            format!("priority {priority} is above {MAX_PRIORITY}"),
        ));
    }
    let explanation = entry.explanation.get_ref().trim().to_string();
    let explanation_line = at(entry.explanation.span().start);
    if explanation.is_empty() {
        return Err(fail(explanation_line, "the explanation is empty".into()));
    }

    // Conditions.
    let w = &entry.when;
    for region in &w.regions {
        if !registry.regions.contains(region.get_ref()) {
            return Err(fail(
                at(region.span().start),
                format!("region `{}` is not in the registry", region.get_ref()),
            ));
        }
    }
    let when = Conditions {
        forms: w.forms.clone(),
        needs: w.needs.clone(),
        minor: w.minor.as_ref().map(|m| *m.get_ref()),
        min_age: w.min_age.as_ref().map(|a| *a.get_ref()),
        max_age: w.max_age.as_ref().map(|a| *a.get_ref()),
        genders: w.genders.clone(),
        nationalities: w.nationalities.clone(),
        regions: w.regions.iter().map(|r| r.get_ref().clone()).collect(),
        unaccompanied: w.unaccompanied,
        in_reflection_period: w.in_reflection_period.as_ref().map(|r| *r.get_ref()),
        incident_within_days: w.incident_within_days,
    };
    let age_line = |a: &Option<toml::Spanned<u8>>| a.as_ref().map(|a| at(a.span().start));
    let space = Space::of(&when).map_err(|problem| {
        let line = match problem {
            SpaceProblem::MinAboveMax | SpaceProblem::AdultTooYoung => age_line(&w.max_age),
            SpaceProblem::MinorTooOld => age_line(&w.min_age),
            SpaceProblem::ReflectionWithoutNonEu => w.in_reflection_period.as_ref().map(|r| at(r.span().start)),
        };
        fail(
            line.unwrap_or(header),
            format!("unreachable: {}", problem.message(&when)),
        )
    })?;

    // What it yields.
    let then = entry.then.get_ref();
    let then_line = at(entry.then.span().start);
    let needs_line = at(then.needs.span().start);
    let needs = then.needs.get_ref().clone();
    if needs.is_empty() {
        return Err(fail(needs_line, "`then.needs` is empty".into()));
    }
    let mut services: Vec<String> = Vec::new();
    for need in &needs {
        let Some(list) = needs_map.get(need) else {
            return Err(fail(needs_line, format!("need `{need}` has no services in [needs]")));
        };
        for service in list {
            if !services.contains(service) {
                services.push(service.clone());
            }
        }
    }

    let unknown_org = |slug: &toml::Spanned<String>| {
        fail(
            at(slug.span().start),
            format!("organisation `{}` is not in the registry", slug.get_ref()),
        )
    };
    let target = match (&then.organisation, then.regional_care_coordinator) {
        (Some(_), true) => {
            return Err(fail(
                then_line,
                "name an organisation or set regional_care_coordinator, not both".into(),
            ));
        }
        (Some(slug), false) => {
            let org = registry.get(slug.get_ref()).ok_or_else(|| unknown_org(slug))?;
            let line = at(slug.span().start);
            if let Some(s) = services.iter().find(|s| !org.offers(s)) {
                return Err(fail(
                    line,
                    format!("organisation `{}` does not offer service `{s}`", org.slug),
                ));
            }
            if !space.regions.is_empty() && !space.regions.iter().any(|r| org.serves_region(r)) {
                return Err(fail(
                    line,
                    format!(
                        "unreachable: organisation `{}` serves none of the rule's regions",
                        org.slug
                    ),
                ));
            }
            for service in &services {
                if let Some(offer) = registry.offer(&org.slug, service)
                    && let Some(why) = space.why_not(offer)
                {
                    return Err(fail(
                        line,
                        format!(
                            "unreachable: no case meeting the conditions is eligible for `{service}` at `{}` ({why})",
                            org.slug
                        ),
                    ));
                }
            }
            Target::Organisation(org.slug.clone())
        }
        (None, regional) => {
            if let Some(f) = then.fallback.as_ref().filter(|_| !regional) {
                return Err(fail(
                    at(f.span().start),
                    "a fallback only applies with regional_care_coordinator = true".into(),
                ));
            }
            if regional {
                let fallback = match (&then.fallback, &then.fallback_explanation) {
                    (None, None) => None,
                    (Some(slug), Some(explanation)) => {
                        let org = registry.get(slug.get_ref()).ok_or_else(|| unknown_org(slug))?;
                        if let Some(s) = services.iter().find(|s| !org.offers(s)) {
                            return Err(fail(
                                at(slug.span().start),
                                format!("fallback organisation `{}` does not offer service `{s}`", org.slug),
                            ));
                        }
                        let text = explanation.get_ref().trim().to_string();
                        if text.is_empty() {
                            return Err(fail(
                                at(explanation.span().start),
                                "the fallback explanation is empty".into(),
                            ));
                        }
                        Some(Fallback {
                            organisation: org.slug.clone(),
                            explanation: text,
                        })
                    }
                    (Some(slug), None) => {
                        return Err(fail(
                            at(slug.span().start),
                            "a fallback needs a fallback_explanation".into(),
                        ));
                    }
                    (None, Some(e)) => {
                        return Err(fail(
                            at(e.span().start),
                            "a fallback_explanation needs a fallback".into(),
                        ));
                    }
                };
                Target::RegionalCareCoordinator { fallback }
            } else {
                if let Some(e) = then.fallback_explanation.as_ref() {
                    return Err(fail(
                        at(e.span().start),
                        "a fallback_explanation needs a fallback".into(),
                    ));
                }
                Target::AnyOffering
            }
        }
    };

    // Placeholders.
    let fallback_text = match &target {
        Target::RegionalCareCoordinator { fallback: Some(f), .. } => Some(f.explanation.as_str()),
        _ => None,
    };
    for (text_of, line) in [
        (Some(explanation.as_str()), explanation_line),
        (fallback_text, then_line),
    ] {
        let Some(t) = text_of else { continue };
        let rest = t.replace(REGION_PLACEHOLDER, "");
        if rest.contains('{') || rest.contains('}') {
            return Err(fail(
                line,
                format!("explanations know one placeholder, {REGION_PLACEHOLDER}"),
            ));
        }
        if t.contains(REGION_PLACEHOLDER) && !matches!(target, Target::RegionalCareCoordinator { .. }) {
            return Err(fail(
                line,
                format!("{REGION_PLACEHOLDER} can only be used in a regional_care_coordinator rule"),
            ));
        }
    }

    // Can anything it yields ever be admitted?
    if !matches!(target, Target::Organisation(_)) {
        let candidates = static_candidates(registry, &target, &services, &space);
        let admitted = candidates.iter().any(|org| {
            services.iter().any(|s| {
                registry
                    .offer(&org.slug, s)
                    .is_some_and(|offer| space.why_not(offer).is_none())
            })
        });
        if !admitted {
            let whom = match &target {
                Target::AnyOffering => "no organisation that offers",
                _ => "no care coordinator (or fallback) that offers",
            };
            return Err(fail(
                then_line,
                format!(
                    "unreachable: {whom} {} admits a case meeting the conditions",
                    services.join(" or ")
                ),
            ));
        }
    }

    Ok(Rule {
        id: entry.id.clone(),
        priority,
        explanation,
        line: header,
        when,
        needs,
        target,
    })
}

/// The organisations a rule could ever route to, given the regions its conditions allow.
fn static_candidates<'a>(
    registry: &'a Registry,
    target: &Target,
    services: &[String],
    space: &Space,
) -> Vec<&'a Organisation> {
    let in_space = |org: &Organisation| space.regions.is_empty() || space.regions.iter().any(|r| org.serves_region(r));
    match target {
        Target::Organisation(slug) => registry.get(slug).into_iter().collect(),
        Target::AnyOffering => registry
            .organisations
            .values()
            .filter(|o| services.iter().any(|s| o.offers(s)) && in_space(o))
            .collect(),
        Target::RegionalCareCoordinator { fallback } => registry
            .organisations
            .values()
            .filter(|o| is_regional_coordinator(o) && in_space(o))
            .chain(fallback.as_ref().and_then(|f| registry.get(&f.organisation)))
            .collect(),
    }
}

fn is_regional_coordinator(org: &Organisation) -> bool {
    org.kind == OrganisationKind::CareCoordination && !org.is_national()
}

/// Every case a rule's conditions allow, as far as eligibility is concerned.
struct Space {
    /// Ages a matching case may have.
    low: u8,
    high: u8,
    minors: bool,
    adults: bool,
    forms: Vec<ExploitationForm>,
    genders: Vec<Gender>,
    nationalities: Vec<NationalityGroup>,
    regions: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum SpaceProblem {
    MinAboveMax,
    MinorTooOld,
    AdultTooYoung,
    ReflectionWithoutNonEu,
}

impl SpaceProblem {
    fn message(self, when: &Conditions) -> String {
        let min = when.min_age.unwrap_or(0);
        let max = when.max_age.unwrap_or(Age::MAX);
        match self {
            Self::MinAboveMax => format!("min_age {min} is above max_age {max}"),
            Self::MinorTooOld => {
                format!("minor = true with min_age {min}: a minor is under 18")
            }
            Self::AdultTooYoung => {
                format!("minor = false with max_age {max}: an adult is 18 or over")
            }
            Self::ReflectionWithoutNonEu => "in_reflection_period = true, but nationalities \
                 leaves out non_eu: only non-EU nationals have a reflection period"
                .to_string(),
        }
    }
}

impl Space {
    fn of(when: &Conditions) -> Result<Self, SpaceProblem> {
        let minor_top = Age::MAJORITY - 1;
        let mut low = when.min_age.unwrap_or(0);
        let mut high = when.max_age.unwrap_or(Age::MAX);
        if low > high {
            return Err(SpaceProblem::MinAboveMax);
        }
        match when.minor {
            Some(true) if low > minor_top => return Err(SpaceProblem::MinorTooOld),
            Some(true) => high = high.min(minor_top),
            Some(false) if high < Age::MAJORITY => return Err(SpaceProblem::AdultTooYoung),
            Some(false) => low = low.max(Age::MAJORITY),
            None => {}
        }
        if when.in_reflection_period == Some(true)
            && !when.nationalities.is_empty()
            && !when.nationalities.contains(&NationalityGroup::NonEu)
        {
            return Err(SpaceProblem::ReflectionWithoutNonEu);
        }
        Ok(Self {
            low,
            high,
            minors: when.minor != Some(false) && low < Age::MAJORITY,
            adults: when.minor != Some(true) && high >= Age::MAJORITY,
            forms: when.forms.clone(),
            genders: when.genders.clone(),
            nationalities: when.nationalities.clone(),
            regions: when.regions.clone(),
        })
    }

    /// Why no case in this space is eligible for `offer`; `None` when some case is.
    fn why_not(&self, offer: &ServiceOffer) -> Option<&'static str> {
        let minor_top = Age::MAJORITY - 1;
        let as_minor = self.minors && offer.minors;
        let as_adult = self.adults && offer.adults;
        if !as_minor && !as_adult {
            return Some(if self.minors {
                "the service admits adults only"
            } else {
                "the service admits minors only"
            });
        }
        let age_ok = (as_minor && offer.admits_some_age_in(self.low, self.high.min(minor_top)))
            || (as_adult && offer.admits_some_age_in(self.low.max(Age::MAJORITY), self.high));
        if !age_ok {
            return Some("the service's age range excludes every age the conditions allow");
        }
        // A case without a recorded gender or nationality is never refused on it.
        let overlap = |wanted: bool, ok: bool| !wanted || ok;
        if !overlap(
            !self.genders.is_empty() && !self.genders.contains(&Gender::Unknown),
            self.genders.iter().any(|g| offer.admits_gender(*g)),
        ) {
            return Some("the service admits none of the rule's genders");
        }
        if !overlap(!self.forms.is_empty(), self.forms.iter().any(|f| offer.admits_form(*f))) {
            return Some("the service admits none of the rule's forms of exploitation");
        }
        if !overlap(
            !self.nationalities.is_empty() && !self.nationalities.contains(&NationalityGroup::Unknown),
            self.nationalities.iter().any(|n| offer.admits_nationality(*n)),
        ) {
            return Some("the service admits none of the rule's nationalities");
        }
        None
    }
}

impl Conditions {
    /// Whether every condition that is set holds for `case` on `today`.
    pub fn hold(&self, case: &CaseProfile, today: NaiveDate) -> bool {
        let any_or_empty = |empty: bool, any: bool| empty || any;
        let (low, high) = case.age_span();
        any_or_empty(
            self.forms.is_empty(),
            self.forms.iter().any(|f| case.exploitation_forms.contains(*f)),
        ) && any_or_empty(self.needs.is_empty(), self.needs.iter().any(|n| case.needs.contains(n)))
            && self.minor.is_none_or(|m| m == case.is_minor())
            && self.min_age.is_none_or(|min| low >= min)
            && self.max_age.is_none_or(|max| high <= max)
            && any_or_empty(
                self.genders.is_empty(),
                self.genders.contains(&case.gender.unwrap_or(Gender::Unknown)),
            )
            && any_or_empty(
                self.nationalities.is_empty(),
                self.nationalities.contains(&case.nationality_group()),
            )
            && any_or_empty(
                self.regions.is_empty(),
                case.region.as_ref().is_some_and(|r| self.regions.contains(r)),
            )
            && self.unaccompanied.is_none_or(|u| u == case.unaccompanied)
            && self.in_reflection_period.is_none_or(|r| r == case.in_reflection_period)
            && self.incident_within_days.is_none_or(|days| {
                case.days_since_incident(today)
                    .is_some_and(|since| since <= u32::from(days))
            })
    }
}

// ---------------------------------------------------------------------------
// Suggestions
// ---------------------------------------------------------------------------

/// Places free per (organisation slug, service code), as intake staff last reported them.
/// A capacity-managed service missing from the map has unknown capacity and counts as
/// available: a missing report must not hide a service.
pub type Capacity = BTreeMap<(String, String), u32>;

/// The result of routing a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Routing {
    /// Best first.
    pub suggestions: Vec<Suggestion>,
    /// Organisations (or one of their services) a matching rule pointed at but that cannot
    /// take this case, in the order the rules found them; one entry per organisation,
    /// service and reason.
    pub excluded: Vec<Exclusion>,
    /// Needs the case records that no suggestion meets.
    pub unmet_needs: Vec<Need>,
}

/// One suggested destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    /// Organisation slug.
    pub organisation: String,
    /// Services to request, in the order the rules yielded them.
    pub services: Vec<String>,
    /// The rules that led here, highest priority first.
    pub matched_rules: Vec<MatchedRule>,
    /// 100 × the highest priority among `matched_rules` + their number (at most 99).
    /// Suggestions are ordered by score, then slug.
    pub score: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MatchedRule {
    pub id: String,
    /// The rule's explanation (or its fallback explanation), with `{region}` filled in.
    pub explanation: String,
    pub priority: u16,
}

/// An organisation, or one of its services, that cannot take this case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Exclusion {
    pub organisation: String,
    /// `None` when the whole organisation is excluded.
    pub service: Option<String>,
    pub reason: ExclusionReason,
    /// The rule that pointed here; `None` from [`eligibility`].
    pub rule: Option<String>,
}

#[derive(Default)]
struct Candidate {
    services: Vec<String>,
    matched: Vec<MatchedRule>,
}

/// Ranked, explained suggestions for `case`, referred by `sender` (an organisation slug).
///
/// Every rule whose conditions hold (highest priority first) points at organisations; each
/// one is checked as [`eligibility`] does, plus: the sender is never suggested
/// (`is_sender`). An organisation is suggested with the services that passed; what failed is
/// in `excluded`. Order: highest priority among the matched rules, then the number of
/// matched rules, then slug. Deterministic.
pub fn suggest(
    rules: &RoutingRules,
    registry: &Registry,
    capacity: &Capacity,
    sender: &str,
    case: &CaseProfile,
    today: NaiveDate,
) -> Routing {
    let mut candidates: BTreeMap<String, Candidate> = BTreeMap::new();
    let mut excluded: Vec<Exclusion> = Vec::new();
    let mut exclude = |organisation: &str, service: Option<&str>, reason, rule: &Rule| {
        let known = excluded
            .iter()
            .any(|e| e.organisation == organisation && e.service.as_deref() == service && e.reason == reason);
        if !known {
            excluded.push(Exclusion {
                organisation: organisation.to_string(),
                service: service.map(str::to_string),
                reason,
                rule: Some(rule.id.clone()),
            });
        }
    };

    for rule in rules.rules.iter().filter(|r| r.when.hold(case, today)) {
        let services = rules.services_for(&rule.needs);
        for (org, explanation) in targets(rule, registry, case, &services) {
            let org_reason = if org.slug == sender {
                Some(ExclusionReason::IsSender)
            } else {
                organisation_exclusions(org, case).into_iter().next()
            };
            if let Some(reason) = org_reason {
                exclude(&org.slug, None, reason, rule);
                continue;
            }
            let mut admitted = Vec::new();
            for service in &services {
                let Some(offer) = registry.offer(&org.slug, service) else {
                    continue;
                };
                match service_exclusion(offer, &org.slug, capacity, case) {
                    Some(reason) => exclude(&org.slug, Some(service), reason, rule),
                    None => admitted.push(service.clone()),
                }
            }
            if admitted.is_empty() {
                continue;
            }
            let candidate = candidates.entry(org.slug.clone()).or_default();
            for service in admitted {
                if !candidate.services.contains(&service) {
                    candidate.services.push(service);
                }
            }
            if !candidate.matched.iter().any(|m| m.id == rule.id) {
                candidate.matched.push(MatchedRule {
                    id: rule.id.clone(),
                    explanation,
                    priority: rule.priority,
                });
            }
        }
    }

    let mut suggestions: Vec<Suggestion> = candidates
        .into_iter()
        .map(|(organisation, c)| {
            let top = c.matched.iter().map(|m| m.priority).max().unwrap_or(0);
            let count = u32::try_from(c.matched.len().min(99)).unwrap_or(99);
            Suggestion {
                organisation,
                services: c.services,
                matched_rules: c.matched,
                score: u32::from(top) * 100 + count,
            }
        })
        .collect();
    suggestions.sort_by(|a, b| {
        let key = |s: &Suggestion| (s.matched_rules.iter().map(|m| m.priority).max(), s.matched_rules.len());
        key(b).cmp(&key(a)).then_with(|| a.organisation.cmp(&b.organisation))
    });

    let offered: BTreeSet<&String> = suggestions.iter().flat_map(|s| &s.services).collect();
    let unmet_needs = case
        .needs
        .iter()
        .filter(|need| {
            !rules
                .needs
                .get(need)
                .is_some_and(|services| services.iter().any(|s| offered.contains(s)))
        })
        .copied()
        .collect();
    Routing {
        suggestions,
        excluded,
        unmet_needs,
    }
}

/// The organisations `rule` points at for `case`, each with the explanation to show.
fn targets<'a>(
    rule: &Rule,
    registry: &'a Registry,
    case: &CaseProfile,
    services: &[String],
) -> Vec<(&'a Organisation, String)> {
    let fill = |text: &str| match &case.region {
        Some(region) => text.replace(REGION_PLACEHOLDER, region),
        None => text.to_string(),
    };
    let with_rule_text = |orgs: Vec<&'a Organisation>| orgs.into_iter().map(|o| (o, fill(&rule.explanation))).collect();
    match &rule.target {
        Target::Organisation(slug) => with_rule_text(registry.get(slug).into_iter().collect()),
        Target::AnyOffering => with_rule_text(
            registry
                .organisations
                .values()
                .filter(|o| services.iter().any(|s| o.offers(s)))
                .filter(|o| o.is_national() || case.region.as_ref().is_some_and(|r| o.serves_region(r)))
                .collect(),
        ),
        Target::RegionalCareCoordinator { fallback } => {
            let Some(region) = &case.region else {
                return Vec::new();
            };
            let coordinators: Vec<&Organisation> = registry
                .organisations
                .values()
                .filter(|o| is_regional_coordinator(o) && o.serves_region(region))
                .collect();
            if !coordinators.is_empty() {
                return with_rule_text(coordinators);
            }
            fallback
                .iter()
                .filter_map(|f| registry.get(&f.organisation).map(|o| (o, fill(&f.explanation))))
                .collect()
        }
    }
}

/// Reasons the whole organisation cannot take the case, sender aside.
fn organisation_exclusions(org: &Organisation, case: &CaseProfile) -> Vec<ExclusionReason> {
    let mut reasons = Vec::new();
    if case.declined_by.contains(&org.slug) {
        reasons.push(ExclusionReason::DeclinedBefore);
    }
    if case.region.as_ref().is_some_and(|r| !org.serves_region(r)) {
        reasons.push(ExclusionReason::OutOfRegion);
    }
    reasons
}

/// The first reason `offer` cannot take the case, checked in this order: minors/adults,
/// age, gender, form of exploitation, nationality, capacity.
fn service_exclusion(
    offer: &ServiceOffer,
    organisation: &str,
    capacity: &Capacity,
    case: &CaseProfile,
) -> Option<ExclusionReason> {
    let minor = case.is_minor();
    let (low, high) = case.age_span();
    if minor && !offer.minors {
        return Some(ExclusionReason::DoesNotAcceptMinors);
    }
    if !minor && !offer.adults {
        return Some(ExclusionReason::MinorsOnly);
    }
    if !offer.admits_some_age_in(low, high) {
        return Some(ExclusionReason::NotEligibleAge);
    }
    if let Some(gender) = case.gender.filter(|g| *g != Gender::Unknown)
        && !offer.admits_gender(gender)
    {
        return Some(ExclusionReason::NotEligibleGender);
    }
    if !case.exploitation_forms.iter().any(|f| offer.admits_form(f)) {
        return Some(ExclusionReason::NotEligibleExploitationForm);
    }
    let group = case.nationality_group();
    if group != NationalityGroup::Unknown && !offer.admits_nationality(group) {
        return Some(ExclusionReason::NotEligibleNationality);
    }
    let key = (organisation.to_string(), offer.service.clone());
    if offer.capacity_managed && capacity.get(&key) == Some(&0) {
        return Some(ExclusionReason::NoCapacity);
    }
    None
}

/// The hard eligibility of a referral of `case` to `to_org` for `services`: every reason
/// the organisation cannot take the case (declined before, out of region), then per
/// requested service the first reason its offer cannot. Empty means eligible.
///
/// The same checks [`suggest`] applies. Services the organisation does not offer, an
/// unknown organisation and a referral to oneself are left to the submit guards
/// ([`crate::domain::referral::submit_guards`]).
pub fn eligibility(
    registry: &Registry,
    capacity: &Capacity,
    case: &CaseProfile,
    to_org: &str,
    services: &[String],
) -> Vec<Exclusion> {
    let Some(org) = registry.get(to_org) else {
        return Vec::new();
    };
    let whole = organisation_exclusions(org, case)
        .into_iter()
        .map(|reason| (None, reason));
    let per_service = services.iter().filter_map(|service| {
        let offer = registry.offer(to_org, service)?;
        let reason = service_exclusion(offer, to_org, capacity, case)?;
        Some((Some(service.clone()), reason))
    });
    let mut out: Vec<Exclusion> = Vec::new();
    for (service, reason) in whole.chain(per_service) {
        let exclusion = Exclusion {
            organisation: to_org.to_string(),
            service,
            reason,
            rule: None,
        };
        if !out.contains(&exclusion) {
            out.push(exclusion);
        }
    }
    out
}

/// The prefix of the guard codes an override reason lifts (`eligibility_no_capacity`).
pub const OVERRIDABLE_PREFIX: &str = "eligibility_";

/// Whether a failed submit guard is one the sending caseworker may override, with a reason.
pub fn is_overridable(guard: &str) -> bool {
    guard.starts_with(OVERRIDABLE_PREFIX)
}

/// The directory's exclusions of a handover that a caseworker may override with a reason,
/// as `(code, description)`: those the referral guards do not already refuse. Region,
/// minors and the sender itself are checked for the whole organisation by the submit
/// guards (never overridable), so they appear here only where a single service excludes
/// them (for minors: only at a receiver that accepts minors at all).
pub fn overridable_exclusions(exclusions: &[Exclusion], receiver_accepts_minors: bool) -> Vec<(String, String)> {
    let covered = [
        ExclusionReason::OutOfRegion,
        ExclusionReason::DoesNotAcceptMinors,
        ExclusionReason::IsSender,
    ];
    exclusions
        .iter()
        .filter(|e| !(e.service.is_none() && covered.contains(&e.reason)))
        .filter(|e| e.reason != ExclusionReason::DoesNotAcceptMinors || receiver_accepts_minors)
        .map(|e| {
            let place = match &e.service {
                Some(service) => format!("{service} at {}", e.organisation),
                None => e.organisation.clone(),
            };
            (
                format!("{OVERRIDABLE_PREFIX}{}", e.reason.as_str()),
                format!("{place}: {}", e.reason.description()),
            )
        })
        .collect()
}

impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.service {
            Some(service) => write!(f, "{} ({service}): {}", self.organisation, self.reason),
            None => write!(f, "{}: {}", self.organisation, self.reason),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use ExclusionReason as R;
    use ExploitationForm as F;

    #[test]
    fn only_what_no_submit_guard_refuses_can_be_overridden() {
        let exclusion = |service: Option<&str>, reason| Exclusion {
            organisation: "shelter".into(),
            service: service.map(str::to_string),
            reason,
            rule: None,
        };
        let exclusions = [
            exclusion(None, R::OutOfRegion),
            exclusion(None, R::IsSender),
            exclusion(None, R::DoesNotAcceptMinors),
            exclusion(Some("shelter_placement"), R::NoCapacity),
            exclusion(Some("shelter_placement"), R::OutOfRegion),
            exclusion(Some("guardianship"), R::DoesNotAcceptMinors),
        ];
        let codes = |accepts_minors| -> Vec<String> {
            overridable_exclusions(&exclusions, accepts_minors)
                .into_iter()
                .map(|(code, _)| code)
                .collect()
        };
        assert_eq!(
            codes(true),
            vec![
                "eligibility_no_capacity",
                "eligibility_out_of_region",
                "eligibility_does_not_accept_minors"
            ]
        );
        assert_eq!(
            codes(false),
            vec!["eligibility_no_capacity", "eligibility_out_of_region"],
            "a receiver that takes no minors is refused by the guard already"
        );
        let (_, text) = &overridable_exclusions(&exclusions, true)[0];
        assert!(text.starts_with("shelter_placement at shelter: "), "{text}");
    }

    const SHIPPED_REGISTRY: &str = include_str!("../../config/organisations.toml");
    const SHIPPED_RULES: &str = include_str!("../../config/routing.toml");

    fn registry() -> Registry {
        Registry::parse(SHIPPED_REGISTRY).unwrap()
    }

    fn shipped() -> (Registry, RoutingRules) {
        let registry = registry();
        let rules = RoutingRules::parse(SHIPPED_RULES, &registry).unwrap();
        (registry, rules)
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()
    }

    fn days_ago(days: u64) -> Option<NaiveDate> {
        today().checked_sub_days(chrono::Days::new(days))
    }

    fn cc(code: &str) -> Option<CountryCode> {
        Some(CountryCode::parse(code).unwrap())
    }

    /// A case with `forms`, changed by `edit`.
    fn case(forms: &[F], edit: impl FnOnce(&mut CaseProfile)) -> CaseProfile {
        let mut case = CaseProfile::new(ExploitationForms::parse(forms.to_vec()).unwrap());
        edit(&mut case);
        case
    }

    fn adult_woman(c: &mut CaseProfile) {
        c.age = Some(31);
        c.gender = Some(Gender::Female);
        c.nationality = cc("NL");
    }

    fn needs(list: &[Need]) -> BTreeSet<Need> {
        list.iter().copied().collect()
    }

    fn route(sender: &str, case: &CaseProfile) -> Routing {
        route_with(sender, case, &Capacity::new())
    }

    fn route_with(sender: &str, case: &CaseProfile, capacity: &Capacity) -> Routing {
        let (registry, rules) = shipped();
        suggest(&rules, &registry, capacity, sender, case, today())
    }

    fn suggestion<'a>(routing: &'a Routing, org: &str) -> Option<&'a Suggestion> {
        routing.suggestions.iter().find(|s| s.organisation == org)
    }

    fn slugs(routing: &Routing) -> Vec<&str> {
        routing.suggestions.iter().map(|s| s.organisation.as_str()).collect()
    }

    /// Whether `rule` led to `org` for this routing.
    fn matched(routing: &Routing, org: &str, rule: &str) -> bool {
        suggestion(routing, org).is_some_and(|s| s.matched_rules.iter().any(|m| m.id == rule))
    }

    fn fired_anywhere(routing: &Routing, rule: &str) -> bool {
        routing
            .suggestions
            .iter()
            .any(|s| s.matched_rules.iter().any(|m| m.id == rule))
            || routing.excluded.iter().any(|e| e.rule.as_deref() == Some(rule))
    }

    fn excluded(routing: &Routing, org: &str, service: Option<&str>) -> Option<ExclusionReason> {
        routing
            .excluded
            .iter()
            .find(|e| e.organisation == org && e.service.as_deref() == service)
            .map(|e| e.reason)
    }

    // -----------------------------------------------------------------------
    // The shipped files
    // -----------------------------------------------------------------------

    #[test]
    fn shipped_rules_parse_against_the_shipped_registry() {
        let (_, rules) = shipped();
        assert!(rules.rules.len() >= 10);
        assert!(
            rules.rules.windows(2).all(|w| w[0].priority >= w[1].priority),
            "rules are kept highest priority first"
        );
        for need in Need::ALL {
            assert!(rules.needs.contains_key(&need), "need {need} has no services");
        }
        // No need leads to the police.
        for services in rules.needs.values() {
            assert!(!services.contains(&"police_contact".to_string()));
        }
    }

    /// Every shipped rule has its own test below; adding a rule without one fails here.
    #[test]
    fn every_shipped_rule_has_a_test() {
        let tested = [
            "acute-sexual-violence",
            "unaccompanied-foreign-minor",
            "cosm-shelter",
            "cosm-shelter-eu",
            "image-removal",
            "minor-protected-shelter",
            "young-person-criminal-exploitation",
            "minor-care-coordination",
            "young-person-sexual-exploitation",
            "victim-support-emotional",
            "victim-support-practical",
            "victim-support-legal",
            "adult-shelter",
            "regional-care-coordination",
        ];
        let (_, rules) = shipped();
        let ids: BTreeSet<&str> = rules.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, tested.into_iter().collect());
    }

    #[test]
    fn enum_text_round_trips() {
        for need in Need::ALL {
            assert_eq!(serde_json::to_string(&need).unwrap(), format!("\"{need}\""));
            assert_eq!(need.as_str().parse::<Need>(), Ok(need));
        }
        for reason in ExclusionReason::ALL {
            assert_eq!(serde_json::to_string(&reason).unwrap(), format!("\"{reason}\""));
            assert_eq!(reason.as_str().parse::<ExclusionReason>(), Ok(reason));
            assert!(reason.description().ends_with('.'));
        }
    }

    // -----------------------------------------------------------------------
    // One test per rule
    // -----------------------------------------------------------------------

    #[test]
    fn rule_acute_sexual_violence() {
        let recent = case(&[F::Sexual], |c| {
            adult_woman(c);
            c.last_incident_date = days_ago(7);
        });
        let routing = route("fier", &recent);
        assert!(matched(&routing, "csg", "acute-sexual-violence"));
        assert_eq!(
            suggestion(&routing, "csg").unwrap().services,
            ["acute_sexual_violence_care"]
        );
        // Day 8 is outside the golden week; a labour case or an unknown date never matches.
        for other in [
            case(&[F::Sexual], |c| c.last_incident_date = days_ago(8)),
            case(&[F::Labour], |c| c.last_incident_date = days_ago(1)),
            case(&[F::Sexual], |_| {}),
            case(&[F::Sexual], |c| c.last_incident_date = today().succ_opt()),
        ] {
            assert!(!fired_anywhere(&route("fier", &other), "acute-sexual-violence"));
        }
        // Children too: CSG takes every age.
        let child = case(&[F::Sexual], |c| {
            c.age = Some(13);
            c.last_incident_date = days_ago(0);
        });
        assert!(matched(&route("fier", &child), "csg", "acute-sexual-violence"));
    }

    #[test]
    fn rule_unaccompanied_foreign_minor() {
        let amv = case(&[F::Labour], |c| {
            c.age = Some(16);
            c.nationality = cc("ER");
            c.unaccompanied = true;
        });
        let routing = route("comensha", &amv);
        assert!(matched(&routing, "nidos", "unaccompanied-foreign-minor"));
        assert_eq!(
            suggestion(&routing, "nidos").unwrap().services,
            ["guardianship", "shelter_placement"]
        );
        // Unknown nationality counts as foreign here; a Dutch child or an accompanied one
        // does not match.
        let unknown = case(&[F::Labour], |c| {
            c.minor = true;
            c.unaccompanied = true;
        });
        assert!(matched(
            &route("fier", &unknown),
            "nidos",
            "unaccompanied-foreign-minor"
        ));
        for other in [
            case(&[F::Labour], |c| {
                c.age = Some(16);
                c.nationality = cc("NL");
                c.unaccompanied = true;
            }),
            case(&[F::Labour], |c| {
                c.age = Some(16);
                c.nationality = cc("ER");
            }),
        ] {
            assert!(!fired_anywhere(&route("fier", &other), "unaccompanied-foreign-minor"));
        }
    }

    #[test]
    fn rule_cosm_shelter() {
        let moroccan = case(&[F::Labour], |c| {
            c.age = Some(40);
            c.gender = Some(Gender::Male);
            c.nationality = cc("MA");
            c.in_reflection_period = true;
            c.needs = needs(&[Need::Shelter]);
        });
        let routing = route("fier", &moroccan);
        assert!(matched(&routing, "comensha", "cosm-shelter"));
        assert_eq!(routing.suggestions[0].organisation, "comensha");
        // Outside the reflection period the rule does not apply (the generic adult shelter
        // rule may still point at COSM).
        let outside = case(&[F::Labour], |c| {
            c.age = Some(40);
            c.nationality = cc("MA");
            c.needs = needs(&[Need::Shelter]);
        });
        assert!(!fired_anywhere(&route("fier", &outside), "cosm-shelter"));
        let dutch = case(&[F::Labour], |c| {
            c.age = Some(40);
            c.nationality = cc("NL");
            c.in_reflection_period = true;
            c.needs = needs(&[Need::Shelter]);
        });
        assert!(!fired_anywhere(&route("fier", &dutch), "cosm-shelter"));
    }

    #[test]
    fn rule_cosm_shelter_eu() {
        let polish = case(&[F::Labour], |c| {
            c.age = Some(35);
            c.nationality = cc("PL");
            c.needs = needs(&[Need::Shelter]);
        });
        let routing = route("fier", &polish);
        assert!(matched(&routing, "comensha", "cosm-shelter-eu"));
        assert!(!fired_anywhere(&routing, "cosm-shelter"));
        let moroccan = case(&[F::Labour], |c| {
            c.age = Some(35);
            c.nationality = cc("MA");
            c.needs = needs(&[Need::Shelter]);
        });
        assert!(!fired_anywhere(&route("fier", &moroccan), "cosm-shelter-eu"));
    }

    #[test]
    fn rule_image_removal() {
        let images = case(&[F::Sexual], |c| {
            c.age = Some(30);
            c.needs = needs(&[Need::ImageRemoval]);
        });
        let routing = route("fier", &images);
        assert!(matched(&routing, "offlimits", "image-removal"));
        assert_eq!(suggestion(&routing, "offlimits").unwrap().services, ["image_removal"]);
        let without = case(&[F::Sexual], |c| c.age = Some(30));
        assert!(suggestion(&route("fier", &without), "offlimits").is_none());
    }

    #[test]
    fn rule_minor_protected_shelter() {
        let girl = case(&[F::Sexual], |c| {
            c.age = Some(15);
            c.gender = Some(Gender::Female);
            c.nationality = cc("NL");
            c.region = Some("amsterdam".into());
            c.needs = needs(&[Need::Shelter]);
        });
        let routing = route("slachtofferhulp", &girl);
        assert!(matched(&routing, "fier", "minor-protected-shelter"));
        assert!(
            suggestion(&routing, "fier")
                .unwrap()
                .services
                .contains(&"shelter_placement".to_string())
        );
        // Adult routes are shown as excluded, never suggested.
        assert_eq!(
            excluded(&routing, "comensha", Some("shelter_placement")),
            Some(R::DoesNotAcceptMinors)
        );
        assert_eq!(
            excluded(&routing, "zorgcoordinatie-amsterdam", Some("shelter_placement")),
            Some(R::DoesNotAcceptMinors)
        );
        assert!(!fired_anywhere(&routing, "adult-shelter"));
    }

    #[test]
    fn rule_young_person_criminal_exploitation() {
        let young = case(&[F::Criminal], |c| c.age = Some(22));
        let routing = route("comensha", &young);
        assert!(matched(&routing, "fier", "young-person-criminal-exploitation"));
        assert_eq!(suggestion(&routing, "fier").unwrap().services, ["psychosocial_support"]);
        // 23 is too old; an adult of unknown age is not known to be young.
        for other in [case(&[F::Criminal], |c| c.age = Some(23)), case(&[F::Criminal], |_| {})] {
            assert!(!fired_anywhere(
                &route("comensha", &other),
                "young-person-criminal-exploitation"
            ));
        }
        // A presumed minor of unknown age is.
        let presumed = case(&[F::Criminal], |c| c.minor = true);
        assert!(matched(
            &route("comensha", &presumed),
            "fier",
            "young-person-criminal-exploitation"
        ));
    }

    #[test]
    fn rule_minor_care_coordination() {
        let child = case(&[F::Labour], |c| {
            c.age = Some(14);
            c.region = Some("utrecht".into());
        });
        let routing = route("fier", &child);
        assert!(matched(&routing, "zorgcoordinatie-utrecht", "minor-care-coordination"));
        let rule = suggestion(&routing, "zorgcoordinatie-utrecht")
            .unwrap()
            .matched_rules
            .iter()
            .find(|m| m.id == "minor-care-coordination")
            .unwrap();
        assert!(rule.explanation.contains("care coordinator for utrecht"));
        // Without a region there is no regional coordinator to name.
        let nowhere = case(&[F::Labour], |c| c.age = Some(14));
        assert!(!fired_anywhere(&route("fier", &nowhere), "minor-care-coordination"));
        // In a region without one, CoMensha coordinates, with its own explanation.
        let zuid = case(&[F::Labour], |c| {
            c.age = Some(14);
            c.region = Some("zuid".into());
        });
        let routing = route("fier", &zuid);
        let comensha = suggestion(&routing, "comensha").unwrap();
        let rule = comensha
            .matched_rules
            .iter()
            .find(|m| m.id == "minor-care-coordination")
            .unwrap();
        assert!(rule.explanation.contains("region zuid, which has no care coordinator"));
    }

    #[test]
    fn rule_young_person_sexual_exploitation() {
        let young = case(&[F::Sexual], |c| {
            c.age = Some(19);
            c.gender = Some(Gender::Female);
        });
        let routing = route("slachtofferhulp", &young);
        assert!(matched(&routing, "fier", "young-person-sexual-exploitation"));
        let older = case(&[F::Sexual], |c| c.age = Some(30));
        assert!(!fired_anywhere(
            &route("slachtofferhulp", &older),
            "young-person-sexual-exploitation"
        ));
    }

    #[test]
    fn rules_victim_support() {
        for (need, rule, service) in [
            (
                Need::EmotionalSupport,
                "victim-support-emotional",
                "psychosocial_support",
            ),
            (Need::PracticalSupport, "victim-support-practical", "practical_support"),
            (Need::LegalSupport, "victim-support-legal", "legal_support"),
        ] {
            let person = case(&[F::Labour], |c| {
                c.age = Some(45);
                c.needs = needs(&[need]);
            });
            let routing = route("fier", &person);
            assert!(matched(&routing, "slachtofferhulp", rule), "{rule}");
            assert_eq!(
                suggestion(&routing, "slachtofferhulp").unwrap().services,
                [service],
                "{rule} asks only for what is needed"
            );
        }
        let all = case(&[F::Labour], |c| {
            c.age = Some(45);
            c.needs = needs(&[Need::EmotionalSupport, Need::PracticalSupport, Need::LegalSupport]);
        });
        let routing = route("fier", &all);
        let shn = suggestion(&routing, "slachtofferhulp").unwrap();
        assert_eq!(shn.matched_rules.len(), 3);
        assert_eq!(shn.score, 60 * 100 + 3);
    }

    #[test]
    fn rule_victim_support_emotional() {
        let person = case(&[F::Other], |c| c.needs = needs(&[Need::EmotionalSupport]));
        assert!(matched(
            &route("fier", &person),
            "slachtofferhulp",
            "victim-support-emotional"
        ));
    }

    #[test]
    fn rule_victim_support_practical() {
        let person = case(&[F::Other], |c| c.needs = needs(&[Need::PracticalSupport]));
        assert!(matched(
            &route("fier", &person),
            "slachtofferhulp",
            "victim-support-practical"
        ));
    }

    #[test]
    fn rule_victim_support_legal() {
        let person = case(&[F::Other], |c| c.needs = needs(&[Need::LegalSupport]));
        assert!(matched(
            &route("fier", &person),
            "slachtofferhulp",
            "victim-support-legal"
        ));
    }

    #[test]
    fn rule_adult_shelter() {
        let man = case(&[F::Labour], |c| {
            c.age = Some(45);
            c.gender = Some(Gender::Male);
            c.nationality = cc("NL");
            c.region = Some("rotterdam".into());
            c.needs = needs(&[Need::Shelter]);
        });
        let routing = route("fier", &man);
        assert!(matched(&routing, "zorgcoordinatie-rotterdam", "adult-shelter"));
        assert_eq!(
            suggestion(&routing, "zorgcoordinatie-rotterdam").unwrap().services,
            ["shelter_placement", "care_coordination"]
        );
        // COSM is for foreign victims, Nidos for minors, Fier's shelter up to 27.
        assert_eq!(
            excluded(&routing, "comensha", Some("shelter_placement")),
            Some(R::NotEligibleNationality)
        );
        assert_eq!(
            excluded(&routing, "nidos", Some("shelter_placement")),
            Some(R::MinorsOnly)
        );
        // Other regions' coordinators are not candidates for a Rotterdam case.
        assert!(
            routing
                .suggestions
                .iter()
                .chain(std::iter::empty())
                .all(|s| !s.organisation.starts_with("zorgcoordinatie-")
                    || s.organisation == "zorgcoordinatie-rotterdam")
        );
        assert!(
            routing
                .excluded
                .iter()
                .all(|e| !e.organisation.starts_with("zorgcoordinatie-")
                    || e.organisation == "zorgcoordinatie-rotterdam")
        );
    }

    #[test]
    fn rule_regional_care_coordination() {
        let man = case(&[F::Labour], |c| {
            c.age = Some(50);
            c.region = Some("amsterdam".into());
        });
        let routing = route("fier", &man);
        assert_eq!(slugs(&routing), ["zorgcoordinatie-amsterdam"]);
        let rule = &routing.suggestions[0].matched_rules[0];
        assert_eq!(rule.id, "regional-care-coordination");
        assert!(rule.explanation.contains("care coordinator for amsterdam"));
        assert!(!rule.explanation.contains("{region}"));
        // No region: nothing regional to suggest.
        let nowhere = case(&[F::Labour], |c| c.age = Some(50));
        assert!(route("fier", &nowhere).suggestions.is_empty());
    }

    // -----------------------------------------------------------------------
    // One test per exclusion reason
    // -----------------------------------------------------------------------

    #[test]
    fn exclusion_is_sender() {
        let man = case(&[F::Labour], |c| {
            c.age = Some(50);
            c.region = Some("amsterdam".into());
        });
        let routing = route("zorgcoordinatie-amsterdam", &man);
        assert!(routing.suggestions.is_empty());
        assert_eq!(
            routing.excluded,
            [Exclusion {
                organisation: "zorgcoordinatie-amsterdam".into(),
                service: None,
                reason: R::IsSender,
                rule: Some("regional-care-coordination".into()),
            }]
        );
    }

    #[test]
    fn exclusion_declined_before() {
        let man = case(&[F::Labour], |c| {
            c.age = Some(50);
            c.region = Some("amsterdam".into());
            c.declined_by = ["zorgcoordinatie-amsterdam".to_string()].into();
        });
        let routing = route("fier", &man);
        assert!(routing.suggestions.is_empty());
        assert_eq!(
            excluded(&routing, "zorgcoordinatie-amsterdam", None),
            Some(R::DeclinedBefore)
        );
        let (registry, _) = shipped();
        assert_eq!(
            eligibility(
                &registry,
                &Capacity::new(),
                &man,
                "zorgcoordinatie-amsterdam",
                &["care_coordination".into()]
            )
            .iter()
            .map(|e| e.reason)
            .collect::<Vec<_>>(),
            [R::DeclinedBefore]
        );
    }

    #[test]
    fn declining_organisation_disappears_and_the_next_moves_up() {
        let woman = case(&[F::Sexual], |c| {
            adult_woman(c);
            c.region = Some("amsterdam".into());
            c.last_incident_date = days_ago(3);
            c.needs = needs(&[Need::LegalSupport]);
        });
        let before = route("fier", &woman);
        assert_eq!(slugs(&before), ["csg", "slachtofferhulp", "zorgcoordinatie-amsterdam"]);
        let declined = CaseProfile {
            declined_by: ["csg".to_string()].into(),
            ..woman.clone()
        };
        let after = route("fier", &declined);
        assert_eq!(slugs(&after), ["slachtofferhulp", "zorgcoordinatie-amsterdam"]);
        assert_eq!(after.suggestions[0], before.suggestions[1]);
        assert_eq!(excluded(&after, "csg", None), Some(R::DeclinedBefore));
        // And again.
        let twice = CaseProfile {
            declined_by: ["csg".to_string(), "slachtofferhulp".to_string()].into(),
            ..woman
        };
        assert_eq!(slugs(&route("fier", &twice)), ["zorgcoordinatie-amsterdam"]);
    }

    #[test]
    fn exclusion_out_of_region() {
        let (registry, _) = shipped();
        let man = case(&[F::Labour], |c| {
            c.age = Some(50);
            c.region = Some("amsterdam".into());
        });
        let refused = eligibility(
            &registry,
            &Capacity::new(),
            &man,
            "zorgcoordinatie-noord",
            &["care_coordination".into()],
        );
        assert_eq!(
            refused,
            [Exclusion {
                organisation: "zorgcoordinatie-noord".into(),
                service: None,
                reason: R::OutOfRegion,
                rule: None,
            }]
        );
        // Suggestions: a rule naming a regional organisation outside the case's region.
        let rules = RoutingRules::parse(
            "[needs]\ncare_coordination = [\"care_coordination\"]\n\n[[rule]]\nid = \"north\"\npriority = 1\nexplanation = \"North.\"\n[rule.then]\nneeds = [\"care_coordination\"]\norganisation = \"zorgcoordinatie-noord\"\n",
            &registry,
        )
        .unwrap();
        let routing = suggest(&rules, &registry, &Capacity::new(), "fier", &man, today());
        assert!(routing.suggestions.is_empty());
        assert_eq!(excluded(&routing, "zorgcoordinatie-noord", None), Some(R::OutOfRegion));
        // Without a region the region is not checked (as in the submit guards).
        let nowhere = case(&[F::Labour], |c| c.age = Some(50));
        assert!(
            eligibility(
                &registry,
                &Capacity::new(),
                &nowhere,
                "zorgcoordinatie-noord",
                &["care_coordination".into()]
            )
            .is_empty()
        );
    }

    #[test]
    fn exclusion_does_not_accept_minors() {
        let (registry, _) = shipped();
        let presumed = case(&[F::Sexual], |c| {
            c.minor = true;
            c.age = Some(19); // uncertain: the presumption wins
        });
        let refused = eligibility(
            &registry,
            &Capacity::new(),
            &presumed,
            "comensha",
            &["shelter_placement".into(), "care_coordination".into()],
        );
        assert_eq!(
            refused,
            [Exclusion {
                organisation: "comensha".into(),
                service: Some("shelter_placement".into()),
                reason: R::DoesNotAcceptMinors,
                rule: None,
            }]
        );
    }

    #[test]
    fn exclusion_minors_only() {
        let (registry, _) = shipped();
        let adult = case(&[F::Labour], |c| {
            c.age = Some(18);
            c.nationality = cc("ER");
        });
        let refused: Vec<_> = eligibility(
            &registry,
            &Capacity::new(),
            &adult,
            "nidos",
            &["guardianship".into(), "shelter_placement".into()],
        )
        .into_iter()
        .map(|e| (e.service.unwrap(), e.reason))
        .collect();
        assert_eq!(
            refused,
            [
                ("guardianship".to_string(), R::MinorsOnly),
                ("shelter_placement".to_string(), R::MinorsOnly)
            ]
        );
    }

    #[test]
    fn exclusion_not_eligible_age() {
        let woman = case(&[F::Sexual], |c| {
            adult_woman(c); // 31: Fier's shelter is for 12 to 27
            c.needs = needs(&[Need::Shelter]);
        });
        let routing = route("slachtofferhulp", &woman);
        assert_eq!(
            excluded(&routing, "fier", Some("shelter_placement")),
            Some(R::NotEligibleAge)
        );
        assert!(suggestion(&routing, "fier").is_none());
        // At 27 she is admitted.
        let younger = CaseProfile { age: Some(27), ..woman };
        assert!(suggestion(&route("slachtofferhulp", &younger), "fier").is_some());
    }

    #[test]
    fn exclusion_not_eligible_exploitation_form() {
        let (registry, _) = shipped();
        let labour = case(&[F::Labour], |c| c.age = Some(30));
        let refused = eligibility(
            &registry,
            &Capacity::new(),
            &labour,
            "csg",
            &["acute_sexual_violence_care".into(), "psychosocial_support".into()],
        );
        assert_eq!(
            refused
                .iter()
                .map(|e| (e.service.as_deref(), e.reason))
                .collect::<Vec<_>>(),
            [
                (Some("acute_sexual_violence_care"), R::NotEligibleExploitationForm),
                (Some("psychosocial_support"), R::NotEligibleExploitationForm),
            ],
            "CSG's care is for sexual violence"
        );
        // One matching form among several is enough.
        let both = case(&[F::Labour, F::Sexual], |c| c.age = Some(30));
        assert!(
            eligibility(
                &registry,
                &Capacity::new(),
                &both,
                "csg",
                &["acute_sexual_violence_care".into()]
            )
            .is_empty()
        );
    }

    /// A registry whose one shelter admits women only (the shipped one has none).
    const GENDERED: &str = "services = [\"shelter_placement\", \"care_coordination\"]\nregions = [\"north\"]\n\n[[organisation]]\nslug = \"hub\"\nname = \"Hub\"\nkind = \"national_coordinator\"\nservices = [\"care_coordination\"]\nregions = [\"national\"]\nintake_email = \"hub@x.example\"\naccepts_minors = true\navailable_24_7 = false\nfocal_point = true\n\n[[organisation]]\nslug = \"women\"\nname = \"Women's shelter\"\nkind = \"support_organisation\"\nservices = [\"shelter_placement\"]\nregions = [\"national\"]\nintake_email = \"w@x.example\"\naccepts_minors = false\navailable_24_7 = false\n\n[[organisation.offer]]\nservice = \"shelter_placement\"\ngenders = [\"female\"]\n";

    #[test]
    fn exclusion_not_eligible_gender() {
        let registry = Registry::parse(GENDERED).unwrap();
        let rules = RoutingRules::parse(
            "[needs]\nshelter = [\"shelter_placement\"]\n\n[[rule]]\nid = \"shelter\"\npriority = 1\nexplanation = \"Shelter.\"\n[rule.when]\nneeds = [\"shelter\"]\n[rule.then]\nneeds = [\"shelter\"]\n",
            &registry,
        )
        .unwrap();
        let person = |gender| {
            case(&[F::Labour], |c| {
                c.age = Some(30);
                c.gender = gender;
                c.needs = needs(&[Need::Shelter]);
            })
        };
        let run = |c: &CaseProfile| suggest(&rules, &registry, &Capacity::new(), "hub", c, today());
        let man = run(&person(Some(Gender::Male)));
        assert!(man.suggestions.is_empty());
        assert_eq!(
            excluded(&man, "women", Some("shelter_placement")),
            Some(R::NotEligibleGender)
        );
        assert_eq!(man.unmet_needs, [Need::Shelter]);
        assert_eq!(slugs(&run(&person(Some(Gender::Female)))), ["women"]);
        // A gender that is not recorded is not refused.
        assert_eq!(slugs(&run(&person(None))), ["women"]);
        assert_eq!(slugs(&run(&person(Some(Gender::Unknown)))), ["women"]);
    }

    #[test]
    fn exclusion_not_eligible_nationality() {
        let dutch_child = case(&[F::Sexual], |c| {
            c.age = Some(15);
            c.nationality = cc("NL");
            c.needs = needs(&[Need::Shelter]);
        });
        let routing = route("slachtofferhulp", &dutch_child);
        assert_eq!(
            excluded(&routing, "nidos", Some("shelter_placement")),
            Some(R::NotEligibleNationality)
        );
        assert!(suggestion(&routing, "nidos").is_none());
        // An unrecorded nationality is not refused.
        let unknown = CaseProfile {
            nationality: None,
            ..dutch_child
        };
        assert!(suggestion(&route("slachtofferhulp", &unknown), "nidos").is_some());
    }

    #[test]
    fn exclusion_no_capacity() {
        let romanian = case(&[F::Labour], |c| {
            c.age = Some(41);
            c.gender = Some(Gender::Male);
            c.nationality = cc("RO");
            c.region = Some("rotterdam".into());
            c.needs = needs(&[Need::Shelter]);
        });
        let full: Capacity = [(("comensha".into(), "shelter_placement".into()), 0)].into();
        let routing = route_with("fier", &romanian, &full);
        assert_eq!(
            excluded(&routing, "comensha", Some("shelter_placement")),
            Some(R::NoCapacity)
        );
        assert!(suggestion(&routing, "comensha").is_none());
        assert_eq!(routing.suggestions[0].organisation, "zorgcoordinatie-rotterdam");
        // One place free, or no report at all: available.
        for capacity in [
            [(("comensha".into(), "shelter_placement".into()), 1)].into(),
            Capacity::new(),
        ] {
            assert_eq!(
                route_with("fier", &romanian, &capacity).suggestions[0].organisation,
                "comensha"
            );
        }
        // Capacity only matters for capacity-managed services.
        let (registry, _) = shipped();
        let no_care: Capacity = [(("comensha".into(), "care_coordination".into()), 0)].into();
        assert!(
            eligibility(
                &registry,
                &no_care,
                &romanian,
                "comensha",
                &["care_coordination".into()]
            )
            .is_empty()
        );
    }

    #[test]
    fn every_exclusion_reason_is_tested_above() {
        // is_sender, declined_before, out_of_region, does_not_accept_minors, minors_only,
        // not_eligible_age, not_eligible_exploitation_form, not_eligible_gender,
        // not_eligible_nationality, no_capacity: one test each.
        assert_eq!(ExclusionReason::ALL.len(), 10);
    }

    #[test]
    fn eligibility_reports_every_reason_and_skips_what_is_not_offered() {
        let (registry, _) = shipped();
        let child = case(&[F::Labour], |c| {
            c.age = Some(12);
            c.region = Some("noord".into());
            c.declined_by = ["zorgcoordinatie-amsterdam".to_string()].into();
        });
        let refused: Vec<_> = eligibility(
            &registry,
            &Capacity::new(),
            &child,
            "zorgcoordinatie-amsterdam",
            &[
                "care_coordination".into(),
                "shelter_placement".into(),
                "image_removal".into(),
            ],
        )
        .into_iter()
        .map(|e| (e.service, e.reason))
        .collect();
        assert_eq!(
            refused,
            [
                (None, R::DeclinedBefore),
                (None, R::OutOfRegion),
                (Some("shelter_placement".to_string()), R::DoesNotAcceptMinors),
            ]
        );
        assert!(eligibility(&registry, &Capacity::new(), &child, "nobody", &[]).is_empty());
        assert!(eligibility(&registry, &Capacity::new(), &child, "csg", &[]).is_empty());
    }

    // -----------------------------------------------------------------------
    // Ten realistic cases
    // -----------------------------------------------------------------------

    struct Realistic {
        what: &'static str,
        sender: &'static str,
        case: CaseProfile,
        top: &'static str,
        /// The top suggestion's explanations must say this.
        why: &'static str,
    }

    fn ten_cases() -> Vec<Realistic> {
        vec![
            Realistic {
                what: "1. a 15-year-old boy drawn into drug running in Rotterdam",
                sender: "slachtofferhulp",
                case: case(&[F::Criminal], |c| {
                    c.age = Some(15);
                    c.gender = Some(Gender::Male);
                    c.nationality = cc("NL");
                    c.region = Some("rotterdam".into());
                }),
                top: "fier",
                why: "Criminal exploitation of a young person",
            },
            Realistic {
                what: "2. a woman assaulted three days ago in Amsterdam",
                sender: "fier",
                case: case(&[F::Sexual], |c| {
                    adult_woman(c);
                    c.region = Some("amsterdam".into());
                    c.last_incident_date = days_ago(3);
                }),
                top: "csg",
                why: "within the last 7 days",
            },
            Realistic {
                what: "3. a Romanian man in labour exploitation needing shelter",
                sender: "fier",
                case: case(&[F::Labour], |c| {
                    c.age = Some(41);
                    c.gender = Some(Gender::Male);
                    c.nationality = cc("RO");
                    c.region = Some("rotterdam".into());
                    c.in_reflection_period = true;
                    c.needs = needs(&[Need::Shelter]);
                }),
                top: "comensha",
                why: "COSM",
            },
            Realistic {
                what: "4. a worried mother about her 17-year-old daughter groomed in Utrecht",
                sender: "slachtofferhulp",
                case: case(&[F::Sexual], |c| {
                    c.age = Some(17);
                    c.gender = Some(Gender::Female);
                    c.nationality = cc("NL");
                    c.region = Some("utrecht".into());
                }),
                top: "zorgcoordinatie-utrecht",
                why: "A minor: the care coordinator for utrecht",
            },
            Realistic {
                what: "5. a 16-year-old unaccompanied Eritrean minor",
                sender: "comensha",
                case: case(&[F::Labour], |c| {
                    c.age = Some(16);
                    c.gender = Some(Gender::Male);
                    c.nationality = cc("ER");
                    c.region = Some("noord".into());
                    c.unaccompanied = true;
                    c.language = Some("ti".into());
                }),
                top: "nidos",
                why: "Unaccompanied foreign minor",
            },
            Realistic {
                what: "6. a 22-year-old whose intimate images are spread online",
                sender: "slachtofferhulp",
                case: case(&[F::Sexual], |c| {
                    c.age = Some(22);
                    c.gender = Some(Gender::Female);
                    c.nationality = cc("NL");
                    c.region = Some("amsterdam".into());
                    c.needs = needs(&[Need::ImageRemoval]);
                }),
                top: "offlimits",
                why: "images",
            },
            Realistic {
                what: "7. an adult Dutch woman, assault 20 days ago, wants legal help",
                sender: "fier",
                case: case(&[F::Sexual], |c| {
                    adult_woman(c);
                    c.region = Some("utrecht".into());
                    c.last_incident_date = days_ago(20);
                    c.needs = needs(&[Need::LegalSupport]);
                }),
                top: "slachtofferhulp",
                why: "Legal support",
            },
            Realistic {
                what: "8. an adult Nigerian woman in Den Haag (no care coordinator there)",
                sender: "fier",
                case: case(&[F::Sexual], |c| {
                    c.age = Some(34);
                    c.gender = Some(Gender::Female);
                    c.nationality = cc("NG");
                    c.region = Some("den-haag".into());
                    c.in_reflection_period = true;
                    c.needs = needs(&[Need::Shelter]);
                }),
                top: "comensha",
                why: "reflection period",
            },
            Realistic {
                what: "9. a presumed minor of unknown age in sexual exploitation, needs shelter",
                sender: "slachtofferhulp",
                case: case(&[F::Sexual], |c| {
                    c.minor = true;
                    c.gender = Some(Gender::Female);
                    c.region = Some("amsterdam".into());
                    c.needs = needs(&[Need::Shelter]);
                }),
                top: "fier",
                why: "A minor who needs shelter",
            },
            Realistic {
                what: "10. a man in criminal exploitation in Noord who declined police contact",
                sender: "fier",
                case: case(&[F::Criminal], |c| {
                    c.age = Some(34);
                    c.gender = Some(Gender::Male);
                    c.nationality = cc("NL");
                    c.region = Some("noord".into());
                }),
                top: "zorgcoordinatie-noord",
                why: "care coordinator for noord",
            },
        ]
    }

    #[test]
    fn ten_realistic_cases_get_the_suggestion_a_professional_would_make() {
        for c in ten_cases() {
            let routing = route(c.sender, &c.case);
            let top = routing
                .suggestions
                .first()
                .unwrap_or_else(|| panic!("{}: no suggestion", c.what));
            assert_eq!(top.organisation, c.top, "{}: {routing:#?}", c.what);
            assert!(
                top.matched_rules.iter().any(|m| m.explanation.contains(c.why)),
                "{}: explanation should say `{}`: {:#?}",
                c.what,
                c.why,
                top.matched_rules
            );
            assert!(!top.services.is_empty(), "{}", c.what);
            assert!(slugs(&routing).iter().all(|s| *s != c.sender), "{}", c.what);
        }
    }

    #[test]
    fn case_1_the_regional_coordinator_comes_second() {
        let c = &ten_cases()[0];
        let routing = route(c.sender, &c.case);
        assert_eq!(slugs(&routing), ["fier", "zorgcoordinatie-rotterdam"]);
        assert_eq!(routing.suggestions[0].services, ["psychosocial_support"]);
    }

    #[test]
    fn case_3_gets_shelter_at_comensha() {
        let c = &ten_cases()[2];
        let routing = route(c.sender, &c.case);
        let top = &routing.suggestions[0];
        assert_eq!(top.services, ["shelter_placement"]);
        let ids: Vec<&str> = top.matched_rules.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["cosm-shelter", "cosm-shelter-eu", "adult-shelter"]);
    }

    #[test]
    fn case_4_fier_is_offered_too() {
        let c = &ten_cases()[3];
        let routing = route(c.sender, &c.case);
        assert_eq!(slugs(&routing), ["zorgcoordinatie-utrecht", "fier"]);
    }

    #[test]
    fn case_5_nidos_gives_guardianship_and_shelter() {
        let c = &ten_cases()[4];
        let routing = route(c.sender, &c.case);
        assert_eq!(routing.suggestions[0].services, ["guardianship", "shelter_placement"]);
        assert_eq!(routing.suggestions[1].organisation, "zorgcoordinatie-noord");
    }

    #[test]
    fn case_7_no_acute_care_after_20_days() {
        let c = &ten_cases()[6];
        let routing = route(c.sender, &c.case);
        assert!(suggestion(&routing, "csg").is_none());
        assert_eq!(slugs(&routing), ["slachtofferhulp", "zorgcoordinatie-utrecht"]);
    }

    /// Den Haag has no care coordinator in the registry: CoMensha, the national focal point,
    /// coordinates instead, and the explanation says so.
    #[test]
    fn case_8_den_haag_falls_back_to_the_focal_point() {
        let c = &ten_cases()[7];
        let routing = route(c.sender, &c.case);
        assert_eq!(slugs(&routing), ["comensha"]);
        let top = &routing.suggestions[0];
        assert_eq!(top.services, ["shelter_placement", "care_coordination"]);
        let fallback = top
            .matched_rules
            .iter()
            .find(|m| m.id == "regional-care-coordination")
            .unwrap();
        assert!(fallback.explanation.contains("Region den-haag has no care coordinator"));
        assert!(
            routing
                .excluded
                .iter()
                .all(|e| !e.organisation.starts_with("zorgcoordinatie-"))
        );
    }

    #[test]
    fn case_9_a_presumed_minor_never_gets_adult_shelter() {
        let c = &ten_cases()[8];
        let (registry, _) = shipped();
        let routing = route(c.sender, &c.case);
        assert_eq!(
            excluded(&routing, "comensha", Some("shelter_placement")),
            Some(R::DoesNotAcceptMinors)
        );
        assert_eq!(
            excluded(&routing, "zorgcoordinatie-amsterdam", Some("shelter_placement")),
            Some(R::DoesNotAcceptMinors)
        );
        for s in &routing.suggestions {
            for service in &s.services {
                assert!(
                    registry.offer(&s.organisation, service).unwrap().minors,
                    "{} {service}",
                    s.organisation
                );
            }
        }
        let top = &routing.suggestions[0];
        assert!(top.services.contains(&"shelter_placement".to_string()));
        assert!(!fired_anywhere(&routing, "adult-shelter"));
        assert!(!fired_anywhere(&routing, "cosm-shelter"));
    }

    #[test]
    fn case_10_nothing_about_the_police() {
        let c = &ten_cases()[9];
        let routing = route(c.sender, &c.case);
        assert_eq!(slugs(&routing), ["zorgcoordinatie-noord"]);
        let text = format!("{routing:?}").to_lowercase();
        assert!(!text.contains("police") && !text.contains("politie"), "{text}");
    }

    // -----------------------------------------------------------------------
    // Ranking
    // -----------------------------------------------------------------------

    #[test]
    fn ranking_is_priority_then_rule_count_then_slug() {
        // Two organisations named by rules of equal priority; one by two rules.
        let registry = registry();
        let text = "[needs]\nlegal_support = [\"legal_support\"]\nimage_removal = [\"image_removal\"]\nemotional_support = [\"psychosocial_support\"]\n\n[[rule]]\nid = \"ra\"\npriority = 10\nexplanation = \"A.\"\n[rule.then]\nneeds = [\"image_removal\"]\norganisation = \"offlimits\"\n\n[[rule]]\nid = \"rb\"\npriority = 10\nexplanation = \"B.\"\n[rule.then]\nneeds = [\"legal_support\"]\norganisation = \"slachtofferhulp\"\n\n[[rule]]\nid = \"rc\"\npriority = 5\nexplanation = \"C.\"\n[rule.then]\nneeds = [\"emotional_support\"]\norganisation = \"slachtofferhulp\"\n\n[[rule]]\nid = \"rd\"\npriority = 10\nexplanation = \"D.\"\n[rule.then]\nneeds = [\"emotional_support\"]\norganisation = \"csg\"\n";
        let rules = RoutingRules::parse(text, &registry).unwrap();
        // Sexual exploitation: every one of the three admits it.
        let sexual = case(&[F::Sexual], |_| {});
        let routing = suggest(&rules, &registry, &Capacity::new(), "fier", &sexual, today());
        assert_eq!(slugs(&routing), ["slachtofferhulp", "csg", "offlimits"]);
        let scores: Vec<u32> = routing.suggestions.iter().map(|s| s.score).collect();
        assert_eq!(scores, [1002, 1001, 1001]);
        let shn = &routing.suggestions[0];
        assert_eq!(shn.services, ["legal_support", "psychosocial_support"]);
        let ids: Vec<&str> = shn.matched_rules.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["rb", "rc"]);
    }

    #[test]
    fn unmet_needs_are_reported() {
        let woman = case(&[F::Labour], |c| {
            c.age = Some(40);
            c.nationality = cc("NL");
            c.needs = needs(&[Need::Shelter, Need::MedicalCare, Need::LegalSupport]);
        });
        // No region: no regional shelter; COSM is for foreign victims; CSG only acutely.
        let routing = route("fier", &woman);
        assert_eq!(routing.unmet_needs, [Need::Shelter, Need::MedicalCare]);
    }

    // -----------------------------------------------------------------------
    // Parser problems
    // -----------------------------------------------------------------------

    /// A small registry for parser tests.
    const TEST_REGISTRY: &str = "services = [\"care\", \"shelter\", \"support\", \"guard\"]\nregions = [\"north\", \"south\", \"east\"]\n\n[[organisation]]\nslug = \"hub\"\nname = \"Hub\"\nkind = \"national_coordinator\"\nservices = [\"care\", \"shelter\", \"support\"]\nregions = [\"national\"]\nintake_email = \"hub@x.example\"\naccepts_minors = true\navailable_24_7 = false\nfocal_point = true\n\n[[organisation.offer]]\nservice = \"shelter\"\nminors = false\ncapacity_managed = true\n\n[[organisation]]\nslug = \"coord-north\"\nname = \"North\"\nkind = \"care_coordination\"\nservices = [\"care\", \"shelter\"]\nregions = [\"north\"]\nintake_email = \"n@x.example\"\naccepts_minors = true\navailable_24_7 = false\n\n[[organisation.offer]]\nservice = \"shelter\"\nminors = false\n\n[[organisation]]\nslug = \"kids\"\nname = \"Kids\"\nkind = \"guardianship\"\nservices = [\"guard\"]\nregions = [\"national\"]\nintake_email = \"k@x.example\"\naccepts_minors = true\navailable_24_7 = true\n\n[[organisation.offer]]\nservice = \"guard\"\nadults = false\nnationalities = [\"non_eu\"]\n\n[[organisation]]\nslug = \"women\"\nname = \"Women\"\nkind = \"support_organisation\"\nservices = [\"support\"]\nregions = [\"south\"]\nintake_email = \"w@x.example\"\naccepts_minors = false\navailable_24_7 = false\n\n[[organisation.offer]]\nservice = \"support\"\ngenders = [\"female\"]\nexploitation_forms = [\"sexual\"]\n";

    /// The [needs] table the parser tests start from: 6 lines, then a blank line.
    const NEEDS: &str = "[needs]\nshelter = [\"shelter\"]\ncare_coordination = [\"care\"]\nemotional_support = [\"support\"]\nguardianship = [\"guard\"]\nlegal_support = [\"support\"]\n\n";

    /// A rule that parses, starting on line 8 after NEEDS.
    const RULE: &str = "[[rule]]\nid = \"r1\"\npriority = 10\nexplanation = \"Because.\"\n[rule.when]\nminor = false\n[rule.then]\nneeds = [\"care_coordination\"]\norganisation = \"hub\"\n";

    fn parse(rules: &str) -> Result<RoutingRules, RoutingProblem> {
        let registry = Registry::parse(TEST_REGISTRY).unwrap();
        RoutingRules::parse(&format!("{NEEDS}{rules}"), &registry)
    }

    #[test]
    fn the_test_rule_parses() {
        let rules = parse(RULE).unwrap();
        assert_eq!(rules.rules[0].line, 8);
        assert_eq!(rules.rules[0].target, Target::Organisation("hub".into()));
        assert_eq!(
            rules.services_for(&[Need::LegalSupport, Need::EmotionalSupport]),
            ["support"]
        );
    }

    #[test]
    fn problems_name_the_rule_and_the_line() {
        let second = |rule: &str| format!("{RULE}\n{rule}");
        // (rules text after NEEDS, line, rule id, text the problem must contain)
        let cases: Vec<(String, usize, Option<&str>, &str)> = vec![
            // Parse errors inside a rule: the key's line and the rule's id.
            (
                RULE.replace("minor = false", "colour = \"red\""),
                13,
                Some("r1"),
                "unknown field `colour`",
            ),
            (
                RULE.replace("minor = false", "needs = [\"a_pony\"]"),
                13,
                Some("r1"),
                "a_pony",
            ),
            (
                second(
                    &RULE
                        .replace("r1", "r2")
                        .replace("[\"care_coordination\"]", "[\"pony\"]"),
                ),
                25,
                Some("r2"),
                "pony",
            ),
            (
                RULE.replace("minor = false", "forms = [\"sexual\", \"organ\"]"),
                13,
                Some("r1"),
                "organ",
            ),
            (
                RULE.replace("priority = 10", "priority = -1"),
                10,
                Some("r1"),
                "expected u16",
            ),
            // Checks.
            (second(RULE), 18, Some("r1"), "id is used twice"),
            (RULE.replace("\"r1\"", "\"R 1\""), 8, Some("R 1"), "the id must be"),
            (
                RULE.replace("priority = 10", "priority = 1001"),
                10,
                Some("r1"),
                "above 1000",
            ),
            (
                RULE.replace("\"Because.\"", "\"  \""),
                11,
                Some("r1"),
                "explanation is empty",
            ),
            (
                RULE.replace("\"hub\"", "\"nowhere\""),
                16,
                Some("r1"),
                "organisation `nowhere` is not in the registry",
            ),
            (
                RULE.replace("[\"care_coordination\"]", "[\"guardianship\"]"),
                16,
                Some("r1"),
                "organisation `hub` does not offer service `guard`",
            ),
            (
                RULE.replace("[\"care_coordination\"]", "[\"image_removal\"]"),
                15,
                Some("r1"),
                "need `image_removal` has no services in [needs]",
            ),
            (
                RULE.replace("[\"care_coordination\"]", "[]"),
                15,
                Some("r1"),
                "`then.needs` is empty",
            ),
            (
                RULE.replace("minor = false", "regions = [\"north\", \"atlantis\"]"),
                13,
                Some("r1"),
                "region `atlantis` is not in the registry",
            ),
            (
                RULE.replace("minor = false", "min_age = 30\nmax_age = 20"),
                14,
                Some("r1"),
                "unreachable: min_age 30 is above max_age 20",
            ),
            (
                RULE.replace("minor = false", "minor = true\nmin_age = 18"),
                14,
                Some("r1"),
                "unreachable: minor = true with min_age 18",
            ),
            (
                RULE.replace("minor = false", "minor = false\nmax_age = 17"),
                14,
                Some("r1"),
                "unreachable: minor = false with max_age 17",
            ),
            (
                RULE.replace(
                    "minor = false",
                    "nationalities = [\"dutch\", \"other_eu\"]\nin_reflection_period = true",
                ),
                14,
                Some("r1"),
                "unreachable: in_reflection_period = true",
            ),
            // Named organisation whose offer can never admit the rule's cases.
            (
                RULE.replace("minor = false", "minor = true")
                    .replace("[\"care_coordination\"]", "[\"shelter\"]"),
                16,
                Some("r1"),
                "unreachable: no case meeting the conditions is eligible for `shelter` at `hub` (the service admits adults only)",
            ),
            (
                RULE.replace("minor = false", "regions = [\"north\"]")
                    .replace("hub", "women")
                    .replace("[\"care_coordination\"]", "[\"emotional_support\"]"),
                16,
                Some("r1"),
                "unreachable: organisation `women` serves none of the rule's regions",
            ),
            (
                RULE.replace("minor = false", "genders = [\"male\"]")
                    .replace("hub", "women")
                    .replace("[\"care_coordination\"]", "[\"emotional_support\"]"),
                16,
                Some("r1"),
                "admits none of the rule's genders",
            ),
            (
                RULE.replace("minor = false", "forms = [\"labour\"]")
                    .replace("hub", "women")
                    .replace("[\"care_coordination\"]", "[\"emotional_support\"]"),
                16,
                Some("r1"),
                "admits none of the rule's forms of exploitation",
            ),
            (
                RULE.replace("minor = false", "minor = true\nnationalities = [\"dutch\"]")
                    .replace("hub", "kids")
                    .replace("[\"care_coordination\"]", "[\"guardianship\"]"),
                17,
                Some("r1"),
                "admits none of the rule's nationalities",
            ),
            (
                RULE.replace("hub", "kids")
                    .replace("[\"care_coordination\"]", "[\"guardianship\"]"),
                16,
                Some("r1"),
                "the service admits minors only",
            ),
            // Open and regional targets that nobody could ever serve.
            (
                RULE.replace("minor = false", "minor = true")
                    .replace("[\"care_coordination\"]", "[\"shelter\"]")
                    .replace("organisation = \"hub\"\n", ""),
                14,
                Some("r1"),
                "unreachable: no organisation that offers shelter admits a case meeting the conditions",
            ),
            (
                RULE.replace("minor = false", "regions = [\"south\"]")
                    .replace("organisation = \"hub\"", "regional_care_coordinator = true"),
                14,
                Some("r1"),
                "unreachable: no care coordinator (or fallback) that offers care",
            ),
            // Target fields that do not go together.
            (
                RULE.replace(
                    "organisation = \"hub\"",
                    "organisation = \"hub\"\nregional_care_coordinator = true",
                ),
                14,
                Some("r1"),
                "not both",
            ),
            (
                RULE.replace(
                    "organisation = \"hub\"",
                    "regional_care_coordinator = true\nfallback = \"hub\"",
                ),
                17,
                Some("r1"),
                "a fallback needs a fallback_explanation",
            ),
            (
                RULE.replace(
                    "organisation = \"hub\"",
                    "regional_care_coordinator = true\nfallback_explanation = \"x\"",
                ),
                17,
                Some("r1"),
                "a fallback_explanation needs a fallback",
            ),
            (
                RULE.replace(
                    "organisation = \"hub\"",
                    "fallback = \"hub\"\nfallback_explanation = \"x\"",
                ),
                16,
                Some("r1"),
                "a fallback only applies with regional_care_coordinator = true",
            ),
            (
                RULE.replace(
                    "organisation = \"hub\"",
                    "regional_care_coordinator = true\nfallback = \"ghost\"\nfallback_explanation = \"x\"",
                ),
                17,
                Some("r1"),
                "organisation `ghost` is not in the registry",
            ),
            (
                RULE.replace(
                    "organisation = \"hub\"",
                    "regional_care_coordinator = true\nfallback = \"kids\"\nfallback_explanation = \"x\"",
                ),
                17,
                Some("r1"),
                "fallback organisation `kids` does not offer service `care`",
            ),
            (
                RULE.replace(
                    "organisation = \"hub\"",
                    "regional_care_coordinator = true\nfallback = \"hub\"\nfallback_explanation = \" \"",
                ),
                18,
                Some("r1"),
                "the fallback explanation is empty",
            ),
            (
                RULE.replace("Because.", "Because {reason}."),
                11,
                Some("r1"),
                "one placeholder, {region}",
            ),
            (
                RULE.replace("Because.", "Because of {region}."),
                11,
                Some("r1"),
                "{region} can only be used in a regional_care_coordinator rule",
            ),
        ];
        for (text, line, rule, needle) in cases {
            let problem = parse(&text).expect_err(needle);
            assert!(
                problem.problem.contains(needle),
                "`{problem}` should contain `{needle}`"
            );
            assert_eq!(problem.line, line, "{problem}");
            assert_eq!(problem.rule.as_deref(), rule, "{problem}");
            if let Some(id) = rule {
                assert!(problem.to_string().contains(&format!("rule `{id}`")));
            }
        }
    }

    #[test]
    fn problems_in_the_needs_table_name_the_line() {
        let registry = Registry::parse(TEST_REGISTRY).unwrap();
        let cases = [
            (
                "[needs]\nshelter = [\"shelter\"]\nponies = [\"care\"]\n",
                3,
                "`ponies` in [needs] is not a known need",
            ),
            (
                "[needs]\nshelter = [\n  \"shelter\",\n  \"spa\",\n]\n",
                4,
                "need `shelter`: service `spa` is not in the registry",
            ),
            ("[needs]\nshelter = []\n", 2, "need `shelter` lists no services"),
            (
                "[needs]\nshelter = [\"shelter\"]\n[[rule]]\nid = \"x\"\n",
                3,
                "missing field",
            ),
            ("[needz]\n", 1, "unknown field `needz`"),
            ("[needs]\nshelter = [\"shelter\"\n", 2, ""),
        ];
        for (text, line, needle) in cases {
            let problem = RoutingRules::parse(text, &registry).unwrap_err();
            assert!(
                problem.problem.contains(needle),
                "`{problem}` should contain `{needle}`"
            );
            assert_eq!(problem.line, line, "{problem}");
        }
        // A missing field in a rule names the rule when its id is readable.
        let problem = RoutingRules::parse(
            "[needs]\nshelter = [\"shelter\"]\n[[rule]]\nid = \"x\"\npriority = 1\n",
            &registry,
        )
        .unwrap_err();
        assert_eq!(problem.rule.as_deref(), Some("x"), "{problem}");
    }

    #[test]
    fn equal_priorities_keep_file_order() {
        let rules = parse(&format!(
            "{RULE}\n{}\n{}",
            RULE.replace("r1", "r2").replace("priority = 10", "priority = 20"),
            RULE.replace("r1", "r3")
        ))
        .unwrap();
        let ids: Vec<&str> = rules.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["r2", "r1", "r3"]);
        assert!(rules.get("r3").is_some());
    }

    // -----------------------------------------------------------------------
    // Properties
    // -----------------------------------------------------------------------

    fn any_case() -> impl Strategy<Value = (CaseProfile, String)> {
        let (registry, _) = shipped();
        let regions: Vec<Option<String>> = std::iter::once(None)
            .chain(registry.regions.iter().cloned().map(Some))
            .collect();
        let orgs: Vec<String> = registry.slugs().cloned().collect();
        (
            (
                proptest::option::of(0u8..=80),
                any::<bool>(),
                proptest::option::of(proptest::sample::select(Gender::ALL.to_vec())),
                proptest::option::of(proptest::sample::select(vec!["NL", "RO", "NG", "ER", "PL", "MA"])),
                proptest::sample::select(regions),
                proptest::sample::subsequence(ExploitationForm::ALL.to_vec(), 1..=4),
            ),
            (
                proptest::option::of(0u64..40),
                proptest::sample::subsequence(Need::ALL.to_vec(), 0..=4),
                any::<bool>(),
                any::<bool>(),
                proptest::sample::subsequence(orgs.clone(), 0..=3),
                proptest::sample::select(orgs),
            ),
        )
            .prop_map(
                |(
                    (age, minor, gender, nationality, region, forms),
                    (days, needs, unaccompanied, reflection, declined, sender),
                )| {
                    let case = CaseProfile {
                        age,
                        minor,
                        gender,
                        nationality: nationality.and_then(|n| CountryCode::parse(n).ok()),
                        region,
                        language: None,
                        exploitation_forms: ExploitationForms::parse(forms).unwrap(),
                        last_incident_date: days.and_then(days_ago),
                        needs: needs.into_iter().collect(),
                        unaccompanied,
                        in_reflection_period: reflection,
                        declined_by: declined.into_iter().collect(),
                    };
                    (case, sender)
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever the case: the sender, declining organisations and the police are never
        /// suggested; every suggestion passes the submit guard's eligibility; minors only
        /// get services that admit minors; the order is the documented one.
        #[test]
        fn suggestions_are_eligible_and_ordered((case, sender) in any_case(), full in any::<bool>()) {
            let (registry, rules) = shipped();
            let capacity: Capacity = if full {
                registry
                    .offers
                    .iter()
                    .flat_map(|(org, offers)| offers.iter().map(move |o| ((org.clone(), o.service.clone()), 0)))
                    .collect()
            } else {
                Capacity::new()
            };
            let routing = suggest(&rules, &registry, &capacity, &sender, &case, today());
            prop_assert_eq!(&routing, &suggest(&rules, &registry, &capacity, &sender, &case, today()));
            for s in &routing.suggestions {
                prop_assert_ne!(&s.organisation, &sender);
                prop_assert_ne!(s.organisation.as_str(), "police");
                prop_assert!(!case.declined_by.contains(&s.organisation));
                prop_assert!(!s.services.is_empty() && !s.matched_rules.is_empty());
                prop_assert!(eligibility(&registry, &capacity, &case, &s.organisation, &s.services).is_empty());
                for service in &s.services {
                    let offer = registry.offer(&s.organisation, service).unwrap();
                    prop_assert!(!case.is_minor() || offer.minors);
                    prop_assert!(!(full && offer.capacity_managed));
                }
                prop_assert!(s.matched_rules.windows(2).all(|w| w[0].priority >= w[1].priority));
            }
            for w in routing.suggestions.windows(2) {
                let key = |s: &Suggestion| (s.matched_rules[0].priority, s.matched_rules.len());
                prop_assert!(key(&w[0]) > key(&w[1]) || (key(&w[0]) == key(&w[1]) && w[0].organisation < w[1].organisation));
            }
            for e in &routing.excluded {
                prop_assert!(e.rule.as_deref().is_some_and(|id| rules.get(id).is_some()));
            }
        }
    }
}

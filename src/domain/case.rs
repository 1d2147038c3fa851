//! The case: who the possible victim is (age, nationality, forms of
//! exploitation), whether they count as a child, how far identification has
//! come, and when a reflection and recovery period ends.
//!
//! This module decides; it does not load, store, log or read the clock.
//! Dates come in as arguments. It must not import anything from `db`, `api`,
//! `auth` or any I/O crate.
//!
//! It also holds [`text_enum!`] and [`UnknownVariant`], the shared shape of
//! every domain enum that the database stores as text.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::ids::CaseId;
use crate::domain::text::Sealed;

pub use crate::domain::text::UnknownVariant;
pub(crate) use crate::domain::text::text_enum;

text_enum! {
    /// Who first told us about the possible victim.
    pub enum ReporterRole {
        Victim = "victim",
        ConcernedPerson = "concerned_person",
        Professional = "professional",
    }
}

text_enum! {
    /// How the first contact reached us.
    pub enum ContactChannel {
        Chat = "chat",
        Phone = "phone",
        Email = "email",
        InPerson = "in_person",
        Outreach = "outreach",
        Police = "police",
        Other = "other",
    }
}

text_enum! {
    /// A form of exploitation as the signal describes it (Art. 2(3) of
    /// Directive 2011/36/EU as amended by Directive (EU) 2024/1712).
    pub enum ExploitationForm {
        Sexual = "sexual",
        Criminal = "criminal",
        Labour = "labour",
        Other = "other",
    }
}

text_enum! {
    /// Gender as the person states it; `Unknown` when not stated.
    pub enum Gender {
        Female = "female",
        Male = "male",
        NonBinary = "non_binary",
        Unknown = "unknown",
    }
}

// ---------------------------------------------------------------------------
// Forms of exploitation
// ---------------------------------------------------------------------------

/// A case names at least one form of exploitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("at least one form of exploitation is required")]
pub struct NoExploitationForm;

/// The forms of exploitation of a case.
///
/// Invariant: never empty. Duplicates in the input collapse; iteration is in
/// [`ExploitationForm::ALL`] order whatever the input order was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<ExploitationForm>", into = "Vec<ExploitationForm>")]
pub struct ExploitationForms(u8);

impl ExploitationForms {
    /// Builds the set; refuses an empty list.
    pub fn parse(forms: Vec<ExploitationForm>) -> Result<Self, NoExploitationForm> {
        let bits = forms.iter().fold(0u8, |acc, form| acc | Self::bit(*form));
        if bits == 0 {
            Err(NoExploitationForm)
        } else {
            Ok(Self(bits))
        }
    }

    fn bit(form: ExploitationForm) -> u8 {
        1 << (form as u8)
    }

    pub fn contains(&self, form: ExploitationForm) -> bool {
        self.0 & Self::bit(form) != 0
    }

    pub fn iter(&self) -> impl Iterator<Item = ExploitationForm> + '_ {
        ExploitationForm::ALL.into_iter().filter(|form| self.contains(*form))
    }

    /// Number of distinct forms; at least 1.
    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// Always false; here because clippy expects it beside `len`.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn to_vec(&self) -> Vec<ExploitationForm> {
        self.iter().collect()
    }
}

impl TryFrom<Vec<ExploitationForm>> for ExploitationForms {
    type Error = NoExploitationForm;

    fn try_from(forms: Vec<ExploitationForm>) -> Result<Self, Self::Error> {
        Self::parse(forms)
    }
}

impl From<ExploitationForms> for Vec<ExploitationForm> {
    fn from(forms: ExploitationForms) -> Self {
        forms.to_vec()
    }
}

// ---------------------------------------------------------------------------
// Age and minority
// ---------------------------------------------------------------------------

/// An age outside 0..=120 years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("age must be between 0 and {max} years, got {0}", max = Age::MAX)]
pub struct AgeOutOfRange(pub i64);

/// An age in whole years, 0..=120.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Age(u8);

impl Age {
    /// The highest age we accept; anything above is a typing error.
    pub const MAX: u8 = 120;
    /// The age of majority: under it a person is a child (Art. 2(10) of the
    /// Directive: "child" means any person below 18 years of age).
    pub const MAJORITY: u8 = 18;

    pub fn parse(years: i64) -> Result<Self, AgeOutOfRange> {
        match u8::try_from(years) {
            Ok(y) if y <= Self::MAX => Ok(Self(y)),
            _ => Err(AgeOutOfRange(years)),
        }
    }

    pub fn years(&self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for Age {
    type Error = AgeOutOfRange;

    fn try_from(years: i64) -> Result<Self, Self::Error> {
        Self::parse(years)
    }
}

impl From<Age> for i64 {
    fn from(age: Age) -> Self {
        i64::from(age.0)
    }
}

/// Whether the person is treated as a child.
///
/// A known age decides: under 18 is a child, 18 or over is not. When no age
/// is known, the person is a child if the caseworker marked them as presumed
/// minor: Art. 13(2) of Directive 2011/36/EU (as amended by 2024/1712)
/// requires that where the age is uncertain and there are reasons to believe
/// the person is a child, they are presumed to be a child and receive
/// immediate access to assistance and protection. A recorded age overrides
/// the presumption, so a caseworker who doubts a recorded age clears it
/// instead of keeping both.
pub fn is_minor(age_at_contact: Option<Age>, presumed_minor: bool) -> bool {
    match age_at_contact {
        Some(age) => age.years() < Age::MAJORITY,
        None => presumed_minor,
    }
}

// ---------------------------------------------------------------------------
// Nationality
// ---------------------------------------------------------------------------

/// Every officially assigned ISO 3166-1 alpha-2 code (249), sorted.
/// Checked against Debian's `iso-codes` 4.15 `iso_3166-1.json`.
pub const ASSIGNED_COUNTRY_CODES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA", "BB", "BD",
    "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA",
    "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE",
    "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA",
    "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK",
    "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP",
    "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT",
    "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS",
    "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ",
    "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS",
    "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST",
    "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW",
    "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA",
    "ZM", "ZW",
];

/// The 27 member states of the European Union (as of 2026), by ISO code.
/// Greece is `GR` here (ISO), not `EL` (the EU's own abbreviation).
pub const EU_MEMBER_STATES: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU", "LV",
    "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// Countries outside the EU whose nationals have free movement here: the
/// other EEA states (Iceland, Liechtenstein, Norway) and Switzerland.
pub const FREE_MOVEMENT_NON_EU: [&str; 4] = ["CH", "IS", "LI", "NO"];

/// Why a text is not a country code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountryCodeError {
    #[error("country code must be two letters A-Z, got `{0}`")]
    Malformed(String),
    #[error("`{0}` is not an assigned ISO 3166-1 alpha-2 country code")]
    NotAssigned(String),
}

/// An officially assigned ISO 3166-1 alpha-2 country code, upper case.
///
/// Invariant: the value is one of [`ASSIGNED_COUNTRY_CODES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode(&'static str);

impl CountryCode {
    /// Accepts two ASCII letters in either case (`nl` becomes `NL`); refuses
    /// anything else, and codes ISO has not assigned (`XX`, `EU`, `UK`).
    /// Surrounding whitespace is not trimmed.
    pub fn parse(input: &str) -> Result<Self, CountryCodeError> {
        let bytes = input.as_bytes();
        if bytes.len() != 2 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(CountryCodeError::Malformed(input.to_owned()));
        }
        let upper = input.to_ascii_uppercase();
        ASSIGNED_COUNTRY_CODES
            .binary_search(&upper.as_str())
            .map(|i| Self(ASSIGNED_COUNTRY_CODES[i]))
            .map_err(|_| CountryCodeError::NotAssigned(upper))
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }

    pub fn is_dutch(&self) -> bool {
        self.0 == "NL"
    }

    /// Member of the European Union (not merely the EEA).
    pub fn is_eu(&self) -> bool {
        EU_MEMBER_STATES.contains(&self.0)
    }

    /// EU, other EEA state, or Switzerland: a national of one of these has
    /// free movement and needs no residence permit to stay.
    pub fn has_free_movement(&self) -> bool {
        self.is_eu() || FREE_MOVEMENT_NON_EU.contains(&self.0)
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl FromStr for CountryCode {
    type Err = CountryCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for CountryCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

text_enum! {
    /// Nationality as counted in statistics. Norway, Iceland, Liechtenstein
    /// and Switzerland count as `NonEu` here: the group is about EU
    /// membership, not free movement.
    pub enum NationalityGroup {
        Dutch = "dutch",
        OtherEu = "other_eu",
        NonEu = "non_eu",
        Unknown = "unknown",
    }
}

impl NationalityGroup {
    pub fn of(nationality: Option<CountryCode>) -> Self {
        match nationality {
            None => Self::Unknown,
            Some(c) if c.is_dutch() => Self::Dutch,
            Some(c) if c.is_eu() => Self::OtherEu,
            Some(_) => Self::NonEu,
        }
    }
}

impl From<Option<CountryCode>> for NationalityGroup {
    fn from(nationality: Option<CountryCode>) -> Self {
        Self::of(nationality)
    }
}

// ---------------------------------------------------------------------------
// Identification
// ---------------------------------------------------------------------------

text_enum! {
    /// How far formal identification of the person as a victim has come.
    pub enum IdentificationStatus {
        /// A signal was recorded; nobody has yet found reasonable grounds.
        Signal = "signal",
        /// A caseworker of the owning organisation found reasonable grounds
        /// to believe the person is a victim (Art. 11(2)): assistance and
        /// support start here.
        PresumedVictim = "presumed_victim",
        /// The national focal point identified the person as a victim.
        Identified = "identified",
        /// The national focal point concluded the person is not identified as
        /// a victim. Final in this model: new facts start a new signal.
        NotIdentified = "not_identified",
    }
}

text_enum! {
    /// A decision someone records about identification.
    pub enum IdentificationDecision {
        /// Signal -> PresumedVictim, by a caseworker of the owning organisation.
        ReasonableGrounds = "reasonable_grounds",
        /// PresumedVictim -> Identified, by a coordinator of the national
        /// focal point.
        Identified = "identified",
        /// PresumedVictim -> NotIdentified, by a coordinator of the national
        /// focal point.
        NotIdentified = "not_identified",
    }
}

/// What the caller is, as far as identification cares. The auth layer fills
/// these in from the token and the case's owning organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdentificationActor {
    /// Caseworker in the organisation that owns the case.
    pub caseworker_of_owner: bool,
    /// Coordinator in the organisation configured as national focal point.
    pub coordinator_of_focal_point: bool,
}

/// Why an identification decision was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentificationRefusal {
    /// The actor lacks the role this decision needs (HTTP 403). Checked
    /// before the status, so a caller without the role learns nothing about
    /// the case's status.
    #[error("the caller lacks the role required for this identification decision")]
    Forbidden,
    /// The decision is not possible from the current status (HTTP 409).
    #[error("this identification decision is not possible from status `{status}`")]
    NotAllowedFrom { status: IdentificationStatus },
}

/// Applies an identification decision, or says why not.
pub fn decide_identification(
    current: IdentificationStatus,
    decision: IdentificationDecision,
    actor: IdentificationActor,
) -> Result<IdentificationStatus, IdentificationRefusal> {
    use IdentificationDecision as D;
    use IdentificationStatus as S;

    let (has_role, from, to) = match decision {
        D::ReasonableGrounds => (actor.caseworker_of_owner, S::Signal, S::PresumedVictim),
        D::Identified => (actor.coordinator_of_focal_point, S::PresumedVictim, S::Identified),
        D::NotIdentified => (actor.coordinator_of_focal_point, S::PresumedVictim, S::NotIdentified),
    };
    if !has_role {
        return Err(IdentificationRefusal::Forbidden);
    }
    if current != from {
        return Err(IdentificationRefusal::NotAllowedFrom { status: current });
    }
    Ok(to)
}

/// Whether reasonable grounds have been found (and not later overturned by a
/// negative identification): the point from which the person is entitled to
/// assistance and support (Art. 11(2)) and may be referred.
pub fn has_reasonable_grounds(status: IdentificationStatus) -> bool {
    matches!(
        status,
        IdentificationStatus::PresumedVictim | IdentificationStatus::Identified
    )
}

/// Whether the case is handled as a child's, with the age the caseworker is unsure of
/// taken into account (Art. 13(2): where the age is uncertain and there are reasons to
/// believe the person is a child, the person is presumed to be a child). A recorded age
/// under 18 always makes a minor; the presumption applies when no age is recorded or the
/// recorded age is marked uncertain.
pub fn treated_as_minor(age_at_contact: Option<Age>, age_uncertain: bool, presumed_minor: bool) -> bool {
    let certain_age = if age_uncertain { None } else { age_at_contact };
    is_minor(certain_age, presumed_minor) || age_at_contact.is_some_and(|a| a.years() < Age::MAJORITY)
}

// ---------------------------------------------------------------------------
// Reflection and recovery period
// ---------------------------------------------------------------------------

/// The last day of the reflection and recovery period, counted `days` days
/// from the day reasonable grounds were recorded (Directive 2004/81/EC
/// Art. 6; in the Netherlands the B8/3 *bedenktijd*).
///
/// `None` when no such period applies:
/// - Dutch and other EU nationals: they need no residence permit;
/// - nationals of Iceland, Liechtenstein, Norway and Switzerland: free
///   movement applies to them too, so they are treated like EU nationals
///   although they are not "EU" in [`NationalityGroup`];
/// - unknown nationality: the period is not started on a guess; the
///   caseworker records the nationality, and that starts it;
/// - an end date chrono cannot represent.
pub fn reflection_period_end(
    grounds_recorded_on: NaiveDate,
    nationality: Option<&CountryCode>,
    days: u32,
) -> Option<NaiveDate> {
    let nationality = nationality?;
    if nationality.has_free_movement() {
        return None;
    }
    grounds_recorded_on.checked_add_days(Days::new(u64::from(days)))
}

text_enum! {
    /// Something the person needs, as the caseworker records it on the case; rules may also
    /// derive needs from other facts (e.g. recent sexual violence needs medical care). The
    /// `[needs]` table of the rules file says which services meet each need.
    pub enum Need {
        /// A safe place to stay.
        Shelter = "shelter",
        /// Sexual images of the person are online and should be removed.
        ImageRemoval = "image_removal",
        /// Medical (and forensic) care.
        MedicalCare = "medical_care",
        EmotionalSupport = "emotional_support",
        PracticalSupport = "practical_support",
        LegalSupport = "legal_support",
        /// A guardian for a child without a parent here.
        Guardianship = "guardianship",
        /// Someone who coordinates care around the person.
        CareCoordination = "care_coordination",
    }
}

text_enum! {
    /// What the person intends about reporting to the police, as recorded
    /// at evaluation. Informational only; never a condition for support.
    pub enum ReportingIntention {
        WillReport = "will_report",
        Undecided = "undecided",
        WillNotReport = "will_not_report",
    }
}

// ---------------------------------------------------------------------------
// The case and its invariants
// ---------------------------------------------------------------------------

/// A case as stored: the facts of one possible victim's situation at one organisation. The
/// pseudonym is sealed; identifying details live apart (never in this struct).
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub id: CaseId,
    /// The owning organisation.
    pub organisation: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub reporter_role: ReporterRole,
    pub contact_channel: ContactChannel,
    pub contact_date: NaiveDate,
    pub forms: ExploitationForms,
    pub age_at_contact: Option<Age>,
    pub age_uncertain: bool,
    pub presumed_minor: bool,
    pub gender: Option<Gender>,
    pub nationality: Option<CountryCode>,
    pub region: Option<String>,
    pub language: Option<String>,
    pub pseudonym: Option<Sealed>,
    pub police_report_intention: Option<ReportingIntention>,
    pub identification_status: IdentificationStatus,
    pub reasonable_grounds_on: Option<NaiveDate>,
    pub reflection_period_end: Option<NaiveDate>,
    pub last_incident_date: Option<NaiveDate>,
    pub needs: Vec<Need>,
    pub unaccompanied: bool,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_reason: Option<String>,
    pub identifying_erased_at: Option<DateTime<Utc>>,
    pub free_text_erased_at: Option<DateTime<Utc>>,
    pub erasure_reason: Option<String>,
}

/// Why nothing on a case may change any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadOnly {
    #[error("this case's personal data was erased; it and everything on it are read-only")]
    Erased,
    #[error("this case is closed and read-only")]
    Closed,
}

/// An unaccompanied case that is not a minor's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("applies only to a minor (an age under 18, or presumed_minor)")]
pub struct UnaccompaniedAdult;

impl Case {
    /// Handled as a child's (Art. 13(2)); see [`treated_as_minor`].
    pub fn is_minor(&self) -> bool {
        treated_as_minor(self.age_at_contact, self.age_uncertain, self.presumed_minor)
    }

    /// Closed and erased cases are read-only, and so is everything on them: consents,
    /// referrals, three-way conversations.
    pub fn writable(&self) -> Result<(), ReadOnly> {
        if self.erasure_reason.is_some() {
            Err(ReadOnly::Erased)
        } else if self.closed_at.is_some() {
            Err(ReadOnly::Closed)
        } else {
            Ok(())
        }
    }

    pub fn nationality_group(&self) -> NationalityGroup {
        NationalityGroup::of(self.nationality)
    }

    /// The invariants every stored case keeps, checked after each change.
    pub fn check(&self) -> Result<(), UnaccompaniedAdult> {
        unaccompanied_only_if_minor(
            self.age_at_contact,
            self.age_uncertain,
            self.presumed_minor,
            self.unaccompanied,
        )
    }

    /// Records reasonable grounds on `today`: the reflection period starts for a
    /// third-country national (Art. 11(2); B8/3).
    pub fn record_reasonable_grounds(&mut self, today: NaiveDate, reflection_days: u32) {
        self.reasonable_grounds_on = Some(today);
        self.reflection_period_end = reflection_period_end(today, self.nationality.as_ref(), reflection_days);
    }

    /// A changed nationality after reasonable grounds starts (or ends) the reflection
    /// period, counted from the day the grounds were recorded, not from the change.
    pub fn change_nationality(&mut self, nationality: Option<CountryCode>, reflection_days: u32) {
        self.nationality = nationality;
        if let Some(grounds) = self.reasonable_grounds_on {
            self.reflection_period_end = reflection_period_end(grounds, self.nationality.as_ref(), reflection_days);
        }
    }
}

/// "Unaccompanied" (no parent or legal guardian in the Netherlands) is a fact about minors
/// only: an adult on record cannot be marked unaccompanied.
pub fn unaccompanied_only_if_minor(
    age_at_contact: Option<Age>,
    age_uncertain: bool,
    presumed_minor: bool,
    unaccompanied: bool,
) -> Result<(), UnaccompaniedAdult> {
    if unaccompanied && !treated_as_minor(age_at_contact, age_uncertain, presumed_minor) {
        Err(UnaccompaniedAdult)
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn cc(s: &str) -> CountryCode {
        CountryCode::parse(s).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn case(age: Option<i64>, nationality: Option<&str>) -> Case {
        let at = chrono::DateTime::UNIX_EPOCH;
        Case {
            id: CaseId(uuid::Uuid::nil()),
            organisation: "fier".into(),
            created_by: "anna".into(),
            created_at: at,
            updated_at: at,
            version: 1,
            reporter_role: ReporterRole::Victim,
            contact_channel: ContactChannel::Chat,
            contact_date: date(2024, 3, 14),
            forms: ExploitationForms::parse(vec![ExploitationForm::Sexual]).unwrap(),
            age_at_contact: age.map(|a| Age::parse(a).unwrap()),
            age_uncertain: false,
            presumed_minor: false,
            gender: None,
            nationality: nationality.map(cc),
            region: None,
            language: None,
            pseudonym: None,
            police_report_intention: None,
            identification_status: IdentificationStatus::Signal,
            reasonable_grounds_on: None,
            reflection_period_end: None,
            last_incident_date: None,
            needs: Vec::new(),
            unaccompanied: false,
            closed_at: None,
            closed_reason: None,
            identifying_erased_at: None,
            free_text_erased_at: None,
            erasure_reason: None,
        }
    }

    #[test]
    fn only_a_minor_is_unaccompanied() {
        let mut child = case(Some(15), None);
        child.unaccompanied = true;
        assert_eq!(child.check(), Ok(()));
        let mut adult = case(Some(19), None);
        adult.unaccompanied = true;
        assert_eq!(adult.check(), Err(UnaccompaniedAdult));
        // The presumption of Art. 13(2) makes an uncertain 19 a child.
        adult.age_uncertain = true;
        adult.presumed_minor = true;
        assert_eq!(adult.check(), Ok(()));
        // Turning 19 on record while unaccompanied is refused.
        child.age_at_contact = Some(Age::parse(19).unwrap());
        assert_eq!(child.check(), Err(UnaccompaniedAdult));
    }

    #[test]
    fn a_nationality_recorded_after_the_grounds_starts_the_period_from_the_grounds() {
        let mut c = case(Some(24), None);
        c.record_reasonable_grounds(date(2024, 3, 14), 90);
        assert_eq!(c.reflection_period_end, None, "not started on a guess");
        c.change_nationality(Some(cc("NG")), 90);
        assert_eq!(
            c.reflection_period_end,
            Some(date(2024, 6, 12)),
            "counted from the grounds"
        );
        c.change_nationality(Some(cc("RO")), 90);
        assert_eq!(c.reflection_period_end, None, "an EU national needs none");
        let mut early = case(Some(24), Some("NG"));
        early.change_nationality(Some(cc("SY")), 90);
        assert_eq!(early.reflection_period_end, None, "no grounds yet: no period");
    }

    #[test]
    fn closed_and_erased_cases_are_read_only() {
        let mut c = case(None, None);
        assert_eq!(c.writable(), Ok(()));
        c.closed_at = Some(chrono::DateTime::UNIX_EPOCH);
        assert_eq!(c.writable(), Err(ReadOnly::Closed));
        c.erasure_reason = Some("safety_risk".into());
        assert_eq!(c.writable(), Err(ReadOnly::Erased));
    }

    #[test]
    fn uncertain_age_keeps_the_presumption() {
        let age = |y| Some(Age::parse(y).unwrap());
        assert!(
            treated_as_minor(age(19), true, true),
            "uncertain 19 with reasons to believe a child"
        );
        assert!(!treated_as_minor(age(19), false, true), "a certain adult age overrides");
        assert!(!treated_as_minor(age(19), true, false), "no reason to believe a child");
        assert!(treated_as_minor(age(16), true, false), "a recorded age under 18");
        assert!(treated_as_minor(None, false, true));
        assert!(!treated_as_minor(None, true, false));
    }

    #[test]
    fn is_minor_table() {
        let age = |y| Some(Age::parse(y).unwrap());
        // (age, presumed_minor, expected)
        let cases = [
            (age(0), false, true),
            (age(15), false, true),
            (age(17), false, true),
            (age(17), true, true),
            (age(18), false, false),
            // A recorded adult age overrides the presumption.
            (age(18), true, false),
            (age(45), true, false),
            (None, true, true),
            (None, false, false),
        ];
        for (age, presumed, expected) in cases {
            assert_eq!(
                is_minor(age, presumed),
                expected,
                "age {age:?}, presumed_minor {presumed}"
            );
        }
    }

    #[test]
    fn age_range() {
        assert_eq!(Age::parse(0).map(|a| a.years()), Ok(0));
        assert_eq!(Age::parse(120).map(|a| a.years()), Ok(120));
        assert_eq!(Age::parse(121), Err(AgeOutOfRange(121)));
        assert_eq!(Age::parse(-1), Err(AgeOutOfRange(-1)));
        assert_eq!(Age::parse(256), Err(AgeOutOfRange(256)));
        assert!(serde_json::from_str::<Age>("130").is_err());
        assert_eq!(serde_json::to_string(&Age::parse(30).unwrap()).unwrap(), "30");
    }

    #[test]
    fn identification_transitions() {
        use IdentificationDecision as D;
        use IdentificationRefusal::{Forbidden, NotAllowedFrom};
        use IdentificationStatus as S;
        let caseworker = IdentificationActor {
            caseworker_of_owner: true,
            coordinator_of_focal_point: false,
        };
        let coordinator = IdentificationActor {
            caseworker_of_owner: false,
            coordinator_of_focal_point: true,
        };
        let both = IdentificationActor {
            caseworker_of_owner: true,
            coordinator_of_focal_point: true,
        };
        let nobody = IdentificationActor::default();

        let ok = |s| Ok::<_, IdentificationRefusal>(s);
        let from = |status| Err(NotAllowedFrom { status });
        let cases = [
            // reasonable grounds: only from Signal, only the owner's caseworker
            (S::Signal, D::ReasonableGrounds, caseworker, ok(S::PresumedVictim)),
            (S::Signal, D::ReasonableGrounds, both, ok(S::PresumedVictim)),
            (S::Signal, D::ReasonableGrounds, coordinator, Err(Forbidden)),
            (S::Signal, D::ReasonableGrounds, nobody, Err(Forbidden)),
            (
                S::PresumedVictim,
                D::ReasonableGrounds,
                caseworker,
                from(S::PresumedVictim),
            ),
            (S::Identified, D::ReasonableGrounds, caseworker, from(S::Identified)),
            (
                S::NotIdentified,
                D::ReasonableGrounds,
                caseworker,
                from(S::NotIdentified),
            ),
            // identified / not identified: only from PresumedVictim, only the focal point
            (S::PresumedVictim, D::Identified, coordinator, ok(S::Identified)),
            (S::PresumedVictim, D::NotIdentified, coordinator, ok(S::NotIdentified)),
            (S::PresumedVictim, D::Identified, both, ok(S::Identified)),
            (S::PresumedVictim, D::Identified, caseworker, Err(Forbidden)),
            (S::PresumedVictim, D::NotIdentified, caseworker, Err(Forbidden)),
            (S::PresumedVictim, D::Identified, nobody, Err(Forbidden)),
            (S::Signal, D::Identified, coordinator, from(S::Signal)),
            (S::Signal, D::NotIdentified, coordinator, from(S::Signal)),
            (S::Identified, D::Identified, coordinator, from(S::Identified)),
            (S::Identified, D::NotIdentified, coordinator, from(S::Identified)),
            (S::NotIdentified, D::Identified, coordinator, from(S::NotIdentified)),
            // Forbidden is reported before the status conflict.
            (S::Identified, D::Identified, caseworker, Err(Forbidden)),
        ];
        for (current, decision, actor, expected) in cases {
            assert_eq!(
                decide_identification(current, decision, actor),
                expected,
                "{current} + {decision} by {actor:?}"
            );
        }
    }

    #[test]
    fn reasonable_grounds_by_status() {
        use IdentificationStatus as S;
        assert!(!has_reasonable_grounds(S::Signal));
        assert!(has_reasonable_grounds(S::PresumedVictim));
        assert!(has_reasonable_grounds(S::Identified));
        assert!(!has_reasonable_grounds(S::NotIdentified));
    }

    #[test]
    fn reflection_period_only_for_third_country_nationals() {
        let start = date(2026, 1, 15);
        assert_eq!(reflection_period_end(start, Some(&cc("NL")), 90), None);
        assert_eq!(reflection_period_end(start, Some(&cc("DE")), 90), None);
        assert_eq!(reflection_period_end(start, Some(&cc("NO")), 90), None);
        assert_eq!(reflection_period_end(start, Some(&cc("CH")), 90), None);
        assert_eq!(reflection_period_end(start, None, 90), None);
        assert_eq!(
            reflection_period_end(start, Some(&cc("MA")), 90),
            Some(date(2026, 4, 15))
        );
        assert_eq!(reflection_period_end(start, Some(&cc("NG")), 0), Some(start));
        // UK nationals are third-country nationals since Brexit.
        assert_eq!(
            reflection_period_end(start, Some(&cc("GB")), 30),
            Some(date(2026, 2, 14))
        );
    }

    #[test]
    fn country_code_parsing() {
        assert_eq!(CountryCode::parse("NL").map(|c| c.as_str()), Ok("NL"));
        assert_eq!(CountryCode::parse("nl").map(|c| c.as_str()), Ok("NL"));
        assert_eq!(CountryCode::parse("Ma").map(|c| c.as_str()), Ok("MA"));
        assert_eq!(
            CountryCode::parse("XX"),
            Err(CountryCodeError::NotAssigned("XX".into()))
        );
        assert_eq!(
            CountryCode::parse("uk"),
            Err(CountryCodeError::NotAssigned("UK".into()))
        );
        for bad in ["N", "", "NLD", "N1", " NL", "ÑL", "1N"] {
            assert_eq!(
                CountryCode::parse(bad),
                Err(CountryCodeError::Malformed(bad.into())),
                "{bad:?}"
            );
        }
        assert_eq!("de".parse::<CountryCode>(), Ok(cc("DE")));
        assert_eq!(serde_json::to_string(&cc("nl")).unwrap(), "\"NL\"");
        assert_eq!(serde_json::from_str::<CountryCode>("\"be\"").unwrap(), cc("BE"));
        assert!(serde_json::from_str::<CountryCode>("\"ZZ\"").is_err());
    }

    #[test]
    fn country_lists_are_sorted_unique_and_consistent() {
        assert!(ASSIGNED_COUNTRY_CODES.windows(2).all(|w| w[0] < w[1]));
        assert!(EU_MEMBER_STATES.windows(2).all(|w| w[0] < w[1]));
        for code in ASSIGNED_COUNTRY_CODES {
            assert_eq!(CountryCode::parse(code).map(|c| c.as_str()), Ok(code));
        }
        for code in EU_MEMBER_STATES.iter().chain(&FREE_MOVEMENT_NON_EU) {
            assert!(ASSIGNED_COUNTRY_CODES.contains(code), "{code}");
        }
        let eu_count = ASSIGNED_COUNTRY_CODES.iter().filter(|c| cc(c).is_eu()).count();
        assert_eq!(eu_count, 27);
    }

    #[test]
    fn nationality_groups() {
        assert_eq!(NationalityGroup::of(Some(cc("NL"))), NationalityGroup::Dutch);
        assert_eq!(NationalityGroup::of(Some(cc("DE"))), NationalityGroup::OtherEu);
        assert_eq!(NationalityGroup::of(Some(cc("GR"))), NationalityGroup::OtherEu);
        assert_eq!(NationalityGroup::of(Some(cc("NO"))), NationalityGroup::NonEu);
        assert_eq!(NationalityGroup::of(Some(cc("GB"))), NationalityGroup::NonEu);
        assert_eq!(NationalityGroup::from(None), NationalityGroup::Unknown);
        assert!(cc("NL").is_dutch());
        assert!(!cc("BE").is_dutch());
    }

    #[test]
    fn exploitation_forms_set() {
        use ExploitationForm as F;
        assert_eq!(ExploitationForms::parse(vec![]), Err(NoExploitationForm));
        let forms = ExploitationForms::parse(vec![F::Labour, F::Sexual, F::Labour]).unwrap();
        assert_eq!(forms.to_vec(), vec![F::Sexual, F::Labour]);
        assert_eq!(forms.len(), 2);
        assert!(!forms.is_empty());
        assert!(forms.contains(F::Labour));
        assert!(!forms.contains(F::Criminal));
        assert_eq!(serde_json::to_string(&forms).unwrap(), r#"["sexual","labour"]"#);
        assert_eq!(
            serde_json::from_str::<ExploitationForms>(r#"["other","criminal"]"#).unwrap(),
            ExploitationForms::parse(vec![F::Criminal, F::Other]).unwrap()
        );
        assert!(serde_json::from_str::<ExploitationForms>("[]").is_err());
    }

    #[test]
    fn enum_text_round_trips() {
        fn check<T>(all: &[T])
        where
            T: Copy + PartialEq + fmt::Debug + Serialize + FromStr + fmt::Display,
            T::Err: fmt::Debug,
        {
            for v in all {
                let json = serde_json::to_string(v).unwrap();
                assert_eq!(json, format!("\"{v}\""), "serde and as_str disagree");
                assert_eq!(v.to_string().parse::<T>().ok(), Some(*v));
            }
        }
        check(&ReporterRole::ALL);
        check(&ContactChannel::ALL);
        check(&ExploitationForm::ALL);
        check(&Gender::ALL);
        check(&NationalityGroup::ALL);
        check(&IdentificationStatus::ALL);
        check(&IdentificationDecision::ALL);
        assert_eq!(Gender::NonBinary.as_str(), "non_binary");
        assert_eq!(
            "nonbinary".parse::<Gender>(),
            Err(UnknownVariant {
                kind: "Gender",
                value: "nonbinary".into()
            })
        );
    }
}

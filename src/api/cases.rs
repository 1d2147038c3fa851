//! Cases: one possible victim's situation as it reached one organisation; identification
//! decisions, consent, statutory bases and the anonymous notification to the focal point.

use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::common::{
    self, CaseAccess, Idempotency, Page, PageQuery, case_access, case_for, case_for_identification, created,
    ok_with_etag, parse_id,
};
use super::input::{self, Fields, Patch};
use crate::auth::{Actor, Role};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::crypto::Keyring;
use crate::db::cases::{
    self as case_rows, AnonymousNotificationRow, CaseRow, ConsentRow, IdentificationDecisionRow, IdentifyingRow,
    LegalBasisRow,
};
use crate::db::referrals::{self as referral_rows, ReferralRow};
use crate::db::{AnyConnection, Db, Id, Instant};
use crate::domain::access::{self, CaseAction};
use crate::domain::case::{
    Age, ContactChannel, CountryCode, ExploitationForm, ExploitationForms, Gender, IdentificationActor,
    IdentificationDecision, IdentificationRefusal, IdentificationStatus, NationalityGroup, ReporterRole,
    decide_identification, reflection_period_end, treated_as_minor,
};
use crate::domain::consent::{ConsentGiver, ConsentMethod, ConsentScope};
use crate::domain::organisation::Registry;
use crate::domain::referral::ReferralState;
use crate::domain::routing::{Need, RoutingRules};
use crate::domain::text::{LanguageTag, Text, parse_email, parse_phone};
use crate::domain::three_way::ReportingIntention;
use crate::error::ApiError;
use crate::notify::Notifier;

// ---------------------------------------------------------------------------
// Representations
// ---------------------------------------------------------------------------

/// Identifying details: stored apart from case facts; shown only to the owning
/// organisation and to receivers holding an accepted referral and a data-sharing consent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IdentifyingDetails {
    pub name: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentificationDecisionView {
    pub decision: IdentificationDecision,
    pub basis: String,
    pub actor_sub: String,
    pub actor_org: String,
    pub decided_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentificationView {
    pub status: IdentificationStatus,
    /// The day reasonable grounds were recorded (Art. 11(2)).
    pub reasonable_grounds_on: Option<NaiveDate>,
    /// Last day of the reflection and recovery period (third-country nationals).
    pub reflection_period_end: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decisions: Option<Vec<IdentificationDecisionView>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LegalBasisView {
    pub id: uuid::Uuid,
    pub basis: String,
    pub justification: String,
    pub recorded_by: String,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

/// A case as the caller may see it (`access` says which view this is).
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseView {
    pub id: uuid::Uuid,
    pub access: CaseAccess,
    pub organisation: String,
    pub version: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reporter_role: Option<ReporterRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_channel: Option<ContactChannel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_date: Option<NaiveDate>,
    pub exploitation_forms: Vec<ExploitationForm>,
    pub age_at_contact: Option<i32>,
    pub age_uncertain: bool,
    pub presumed_minor: bool,
    /// Handled as a child: under 18, or presumed a child (Art. 13(2)).
    pub minor: bool,
    pub gender: Option<Gender>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nationality: Option<String>,
    pub nationality_group: NationalityGroup,
    pub region: Option<String>,
    pub language: Option<String>,
    /// Only for the owning organisation and receivers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pseudonym: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub police_report_intention: Option<ReportingIntention>,
    /// The most recent incident of violence or exploitation, when known (routing).
    pub last_incident_date: Option<NaiveDate>,
    /// What the person needs next, as recorded (routing).
    pub needs: Vec<Need>,
    /// A minor without a parent or legal guardian in the Netherlands.
    pub unaccompanied: bool,
    pub identification: IdentificationView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_bases: Option<Vec<LegalBasisView>>,
    /// Present only for callers entitled to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifying_details: Option<IdentifyingDetails>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CaseList {
    pub items: Vec<CaseView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

pub fn forms_of(row: &CaseRow) -> Vec<ExploitationForm> {
    forms_from_flags(
        row.exploitation_sexual,
        row.exploitation_criminal,
        row.exploitation_labour,
        row.exploitation_other,
    )
}

/// The forms of exploitation from the four stored flags.
fn forms_from_flags(sexual: bool, criminal: bool, labour: bool, other: bool) -> Vec<ExploitationForm> {
    [
        (sexual, ExploitationForm::Sexual),
        (criminal, ExploitationForm::Criminal),
        (labour, ExploitationForm::Labour),
        (other, ExploitationForm::Other),
    ]
    .into_iter()
    .filter_map(|(on, form)| on.then_some(form))
    .collect()
}

fn parse_text<T: std::str::FromStr>(text: &Option<String>) -> Option<T> {
    text.as_deref().and_then(|t| t.parse().ok())
}

pub fn is_minor(row: &CaseRow) -> bool {
    let age = row.age_at_contact.and_then(|a| Age::parse(i64::from(a)).ok());
    treated_as_minor(age, row.age_uncertain, row.presumed_minor)
}

fn nationality_of(row: &CaseRow) -> Option<CountryCode> {
    row.nationality.as_deref().and_then(|n| CountryCode::parse(n).ok())
}

fn unreadable(_: crate::crypto::CryptoError) -> ApiError {
    ApiError::internal("a sealed value could not be opened: check [crypto] keys")
}

/// Opens a sealed free-text value; an erased one (empty) stays empty.
pub fn open_text(keyring: &Keyring, field: &str, record: Id, sealed: &str) -> Result<String, ApiError> {
    if sealed.is_empty() {
        return Ok(String::new());
    }
    keyring.open(field, record, sealed).map_err(unreadable)
}

pub fn open_opt(keyring: &Keyring, field: &str, record: Id, sealed: Option<&str>) -> Result<Option<String>, ApiError> {
    keyring.open_opt(field, record, sealed).map_err(unreadable)
}

/// A case row with its pseudonym opened, for rendering only.
pub fn open_case(keyring: &Keyring, mut case: CaseRow) -> Result<CaseRow, ApiError> {
    case.pseudonym = open_opt(keyring, "cases.pseudonym", case.id, case.pseudonym.as_deref())?;
    Ok(case)
}

fn open_identifying(keyring: &Keyring, mut d: IdentifyingRow) -> Result<IdentifyingRow, ApiError> {
    let id = d.case_id;
    d.name = open_opt(keyring, "case_identifying_details.name", id, d.name.as_deref())?;
    d.date_of_birth = open_opt(
        keyring,
        "case_identifying_details.date_of_birth",
        id,
        d.date_of_birth.as_deref(),
    )?;
    d.phone = open_opt(keyring, "case_identifying_details.phone", id, d.phone.as_deref())?;
    d.email = open_opt(keyring, "case_identifying_details.email", id, d.email.as_deref())?;
    d.address = open_opt(keyring, "case_identifying_details.address", id, d.address.as_deref())?;
    Ok(d)
}

fn open_legal_basis(keyring: &Keyring, mut b: LegalBasisRow) -> Result<LegalBasisRow, ApiError> {
    b.justification = open_text(keyring, "legal_bases.justification", b.id, &b.justification)?;
    Ok(b)
}

/// Everything loaded to render one case for one caller.
pub struct CaseBundle {
    pub case: CaseRow,
    pub access: CaseAccess,
    pub identifying: Option<IdentifyingRow>,
    pub decisions: Vec<IdentificationDecisionRow>,
    pub legal_bases: Vec<LegalBasisRow>,
    /// For a receiver shown identifying details: the consent that allows it.
    pub disclosure_basis: Option<Id>,
}

impl CaseBundle {
    /// Loads and authorises in one go; `identifying` is loaded only when the caller may see it.
    /// The bundle holds opened (decrypted) copies for rendering; it is never written back.
    pub fn load(conn: &mut AnyConnection, actor: &Actor, keyring: &Keyring, id: Id) -> Result<Self, ApiError> {
        let case = case_rows::find(conn, id)?.ok_or(ApiError::NotFound)?;
        let referrals = referral_rows::for_case(conn, id)?;
        let access = case_access(actor, &case, &referrals)?;
        let (entitled, disclosure_basis) = match access {
            CaseAccess::Owner => (true, None),
            CaseAccess::FocalPoint => (false, None),
            CaseAccess::Receiver => {
                let consents = case_rows::consents_for(conn, id)?;
                let basis = common::receiver_sees_identifying_details(&actor.org, &referrals, &consents);
                (basis.is_some(), basis)
            }
        };
        let identifying = if entitled {
            case_rows::identifying_details(conn, id)?
        } else {
            None
        };
        let decisions = match access {
            CaseAccess::Receiver => Vec::new(),
            _ => case_rows::identification_decisions_for(conn, id)?,
        };
        let legal_bases = match access {
            CaseAccess::Owner => case_rows::legal_bases_for(conn, id)?,
            _ => Vec::new(),
        };
        Ok(Self {
            case: open_case(keyring, case)?,
            access,
            identifying: identifying.map(|d| open_identifying(keyring, d)).transpose()?,
            decisions: decisions
                .into_iter()
                .map(|mut d| {
                    d.basis = open_text(keyring, "identification_decisions.basis", d.id, &d.basis)?;
                    Ok(d)
                })
                .collect::<Result<_, ApiError>>()?,
            legal_bases: legal_bases
                .into_iter()
                .map(|b| open_legal_basis(keyring, b))
                .collect::<Result<_, _>>()?,
            disclosure_basis,
        })
    }

    pub fn view(&self) -> CaseView {
        case_view(
            &self.case,
            self.access,
            self.identifying.as_ref(),
            &self.decisions,
            &self.legal_bases,
        )
    }
}

pub fn case_view(
    row: &CaseRow,
    access: CaseAccess,
    identifying: Option<&IdentifyingRow>,
    decisions: &[IdentificationDecisionRow],
    legal_bases: &[LegalBasisRow],
) -> CaseView {
    let owner = access == CaseAccess::Owner;
    let receiver = access == CaseAccess::Receiver;
    CaseView {
        id: row.id.0,
        access,
        organisation: row.organisation.clone(),
        version: row.version,
        created_at: row.created_at.0,
        updated_at: row.updated_at.0,
        reporter_role: (!receiver)
            .then(|| parse_text(&Some(row.reporter_role.clone())))
            .flatten(),
        contact_channel: (!receiver)
            .then(|| parse_text(&Some(row.contact_channel.clone())))
            .flatten(),
        contact_date: (!receiver).then_some(row.contact_date),
        exploitation_forms: forms_of(row),
        age_at_contact: row.age_at_contact,
        age_uncertain: row.age_uncertain,
        presumed_minor: row.presumed_minor,
        minor: is_minor(row),
        gender: parse_text(&row.gender),
        nationality: (!receiver).then(|| row.nationality.clone()).flatten(),
        nationality_group: NationalityGroup::of(nationality_of(row)),
        region: row.region.clone(),
        language: row.language.clone(),
        pseudonym: if owner || receiver { row.pseudonym.clone() } else { None },
        police_report_intention: if owner {
            parse_text(&row.police_report_intention)
        } else {
            None
        },
        last_incident_date: row.last_incident_date,
        needs: needs_of(row),
        unaccompanied: row.unaccompanied,
        identification: IdentificationView {
            status: row
                .identification_status
                .parse()
                .unwrap_or(IdentificationStatus::Signal),
            reasonable_grounds_on: row.reasonable_grounds_on,
            reflection_period_end: row.reflection_period_end,
            decisions: (!receiver).then(|| {
                decisions
                    .iter()
                    .map(|d| IdentificationDecisionView {
                        decision: d.decision.parse().unwrap_or(IdentificationDecision::ReasonableGrounds),
                        basis: d.basis.clone(),
                        actor_sub: d.actor_sub.clone(),
                        actor_org: d.actor_org.clone(),
                        decided_at: d.decided_at.0,
                    })
                    .collect()
            }),
        },
        legal_bases: owner.then(|| {
            legal_bases
                .iter()
                .map(|b| LegalBasisView {
                    id: b.id.0,
                    basis: b.basis.clone(),
                    justification: b.justification.clone(),
                    recorded_by: b.recorded_by.clone(),
                    recorded_at: b.recorded_at.0,
                })
                .collect()
        }),
        identifying_details: identifying.map(|d| IdentifyingDetails {
            name: d.name.clone(),
            date_of_birth: d.date_of_birth.as_deref().and_then(|t| t.parse().ok()),
            phone: d.phone.clone(),
            email: d.email.clone(),
            address: d.address.clone(),
        }),
    }
}

// ---------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------

/// The body of `POST /cases` (and the fields `PATCH` may change).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct CaseInput {
    pub reporter_role: ReporterRole,
    pub contact_channel: ContactChannel,
    /// Date of first contact, not in the future.
    pub contact_date: NaiveDate,
    /// At least one.
    pub exploitation_forms: Vec<ExploitationForm>,
    /// Whole years, 0 to 120.
    pub age_at_contact: Option<i64>,
    #[serde(default)]
    pub age_uncertain: bool,
    /// There are reasons to believe the person is a child.
    #[serde(default)]
    pub presumed_minor: bool,
    pub gender: Option<Gender>,
    /// ISO 3166-1 alpha-2.
    pub nationality: Option<String>,
    /// A region code from the registry.
    pub region: Option<String>,
    /// A language tag such as `nl`, `en`, `ro`.
    pub language: Option<String>,
    /// A chat handle or alias; anonymous contact is normal.
    pub pseudonym: Option<String>,
    /// What the person said about reporting to the police. Informational only: no
    /// handover ever depends on it (Art. 11(3)).
    pub police_report_intention: Option<ReportingIntention>,
    /// The most recent incident, not in the future (routing: e.g. acute care within 7 days).
    pub last_incident_date: Option<NaiveDate>,
    /// What the person needs next, e.g. `shelter`, `image_removal`.
    #[serde(default)]
    pub needs: Vec<Need>,
    /// A minor without a parent or legal guardian in the Netherlands (minors only).
    #[serde(default)]
    pub unaccompanied: bool,
    pub identifying_details: Option<IdentifyingDetails>,
}

fn enum_field<E: Copy + std::str::FromStr>(
    all: &'static [E],
    name: fn(&E) -> &'static str,
) -> impl Fn(&Value) -> Result<E, String> {
    input::one_of(all, name)
}

fn exploitation_forms(value: &Value) -> Result<ExploitationForms, String> {
    let forms = input::list_of(value, enum_field(&ExploitationForm::ALL, ExploitationForm::as_str))?;
    ExploitationForms::parse(forms).map_err(|e| e.to_string())
}

fn age(value: &Value) -> Result<Age, String> {
    Age::parse(input::integer(value)?).map_err(|_| "must be a whole number of years from 0 to 120".into())
}

fn country(value: &Value) -> Result<CountryCode, String> {
    CountryCode::parse(input::string(value)?)
        .map_err(|_| "must be an ISO 3166-1 alpha-2 country code such as NL".into())
}

fn language(value: &Value) -> Result<LanguageTag, String> {
    LanguageTag::parse(input::string(value)?).map_err(|e| e.to_string())
}

fn region<'a>(registry: &'a Registry) -> impl Fn(&Value) -> Result<String, String> + 'a {
    move |value| {
        let text = input::string(value)?;
        if registry.regions.contains(text) {
            Ok(text.to_string())
        } else {
            Err(format!(
                "must be a region known to the registry: {}",
                registry.regions.iter().cloned().collect::<Vec<_>>().join(", ")
            ))
        }
    }
}

fn contact_date(today: NaiveDate) -> impl Fn(&Value) -> Result<NaiveDate, String> {
    move |value| {
        let date = input::date(value)?;
        if date > today {
            Err("must not be in the future".into())
        } else if date < NaiveDate::from_ymd_opt(1990, 1, 1).unwrap_or(date) {
            Err("must be 1990-01-01 or later".into())
        } else {
            Ok(date)
        }
    }
}

fn identifying_details(fields: &mut Fields, today: NaiveDate) -> Option<IdentifyingDetails> {
    let name = fields.optional("name", input::line)?;
    let date_of_birth = fields.optional("date_of_birth", |v| {
        let date = input::date(v)?;
        if date > today {
            Err("must not be in the future".to_string())
        } else {
            Ok(date)
        }
    })?;
    let phone = fields.optional("phone", input::text_with(parse_phone))?;
    let email = fields.optional("email", input::text_with(parse_email))?;
    let address = fields.optional("address", |v| input::text_with(|t| Text::parse(t, 500, true))(v))?;
    Some(IdentifyingDetails {
        name: name.map(Text::into_string),
        date_of_birth,
        phone: phone.map(Text::into_string),
        email: email.map(Text::into_string),
        address: address.map(Text::into_string),
    })
}

impl IdentifyingDetails {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.date_of_birth.is_none()
            && self.phone.is_none()
            && self.email.is_none()
            && self.address.is_none()
    }

    /// The stored form: every value sealed to this case, the name also blind-indexed.
    fn to_row(&self, case_id: Id, now: Instant, keyring: &Keyring) -> Option<IdentifyingRow> {
        let seal = |field: &str, value: Option<&str>| keyring.seal_opt(field, case_id, value);
        let date_of_birth = self.date_of_birth.map(|d| d.to_string());
        (!self.is_empty()).then(|| IdentifyingRow {
            case_id,
            name: seal("case_identifying_details.name", self.name.as_deref()),
            date_of_birth: seal("case_identifying_details.date_of_birth", date_of_birth.as_deref()),
            phone: seal("case_identifying_details.phone", self.phone.as_deref()),
            email: seal("case_identifying_details.email", self.email.as_deref()),
            address: seal("case_identifying_details.address", self.address.as_deref()),
            name_index: self.name.as_deref().map(|n| keyring.blind_index(n)),
            updated_at: now,
            name_index_scheme: crate::domain::text::NAME_KEY_SCHEME,
        })
    }
}

/// A parsed new case.
struct NewCase {
    reporter_role: ReporterRole,
    contact_channel: ContactChannel,
    contact_date: NaiveDate,
    forms: ExploitationForms,
    age: Option<Age>,
    age_uncertain: bool,
    presumed_minor: bool,
    gender: Option<Gender>,
    nationality: Option<CountryCode>,
    region: Option<String>,
    language: Option<LanguageTag>,
    pseudonym: Option<Text>,
    police_report_intention: Option<ReportingIntention>,
    last_incident_date: Option<NaiveDate>,
    needs: Vec<Need>,
    unaccompanied: bool,
    identifying: Option<IdentifyingDetails>,
}

fn parse_new_case(body: Value, registry: &Registry, today: NaiveDate) -> Result<NewCase, ApiError> {
    let mut f = Fields::new(body)?;
    let reporter_role = f.required("reporter_role", enum_field(&ReporterRole::ALL, ReporterRole::as_str));
    let contact_channel = f.required(
        "contact_channel",
        enum_field(&ContactChannel::ALL, ContactChannel::as_str),
    );
    let contact_date = f.required("contact_date", contact_date(today));
    let forms = f.required("exploitation_forms", exploitation_forms);
    let age = f.optional("age_at_contact", age);
    let age_uncertain = f.defaulted("age_uncertain", false, input::boolean);
    let presumed_minor = f.defaulted("presumed_minor", false, input::boolean);
    let gender = f.optional("gender", enum_field(&Gender::ALL, Gender::as_str));
    let nationality = f.optional("nationality", country);
    let region = f.optional("region", region(registry));
    let language = f.optional("language", language);
    let pseudonym = f.optional("pseudonym", input::line);
    let intention = f.optional(
        "police_report_intention",
        enum_field(&ReportingIntention::ALL, ReportingIntention::as_str),
    );
    let last_incident = f.optional("last_incident_date", incident_date(today));
    let needs = f.defaulted("needs", Vec::new(), needs_list);
    let unaccompanied = f.defaulted("unaccompanied", false, input::boolean);
    let identifying = f.object("identifying_details", |inner| identifying_details(inner, today));
    // Only when the age fields themselves parsed; their own errors are reported already.
    if let (Some(age), Some(uncertain), Some(presumed), Some(true)) =
        (age, age_uncertain, presumed_minor, unaccompanied)
        && !treated_as_minor(age, uncertain, presumed)
    {
        f.error("unaccompanied", UNACCOMPANIED_MINORS_ONLY);
    }
    f.finish()?;
    let missing = || ApiError::internal("validated field missing");
    Ok(NewCase {
        reporter_role: reporter_role.ok_or_else(missing)?,
        contact_channel: contact_channel.ok_or_else(missing)?,
        contact_date: contact_date.ok_or_else(missing)?,
        forms: forms.ok_or_else(missing)?,
        age: age.ok_or_else(missing)?,
        age_uncertain: age_uncertain.ok_or_else(missing)?,
        presumed_minor: presumed_minor.ok_or_else(missing)?,
        gender: gender.ok_or_else(missing)?,
        nationality: nationality.ok_or_else(missing)?,
        region: region.ok_or_else(missing)?,
        language: language.ok_or_else(missing)?,
        pseudonym: pseudonym.ok_or_else(missing)?,
        police_report_intention: intention.ok_or_else(missing)?,
        last_incident_date: last_incident.ok_or_else(missing)?,
        needs: needs.ok_or_else(missing)?,
        unaccompanied: unaccompanied.ok_or_else(missing)?,
        identifying: identifying.ok_or_else(missing)?,
    })
}

const UNACCOMPANIED_MINORS_ONLY: &str = "applies only to a minor (an age under 18, or presumed_minor)";

fn incident_date(today: NaiveDate) -> impl Fn(&Value) -> Result<NaiveDate, String> {
    move |value| {
        let date = input::date(value)?;
        if date > today {
            Err("must not be in the future".into())
        } else if date < NaiveDate::from_ymd_opt(1950, 1, 1).unwrap_or(date) {
            Err("must be 1950-01-01 or later".into())
        } else {
            Ok(date)
        }
    }
}

/// A list of needs; empty is allowed (nothing recorded yet).
fn needs_list(value: &Value) -> Result<Vec<Need>, String> {
    let items = value.as_array().ok_or_else(|| "must be a list".to_string())?;
    let parse = input::one_of(&Need::ALL, Need::as_str);
    let mut needs = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let need = parse(item).map_err(|m| format!("entry {index} {m}"))?;
        if !needs.contains(&need) {
            needs.push(need);
        }
    }
    needs.sort();
    Ok(needs)
}

fn needs_json(needs: &[Need]) -> String {
    serde_json::to_string(needs).unwrap_or_else(|_| "[]".into())
}

pub fn needs_of(row: &CaseRow) -> Vec<Need> {
    serde_json::from_str(&row.needs).unwrap_or_default()
}

fn set_forms(row: &mut CaseRow, forms: ExploitationForms) {
    row.exploitation_sexual = forms.contains(ExploitationForm::Sexual);
    row.exploitation_criminal = forms.contains(ExploitationForm::Criminal);
    row.exploitation_labour = forms.contains(ExploitationForm::Labour);
    row.exploitation_other = forms.contains(ExploitationForm::Other);
}

/// The request context every handler here needs.
pub struct Context {
    pub db: web::Data<Db>,
    pub registry: web::Data<Registry>,
    pub clock: web::Data<SharedClock>,
    pub settings: web::Data<Settings>,
    pub notifier: web::Data<Notifier>,
    pub routing: web::Data<RoutingRules>,
    pub keyring: web::Data<Keyring>,
}

impl actix_web::FromRequest for Context {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let load = || -> Option<Context> {
            Some(Context {
                db: req.app_data::<web::Data<Db>>()?.clone(),
                registry: req.app_data::<web::Data<Registry>>()?.clone(),
                clock: req.app_data::<web::Data<SharedClock>>()?.clone(),
                settings: req.app_data::<web::Data<Settings>>()?.clone(),
                notifier: req.app_data::<web::Data<Notifier>>()?.clone(),
                routing: req.app_data::<web::Data<RoutingRules>>()?.clone(),
                keyring: req.app_data::<web::Data<Keyring>>()?.clone(),
            })
        };
        std::future::ready(load().ok_or_else(|| ApiError::internal("application state missing")))
    }
}

impl Context {
    pub fn now(&self) -> Instant {
        Instant::from_utc(self.clock.now())
    }
}

// ---------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------

#[derive(Deserialize, IntoParams)]
pub struct CasePath {
    /// The case id.
    pub id: String,
}

/// Records a new case (caseworker). Honours `Idempotency-Key`.
#[utoipa::path(
    tag = "cases",
    request_body = CaseInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation key")),
    responses(
        (status = 201, body = CaseView, headers(("Location" = String), ("ETag" = String))),
        (status = 400, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases")]
pub async fn create(
    actor: Actor,
    ctx: Context,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    access::open_case(actor.principal())?;
    let body = body.into_inner();
    let idempotency = Idempotency::new(&ctx.keyring, &req, "POST /cases", &body)?;
    let now = ctx.now();
    let parsed = parse_new_case(body, &ctx.registry, now.0.date_naive())?;
    let keyring = ctx.keyring.clone();
    let bundle = ctx
        .db
        .write(move |conn| {
            let id = match idempotency.replay(conn, &actor)? {
                Some(id) => id,
                None => {
                    let id = Id(uuid::Uuid::now_v7());
                    let mut row = CaseRow {
                        id,
                        organisation: actor.org.clone(),
                        created_by: actor.sub.clone(),
                        created_at: now,
                        updated_at: now,
                        version: 1,
                        reporter_role: parsed.reporter_role.as_str().into(),
                        contact_channel: parsed.contact_channel.as_str().into(),
                        contact_date: parsed.contact_date,
                        exploitation_sexual: false,
                        exploitation_criminal: false,
                        exploitation_labour: false,
                        exploitation_other: false,
                        age_at_contact: parsed.age.map(|a| i32::from(a.years())),
                        age_uncertain: parsed.age_uncertain,
                        presumed_minor: parsed.presumed_minor,
                        gender: parsed.gender.map(|g| g.as_str().into()),
                        nationality: parsed.nationality.map(|n| n.as_str().into()),
                        region: parsed.region.clone(),
                        language: parsed.language.as_ref().map(|l| l.as_str().into()),
                        pseudonym: keyring.seal_opt("cases.pseudonym", id, parsed.pseudonym.as_ref().map(Text::as_str)),
                        police_report_intention: parsed.police_report_intention.map(|p| p.as_str().into()),
                        identification_status: IdentificationStatus::Signal.as_str().into(),
                        reasonable_grounds_on: None,
                        reflection_period_end: None,
                        last_incident_date: parsed.last_incident_date,
                        needs: needs_json(&parsed.needs),
                        unaccompanied: parsed.unaccompanied,
                        closed_at: None,
                        closed_reason: None,
                        identifying_erased_at: None,
                        free_text_erased_at: None,
                        erasure_reason: None,
                    };
                    set_forms(&mut row, parsed.forms);
                    case_rows::insert(conn, &row)?;
                    if let Some(details) = parsed.identifying.as_ref().and_then(|d| d.to_row(id, now, &keyring)) {
                        case_rows::replace_identifying_details(conn, id, Some(&details))?;
                    }
                    idempotency.remember(conn, &actor, id, now)?;
                    common::audit(conn, &actor, "case.create", "case", id, Some(id), "ok", now)?;
                    id
                }
            };
            CaseBundle::load(conn, &actor, &keyring, id)
        })
        .await?;
    Ok(created(
        format!("/api/v1/cases/{}", bundle.case.id.0),
        Some(bundle.case.version),
        bundle.view(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaseListQuery {
    /// Identification status: signal, presumed_victim, identified, not_identified.
    pub status: Option<String>,
    /// First contact on or after this date (YYYY-MM-DD).
    pub from: Option<String>,
    /// First contact on or before this date (YYYY-MM-DD).
    pub to: Option<String>,
    /// Only cases naming this form of exploitation.
    pub exploitation_form: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

fn query_date(name: &str, text: Option<&str>) -> Result<Option<NaiveDate>, ApiError> {
    text.map(|t| {
        NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| ApiError::field(name, "must be a date as YYYY-MM-DD"))
    })
    .transpose()
}

/// The caller organisation's cases, newest first (caseworker or admin). No identifying
/// details in lists.
#[utoipa::path(
    tag = "cases",
    params(CaseListQuery),
    responses(
        (status = 200, body = CaseList),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases")]
pub async fn list(actor: Actor, ctx: Context, query: web::Query<CaseListQuery>) -> Result<HttpResponse, ApiError> {
    access::list_cases(actor.principal())?;
    let query = query.into_inner();
    let page = Page::parse(
        query.limit,
        query.cursor.as_deref(),
        ctx.settings.cases.page_size_default,
        ctx.settings.cases.page_size_max,
    )?;
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(
            s.parse::<IdentificationStatus>()
                .map_err(|_| {
                    ApiError::field(
                        "status",
                        "must be signal, presumed_victim, identified or not_identified",
                    )
                })?
                .as_str()
                .to_string(),
        ),
    };
    let form = match query.exploitation_form.as_deref() {
        None => None,
        Some(s) => Some(
            s.parse::<ExploitationForm>()
                .map_err(|_| ApiError::field("exploitation_form", "must be sexual, criminal, labour or other"))?
                .as_str()
                .to_string(),
        ),
    };
    let filter = case_rows::CaseFilter {
        identification_status: status,
        contact_from: query_date("from", query.from.as_deref())?,
        contact_to: query_date("to", query.to.as_deref())?,
        exploitation_form: form,
        before: page.before,
        limit: page.fetch(),
    };
    let org = actor.org.clone();
    let rows = ctx
        .db
        .run(move |conn| case_rows::list_for_organisation(conn, &org, &filter).map_err(ApiError::from))
        .await?;
    let (rows, next_cursor) = page.finish(rows, |r| r.id);
    let items = rows
        .into_iter()
        .map(|r| {
            Ok(case_view(
                &open_case(&ctx.keyring, r)?,
                CaseAccess::Owner,
                None,
                &[],
                &[],
            ))
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(HttpResponse::Ok().json(CaseList { items, next_cursor }))
}

/// One case, as the caller may see it: the owner sees everything; receivers the minimum
/// they need; focal-point coordinators the facts without pseudonym or identifying details.
#[utoipa::path(
    tag = "cases",
    params(CasePath),
    responses(
        (status = 200, body = CaseView, headers(("ETag" = String))),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases/{id}")]
pub async fn get(actor: Actor, ctx: Context, path: web::Path<CasePath>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.id)?;
    let keyring = ctx.keyring.clone();
    let now = ctx.now();
    let bundle = ctx
        .db
        .write(move |conn| {
            let bundle = CaseBundle::load(conn, &actor, &keyring, id)?;
            // Every disclosure of identifying details is on the record; to another
            // organisation also in the disclosure register, with its basis.
            if let (Some(_), Some(consent)) = (&bundle.identifying, bundle.disclosure_basis) {
                crate::db::privacy::record_disclosure(
                    conn,
                    &crate::db::privacy::DisclosureRow {
                        id: Id(uuid::Uuid::now_v7()),
                        case_id: id,
                        organisation: actor.org.clone(),
                        actor_sub: actor.sub.clone(),
                        at: now,
                        basis_type: "consent".into(),
                        basis_ref: consent.0.to_string(),
                    },
                )?;
            }
            if bundle.identifying.is_some() {
                common::audit(
                    conn,
                    &actor,
                    "case.identifying_details.read",
                    "case",
                    id,
                    Some(id),
                    "ok",
                    now,
                )?;
            }
            Ok::<_, ApiError>(bundle)
        })
        .await?;
    Ok(ok_with_etag(bundle.case.version, bundle.view()))
}

/// Changes case facts (caseworker of the owning organisation). Absent fields stay; `null`
/// clears an optional field; `identifying_details` replaces the whole object. Needs
/// `If-Match` with the current ETag (428 without it, 412 when stale), so two caseworkers
/// cannot overwrite each other.
#[utoipa::path(
    tag = "cases",
    params(CasePath, ("If-Match" = String, Header, description = "The case's current ETag")),
    request_body = CaseInput,
    responses(
        (status = 200, body = CaseView, headers(("ETag" = String))),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 412, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 428, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/cases/{id}")]
pub async fn update(
    actor: Actor,
    ctx: Context,
    req: HttpRequest,
    path: web::Path<CasePath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.id)?;
    let expected = common::required_if_match(&req);
    let now = ctx.now();
    let today = now.0.date_naive();
    let registry = ctx.registry.clone();
    let keyring = ctx.keyring.clone();
    let mut f = Fields::new(body.into_inner())?;
    let reporter_role = f.patch(
        "reporter_role",
        false,
        enum_field(&ReporterRole::ALL, ReporterRole::as_str),
    );
    let contact_channel = f.patch(
        "contact_channel",
        false,
        enum_field(&ContactChannel::ALL, ContactChannel::as_str),
    );
    let contact_date = f.patch("contact_date", false, contact_date(today));
    let forms = f.patch("exploitation_forms", false, exploitation_forms);
    let age = f.patch("age_at_contact", true, age);
    let age_uncertain = f.patch("age_uncertain", false, input::boolean);
    let presumed_minor = f.patch("presumed_minor", false, input::boolean);
    let gender = f.patch("gender", true, enum_field(&Gender::ALL, Gender::as_str));
    let nationality = f.patch("nationality", true, country);
    let region = f.patch("region", true, region(&registry));
    let language = f.patch("language", true, language);
    let pseudonym = f.patch("pseudonym", true, input::line);
    let intention = f.patch(
        "police_report_intention",
        true,
        enum_field(&ReportingIntention::ALL, ReportingIntention::as_str),
    );
    let last_incident = f.patch("last_incident_date", true, incident_date(today));
    let needs = f.patch("needs", false, needs_list);
    let unaccompanied = f.patch("unaccompanied", false, input::boolean);
    // `object` reads null like absent; for PATCH null means "remove the details".
    let clear_identifying = f.is_null("identifying_details");
    let identifying = f.object("identifying_details", |inner| identifying_details(inner, today));
    f.finish()?;
    let (Some(last_incident), Some(needs), Some(unaccompanied)) = (last_incident, needs, unaccompanied) else {
        return Err(ApiError::internal("validated field missing"));
    };
    let (
        Some(reporter_role),
        Some(contact_channel),
        Some(contact_date),
        Some(forms),
        Some(age),
        Some(age_uncertain),
        Some(presumed_minor),
        Some(gender),
        Some(nationality),
        Some(region),
        Some(language),
        Some(pseudonym),
        Some(intention),
        Some(identifying),
    ) = (
        reporter_role,
        contact_channel,
        contact_date,
        forms,
        age,
        age_uncertain,
        presumed_minor,
        gender,
        nationality,
        region,
        language,
        pseudonym,
        intention,
        identifying,
    )
    else {
        return Err(ApiError::internal("validated field missing"));
    };
    let bundle = ctx
        .db
        .write(move |conn| {
            let mut case = case_for(conn, &actor, id, CaseAction::Update)?;
            common::writable(&case)?;
            if expected? != case.version {
                return Err(ApiError::PreconditionFailed);
            }
            let version = case.version;
            apply(&mut case.reporter_role, reporter_role.map(|r| r.as_str().to_string()));
            apply(
                &mut case.contact_channel,
                contact_channel.map(|c| c.as_str().to_string()),
            );
            apply(&mut case.contact_date, contact_date);
            if let Patch::Set(forms) = forms {
                set_forms(&mut case, forms);
            }
            apply_opt(&mut case.age_at_contact, age.map(|a| i32::from(a.years())));
            apply(&mut case.age_uncertain, age_uncertain);
            apply(&mut case.presumed_minor, presumed_minor);
            apply_opt(&mut case.gender, gender.map(|g| g.as_str().to_string()));
            let nationality_changed = !matches!(nationality, Patch::Keep);
            apply_opt(&mut case.nationality, nationality.map(|n| n.as_str().to_string()));
            apply_opt(&mut case.region, region);
            apply_opt(&mut case.language, language.map(|l| l.as_str().to_string()));
            apply_opt(
                &mut case.pseudonym,
                pseudonym.map(|p| keyring.seal("cases.pseudonym", id, p.as_str())),
            );
            apply_opt(
                &mut case.police_report_intention,
                intention.map(|i| i.as_str().to_string()),
            );
            apply_opt(&mut case.last_incident_date, last_incident);
            apply(&mut case.needs, needs.map(|n| needs_json(&n)));
            apply(&mut case.unaccompanied, unaccompanied);
            if case.unaccompanied && !is_minor(&case) {
                return Err(ApiError::field("unaccompanied", UNACCOMPANIED_MINORS_ONLY));
            }
            // Recording the nationality after reasonable grounds starts (or ends) the
            // reflection period, counted from the grounds date.
            if nationality_changed && let Some(grounds) = case.reasonable_grounds_on {
                let nationality = nationality_of(&case);
                case.reflection_period_end =
                    reflection_period_end(grounds, nationality.as_ref(), ctx.settings.cases.reflection_period_days);
            }
            case.version += 1;
            case.updated_at = now;
            if !case_rows::update_versioned(conn, &case, version)? {
                return Err(ApiError::PreconditionFailed);
            }
            match (clear_identifying, identifying) {
                (true, _) => case_rows::replace_identifying_details(conn, id, None)?,
                (false, Some(details)) => {
                    case_rows::replace_identifying_details(conn, id, details.to_row(id, now, &keyring).as_ref())?
                }
                (false, None) => {}
            }
            common::audit(conn, &actor, "case.update", "case", id, Some(id), "ok", now)?;
            CaseBundle::load(conn, &actor, &keyring, id)
        })
        .await?;
    Ok(ok_with_etag(bundle.case.version, bundle.view()))
}

fn apply<T>(field: &mut T, patch: Patch<T>) {
    if let Patch::Set(value) = patch {
        *field = value;
    }
}

fn apply_opt<T>(field: &mut Option<T>, patch: Patch<T>) {
    match patch {
        Patch::Keep => {}
        Patch::Clear => *field = None,
        Patch::Set(value) => *field = Some(value),
    }
}

impl<T> Patch<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Patch::Keep => Patch::Keep,
            Patch::Clear => Patch::Clear,
            Patch::Set(value) => Patch::Set(f(value)),
        }
    }
}

/// The body of `POST /cases/{id}/identification`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct IdentificationInput {
    /// `reasonable_grounds` (caseworker of the owning organisation), `identified` or
    /// `not_identified` (coordinator of the national focal point).
    pub decision: IdentificationDecision,
    /// Why: the indications seen, or the reasons of the decision.
    pub basis: String,
}

/// Records an identification decision. Reasonable grounds for a third-country national
/// start the reflection and recovery period.
#[utoipa::path(
    tag = "cases",
    params(CasePath),
    request_body = IdentificationInput,
    responses(
        (status = 200, body = CaseView),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/identification")]
pub async fn identification(
    actor: Actor,
    ctx: Context,
    path: web::Path<CasePath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.id)?;
    let mut f = Fields::new(body.into_inner())?;
    let decision = f.required(
        "decision",
        enum_field(&IdentificationDecision::ALL, IdentificationDecision::as_str),
    );
    let basis = f.required("basis", input::note);
    f.finish()?;
    let (Some(decision), Some(basis)) = (decision, basis) else {
        return Err(ApiError::internal("validated field missing"));
    };
    let now = ctx.now();
    let keyring = ctx.keyring.clone();
    let reflection_days = ctx.settings.cases.reflection_period_days;
    let bundle = ctx
        .db
        .write(move |conn| {
            // Visibility and role before the case's state: a closed or erased case of another
            // organisation answers 404 like a random id.
            let mut case = case_for_identification(conn, &actor, id)?;
            let who = IdentificationActor {
                caseworker_of_owner: case.organisation == actor.org && actor.has(Role::Caseworker),
                coordinator_of_focal_point: actor.principal().is_focal_point_coordinator(),
            };
            let current: IdentificationStatus = case.identification_status.parse().map_err(ApiError::internal)?;
            let decided = decide_identification(current, decision, who);
            if decided != Err(IdentificationRefusal::Forbidden) {
                common::writable(&case)?;
            }
            let next = decided.map_err(|refusal| match refusal {
                IdentificationRefusal::Forbidden => ApiError::Forbidden(match decision {
                    IdentificationDecision::ReasonableGrounds => {
                        "reasonable grounds are recorded by a caseworker of the owning organisation".into()
                    }
                    _ => "identification is decided by a coordinator of the national focal point".into(),
                }),
                IdentificationRefusal::NotAllowedFrom { status } => ApiError::Conflict {
                    detail: format!(
                        "`{}` cannot be decided while the case is `{}`",
                        decision.as_str(),
                        status.as_str()
                    ),
                    allowed_actions: None,
                },
            })?;
            let version = case.version;
            case.identification_status = next.as_str().into();
            if decision == IdentificationDecision::ReasonableGrounds {
                let today = now.0.date_naive();
                case.reasonable_grounds_on = Some(today);
                case.reflection_period_end =
                    reflection_period_end(today, nationality_of(&case).as_ref(), reflection_days);
            }
            case.version += 1;
            case.updated_at = now;
            if !case_rows::update_versioned(conn, &case, version)? {
                return Err(ApiError::PreconditionFailed);
            }
            let decision_id = Id(uuid::Uuid::now_v7());
            case_rows::insert_identification_decision(
                conn,
                &IdentificationDecisionRow {
                    id: decision_id,
                    case_id: id,
                    decision: decision.as_str().into(),
                    basis: keyring.seal("identification_decisions.basis", decision_id, basis.as_str()),
                    actor_sub: actor.sub.clone(),
                    actor_org: actor.org.clone(),
                    decided_at: now,
                },
            )?;
            let action = format!("identification.{}", decision.as_str());
            common::audit(conn, &actor, &action, "case", id, Some(id), next.as_str(), now)?;
            CaseBundle::load(conn, &actor, &keyring, id)
        })
        .await?;
    Ok(ok_with_etag(bundle.case.version, bundle.view()))
}

// ---------------------------------------------------------------------------
// Consent
// ---------------------------------------------------------------------------

/// The body of `POST /cases/{id}/consents`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ConsentInput {
    pub scope: ConsentScope,
    /// The organisation the consent covers (slug).
    pub organisation: String,
    pub given_by: ConsentGiver,
    pub method: ConsentMethod,
    /// The language the person was informed in (Art. 11(5)/(6)), e.g. `nl`, `en`, `ro`.
    pub information_language: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentView {
    pub id: uuid::Uuid,
    pub case_id: uuid::Uuid,
    pub scope: ConsentScope,
    pub organisation: String,
    pub given_by: ConsentGiver,
    pub method: ConsentMethod,
    pub information_language: String,
    pub recorded_by: String,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    pub withdrawn: bool,
    pub withdrawn_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentList {
    pub items: Vec<ConsentView>,
}

pub fn consent_view(row: &ConsentRow) -> Result<ConsentView, ApiError> {
    Ok(ConsentView {
        id: row.id.0,
        case_id: row.case_id.0,
        scope: row.scope.parse().map_err(ApiError::internal)?,
        organisation: row.organisation.clone(),
        given_by: row.given_by.parse().map_err(ApiError::internal)?,
        method: row.method.parse().map_err(ApiError::internal)?,
        information_language: row.information_language.clone(),
        recorded_by: row.recorded_by.clone(),
        recorded_at: row.recorded_at.0,
        withdrawn: row.withdrawn_at.is_some(),
        withdrawn_at: row.withdrawn_at.map(|t| t.0),
    })
}

pub fn organisation_slug<'a>(registry: &'a Registry) -> impl Fn(&Value) -> Result<String, String> + 'a {
    move |value| {
        let text = input::string(value)?;
        if registry.get(text).is_some() {
            Ok(text.to_string())
        } else {
            Err(format!(
                "must be an organisation of the registry: {}",
                registry.slugs().cloned().collect::<Vec<_>>().join(", ")
            ))
        }
    }
}

/// Records informed consent (caseworker of the owning organisation).
#[utoipa::path(
    tag = "consent",
    params(CasePath, ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation key")),
    request_body = ConsentInput,
    responses(
        (status = 201, body = ConsentView, headers(("Location" = String))),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/consents")]
pub async fn create_consent(
    actor: Actor,
    ctx: Context,
    req: HttpRequest,
    path: web::Path<CasePath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let case_id = parse_id(&path.id)?;
    let body = body.into_inner();
    let idempotency = Idempotency::new(
        &ctx.keyring,
        &req,
        &format!("POST /cases/{}/consents", case_id.0),
        &body,
    )?;
    let mut f = Fields::new(body)?;
    let scope = f.required("scope", enum_field(&ConsentScope::ALL, ConsentScope::as_str));
    let organisation = f.required("organisation", organisation_slug(&ctx.registry));
    let given_by = f.required("given_by", enum_field(&ConsentGiver::ALL, ConsentGiver::as_str));
    let method = f.required("method", enum_field(&ConsentMethod::ALL, ConsentMethod::as_str));
    let language = f.required("information_language", language);
    f.finish()?;
    let (Some(scope), Some(organisation), Some(given_by), Some(method), Some(language)) =
        (scope, organisation, given_by, method, language)
    else {
        return Err(ApiError::internal("validated field missing"));
    };
    let now = ctx.now();
    let row = ctx
        .db
        .write(move |conn| {
            common::writable(&case_for(conn, &actor, case_id, CaseAction::RecordConsent)?)?;
            let id = match idempotency.replay(conn, &actor)? {
                Some(id) => id,
                None => {
                    let id = Id(uuid::Uuid::now_v7());
                    case_rows::insert_consent(
                        conn,
                        &ConsentRow {
                            id,
                            case_id,
                            scope: scope.as_str().into(),
                            organisation,
                            given_by: given_by.as_str().into(),
                            method: method.as_str().into(),
                            information_language: language.as_str().into(),
                            recorded_by: actor.sub.clone(),
                            recorded_at: now,
                            withdrawn_at: None,
                            withdrawn_by: None,
                        },
                    )?;
                    idempotency.remember(conn, &actor, id, now)?;
                    common::audit(
                        conn,
                        &actor,
                        "consent.create",
                        "consent",
                        id,
                        Some(case_id),
                        scope.as_str(),
                        now,
                    )?;
                    id
                }
            };
            case_rows::consents_for(conn, case_id)?
                .into_iter()
                .find(|c| c.id == id)
                .ok_or(ApiError::NotFound)
        })
        .await?;
    Ok(created(
        format!("/api/v1/cases/{}/consents/{}", case_id.0, row.id.0),
        None,
        consent_view(&row)?,
    ))
}

/// The case's consents, standing and withdrawn (owning organisation).
#[utoipa::path(
    tag = "consent",
    params(CasePath),
    responses(
        (status = 200, body = ConsentList),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases/{id}/consents")]
pub async fn list_consents(actor: Actor, ctx: Context, path: web::Path<CasePath>) -> Result<HttpResponse, ApiError> {
    let case_id = parse_id(&path.id)?;
    let rows = ctx
        .db
        .run(move |conn| {
            case_for(conn, &actor, case_id, CaseAction::ReadConsents)?;
            case_rows::consents_for(conn, case_id).map_err(ApiError::from)
        })
        .await?;
    let items = rows.iter().map(consent_view).collect::<Result<_, _>>()?;
    Ok(HttpResponse::Ok().json(ConsentList { items }))
}

#[derive(Deserialize, IntoParams)]
pub struct ConsentPath {
    pub id: String,
    pub consent_id: String,
}

/// Withdraws a consent. Open referrals that relied on it (draft, submitted, acknowledged)
/// are withdrawn by the system, with a history entry; no new referral can rely on it.
#[utoipa::path(
    tag = "consent",
    params(ConsentPath),
    responses(
        (status = 200, body = ConsentView),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/consents/{consent_id}/withdraw")]
pub async fn withdraw_consent(
    actor: Actor,
    ctx: Context,
    path: web::Path<ConsentPath>,
) -> Result<HttpResponse, ApiError> {
    let case_id = parse_id(&path.id)?;
    let consent_id = parse_id(&path.consent_id)?;
    let now = ctx.now();
    let notifier = ctx.notifier.clone();
    let keyring = ctx.keyring.clone();
    let row = ctx
        .db
        .write(move |conn| {
            common::writable(&case_for(conn, &actor, case_id, CaseAction::WithdrawConsent)?)?;
            let consents = case_rows::consents_for(conn, case_id)?;
            let consent = consents
                .iter()
                .find(|c| c.id == consent_id)
                .ok_or(ApiError::NotFound)?
                .clone();
            if !case_rows::withdraw_consent(conn, consent_id, &actor.sub, now)? {
                return Err(ApiError::Conflict {
                    detail: "this consent was already withdrawn".into(),
                    allowed_actions: None,
                });
            }
            // The organisations holding handed-over, open referrals on this consent hear of it.
            let affected: Vec<ReferralRow> = referral_rows::for_case(conn, case_id)?
                .into_iter()
                .filter(|r| {
                    r.to_organisation == consent.organisation
                        && r.submitted_at.is_some()
                        && r.state.parse::<ReferralState>().is_ok_and(|s| s.is_open())
                })
                .collect();
            if consent.scope == ConsentScope::Referral.as_str() {
                let remaining: Vec<&ConsentRow> = consents
                    .iter()
                    .filter(|c| {
                        c.id != consent_id
                            && c.withdrawn_at.is_none()
                            && c.scope == ConsentScope::Referral.as_str()
                            && c.organisation == consent.organisation
                    })
                    .collect();
                for referral in referral_rows::for_case(conn, case_id)? {
                    // Another standing consent for the same receiver keeps it going.
                    let relied = remaining.is_empty()
                        && (referral.consent_id == Some(consent_id)
                            || (referral.state == ReferralState::Draft.as_str()
                                && referral.to_organisation == consent.organisation));
                    if relied {
                        super::referrals::withdraw_by_system(
                            conn,
                            &notifier,
                            &keyring,
                            referral,
                            &actor,
                            now,
                            "consent withdrawn",
                        )?;
                    }
                }
            }
            if consent.scope != ConsentScope::PoliceContact.as_str() {
                for referral in &affected {
                    notifier.consent_withdrawn(conn, referral, now)?;
                }
            }
            common::audit(
                conn,
                &actor,
                "consent.withdraw",
                "consent",
                consent_id,
                Some(case_id),
                &consent.scope,
                now,
            )?;
            case_rows::consents_for(conn, case_id)?
                .into_iter()
                .find(|c| c.id == consent_id)
                .ok_or(ApiError::NotFound)
        })
        .await?;
    Ok(HttpResponse::Ok().json(consent_view(&row)?))
}

// ---------------------------------------------------------------------------
// Statutory basis for a child's referral
// ---------------------------------------------------------------------------

/// The body of `POST /cases/{id}/legal-basis`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct LegalBasisInput {
    /// Only `child_protection` exists.
    pub basis: String,
    /// Why the child is referred without (or before) consent.
    pub justification: String,
}

/// Records a statutory child-protection basis for referring a minor without consent
/// (caseworker of the owning organisation).
#[utoipa::path(
    tag = "consent",
    params(CasePath, ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation key")),
    request_body = LegalBasisInput,
    responses(
        (status = 201, body = LegalBasisView, headers(("Location" = String))),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/legal-basis")]
pub async fn legal_basis(
    actor: Actor,
    ctx: Context,
    req: HttpRequest,
    path: web::Path<CasePath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let case_id = parse_id(&path.id)?;
    let body = body.into_inner();
    let idempotency = Idempotency::new(
        &ctx.keyring,
        &req,
        &format!("POST /cases/{}/legal-basis", case_id.0),
        &body,
    )?;
    let mut f = Fields::new(body)?;
    let basis = f.required("basis", |v| match input::string(v)? {
        "child_protection" => Ok("child_protection".to_string()),
        _ => Err("must be child_protection".to_string()),
    });
    let justification = f.required("justification", input::note);
    f.finish()?;
    let (Some(basis), Some(justification)) = (basis, justification) else {
        return Err(ApiError::internal("validated field missing"));
    };
    let now = ctx.now();
    let keyring = ctx.keyring.clone();
    let row = ctx
        .db
        .write(move |conn| {
            common::writable(&case_for(conn, &actor, case_id, CaseAction::RecordLegalBasis)?)?;
            let id = match idempotency.replay(conn, &actor)? {
                Some(id) => id,
                None => {
                    let id = Id(uuid::Uuid::now_v7());
                    case_rows::insert_legal_basis(
                        conn,
                        &LegalBasisRow {
                            id,
                            case_id,
                            basis,
                            justification: keyring.seal("legal_bases.justification", id, justification.as_str()),
                            recorded_by: actor.sub.clone(),
                            recorded_org: actor.org.clone(),
                            recorded_at: now,
                        },
                    )?;
                    idempotency.remember(conn, &actor, id, now)?;
                    common::audit(
                        conn,
                        &actor,
                        "legal_basis.create",
                        "legal_basis",
                        id,
                        Some(case_id),
                        "child_protection",
                        now,
                    )?;
                    id
                }
            };
            case_rows::legal_bases_for(conn, case_id)?
                .into_iter()
                .find(|b| b.id == id)
                .ok_or(ApiError::NotFound)
        })
        .await?;
    let row = open_legal_basis(&ctx.keyring, row)?;
    let view = LegalBasisView {
        id: row.id.0,
        basis: row.basis.clone(),
        justification: row.justification.clone(),
        recorded_by: row.recorded_by.clone(),
        recorded_at: row.recorded_at.0,
    };
    Ok(created(format!("/api/v1/cases/{}", case_id.0), None, view))
}

// ---------------------------------------------------------------------------
// Anonymous notification to the focal point
// ---------------------------------------------------------------------------

/// What the national focal point receives when an adult does not consent to any referral:
/// statistical facts only, no pseudonym, no identifying details.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnonymousNotificationView {
    pub id: uuid::Uuid,
    pub case_id: uuid::Uuid,
    pub from_organisation: String,
    pub focal_point: String,
    pub minor: bool,
    pub age_at_contact: Option<i32>,
    pub gender: Option<Gender>,
    pub nationality_group: NationalityGroup,
    pub exploitation_forms: Vec<ExploitationForm>,
    pub region: Option<String>,
    pub contact_date: NaiveDate,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnonymousNotificationList {
    pub items: Vec<AnonymousNotificationView>,
    pub next_cursor: Option<String>,
}

pub fn notification_view(row: &AnonymousNotificationRow) -> AnonymousNotificationView {
    AnonymousNotificationView {
        id: row.id.0,
        case_id: row.case_id.0,
        from_organisation: row.from_organisation.clone(),
        focal_point: row.focal_point.clone(),
        minor: row.minor,
        age_at_contact: row.age_at_contact,
        gender: parse_text(&row.gender),
        nationality_group: row.nationality_group.parse().unwrap_or(NationalityGroup::Unknown),
        exploitation_forms: forms_from_flags(
            row.exploitation_sexual,
            row.exploitation_criminal,
            row.exploitation_labour,
            row.exploitation_other,
        ),
        region: row.region.clone(),
        contact_date: row.contact_date,
        created_at: row.created_at.0,
    }
}

/// Files the anonymous notification for an adult who does not consent to any referral
/// (caseworker of the owning organisation). The body is empty (`{}`).
#[utoipa::path(
    tag = "cases",
    params(CasePath, ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation key")),
    responses(
        (status = 201, body = AnonymousNotificationView, headers(("Location" = String))),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/anonymous-notification")]
pub async fn anonymous_notification(
    actor: Actor,
    ctx: Context,
    req: HttpRequest,
    path: web::Path<CasePath>,
    body: Option<web::Json<Value>>,
) -> Result<HttpResponse, ApiError> {
    let case_id = parse_id(&path.id)?;
    let body = body
        .map(web::Json::into_inner)
        .unwrap_or_else(|| Value::Object(Default::default()));
    let idempotency = Idempotency::new(
        &ctx.keyring,
        &req,
        &format!("POST /cases/{}/anonymous-notification", case_id.0),
        &body,
    )?;
    Fields::new(body)?.finish()?;
    let focal_point = ctx
        .registry
        .focal_point()
        .map(|o| o.slug.clone())
        .ok_or_else(|| ApiError::internal("no focal point"))?;
    let now = ctx.now();
    let row = ctx
        .db
        .write(move |conn| {
            let case = case_for(conn, &actor, case_id, CaseAction::NotifyAnonymously)?;
            common::writable(&case)?;
            if let Some(id) = idempotency.replay(conn, &actor)? {
                return case_rows::find_anonymous_notification(conn, id)?.ok_or(ApiError::NotFound);
            }
            if case_rows::anonymous_notification_for(conn, case_id)?.is_some() {
                return Err(ApiError::Conflict {
                    detail: "this case has already been notified to the focal point".into(),
                    allowed_actions: None,
                });
            }
            let mut problems = Vec::new();
            if is_minor(&case) {
                problems.push("case_is_minor".to_string());
            }
            let consents = case_rows::consents_for(conn, case_id)?;
            if consents
                .iter()
                .any(|c| c.scope == ConsentScope::Referral.as_str() && c.withdrawn_at.is_none())
            {
                problems.push("referral_consent_exists".to_string());
            }
            if !problems.is_empty() {
                return Err(ApiError::GuardsFailed {
                    detail: "an anonymous notification is for an adult who does not consent to any referral; a child \
                             is referred on a statutory basis instead"
                        .into(),
                    guards: problems,
                });
            }
            let row = AnonymousNotificationRow {
                id: Id(uuid::Uuid::now_v7()),
                case_id,
                from_organisation: actor.org.clone(),
                focal_point,
                minor: false,
                age_at_contact: case.age_at_contact,
                gender: case.gender.clone(),
                nationality_group: NationalityGroup::of(nationality_of(&case)).as_str().into(),
                exploitation_sexual: case.exploitation_sexual,
                exploitation_criminal: case.exploitation_criminal,
                exploitation_labour: case.exploitation_labour,
                exploitation_other: case.exploitation_other,
                region: case.region.clone(),
                contact_date: case.contact_date,
                created_by: actor.sub.clone(),
                created_at: now,
            };
            case_rows::insert_anonymous_notification(conn, &row)?;
            idempotency.remember(conn, &actor, row.id, now)?;
            common::audit(
                conn,
                &actor,
                "anonymous_notification.create",
                "anonymous_notification",
                row.id,
                Some(case_id),
                "ok",
                now,
            )?;
            Ok(row)
        })
        .await?;
    Ok(created(
        format!("/api/v1/anonymous-notifications/{}", row.id.0),
        None,
        notification_view(&row),
    ))
}

/// Anonymous notifications received by the national focal point (its coordinators).
#[utoipa::path(
    tag = "cases",
    params(PageQuery),
    responses(
        (status = 200, body = AnonymousNotificationList),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/anonymous-notifications")]
pub async fn list_anonymous_notifications(
    actor: Actor,
    ctx: Context,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    access::oversee(actor.principal())?;
    let page = Page::parse(
        query.limit,
        query.cursor.as_deref(),
        ctx.settings.cases.page_size_default,
        ctx.settings.cases.page_size_max,
    )?;
    let (before, limit) = (page.before, page.fetch());
    let org = actor.org.clone();
    let rows = ctx
        .db
        .run(move |conn| {
            case_rows::anonymous_notifications_for_focal_point(conn, &org, before, limit).map_err(ApiError::from)
        })
        .await?;
    let (rows, next_cursor) = page.finish(rows, |r| r.id);
    Ok(HttpResponse::Ok().json(AnonymousNotificationList {
        items: rows.iter().map(notification_view).collect(),
        next_cursor,
    }))
}

pub fn referral_rows_of(conn: &mut AnyConnection, case_id: Id) -> Result<Vec<ReferralRow>, ApiError> {
    Ok(referral_rows::for_case(conn, case_id)?)
}

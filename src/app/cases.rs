//! Cases: opening one, the organisation's list, one case as the caller may see it, and
//! changing its facts. What each caller sees is `domain::access::CaseAccess`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{LoadedCase, case_for, writable};
use super::{AppError, AppResult, Ctx, Idempotency, Page, Patch, SeenVersion};
use crate::db::Id;
use crate::db::cases::{self as case_rows, CaseFilter, IdentificationDecisionRow, IdentifyingRow, LegalBasisRow};
use crate::db::privacy::{self as privacy_rows, DisclosureRow};
use crate::domain::access::{self, CaseAccess, CaseAction};
use crate::domain::case::{
    Age, Case, ContactChannel, CountryCode, ExploitationForm, ExploitationForms, Gender, IdentificationDecision,
    IdentificationStatus, NationalityGroup, ReporterRole, unaccompanied_only_if_minor,
};
use crate::domain::ids::CaseId;
use crate::domain::referral::{Referral, ReferralState};
use crate::domain::routing::{CaseProfile, Need};
use crate::domain::text::{LanguageTag, NAME_KEY_SCHEME, Text};
use crate::domain::three_way::ReportingIntention;

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

impl IdentifyingDetails {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.date_of_birth.is_none()
            && self.phone.is_none()
            && self.email.is_none()
            && self.address.is_none()
    }

    /// The stored form: every value sealed to this case, the name also blind-indexed.
    fn to_row(&self, ctx: &Ctx, case_id: CaseId) -> Option<IdentifyingRow> {
        let keyring = ctx.keyring();
        let id = Id(case_id.0);
        let seal = |field: &str, value: Option<&str>| keyring.seal_opt(field, id, value);
        let date_of_birth = self.date_of_birth.map(|d| d.to_string());
        (!self.is_empty()).then(|| IdentifyingRow {
            case_id: id,
            name: seal("case_identifying_details.name", self.name.as_deref()),
            date_of_birth: seal("case_identifying_details.date_of_birth", date_of_birth.as_deref()),
            phone: seal("case_identifying_details.phone", self.phone.as_deref()),
            email: seal("case_identifying_details.email", self.email.as_deref()),
            address: seal("case_identifying_details.address", self.address.as_deref()),
            name_index: self.name.as_deref().map(|n| keyring.blind_index(n)),
            updated_at: ctx.now,
            name_index_scheme: NAME_KEY_SCHEME,
        })
    }

    fn open(ctx: &Ctx, row: &IdentifyingRow) -> AppResult<Self> {
        let keyring = ctx.keyring();
        let id = row.case_id;
        let open = |field: &str, value: &Option<String>| keyring.open_opt(field, id, value.as_deref());
        let date_of_birth = open("case_identifying_details.date_of_birth", &row.date_of_birth)?;
        Ok(Self {
            name: open("case_identifying_details.name", &row.name)?,
            date_of_birth: date_of_birth.as_deref().map(|d| d.parse()).transpose().map_err(|_| {
                crate::db::RowError {
                    table: "case_identifying_details",
                    column: "date_of_birth",
                }
            })?,
            phone: open("case_identifying_details.phone", &row.phone)?,
            email: open("case_identifying_details.email", &row.email)?,
            address: open("case_identifying_details.address", &row.address)?,
        })
    }
}

/// Everything loaded to show one case to one caller, opened for rendering only.
pub struct CaseBundle {
    pub case: Case,
    pub access: CaseAccess,
    pub pseudonym: Option<String>,
    pub identifying: Option<IdentifyingDetails>,
    pub decisions: Vec<IdentificationDecisionView>,
    pub legal_bases: Vec<LegalBasisView>,
    /// For a receiver shown identifying details: the consent that allows it.
    pub disclosure_basis: Option<Id>,
}

impl CaseBundle {
    /// Loads and authorises in one go; identifying details only when the caller may see them.
    pub fn load(ctx: &mut Ctx, id: CaseId) -> AppResult<Self> {
        let loaded = LoadedCase::load(ctx, id)?;
        let access = loaded.access(ctx)?;
        Self::seen_as(ctx, loaded, access)
    }

    /// The case as `access` shows it.
    fn seen_as(ctx: &mut Ctx, loaded: LoadedCase, access: CaseAccess) -> AppResult<Self> {
        let id = loaded.case.id;
        let (entitled, disclosure_basis) = match access {
            CaseAccess::Owner => (true, None),
            CaseAccess::FocalPoint => (false, None),
            CaseAccess::Receiver => {
                let consents = case_rows::consents_of(ctx.conn, id)?;
                let basis = receiver_sees_identifying_details(&ctx.actor.org, &loaded.referrals, &consents);
                (basis.is_some(), basis)
            }
        };
        let identifying = if entitled {
            case_rows::identifying_details(ctx.conn, Id(id.0))?
                .map(|row| IdentifyingDetails::open(ctx, &row))
                .transpose()?
        } else {
            None
        };
        let decisions = match access {
            CaseAccess::Receiver => Vec::new(),
            _ => case_rows::identification_decisions_for(ctx.conn, Id(id.0))?
                .iter()
                .map(|d| decision_view(ctx, d))
                .collect::<AppResult<_>>()?,
        };
        let legal_bases = match access {
            CaseAccess::Owner => case_rows::legal_bases_for(ctx.conn, Id(id.0))?
                .iter()
                .map(|b| legal_basis_view(ctx, b))
                .collect::<AppResult<_>>()?,
            _ => Vec::new(),
        };
        let pseudonym = ctx.open("cases.pseudonym", id.0, &loaded.case.pseudonym)?;
        Ok(Self {
            case: loaded.case,
            access,
            pseudonym,
            identifying,
            decisions,
            legal_bases,
            disclosure_basis: disclosure_basis.map(|c| Id(c.0)),
        })
    }

    pub fn view(self) -> CaseView {
        case_view(
            &self.case,
            self.access,
            self.pseudonym,
            self.identifying,
            self.decisions,
            self.legal_bases,
        )
    }
}

fn decision_view(ctx: &Ctx, row: &IdentificationDecisionRow) -> AppResult<IdentificationDecisionView> {
    let basis = if row.basis.is_empty() {
        String::new()
    } else {
        ctx.keyring()
            .open("identification_decisions.basis", row.id, &row.basis)?
    };
    Ok(IdentificationDecisionView {
        decision: crate::db::code("identification_decisions", "decision", &row.decision)?,
        basis,
        actor_sub: row.actor_sub.clone(),
        actor_org: row.actor_org.clone(),
        decided_at: row.decided_at.0,
    })
}

pub(crate) fn legal_basis_view(ctx: &Ctx, row: &LegalBasisRow) -> AppResult<LegalBasisView> {
    let justification = if row.justification.is_empty() {
        String::new()
    } else {
        ctx.keyring()
            .open("legal_bases.justification", row.id, &row.justification)?
    };
    Ok(LegalBasisView {
        id: row.id.0,
        basis: row.basis.clone(),
        justification,
        recorded_by: row.recorded_by.clone(),
        recorded_at: row.recorded_at.0,
    })
}

/// Whether a receiving organisation may see identifying details: it holds an accepted
/// referral (accepted or in care) and a standing `data_sharing` consent names it.
/// Returns the consent that allows it, the basis recorded in the disclosure register.
pub fn receiver_sees_identifying_details(
    org: &str,
    referrals: &[Referral],
    consents: &[crate::domain::consent::Consent],
) -> Option<crate::domain::ids::ConsentId> {
    let accepted = referrals
        .iter()
        .any(|r| r.to_organisation == org && matches!(r.state, ReferralState::Accepted | ReferralState::InCare));
    let consent = consents.iter().find(|c| {
        c.organisation == org && c.scope == crate::domain::consent::ConsentScope::DataSharing && c.standing()
    });
    consent.filter(|_| accepted).map(|c| c.id)
}

/// The case as `access` may see it. Lists and searches pass no identifying details,
/// decisions or legal bases.
pub fn case_view(
    case: &Case,
    access: CaseAccess,
    pseudonym: Option<String>,
    identifying: Option<IdentifyingDetails>,
    decisions: Vec<IdentificationDecisionView>,
    legal_bases: Vec<LegalBasisView>,
) -> CaseView {
    let owner = access == CaseAccess::Owner;
    let receiver = access == CaseAccess::Receiver;
    CaseView {
        id: case.id.0,
        access,
        organisation: case.organisation.clone(),
        version: case.version,
        created_at: case.created_at,
        updated_at: case.updated_at,
        reporter_role: (!receiver).then_some(case.reporter_role),
        contact_channel: (!receiver).then_some(case.contact_channel),
        contact_date: (!receiver).then_some(case.contact_date),
        exploitation_forms: case.forms.to_vec(),
        age_at_contact: case.age_at_contact.map(|a| i32::from(a.years())),
        age_uncertain: case.age_uncertain,
        presumed_minor: case.presumed_minor,
        minor: case.is_minor(),
        gender: case.gender,
        nationality: if receiver {
            None
        } else {
            case.nationality.map(|n| n.as_str().to_string())
        },
        nationality_group: case.nationality_group(),
        region: case.region.clone(),
        language: case.language.clone(),
        pseudonym: if owner || receiver { pseudonym } else { None },
        police_report_intention: if owner { case.police_report_intention } else { None },
        last_incident_date: case.last_incident_date,
        needs: case.needs.clone(),
        unaccompanied: case.unaccompanied,
        identification: IdentificationView {
            status: case.identification_status,
            reasonable_grounds_on: case.reasonable_grounds_on,
            reflection_period_end: case.reflection_period_end,
            decisions: (!receiver).then_some(decisions),
        },
        legal_bases: owner.then_some(legal_bases),
        identifying_details: identifying,
    }
}

/// The owner's view of a case in a list: no identifying details, decisions or legal bases.
pub(crate) fn list_view(ctx: &Ctx, case: &Case) -> AppResult<CaseView> {
    let pseudonym = ctx.open("cases.pseudonym", case.id.0, &case.pseudonym)?;
    Ok(case_view(
        case,
        CaseAccess::Owner,
        pseudonym,
        None,
        Vec::new(),
        Vec::new(),
    ))
}

/// The facts routing looks at, from the case and its referrals.
pub fn profile_of(case: &Case, referrals: &[Referral], today: NaiveDate) -> CaseProfile {
    let mut profile = CaseProfile::new(case.forms);
    profile.age = case.age_at_contact.map(|a| a.years());
    profile.minor = case.is_minor();
    profile.gender = case.gender;
    profile.nationality = case.nationality;
    profile.region = case.region.clone();
    profile.language = case.language.clone();
    profile.last_incident_date = case.last_incident_date;
    profile.needs = case.needs.iter().copied().collect();
    profile.unaccompanied = case.unaccompanied;
    profile.in_reflection_period = case.reflection_period_end.is_some_and(|end| end >= today);
    profile.declined_by = referrals
        .iter()
        .filter(|r| r.state == ReferralState::Declined)
        .map(|r| r.to_organisation.clone())
        .collect();
    profile
}

// ---------------------------------------------------------------------------
// Use cases
// ---------------------------------------------------------------------------

/// A new case as parsed; every value already valid.
#[derive(Debug, Clone)]
pub struct NewCase {
    pub reporter_role: ReporterRole,
    pub contact_channel: ContactChannel,
    pub contact_date: NaiveDate,
    pub forms: ExploitationForms,
    pub age: Option<Age>,
    pub age_uncertain: bool,
    pub presumed_minor: bool,
    pub gender: Option<Gender>,
    pub nationality: Option<CountryCode>,
    pub region: Option<String>,
    pub language: Option<LanguageTag>,
    pub pseudonym: Option<Text>,
    pub police_report_intention: Option<ReportingIntention>,
    pub last_incident_date: Option<NaiveDate>,
    pub needs: Vec<Need>,
    pub unaccompanied: bool,
    pub identifying: Option<IdentifyingDetails>,
}

/// Records a new case (caseworker), honouring the idempotency key.
#[tracing::instrument(skip_all)]
pub fn open(ctx: &mut Ctx, new: NewCase, idempotency: &Idempotency) -> AppResult<CaseView> {
    access::open_case(ctx.actor.principal())?;
    let id = match idempotency.replay(ctx)? {
        Some(id) => CaseId(id),
        None => {
            let id = CaseId(ctx.new_id());
            let now = ctx.now.0;
            let case = Case {
                id,
                organisation: ctx.actor.org.clone(),
                created_by: ctx.actor.sub.clone(),
                created_at: now,
                updated_at: now,
                version: 1,
                reporter_role: new.reporter_role,
                contact_channel: new.contact_channel,
                contact_date: new.contact_date,
                forms: new.forms,
                age_at_contact: new.age,
                age_uncertain: new.age_uncertain,
                presumed_minor: new.presumed_minor,
                gender: new.gender,
                nationality: new.nationality,
                region: new.region,
                language: new.language.map(|l| l.as_str().to_string()),
                pseudonym: ctx.seal_opt("cases.pseudonym", id.0, new.pseudonym.as_ref().map(Text::as_str)),
                police_report_intention: new.police_report_intention,
                identification_status: IdentificationStatus::Signal,
                reasonable_grounds_on: None,
                reflection_period_end: None,
                last_incident_date: new.last_incident_date,
                needs: new.needs,
                unaccompanied: new.unaccompanied,
                closed_at: None,
                closed_reason: None,
                identifying_erased_at: None,
                free_text_erased_at: None,
                erasure_reason: None,
            };
            case.check()
                .map_err(|e| AppError::field("unaccompanied", e.to_string()))?;
            case_rows::create_case(ctx.conn, &case)?;
            if let Some(pseudonym) = &new.pseudonym {
                let index = ctx.keyring().pseudonym_index(&ctx.actor.org, pseudonym.as_str());
                case_rows::set_pseudonym_index(ctx.conn, id, Some(&index))?;
            }
            if let Some(details) = new.identifying.as_ref().and_then(|d| d.to_row(ctx, id)) {
                case_rows::replace_identifying_details(ctx.conn, Id(id.0), Some(&details))?;
            }
            idempotency.remember(ctx, id.0)?;
            ctx.audit("case.create", "case", id.0, Some(id), "ok")?;
            id
        }
    };
    // The owner's view, also to a machine client, which may not read cases but has just
    // sent every fact this view holds.
    let loaded = LoadedCase::load(ctx, id)?;
    Ok(CaseBundle::seen_as(ctx, loaded, CaseAccess::Owner)?.view())
}

/// The organisation's cases recorded with this pseudonym (caseworker, before opening a new
/// case), through the blind index: no pseudonym is decrypted to look.
#[tracing::instrument(skip_all)]
pub fn with_pseudonym(ctx: &mut Ctx, pseudonym: &Text) -> AppResult<Vec<CaseId>> {
    access::find_by_pseudonym(ctx.actor.principal())?;
    let index = ctx.keyring().pseudonym_index(&ctx.actor.org, pseudonym.as_str());
    let org = ctx.actor.org.clone();
    Ok(case_rows::cases_with_pseudonym_index(ctx.conn, &org, &index)?)
}

/// Which of the organisation's cases a list shows.
#[derive(Debug, Clone)]
pub struct CaseQuery {
    pub status: Option<IdentificationStatus>,
    pub contact_from: Option<NaiveDate>,
    pub contact_to: Option<NaiveDate>,
    pub form: Option<ExploitationForm>,
    /// Only children (`Some(true)`) or only adults (`Some(false)`).
    pub minor: Option<bool>,
    pub page: Page,
}

/// The caller organisation's cases, newest first (caseworker or admin). No identifying
/// details in lists.
#[tracing::instrument(skip_all)]
pub fn list(ctx: &mut Ctx, query: CaseQuery) -> AppResult<CaseList> {
    access::list_cases(ctx.actor.principal())?;
    let filter = CaseFilter {
        identification_status: query.status.map(|s| s.as_str().to_string()),
        contact_from: query.contact_from,
        contact_to: query.contact_to,
        exploitation_form: query.form.map(|f| f.as_str().to_string()),
        minor: query.minor,
        before: query.page.before.map(Id),
        limit: query.page.fetch(),
    };
    let org = ctx.actor.org.clone();
    let cases = case_rows::case_page(ctx.conn, &org, &filter)?;
    let (cases, next_cursor) = query.page.finish(cases, |c| c.id.0);
    let items = cases.iter().map(|c| list_view(ctx, c)).collect::<AppResult<_>>()?;
    Ok(CaseList { items, next_cursor })
}

/// One case, as the caller may see it. Every showing of identifying details is audited;
/// to another organisation it is also entered in the disclosure register, with its basis.
#[tracing::instrument(skip_all, fields(case = %id))]
pub fn get(ctx: &mut Ctx, id: CaseId) -> AppResult<CaseView> {
    let bundle = CaseBundle::load(ctx, id)?;
    if let (Some(_), Some(consent)) = (&bundle.identifying, bundle.disclosure_basis) {
        privacy_rows::record_disclosure(
            ctx.conn,
            &DisclosureRow {
                id: Id(ctx.new_id()),
                case_id: Id(id.0),
                organisation: ctx.actor.org.clone(),
                actor_sub: ctx.actor.sub.clone(),
                at: ctx.now,
                basis_type: "consent".into(),
                basis_ref: consent.0.to_string(),
            },
        )?;
    }
    if bundle.identifying.is_some() {
        ctx.audit("case.identifying_details.read", "case", id.0, Some(id), "ok")?;
    }
    Ok(bundle.view())
}

/// The case as `get` shows it, when showing it discloses no identifying details (so no
/// disclosure is recorded and a read-only snapshot will do); `None` when it would: then
/// `get`, in a write transaction, records the disclosure.
pub fn get_if_nothing_disclosed(ctx: &mut Ctx, id: CaseId) -> AppResult<Option<CaseView>> {
    let bundle = CaseBundle::load(ctx, id)?;
    Ok(bundle.identifying.is_none().then(|| bundle.view()))
}

/// A change of case facts: each field kept, cleared or set.
#[derive(Debug, Clone)]
pub struct CaseChanges {
    pub reporter_role: Patch<ReporterRole>,
    pub contact_channel: Patch<ContactChannel>,
    pub contact_date: Patch<NaiveDate>,
    pub forms: Patch<ExploitationForms>,
    pub age: Patch<Age>,
    pub age_uncertain: Patch<bool>,
    pub presumed_minor: Patch<bool>,
    pub gender: Patch<Gender>,
    pub nationality: Patch<CountryCode>,
    pub region: Patch<String>,
    pub language: Patch<LanguageTag>,
    pub pseudonym: Patch<Text>,
    pub police_report_intention: Patch<ReportingIntention>,
    pub last_incident_date: Patch<NaiveDate>,
    pub needs: Patch<Vec<Need>>,
    pub unaccompanied: Patch<bool>,
    /// Replaced whole, or removed.
    pub identifying: Patch<IdentifyingDetails>,
    /// The version the caseworker saw.
    pub seen: SeenVersion,
}

/// Changes case facts (caseworker of the owning organisation). The case invariants
/// (`Case::check`) and the reflection period (`Case::change_nationality`) are the domain's.
#[tracing::instrument(skip_all, fields(case = %id))]
pub fn update(ctx: &mut Ctx, id: CaseId, changes: CaseChanges) -> AppResult<CaseView> {
    let mut case = case_for(ctx, id, CaseAction::Update)?;
    writable(&case)?;
    changes.seen.check(case.version)?;
    let version = case.version;
    changes.reporter_role.apply_to(&mut case.reporter_role);
    changes.contact_channel.apply_to(&mut case.contact_channel);
    changes.contact_date.apply_to(&mut case.contact_date);
    changes.forms.apply_to(&mut case.forms);
    changes.age.apply_to_opt(&mut case.age_at_contact);
    changes.age_uncertain.apply_to(&mut case.age_uncertain);
    changes.presumed_minor.apply_to(&mut case.presumed_minor);
    changes.gender.apply_to_opt(&mut case.gender);
    changes.region.apply_to_opt(&mut case.region);
    changes
        .language
        .map(|l| l.as_str().to_string())
        .apply_to_opt(&mut case.language);
    let pseudonym_index = match &changes.pseudonym {
        Patch::Keep => None,
        Patch::Clear => Some(None),
        Patch::Set(p) => Some(Some(ctx.keyring().pseudonym_index(&case.organisation, p.as_str()))),
    };
    let pseudonym = changes.pseudonym.map(|p| ctx.seal("cases.pseudonym", id.0, p.as_str()));
    pseudonym.apply_to_opt(&mut case.pseudonym);
    changes
        .police_report_intention
        .apply_to_opt(&mut case.police_report_intention);
    changes.last_incident_date.apply_to_opt(&mut case.last_incident_date);
    changes.needs.apply_to(&mut case.needs);
    changes.unaccompanied.apply_to(&mut case.unaccompanied);
    case.check()
        .map_err(|e| AppError::field("unaccompanied", e.to_string()))?;
    if !matches!(changes.nationality, Patch::Keep) {
        let mut nationality = case.nationality;
        changes.nationality.apply_to_opt(&mut nationality);
        case.change_nationality(nationality, ctx.services.settings.cases.reflection_period_days);
    }
    case.version += 1;
    case.updated_at = ctx.now.0;
    if !case_rows::save_case(ctx.conn, &case, version)? {
        return Err(AppError::StaleVersion);
    }
    if let Some(index) = pseudonym_index {
        case_rows::set_pseudonym_index(ctx.conn, id, index.as_deref())?;
    }
    match &changes.identifying {
        Patch::Clear => case_rows::replace_identifying_details(ctx.conn, Id(id.0), None)?,
        Patch::Set(details) => {
            let row = details.to_row(ctx, id);
            case_rows::replace_identifying_details(ctx.conn, Id(id.0), row.as_ref())?
        }
        Patch::Keep => {}
    }
    ctx.audit("case.update", "case", id.0, Some(id), "ok")?;
    Ok(CaseBundle::load(ctx, id)?.view())
}

/// Whether an unaccompanied flag fits the age facts of a new case (for parsers that report
/// every problem of a form at once).
pub fn unaccompanied_fits(age: Option<Age>, age_uncertain: bool, presumed_minor: bool, unaccompanied: bool) -> bool {
    unaccompanied_only_if_minor(age, age_uncertain, presumed_minor, unaccompanied).is_ok()
}

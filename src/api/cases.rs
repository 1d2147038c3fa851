//! Cases: one possible victim's situation as it reached one organisation; identification
//! decisions, consent, statutory bases and the anonymous notification to the focal point.
//! Handlers parse the body into a command and run one use case of `app`.

use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::common::{self, PageQuery, created, ok_with_etag, parse_id};
use super::context::Context;
use super::input::{self, Fields};
use crate::app::anonymous_notifications::{AnonymousNotificationList, AnonymousNotificationView};
use crate::app::cases::{CaseChanges, CaseList, CaseQuery, CaseView, IdentifyingDetails, LegalBasisView, NewCase};
use crate::app::consents::{ConsentList, ConsentView, NewConsent};
use crate::app::{self, Idempotency};
use crate::domain::access::Actor;
use crate::domain::case::{
    Age, ContactChannel, CountryCode, ExploitationForm, ExploitationForms, Gender, IdentificationDecision,
    IdentificationStatus, ReporterRole, UnaccompaniedAdult,
};
use crate::domain::consent::{ConsentGiver, ConsentMethod, ConsentScope};
use crate::domain::ids::{CaseId, ConsentId};
use crate::domain::organisation::Registry;
use crate::domain::routing::Need;
use crate::domain::text::{LanguageTag, Text, parse_email, parse_phone};
use crate::domain::three_way::ReportingIntention;
use crate::error::ApiError;

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

/// The body of `PATCH /cases/{id}`: every field optional. Absent keeps the stored value,
/// `null` clears an optional one, a value replaces it; `identifying_details` replaces the
/// whole object (`null` removes it).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct CasePatch {
    pub reporter_role: Option<ReporterRole>,
    pub contact_channel: Option<ContactChannel>,
    /// Date of first contact, not in the future.
    pub contact_date: Option<NaiveDate>,
    /// At least one.
    pub exploitation_forms: Option<Vec<ExploitationForm>>,
    /// Whole years, 0 to 120.
    pub age_at_contact: Option<i64>,
    pub age_uncertain: Option<bool>,
    pub presumed_minor: Option<bool>,
    pub gender: Option<Gender>,
    /// ISO 3166-1 alpha-2.
    pub nationality: Option<String>,
    /// A region code from the registry.
    pub region: Option<String>,
    /// A language tag such as `nl`, `en`, `ro`.
    pub language: Option<String>,
    pub pseudonym: Option<String>,
    pub police_report_intention: Option<ReportingIntention>,
    /// The most recent incident, not in the future.
    pub last_incident_date: Option<NaiveDate>,
    pub needs: Option<Vec<Need>>,
    /// A minor without a parent or legal guardian in the Netherlands (minors only).
    pub unaccompanied: Option<bool>,
    pub identifying_details: Option<IdentifyingDetails>,
}

/// The body of `POST /cases/{id}/anonymous-notification`: empty (`{}`); the notification
/// is made from the case's facts.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AnonymousNotificationInput {}

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

pub fn parse_new_case(body: Value, registry: &Registry, today: NaiveDate) -> Result<NewCase, ApiError> {
    let mut f = Fields::new(body, "CaseInput")?;
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
        && !app::cases::unaccompanied_fits(age, uncertain, presumed, true)
    {
        f.error("unaccompanied", UnaccompaniedAdult.to_string());
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

/// An organisation slug of the registry; the message lists them.
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

fn idempotency(ctx: &Context, req: &HttpRequest, route: String, body: &Value) -> Result<Idempotency, ApiError> {
    common::idempotency(&ctx.services.keyring, req, &route, body)
}

/// An identification decision as the body states it.
pub fn parse_identification(body: Value) -> Result<(IdentificationDecision, Text), ApiError> {
    let mut f = Fields::new(body, "IdentificationInput")?;
    let decision = f.required(
        "decision",
        enum_field(&IdentificationDecision::ALL, IdentificationDecision::as_str),
    );
    let basis = f.required("basis", input::note);
    f.finish()?;
    let (Some(decision), Some(basis)) = (decision, basis) else {
        return Err(ApiError::internal("validated field missing"));
    };
    Ok((decision, basis))
}

/// A consent as the body records it, checked against the registry.
pub fn parse_consent(body: Value, registry: &Registry) -> Result<NewConsent, ApiError> {
    let mut f = Fields::new(body, "ConsentInput")?;
    let scope = f.required("scope", enum_field(&ConsentScope::ALL, ConsentScope::as_str));
    let organisation = f.required("organisation", organisation_slug(registry));
    let given_by = f.required("given_by", enum_field(&ConsentGiver::ALL, ConsentGiver::as_str));
    let method = f.required("method", enum_field(&ConsentMethod::ALL, ConsentMethod::as_str));
    let language = f.required("information_language", language);
    f.finish()?;
    let (Some(scope), Some(organisation), Some(given_by), Some(method), Some(information_language)) =
        (scope, organisation, given_by, method, language)
    else {
        return Err(ApiError::internal("validated field missing"));
    };
    Ok(NewConsent {
        scope,
        organisation,
        given_by,
        method,
        information_language,
    })
}

// ---------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------

#[derive(Deserialize, IntoParams)]
pub struct CasePath {
    /// The case id.
    pub id: String,
}

impl CasePath {
    pub fn id(&self) -> Result<CaseId, ApiError> {
        parse_id(&self.id, CaseId)
    }
}

/// Records a new case (caseworker). Honours `Idempotency-Key`.
#[utoipa::path(
    tag = "cases",
    request_body = CaseInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation key")),
    responses(
        (status = 201, body = CaseView, headers(("Location" = String), ("ETag" = String))),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases")]
pub async fn create(
    actor: Actor,
    ctx: Context,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    crate::domain::access::open_case(actor.principal())?;
    let body = body.into_inner();
    let idempotency = idempotency(&ctx, &req, "POST /cases".into(), &body)?;
    let new = parse_new_case(body, ctx.registry(), ctx.now().0.date_naive())?;
    let view = ctx
        .write(actor, move |c| app::cases::open(c, new, &idempotency))
        .await?;
    Ok(created(format!("/api/v1/cases/{}", view.id), Some(view.version), view))
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
    /// `true`: only cases treated as a child (under 18, or presumed a child while the age is
    /// unknown or uncertain); `false`: only the others.
    pub minor: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A case list's query parameters, checked (the web list's filters are the same).
pub fn parse_case_query(q: CaseListQuery, settings: &crate::config::Settings) -> Result<CaseQuery, ApiError> {
    Ok(CaseQuery {
        status: q
            .status
            .as_deref()
            .map(|s| s.parse::<IdentificationStatus>())
            .transpose()
            .map_err(|_| {
                ApiError::field(
                    "status",
                    "must be signal, presumed_victim, identified or not_identified",
                )
            })?,
        contact_from: query_date("from", q.from.as_deref())?,
        contact_to: query_date("to", q.to.as_deref())?,
        form: q
            .exploitation_form
            .as_deref()
            .map(|s| s.parse::<ExploitationForm>())
            .transpose()
            .map_err(|_| ApiError::field("exploitation_form", "must be sexual, criminal, labour or other"))?,
        minor: match q.minor.as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => return Err(ApiError::field("minor", "must be true or false")),
        },
        page: app::Page::parse(q.limit, q.cursor.as_deref(), settings)?,
    })
}

pub fn query_date(name: &str, text: Option<&str>) -> Result<Option<NaiveDate>, ApiError> {
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
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases")]
pub async fn list(actor: Actor, ctx: Context, query: web::Query<CaseListQuery>) -> Result<HttpResponse, ApiError> {
    crate::domain::access::list_cases(actor.principal())?;
    let query = parse_case_query(query.into_inner(), ctx.settings())?;
    let found = ctx.read(actor, move |c| app::cases::list(c, query)).await?;
    Ok(HttpResponse::Ok().json(found))
}

/// One case, as the caller may see it: the owner sees everything; receivers the minimum
/// they need; focal-point coordinators the facts without pseudonym or identifying details.
#[utoipa::path(
    tag = "cases",
    params(CasePath),
    responses(
        (status = 200, body = CaseView, headers(("ETag" = String))),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases/{id}")]
pub async fn get(actor: Actor, ctx: Context, path: web::Path<CasePath>) -> Result<HttpResponse, ApiError> {
    let id = path.id()?;
    // Most reads disclose nothing: no transaction, no write lock. One that shows identifying
    // details records the disclosure, so it is a write.
    let view = match ctx
        .read(actor.clone(), move |c| app::cases::get_if_nothing_disclosed(c, id))
        .await?
    {
        Some(view) => view,
        None => ctx.write(actor, move |c| app::cases::get(c, id)).await?,
    };
    Ok(ok_with_etag(view.version, view))
}

/// Changes case facts (caseworker of the owning organisation). Absent fields stay; `null`
/// clears an optional field; `identifying_details` replaces the whole object. Needs
/// `If-Match` with the current ETag (428 without it, 412 when stale), so two caseworkers
/// cannot overwrite each other.
#[utoipa::path(
    tag = "cases",
    params(CasePath, ("If-Match" = String, Header, description = "The case's current ETag")),
    request_body = CasePatch,
    responses(
        (status = 200, body = CaseView, headers(("ETag" = String))),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
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
    let id = path.id()?;
    // The body first (422); visibility, role and the case's state before the version
    // (428, 412), so another organisation's case is 404 whatever was sent.
    let mut changes = parse_case_changes(body.into_inner(), ctx.registry(), ctx.now().0.date_naive())?;
    changes.seen = common::seen_version(&req);
    let view = ctx.write(actor, move |c| app::cases::update(c, id, changes)).await?;
    Ok(ok_with_etag(view.version, view))
}

/// The changes a PATCH body asks for: absent keeps, `null` clears (optional fields only),
/// a value sets; `identifying_details` replaces the whole object.
fn parse_case_changes(body: Value, registry: &Registry, today: NaiveDate) -> Result<CaseChanges, ApiError> {
    let mut f = Fields::new(body, "CasePatch")?;
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
    let region = f.patch("region", true, region(registry));
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
    let missing = || ApiError::internal("validated field missing");
    let identifying = match (clear_identifying, identifying.ok_or_else(missing)?) {
        (true, _) => app::Patch::Clear,
        (false, Some(details)) => app::Patch::Set(details),
        (false, None) => app::Patch::Keep,
    };
    Ok(CaseChanges {
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
        identifying,
        seen: app::SeenVersion::Missing,
    })
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
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/identification")]
pub async fn identification(
    actor: Actor,
    ctx: Context,
    path: web::Path<CasePath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = path.id()?;
    let (decision, basis) = parse_identification(body.into_inner())?;
    let view = ctx
        .write(actor, move |c| app::identification::record(c, id, decision, basis))
        .await?;
    Ok(ok_with_etag(view.version, view))
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

/// Records informed consent (caseworker of the owning organisation).
#[utoipa::path(
    tag = "consent",
    params(CasePath, ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation key")),
    request_body = ConsentInput,
    responses(
        (status = 201, body = ConsentView, headers(("Location" = String))),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
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
    let case_id = path.id()?;
    let body = body.into_inner();
    let idempotency = idempotency(&ctx, &req, format!("POST /cases/{}/consents", case_id.0), &body)?;
    let new = parse_consent(body, ctx.registry())?;
    let view = ctx
        .write(actor, move |c| app::consents::record(c, case_id, new, &idempotency))
        .await?;
    Ok(created(
        format!("/api/v1/cases/{}/consents/{}", case_id.0, view.id),
        None,
        view,
    ))
}

/// The case's consents, standing and withdrawn (owning organisation).
#[utoipa::path(
    tag = "consent",
    params(CasePath),
    responses(
        (status = 200, body = ConsentList),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases/{id}/consents")]
pub async fn list_consents(actor: Actor, ctx: Context, path: web::Path<CasePath>) -> Result<HttpResponse, ApiError> {
    let case_id = path.id()?;
    let found = ctx.read(actor, move |c| app::consents::list(c, case_id)).await?;
    Ok(HttpResponse::Ok().json(found))
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
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/consents/{consent_id}/withdraw")]
pub async fn withdraw_consent(
    actor: Actor,
    ctx: Context,
    path: web::Path<ConsentPath>,
) -> Result<HttpResponse, ApiError> {
    let case_id = parse_id(&path.id, CaseId)?;
    let consent_id = parse_id(&path.consent_id, ConsentId)?;
    let view = ctx
        .write(actor, move |c| app::consents::withdraw(c, case_id, consent_id))
        .await?;
    Ok(HttpResponse::Ok().json(view))
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
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
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
    let case_id = path.id()?;
    let body = body.into_inner();
    let idempotency = idempotency(&ctx, &req, format!("POST /cases/{}/legal-basis", case_id.0), &body)?;
    let mut f = Fields::new(body, "LegalBasisInput")?;
    let basis = f.required("basis", |v| match input::string(v)? {
        "child_protection" => Ok(()),
        _ => Err("must be child_protection".to_string()),
    });
    let justification = f.required("justification", input::note);
    f.finish()?;
    let (Some(()), Some(justification)) = (basis, justification) else {
        return Err(ApiError::internal("validated field missing"));
    };
    let view = ctx
        .write(actor, move |c| {
            app::consents::record_legal_basis(c, case_id, justification, &idempotency)
        })
        .await?;
    Ok(created(format!("/api/v1/cases/{}", case_id.0), None, view))
}

// ---------------------------------------------------------------------------
// Anonymous notification to the focal point
// ---------------------------------------------------------------------------

/// Files the anonymous notification for an adult who does not consent to any referral
/// (caseworker of the owning organisation). The body is empty (`{}`).
#[utoipa::path(
    tag = "cases",
    params(CasePath, ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation key")),
    request_body = AnonymousNotificationInput,
    responses(
        (status = 201, body = AnonymousNotificationView, headers(("Location" = String))),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
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
    let case_id = path.id()?;
    let body = body
        .map(web::Json::into_inner)
        .unwrap_or_else(|| Value::Object(Default::default()));
    let idempotency = idempotency(
        &ctx,
        &req,
        format!("POST /cases/{}/anonymous-notification", case_id.0),
        &body,
    )?;
    Fields::new(body, "AnonymousNotificationInput")?.finish()?;
    let view = ctx
        .write(actor, move |c| {
            app::anonymous_notifications::file(c, case_id, &idempotency)
        })
        .await?;
    Ok(created(
        format!("/api/v1/anonymous-notifications/{}", view.id),
        None,
        view,
    ))
}

/// Anonymous notifications received by the national focal point (its coordinators).
#[utoipa::path(
    tag = "cases",
    params(PageQuery),
    responses(
        (status = 200, body = AnonymousNotificationList),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/anonymous-notifications")]
pub async fn list_anonymous_notifications(
    actor: Actor,
    ctx: Context,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    crate::domain::access::oversee(actor.principal())?;
    let page = query.page(ctx.settings())?;
    let found = ctx
        .read(actor, move |c| app::anonymous_notifications::list(c, page))
        .await?;
    Ok(HttpResponse::Ok().json(found))
}

//! The person's data over its lifetime: the disclosure register, subject access (export),
//! closure, erasure on request, and search by name through the blind index.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::cases::{CaseBundle, CasePath, CaseView, ConsentView, Context, consent_view, open_case};
use super::common::{self, case_for, parse_id};
use super::input::{self, Fields};
use super::referrals::{ReferralView, ViewContext, render};
use crate::auth::Actor;
use crate::db::cases as case_rows;
use crate::db::privacy::{self, DisclosureRow};
use crate::db::referrals as referral_rows;
use crate::domain::access::{self, CaseAction};
use crate::domain::referral::ReferralState;
use crate::domain::three_way::ThreeWayState;
use crate::error::ApiError;
use diesel::prelude::*;

crate::domain::case::text_enum! {
    /// Why a case is closed.
    pub enum ClosureReason {
        SupportCompleted = "support_completed",
        ReferredElsewhere = "referred_elsewhere",
        LostContact = "lost_contact",
        NoIndicationOfTrafficking = "no_indication_of_trafficking",
        Other = "other",
    }
}

crate::domain::case::text_enum! {
    /// Why personal data is erased before its retention period ends.
    pub enum ErasureReason {
        /// The person asked (GDPR Art. 17).
        DataSubjectRequest = "data_subject_request",
        /// The data should not have been recorded.
        UnlawfullyProcessed = "unlawfully_processed",
        /// The person's safety requires it.
        SafetyRisk = "safety_risk",
        Other = "other",
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DisclosureView {
    pub id: uuid::Uuid,
    /// The organisation whose user saw the identifying details.
    pub organisation: String,
    pub actor_sub: String,
    pub at: chrono::DateTime<chrono::Utc>,
    /// `consent` or `statutory`.
    pub basis_type: String,
    /// The consent id, or the statutory basis.
    pub basis_ref: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DisclosureList {
    pub items: Vec<DisclosureView>,
}

fn disclosure_view(row: DisclosureRow) -> DisclosureView {
    DisclosureView {
        id: row.id.0,
        organisation: row.organisation,
        actor_sub: row.actor_sub,
        at: row.at.0,
        basis_type: row.basis_type,
        basis_ref: row.basis_ref,
    }
}

/// Who outside the owning organisation saw the identifying details, when, and on which basis
/// (owning organisation), to answer the person or the data protection officer.
#[utoipa::path(
    tag = "privacy",
    params(CasePath),
    responses(
        (status = 200, body = DisclosureList),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases/{id}/disclosures")]
pub async fn disclosures(actor: Actor, ctx: Context, path: web::Path<CasePath>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.id)?;
    let rows = ctx
        .db
        .run(move |conn| {
            case_for(conn, &actor, id, CaseAction::ReadDisclosures)?;
            Ok::<_, ApiError>(privacy::disclosures_for(conn, id)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(DisclosureList {
        items: rows.into_iter().map(disclosure_view).collect(),
    }))
}

/// Everything `nrm` holds about the person of a case (GDPR Art. 15).
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseExport {
    pub exported_at: chrono::DateTime<chrono::Utc>,
    /// The case with its identifying details, identification decisions and statutory bases.
    pub case: CaseView,
    pub consents: Vec<ConsentView>,
    /// Every referral, with its history.
    pub referrals: Vec<ReferralView>,
    pub three_way_conversations: Vec<super::three_way::ThreeWayView>,
    pub disclosures: Vec<DisclosureView>,
    pub anonymous_notification: Option<super::cases::AnonymousNotificationView>,
}

/// Subject access: everything held about the person, as one document (owning organisation;
/// audited).
#[utoipa::path(
    tag = "privacy",
    params(CasePath),
    responses(
        (status = 200, body = CaseExport),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/cases/{id}/export")]
pub async fn export(actor: Actor, ctx: Context, path: web::Path<CasePath>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.id)?;
    let keyring = ctx.keyring.clone();
    let vc = ViewContext::new(&ctx)?;
    let now = ctx.now();
    let document = ctx
        .db
        .write(move |conn| {
            case_for(conn, &actor, id, CaseAction::Export)?;
            let bundle = CaseBundle::load(conn, &actor, &keyring, id)?;
            let consents = case_rows::consents_for(conn, id)?
                .iter()
                .map(consent_view)
                .collect::<Result<_, _>>()?;
            let mut referrals = Vec::new();
            for row in referral_rows::for_case(conn, id)? {
                referrals.push(render(conn, &actor, &row, &vc)?);
            }
            let three_way_conversations = super::three_way::for_case(conn, &actor, &keyring, id)?;
            let disclosed: Vec<DisclosureView> = privacy::disclosures_for(conn, id)?
                .into_iter()
                .map(disclosure_view)
                .collect();
            let anonymous_notification =
                case_rows::anonymous_notification_for(conn, id)?.map(|n| super::cases::notification_view(&n));
            common::audit(conn, &actor, "case.export", "case", id, Some(id), "ok", now)?;
            Ok::<_, ApiError>(CaseExport {
                exported_at: now.0,
                case: bundle.view(),
                consents,
                referrals,
                three_way_conversations,
                disclosures: disclosed,
                anonymous_notification,
            })
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"nrm-case-{}.json\"", id.0),
        ))
        .json(document))
}

/// The body of `POST /cases/{id}/close`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct CloseInput {
    pub reason_code: ClosureReason,
}

/// Closes a case once all its referrals are finished; it becomes read-only and the
/// retention periods start (owning organisation).
#[utoipa::path(
    tag = "privacy",
    params(CasePath),
    request_body = CloseInput,
    responses(
        (status = 200, body = CaseView),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/close")]
pub async fn close(
    actor: Actor,
    ctx: Context,
    path: web::Path<CasePath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.id)?;
    let mut f = Fields::new(body.into_inner())?;
    let reason = f.required("reason_code", input::one_of(&ClosureReason::ALL, ClosureReason::as_str));
    f.finish()?;
    let reason = reason.ok_or_else(|| ApiError::internal("validated field missing"))?;
    let keyring = ctx.keyring.clone();
    let now = ctx.now();
    let bundle = ctx
        .db
        .write(move |conn| {
            let mut case = case_for(conn, &actor, id, CaseAction::Close)?;
            common::writable(&case)?;
            let open = referral_rows::for_case(conn, id)?
                .into_iter()
                .filter(|r| r.state.parse::<ReferralState>().is_ok_and(|s| !s.is_terminal()))
                .count();
            // A three-way conversation is evaluated (or declined) before the record closes.
            let conversations = referral_rows::three_way_for_case(conn, id)?
                .into_iter()
                .filter(|c| c.state.parse::<ThreeWayState>().is_ok_and(|s| !s.is_terminal()))
                .count();
            if conversations > 0 {
                return Err(ApiError::Conflict {
                    detail: format!("{conversations} three-way conversation(s) are not evaluated or declined yet"),
                    allowed_actions: None,
                });
            }
            if open > 0 {
                return Err(ApiError::Conflict {
                    detail: format!(
                        "{open} referral(s) of this case are not finished: complete, decline or withdraw them first"
                    ),
                    allowed_actions: None,
                });
            }
            let version = case.version;
            case.closed_at = Some(now);
            case.closed_reason = Some(reason.as_str().into());
            case.version += 1;
            case.updated_at = now;
            if !case_rows::update_versioned(conn, &case, version)? {
                return Err(ApiError::PreconditionFailed);
            }
            common::audit(conn, &actor, "case.close", "case", id, Some(id), reason.as_str(), now)?;
            CaseBundle::load(conn, &actor, &keyring, id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(bundle.view()))
}

/// The body of `POST /cases/{id}/erase`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct EraseInput {
    pub reason: ErasureReason,
}

/// Erases the person's identifying details, pseudonym and free text now (GDPR Art. 17),
/// keeping the statistical facts; the organisations that held referrals are told (admin of
/// the owning organisation; audited).
#[utoipa::path(
    tag = "privacy",
    params(CasePath),
    request_body = EraseInput,
    responses(
        (status = 200, body = CaseView),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/{id}/erase")]
pub async fn erase(
    actor: Actor,
    ctx: Context,
    path: web::Path<CasePath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.id)?;
    let mut f = Fields::new(body.into_inner())?;
    let reason = f.required("reason", input::one_of(&ErasureReason::ALL, ErasureReason::as_str));
    f.finish()?;
    let reason = reason.ok_or_else(|| ApiError::internal("validated field missing"))?;
    let (keyring, notifier) = (ctx.keyring.clone(), ctx.notifier.clone());
    let now = ctx.now();
    let bundle = ctx
        .db
        .write(move |conn| {
            let case = case_for(conn, &actor, id, CaseAction::Erase)?;
            if case.erasure_reason.is_some() {
                return Err(ApiError::Conflict {
                    detail: "this case's personal data was already erased".into(),
                    allowed_actions: None,
                });
            }
            // Everything on the case freezes with it. Drafts, which no receiver ever saw, are
            // withdrawn, before the free text goes; handed-over referrals stay in the state
            // they reached (statistics keep counting them as they were) and are no longer
            // chased as overdue: the receivers are told below and go on outside `nrm`.
            let referrals = referral_rows::for_case(conn, id)?;
            for referral in referrals.iter().filter(|r| r.submitted_at.is_none()) {
                super::referrals::withdraw_by_system(
                    conn,
                    &notifier,
                    &keyring,
                    referral.clone(),
                    &actor,
                    now,
                    "case erased",
                )?;
            }
            privacy::erase_identifying(conn, id, now)?;
            privacy::erase_free_text(conn, id, now)?;
            diesel::update(crate::db::schema::cases::table.find(id))
                .set(crate::db::schema::cases::erasure_reason.eq(Some(reason.as_str())))
                .execute(conn)?;
            // Everyone anything was handed to hears of it once: receivers of submitted
            // referrals, and the police of conversations they were invited to.
            let mut told = std::collections::BTreeSet::new();
            for referral in referrals.iter().filter(|r| r.submitted_at.is_some()) {
                if told.insert(referral.to_organisation.clone()) {
                    notifier.case_erased(conn, referral, now)?;
                }
            }
            for conversation in referral_rows::three_way_for_case(conn, id)?
                .iter()
                .filter(|c| c.police_officer.is_some())
            {
                if told.insert(conversation.police_organisation.clone()) {
                    notifier.case_erased_to_police(conn, conversation, now)?;
                }
            }
            common::audit(conn, &actor, "case.erase", "case", id, Some(id), reason.as_str(), now)?;
            CaseBundle::load(conn, &actor, &keyring, id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(bundle.view()))
}

/// The body of `POST /cases/search`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct SearchInput {
    /// The person's name; matched exactly, ignoring case and extra spaces.
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    pub items: Vec<CaseView>,
}

/// Finds the caller organisation's cases by the person's name, through a keyed hash of the
/// name (the database holds no name in the clear). A POST, so names stay out of URLs and logs.
#[utoipa::path(
    tag = "privacy",
    request_body = SearchInput,
    responses(
        (status = 200, body = SearchResult),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/cases/search")]
pub async fn search(actor: Actor, ctx: Context, body: web::Json<Value>) -> Result<HttpResponse, ApiError> {
    access::list_cases(actor.principal())?;
    let mut f = Fields::new(body.into_inner())?;
    let name = f.required("name", input::line);
    f.finish()?;
    let name = name.ok_or_else(|| ApiError::internal("validated field missing"))?;
    let index = ctx.keyring.blind_index(name.as_str());
    let keyring = ctx.keyring.clone();
    let items = ctx
        .db
        .run(move |conn| {
            let mut items = Vec::new();
            for id in privacy::cases_by_name_index(conn, &actor.org, &index)? {
                let case = case_rows::find(conn, id)?.ok_or(ApiError::NotFound)?;
                items.push(super::cases::case_view(
                    &open_case(&keyring, case)?,
                    common::CaseAccess::Owner,
                    None,
                    &[],
                    &[],
                ));
            }
            Ok::<_, ApiError>(items)
        })
        .await?;
    Ok(HttpResponse::Ok().json(SearchResult { items }))
}

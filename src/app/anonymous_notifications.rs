//! The anonymous notification: when an adult consents to no referral, the national focal
//! point still learns the statistical facts (never the pseudonym or identifying details).

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use super::access::{case_for, writable};
use super::{AppError, AppResult, Ctx, Idempotency, Page};
use crate::db::Id;
use crate::db::cases::{self as case_rows, AnonymousNotificationRow, forms_from_flags};
use crate::domain::access::{self, CaseAction};
use crate::domain::case::{ExploitationForm, ExploitationForms, Gender, NationalityGroup};
use crate::domain::consent::ConsentScope;
use crate::domain::ids::CaseId;

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

pub fn notification_view(row: &AnonymousNotificationRow) -> AppResult<AnonymousNotificationView> {
    const T: &str = "anonymous_notifications";
    Ok(AnonymousNotificationView {
        id: row.id.0,
        case_id: row.case_id.0,
        from_organisation: row.from_organisation.clone(),
        focal_point: row.focal_point.clone(),
        minor: row.minor,
        age_at_contact: row.age_at_contact,
        gender: crate::db::code_opt(T, "gender", row.gender.as_deref())?,
        nationality_group: crate::db::code(T, "nationality_group", &row.nationality_group)?,
        exploitation_forms: forms_from_flags(
            row.exploitation_sexual,
            row.exploitation_criminal,
            row.exploitation_labour,
            row.exploitation_other,
        ),
        region: row.region.clone(),
        contact_date: row.contact_date,
        created_at: row.created_at.0,
    })
}

/// Whether the case's anonymous notification was filed (owning organisation's caseworker).
pub fn filed_for(ctx: &mut Ctx, case_id: CaseId) -> AppResult<bool> {
    case_for(ctx, case_id, CaseAction::NotifyAnonymously)?;
    Ok(case_rows::anonymous_notification_for(ctx.conn, Id(case_id.0))?.is_some())
}

/// Files the anonymous notification for an adult who consents to no referral (caseworker
/// of the owning organisation). Once per case.
#[tracing::instrument(skip_all, fields(case = %case_id))]
pub fn file(ctx: &mut Ctx, case_id: CaseId, idempotency: &Idempotency) -> AppResult<AnonymousNotificationView> {
    let focal_point = ctx
        .registry()
        .focal_point()
        .map(|o| o.slug.clone())
        .ok_or_else(|| AppError::internal("no focal point"))?;
    let case = case_for(ctx, case_id, CaseAction::NotifyAnonymously)?;
    writable(&case)?;
    if let Some(id) = idempotency.replay(ctx)? {
        let row = case_rows::find_anonymous_notification(ctx.conn, Id(id))?.ok_or(AppError::NotFound)?;
        return notification_view(&row);
    }
    if case_rows::anonymous_notification_for(ctx.conn, Id(case_id.0))?.is_some() {
        return Err(AppError::conflict(
            "this case has already been notified to the focal point",
        ));
    }
    let mut problems = Vec::new();
    if case.is_minor() {
        problems.push("case_is_minor".to_string());
    }
    let consents = case_rows::consents_of(ctx.conn, case_id)?;
    if consents
        .iter()
        .any(|c| c.scope == ConsentScope::Referral && c.standing())
    {
        problems.push("referral_consent_exists".to_string());
    }
    if !problems.is_empty() {
        return Err(AppError::GuardsFailed {
            detail: "an anonymous notification is for an adult who does not consent to any referral; a child is \
                     referred on a statutory basis instead"
                .into(),
            guards: problems,
        });
    }
    let forms: &ExploitationForms = &case.forms;
    let row = AnonymousNotificationRow {
        id: Id(ctx.new_id()),
        case_id: Id(case_id.0),
        from_organisation: ctx.actor.org.clone(),
        focal_point,
        minor: false,
        age_at_contact: case.age_at_contact.map(|a| i32::from(a.years())),
        gender: case.gender.map(|g| g.as_str().to_string()),
        nationality_group: case.nationality_group().as_str().into(),
        exploitation_sexual: forms.contains(ExploitationForm::Sexual),
        exploitation_criminal: forms.contains(ExploitationForm::Criminal),
        exploitation_labour: forms.contains(ExploitationForm::Labour),
        exploitation_other: forms.contains(ExploitationForm::Other),
        region: case.region.clone(),
        contact_date: case.contact_date,
        created_by: ctx.actor.sub.clone(),
        created_at: ctx.now,
    };
    case_rows::insert_anonymous_notification(ctx.conn, &row)?;
    idempotency.remember(ctx, row.id.0)?;
    ctx.audit(
        "anonymous_notification.create",
        "anonymous_notification",
        row.id.0,
        Some(case_id),
        "ok",
    )?;
    notification_view(&row)
}

/// Anonymous notifications received by the national focal point (its coordinators).
#[tracing::instrument(skip_all)]
pub fn list(ctx: &mut Ctx, page: Page) -> AppResult<AnonymousNotificationList> {
    access::oversee(ctx.actor.principal())?;
    let org = ctx.actor.org.clone();
    let rows = case_rows::anonymous_notifications_for_focal_point(ctx.conn, &org, page.before.map(Id), page.fetch())?;
    let (rows, next_cursor) = page.finish(rows, |r| r.id.0);
    Ok(AnonymousNotificationList {
        items: rows.iter().map(notification_view).collect::<AppResult<_>>()?,
        next_cursor,
    })
}

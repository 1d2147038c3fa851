//! Administration in the browser: the notification outbox (admins; the focal point's see
//! every message, others those addressed to their organisation), with dead letters sent
//! again. The API's own use cases (`app::admin`).

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;

use super::forms::{FormPost, FormState};
use super::i18n::Tr;
use super::page::{Chrome, WebError, WebErrorKind, html, language_of, see_other};
use super::parts::{Choice, Done, choices, notice_of, organisation_name};
use super::time;
use super::{session, web_error};
use crate::api::context::Context;
use crate::app::Page;
use crate::domain::ids::{NotificationId, SubscriptionId};
use crate::domain::notification::DeliveryStatus;
use crate::error::ApiError;

pub struct MessageLine {
    pub created: String,
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt: String,
    pub last_error: String,
    /// The retry form's target, for a message not sent yet.
    pub retry: Option<String>,
}

#[derive(Template)]
#[template(path = "outbox.html")]
struct OutboxPage {
    chrome: Chrome,
    form: FormState,
    statuses: Vec<Choice>,
    lines: Vec<MessageLine>,
    next_page: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct OutboxQuery {
    /// As the API's list: `pending`, `sent` or `dead`; dead letters by default.
    status: Option<String>,
    cursor: Option<String>,
}

/// The outbox by delivery status, newest first, 25 a page.
#[get("/admin/outbox")]
pub async fn outbox(
    req: HttpRequest,
    ctx: Context,
    query: web::Query<OutboxQuery>,
    done: web::Query<Done>,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    crate::domain::access::outbox(session.actor.principal()).map_err(|e| web_error(lang, ApiError::from(e)))?;
    let shown = query
        .status
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("dead");
    let mut form = FormState::with_values(vec![("status".into(), shown.to_string())]);
    let status = shown.parse::<DeliveryStatus>().ok();
    let page = Page::parse(Some(25), query.cursor.as_deref(), ctx.settings()).map_err(|e| web_error(lang, e.into()))?;
    let (http_status, found) = match status {
        Some(status) => (
            StatusCode::OK,
            Some(
                ctx.read(session.actor.clone(), move |c| {
                    crate::app::admin::outbox(c, Some(status), page)
                })
                .await
                .map_err(|e| web_error(lang, e))?,
            ),
        ),
        None => {
            form.add_api_errors(
                tr,
                &[crate::error::FieldError::new("status", "must be pending, sent or dead")],
            );
            (StatusCode::UNPROCESSABLE_ENTITY, None)
        }
    };
    let (lines, next_page) = match found {
        Some(list) => (
            list.items
                .iter()
                .map(|m| MessageLine {
                    created: time::date_time(lang, m.created_at),
                    kind: tr.label("notification", &m.kind),
                    to: format!("{} · {}", organisation_name(&ctx, &m.recipient_org), m.recipient),
                    subject: m.subject.clone(),
                    status: tr.label("delivery", &m.status),
                    attempts: m.attempts,
                    next_attempt: time::date_time(lang, m.next_attempt_at),
                    last_error: m.last_error.clone().unwrap_or_default(),
                    retry: (m.status != DeliveryStatus::Sent).then(|| format!("/admin/outbox/{}/retry", m.id)),
                })
                .collect(),
            list.next_cursor
                .map(|c| format!("/admin/outbox?status={shown}&cursor={c}")),
        ),
        None => (Vec::new(), None),
    };
    let mut chrome = Chrome::signed_in(lang, "/admin/outbox", tr.t("outbox-title"), &session, ctx.registry());
    if let Some(notice) = notice_of(&done.done) {
        chrome = chrome.with_notice(&notice);
    }
    let page = OutboxPage {
        chrome,
        form,
        statuses: choices(&tr, "delivery", &DeliveryStatus::ALL),
        lines,
        next_page,
    };
    Ok(html(http_status, &page))
}

/// Sends a message again with a fresh attempt count (the API's retry), then back to the
/// dead letters.
#[post("/admin/outbox/{id}/retry")]
pub async fn retry(
    req: HttpRequest,
    ctx: Context,
    path: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let session = session(&req, &ctx).await?;
    let id = uuid::Uuid::parse_str(&path)
        .map(NotificationId)
        .map_err(|_| WebError::new(lang, WebErrorKind::NotFound))?;
    FormPost::read(&req, &body, &session, Tr::new(lang))?;
    ctx.write(session.actor.clone(), move |c| crate::app::admin::retry(c, id))
        .await
        .map_err(|e| web_error(lang, e))?;
    Ok(see_other("/admin/outbox?status=dead&done=retried"))
}

#[derive(Template)]
#[template(path = "capacity_overview.html")]
struct CapacityOverviewPage {
    chrome: Chrome,
    table: super::console::Table,
    full: usize,
    unreported: usize,
}

/// A report older than this is marked: places change daily in a shelter.
const STALE_AFTER_HOURS: i64 = 48;

/// Every organisation's capacity-managed services, places free and how old the report is,
/// full ones first (the directory the API serves, `app::capacity::directory`).
#[get("/admin/capacity")]
pub async fn capacity(req: HttpRequest, ctx: Context) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    crate::domain::access::capacity_overview(session.actor.principal())
        .map_err(|e| web_error(lang, ApiError::from(e)))?;
    let directory = ctx
        .read(session.actor.clone(), crate::app::capacity::directory)
        .await
        .map_err(|e| web_error(lang, e))?;
    let now = ctx.now().0;
    // (sort key, row): full first, then not reported, then by places free.
    let mut lines: Vec<((u8, i32, String), Vec<String>)> = Vec::new();
    for organisation in &directory.items {
        for offer in organisation.offers.iter().filter(|o| o.capacity_managed) {
            let reported = organisation.capacity.iter().find(|c| c.service == offer.service);
            let (rank, places, places_text, updated) = match reported {
                Some(c) => {
                    let mut updated = time::date_time(lang, c.updated_at);
                    if now - c.updated_at > chrono::Duration::hours(STALE_AFTER_HOURS) {
                        updated = tr.t1("capacity-stale", "when", &updated);
                    }
                    let text = if c.places_free == 0 {
                        tr.t("capacity-full")
                    } else {
                        c.places_free.to_string()
                    };
                    (u8::from(c.places_free != 0) * 2, c.places_free, text, updated)
                }
                None => (1, 0, tr.t("capacity-unreported"), tr.t("capacity-never")),
            };
            lines.push((
                (rank, places, organisation.name.clone()),
                vec![
                    organisation.name.clone(),
                    tr.label("service", &offer.service),
                    places_text,
                    updated,
                ],
            ));
        }
    }
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    let full = lines.iter().filter(|(key, _)| key.0 == 0).count();
    let unreported = lines.iter().filter(|(key, _)| key.0 == 1).count();
    let page = CapacityOverviewPage {
        chrome: Chrome::signed_in(
            lang,
            "/admin/capacity",
            tr.t("capacity-overview-title"),
            &session,
            ctx.registry(),
        ),
        table: super::console::Table {
            head: [
                "capacity-col-organisation",
                "capacity-col-service",
                "capacity-col-places",
                "capacity-col-updated",
            ]
            .iter()
            .map(|key| tr.t(key))
            .collect(),
            rows: lines.into_iter().map(|(_, row)| row).collect(),
        },
        full,
        unreported,
    };
    Ok(html(StatusCode::OK, &page))
}

pub struct SubscriptionLine {
    pub url: String,
    pub events: String,
    pub status: String,
    /// Why, since when: `gone`, or failing since a moment.
    pub trouble: String,
    pub href: String,
    /// The pause or resume form: target and button text.
    pub switch: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    chrome: Chrome,
    lines: Vec<SubscriptionLine>,
}

fn switch_for(tr: Tr, view: &crate::app::webhooks::SubscriptionView) -> Option<(String, String)> {
    use crate::domain::webhook::SubscriptionStatus as S;
    match view.status {
        S::Active => Some((format!("/admin/webhooks/{}/pause", view.id), tr.t("webhooks-pause"))),
        S::Paused | S::Disabled => Some((format!("/admin/webhooks/{}/resume", view.id), tr.t("webhooks-resume"))),
        S::Deleted => None,
    }
}

/// The organisation's webhook subscriptions (its admins): endpoint, events, status, and
/// pause or resume. Subscribing and rotating secrets are the API's (docs/integration.md §2).
#[get("/admin/webhooks")]
pub async fn webhooks(req: HttpRequest, ctx: Context, done: web::Query<Done>) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    let list = ctx
        .read(session.actor.clone(), crate::app::webhooks::list)
        .await
        .map_err(|e| web_error(lang, e))?;
    let lines = list
        .items
        .iter()
        .map(|view| SubscriptionLine {
            url: view.url.clone(),
            events: view
                .event_types
                .iter()
                .map(|e| tr.label("webhook-event", &e.replace('.', "_")))
                .collect::<Vec<_>>()
                .join(", "),
            status: tr.label("webhook-status", &view.status),
            trouble: match (&view.disabled_reason, view.failing_since) {
                (Some(reason), _) => tr.label("webhook-disabled", reason),
                (None, Some(since)) => format!("{} {}", tr.t("webhooks-failing-since"), time::date_time(lang, since)),
                (None, None) => String::new(),
            },
            href: format!("/admin/webhooks/{}", view.id),
            switch: switch_for(tr, view),
        })
        .collect();
    let mut chrome = Chrome::signed_in(
        lang,
        "/admin/webhooks",
        tr.t("webhooks-title"),
        &session,
        ctx.registry(),
    );
    if let Some(notice) = notice_of(&done.done) {
        chrome = chrome.with_notice(&notice);
    }
    Ok(html(StatusCode::OK, &WebhooksPage { chrome, lines }))
}

pub struct DeliveryLine {
    pub created: String,
    pub event: String,
    pub status: String,
    pub attempts: i32,
    pub answer: String,
    pub latency: String,
    pub last_error: String,
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct WebhookPage {
    chrome: Chrome,
    url: String,
    status: String,
    lines: Vec<DeliveryLine>,
    next_page: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct CursorQuery {
    cursor: Option<String>,
}

/// One subscription's delivery log, newest first, 25 a page: what was sent, how the
/// endpoint answered and how long it took.
#[get("/admin/webhooks/{id}")]
pub async fn webhook(
    req: HttpRequest,
    ctx: Context,
    path: web::Path<String>,
    query: web::Query<CursorQuery>,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = session(&req, &ctx).await?;
    let id = uuid::Uuid::parse_str(&path)
        .map(SubscriptionId)
        .map_err(|_| WebError::new(lang, WebErrorKind::NotFound))?;
    let page = Page::parse(Some(25), query.cursor.as_deref(), ctx.settings()).map_err(|e| web_error(lang, e.into()))?;
    let (view, log) = ctx
        .read(session.actor.clone(), move |c| {
            Ok((
                crate::app::webhooks::get(c, id)?,
                crate::app::webhooks::deliveries(c, id, page)?,
            ))
        })
        .await
        .map_err(|e| web_error(lang, e))?;
    let lines = log
        .items
        .iter()
        .map(|d| DeliveryLine {
            created: time::date_time(lang, d.created_at),
            event: tr.label("webhook-event", &d.event_type.replace('.', "_")),
            status: tr.label("webhook-delivery", &d.status),
            attempts: d.attempts,
            answer: d.last_status.map(|s| s.to_string()).unwrap_or_default(),
            latency: d.last_latency_ms.map(|ms| format!("{ms} ms")).unwrap_or_default(),
            last_error: d.last_error.clone().unwrap_or_default(),
        })
        .collect();
    let chrome = Chrome::signed_in(lang, "/admin/webhooks", tr.t("webhook-title"), &session, ctx.registry());
    Ok(html(
        StatusCode::OK,
        &WebhookPage {
            chrome,
            url: view.url.clone(),
            status: tr.label("webhook-status", &view.status),
            lines,
            next_page: log.next_cursor.map(|c| format!("/admin/webhooks/{id}?cursor={c}")),
        },
    ))
}

/// Pauses or resumes a subscription (the API's use case), then back to the list.
#[post("/admin/webhooks/{id}/{switch}")]
pub async fn webhook_switch(
    req: HttpRequest,
    ctx: Context,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let session = session(&req, &ctx).await?;
    let (id, switch) = path.into_inner();
    let id = uuid::Uuid::parse_str(&id)
        .map(SubscriptionId)
        .map_err(|_| WebError::new(lang, WebErrorKind::NotFound))?;
    let active = match switch.as_str() {
        "pause" => false,
        "resume" => true,
        _ => return Err(WebError::new(lang, WebErrorKind::NotFound)),
    };
    FormPost::read(&req, &body, &session, Tr::new(lang))?;
    ctx.write(session.actor.clone(), move |c| {
        crate::app::webhooks::set_active(c, id, active)
    })
    .await
    .map_err(|e| web_error(lang, e))?;
    let done = if active { "webhook-resumed" } else { "webhook-paused" };
    Ok(see_other(&format!("/admin/webhooks?done={done}")))
}

//! The national focal point's console (coordinators): today's picture of the handovers
//! (what is open, what is overdue and whether it was escalated, how fast receivers answer)
//! and the audit trail with its verification. Both read the API's own oversight use cases.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use askama::Template;
use chrono::Duration;

use super::forms::FormState;
use super::i18n::Tr;
use super::page::{Chrome, WebError, html, language_of};
use super::parts::{Choice, organisation_name, short_ref};
use super::time;
use super::{session, web_error};
use crate::api::context::Context;
use crate::api::oversight::{AuditQuery, parse_audit_query, period};
use crate::app::oversight::{Durations, Flows};
use crate::app::sessions::Session;
use crate::domain::audit::Verification;
use crate::domain::deadline::Step;
use crate::domain::referral::ReferralState;
use crate::error::ApiError;

/// The signed-in person, if a coordinator of the national focal point: the console is
/// theirs alone (403 for everyone else, as the API's oversight routes).
async fn coordinator(req: &HttpRequest, ctx: &Context) -> Result<Session, WebError> {
    let session = session(req, ctx).await?;
    crate::domain::access::oversee(session.actor.principal())
        .map_err(|e| web_error(language_of(req), ApiError::from(e)))?;
    Ok(session)
}

/// The period a console page shows when none is asked for: the last 30 days.
const DEFAULT_DAYS: i64 = 30;

#[derive(serde::Deserialize)]
pub struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

/// A table of the page: its header cells and rows of cells, all text.
pub struct Table {
    pub head: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

pub struct OverdueLine {
    pub reference: String,
    pub from: String,
    pub to: String,
    pub step: String,
    pub due: String,
    pub hours_over: String,
    pub escalated: String,
}

/// One segment of a bar: the referrals of one sender and receiver in one state.
pub struct Segment {
    pub x: u32,
    pub width: u32,
    pub fill: &'static str,
    pub title: String,
}

/// One sender → receiver pair as a bar of stacked states.
pub struct FlowBar {
    pub y: u32,
    pub label: String,
    pub segments: Vec<Segment>,
    pub total: String,
    /// Where the total is written: after the bar.
    pub total_x: u32,
}

pub struct LegendItem {
    pub x: u32,
    pub y: u32,
    pub fill: &'static str,
    pub label: String,
}

/// The flow diagram, drawn on the server as SVG: no script, no chart library, and the same
/// numbers in the table beside it.
pub struct FlowDiagram {
    pub height: u32,
    pub bars: Vec<FlowBar>,
    pub legend: Vec<LegendItem>,
    pub suppressed: bool,
}

/// The states of the diagram in the order of the handover, each with a colour that has at
/// least 3:1 contrast with the white page (WCAG 1.4.11); the legend and the table say the
/// same without colour.
const FLOW_STATES: [(ReferralState, &str); 7] = [
    (ReferralState::Submitted, "#5a6b7b"),
    (ReferralState::Acknowledged, "#1d6a8a"),
    (ReferralState::Accepted, "#2e7d32"),
    (ReferralState::InCare, "#1b5e20"),
    (ReferralState::Completed, "#4a3f8c"),
    (ReferralState::Declined, "#b3261e"),
    (ReferralState::Withdrawn, "#7a5200"),
];
/// One pair's shown cells: state, colour, count.
type PairCells<'a> = ((&'a str, &'a str), Vec<(ReferralState, &'static str, u64)>);

const LABEL_WIDTH: u32 = 300;
const BAR_WIDTH: u32 = 380;
const ROW_HEIGHT: u32 = 34;

fn flow_diagram(tr: &Tr, ctx: &Context, flows: &Flows) -> FlowDiagram {
    let min_cell = u64::from(ctx.settings().stats.min_cell);
    let mut pairs: Vec<(&str, &str)> = flows
        .flows
        .iter()
        .filter(|f| f.state != ReferralState::Draft)
        .map(|f| (f.from_organisation.as_str(), f.to_organisation.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let count = |pair: (&str, &str), state: ReferralState| -> u64 {
        flows
            .flows
            .iter()
            .filter(|f| (f.from_organisation.as_str(), f.to_organisation.as_str()) == pair && f.state == state)
            .map(|f| u64::try_from(f.count).unwrap_or(0))
            .sum()
    };
    let mut suppressed = false;
    let shown: Vec<PairCells> = pairs
        .iter()
        .map(|pair| {
            let cells = FLOW_STATES
                .iter()
                .filter_map(|(state, fill)| {
                    let n = count(*pair, *state);
                    match crate::domain::stats::published(n, min_cell) {
                        Some(0) => None,
                        Some(n) => Some((*state, *fill, n)),
                        None => {
                            suppressed = true;
                            None
                        }
                    }
                })
                .collect();
            (*pair, cells)
        })
        .filter(|(_, cells): &(_, Vec<_>)| !cells.is_empty())
        .collect();
    let largest = shown
        .iter()
        .map(|(_, cells)| cells.iter().map(|c| c.2).sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1);
    let bars: Vec<FlowBar> = shown
        .iter()
        .enumerate()
        .map(|(i, (pair, cells))| {
            let mut x = LABEL_WIDTH;
            let segments = cells
                .iter()
                .map(|(state, fill, n)| {
                    let width = ((*n * u64::from(BAR_WIDTH)) / largest).max(2) as u32;
                    let segment = Segment {
                        x,
                        width,
                        fill,
                        title: format!("{}: {n}", tr.label("state", state)),
                    };
                    x += width;
                    segment
                })
                .collect();
            FlowBar {
                y: i as u32 * ROW_HEIGHT,
                label: format!("{} → {}", short_name(ctx, pair.0), short_name(ctx, pair.1)),
                segments,
                total: cells.iter().map(|c| c.2).sum::<u64>().to_string(),
                total_x: x + 6,
            }
        })
        .collect();
    let legend_y = bars.len() as u32 * ROW_HEIGHT + 12;
    FlowDiagram {
        height: legend_y + 2 * ROW_HEIGHT,
        legend: FLOW_STATES
            .iter()
            .enumerate()
            .map(|(i, (state, fill))| LegendItem {
                x: (i as u32 % 4) * 180,
                y: legend_y + (i as u32 / 4) * 24,
                fill,
                label: tr.label("state", state),
            })
            .collect(),
        bars,
        suppressed,
    }
}

/// An organisation's name without its explanation in brackets, for a diagram's label.
fn short_name(ctx: &Context, slug: &str) -> String {
    let name = organisation_name(ctx, slug);
    name.split(" (").next().unwrap_or(&name).to_string()
}

#[derive(Template)]
#[template(path = "console.html")]
struct TodayPage {
    chrome: Chrome,
    form: FormState,
    period: String,
    open: Table,
    overdue: Vec<OverdueLine>,
    overdue_truncated: bool,
    response_times: Table,
    flows: Table,
    diagram: FlowDiagram,
}

/// The states a receiver still owes something in, in the order of the handover.
const OPEN_STATES: [ReferralState; 4] = [
    ReferralState::Submitted,
    ReferralState::Acknowledged,
    ReferralState::Accepted,
    ReferralState::InCare,
];

/// A figure with one decimal, with the decimal mark of the page's language (`2,5` / `2.5`).
fn decimal(tr: &Tr, value: f64) -> String {
    let text = format!("{value:.1}");
    match tr.lang {
        super::i18n::Lang::Nl => text.replace('.', ","),
        super::i18n::Lang::En => text,
    }
}

fn hours(tr: &Tr, d: &Option<Durations>) -> String {
    match d {
        Some(Durations {
            count,
            median_hours: Some(median),
            p90_hours: Some(p90),
        }) => tr.with(
            "console-hours",
            &[
                ("median", &decimal(tr, *median)),
                ("p90", &decimal(tr, *p90)),
                ("count", &count.to_string()),
            ],
        ),
        _ => "–".to_string(),
    }
}

fn today_page(tr: Tr, session: &Session, ctx: &Context, flows: &Flows, form: FormState) -> TodayPage {
    let mut receivers: Vec<&str> = flows.open.iter().map(|o| o.organisation.as_str()).collect();
    receivers.dedup();
    let open = Table {
        head: std::iter::once(tr.t("console-receiver"))
            .chain(OPEN_STATES.iter().map(|s| tr.label("state", s)))
            .chain(std::iter::once(tr.t("console-total")))
            .collect(),
        rows: receivers
            .iter()
            .map(|org| {
                let count = |state: &ReferralState| {
                    flows
                        .open
                        .iter()
                        .filter(|o| o.organisation == *org && o.state == *state)
                        .map(|o| o.count)
                        .sum::<i64>()
                };
                let counts: Vec<i64> = OPEN_STATES.iter().map(count).collect();
                std::iter::once(organisation_name(ctx, org))
                    .chain(counts.iter().map(i64::to_string))
                    .chain(std::iter::once(counts.iter().sum::<i64>().to_string()))
                    .collect()
            })
            .collect(),
    };
    let overdue = flows
        .overdue
        .iter()
        .map(|o| OverdueLine {
            reference: short_ref(o.referral_id),
            from: organisation_name(ctx, &o.from_organisation),
            to: organisation_name(ctx, &o.to_organisation),
            step: tr.label("console-step", &o.step),
            due: time::date_time(tr.lang, o.due_at),
            hours_over: decimal(&tr, o.overdue_hours),
            escalated: o
                .escalated_at
                .map(|at| time::date_time(tr.lang, at))
                .unwrap_or_else(|| tr.t("console-not-escalated")),
        })
        .collect();
    let response_times = Table {
        head: vec![
            tr.t("console-receiver"),
            tr.label("console-step", &Step::Acknowledge),
            tr.label("console-step", &Step::Decide),
            tr.label("console-step", &Step::StartCare),
        ],
        rows: flows
            .response_times
            .iter()
            .map(|r| {
                vec![
                    organisation_name(ctx, &r.organisation),
                    hours(&tr, &r.submit_to_acknowledge),
                    hours(&tr, &r.submit_to_decision),
                    hours(&tr, &r.accept_to_start_care),
                ]
            })
            .collect(),
    };
    // The table beside the diagram withholds the same small cells.
    let min_cell = u64::from(ctx.settings().stats.min_cell);
    let flow_rows = flows
        .flows
        .iter()
        .filter(|f| f.state != ReferralState::Draft)
        .map(|f| {
            let n = u64::try_from(f.count).unwrap_or(0);
            vec![
                organisation_name(ctx, &f.from_organisation),
                organisation_name(ctx, &f.to_organisation),
                tr.label("state", &f.state),
                crate::domain::stats::published(n, min_cell)
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| tr.t1("console-suppressed", "min", &min_cell)),
            ]
        })
        .collect();
    TodayPage {
        chrome: Chrome::signed_in(tr.lang, "/console", tr.t("console-title"), session, ctx.registry()),
        period: tr.with(
            "console-period",
            &[
                ("from", &time::date(tr.lang, flows.period.from)),
                ("to", &time::date(tr.lang, flows.period.to)),
            ],
        ),
        open,
        overdue,
        overdue_truncated: flows.overdue_truncated,
        response_times,
        flows: Table {
            head: vec![
                tr.t("fact-from"),
                tr.field("to_organisation"),
                tr.t("col-status"),
                tr.t("console-count"),
            ],
            rows: flow_rows,
        },
        diagram: flow_diagram(&tr, ctx, flows),
        form,
    }
}

/// Today's picture for a period: open handovers per receiver and state, the overdue list
/// (oldest first, with the step, the hours over and the escalation), response times.
#[get("/console")]
pub async fn overview(
    req: HttpRequest,
    ctx: Context,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = coordinator(&req, &ctx).await?;
    let today = time::local(ctx.now().0).date();
    let (status, form, from, to) = chosen_period(tr, &query, today - Duration::days(DEFAULT_DAYS - 1), today)?;
    let flows = ctx
        .report(session.actor.clone(), move |c| {
            crate::app::oversight::flows(c, from, to)
        })
        .await
        .map_err(|e| web_error(lang, e))?;
    Ok(html(status, &today_page(tr, &session, &ctx, &flows, form)))
}

pub struct AuditLine {
    pub seq: i64,
    pub when: String,
    pub when_machine: String,
    pub who: String,
    pub action: String,
    pub resource: String,
    pub case: String,
    /// This page filtered by the entry's case.
    pub case_href: Option<String>,
    pub outcome: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditTrailPage {
    chrome: Chrome,
    form: FormState,
    organisations: Vec<Choice>,
    lines: Vec<AuditLine>,
    next_page: Option<String>,
    verification: Option<Verification>,
    verify_href: String,
}

#[derive(serde::Deserialize)]
pub struct AuditPageQuery {
    case_id: Option<String>,
    organisation: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    /// Also verify the whole chain (it reads every entry, so only when asked).
    verify: Option<String>,
}

/// The audit trail, filtered by case, organisation, action and period, newest first, 50 a
/// page; on request, the chain's verification with the first broken entry.
#[get("/console/audit")]
pub async fn audit(
    req: HttpRequest,
    ctx: Context,
    query: web::Query<AuditPageQuery>,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = coordinator(&req, &ctx).await?;
    let q = query.into_inner();
    let blank = |v: Option<String>| v.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    let filters: Vec<(String, String)> = [
        ("case_id", &q.case_id),
        ("organisation", &q.organisation),
        ("action", &q.action),
        ("from", &q.from),
        ("to", &q.to),
    ]
    .iter()
    .filter_map(|(k, v)| blank((*v).clone()).map(|v| (k.to_string(), v)))
    .collect();
    let value = |name: &str| filters.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let api_query = AuditQuery {
        case_id: value("case_id"),
        organisation: value("organisation"),
        actor: None,
        action: value("action"),
        from: value("from"),
        to: value("to"),
        limit: Some(50),
        cursor: blank(q.cursor),
    };
    // Verified before the trail is read: reading the trail seals what is pending, and the
    // verification must see first which entries waited too long for their seal.
    let verification = if q.verify.is_some() {
        Some(
            ctx.read(session.actor.clone(), crate::app::oversight::verify_audit)
                .await
                .map_err(|e| web_error(lang, e))?,
        )
    } else {
        None
    };
    let mut form = FormState::with_values(filters.clone());
    let (status, page) = match parse_audit_query(api_query, ctx.settings()) {
        Ok(filter) => (
            StatusCode::OK,
            Some(
                ctx.read(session.actor.clone(), move |c| {
                    crate::app::oversight::audit_trail(c, filter)
                })
                .await
                .map_err(|e| web_error(lang, e))?,
            ),
        ),
        Err(ApiError::Validation(errors)) => {
            form.add_api_errors(tr, &errors);
            (StatusCode::UNPROCESSABLE_ENTITY, None)
        }
        Err(other) => return Err(web_error(lang, other)),
    };
    let link = |extra: &[(&str, &str)]| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &filters {
            query.append_pair(k, v);
        }
        for (k, v) in extra {
            query.append_pair(k, v);
        }
        format!("/console/audit?{}", query.finish())
    };
    let (lines, next_page) = match page {
        Some(page) => (
            page.items
                .iter()
                .map(|e| AuditLine {
                    seq: e.seq,
                    when: time::date_time(lang, e.at),
                    when_machine: time::machine(e.at),
                    who: if e.actor_kind == "machine" {
                        format!(
                            "{} · {} ({})",
                            organisation_name(&ctx, &e.actor_org),
                            e.actor_sub,
                            tr.t("audit-machine")
                        )
                    } else {
                        format!("{} · {}", organisation_name(&ctx, &e.actor_org), e.actor_sub)
                    },
                    action: e.action.clone(),
                    resource: e.resource_type.clone(),
                    case: e.case_id.map(short_ref).unwrap_or_default(),
                    case_href: e.case_id.map(|id| format!("/console/audit?case_id={id}")),
                    outcome: e.outcome.clone(),
                })
                .collect(),
            page.next_cursor.map(|cursor| link(&[("cursor", &cursor)])),
        ),
        None => (Vec::new(), None),
    };
    let mut organisations: Vec<Choice> = ctx
        .registry()
        .organisations
        .values()
        .map(|o| Choice {
            value: o.slug.clone(),
            label: o.name.clone(),
        })
        .collect();
    organisations.sort_by(|a, b| a.label.cmp(&b.label));
    let page = AuditTrailPage {
        chrome: Chrome::signed_in(lang, "/console/audit", tr.t("audit-title"), &session, ctx.registry()),
        form,
        organisations,
        lines,
        next_page,
        verification,
        verify_href: link(&[("verify", "1")]),
    };
    Ok(html(status, &page))
}

// ---------------------------------------------------------------------------
// The statistics report
// ---------------------------------------------------------------------------

/// One published row: its label and its value as the page shows it.
pub struct StatRow {
    pub label: String,
    pub value: String,
}

/// A bar of a chart: one count of a section.
pub struct ChartBar {
    pub y: u32,
    pub label: String,
    pub width: u32,
    pub value: String,
}

/// One section of the report: its table, and for counts a bar chart beside it.
pub struct StatSection {
    pub id: String,
    pub title: String,
    pub rows: Vec<StatRow>,
    pub chart: Vec<ChartBar>,
    pub chart_height: u32,
}

#[derive(Template)]
#[template(path = "statistics.html")]
struct StatisticsPage {
    chrome: Chrome,
    form: FormState,
    period: String,
    sections: Vec<StatSection>,
    csv_href: String,
    eu_href: String,
    last_year: i32,
    suppressed: bool,
    min_cell: u32,
}

/// Sections drawn as bars: counts of one kind each (totals, shares and means are not).
const CHARTED: [&str; 6] = [
    "persons",
    "exploitation",
    "age",
    "referrals.by_destination",
    "referrals.by_outcome",
    "three_way_conversations",
];

fn stat_label(tr: &Tr, ctx: &Context, section: &str, key: &str) -> String {
    match section {
        "registering_organisation" | "referrals.by_destination" => organisation_name(ctx, key),
        "referrals.by_state" => tr.label("state", &key),
        "referrals.by_outcome" => tr.label("outcome", &key),
        _ => tr.t(&format!("stats-{section}-{key}")),
    }
}

fn statistics_sections(tr: &Tr, ctx: &Context, rows: &[(String, String, String)], min_cell: u32) -> Vec<StatSection> {
    let mut sections: Vec<StatSection> = Vec::new();
    for (section, key, value) in rows.iter().filter(|(section, _, _)| section != "period") {
        // Ids and catalogue keys take no dots: `referrals.by_state` is `referrals-by_state`.
        let id = section.replace('.', "-");
        if sections.last().is_none_or(|s| s.id != id) {
            sections.push(StatSection {
                title: tr.t(&format!("stats-section-{id}")),
                id,
                rows: Vec::new(),
                chart: Vec::new(),
                chart_height: 0,
            });
        }
        let shown = if value.is_empty() {
            tr.t1("console-suppressed", "min", &min_cell)
        } else if value.contains('.') {
            value
                .parse::<f64>()
                .map(|v| decimal(tr, v))
                .unwrap_or_else(|_| value.clone())
        } else {
            value.clone()
        };
        let current = sections.last_mut();
        if let Some(current) = current {
            current.rows.push(StatRow {
                label: stat_label(tr, ctx, section, key),
                value: shown,
            });
            let counted = CHARTED.contains(&section.as_str())
                && !["total", "known", "minor_share_pct", "adult_share_pct", "mean"].contains(&key.as_str());
            if counted && let Ok(n) = value.parse::<u64>() {
                current.chart.push(ChartBar {
                    y: current.chart.len() as u32 * ROW_HEIGHT,
                    label: stat_label(tr, ctx, section, key),
                    width: u32::try_from(n).unwrap_or(u32::MAX),
                    value: n.to_string(),
                });
            }
        }
    }
    // Bars scaled to the largest of their own chart.
    for section in &mut sections {
        let largest = section.chart.iter().map(|b| b.width).max().unwrap_or(0).max(1);
        for bar in &mut section.chart {
            bar.width = ((u64::from(bar.width) * u64::from(BAR_WIDTH)) / u64::from(largest)).max(2) as u32;
        }
        section.chart_height = section.chart.len() as u32 * ROW_HEIGHT;
    }
    sections
}

/// The statistics report of a period as tables and bar charts, with small cells withheld;
/// the CSV download is exactly these rows (`domain::stats::rows`).
#[get("/console/statistics")]
pub async fn statistics(
    req: HttpRequest,
    ctx: Context,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = coordinator(&req, &ctx).await?;
    let today = time::local(ctx.now().0).date();
    // The year so far by default: the report's usual period.
    let first_of_year = chrono::NaiveDate::from_ymd_opt(chrono::Datelike::year(&today), 1, 1).unwrap_or(today);
    let (status, form, from, to) = chosen_period(tr, &query, first_of_year, today)?;
    let report = ctx
        .report(session.actor.clone(), move |c| {
            crate::app::oversight::report(c, from, to)
        })
        .await
        .map_err(|e| web_error(lang, e))?;
    let rows = crate::domain::stats::rows(&report);
    let min_cell = ctx.settings().stats.min_cell;
    let page = StatisticsPage {
        chrome: Chrome::signed_in(
            lang,
            "/console/statistics",
            tr.t("stats-title"),
            &session,
            ctx.registry(),
        ),
        period: tr.with(
            "console-period",
            &[("from", &time::date(lang, from)), ("to", &time::date(lang, to))],
        ),
        sections: statistics_sections(&tr, &ctx, &rows, min_cell),
        csv_href: format!("/console/statistics.csv?from={from}&to={to}"),
        eu_href: format!("/console/eu-export?year={}", chrono::Datelike::year(&today) - 1),
        last_year: chrono::Datelike::year(&today) - 1,
        suppressed: !report.suppressed.is_empty(),
        min_cell,
        form,
    };
    Ok(html(status, &page))
}

#[derive(Template)]
#[template(path = "three_way_course.html")]
struct ThreeWayCoursePage {
    chrome: Chrome,
    form: FormState,
    period: String,
    table: Table,
    suppressed: bool,
    min_cell: u32,
}

/// The three-way conversations offered per quarter and how they went (the CKM's
/// recommendation 2): the API's `GET /stats/three-way-conversations` as a table.
#[get("/console/three-way-conversations")]
pub async fn three_way_course(
    req: HttpRequest,
    ctx: Context,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let tr = Tr::new(lang);
    let session = coordinator(&req, &ctx).await?;
    let today = time::local(ctx.now().0).date();
    // Four whole quarters and the current one by default.
    let start = crate::domain::stats::Quarter::of(today - Duration::days(366)).first_day();
    let (status, form, from, to) = chosen_period(tr, &query, start, today)?;
    let course = ctx
        .report(session.actor.clone(), move |c| {
            crate::app::oversight::three_way_course(c, from, to)
        })
        .await
        .map_err(|e| web_error(lang, e))?;
    let min_cell = ctx.settings().stats.min_cell;
    let cell = |value: Option<u64>| {
        value
            .map(|v| v.to_string())
            .unwrap_or_else(|| tr.t1("console-suppressed", "min", &min_cell))
    };
    let head = [
        "three-way-col-quarter",
        "three-way-col-offered",
        "three-way-col-declined",
        "three-way-col-awaiting",
        "three-way-col-held",
        "three-way-col-will_report",
        "three-way-col-undecided",
        "three-way-col-will_not_report",
        "three-way-col-not_evaluated",
    ]
    .iter()
    .map(|key| tr.t(key))
    .collect();
    let rows = course
        .quarters
        .iter()
        .map(|q| {
            vec![
                {
                    let quarter = crate::domain::stats::Quarter::of(q.from);
                    tr.with(
                        "three-way-quarter",
                        &[
                            ("year", &quarter.year.to_string()),
                            ("number", &quarter.number.to_string()),
                        ],
                    )
                },
                cell(q.offered),
                cell(q.declined),
                cell(q.awaiting),
                cell(q.held),
                cell(q.followed_by.will_report),
                cell(q.followed_by.undecided),
                cell(q.followed_by.will_not_report),
                cell(q.followed_by.not_evaluated),
            ]
        })
        .collect();
    let page = ThreeWayCoursePage {
        chrome: Chrome::signed_in(
            lang,
            "/console/three-way-conversations",
            tr.t("three-way-course-title"),
            &session,
            ctx.registry(),
        ),
        period: tr.with(
            "console-period",
            &[("from", &time::date(lang, from)), ("to", &time::date(lang, to))],
        ),
        table: Table { head, rows },
        suppressed: !course.suppressed.is_empty(),
        min_cell,
        form,
    };
    Ok(html(status, &page))
}

/// The period a console page asked for (or its default), with the form showing it.
fn chosen_period(
    tr: Tr,
    query: &PeriodQuery,
    default_from: chrono::NaiveDate,
    today: chrono::NaiveDate,
) -> Result<(StatusCode, FormState, chrono::NaiveDate, chrono::NaiveDate), WebError> {
    let blank = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let from = blank(&query.from).unwrap_or_else(|| default_from.to_string());
    let to = blank(&query.to).unwrap_or_else(|| today.to_string());
    let mut form = FormState::with_values(vec![("from".into(), from.clone()), ("to".into(), to.clone())]);
    match period(Some(&from), Some(&to)) {
        Ok((from, to)) => Ok((StatusCode::OK, form, from, to)),
        Err(ApiError::Validation(errors)) => {
            form.add_api_errors(tr, &errors);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, form, default_from, today))
        }
        Err(other) => Err(web_error(tr.lang, other)),
    }
}

/// A download for the person signed in: no caching, a file name.
fn download(content_type: &str, filename: &str, body: String) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    super::page::secure_headers(&mut response);
    response
        .content_type(content_type.to_string())
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .body(body)
}

/// The report of a period as CSV: byte for byte what `GET /api/v1/stats/report?format=csv`
/// answers.
#[get("/console/statistics.csv")]
pub async fn statistics_csv(
    req: HttpRequest,
    ctx: Context,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let session = coordinator(&req, &ctx).await?;
    let (from, to) = period(query.from.as_deref(), query.to.as_deref()).map_err(|e| web_error(lang, e))?;
    let report = ctx
        .report(session.actor.clone(), move |c| {
            crate::app::oversight::report(c, from, to)
        })
        .await
        .map_err(|e| web_error(lang, e))?;
    Ok(download(
        "text/csv; charset=utf-8",
        &format!("nrm-report-{from}-{to}.csv"),
        crate::domain::stats::to_csv(&report),
    ))
}

#[derive(serde::Deserialize)]
pub struct YearQuery {
    year: Option<String>,
}

/// The EU data-collection export of a year, as the API's JSON, to download.
#[get("/console/eu-export")]
pub async fn eu_export(req: HttpRequest, ctx: Context, query: web::Query<YearQuery>) -> Result<HttpResponse, WebError> {
    let lang = language_of(&req);
    let session = coordinator(&req, &ctx).await?;
    let year: i32 = query
        .year
        .as_deref()
        .and_then(|y| y.parse().ok())
        .filter(|y| (1990..=2200).contains(y))
        .ok_or_else(|| web_error(lang, ApiError::field("year", "must be a year such as 2024")))?;
    let export = ctx
        .report(session.actor.clone(), move |c| {
            crate::app::oversight::eu_export(c, year)
        })
        .await
        .map_err(|e| web_error(lang, e))?;
    let body = serde_json::to_string_pretty(&export).map_err(|e| web_error(lang, ApiError::internal(e)))?;
    Ok(download(
        "application/json",
        &format!("nrm-eu-export-{year}.json"),
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WCAG 2.x relative luminance of `#rrggbb`.
    fn luminance(hex: &str) -> f64 {
        let channel = |i: usize| {
            let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
    }

    #[test]
    fn every_colour_of_the_diagram_stands_out_from_the_page() {
        // WCAG 1.4.11: graphical objects need 3:1 against what is next to them (white).
        for (state, fill) in FLOW_STATES {
            let ratio = 1.05 / (luminance(fill) + 0.05);
            assert!(ratio >= 3.0, "{state:?} {fill}: {ratio:.2}");
        }
    }

    #[test]
    fn figures_take_the_decimal_mark_of_the_language() {
        assert_eq!(decimal(&Tr::new(super::super::i18n::Lang::Nl), 2.46), "2,5");
        assert_eq!(decimal(&Tr::new(super::super::i18n::Lang::En), 2.46), "2.5");
    }
}

//! `nrm bench --scenario pages`: the web pages under signed-in people. Half the clients are
//! CSG intake workers (inbox, referral page), half Fier caseworkers (case page, case list),
//! each with a session of its own made through the sign-in form, as a browser would.
//! The referrals they look at are made first through the API (not timed).
//!
//! `--scenario console`: the focal point's console pages for the last 12 months, one at a
//! time, on an existing (seeded) database. `--scenario information-point`: the public pages
//! under concurrent anonymous visitors.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::{BenchPlan, Client, OpStats, Phase, Pick, RECEIVER, Tokens, header, percentile, service_for, tokens};
use crate::config::Settings;

/// A signed-in browser: its session cookie, and what it measured.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
    ops: BTreeMap<&'static str, OpStats>,
}

/// The value of `name` in a response's `Set-Cookie` headers.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .find_map(|v| {
            let pair = v.to_str().ok()?.split(';').next()?;
            let (key, value) = pair.split_once('=')?;
            (key == name && !value.is_empty()).then(|| value.to_string())
        })
}

impl Browser {
    /// Signs in as a development persona through the sign-in form (CSRF token and all).
    async fn sign_in(http: reqwest::Client, base: &str, persona: &str) -> Result<Self, String> {
        let form = http
            .get(format!("{base}/sign-in"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let pre = set_cookie(&form, "nrm_sign_in").ok_or("the sign-in page set no cookie (not development?)")?;
        let page = form.text().await.map_err(|e| e.to_string())?;
        let marker = "name=\"csrf_token\" value=\"";
        let token = page
            .split_once(marker)
            .and_then(|(_, rest)| rest.split('"').next())
            .ok_or("no CSRF token on the sign-in page")?
            .to_string();
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("csrf_token", &token)
            .append_pair("persona", persona)
            .append_pair("return_to", "/")
            .finish();
        let signed_in = http
            .post(format!("{base}/sign-in"))
            .header(reqwest::header::COOKIE, format!("nrm_sign_in={pre}"))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let session = set_cookie(&signed_in, "nrm_session").ok_or(format!("signing in as {persona} failed"))?;
        Ok(Self {
            http,
            base: base.to_string(),
            cookie: format!("nrm_session={session}"),
            ops: BTreeMap::new(),
        })
    }

    /// One page, timed to its last byte; anything but a 200 HTML page is an error.
    async fn page(&mut self, op: &'static str, path: &str) {
        let started = Instant::now();
        let result = async {
            let mut request = self
                .http
                .get(format!("{}{path}", self.base))
                .header(reqwest::header::ACCEPT, "text/html");
            if !self.cookie.is_empty() {
                request = request.header(reqwest::header::COOKIE, &self.cookie);
            }
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response.bytes().await.map_err(|e| e.to_string())?;
            // A download (the statistics' CSV) is not a page; everything else must be one.
            let download = path.contains(".csv?");
            if status != reqwest::StatusCode::OK || !(download || body.starts_with(b"<!DOCTYPE html>")) {
                return Err(format!("{path}: {status}"));
            }
            Ok(())
        }
        .await;
        let stats = self.ops.entry(op).or_default();
        match result {
            Ok(()) => stats.latencies_us.push(started.elapsed().as_micros() as u64),
            Err(error) => {
                stats.errors += 1;
                stats.first_error.get_or_insert(error);
            }
        }
    }
}

/// Waits for every client and gathers what they measured into one phase.
async fn gathered(
    name: String,
    started: Instant,
    handles: Vec<tokio::task::JoinHandle<BTreeMap<&'static str, OpStats>>>,
) -> Result<Phase, String> {
    let mut phase = Phase {
        name,
        ..Phase::default()
    };
    for handle in handles {
        phase.merge(handle.await.map_err(|e| e.to_string())?);
    }
    phase.elapsed = started.elapsed();
    Ok(phase)
}

/// Submitted referrals to CSG, a quarter of them taken further, for the pages to show.
async fn referrals_to_show(
    http: &reqwest::Client,
    base: &str,
    tokens: &Tokens,
    count: u64,
) -> Result<(Vec<String>, Vec<String>), String> {
    let mut client = Client::new(http.clone(), base, tokens.clone());
    let (mut referrals, mut cases) = (Vec::new(), Vec::new());
    for n in 0..count {
        let Some(submitted) = client.submitted_referral(1_000_000 + n).await else {
            continue;
        };
        referrals.push(submitted.id.clone());
        cases.push(submitted.case_id.clone());
        if n % 4 == 0 {
            client.receive(submitted).await;
        }
    }
    match client.ops.values().find_map(|s| s.first_error.clone()) {
        Some(error) if referrals.is_empty() => Err(format!("no referral could be made: {error}")),
        _ => Ok((referrals, cases)),
    }
}

pub(super) async fn pages(plan: &BenchPlan, settings: Settings) -> Result<(), String> {
    let (service, settings) = service_for(plan, settings, "service").await?;
    let tokens = tokens(&settings, RECEIVER)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.concurrency)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    header(plan, &service);
    println!(
        "\nMaking 60 referrals to show and signing in {} people (not timed)...",
        plan.concurrency
    );
    let (referrals, cases) = referrals_to_show(&http, &service.base, &tokens, 60).await?;
    let ids = Arc::new((referrals, cases));
    let mut browsers = Vec::with_capacity(plan.concurrency);
    for worker in 0..plan.concurrency {
        let persona = if worker % 2 == 0 {
            "csg:intake"
        } else {
            "fier:caseworker"
        };
        browsers.push(Browser::sign_in(http.clone(), &service.base, persona).await?);
    }
    let started = Instant::now();
    let deadline = started + plan.duration;
    let handles: Vec<_> = browsers
        .into_iter()
        .enumerate()
        .map(|(worker, mut browser)| {
            let ids = ids.clone();
            tokio::spawn(async move {
                let mut pick = Pick(worker as u64 + 7);
                while Instant::now() < deadline {
                    if worker % 2 == 0 {
                        browser.page("page_inbox", "/inbox").await;
                        let id = &ids.0[pick.below(ids.0.len())];
                        browser.page("page_referral", &format!("/referrals/{id}")).await;
                    } else {
                        let id = &ids.1[pick.below(ids.1.len())];
                        browser.page("page_case", &format!("/cases/{id}")).await;
                        browser.page("page_cases", "/cases").await;
                    }
                }
                browser.ops
            })
        })
        .collect();
    let mut phase = gathered(
        format!("Pages, {} signed-in people", plan.concurrency),
        started,
        handles,
    )
    .await?;
    phase.print();
    let p99 = |op: &str| {
        phase
            .ops
            .get(op)
            .and_then(|s| percentile(&s.latencies_us, 99.0))
            .map_or("-".into(), |us| format!("{:.1} ms", us as f64 / 1000.0))
    };
    println!(
        "\nTarget p99 under 50 ms at 16 signed-in people: inbox {}, case page {}",
        p99("page_inbox"),
        p99("page_case")
    );
    Ok(())
}

/// The console's pages for the last 12 months as a coordinator (and the capacity overview),
/// each loaded once untimed, then `--repeat` times one after another.
pub(super) async fn console(plan: &BenchPlan, settings: Settings) -> Result<(), String> {
    let (service, _) = service_for(plan, settings, "service").await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    header(plan, &service);
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Duration::days(364);
    let period = format!("from={from}&to={today}");
    let routes: [(&'static str, String); 6] = [
        ("console_today", format!("/console?{period}")),
        ("console_statistics", format!("/console/statistics?{period}")),
        ("console_statistics_csv", format!("/console/statistics.csv?{period}")),
        (
            "console_three_way",
            format!("/console/three-way-conversations?{period}"),
        ),
        ("console_audit", format!("/console/audit?{period}")),
        ("admin_capacity", "/admin/capacity".to_string()),
    ];
    let mut browser = Browser::sign_in(http, &service.base, "comensha:coordinator").await?;
    let started = Instant::now();
    for (op, path) in &routes {
        browser.page("warm-up", path).await;
        for _ in 0..plan.repeat.max(1) {
            browser.page(op, path).await;
        }
    }
    let mut phase = Phase {
        name: format!("Console pages, last 12 months, {} timed loads each", plan.repeat.max(1)),
        elapsed: started.elapsed(),
        ..Phase::default()
    };
    browser.ops.remove("warm-up");
    phase.merge(browser.ops);
    phase.print();
    let slowest = phase
        .ops
        .values()
        .filter_map(|s| s.latencies_us.iter().max().copied())
        .max()
        .unwrap_or(0);
    let errors: u64 = phase.ops.values().map(|s| s.errors).sum();
    println!(
        "\nTarget every console page under 1 s: slowest load {:.1} ms, {errors} error(s)",
        slowest as f64 / 1000.0
    );
    Ok(())
}

/// The public information point under `--concurrency` anonymous visitors for `--duration`:
/// the start, a question answered, every organisation, what happens.
pub(super) async fn information_point(plan: &BenchPlan, settings: Settings) -> Result<(), String> {
    let (service, _) = service_for(plan, settings, "service").await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.concurrency)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    header(plan, &service);
    const QUESTIONS: [&str; 4] = [
        "age=16&form=criminal&region=rotterdam&language=pl",
        "age=24&form=sexual&region=amsterdam&language=ro",
        "form=labour",
        "",
    ];
    let started = Instant::now();
    let deadline = started + plan.duration;
    let handles: Vec<_> = (0..plan.concurrency)
        .map(|worker| {
            let mut visitor = Browser {
                http: http.clone(),
                base: service.base.clone(),
                cookie: String::new(),
                ops: BTreeMap::new(),
            };
            tokio::spawn(async move {
                let mut pick = Pick(worker as u64 + 11);
                let lang = if worker % 4 == 3 { "en" } else { "nl" };
                while Instant::now() < deadline {
                    visitor.page("info_home", &format!("/hulp/{lang}")).await;
                    let question = QUESTIONS[pick.below(QUESTIONS.len())];
                    visitor
                        .page("info_results", &format!("/hulp/{lang}/zoeken?{question}"))
                        .await;
                    visitor
                        .page("info_organisations", &format!("/hulp/{lang}/organisaties"))
                        .await;
                    visitor
                        .page("info_what_happens", &format!("/hulp/{lang}/wat-gebeurt-er"))
                        .await;
                }
                visitor.ops
            })
        })
        .collect();
    let mut phase = gathered(
        format!("Information point, {} visitors", plan.concurrency),
        started,
        handles,
    )
    .await?;
    phase.print();
    let worst = phase
        .ops
        .values()
        .filter_map(|s| percentile(&s.latencies_us, 99.0))
        .max()
        .unwrap_or(0);
    println!(
        "\nTarget p99 under 20 ms at 16 visitors: slowest page's p99 {:.1} ms",
        worst as f64 / 1000.0
    );
    Ok(())
}

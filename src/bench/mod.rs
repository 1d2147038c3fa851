//! `nrm bench`: HTTP load on a service instance, measured per operation, and set beside
//! what PostgreSQL does with the same SQL when nothing else is in the way (pgbench).
//!
//! The benchmark starts `nrm serve` itself (so it can read the process's memory) or
//! targets a running one with `--url`. Every call carries a real signed JWT; transitions
//! carry `If-Match`. See docs/performance.md for the figures and how to reproduce them.

pub mod capture;
mod pages;
pub mod pgbench;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::auth::{self, Role};
use crate::config::Settings;

/// What to load and for how long.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    /// A running service to target; none = start one on `database_url`.
    pub url: Option<String>,
    /// The database of the started service, and of pgbench.
    pub database_url: String,
    pub concurrency: usize,
    pub duration: Duration,
    pub scenario: Scenario,
    /// Run the pgbench comparison (PostgreSQL only).
    pub pgbench: bool,
    /// Oversight scenario: timed calls per route, and pages walked in the incoming list.
    pub repeat: usize,
    pub pages: usize,
    /// Oversight scenario: whose incoming referrals are listed.
    pub organisation: String,
    /// `--config` files, passed on to the started service.
    pub config_files: Vec<PathBuf>,
    /// The `nrm` executable to start.
    pub executable: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// The handover hot path, a read mix and transitions alone (with pgbench beside them).
    Handover,
    /// Statistics, oversight and deep pagination on an existing (seeded) database.
    Oversight,
    /// The web pages (inbox, referral, case, case list) under signed-in people.
    Pages,
    /// The focal point's console pages for the last 12 months, one at a time, on an
    /// existing (seeded) database.
    Console,
    /// The public information point's pages under concurrent anonymous visitors.
    InformationPoint,
}

/// Latencies and failures of one operation.
#[derive(Debug, Clone, Default)]
pub struct OpStats {
    pub latencies_us: Vec<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl OpStats {
    fn merge(&mut self, other: OpStats) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Nearest-rank percentile of sorted values: the smallest value with at least `p` percent
/// of the values at or below it.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Operation name -> what happened, for one phase.
#[derive(Debug, Default)]
pub struct Phase {
    pub name: String,
    pub elapsed: Duration,
    pub ops: BTreeMap<&'static str, OpStats>,
}

impl Phase {
    fn merge(&mut self, ops: BTreeMap<&'static str, OpStats>) {
        for (name, stats) in ops {
            self.ops.entry(name).or_default().merge(stats);
        }
    }

    fn successes(&self) -> u64 {
        self.ops.values().map(|s| s.latencies_us.len() as u64).sum()
    }

    fn all_latencies(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self.ops.values().flat_map(|s| s.latencies_us.iter().copied()).collect();
        all.sort_unstable();
        all
    }

    fn print(&mut self) {
        let seconds = self.elapsed.as_secs_f64().max(1e-9);
        println!("\n## {} ({:.1} s)\n", self.name, seconds);
        println!(
            "| {:<26} | {:>7} | {:>8} | {:>8} | {:>8} | {:>8} | {:>6} |",
            "operation", "count", "per s", "p50 ms", "p95 ms", "p99 ms", "errors"
        );
        println!(
            "|{:-<28}|{:->9}|{:->10}|{:->10}|{:->10}|{:->10}|{:->8}|",
            "", "", "", "", "", "", ""
        );
        for (name, stats) in &mut self.ops {
            stats.latencies_us.sort_unstable();
            let ms =
                |p| percentile(&stats.latencies_us, p).map_or("-".into(), |us| format!("{:.1}", us as f64 / 1000.0));
            println!(
                "| {:<26} | {:>7} | {:>8.1} | {:>8} | {:>8} | {:>8} | {:>6} |",
                name,
                stats.latencies_us.len(),
                stats.latencies_us.len() as f64 / seconds,
                ms(50.0),
                ms(95.0),
                ms(99.0),
                stats.errors
            );
        }
        for (name, stats) in &self.ops {
            if let Some(error) = &stats.first_error {
                println!("\n{name}: first error: {error}");
            }
        }
    }

    /// Prints whether every operation's p99 is under `target_ms`, naming the slowest.
    fn p99_verdict(&mut self, what: &str, target_ms: f64) {
        let slowest = self
            .ops
            .iter_mut()
            .filter_map(|(name, stats)| {
                stats.latencies_us.sort_unstable();
                percentile(&stats.latencies_us, 99.0).map(|us| (*name, us as f64 / 1000.0))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((name, p99)) = slowest {
            let verdict = if p99 < target_ms { "met" } else { "NOT met" };
            println!("\np99 of {what} under {target_ms} ms: {verdict} (slowest: {name}, p99 {p99:.1} ms)");
        }
    }
}

/// The service under load: started by the benchmark (with its process id) or given.
struct Service {
    base: String,
    child: Option<Child>,
}

impl Service {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Starts `nrm serve` on a free loopback port. Rate limits are off (the benchmark is one
/// client), notifications stay queued (no SMTP host), the JWT secret is the benchmark's.
async fn start_service(plan: &BenchPlan, database_url: &str, secret: &str, log: &str) -> Result<Service, String> {
    let port = free_port()?;
    let log_path = std::env::temp_dir().join(format!("nrm-bench-{}-{log}.log", std::process::id()));
    let log_file = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let mut command = Command::new(&plan.executable);
    for file in &plan.config_files {
        command.arg("--config").arg(file);
    }
    command
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            database_url,
        ])
        .env("NRM__JWT__HS256_SECRET", secret)
        .env("NRM__RATE_LIMIT__PER_TOKEN_PER_MINUTE", "0")
        .env("NRM__RATE_LIMIT__PER_ADDRESS_PER_MINUTE", "0")
        // Every client comes from one address: at 64 clients (plus the pool's spare
        // connections) the per-address connection cap would answer 429.
        .env("NRM__SERVER__MAX_CONNECTIONS_PER_ADDRESS", "0")
        .env("NRM__SMTP__HOST", "")
        .env("NRM__LOG__LEVEL", "warn")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", plan.executable.display()))?;
    let mut service = Service {
        base: format!("http://127.0.0.1:{port}"),
        child: Some(child),
    };
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if let Ok(response) = client.get(format!("{}/health/ready", service.base)).send().await
            && response.status().is_success()
        {
            return Ok(service);
        }
        if let Some(child) = &mut service.child
            && let Ok(Some(status)) = child.try_wait()
        {
            return Err(format!("the service exited ({status}); see {}", log_path.display()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("the service did not become ready; see {}", log_path.display()))
}

/// Resident memory of a process, sampled while the load runs.
struct MemorySampler {
    stop: Arc<AtomicBool>,
    max_rss_kb: Arc<AtomicU64>,
    pid: u32,
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

impl MemorySampler {
    fn start(pid: u32) -> MemorySampler {
        let stop = Arc::new(AtomicBool::new(false));
        let max_rss_kb = Arc::new(AtomicU64::new(0));
        let (s, m) = (stop.clone(), max_rss_kb.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(kb) = status_kb(pid, "VmRSS") {
                    m.fetch_max(kb, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        MemorySampler { stop, max_rss_kb, pid }
    }

    /// (largest sampled RSS, kernel's high-water mark, current RSS), in MiB.
    fn finish(&self) -> (f64, Option<f64>, Option<f64>) {
        self.stop.store(true, Ordering::Relaxed);
        let mib = |kb: u64| kb as f64 / 1024.0;
        (
            mib(self.max_rss_kb.load(Ordering::Relaxed)),
            status_kb(self.pid, "VmHWM").map(mib),
            status_kb(self.pid, "VmRSS").map(mib),
        )
    }
}

/// Tokens of the three users the load plays, signed with the service's key.
#[derive(Clone)]
struct Tokens {
    caseworker: String,
    intake: String,
    coordinator: String,
}

fn tokens(settings: &Settings, intake_org: &str) -> Result<Tokens, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let ttl = Duration::from_secs(6 * 3600);
    let mint = |sub: &str, org: &str, role: Role| {
        auth::mint_token(settings, sub, org, &[role], ttl, now).map_err(|e| e.to_string())
    };
    let focal_point = "comensha";
    Ok(Tokens {
        caseworker: mint("bench-caseworker", "fier", Role::Caseworker)?,
        intake: mint("bench-intake", intake_org, Role::Intake)?,
        coordinator: mint("bench-coordinator", focal_point, Role::Coordinator)?,
    })
}

/// What the benchmark reads of an answer: the handles of its next call (a resource's id,
/// case and version; a page's items and cursor), every other field skipped unread.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
struct Answer {
    id: String,
    case_id: String,
    version: i64,
    items: Vec<Answer>,
    next_cursor: Option<String>,
}

/// One client's view of the service, and what it measured.
struct Client {
    http: reqwest::Client,
    base: String,
    tokens: Tokens,
    ops: BTreeMap<&'static str, OpStats>,
}

/// The receiver of the benchmark's referrals, and a service it offers.
const RECEIVER: &str = "csg";
const SERVICE: &str = "psychosocial_support";

impl Client {
    fn new(http: reqwest::Client, base: &str, tokens: Tokens) -> Self {
        Client {
            http,
            base: base.to_string(),
            tokens,
            ops: BTreeMap::new(),
        }
    }

    /// Sends one request, times it to the last byte of the body, and records it under `op`.
    /// The body is read back after the clock stopped, and only for what the next call needs
    /// ([`Answer`]): on two shared cores, building a whole JSON tree of every answer took the
    /// service's CPU and was counted in its latency.
    async fn call(&mut self, op: &'static str, request: reqwest::RequestBuilder) -> Option<Answer> {
        let started = Instant::now();
        let result = async {
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response.bytes().await.map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                ));
            }
            Ok(body)
        }
        .await;
        let elapsed = started.elapsed();
        let result = result.and_then(|body| serde_json::from_slice::<Answer>(&body).map_err(|e| e.to_string()));
        let stats = self.ops.entry(op).or_default();
        match result {
            Ok(answer) => {
                stats.latencies_us.push(elapsed.as_micros() as u64);
                Some(answer)
            }
            Err(error) => {
                stats.errors += 1;
                stats.first_error.get_or_insert(error);
                None
            }
        }
    }

    async fn post(&mut self, op: &'static str, path: &str, token: &str, body: Value) -> Option<Answer> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body);
        self.call(op, request).await
    }

    async fn get(&mut self, op: &'static str, path: &str, token: &str) -> Option<Answer> {
        let request = self.http.get(format!("{}{path}", self.base)).bearer_auth(token);
        self.call(op, request).await
    }

    async fn transition(&mut self, op: &'static str, token: &str, referral: &Answer, body: Value) -> Option<Answer> {
        let request = self
            .http
            .post(format!("{}/api/v1/referrals/{}/transitions", self.base, referral.id))
            .bearer_auth(token)
            .header("If-Match", format!("\"{}\"", referral.version))
            .json(&body);
        self.call(op, request).await
    }

    /// Create case -> reasonable grounds -> consent -> referral -> submit.
    async fn submitted_referral(&mut self, n: u64) -> Option<Answer> {
        let cw = self.tokens.caseworker.clone();
        let case = self.post("create_case", "/api/v1/cases", &cw, case_body(n)).await?;
        let case_id = case.id;
        self.post(
            "reasonable_grounds",
            &format!("/api/v1/cases/{case_id}/identification"),
            &cw,
            json!({"decision": "reasonable_grounds", "basis": "benchmark"}),
        )
        .await?;
        self.post(
            "consent",
            &format!("/api/v1/cases/{case_id}/consents"),
            &cw,
            json!({"scope": "referral", "organisation": RECEIVER, "given_by": "victim", "method": "chat", "information_language": "nl"}),
        )
        .await?;
        let draft = self
            .post(
                "create_referral",
                &format!("/api/v1/cases/{case_id}/referrals"),
                &cw,
                json!({"to_organisation": RECEIVER, "services": [SERVICE], "urgency": "routine"}),
            )
            .await?;
        self.transition("submit", &cw, &draft, json!({"action": "submit"}))
            .await
    }

    /// What the receiver does with a submitted referral: four transitions.
    async fn receive(&mut self, submitted: Answer) -> Option<Answer> {
        let intake = self.tokens.intake.clone();
        let mut referral = submitted;
        for (op, body) in receiver_steps() {
            referral = self.transition(op, &intake, &referral, body).await?;
        }
        Some(referral)
    }
}

/// The receiver's four transitions of a submitted referral, in order, with their bodies.
fn receiver_steps() -> [(&'static str, Value); 4] {
    [
        ("acknowledge", json!({"action": "acknowledge"})),
        ("accept", json!({"action": "accept"})),
        ("start_care", json!({"action": "start_care"})),
        (
            "complete",
            json!({"action": "complete", "outcome_code": "support_provided", "outcome": "benchmark"}),
        ),
    ]
}

fn case_body(n: u64) -> Value {
    json!({
        "reporter_role": "victim",
        "contact_channel": "chat",
        "contact_date": chrono::Utc::now().date_naive().to_string(),
        "exploitation_forms": ["sexual"],
        "age_at_contact": 24,
        "gender": "female",
        "nationality": "RO",
        "region": "amsterdam",
        "language": "ro",
        "pseudonym": format!("bench-{n}")
    })
}

/// Ids the read mix picks from.
#[derive(Default)]
struct Created {
    referrals: Vec<String>,
    cases: Vec<String>,
}

/// Runs `work` on `concurrency` clients until `duration` has passed (or work runs out), and
/// collects what they measured.
async fn drive<F, Fut>(
    name: &str,
    plan: &BenchPlan,
    http: &reqwest::Client,
    base: &str,
    tokens: &Tokens,
    work: F,
) -> Phase
where
    F: Fn(Client, usize, Instant) -> Fut,
    Fut: std::future::Future<Output = Client> + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + plan.duration;
    let handles: Vec<_> = (0..plan.concurrency)
        .map(|worker| tokio::spawn(work(Client::new(http.clone(), base, tokens.clone()), worker, deadline)))
        .collect();
    let mut phase = Phase {
        name: name.to_string(),
        ..Phase::default()
    };
    for handle in handles {
        if let Ok(client) = handle.await {
            phase.merge(client.ops);
        }
    }
    phase.elapsed = started.elapsed();
    phase
}

/// Runs the plan and prints its report (markdown tables) to stdout.
pub fn run(plan: BenchPlan, settings: Settings) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        match plan.scenario {
            Scenario::Handover => handover(&plan, settings).await,
            Scenario::Oversight => oversight(&plan, settings).await,
            Scenario::Pages => pages::pages(&plan, settings).await,
            Scenario::Console => pages::console(&plan, settings).await,
            Scenario::InformationPoint => pages::information_point(&plan, settings).await,
        }
    })
}

/// A fresh signing secret for a service the benchmark starts.
fn bench_secret() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// Starts the service (or takes `--url`) and the settings to sign tokens for it with.
async fn service_for(plan: &BenchPlan, mut settings: Settings, log: &str) -> Result<(Service, Settings), String> {
    match &plan.url {
        Some(url) => Ok((
            Service {
                base: url.trim_end_matches('/').to_string(),
                child: None,
            },
            settings,
        )),
        None => {
            let secret = bench_secret();
            settings.jwt.hs256_secret = secret.clone();
            let service = start_service(plan, &plan.database_url, &secret, log).await?;
            Ok((service, settings))
        }
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn header(plan: &BenchPlan, service: &Service) {
    let backend = if plan.url.is_some() {
        "the service at --url".to_string()
    } else if is_postgres(&plan.database_url) {
        "PostgreSQL".to_string()
    } else {
        "SQLite".to_string()
    };
    println!("# nrm bench: {:?} on {backend}", plan.scenario);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    match plan.scenario {
        Scenario::Handover | Scenario::Pages | Scenario::InformationPoint => println!(
            "\n{} concurrent clients, {} s per phase, service at {}, {cores} CPU cores",
            plan.concurrency,
            plan.duration.as_secs(),
            service.base,
        ),
        Scenario::Oversight | Scenario::Console => println!(
            "\nOne call at a time, {} timed calls per route after one untimed, service at {}, {cores} CPU cores",
            plan.repeat, service.base,
        ),
    }
}

async fn handover(plan: &BenchPlan, settings: Settings) -> Result<(), String> {
    let (service, settings) = service_for(plan, settings, "service").await?;
    let tokens = tokens(&settings, RECEIVER)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.concurrency)
        .build()
        .map_err(|e| e.to_string())?;
    header(plan, &service);
    let memory = service.pid().map(MemorySampler::start);
    let counter = Arc::new(AtomicU64::new(0));
    let created = Arc::new(Mutex::new(Created::default()));

    // 1. The whole handover, nine calls, repeated.
    let (c, k) = (counter.clone(), created.clone());
    let mut hot = drive(
        "Handover hot path",
        plan,
        &http,
        &service.base,
        &tokens,
        move |mut client, _, deadline| {
            let (counter, created) = (c.clone(), k.clone());
            async move {
                while Instant::now() < deadline {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let Some(submitted) = client.submitted_referral(n).await else {
                        continue;
                    };
                    let (id, case) = (submitted.id.clone(), submitted.case_id.clone());
                    if client.receive(submitted).await.is_some()
                        && let Ok(mut created) = created.lock()
                    {
                        created.referrals.push(id);
                        created.cases.push(case);
                    }
                }
                client
            }
        },
    )
    .await;
    let handovers = hot.ops.get("complete").map_or(0, |s| s.latencies_us.len());
    hot.print();
    println!(
        "\nHandovers completed: {handovers} ({:.1}/s)",
        handovers as f64 / hot.elapsed.as_secs_f64()
    );

    // 2. The read mix on what was just created, on planner statistics as a database in use
    // has them (autovacuum's); see `analyzed`.
    if plan.url.is_none() {
        analyzed(&plan.database_url).await?;
    }
    let ids = {
        let created = created.lock().map_err(|e| e.to_string())?;
        Arc::new((created.referrals.clone(), created.cases.clone()))
    };
    if ids.0.is_empty() {
        return Err("no handover completed; see the errors above".into());
    }
    let mut reads = drive(
        "Read mix",
        plan,
        &http,
        &service.base,
        &tokens,
        move |mut client, worker, deadline| {
            let ids = ids.clone();
            async move {
                let mut pick = Pick(worker as u64 + 1);
                let (intake, cw) = (client.tokens.intake.clone(), client.tokens.caseworker.clone());
                while Instant::now() < deadline {
                    client
                        .get(
                            "list_incoming",
                            "/api/v1/referrals?direction=incoming&limit=20",
                            &intake,
                        )
                        .await;
                    let referral = &ids.0[pick.below(ids.0.len())];
                    client
                        .get("get_referral", &format!("/api/v1/referrals/{referral}"), &intake)
                        .await;
                    let case = &ids.1[pick.below(ids.1.len())];
                    client.get("get_case", &format!("/api/v1/cases/{case}"), &cw).await;
                }
                client
            }
        },
    )
    .await;
    reads.print();
    reads.p99_verdict("the read mix", 20.0);

    // 3. Transitions alone, on referrals submitted beforehand (not timed), enough for the
    // phase at the rate the hot path reached.
    let calls_per_second = hot.successes() as f64 / hot.elapsed.as_secs_f64();
    let needed = ((calls_per_second * plan.duration.as_secs_f64() / 4.0) * 1.3) as usize + plan.concurrency;
    println!("\nSubmitting {needed} referrals for the transitions phase (not timed)...");
    let pool = Arc::new(Mutex::new(Vec::with_capacity(needed)));
    let per_worker = needed.div_ceil(plan.concurrency);
    let setup = BenchPlan {
        duration: Duration::from_secs(3600),
        ..plan.clone()
    };
    let (p, c) = (pool.clone(), counter.clone());
    drive(
        "setup",
        &setup,
        &http,
        &service.base,
        &tokens,
        move |mut client, _, _| {
            let (pool, counter) = (p.clone(), c.clone());
            async move {
                for _ in 0..per_worker {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    if let Some(referral) = client.submitted_referral(n).await
                        && let Ok(mut pool) = pool.lock()
                    {
                        pool.push(referral);
                    }
                }
                client
            }
        },
    )
    .await;
    let p = pool.clone();
    let mut transitions = drive(
        "Transitions alone (acknowledge, accept, start_care, complete)",
        plan,
        &http,
        &service.base,
        &tokens,
        move |mut client, _, deadline| {
            let pool = p.clone();
            async move {
                while Instant::now() < deadline {
                    let next = pool.lock().ok().and_then(|mut pool| pool.pop());
                    let Some(referral) = next else { break };
                    client.receive(referral).await;
                }
                client
            }
        },
    )
    .await;
    transitions.print();
    transitions.p99_verdict("each transition", 50.0);
    let transition_latencies = transitions.all_latencies();
    let service_tps = transition_latencies.len() as f64 / transitions.elapsed.as_secs_f64();
    let ms = |v: &[u64], p| percentile(v, p).map_or(f64::NAN, |us| us as f64 / 1000.0);
    println!(
        "\nService: {service_tps:.1} transitions/s; p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
        ms(&transition_latencies, 50.0),
        ms(&transition_latencies, 95.0),
        ms(&transition_latencies, 99.0)
    );

    if let Some(memory) = &memory {
        let (max_rss, hwm, now) = memory.finish();
        println!(
            "\nService memory: largest resident set sampled {max_rss:.1} MiB; high-water mark {}; now {}",
            hwm.map_or("-".into(), |m| format!("{m:.1} MiB")),
            now.map_or("-".into(), |m| format!("{m:.1} MiB"))
        );
    }
    drop(service);

    if plan.pgbench && is_postgres(&plan.database_url) {
        let (limit, simple) = compare_with_pgbench(plan, &settings, &http).await?;
        let row = |name: &str, tps: f64, v: &[u64]| {
            format!(
                "| {name} | {tps:.1} | {:.1} | {:.1} | {:.1} |",
                ms(v, 50.0),
                ms(v, 95.0),
                ms(v, 99.0)
            )
        };
        println!(
            "\n## Service against the database's limit ({} clients)\n\n\
             | | transactions/s | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|---:|\n{}\n{}\n{}\n\n\
             Ratio service ÷ pgbench: {:.2} (target ≥ 0.7; pgbench: {} transactions, {} failed)\n\
             Ratio service ÷ pgbench -N: {:.2} (target ≥ 0.5; pgbench -N: {} transactions, {} failed)",
            plan.concurrency,
            row("service transitions (HTTP)", service_tps, &transition_latencies),
            row("pgbench, same SQL", limit.tps, &limit.sorted_latencies),
            row(
                "pgbench -N (built-in simple update)",
                simple.tps,
                &simple.sorted_latencies
            ),
            service_tps / limit.tps,
            limit.transactions,
            limit.failed,
            service_tps / simple.tps,
            simple.transactions,
            simple.failed,
        );
    } else if plan.pgbench {
        println!("\n(pgbench comparison: PostgreSQL only)");
    }
    Ok(())
}

struct Limit {
    tps: f64,
    transactions: u64,
    failed: u64,
    sorted_latencies: Vec<u64>,
}

/// `postgres://user@host:port/db?x` -> (`host:port`, the URL with host:port replaced by
/// `proxy`, and `sslmode=disable` added).
pub fn through_proxy(url: &str, proxy: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (format!("{user}@"), host),
        None => (String::new(), authority),
    };
    let upstream = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:5432")
    };
    let separator = if path.contains('?') { '&' } else { '?' };
    Some((
        upstream,
        format!("{scheme}://{userinfo}{proxy}/{path}{separator}sslmode=disable"),
    ))
}

/// Records the SQL of one transition of each kind through a proxy, writes the pgbench
/// scripts, and runs them at the benchmark's concurrency for its duration.
/// Then runs pgbench's own `-N` at the same concurrency and duration on the same database.
async fn compare_with_pgbench(
    plan: &BenchPlan,
    settings: &Settings,
    http: &reqwest::Client,
) -> Result<(Limit, Limit), String> {
    let unreadable = "cannot read the PostgreSQL URL";
    let (upstream, _) = through_proxy(&plan.database_url, "").ok_or(unreadable)?;
    let proxy = capture::Proxy::start(upstream).map_err(|e| e.to_string())?;
    let (_, proxied_url) = through_proxy(&plan.database_url, &format!("127.0.0.1:{}", proxy.port)).ok_or(unreadable)?;
    let secret = settings.jwt.hs256_secret.clone();
    let recorder = start_service(plan, &proxied_url, &secret, "recorded").await?;
    let mut client = Client::new(http.clone(), &recorder.base, tokens(settings, RECEIVER)?);
    let submitted = client
        .submitted_referral(u64::MAX)
        .await
        .ok_or_else(|| format!("recording: could not submit a referral: {:?}", client.ops))?;
    let known = pgbench::Recorded {
        referral: submitted.id.parse().map_err(|_| "no referral id")?,
        case: submitted.case_id.parse().map_err(|_| "no case id")?,
    };
    let work_dir = std::env::temp_dir().join(format!("nrm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work_dir).map_err(|e| e.to_string())?;
    let intake = client.tokens.intake.clone();
    let mut referral = submitted;
    let mut scripts = Vec::new();
    let mut accept = Vec::new();
    for (action, body) in receiver_steps() {
        let mark = proxy.recording.len();
        referral = client
            .transition("recorded", &intake, &referral, body)
            .await
            .ok_or_else(|| format!("recording: {action} failed: {:?}", client.ops))?;
        let transaction = pgbench::transition_transaction(&proxy.recording.since(mark))?;
        let script = pgbench::script(&transaction, known)?;
        if action == "accept" {
            accept = transaction;
        }
        let path = work_dir.join(format!("{action}.sql"));
        std::fs::write(&path, script).map_err(|e| e.to_string())?;
        scripts.push(path);
    }
    drop(recorder);
    // pgbench runs the scripts with `-M prepared`: a statement the service had the server
    // parse anew at every call would make the recorded SQL cheaper than the service's.
    let reparsed = accept.iter().filter(|s| s.sent == capture::Sent::Unnamed).count();
    println!(
        "\nRecorded the SQL of one transition of each kind ({} statements from BEGIN to COMMIT in the accept transaction, {} of them parsed anew at every call); pgbench scripts in {}",
        accept.len(),
        reparsed,
        work_dir.display()
    );
    let (database_url, concurrency, seconds) = (plan.database_url.clone(), plan.concurrency, plan.duration.as_secs());
    let (recorded, simple) = tokio::task::spawn_blocking(move || {
        let recorded = pgbench::run(&database_url, &scripts, concurrency, seconds.max(1), &work_dir)?;
        let simple = pgbench::run_simple_update(&database_url, concurrency, seconds.max(1), &work_dir)?;
        Ok::<_, String>((recorded, simple))
    })
    .await
    .map_err(|e| e.to_string())??;
    Ok((Limit::from(recorded), Limit::from(simple)))
}

impl From<pgbench::PgbenchResult> for Limit {
    fn from(result: pgbench::PgbenchResult) -> Self {
        let mut sorted_latencies = result.latencies_us;
        sorted_latencies.sort_unstable();
        Limit {
            tps: result.tps,
            transactions: result.transactions,
            failed: result.failed,
            sorted_latencies,
        }
    }
}

/// A small deterministic picker, so clients spread their reads without a random crate.
struct Pick(u64);

impl Pick {
    fn below(&mut self, n: usize) -> usize {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n.max(1) as u64) as usize
    }
}

/// The benchmark's own connection to the database of the service it drives.
fn database_at(database_url: &str) -> Result<crate::db::Db, String> {
    let mut settings = Settings::defaults().map_err(|e| e.to_string())?;
    settings.database.url = database_url.to_string();
    crate::startup::open_database(&settings).map_err(|e| e.to_string())
}

/// Waits until the service has folded the statistics deltas a seed or an import left: the
/// reports are exact either way, but time what they cost in steady state.
async fn folded(database_url: &str) -> Result<(), String> {
    let db = database_at(database_url)?;
    let started = std::time::Instant::now();
    loop {
        let pending = db
            .run(|conn| crate::db::rollups::pending(conn).map_err(crate::db::DbError::from))
            .await
            .map_err(|e| e.to_string())?;
        if pending == 0 {
            return Ok(());
        }
        if started.elapsed() > std::time::Duration::from_secs(600) {
            return Err(format!("{pending} statistics deltas still unfolded after 10 minutes"));
        }
        eprintln!("waiting for the service to fold {pending} statistics deltas...");
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// Gathers the planner's statistics (`ANALYZE`), untimed. The hot path fills a fresh
/// database from nothing in seconds, before autovacuum's first pass. Without statistics
/// PostgreSQL ran the batch look-ups of a page (`= ANY` of its ids, for the cases and the
/// histories) as sequential scans: in one 15 s read mix, 9,100 scans of `referral_history`
/// read 57 M rows. A database in use has its statistics from autovacuum; the read mix times
/// that, not a database no deployment runs on. `ANALYZE` also invalidates cached plans.
async fn analyzed(database_url: &str) -> Result<(), String> {
    use diesel::connection::SimpleConnection;
    let db = database_at(database_url)?;
    db.run(|conn| conn.batch_execute("ANALYZE").map_err(crate::db::DbError::from))
        .await
        .map_err(|e| e.to_string())
}

/// Statistics, oversight and the incoming list on an existing database, one call at a time
/// (latency at scale, not throughput).
async fn oversight(plan: &BenchPlan, settings: Settings) -> Result<(), String> {
    let (service, settings) = service_for(plan, settings, "service").await?;
    let tokens = tokens(&settings, &plan.organisation)?;
    header(plan, &service);
    if plan.url.is_none() {
        folded(&plan.database_url).await?;
    }
    let memory = service.pid().map(MemorySampler::start);
    let mut client = Client::new(reqwest::Client::new(), &service.base, tokens.clone());
    let today = chrono::Utc::now().date_naive();
    let year_ago = today - chrono::Duration::days(364);
    // `nrm demo seed --days 3650` writes ten years: the whole history.
    let ten_years_ago = today - chrono::Duration::days(3649);
    let last_year = chrono::Datelike::year(&today) - 1;
    let coordinator = tokens.coordinator.as_str();
    let mut routes: Vec<(&'static str, String, &str)> = vec![
        (
            "stats_report (1 year)",
            format!("/api/v1/stats/report?from={year_ago}&to={today}"),
            coordinator,
        ),
        (
            "stats_report (10 years)",
            format!("/api/v1/stats/report?from={ten_years_ago}&to={today}"),
            coordinator,
        ),
        (
            "oversight_flows (1 year)",
            format!("/api/v1/oversight/flows?from={year_ago}&to={today}"),
            coordinator,
        ),
        (
            "oversight_flows (10 years)",
            format!("/api/v1/oversight/flows?from={ten_years_ago}&to={today}"),
            coordinator,
        ),
        (
            "stats_eu (last year)",
            format!("/api/v1/stats/eu?year={last_year}"),
            coordinator,
        ),
        ("audit_first_page", "/api/v1/audit?limit=50".to_string(), coordinator),
        (
            "incoming_page_1",
            "/api/v1/referrals?direction=incoming&limit=20".to_string(),
            &tokens.intake,
        ),
    ];
    // A coordinator auditing one case: the case of the newest incoming referral.
    let intake = tokens.intake.clone();
    if let Some(page) = client
        .get("warm-up", "/api/v1/referrals?direction=incoming&limit=1", &intake)
        .await
        && let Some(case_id) = page.items.first().map(|item| item.case_id.as_str())
    {
        routes.push((
            "audit_of_one_case",
            format!("/api/v1/audit?case_id={case_id}"),
            coordinator,
        ));
    }
    let started = Instant::now();
    for (op, path, token) in &routes {
        // One untimed call first: the first touch reads cold pages from disk.
        client.get("warm-up", path, token).await;
        for _ in 0..plan.repeat {
            client.get(op, path, token).await;
        }
    }
    let mut cursor: Option<String> = None;
    let mut walked = 0;
    for page in 1..=plan.pages {
        let path = match &cursor {
            None => "/api/v1/referrals?direction=incoming&limit=20".to_string(),
            Some(c) => format!("/api/v1/referrals?direction=incoming&limit=20&cursor={c}"),
        };
        let op = if page == 1 { "warm-up" } else { "incoming_pages_2_to_n" };
        let intake = tokens.intake.clone();
        let Some(body) = client.get(op, &path, &intake).await else {
            break;
        };
        walked = page;
        match body.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    client.ops.remove("warm-up");
    let mut phase = Phase {
        name: format!("Oversight and statistics, one call at a time ({walked} incoming pages walked)"),
        elapsed: started.elapsed(),
        ops: client.ops,
    };
    phase.print();
    if let Some(memory) = &memory {
        let (max_rss, hwm, _) = memory.finish();
        println!(
            "\nService memory: largest resident set sampled {max_rss:.1} MiB; high-water mark {}",
            hwm.map_or("-".into(), |m| format!("{m:.1} MiB"))
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), Some(50));
        assert_eq!(percentile(&values, 99.0), Some(99));
        assert_eq!(percentile(&values, 100.0), Some(100));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn the_recording_service_connects_through_the_proxy_without_tls() {
        assert_eq!(
            through_proxy("postgres://postgres@127.0.0.1:5432/nrm_bench", "127.0.0.1:4000"),
            Some((
                "127.0.0.1:5432".into(),
                "postgres://postgres@127.0.0.1:4000/nrm_bench?sslmode=disable".into()
            ))
        );
        assert_eq!(
            through_proxy("postgresql://u:p@db/x?application_name=a", "127.0.0.1:1"),
            Some((
                "db:5432".into(),
                "postgresql://u:p@127.0.0.1:1/x?application_name=a&sslmode=disable".into()
            ))
        );
    }
}

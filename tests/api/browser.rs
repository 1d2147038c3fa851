//! Browser tests: Debian's headless Chromium, driven by playwright-core from Node
//! (`web/tests/browser.mjs`), against the real service on SQLite and on PostgreSQL, with a
//! real OpenID provider (npm `oidc-provider`, `web/tests/oidc-provider.mjs`) on loopback.
//! axe-core runs on every page the script visits, in Dutch and English; screenshots go to
//! `target/browser/<backend>/` for review. `web/tests/setup.sh` installs what is missing.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::backend_test;
use crate::helpers::{Backend, manifest_dir, on};

pub const OIDC_CLIENT_ID: &str = "nrm-web";
pub const OIDC_CLIENT_SECRET: &str = "nrm-web-test-secret-0123456789abcdef";

/// Once per test binary: both backends' tests wait for the same install.
pub(crate) fn setup() {
    static SETUP: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let result = SETUP.get_or_init(|| {
        let output = Command::new("bash")
            .arg(manifest_dir().join("web/tests/setup.sh"))
            .output()
            .map_err(|e| format!("cannot run web/tests/setup.sh: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    });
    if let Err(problem) = result {
        panic!("the browser tests cannot run: {problem}");
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process killed when the test ends, pass or fail.
pub(crate) struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the OpenID provider and waits for its `OIDC_READY` line.
pub(crate) fn start_provider(port: u16, app_base: &str) -> Running {
    let mut child = Command::new("node")
        .current_dir(manifest_dir().join("web"))
        .args(["tests/oidc-provider.mjs", "--port", &port.to_string()])
        .args(["--redirect-uri", &format!("{app_base}/sign-in/callback")])
        .args(["--post-logout-redirect-uri", &format!("{app_base}/sign-in")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node starts the OpenID provider");
    let stdout = child.stdout.take().expect("provider stdout");
    let running = Running(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("OIDC_READY") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the OpenID provider said OIDC_READY within 30 s");
    running
}

fn name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

async fn whole_handover_in_the_browser(backend: Backend) {
    setup();
    let (app_port, provider_port) = (free_port(), free_port());
    let app_base = format!("http://127.0.0.1:{app_port}");
    let issuer = format!("http://127.0.0.1:{provider_port}");
    let base = app_base.clone();
    let Some(app) = on(backend, move |s| {
        s.server.bind = format!("127.0.0.1:{app_port}");
        // "Leave this page" goes somewhere on loopback: the test reaches no other host.
        s.web.information_point.leave_url = format!("{base}/health/live");
        s.notifications.public_base_url = base;
        s.web.oidc.issuer = issuer;
        s.web.oidc.client_id = OIDC_CLIENT_ID.into();
        s.web.oidc.client_secret = OIDC_CLIENT_SECRET.into();
    })
    .await
    else {
        return;
    };
    assert_eq!(app.address, app_base);
    // The focal point's admin has a webhook, so its pages show a subscription and its log
    // (to an endpoint on loopback, refused after resolution: nothing leaves the machine).
    let ops = app.token("admin-ops", "comensha", &["admin"]);
    app.post_ok(
        "/api/v1/webhooks",
        &ops,
        &serde_json::json!({"url": "https://localhost:9/nrm-hooks", "event_types": ["referral.received"]}),
        201,
    )
    .await;
    let _provider = start_provider(provider_port, &app_base);
    let out = manifest_dir().join(format!("target/browser/{}", name(backend)));
    // Only this run's screenshots, so the folder shows what was checked now.
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("screenshot folder");
    let started = Instant::now();
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .current_dir(manifest_dir().join("web"))
            .args(["tests/browser.mjs", "--base", &app_base, "--out"])
            .arg(&out)
            .args(["--oidc-login", "fier:caseworker"])
            .output()
            .expect("node runs the browser tests")
    })
    .await
    .expect("browser run");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    println!(
        "{stdout}\n(browser tests on {} took {:?})",
        name(backend),
        started.elapsed()
    );
    assert!(
        run.status.success(),
        "browser tests failed on {}:\n{stdout}\n{stderr}",
        name(backend)
    );
}
backend_test!(whole_handover_in_the_browser);

/// The audit page's alarm for a stalled sealer, in Chromium under axe-core, in Dutch and in
/// English: the test holds the sealer's leadership, so entries left waiting a minute stay
/// unsealed until the verification seals them (once per language, so each run sees some).
async fn the_sealing_alarm_in_the_browser(backend: Backend) {
    setup();
    let app_port = free_port();
    let app_base = format!("http://127.0.0.1:{app_port}");
    let held = std::sync::Arc::new(std::sync::Mutex::new(None));
    let holder = held.clone();
    let Some(app) = on(backend, move |s| {
        s.server.bind = format!("127.0.0.1:{app_port}");
        *holder.lock().unwrap() = Some(crate::helpers::hold_leadership(
            s,
            nrm::db::leader::SingletonTask::Sealer,
        ));
    })
    .await
    else {
        return;
    };
    let out = manifest_dir().join(format!("target/browser/{}-sealing", name(backend)));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("screenshot folder");
    for lang in ["nl", "en"] {
        crate::helpers::stale_audit_entries(&app, 2);
        let (base, out) = (app_base.clone(), out.clone());
        let run = tokio::task::spawn_blocking(move || {
            Command::new("node")
                .current_dir(manifest_dir().join("web"))
                .args(["tests/browser.mjs", "--base", &base, "--out"])
                .arg(&out)
                .args(["--only", "sealing", "--langs", lang])
                .output()
                .expect("node runs the browser tests")
        })
        .await
        .expect("browser run");
        let stdout = String::from_utf8_lossy(&run.stdout);
        println!("{stdout}");
        assert!(
            run.status.success(),
            "the sealing alarm in {lang} on {}:\n{stdout}\n{}",
            name(backend),
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(stdout.contains("1 pages checked with axe, 0 failure(s)"), "{stdout}");
    }
    drop(held);
}
backend_test!(the_sealing_alarm_in_the_browser);

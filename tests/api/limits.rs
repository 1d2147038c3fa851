//! What a flood cannot do: fill the rate limiter, hold connections with slow bodies, or
//! starve the health check. Real sockets from other loopback addresses play the attacker.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use serde_json::Value;

use crate::helpers::{Backend, TestApp, on};

/// A client whose requests come from `source` (any 127.x.y.z is this machine).
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn connect_from(source: &str, app: &TestApp) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source.parse().unwrap(), 0)).unwrap();
    socket
        .connect(SocketAddr::new("127.0.0.1".parse().unwrap(), app.port))
        .await
        .unwrap()
}

async fn a_flood_of_random_tokens_costs_only_its_own_address(backend: Backend) {
    let Some(app) = on(backend, |s| {
        s.rate_limit.per_token_per_minute = 50;
        s.rate_limit.per_address_per_minute = 30;
    })
    .await
    else {
        return;
    };
    let attacker = client_from("127.0.0.2");
    let mut statuses = Vec::new();
    for n in 0..40 {
        let response = attacker
            .get(app.url("/api/v1/organisations"))
            .header("Authorization", format!("Bearer random-{n}-{}", uuid::Uuid::now_v7()))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 30, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 10, "{statuses:?}");
    // The legitimate caller on another address is untouched.
    let token = app.token("anna", "fier", &["caseworker"]);
    let ok = client_from("127.0.0.1")
        .get(app.url("/api/v1/organisations"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}
crate::backend_test!(a_flood_of_random_tokens_costs_only_its_own_address);

async fn forwarded_addresses_count_only_behind_a_trusted_proxy(backend: Backend) {
    let Some(app) = on(backend, |s| {
        s.rate_limit.per_address_per_minute = 3;
        s.server.trusted_proxies = vec!["127.0.0.4".into()];
    })
    .await
    else {
        return;
    };
    let token = app.token("anna", "fier", &["caseworker"]);
    let get = |client: reqwest::Client, forwarded_for: &'static str| {
        let url = app.url("/api/v1/organisations");
        let token = token.clone();
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .header("X-Forwarded-For", forwarded_for)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Behind the trusted proxy, each forwarded client has its own three a minute.
    let proxy = client_from("127.0.0.4");
    for client in ["203.0.113.1", "203.0.113.2"] {
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(get(proxy.clone(), client).await);
        }
        assert_eq!(statuses, vec![200, 200, 200, 429], "{client}");
    }
    // Anyone else's header is ignored: a new address each time buys nothing.
    let untrusted = client_from("127.0.0.5");
    let mut statuses = Vec::new();
    for forwarded in ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"] {
        statuses.push(get(untrusted.clone(), forwarded).await);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);
}
crate::backend_test!(forwarded_addresses_count_only_behind_a_trusted_proxy);

/// Sends a valid head announcing a 60,000-byte body, then one byte at a time.
async fn trickle(mut stream: TcpStream, token: String) -> (u16, Duration) {
    let started = Instant::now();
    let head = format!(
        "POST /api/v1/cases HTTP/1.1\r\nHost: nrm\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            },
            _ = tokio::time::sleep(Duration::from_millis(300)) => {
                if stream.write_all(b" ").await.is_err() {
                    break;
                }
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the connection was never closed"
        );
    }
    let text = String::from_utf8_lossy(&answer);
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, started.elapsed())
}

async fn slow_bodies_cannot_hold_the_server(backend: Backend) {
    let Some(app) = on(backend, |s| {
        s.server.body_read_timeout = "1s".into();
        s.server.max_connections_per_address = 8;
    })
    .await
    else {
        return;
    };
    let token = app.token("anna", "fier", &["caseworker"]);
    let mut attackers = Vec::new();
    for _ in 0..20 {
        let stream = connect_from("127.0.0.3", &app).await;
        attackers.push(tokio::spawn(trickle(stream, token.clone())));
    }
    // Meanwhile the service answers everyone else at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let live = app.client.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    let mut statuses = Vec::new();
    for attacker in attackers {
        let (status, took) = attacker.await.unwrap();
        assert!(
            took < Duration::from_secs(5),
            "closed within the body timeout: {took:?}"
        );
        statuses.push(status);
    }
    statuses.sort();
    assert_eq!(
        statuses,
        [vec![408; 8], vec![429; 12]].concat(),
        "8 connections read until the timeout, the rest refused at once"
    );
    // Their slots are free again: the address may connect as before.
    let again = client_from("127.0.0.3")
        .get(app.url("/api/v1/organisations"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    // A chunked body that never ends is cut off the same way.
    let mut stream = connect_from("127.0.0.3", &app).await;
    let head = format!(
        "POST /api/v1/cases HTTP/1.1\r\nHost: nrm\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{{\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if stream.write_all(b"1\r\n \r\n").await.is_err() {
                    break;
                }
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the chunked connection was never closed: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("in time"), "{text}");
}
crate::backend_test!(slow_bodies_cannot_hold_the_server);

/// `nrm serve` as a process with JSON logs at `RUST_LOG=info,nrm::auth=debug`; returns the
/// child and its base URL once it is ready.
async fn serve_logging(database_url: &str) -> (std::process::Child, String, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_nrm"))
        .current_dir(crate::helpers::manifest_dir())
        .env("RUST_LOG", "info,nrm::auth=debug")
        .env("NRM__LOG__FORMAT", "json")
        .env("NRM__LOG__PROTOCOL_ERRORS_EVERY", "1s")
        .env("NRM__JWT__HS256_SECRET", crate::helpers::TEST_HS256_SECRET)
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            database_url,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{base}/health/ready"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, base, port)
}

async fn noise_from_the_internet_stays_out_of_the_error_log(backend: Backend) {
    use std::io::Read;
    let (database_url, _guard) = crate::helpers::fresh_database(backend);
    let (mut child, base, port) = serve_logging(&database_url).await;
    // Not HTTP at all, and broken heads.
    for garbage in [
        &b"BLAH\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET /api/v1/cases/\xff HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(garbage).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer)).await;
        assert!(
            answer.starts_with(b"HTTP/1.1 400"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    // Unauthenticated requests with bad tokens, and tokens whose claims hold text a
    // person may have typed.
    let client = reqwest::Client::new();
    let secret = crate::helpers::TEST_HS256_SECRET;
    let mut odd = crate::helpers::claims("Geheime Naam", "fier", &["caseworker"]);
    odd["exp"] = serde_json::json!("Jan Jansen");
    let mut expired = crate::helpers::claims("anna", "fier", &["caseworker"]);
    expired["exp"] = serde_json::json!(crate::helpers::now_unix() - 3600);
    let mut other_audience = crate::helpers::claims("anna", "fier", &["caseworker"]);
    other_audience["aud"] = serde_json::json!(["account"]);
    let tokens = [
        "random-garbage".to_string(),
        crate::helpers::sign_hs256(&odd, secret, None),
        crate::helpers::sign_hs256(&expired, secret, None),
        crate::helpers::sign_hs256(&other_audience, secret, None),
    ];
    for token in &tokens {
        let response = client
            .post(format!("{base}/api/v1/cases"))
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Bearer error=\"invalid_token\"");
    }
    let anonymous = client.get(format!("{base}/api/v1/cases")).send().await.unwrap();
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Bearer",
        "no error code without a token"
    );
    // A signed-in caller's refused request is still logged at INFO.
    let valid = crate::helpers::sign_hs256(&crate::helpers::claims("anna", "fier", &["intake"]), secret, None);
    let refused = client
        .get(format!("{base}/api/v1/cases"))
        .bearer_auth(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = child.kill();
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    let _ = child.wait();
    let lines: Vec<Value> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(lines.len() > 5, "{log}");
    let errors: Vec<&Value> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert!(errors.is_empty(), "noise logged as errors: {errors:?}");
    let summaries: Vec<&Value> = lines
        .iter()
        .filter(|l| l["level"] == "WARN" && l["message"].as_str().unwrap_or("").contains("protocol error"))
        .collect();
    assert_eq!(summaries.len(), 1, "{log}");
    assert_eq!(summaries[0]["count"], 3);
    let handled: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request handled").collect();
    assert!(
        handled.iter().all(|l| l["status"] != 401),
        "anonymous refusals stay below INFO: {handled:?}"
    );
    assert!(
        handled.iter().any(|l| l["status"] == 403),
        "a signed-in caller's refusal is logged"
    );
    let checks: Vec<&str> = lines
        .iter()
        .filter(|l| l["message"] == "authentication failed")
        .filter_map(|l| l["check"].as_str())
        .collect();
    assert_eq!(
        checks,
        vec![
            "malformed token",
            "malformed token",
            "expired",
            "audience not accepted",
            "no bearer token"
        ],
        "the log says which check failed"
    );
    for secret_text in [
        "Jan Jansen",
        "Geheime Naam",
        "random-garbage",
        &tokens[2][tokens[2].len() - 16..],
    ] {
        assert!(!log.contains(secret_text), "`{secret_text}` reached the log");
    }
}
crate::backend_test!(noise_from_the_internet_stays_out_of_the_error_log);

//! The webhook delivery worker: claims due deliveries, signs each attempt as the Standard
//! Webhooks specification says, posts it, and records what came back.
//!
//! Outbound safety: the endpoint must be https (plain http only to a listed address), every
//! address a host name resolves to is checked before connecting (the resolver below is the
//! only one the client has, so no second lookup can bring another answer), redirects are not
//! followed, each attempt has a short timeout, and response bodies are never read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::clock::SharedClock;
use crate::config::{Settings, parse_duration};
use crate::crypto::Keyring;
use crate::db::audit::{self, NewAuditEntry};
use crate::db::webhooks::{self as rows, After, Attempt, DeliveryRow, SubscriptionRow};
use crate::db::{Db, DbError, Instant, write_transaction};
use crate::domain::notification::retry_delay;
use crate::domain::webhook::{
    AddressRange, DisabledReason, SubscriptionStatus, Verdict, check_endpoint, failing_too_long, may_connect,
    secret_key, signature_header, verdict,
};

use super::Notifier;
use super::worker::DeliveryError;

/// The sealed field of a subscription's secrets.
pub const SECRET_FIELD: &str = "webhook_subscriptions.secret";

/// Deliveries claimed per round; `webhooks.lease` must stay above this × `webhooks.timeout`.
const CLAIM_BATCH: i64 = 10;

/// Resolves host names to the addresses a delivery may reach, and no others.
struct GuardedResolver {
    allowed: Arc<Vec<AddressRange>>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = Arc::clone(&self.allowed);
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let reachable: Vec<SocketAddr> = found.into_iter().filter(|a| may_connect(a.ip(), &allowed)).collect();
            if reachable.is_empty() {
                return Err("the host resolves to no address deliveries may reach".into());
            }
            Ok(Box::new(reachable.into_iter()) as Addrs)
        })
    }
}

/// The worker's settings and client, built once.
#[derive(Clone)]
pub struct WebhookDelivery {
    pub poll_interval: StdDuration,
    lease: chrono::Duration,
    retry_base: chrono::Duration,
    retry_max: chrono::Duration,
    disable_after: chrono::Duration,
    allowed: Arc<Vec<AddressRange>>,
    client: reqwest::Client,
    keyring: Arc<Keyring>,
    notifier: Notifier,
}

fn duration(setting: &'static str, text: &str) -> Result<StdDuration, DeliveryError> {
    parse_duration(text).map_err(|problem| DeliveryError::Config { setting, problem })
}

fn chrono_duration(setting: &'static str, text: &str) -> Result<chrono::Duration, DeliveryError> {
    chrono::Duration::from_std(duration(setting, text)?).map_err(|e| DeliveryError::Config {
        setting,
        problem: e.to_string(),
    })
}

/// The address ranges of `webhooks.allowed_addresses` (checked by `Settings::check`).
pub fn allowed_addresses(settings: &Settings) -> Vec<AddressRange> {
    settings
        .webhooks
        .allowed_addresses
        .iter()
        .filter_map(|a| AddressRange::parse(a))
        .collect()
}

impl WebhookDelivery {
    pub fn from_settings(
        settings: &Settings,
        keyring: Arc<Keyring>,
        notifier: Notifier,
    ) -> Result<Self, DeliveryError> {
        let w = &settings.webhooks;
        let allowed = Arc::new(allowed_addresses(settings));
        let timeout = duration("webhooks.timeout", &w.timeout)?;
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver {
                allowed: Arc::clone(&allowed),
            })
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout.min(StdDuration::from_secs(5)))
            .user_agent(concat!("nrm-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DeliveryError::Config {
                setting: "webhooks",
                problem: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            poll_interval: duration("webhooks.poll_interval", &w.poll_interval)?,
            lease: chrono_duration("webhooks.lease", &w.lease)?,
            retry_base: chrono_duration("webhooks.retry_base", &w.retry_base)?,
            retry_max: chrono_duration("webhooks.retry_max", &w.retry_max)?,
            disable_after: chrono_duration("webhooks.disable_after", &w.disable_after)?,
            allowed,
            client,
            keyring,
            notifier,
        })
    }

    /// The keys that sign now: the current secret, and the previous one during its overlap.
    fn keys(&self, subscription: &SubscriptionRow, now: Instant) -> Result<Vec<Vec<u8>>, String> {
        let open = |sealed: &str| {
            self.keyring
                .open(SECRET_FIELD, subscription.id, sealed)
                .ok()
                .and_then(|text| secret_key(&text))
                .ok_or_else(|| "the signing secret could not be opened: check [crypto] keys".to_string())
        };
        let mut keys = vec![open(&subscription.secret)?];
        if let (Some(previous), Some(until)) = (&subscription.previous_secret, subscription.previous_secret_until)
            && until.0 > now.0
        {
            keys.push(open(previous)?);
        }
        Ok(keys)
    }

    /// One attempt: status (if an answer came), latency, and a short error otherwise.
    async fn attempt(&self, subscription: &SubscriptionRow, delivery: &DeliveryRow, now: Instant) -> Attempt {
        let started = std::time::Instant::now();
        let result = self.post(subscription, delivery, now).await;
        let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        let at = now;
        match result {
            Ok(status) => Attempt {
                status: Some(i32::from(status)),
                latency_ms,
                error: None,
                at,
            },
            Err(error) => Attempt {
                status: None,
                latency_ms,
                error: Some(error),
                at,
            },
        }
    }

    async fn post(&self, subscription: &SubscriptionRow, delivery: &DeliveryRow, now: Instant) -> Result<u16, String> {
        // Checked again at each attempt: the configuration may have changed since.
        let url = check_endpoint(&subscription.url, &self.allowed).map_err(|e| format!("endpoint refused: {e}"))?;
        let keys = self.keys(subscription, now)?;
        let key_refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        // The attempt's own wall-clock time: receivers check it against theirs.
        let timestamp = chrono::Utc::now().timestamp();
        let id = delivery.id.0.to_string();
        let signature = signature_header(&key_refs, &id, timestamp, &delivery.body);
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.body.clone())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        // The body is not read: nothing a receiver says is stored.
        Ok(response.status().as_u16())
    }
}

/// A short, content-free description of a failed request.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_redirect() {
        "redirect not followed"
    } else {
        "request failed"
    };
    // The source chain says why (refused, DNS, TLS) without any content of the request.
    let mut cause = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    let text = if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    };
    text.chars().take(300).collect()
}

/// A random number in [0, 1) for jitter.
fn jitter() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

/// One round: claim due deliveries and attempt each once. Returns how many were delivered.
pub async fn deliver_once(
    db: &Db,
    clock: &SharedClock,
    delivery: &WebhookDelivery,
    worker: &str,
) -> Result<usize, DbError> {
    let now = Instant::from_utc(clock.now());
    let lease_until = Instant::from_utc(now.0 + delivery.lease);
    let worker_name = worker.to_string();
    let claimed = db
        .run(move |conn| rows::claim(conn, &worker_name, now, lease_until, CLAIM_BATCH).map_err(DbError::from))
        .await?;
    let mut delivered = 0;
    for row in claimed {
        let subscription_id = row.subscription_id;
        let Some(subscription) = db
            .run(move |conn| rows::subscription(conn, subscription_id).map_err(DbError::from))
            .await?
        else {
            continue;
        };
        let attempt = delivery.attempt(&subscription, &row, now).await;
        let now = Instant::from_utc(clock.now());
        let outcome = verdict(attempt.status.and_then(|s| u16::try_from(s).ok()));
        if outcome == Verdict::Delivered {
            delivered += 1;
        } else {
            tracing::warn!(
                delivery = %row.id.0,
                subscription = %subscription.id.0,
                status = ?attempt.status,
                error = attempt.error.as_deref().unwrap_or(""),
                "webhook not delivered"
            );
        }
        let (worker, settings) = (worker.to_string(), delivery.clone());
        db.run(move |conn| {
            write_transaction(conn, |conn| {
                record(conn, &settings, &subscription, &row, &worker, &attempt, outcome, now)
            })
        })
        .await?;
    }
    Ok(delivered)
}

/// Writes an attempt's outcome, and what it means for the subscription, in one transaction.
#[allow(clippy::too_many_arguments)]
fn record(
    conn: &mut crate::db::AnyConnection,
    settings: &WebhookDelivery,
    subscription: &SubscriptionRow,
    row: &DeliveryRow,
    worker: &str,
    attempt: &Attempt,
    outcome: Verdict,
    now: Instant,
) -> Result<(), DbError> {
    // Re-read: a pause, rotation or another worker's failure may have changed it meanwhile.
    let Some(mut current) = rows::subscription(conn, subscription.id)? else {
        return Ok(());
    };
    let failing_since = current.failing_since.unwrap_or(now);
    let disable = match outcome {
        Verdict::Delivered => None,
        Verdict::Gone => Some(DisabledReason::Gone),
        Verdict::Retry if failing_too_long(Some(failing_since.0), now.0, settings.disable_after) => {
            Some(DisabledReason::Failing)
        }
        Verdict::Retry => None,
    };
    let after = match (outcome, disable) {
        (Verdict::Delivered, _) => After::Delivered,
        (_, Some(_)) => After::Failed,
        _ => {
            let n = u32::try_from(row.attempts).unwrap_or(0) + 1;
            After::RetryAt(Instant::from_utc(
                now.0 + retry_delay(n, settings.retry_base, settings.retry_max, jitter()),
            ))
        }
    };
    if !rows::record_attempt(conn, row.id, worker, attempt, after)? {
        // Another worker took it over after our lease ran out: its record stands.
        return Ok(());
    }
    match (outcome, disable) {
        (Verdict::Delivered, _) if current.failing_since.is_some() => {
            current.failing_since = None;
            current.updated_at = now;
            rows::save_subscription(conn, &current)?;
        }
        (_, Some(reason)) if current.status != SubscriptionStatus::Disabled.as_str() => {
            current.status = SubscriptionStatus::Disabled.as_str().into();
            current.disabled_reason = Some(reason.as_str().into());
            current.failing_since = Some(failing_since);
            current.updated_at = now;
            rows::save_subscription(conn, &current)?;
            rows::fail_pending(conn, current.id, "endpoint disabled")?;
            settings
                .notifier
                .webhook_disabled(conn, &current, reason.as_str(), now)?;
            let entry = NewAuditEntry::new(
                "webhook.disable",
                "webhook_subscription",
                current.id.0.to_string(),
                None,
                reason.as_str(),
            );
            audit::append(conn, &entry, now)?;
        }
        (Verdict::Retry, None) if current.failing_since.is_none() => {
            current.failing_since = Some(now);
            rows::save_subscription(conn, &current)?;
        }
        _ => {}
    }
    Ok(())
}

/// Runs until the process ends.
pub async fn run(db: Db, clock: SharedClock, delivery: WebhookDelivery, worker: String) {
    let poll = delivery.poll_interval;
    super::keep_delivering("webhook", poll, move || {
        let (db, clock, delivery, worker) = (db.clone(), clock.clone(), delivery.clone(), worker.clone());
        async move { deliver_once(&db, &clock, &delivery, &worker).await }
    })
    .await
}

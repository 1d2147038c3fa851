//! The delivery worker: claims due messages from the outbox, sends them over SMTP, and
//! records the result. Failures retry with exponential backoff and jitter; after the
//! maximum number of attempts a message is `dead`.

use std::time::Duration as StdDuration;

use lettre::message::SinglePart;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::clock::SharedClock;
use crate::config::{Settings, SmtpTls, parse_duration};
use crate::db::outbox::{self, NotificationRow};
use crate::db::{Db, DbError, Instant};
use crate::domain::notification::retry_delay;

/// The worker's settings, parsed once.
#[derive(Clone)]
pub struct Delivery {
    pub poll_interval: StdDuration,
    pub lease: chrono::Duration,
    pub retry_base: chrono::Duration,
    pub retry_max: chrono::Duration,
    pub max_attempts: u32,
    pub from: String,
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{setting}: {problem}")]
    Config { setting: &'static str, problem: String },
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

impl Delivery {
    pub fn from_settings(settings: &Settings) -> Result<Self, DeliveryError> {
        let n = &settings.notifications;
        let smtp = &settings.smtp;
        let transport = if smtp.host.trim().is_empty() {
            None
        } else {
            let builder = match smtp.tls {
                SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
                SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host).map_err(|e| {
                    DeliveryError::Config {
                        setting: "smtp.host",
                        problem: e.to_string(),
                    }
                })?,
                SmtpTls::Tls => {
                    AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).map_err(|e| DeliveryError::Config {
                        setting: "smtp.host",
                        problem: e.to_string(),
                    })?
                }
            };
            let mut builder = builder
                .port(smtp.port)
                .timeout(Some(duration("smtp.timeout", &smtp.timeout)?));
            if !smtp.username.is_empty() {
                builder = builder.credentials(Credentials::new(smtp.username.clone(), smtp.password.clone()));
            }
            Some(builder.build())
        };
        smtp.from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| DeliveryError::Config {
                setting: "smtp.from",
                problem: e.to_string(),
            })?;
        Ok(Self {
            poll_interval: duration("notifications.poll_interval", &n.poll_interval)?,
            lease: chrono_duration("notifications.lease", &n.lease)?,
            retry_base: chrono_duration("notifications.retry_base", &n.retry_base)?,
            retry_max: chrono_duration("notifications.retry_max", &n.retry_max)?,
            max_attempts: n.max_attempts,
            from: smtp.from.clone(),
            transport,
        })
    }

    pub fn configured(&self) -> bool {
        self.transport.is_some()
    }

    async fn send(&self, row: &NotificationRow) -> Result<(), String> {
        let transport = self.transport.as_ref().ok_or("no SMTP host configured")?;
        let message = Message::builder()
            .from(
                self.from
                    .parse()
                    .map_err(|e: lettre::address::AddressError| e.to_string())?,
            )
            .to(row
                .recipient
                .parse()
                .map_err(|e: lettre::address::AddressError| e.to_string())?)
            .subject(row.subject.clone())
            // text/plain UTF-8; lettre picks a transfer encoding that survives every relay.
            .singlepart(SinglePart::plain(row.body.clone()))
            .map_err(|e| e.to_string())?;
        transport.send(message).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// A random number in [0, 1) for jitter, from the OS random source behind UUIDv4.
fn jitter() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

/// Messages claimed per round. With `smtp.timeout` per message, a round takes at most
/// CLAIM_BATCH × timeout; `notifications.lease` must stay above that, or another instance may
/// claim the rest and send them again.
const CLAIM_BATCH: i64 = 5;

/// One round: claim due messages and try each once. Returns how many were sent.
pub async fn deliver_once(db: &Db, clock: &SharedClock, delivery: &Delivery, worker: &str) -> Result<usize, DbError> {
    let now = Instant::from_utc(clock.now());
    let lease_until = Instant::from_utc(now.0 + delivery.lease);
    let worker_name = worker.to_string();
    let claimed = db
        .run(move |conn| outbox::claim(conn, &worker_name, now, lease_until, CLAIM_BATCH).map_err(DbError::from))
        .await?;
    let mut sent = 0;
    for row in claimed {
        let result = delivery.send(&row).await;
        let now = Instant::from_utc(clock.now());
        let worker_name = worker.to_string();
        match result {
            Ok(()) => {
                sent += 1;
                db.run(move |conn| outbox::mark_sent(conn, row.id, &worker_name, now).map_err(DbError::from))
                    .await?;
            }
            Err(error) => {
                let attempt = u32::try_from(row.attempts).unwrap_or(0) + 1;
                let dead = attempt >= delivery.max_attempts;
                let next =
                    Instant::from_utc(now.0 + retry_delay(attempt, delivery.retry_base, delivery.retry_max, jitter()));
                // The error is the SMTP server's or the network's; it holds no message content.
                let error: String = error.chars().take(500).collect();
                tracing::warn!(notification = %row.id.0, attempt, dead, error = %error, "notification not delivered");
                db.run(move |conn| {
                    outbox::mark_failed(conn, row.id, &worker_name, &error, next, dead).map_err(DbError::from)
                })
                .await?;
            }
        }
    }
    Ok(sent)
}

/// Runs until the process ends.
pub async fn run(db: Db, clock: SharedClock, delivery: Delivery, worker: String) {
    if !delivery.configured() {
        tracing::warn!("no [smtp] host configured: notifications stay queued until one is set");
        return std::future::pending().await;
    }
    let poll = delivery.poll_interval;
    super::keep_delivering("e-mail", poll, move || {
        let (db, clock, delivery, worker) = (db.clone(), clock.clone(), delivery.clone(), worker.clone());
        async move { deliver_once(&db, &clock, &delivery, &worker).await }
    })
    .await
}

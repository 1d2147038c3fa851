//! Settings: `config/default.toml` (compiled in) → `--config` files → `DATABASE_URL` →
//! `NRM__SECTION__KEY` environment variables → command-line flags.
//!
//! This module only reads and checks configuration; it opens no connection and reads no key
//! file. Every setting has a safe default in `config/default.toml`, which is the single place
//! that documents them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The defaults, compiled in so a lone binary behaves like a checkout.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub environment: Environment,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub jwt: JwtSettings,
    pub cases: CaseSettings,
    pub deadlines: DeadlineSettings,
    pub stats: StatsSettings,
    pub notifications: NotificationSettings,
    pub webhooks: WebhookSettings,
    pub smtp: SmtpSettings,
    pub crypto: CryptoSettings,
    pub retention: RetentionSettings,
    pub rate_limit: RateLimitSettings,
    pub registry: RegistrySettings,
    pub log: LogSettings,
    pub web: WebSettings,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    pub workers: usize,
    pub body_limit_bytes: usize,
    /// How long a request body may take to arrive whole (e.g. `5s`).
    pub body_read_timeout: String,
    /// Open connections one address may hold; 0 = no cap.
    pub max_connections_per_address: u32,
    /// Proxies (addresses or CIDR networks) whose `Forwarded` / `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// How long an Idempotency-Key is remembered (e.g. `7d`).
    pub idempotency_key_ttl: String,
    /// How often expired sessions and idempotency keys are removed.
    pub housekeeping_interval: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub pool_size: u32,
    pub pool_timeout_seconds: u64,
    pub sqlite_busy_timeout_ms: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    pub algorithms: Vec<String>,
    pub leeway_seconds: u64,
    pub hs256_secret: String,
    pub hs256_kid: String,
    pub public_keys: Vec<PublicKeySettings>,
    pub jwks_url: String,
    pub jwks_file: String,
    pub jwks_refresh_min_seconds: u64,
    /// How often the JWKS document is re-read anyway, so a key the identity provider
    /// removed stops being accepted (e.g. `10m`).
    pub jwks_refresh_every: String,
    pub default_token_ttl: String,
    /// The systems of organisations that act with client-credentials tokens.
    pub machine_clients: Vec<MachineClientSettings>,
}

/// One machine client: its OAuth client id at the identity provider, the organisation it
/// belongs to, and the most its tokens may do (`nrm:case.open`, ...). A token's scopes
/// beyond these are ignored.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MachineClientSettings {
    pub client_id: String,
    pub organisation: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeySettings {
    pub kid: String,
    pub algorithm: String,
    pub pem_file: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSettings {
    pub reflection_period_days: u32,
    pub page_size_default: i64,
    pub page_size_max: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StepLimits {
    pub acknowledge: String,
    pub decide: String,
    pub start_care: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlineSettings {
    pub routine: StepLimits,
    pub urgent: StepLimits,
    pub acute: StepLimits,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    pub public_base_url: String,
    pub poll_interval: String,
    pub lease: String,
    pub retry_base: String,
    pub retry_max: String,
    pub max_attempts: u32,
    pub deadline_check_interval: String,
}

/// Webhook delivery (docs/integration.md §2).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    pub poll_interval: String,
    pub lease: String,
    /// The whole of one attempt: connect, send, answer.
    pub timeout: String,
    pub retry_base: String,
    pub retry_max: String,
    /// A subscription whose every attempt failed for this long is disabled.
    pub disable_after: String,
    /// The longest overlap a secret rotation may give the previous secret.
    pub max_rotation_overlap: String,
    /// Addresses or ranges deliveries may reach although they are not public (a partner's
    /// private link; tests list loopback). Plain http is allowed to these only.
    pub allowed_addresses: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: String,
    pub password: String,
    pub from: String,
    pub timeout: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CryptoKey {
    pub id: String,
    pub key: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CryptoSettings {
    pub keys: Vec<CryptoKey>,
    pub current_key: String,
    pub blind_index_key: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    pub identifying_details_after: String,
    pub free_text_after: String,
    pub check_interval: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub per_token_per_minute: u32,
    pub per_address_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StatsSettings {
    pub min_cell: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    pub organisations_file: PathBuf,
    pub routing_file: PathBuf,
}

/// The web pages: sessions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    pub session_idle_timeout: String,
    pub session_absolute_timeout: String,
    pub oidc: OidcSettings,
    pub information_point: InformationPointSettings,
}

/// The public information point (`/hulp`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InformationPointSettings {
    /// Where "leave this page" (and the Escape key) goes: a neutral site.
    pub leave_url: String,
}

/// Signing in to the pages at the organisations' OpenID Connect provider. An empty issuer
/// turns it off. The redirect URI is `notifications.public_base_url` + `/sign-in/callback`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
}

impl OidcSettings {
    pub fn enabled(&self) -> bool {
        !self.issuer.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
    /// How often client protocol errors are summed up in one WARN (e.g. `1m`).
    pub protocol_errors_every: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(Box<figment::Error>),
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("configuration: {setting} {problem}")]
    Invalid { setting: &'static str, problem: String },
}

impl Settings {
    /// Loads the layered configuration. `extra_files` are the `--config` files in order.
    pub fn load(extra_files: &[PathBuf]) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        for file in extra_files {
            if !file.exists() {
                return Err(ConfigError::MissingFile(file.clone()));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment
            .merge(Env::raw().only(&["DATABASE_URL"]).map(|_| "database.url".into()))
            .merge(Env::prefixed("NRM__").split("__"));
        let mut settings: Settings = figment.extract().map_err(|e| ConfigError::Load(Box::new(e)))?;
        // A relative file named in a configuration file is found beside that file, so a
        // deployment's config folder works from any working directory. Relative paths from
        // the built-in defaults or the environment stay relative to the working directory.
        for (key, path) in [
            ("registry.organisations_file", &mut settings.registry.organisations_file),
            ("registry.routing_file", &mut settings.registry.routing_file),
        ] {
            if path.is_relative()
                && let Some(metadata) = figment.find_metadata(key)
                && let Some(figment::Source::File(file)) = &metadata.source
                && let Some(folder) = file.parent()
            {
                *path = folder.join(&*path);
            }
        }
        settings.check()?;
        Ok(settings)
    }

    /// The compiled-in defaults alone: for tests that then adjust single fields.
    pub fn defaults() -> Result<Self, ConfigError> {
        Figment::from(Toml::string(DEFAULT_TOML))
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))
    }

    /// Re-reads settings after a programmatic change, as a figment layer (used by flags).
    pub fn with_override<T: Serialize>(self, key: &str, value: T) -> Result<Self, ConfigError> {
        Figment::from(Serialized::defaults(self))
            .merge(Serialized::global(key, value))
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.database.pool_size == 0 {
            return Err(ConfigError::Invalid {
                setting: "database.pool_size",
                problem: "must be at least 1".into(),
            });
        }
        if self.server.body_limit_bytes < 1024 {
            return Err(ConfigError::Invalid {
                setting: "server.body_limit_bytes",
                problem: "must be at least 1024".into(),
            });
        }
        if !(1..=1000).contains(&self.cases.page_size_max)
            || !(1..=self.cases.page_size_max).contains(&self.cases.page_size_default)
        {
            return Err(ConfigError::Invalid {
                setting: "cases.page_size_default",
                problem: "must be between 1 and cases.page_size_max (at most 1000)".into(),
            });
        }
        self.deadline_limits()?;
        for (setting, text) in [
            ("notifications.poll_interval", &self.notifications.poll_interval),
            ("notifications.lease", &self.notifications.lease),
            ("notifications.retry_base", &self.notifications.retry_base),
            ("notifications.retry_max", &self.notifications.retry_max),
            (
                "notifications.deadline_check_interval",
                &self.notifications.deadline_check_interval,
            ),
            ("smtp.timeout", &self.smtp.timeout),
            (
                "retention.identifying_details_after",
                &self.retention.identifying_details_after,
            ),
            ("retention.free_text_after", &self.retention.free_text_after),
            ("retention.check_interval", &self.retention.check_interval),
        ] {
            parse_duration(text).map_err(|problem| ConfigError::Invalid { setting, problem })?;
        }
        let lease = parse_duration(&self.notifications.lease).unwrap_or_default();
        let smtp_timeout = parse_duration(&self.smtp.timeout).unwrap_or_default();
        if lease <= smtp_timeout * 5 {
            return Err(ConfigError::Invalid {
                setting: "notifications.lease",
                problem: "must be longer than 5 × smtp.timeout, or a slow relay could see mails sent twice".into(),
            });
        }
        let oidc = &self.web.oidc;
        if oidc.enabled() {
            let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
            if !(oidc.issuer.starts_with("https://") || loopback.iter().any(|p| oidc.issuer.starts_with(p))) {
                return Err(ConfigError::Invalid {
                    setting: "web.oidc.issuer",
                    problem: "must be an https:// URL (plain http only on a loopback address)".into(),
                });
            }
            if oidc.client_id.is_empty() || oidc.client_secret.is_empty() {
                return Err(ConfigError::Invalid {
                    setting: "web.oidc.client_id",
                    problem: "an issuer needs web.oidc.client_id and web.oidc.client_secret".into(),
                });
            }
            if !oidc.scopes.iter().any(|s| s == "openid") {
                return Err(ConfigError::Invalid {
                    setting: "web.oidc.scopes",
                    problem: "must include `openid`".into(),
                });
            }
        }
        let leave = &self.web.information_point.leave_url;
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
        if !(leave.starts_with("https://") || loopback.iter().any(|p| leave.starts_with(p)))
            || leave
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>'))
        {
            return Err(ConfigError::Invalid {
                setting: "web.information_point.leave_url",
                problem: "must be an https:// URL (plain http only on a loopback address)".into(),
            });
        }
        if self.notifications.max_attempts == 0 {
            return Err(ConfigError::Invalid {
                setting: "notifications.max_attempts",
                problem: "must be at least 1".into(),
            });
        }
        if !(self.notifications.public_base_url.starts_with("https://")
            || self.notifications.public_base_url.starts_with("http://"))
        {
            return Err(ConfigError::Invalid {
                setting: "notifications.public_base_url",
                problem: "must be an http:// or https:// URL".into(),
            });
        }
        parse_duration(&self.jwt.default_token_ttl).map_err(|problem| ConfigError::Invalid {
            setting: "jwt.default_token_ttl",
            problem,
        })?;
        for (setting, text) in [
            ("server.idempotency_key_ttl", &self.server.idempotency_key_ttl),
            ("server.housekeeping_interval", &self.server.housekeeping_interval),
            ("jwt.jwks_refresh_every", &self.jwt.jwks_refresh_every),
        ] {
            parse_duration(text).map_err(|problem| ConfigError::Invalid { setting, problem })?;
        }
        let w = &self.webhooks;
        for (setting, text) in [
            ("webhooks.poll_interval", &w.poll_interval),
            ("webhooks.lease", &w.lease),
            ("webhooks.timeout", &w.timeout),
            ("webhooks.retry_base", &w.retry_base),
            ("webhooks.retry_max", &w.retry_max),
            ("webhooks.disable_after", &w.disable_after),
            ("webhooks.max_rotation_overlap", &w.max_rotation_overlap),
        ] {
            parse_duration(text).map_err(|problem| ConfigError::Invalid { setting, problem })?;
        }
        if let Some(bad) = w
            .allowed_addresses
            .iter()
            .find(|a| crate::domain::webhook::AddressRange::parse(a).is_none())
        {
            return Err(ConfigError::Invalid {
                setting: "webhooks.allowed_addresses",
                problem: format!("`{bad}` is not an address or range such as 10.20.0.0/16"),
            });
        }
        for client in &self.jwt.machine_clients {
            let known = crate::domain::access::Scope::ALL.map(|s| s.as_str()).join(", ");
            if client.client_id.trim().is_empty() {
                return Err(ConfigError::Invalid {
                    setting: "jwt.machine_clients",
                    problem: "a client_id is empty".into(),
                });
            }
            if let Some(unknown) = client
                .scopes
                .iter()
                .find(|s| crate::domain::access::Scope::parse(s).is_none())
            {
                return Err(ConfigError::Invalid {
                    setting: "jwt.machine_clients",
                    problem: format!("`{unknown}` is not a scope of nrm (use {known})"),
                });
            }
        }
        Ok(())
    }

    /// The step limits as the domain reads them.
    pub fn deadline_limits(&self) -> Result<crate::domain::deadline::DeadlineLimits, ConfigError> {
        use crate::domain::deadline::{DeadlineLimits, Limits};
        let parse = |setting: &'static str, text: &str| {
            let duration = parse_duration(text).map_err(|problem| ConfigError::Invalid { setting, problem })?;
            chrono::Duration::from_std(duration).map_err(|e| ConfigError::Invalid {
                setting,
                problem: e.to_string(),
            })
        };
        let limits = |l: &StepLimits, names: [&'static str; 3]| -> Result<Limits, ConfigError> {
            Ok(Limits {
                acknowledge: parse(names[0], &l.acknowledge)?,
                decide: parse(names[1], &l.decide)?,
                start_care: parse(names[2], &l.start_care)?,
            })
        };
        Ok(DeadlineLimits {
            routine: limits(
                &self.deadlines.routine,
                [
                    "deadlines.routine.acknowledge",
                    "deadlines.routine.decide",
                    "deadlines.routine.start_care",
                ],
            )?,
            urgent: limits(
                &self.deadlines.urgent,
                [
                    "deadlines.urgent.acknowledge",
                    "deadlines.urgent.decide",
                    "deadlines.urgent.start_care",
                ],
            )?,
            acute: limits(
                &self.deadlines.acute,
                [
                    "deadlines.acute.acknowledge",
                    "deadlines.acute.decide",
                    "deadlines.acute.start_care",
                ],
            )?,
        })
    }

    pub fn pool_timeout(&self) -> Duration {
        Duration::from_secs(self.database.pool_timeout_seconds.max(1))
    }
}

impl RegistrySettings {
    /// Relative paths are resolved when the settings are loaded (`Settings::load`).
    pub fn organisations_path(&self) -> &Path {
        &self.organisations_file
    }
}

/// Parses a duration such as `250ms`, `90s`, `15m`, `1h`, `7d` (one number, one unit).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` needs a unit: s, m, h or d (e.g. 1h)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` must start with a whole number (e.g. 1h)"))?;
    let millis = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{text}` has unknown unit `{unit}`: use ms, s, m, h or d")),
    };
    number
        .checked_mul(millis)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_are_safe() {
        let s = Settings::defaults().unwrap();
        assert_eq!(s.environment, Environment::Development);
        assert_eq!(s.database.url, "./data/nrm.sqlite");
        assert_eq!(s.jwt.algorithms, vec!["HS256".to_string()]);
        assert!(s.check().is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("1").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn override_changes_one_key() {
        let s = Settings::defaults().unwrap();
        let s = s.with_override("server.bind", "0.0.0.0:9999").unwrap();
        assert_eq!(s.server.bind, "0.0.0.0:9999");
        assert_eq!(s.database.url, "./data/nrm.sqlite");
    }
}

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
    pub registry: RegistrySettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    pub workers: usize,
    pub body_limit_bytes: usize,
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
    pub default_token_ttl: String,
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
pub struct RegistrySettings {
    pub organisations_file: PathBuf,
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
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(Box<figment::Error>),
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("configuration: {setting} {problem}")]
    Invalid {
        setting: &'static str,
        problem: String,
    },
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
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database.url".into()),
            )
            .merge(Env::prefixed("NRM__").split("__"));
        let settings: Settings = figment
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
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
        parse_duration(&self.jwt.default_token_ttl).map_err(|problem| ConfigError::Invalid {
            setting: "jwt.default_token_ttl",
            problem,
        })?;
        Ok(())
    }

    pub fn pool_timeout(&self) -> Duration {
        Duration::from_secs(self.database.pool_timeout_seconds.max(1))
    }
}

impl RegistrySettings {
    /// A relative registry path is resolved against the working directory, as users expect.
    pub fn organisations_path(&self) -> &Path {
        &self.organisations_file
    }
}

/// Parses a duration such as `90s`, `15m`, `1h`, `7d` (one number, one unit).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` needs a unit: s, m, h or d (e.g. 1h)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` must start with a whole number (e.g. 1h)"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`{text}` has unknown unit `{unit}`: use s, m, h or d"
            ));
        }
    };
    number
        .checked_mul(seconds)
        .map(Duration::from_secs)
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

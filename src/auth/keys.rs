//! Verification keys: the HS256 secret, PEM public keys and a JWKS document (file or URL).
//!
//! Each key is bound to exactly one algorithm. A JWKS document is re-read when a token names
//! a `kid` we do not know, at most once per `jwks_refresh_min_seconds`, so a flood of bogus
//! tokens cannot turn into a flood of requests to the identity provider.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::RwLock;

use crate::config::Settings;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Config(String),
    #[error("cannot read {path}: {problem}")]
    Read { path: PathBuf, problem: String },
}

#[derive(Clone)]
struct VerifyingKey {
    kid: String,
    algorithm: Algorithm,
    key: DecodingKey,
}

enum JwksSource {
    File(PathBuf),
    Url(String),
}

pub(super) struct KeyStore {
    fixed: Vec<VerifyingKey>,
    jwks: Option<JwksSource>,
    jwks_keys: RwLock<Vec<VerifyingKey>>,
    last_refresh: Mutex<Option<Instant>>,
    refresh_interval: Duration,
    allowed: Vec<Algorithm>,
    http: reqwest::Client,
}

impl KeyStore {
    pub(super) fn from_settings(settings: &Settings, allowed: &[Algorithm]) -> Result<Self, KeyError> {
        let jwt = &settings.jwt;
        let mut fixed = Vec::new();
        if allowed.contains(&Algorithm::HS256) {
            let (secret, _) = super::hs256_secret(settings);
            fixed.push(VerifyingKey {
                kid: jwt.hs256_kid.clone(),
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(secret.as_bytes()).map_err(|e| KeyError::Config(e.to_string()))?,
            });
        }
        for entry in &jwt.public_keys {
            let algorithm = super::parse_algorithms(std::slice::from_ref(&entry.algorithm))?
                .into_iter()
                .next()
                .ok_or_else(|| KeyError::Config("jwt.public_keys: algorithm missing".into()))?;
            if !allowed.contains(&algorithm) {
                return Err(KeyError::Config(format!(
                    "jwt.public_keys: key `{}` uses {} which is not in jwt.algorithms",
                    entry.kid, entry.algorithm
                )));
            }
            let pem = std::fs::read(&entry.pem_file).map_err(|e| KeyError::Read {
                path: entry.pem_file.clone(),
                problem: e.to_string(),
            })?;
            let key = match algorithm {
                Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 => {
                    DecodingKey::from_rsa_pem(&pem)
                }
                Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
                Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
                _ => {
                    return Err(KeyError::Config(format!(
                        "jwt.public_keys: key `{}`: HMAC secrets go in jwt.hs256_secret, not in a PEM file",
                        entry.kid
                    )));
                }
            }
            .map_err(|e| KeyError::Read {
                path: entry.pem_file.clone(),
                problem: e.to_string(),
            })?;
            fixed.push(VerifyingKey {
                kid: entry.kid.clone(),
                algorithm,
                key,
            });
        }
        let jwks = match (jwt.jwks_url.is_empty(), jwt.jwks_file.is_empty()) {
            (true, true) => None,
            (false, true) => {
                let url = jwt.jwks_url.clone();
                if !(url.starts_with("https://") || is_loopback_http(&url)) {
                    return Err(KeyError::Config(
                        "jwt.jwks_url must be an https:// URL (plain http only for 127.0.0.1/localhost)".into(),
                    ));
                }
                Some(JwksSource::Url(url))
            }
            (true, false) => Some(JwksSource::File(PathBuf::from(&jwt.jwks_file))),
            (false, false) => {
                return Err(KeyError::Config("set jwt.jwks_url or jwt.jwks_file, not both".into()));
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| KeyError::Config(format!("cannot build the JWKS client: {e}")))?;
        Ok(Self {
            fixed,
            jwks,
            jwks_keys: RwLock::new(Vec::new()),
            last_refresh: Mutex::new(None),
            refresh_interval: Duration::from_secs(jwt.jwks_refresh_min_seconds),
            allowed: allowed.to_vec(),
            http,
        })
    }

    /// Only the keys of one JWKS URL (an OpenID provider's `jwks_uri`), for `allowed`.
    pub(super) fn from_jwks_url(
        url: &str,
        allowed: &[Algorithm],
        refresh_interval: Duration,
    ) -> Result<Self, KeyError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| KeyError::Config(format!("cannot build the JWKS client: {e}")))?;
        Ok(Self {
            fixed: Vec::new(),
            jwks: Some(JwksSource::Url(url.to_string())),
            jwks_keys: RwLock::new(Vec::new()),
            last_refresh: Mutex::new(None),
            refresh_interval,
            allowed: allowed.to_vec(),
            http,
        })
    }

    /// Loads the JWKS document once at start-up, so a broken document is seen at once.
    pub(super) async fn prime(&self) -> Result<(), KeyError> {
        if self.jwks.is_some() {
            self.refresh(true).await?;
        }
        Ok(())
    }

    /// Re-reads the JWKS document now, whatever the rate limit (the timer's call): keys the
    /// provider removed are dropped. False when there is no JWKS document.
    pub(super) async fn reload(&self) -> Result<bool, KeyError> {
        self.refresh(true).await
    }

    /// The key for a token header: by `kid` when present, else the only key for `alg`.
    pub(super) async fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        if let Some(key) = self.lookup(kid, alg).await {
            return Some(key);
        }
        // Unknown kid: the provider may have rotated keys. Re-read, rate limited.
        if kid.is_some() && self.jwks.is_some() && self.refresh(false).await.unwrap_or(false) {
            return self.lookup(kid, alg).await;
        }
        None
    }

    async fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        let from_jwks = self.jwks_keys.read().await;
        let all = self.fixed.iter().chain(from_jwks.iter());
        match kid {
            Some(kid) => all
                .filter(|k| k.kid == kid && k.algorithm == alg)
                .map(|k| k.key.clone())
                .next(),
            None => {
                let candidates: Vec<&VerifyingKey> = all.filter(|k| k.algorithm == alg).collect();
                match candidates.as_slice() {
                    [only] => Some(only.key.clone()),
                    _ => None,
                }
            }
        }
    }

    /// Re-reads the JWKS document. Returns whether it was read (false when rate limited).
    async fn refresh(&self, force: bool) -> Result<bool, KeyError> {
        {
            let mut last = self
                .last_refresh
                .lock()
                .map_err(|_| KeyError::Config("key store lock poisoned".into()))?;
            if !force
                && let Some(at) = *last
                && at.elapsed() < self.refresh_interval
            {
                return Ok(false);
            }
            *last = Some(Instant::now());
        }
        let document = match &self.jwks {
            None => return Ok(false),
            Some(JwksSource::File(path)) => tokio::fs::read_to_string(path).await.map_err(|e| KeyError::Read {
                path: path.clone(),
                problem: e.to_string(),
            })?,
            Some(JwksSource::Url(url)) => {
                let response = self
                    .http
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| KeyError::Config(format!("JWKS {url}: {e}")))?;
                if !response.status().is_success() {
                    return Err(KeyError::Config(format!("JWKS {url}: HTTP {}", response.status())));
                }
                response
                    .text()
                    .await
                    .map_err(|e| KeyError::Config(format!("JWKS {url}: {e}")))?
            }
        };
        let set: JwkSet =
            serde_json::from_str(&document).map_err(|e| KeyError::Config(format!("JWKS document: {e}")))?;
        let keys = keys_from_jwks(&set, &self.allowed);
        tracing::info!(keys = keys.len(), "JWKS document loaded");
        *self.jwks_keys.write().await = keys;
        Ok(true)
    }
}

/// Public keys from a JWKS document. Symmetric (`oct`) keys are never taken from a JWKS:
/// a published document must not be able to add a shared secret.
fn keys_from_jwks(set: &JwkSet, allowed: &[Algorithm]) -> Vec<VerifyingKey> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let algorithm = match (&jwk.common.key_algorithm, &jwk.algorithm) {
                (_, AlgorithmParameters::OctetKey(_)) => return None,
                (Some(KeyAlgorithm::RS256), _) | (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
                (Some(KeyAlgorithm::RS384), _) => Algorithm::RS384,
                (Some(KeyAlgorithm::RS512), _) => Algorithm::RS512,
                (Some(KeyAlgorithm::PS256), _) => Algorithm::PS256,
                (Some(KeyAlgorithm::ES256), _) | (None, AlgorithmParameters::EllipticCurve(_)) => Algorithm::ES256,
                (Some(KeyAlgorithm::ES384), _) => Algorithm::ES384,
                (Some(KeyAlgorithm::EdDSA), _) | (None, AlgorithmParameters::OctetKeyPair(_)) => Algorithm::EdDSA,
                _ => return None,
            };
            if !allowed.contains(&algorithm) {
                return None;
            }
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some(VerifyingKey { kid, algorithm, key })
        })
        .collect()
}

pub(super) fn is_loopback_http(url: &str) -> bool {
    url.strip_prefix("http://")
        .map(|rest| rest.starts_with("127.0.0.1") || rest.starts_with("localhost") || rest.starts_with("[::1]"))
        .unwrap_or(false)
}

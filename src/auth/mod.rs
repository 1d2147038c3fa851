//! Authentication: JWT verification and the `Actor` every `/api/v1` handler receives.
//!
//! Keys are picked by `kid` and each key is bound to one algorithm, so a token can never
//! choose how it is checked (no `none`, no HS256 signed with an RSA public key). Every
//! failure is the same 401 to the caller; the reason goes to the debug log only, and the
//! token itself is never logged.

mod keys;
pub mod oidc;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{Environment, Settings};
use crate::error::ApiError;
pub use keys::KeyError;
use keys::KeyStore;
use oidc::{Oidc, OidcError, Pending};

pub use crate::domain::access::{Actor, Role, Scope};

/// A token's `aud`: one audience or several (RFC 7519 §4.1.3; Keycloak sends an array).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The claims `nrm` reads. `roles` stays text here so unknown roles do not fail decoding.
/// A person's token needs `sub`; a machine's token (client credentials) names its client in
/// `client_id` (RFC 9068) or `azp` (Keycloak, Entra ID) and what it may do in `scope`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    pub org: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub exp: u64,
    pub iat: u64,
    pub iss: String,
    pub aud: Audience,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// Space-separated scopes (RFC 9068 §2.2.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl Default for Audience {
    fn default() -> Self {
        Audience::Many(Vec::new())
    }
}

/// Which check a token failed. Never carries a claim value or the token: this is what the
/// log says about a refused token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    MissingToken,
    #[error("malformed token")]
    Malformed,
    #[error("algorithm not allowed")]
    Algorithm,
    #[error("no key for this token")]
    UnknownKey,
    #[error("signature invalid")]
    Signature,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
    #[error("issuer not accepted")]
    Issuer,
    #[error("audience not accepted")]
    Audience,
    #[error("required claim missing")]
    MissingClaim,
    #[error("subject empty")]
    EmptySubject,
    #[error("organisation is not in the registry")]
    UnknownOrganisation,
    #[error("machine client used for another organisation")]
    MachineOrganisation,
}

impl AuthError {
    /// What failed, from jsonwebtoken's error: the kind only, never its message (serde's
    /// messages quote the claim values they could not read).
    fn from_jwt(error: &jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind as K;
        match error.kind() {
            K::InvalidSignature => AuthError::Signature,
            K::ExpiredSignature => AuthError::Expired,
            K::ImmatureSignature => AuthError::NotYetValid,
            K::InvalidIssuer => AuthError::Issuer,
            K::InvalidAudience => AuthError::Audience,
            K::MissingRequiredClaim(_) => AuthError::MissingClaim,
            K::InvalidAlgorithm | K::InvalidAlgorithmName | K::MissingAlgorithm => AuthError::Algorithm,
            K::InvalidKeyFormat | K::InvalidRsaKey(_) | K::InvalidEcdsaKey => AuthError::UnknownKey,
            _ => AuthError::Malformed,
        }
    }
}

/// Verifies tokens. Built once at start-up; shared by all workers.
pub struct Authenticator {
    issuer: String,
    audience: String,
    allowed: Vec<Algorithm>,
    leeway: u64,
    keys: KeyStore,
    organisations: HashSet<String>,
    focal_point: Option<String>,
    oidc: Option<Oidc>,
    /// Machine clients by client id: their organisation and the most their tokens may do.
    machine_clients: HashMap<String, MachineClient>,
}

struct MachineClient {
    organisation: String,
    scopes: Vec<Scope>,
}

/// A person signed in at the OpenID provider.
pub struct SignedIn {
    pub actor: Actor,
    pub name: Option<String>,
    /// Kept as `id_token_hint` for RP-initiated sign-out.
    pub id_token: String,
}

/// The built-in HS256 secret for development. Never accepted in production.
pub const DEVELOPMENT_SECRET: &str = "nrm-development-secret-not-for-production-use-0000";

impl Authenticator {
    /// Builds the verifier from settings. `organisations` are the registry's slugs,
    /// `focal_point` the national focal point's.
    pub fn from_settings(
        settings: &Settings,
        organisations: HashSet<String>,
        focal_point: Option<String>,
    ) -> Result<Self, KeyError> {
        let allowed = parse_algorithms(&settings.jwt.algorithms)?;
        let keys = KeyStore::from_settings(settings, &allowed)?;
        let mut machine_clients = HashMap::new();
        for client in &settings.jwt.machine_clients {
            if !organisations.contains(&client.organisation) {
                return Err(KeyError::Config(format!(
                    "jwt.machine_clients: `{}` is not an organisation of the registry",
                    client.organisation
                )));
            }
            let scopes = client.scopes.iter().filter_map(|s| Scope::parse(s)).collect();
            let known = MachineClient {
                organisation: client.organisation.clone(),
                scopes,
            };
            if machine_clients.insert(client.client_id.clone(), known).is_some() {
                return Err(KeyError::Config(format!(
                    "jwt.machine_clients: `{}` is listed twice",
                    client.client_id
                )));
            }
        }
        Ok(Self {
            issuer: settings.jwt.issuer.clone(),
            audience: settings.jwt.audience.clone(),
            allowed,
            leeway: settings.jwt.leeway_seconds,
            keys,
            organisations,
            focal_point,
            oidc: Oidc::from_settings(settings)?,
            machine_clients,
        })
    }

    /// The OpenID provider of the pages, when one is configured.
    pub fn oidc(&self) -> Option<&Oidc> {
        self.oidc.as_ref()
    }

    /// The callback of a sign-in at the provider: the person, by the API's claim rules.
    pub async fn sign_in(&self, pending: &Pending, state: &str, code: &str) -> Result<SignedIn, OidcError> {
        let oidc = self
            .oidc
            .as_ref()
            .ok_or_else(|| OidcError::Provider("not configured".into()))?;
        let (claims, id_token) = oidc.finish(pending, state, code).await?;
        let actor = self
            .actor(claims.sub, claims.org, &claims.roles)
            .map_err(OidcError::IdToken)?;
        Ok(SignedIn {
            actor,
            name: claims.name,
            id_token,
        })
    }

    /// Reads the JWKS document once, so a broken document stops start-up.
    pub async fn prime(&self) -> Result<(), KeyError> {
        self.keys.prime().await
    }

    /// Re-reads the JWKS document every `every` until the process ends. A document that
    /// cannot be read keeps the keys last read (an outage at the provider does not lock
    /// everyone out) and is logged.
    pub async fn refresh_keys_every(&self, every: std::time::Duration) {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            match self.keys.reload().await {
                Ok(_) => {}
                Err(error) => tracing::warn!(error = %error, "the JWKS document could not be re-read"),
            }
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Actor, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        if !self.allowed.contains(&header.alg) {
            return Err(AuthError::Algorithm);
        }
        let key = self
            .keys
            .find(header.kid.as_deref(), header.alg)
            .await
            .ok_or(AuthError::UnknownKey)?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        // A string, or an array that contains it (RFC 7519 §4.1.3).
        validation.set_audience(&[&self.audience]);
        // `sub` is required of people below: a client-credentials token may lack it.
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| AuthError::from_jwt(&e))?;
        let claims = data.claims;
        let client = claims.client_id.as_deref().or(claims.azp.as_deref());
        if let Some((client_id, known)) = client.and_then(|c| self.machine_clients.get_key_value(c)) {
            return self.machine(client_id, known, &claims);
        }
        self.actor(claims.sub.unwrap_or_default(), claims.org, &claims.roles)
    }

    /// A listed machine client: its own organisation only, no roles whatever the token says,
    /// the scopes both granted by the token and allowed by the configuration.
    fn machine(&self, client_id: &str, known: &MachineClient, claims: &Claims) -> Result<Actor, AuthError> {
        if claims.org != known.organisation {
            return Err(AuthError::MachineOrganisation);
        }
        let granted: HashSet<&str> = claims.scope.as_deref().unwrap_or("").split_whitespace().collect();
        let scopes = known
            .scopes
            .iter()
            .copied()
            .filter(|s| granted.contains(s.as_str()))
            .collect();
        Ok(Actor {
            sub: client_id.to_string(),
            org: known.organisation.clone(),
            roles: Vec::new(),
            at_focal_point: self.focal_point.as_deref() == Some(known.organisation.as_str()),
            machine: Some(scopes),
        })
    }

    /// Who the claims name, for an API token and an id_token alike: a subject, an
    /// organisation of the registry, the known roles (unknown ones are dropped).
    fn actor(&self, sub: String, org: String, roles: &[String]) -> Result<Actor, AuthError> {
        if sub.trim().is_empty() {
            return Err(AuthError::EmptySubject);
        }
        if !self.organisations.contains(&org) {
            return Err(AuthError::UnknownOrganisation);
        }
        let mut roles: Vec<Role> = roles.iter().filter_map(|r| Role::parse(r)).collect();
        roles.sort_by_key(|r| r.as_str());
        roles.dedup();
        let at_focal_point = self.focal_point.as_deref() == Some(org.as_str());
        Ok(Actor {
            sub,
            org,
            roles,
            at_focal_point,
            machine: None,
        })
    }
}

fn parse_algorithms(names: &[String]) -> Result<Vec<Algorithm>, KeyError> {
    if names.is_empty() {
        return Err(KeyError::Config("jwt.algorithms is empty".into()));
    }
    names
        .iter()
        .map(|name| match name.as_str() {
            "HS256" => Ok(Algorithm::HS256),
            "RS256" => Ok(Algorithm::RS256),
            "RS384" => Ok(Algorithm::RS384),
            "RS512" => Ok(Algorithm::RS512),
            "PS256" => Ok(Algorithm::PS256),
            "ES256" => Ok(Algorithm::ES256),
            "ES384" => Ok(Algorithm::ES384),
            "EdDSA" => Ok(Algorithm::EdDSA),
            other => Err(KeyError::Config(format!(
                "jwt.algorithms: `{other}` is not supported (use HS256, RS256, RS384, RS512, PS256, ES256, ES384, EdDSA)"
            ))),
        })
        .collect()
}

/// The HS256 secret in force, and whether it is the built-in development one.
pub fn hs256_secret(settings: &Settings) -> (&str, bool) {
    if settings.jwt.hs256_secret.is_empty() {
        (DEVELOPMENT_SECRET, true)
    } else {
        (settings.jwt.hs256_secret.as_str(), false)
    }
}

/// Checks that production has real key material; names the missing setting otherwise.
pub fn check_key_material(settings: &Settings) -> Result<(), KeyError> {
    let jwt = &settings.jwt;
    if !jwt.hs256_secret.is_empty() && jwt.hs256_secret.len() < 32 {
        return Err(KeyError::Config(
            "jwt.hs256_secret (NRM__JWT__HS256_SECRET) must be at least 32 bytes".into(),
        ));
    }
    if settings.environment != Environment::Production {
        return Ok(());
    }
    let uses_hs256 = jwt.algorithms.iter().any(|a| a == "HS256");
    let has_asymmetric = !jwt.public_keys.is_empty() || !jwt.jwks_url.is_empty() || !jwt.jwks_file.is_empty();
    if uses_hs256 && jwt.hs256_secret.is_empty() {
        return Err(KeyError::Config(
            "environment = production needs real key material: jwt.algorithms allows HS256 but jwt.hs256_secret \
             (NRM__JWT__HS256_SECRET) is not set; set it to a secret of at least 32 bytes, or remove HS256 from \
             jwt.algorithms and configure jwt.jwks_url, jwt.jwks_file or jwt.public_keys"
                .into(),
        ));
    }
    if !uses_hs256 && !has_asymmetric {
        return Err(KeyError::Config(
            "environment = production needs real key material: set jwt.jwks_url (NRM__JWT__JWKS_URL), \
             jwt.jwks_file or jwt.public_keys"
                .into(),
        ));
    }
    Ok(())
}

/// Mints an HS256 token with the configured secret (for `nrm token`, development and tests).
pub fn mint_token(
    settings: &Settings,
    sub: &str,
    org: &str,
    roles: &[Role],
    ttl: std::time::Duration,
    now_unix: u64,
) -> Result<String, KeyError> {
    let (secret, _) = hs256_secret(settings);
    let claims = Claims {
        sub: Some(sub.to_string()),
        org: org.to_string(),
        roles: roles.iter().map(|r| r.as_str().to_string()).collect(),
        exp: now_unix + ttl.as_secs(),
        iat: now_unix,
        iss: settings.jwt.issuer.clone(),
        aud: Audience::One(settings.jwt.audience.clone()),
        ..Claims::default()
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(settings.jwt.hs256_kid.clone());
    let key = EncodingKey::from_secret(secret.as_bytes()).map_err(|e| KeyError::Config(e.to_string()))?;
    jsonwebtoken::encode(&header, &claims, &key).map_err(|e| KeyError::Config(e.to_string()))
}

fn bearer_token(req: &HttpRequest) -> Result<String, AuthError> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(AuthError::MissingToken)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::MissingToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(token.trim().to_string())
}

impl FromRequest for Actor {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Actor, ApiError>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let authenticator = req.app_data::<web::Data<Authenticator>>().cloned();
        let token = bearer_token(req);
        let req = req.clone();
        Box::pin(async move {
            let authenticator = authenticator.ok_or_else(|| ApiError::internal("authenticator missing"))?;
            let token = token.map_err(|e| {
                tracing::debug!(check = %e, "authentication failed");
                ApiError::Unauthorized { invalid_token: false }
            })?;
            let actor = authenticator.verify(&token).await.map_err(|e| {
                tracing::debug!(check = %e, "authentication failed");
                ApiError::Unauthorized { invalid_token: true }
            })?;
            req.extensions_mut().insert(crate::telemetry::Authenticated);
            if let Some(limiter) = req.app_data::<web::Data<crate::ratelimit::RateLimiter>>() {
                limiter.check_caller(&actor.org, &actor.sub)?;
            }
            Ok(actor)
        })
    }
}

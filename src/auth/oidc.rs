//! Signing in to the pages at the organisations' OpenID Connect provider: the authorization
//! code flow with PKCE (RFC 7636, S256 only).
//!
//! `state` ties the callback to the browser that left (login CSRF), `nonce` ties the id_token
//! to this sign-in (replay), and the code verifier ties the code to this client. The three
//! stay in the browser in an HttpOnly cookie (`Pending`) rather than in the database: nothing
//! is written before the person is known. The id_token's claims become an `Actor` by the same
//! rules as an API token (`Authenticator::actor`), so a page and an API call see the same
//! organisation and roles.

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::keys::{KeyStore, is_loopback_http};
use super::{Audience, AuthError, KeyError};
use crate::config::{OidcSettings, Settings};
use crate::crypto::{random_token, same_secret};

/// The signature algorithms an id_token may use: asymmetric only, so no shared secret can
/// be talked into verifying one.
const ID_TOKEN_ALGORITHMS: [Algorithm; 7] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// Discovery, keys or the token endpoint failed: the provider, not the person.
    #[error("provider: {0}")]
    Provider(String),
    /// The callback does not belong to a sign-in this browser started.
    #[error("state does not match")]
    State,
    /// The provider sent the person back with an error (e.g. `access_denied`).
    #[error("provider refused: {0}")]
    Refused(String),
    #[error("id_token: {0}")]
    IdToken(AuthError),
    #[error("id_token nonce does not match")]
    Nonce,
}

/// What the browser keeps while it is at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// The page to open after signing in (a local path).
    pub return_to: String,
}

impl Pending {
    pub fn new(return_to: &str) -> Self {
        Self {
            state: random_token(24),
            nonce: random_token(24),
            // 32 random bytes give 43 characters, the least RFC 7636 allows.
            verifier: random_token(32),
            return_to: return_to.to_string(),
        }
    }

    /// The cookie value: four base64url fields, so no separator can occur inside one.
    pub fn to_cookie(&self) -> String {
        let path = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.return_to.as_bytes());
        format!("{}.{}.{}.{}", self.state, self.nonce, self.verifier, path)
    }

    pub fn from_cookie(value: &str) -> Option<Self> {
        let mut parts = value.split('.');
        let (state, nonce, verifier, path) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || [state, nonce, verifier].iter().any(|p| p.len() < 32) {
            return None;
        }
        let path = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(path).ok()?;
        Some(Self {
            state: state.to_string(),
            nonce: nonce.to_string(),
            verifier: verifier.to_string(),
            return_to: String::from_utf8(path).ok()?,
        })
    }

    fn challenge(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }
}

/// The claims of an id_token that `nrm` reads.
#[derive(Debug, Deserialize)]
pub(super) struct IdTokenClaims {
    pub sub: String,
    #[serde(default)]
    pub org: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub aud: Audience,
    pub azp: Option<String>,
    pub nonce: Option<String>,
    pub name: Option<String>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    end_session_endpoint: Option<String>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
    code_challenge_methods_supported: Option<Vec<String>>,
}

struct Provider {
    authorization_endpoint: String,
    token_endpoint: String,
    end_session_endpoint: Option<String>,
    algorithms: Vec<Algorithm>,
    keys: KeyStore,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

/// The client of one provider. The discovery document is read on the first sign-in (so a
/// provider that is down does not stop the API from starting) and kept.
pub struct Oidc {
    settings: OidcSettings,
    redirect_uri: String,
    post_logout_redirect_uri: String,
    leeway: u64,
    jwks_refresh: Duration,
    http: reqwest::Client,
    provider: tokio::sync::OnceCell<Provider>,
}

impl Oidc {
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, KeyError> {
        let oidc = &settings.web.oidc;
        if !oidc.enabled() {
            return Ok(None);
        }
        let base = settings.notifications.public_base_url.trim_end_matches('/');
        // No redirects: a provider's endpoint that redirects is misconfigured, and following
        // one would send the client secret wherever it points.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| KeyError::Config(format!("cannot build the OpenID Connect client: {e}")))?;
        Ok(Some(Self {
            settings: oidc.clone(),
            redirect_uri: format!("{base}/sign-in/callback"),
            post_logout_redirect_uri: format!("{base}/sign-in"),
            leeway: settings.jwt.leeway_seconds,
            jwks_refresh: Duration::from_secs(settings.jwt.jwks_refresh_min_seconds),
            http,
            provider: tokio::sync::OnceCell::new(),
        }))
    }

    async fn provider(&self) -> Result<&Provider, OidcError> {
        self.provider.get_or_try_init(|| self.discover()).await
    }

    async fn discover(&self) -> Result<Provider, OidcError> {
        let issuer = self.settings.issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            return Err(OidcError::Provider(format!("{url}: HTTP {}", response.status())));
        }
        let document: Discovery = response
            .json()
            .await
            .map_err(|e| OidcError::Provider(format!("{url}: {e}")))?;
        // OpenID Connect Discovery §4.3: the document must name the issuer it was read from.
        if document.issuer != self.settings.issuer {
            return Err(OidcError::Provider(format!(
                "{url} names issuer `{}`, not `{}`",
                document.issuer, self.settings.issuer
            )));
        }
        for endpoint in [
            &document.authorization_endpoint,
            &document.token_endpoint,
            &document.jwks_uri,
        ] {
            if !(endpoint.starts_with("https://") || is_loopback_http(endpoint)) {
                return Err(OidcError::Provider(format!("{endpoint} is not https://")));
            }
        }
        if let Some(methods) = &document.code_challenge_methods_supported
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(OidcError::Provider("the provider does not offer PKCE with S256".into()));
        }
        let offered: Vec<Algorithm> = if document.id_token_signing_alg_values_supported.is_empty() {
            vec![Algorithm::RS256]
        } else {
            document
                .id_token_signing_alg_values_supported
                .iter()
                .filter_map(|name| super::parse_algorithms(std::slice::from_ref(name)).ok())
                .flatten()
                .filter(|a| ID_TOKEN_ALGORITHMS.contains(a))
                .collect()
        };
        if offered.is_empty() {
            return Err(OidcError::Provider(
                "no asymmetric id_token signing algorithm offered".into(),
            ));
        }
        let keys = KeyStore::from_jwks_url(&document.jwks_uri, &offered, self.jwks_refresh)
            .map_err(|e| OidcError::Provider(e.to_string()))?;
        keys.prime().await.map_err(|e| OidcError::Provider(e.to_string()))?;
        Ok(Provider {
            authorization_endpoint: document.authorization_endpoint,
            token_endpoint: document.token_endpoint,
            end_session_endpoint: document.end_session_endpoint,
            algorithms: offered,
            keys,
        })
    }

    /// Where to send the browser to sign in.
    pub async fn authorization_url(&self, pending: &Pending) -> Result<String, OidcError> {
        let provider = self.provider().await?;
        let scope = self.settings.scopes.join(" ");
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &scope)
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &pending.challenge())
            .append_pair("code_challenge_method", "S256")
            .finish();
        Ok(join_query(&provider.authorization_endpoint, &query))
    }

    /// The callback: checks `state`, trades the code for tokens and verifies the id_token.
    /// Returns its claims and the id_token itself (kept as the hint for sign-out).
    pub(super) async fn finish(
        &self,
        pending: &Pending,
        state: &str,
        code: &str,
    ) -> Result<(IdTokenClaims, String), OidcError> {
        if !same_secret(state, &pending.state) {
            return Err(OidcError::State);
        }
        let provider = self.provider().await?;
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("code_verifier", &pending.verifier)
            .finish();
        // RFC 6749 §2.3.1: id and secret are form-encoded before they go into Basic.
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let response = self
            .http
            .post(&provider.token_endpoint)
            .basic_auth(
                encode(&self.settings.client_id),
                Some(encode(&self.settings.client_secret)),
            )
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        if !response.status().is_success() {
            // The error body may echo the code: only the status goes to the log.
            return Err(OidcError::Provider(format!(
                "token endpoint: HTTP {}",
                response.status()
            )));
        }
        let tokens: TokenResponse = response
            .json()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        let id_token = tokens
            .id_token
            .ok_or_else(|| OidcError::Provider("token endpoint sent no id_token".into()))?;
        let claims = self.verify(provider, &id_token, &pending.nonce).await?;
        Ok((claims, id_token))
    }

    async fn verify(&self, provider: &Provider, id_token: &str, nonce: &str) -> Result<IdTokenClaims, OidcError> {
        let header = jsonwebtoken::decode_header(id_token).map_err(|_| OidcError::IdToken(AuthError::Malformed))?;
        if !provider.algorithms.contains(&header.alg) {
            return Err(OidcError::IdToken(AuthError::Algorithm));
        }
        let key = provider
            .keys
            .find(header.kid.as_deref(), header.alg)
            .await
            .ok_or(OidcError::IdToken(AuthError::UnknownKey))?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.client_id]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<IdTokenClaims>(id_token, &key, &validation)
            .map_err(|e| OidcError::IdToken(AuthError::from_jwt(&e)))?
            .claims;
        check_nonce_and_azp(&claims, nonce, &self.settings.client_id)?;
        Ok(claims)
    }

    /// Where to send the browser after the session here ended, so the provider ends its own
    /// (RP-initiated logout); `None` when the provider offers none.
    pub async fn end_session_url(&self, id_token_hint: Option<&str>) -> Option<String> {
        let provider = self.provider().await.ok()?;
        let endpoint = provider.end_session_endpoint.as_deref()?;
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("post_logout_redirect_uri", &self.post_logout_redirect_uri);
        if let Some(hint) = id_token_hint {
            query.append_pair("id_token_hint", hint);
        }
        Some(join_query(endpoint, &query.finish()))
    }
}

/// OpenID Connect Core §3.1.3.7: the nonce must be the one sent, and a token for several
/// audiences must name this client as the authorized party.
fn check_nonce_and_azp(claims: &IdTokenClaims, nonce: &str, client_id: &str) -> Result<(), OidcError> {
    if !claims.nonce.as_deref().is_some_and(|n| same_secret(n, nonce)) {
        return Err(OidcError::Nonce);
    }
    let several = matches!(&claims.aud, Audience::Many(list) if list.len() > 1);
    match claims.azp.as_deref() {
        Some(azp) if azp != client_id => Err(OidcError::IdToken(AuthError::Audience)),
        None if several => Err(OidcError::IdToken(AuthError::Audience)),
        _ => Ok(()),
    }
}

fn join_query(endpoint: &str, query: &str) -> String {
    let separator = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{separator}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(aud: Audience, azp: Option<&str>, nonce: Option<&str>) -> IdTokenClaims {
        IdTokenClaims {
            sub: "someone".into(),
            org: "fier".into(),
            roles: vec!["caseworker".into()],
            aud,
            azp: azp.map(str::to_string),
            nonce: nonce.map(str::to_string),
            name: None,
        }
    }

    #[test]
    fn the_pending_sign_in_survives_its_cookie_and_nothing_else_passes_for_one() {
        let pending = Pending::new("/referrals/0190?tab=history.x");
        assert_eq!(Pending::from_cookie(&pending.to_cookie()), Some(pending.clone()));
        assert_eq!(Pending::from_cookie("a.b.c.d"), None);
        assert_eq!(Pending::from_cookie(&format!("{}.extra", pending.to_cookie())), None);
        assert_eq!(Pending::from_cookie(""), None);
        // RFC 7636: the verifier is 43 to 128 unreserved characters.
        assert!((43..=128).contains(&pending.verifier.len()));
        assert!(
            pending
                .verifier
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
        );
    }

    #[test]
    fn the_challenge_is_s256_of_the_verifier() {
        // RFC 7636 appendix B.
        let pending = Pending {
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
            ..Pending::new("/")
        };
        assert_eq!(pending.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn an_id_token_must_carry_our_nonce_and_name_us_when_it_has_several_audiences() {
        let one = || Audience::One("nrm-web".into());
        assert!(check_nonce_and_azp(&claims(one(), None, Some("n-1")), "n-1", "nrm-web").is_ok());
        assert!(matches!(
            check_nonce_and_azp(&claims(one(), None, Some("n-2")), "n-1", "nrm-web"),
            Err(OidcError::Nonce)
        ));
        assert!(matches!(
            check_nonce_and_azp(&claims(one(), None, None), "n-1", "nrm-web"),
            Err(OidcError::Nonce)
        ));
        let many = || Audience::Many(vec!["nrm-web".into(), "other".into()]);
        assert!(check_nonce_and_azp(&claims(many(), None, Some("n-1")), "n-1", "nrm-web").is_err());
        assert!(check_nonce_and_azp(&claims(many(), Some("other"), Some("n-1")), "n-1", "nrm-web").is_err());
        assert!(check_nonce_and_azp(&claims(many(), Some("nrm-web"), Some("n-1")), "n-1", "nrm-web").is_ok());
    }

    #[test]
    fn the_query_joins_an_endpoint_with_or_without_its_own() {
        assert_eq!(join_query("https://idp/auth", "a=1"), "https://idp/auth?a=1");
        assert_eq!(
            join_query("https://idp/auth?tenant=x", "a=1"),
            "https://idp/auth?tenant=x&a=1"
        );
    }
}

//! OpenID Connect (the `openidconnect` crate): the portal's authorization-code flow with PKCE,
//! onboarding, refresh, logout, and the CLI secret the token service accepts. The HTTP side
//! (`/c/oidc/*`, `PUT /users/{id}/cli_secret`, `/system/oidc/ping`) is `api::oidc`.
//!
//! - **Discovery** (`<oidc_endpoint>/.well-known/openid-configuration` and the JWKS) is cached
//!   per endpoint for `DISCOVERY_TTL`; a signature that does not verify rediscovers once (key
//!   rotation). Every request goes through a reqwest client with **redirects disabled**,
//!   timeouts, `oidc_verify_cert` and `oidc_ca_cert`.
//! - **The ID token is verified by the crate**: signature by the provider's JWKS (asymmetric
//!   algorithms only: never `none` or HMAC), issuer, audience, expiry, and at login the nonce
//!   kept in the portal session with `state` and the PKCE verifier (`Pending`).
//! - The user is found by `subiss` (`sub` + `iss`, Harbor's key) in `oidc_users`; a new user
//!   is created with `accounts::onboard(db, "oidc", …)` (`oidc_auto_onboard`) or after picking
//!   a username (`api::oidc`). The username comes from `oidc_user_claim`, or by default from
//!   `name` when it is a valid username, else `preferred_username`.
//! - `oidc_users.token` holds the refresh token, the last known groups and the ID token,
//!   `oidc_users.secret` the CLI secret, **both encrypted** (`crate::crypto`) for their row
//!   (`token_purpose`, `secret_purpose`): a value copied to another row does not decrypt.
//! - **The CLI secret works while the provider refreshes the user's tokens**:
//!   `verify_cli_secret` compares in constant time and, once the stored access token expired,
//!   refreshes; a refused refresh ends it (`InvalidCredentials`), an unreachable provider is
//!   `Unavailable` (never a success).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod,
    CoreGrantType, CoreIdToken, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType, CoreTokenResponse,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    ProviderMetadata, RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse,
};
use rand::distributions::{Alphanumeric, DistString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::accounts::{LoginError, User};
use crate::crypto;
use crate::db::{now_ms, rfc3339, Db};
use crate::settings::OidcSettings;
use crate::state::AppState;

mod users;
pub use users::*;

/// How long a discovered provider configuration (and its keys) is reused.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(300);
/// How long a started login may take at the provider.
pub const LOGIN_TIMEOUT_MS: i64 = 10 * 60 * 1000;
/// The access token's lifetime when the provider does not say.
const DEFAULT_TOKEN_LIFETIME_MS: i64 = 3600 * 1000;
/// The callback path under the external URL (registered at the provider).
pub const CALLBACK_PATH: &str = "/c/oidc/callback";

/// `end_session_endpoint` (RP-initiated logout) on top of the standard metadata.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct LogoutMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
}
impl AdditionalProviderMetadata for LogoutMetadata {}

pub type Metadata = ProviderMetadata<
    LogoutMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What went wrong talking to the provider.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// OIDC is not set up (endpoint, client id) or the configuration is unusable.
    #[error("{0}")]
    Config(String),
    /// The provider cannot be reached or answered something unusable.
    #[error("{0}")]
    Unavailable(String),
    /// The provider refused (an authorization error, a refresh token no longer valid).
    #[error("{0}")]
    Refused(String),
    /// A token did not verify (signature, issuer, audience, nonce, expiry) or lacks a claim.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<OidcError> for LoginError {
    fn from(e: OidcError) -> Self {
        match e {
            OidcError::Refused(_) | OidcError::Invalid(_) => LoginError::InvalidCredentials,
            OidcError::Db(e) => LoginError::Db(e),
            other => LoginError::Unavailable(other.to_string()),
        }
    }
}

/// A reqwest client for the provider: no redirects, timeouts, the certificate settings.
pub fn http_client(verify_cert: bool, ca_cert: &str) -> Result<reqwest::Client, OidcError> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15));
    if !verify_cert {
        b = b.danger_accept_invalid_certs(true);
    }
    if !ca_cert.trim().is_empty() {
        let certs = reqwest::Certificate::from_pem_bundle(ca_cert.as_bytes())
            .map_err(|e| OidcError::Config(format!("oidc_ca_cert is not a PEM certificate bundle: {e}")))?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| OidcError::Config(format!("cannot set up the HTTP client: {e}")))
}

/// (endpoint, verify_cert, ca_cert) → (when discovered, what).
type DiscoveryCache = HashMap<(String, bool, String), (Instant, Arc<Metadata>)>;
static DISCOVERY: LazyLock<Mutex<DiscoveryCache>> = LazyLock::new(Default::default);

/// The provider's configuration and keys, from the cache unless `fresh`.
pub async fn discover(
    http: &reqwest::Client,
    endpoint: &str,
    verify_cert: bool,
    ca_cert: &str,
    fresh: bool,
) -> Result<Arc<Metadata>, OidcError> {
    let key = (endpoint.to_string(), verify_cert, ca_cert.to_string());
    if !fresh {
        let cache = DISCOVERY.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, md)) = cache.get(&key) {
            if at.elapsed() < DISCOVERY_TTL {
                return Ok(md.clone());
            }
        }
    }
    let issuer = IssuerUrl::new(endpoint.to_string())
        .map_err(|e| OidcError::Config(format!("oidc_endpoint is not a URL: {e}")))?;
    let md = Metadata::discover_async(issuer, http).await.map_err(|e| {
        OidcError::Unavailable(format!(
            "the OIDC provider {endpoint} cannot be reached or its discovery document is unusable: {}",
            error_chain(&e)
        ))
    })?;
    let md = Arc::new(md);
    let mut cache = DISCOVERY.lock().unwrap_or_else(|p| p.into_inner());
    cache.retain(|_, (at, _)| at.elapsed() < DISCOVERY_TTL);
    cache.insert(key, (Instant::now(), md.clone()));
    Ok(md)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = inner.source();
    }
    s
}

/// A configured provider: discovery done, client credentials open.
pub struct Provider {
    pub metadata: Arc<Metadata>,
    client: Client,
    http: reqwest::Client,
    cfg: OidcSettings,
    client_id: String,
    client_secret: String,
    redirect: String,
}

impl Provider {
    pub async fn load(state: &AppState, cfg: &OidcSettings) -> Result<Provider, OidcError> {
        Self::load_with(state, cfg, false).await
    }

    async fn load_with(state: &AppState, cfg: &OidcSettings, fresh: bool) -> Result<Provider, OidcError> {
        if cfg.endpoint.is_empty() || cfg.client_id.is_empty() {
            return Err(OidcError::Config(
                "OIDC is not configured: set oidc_endpoint and oidc_client_id".into(),
            ));
        }
        let secret =
            cfg.client_secret.open(&state.secrets.encryption_key, "oidc_client_secret").map_err(|_| {
                OidcError::Config("the OIDC client secret no longer decrypts: enter it again".into())
            })?;
        let http = http_client(cfg.verify_cert, &cfg.ca_cert)?;
        let metadata = discover(&http, &cfg.endpoint, cfg.verify_cert, &cfg.ca_cert, fresh).await?;
        let redirect = format!("{}{CALLBACK_PATH}", state.config.external_url.trim_end_matches('/'));
        let redirect_url = RedirectUrl::new(redirect.clone())
            .map_err(|e| OidcError::Config(format!("external_url gives no callback URL: {e}")))?;
        let client = CoreClient::from_provider_metadata(
            (*metadata).clone(),
            ClientId::new(cfg.client_id.clone()),
            (!secret.is_empty()).then(|| ClientSecret::new(secret.clone())),
        )
        .set_redirect_uri(redirect_url);
        Ok(Provider {
            metadata,
            client,
            http,
            cfg: cfg.clone(),
            client_id: cfg.client_id.clone(),
            client_secret: secret,
            redirect,
        })
    }

    /// The authorization URL to send the browser to, and what the callback needs to check.
    pub fn begin(&self, redirect_after: &str) -> Result<(url::Url, Pending), OidcError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for s in self.cfg.scope.split(',').map(str::trim).filter(|s| !s.is_empty() && *s != "openid") {
            req = req.add_scope(Scope::new(s.to_string()));
        }
        let extra: serde_json::Map<String, Value> =
            serde_json::from_str(&self.cfg.extra_redirect_parms).unwrap_or_default();
        let extra: Vec<(String, String)> =
            extra.into_iter().filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string()))).collect();
        for (k, v) in &extra {
            req = req.add_extra_param(k.clone(), v.clone());
        }
        let (url, state, nonce) = req.url();
        let pending = Pending {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            redirect: redirect_after.to_string(),
            started_ms: now_ms(),
        };
        Ok((url, pending))
    }

    /// Exchanges the code (with the PKCE verifier), verifies the ID token against the nonce,
    /// and reads the identity.
    pub async fn finish(
        &self,
        state: &AppState,
        pending: &Pending,
        code: &str,
    ) -> Result<Identity, OidcError> {
        let token = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| OidcError::Config(format!("the provider has no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let id_token =
            token.id_token().ok_or_else(|| OidcError::Invalid("the provider sent no ID token".into()))?;
        let nonce = Nonce::new(pending.nonce.clone());
        let claims = self
            .verified_claims(state, id_token, |n: Option<&Nonce>| match n {
                Some(n) if bool::from(n.secret().as_bytes().ct_eq(nonce.secret().as_bytes())) => Ok(()),
                Some(_) => Err("the nonce does not match".to_string()),
                None => Err("the ID token has no nonce".to_string()),
            })
            .await?;
        let claims = self.with_userinfo(claims, &token).await;
        Ok(Identity::from_claims(&self.cfg, claims, &token))
    }

    /// The ID token's claims after the crate verified it (signature, issuer, audience, expiry,
    /// nonce); a signature failure rediscovers the keys once. Returns the raw claims.
    async fn verified_claims<N>(
        &self,
        state: &AppState,
        id_token: &CoreIdToken,
        nonce: N,
    ) -> Result<serde_json::Map<String, Value>, OidcError>
    where
        N: openidconnect::NonceVerifier + Clone,
    {
        let first = id_token.claims(&self.verifier(&self.client), nonce.clone()).map(|_| ());
        match first {
            Ok(()) => {}
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
                let again = Provider::load_with(state, &self.cfg, true).await?;
                id_token
                    .claims(&again.verifier(&again.client), nonce)
                    .map_err(|e| OidcError::Invalid(format!("the ID token was refused: {e}")))?;
            }
            Err(e) => return Err(OidcError::Invalid(format!("the ID token was refused: {e}"))),
        }
        raw_claims(&id_token.to_string())
    }

    fn verifier<'a>(&self, client: &'a Client) -> openidconnect::IdTokenVerifier<'a, CoreJsonWebKey> {
        let advertised = self.metadata.id_token_signing_alg_values_supported();
        let mut algs: Vec<CoreJwsSigningAlgorithm> =
            advertised.iter().filter(|a| asymmetric(a)).cloned().collect();
        if algs.is_empty() {
            algs.push(CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
        }
        client.id_token_verifier().set_allowed_algs(algs)
    }

    /// Adds claims the ID token lacks from the userinfo endpoint (same subject only); the
    /// ID token's own claims win. Best effort: a failing userinfo call leaves the claims as
    /// they are.
    async fn with_userinfo(
        &self,
        mut claims: serde_json::Map<String, Value>,
        token: &CoreTokenResponse,
    ) -> serde_json::Map<String, Value> {
        let Some(endpoint) = self.metadata.userinfo_endpoint() else { return claims };
        let res =
            self.http.get(endpoint.url().clone()).bearer_auth(token.access_token().secret()).send().await;
        let Ok(res) = res else { return claims };
        if !res.status().is_success() {
            return claims;
        }
        let Ok(info) = res.json::<serde_json::Map<String, Value>>().await else { return claims };
        if info.get("sub") != claims.get("sub") {
            return claims;
        }
        for (k, v) in info {
            claims.entry(k).or_insert(v);
        }
        claims
    }

    /// Refreshes with a refresh token: the new tokens and, when the provider sent a new ID
    /// token (verified, same subject) or userinfo has them, the groups.
    pub async fn refresh(
        &self,
        state: &AppState,
        refresh_token: &str,
        subject: &str,
    ) -> Result<(CoreTokenResponse, Option<Vec<String>>), OidcError> {
        let rt = RefreshToken::new(refresh_token.to_string());
        let token = self
            .client
            .exchange_refresh_token(&rt)
            .map_err(|e| OidcError::Config(format!("the provider has no token endpoint: {e}")))?
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let mut claims = match token.id_token() {
            Some(id) => {
                let c = self.verified_claims(state, id, |_: Option<&Nonce>| Ok(())).await?;
                if c.get("sub").and_then(Value::as_str) != Some(subject) {
                    return Err(OidcError::Invalid("the refreshed ID token is for another subject".into()));
                }
                c
            }
            None => {
                let mut m = serde_json::Map::new();
                m.insert("sub".into(), Value::String(subject.to_string()));
                m
            }
        };
        claims = self.with_userinfo(claims, &token).await;
        let groups = (!self.cfg.groups_claim.is_empty())
            .then(|| claims.get(&self.cfg.groups_claim).map(group_names))
            .flatten();
        Ok((token, groups))
    }

    /// RP-initiated logout: the provider's end-session URL for this ID token, when it has one.
    pub fn logout_url(&self, id_token: &str, after: &str) -> Option<String> {
        let end = self.metadata.additional_metadata().end_session_endpoint.as_deref()?;
        let mut u = url::Url::parse(end).ok()?;
        u.query_pairs_mut()
            .append_pair("id_token_hint", id_token)
            .append_pair("post_logout_redirect_uri", after)
            .append_pair("client_id", &self.client_id);
        Some(u.to_string())
    }

    /// The redirect URI registered at the provider.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect
    }

    /// Whether a client secret is configured (confidential client).
    pub fn confidential(&self) -> bool {
        !self.client_secret.is_empty()
    }
}

fn asymmetric(a: &CoreJwsSigningAlgorithm) -> bool {
    use CoreJwsSigningAlgorithm as A;
    matches!(
        a,
        A::RsaSsaPkcs1V15Sha256
            | A::RsaSsaPkcs1V15Sha384
            | A::RsaSsaPkcs1V15Sha512
            | A::EcdsaP256Sha256
            | A::EcdsaP384Sha384
            | A::EcdsaP521Sha512
            | A::RsaSsaPssSha256
            | A::RsaSsaPssSha384
            | A::RsaSsaPssSha512
            | A::EdDsa
    )
}

/// The payload of a JWT the crate already verified, as JSON.
fn raw_claims(jwt: &str) -> Result<serde_json::Map<String, Value>, OidcError> {
    let payload = jwt.split('.').nth(1).ok_or_else(|| OidcError::Invalid("malformed ID token".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| OidcError::Invalid("malformed ID token".into()))?;
    serde_json::from_slice(&bytes).map_err(|_| OidcError::Invalid("malformed ID token".into()))
}

fn token_error<RE: std::error::Error + 'static>(
    e: RequestTokenError<
        RE,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
) -> OidcError {
    use openidconnect::core::CoreErrorResponseType as T;
    match e {
        RequestTokenError::ServerResponse(r) => {
            let what = match r.error_description() {
                Some(d) => format!("{}: {d}", r.error()),
                None => r.error().to_string(),
            };
            match r.error() {
                T::InvalidGrant | T::UnauthorizedClient => {
                    OidcError::Refused(format!("the OIDC provider refused: {what}"))
                }
                _ => OidcError::Unavailable(format!("the OIDC provider answered an error: {what}")),
            }
        }
        RequestTokenError::Request(e) => {
            OidcError::Unavailable(format!("the OIDC provider cannot be reached: {}", error_chain(&e)))
        }
        RequestTokenError::Parse(e, _) => {
            OidcError::Unavailable(format!("the OIDC provider's token answer is unusable: {e}"))
        }
        RequestTokenError::Other(m) => OidcError::Unavailable(format!("the OIDC provider answered: {m}")),
    }
}

/// A login in progress: kept in the portal session (`sessions::OIDC_PENDING`) between
/// `/c/oidc/login` and the callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// Where to go after login (a same-site path).
    pub redirect: String,
    pub started_ms: i64,
}

/// Who the provider says logged in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub subject: String,
    pub subiss: String,
    /// From `oidc_user_claim` (module doc); may be invalid as a username.
    pub username: String,
    pub email: String,
    pub realname: String,
    pub groups: Vec<String>,
    pub tokens: StoredToken,
    pub expires_at: i64,
}

/// What `oidc_users.token` holds (encrypted).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoredToken {
    /// The provider's subject (refreshed ID tokens must carry the same).
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// The groups last read from the provider.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The last ID token (the logout hint).
    #[serde(default)]
    pub id_token: String,
}

fn expires_at(token: &CoreTokenResponse) -> i64 {
    now_ms() + token.expires_in().map(|d| d.as_millis() as i64).unwrap_or(DEFAULT_TOKEN_LIFETIME_MS)
}

/// A claim's group names: an array of strings or one string.
fn group_names(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Value::String(s) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

impl Identity {
    fn from_claims(
        cfg: &OidcSettings,
        claims: serde_json::Map<String, Value>,
        token: &CoreTokenResponse,
    ) -> Self {
        let s = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let subject = s("sub");
        let username = if !cfg.user_claim.is_empty() {
            s(&cfg.user_claim)
        } else {
            let name = s("name");
            if crate::accounts::valid_username(&name) {
                name
            } else {
                s("preferred_username")
            }
        };
        let groups = if cfg.groups_claim.is_empty() {
            Vec::new()
        } else {
            claims.get(&cfg.groups_claim).map(group_names).unwrap_or_default()
        };
        Identity {
            subiss: format!("{subject}{}", s("iss")),
            subject: subject.clone(),
            username,
            email: s("email"),
            realname: s("name"),
            tokens: StoredToken {
                subject: subject.clone(),
                refresh_token: token.refresh_token().map(|r| r.secret().clone()),
                groups: groups.clone(),
                id_token: token.id_token().map(|t| t.to_string()).unwrap_or_default(),
            },
            groups,
            expires_at: expires_at(token),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_claims() {
        assert_eq!(group_names(&serde_json::json!(["a", 1, "b"])), vec!["a", "b"]);
        assert_eq!(group_names(&serde_json::json!("a")), vec!["a"]);
        assert!(group_names(&serde_json::json!({"a": 1})).is_empty());
    }

    #[test]
    fn only_asymmetric_algorithms() {
        assert!(asymmetric(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256));
        assert!(!asymmetric(&CoreJwsSigningAlgorithm::HmacSha256));
        assert!(!asymmetric(&CoreJwsSigningAlgorithm::None));
    }
}

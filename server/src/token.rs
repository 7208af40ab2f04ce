//! The token service (`/service/token`, Docker Registry v2 token authentication) and the
//! verification of its tokens on `/v2`.
//!
//! Flow: `/v2` answers 401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`; the
//! client asks the realm for the scopes it needs (with Basic credentials, a refresh token or
//! nothing); `issue` narrows the requested actions to what `rbac` grants and signs an ES256 JWT
//! whose `access` lists the result; `/v2` then checks only the verified token against the
//! action it needs (`Claims::allows`).
//!
//! Tokens: ES256 only, our `kid` only; issuer, audience, `exp`/`nbf` (60 s leeway) and required
//! claims are checked; a high-S signature is refused (we sign low S). Each repository grant
//! carries its project's id (`pid`), so a token for a deleted and recreated project grants
//! nothing. Refresh tokens (off by default, as Harbor: docker would store one as an identity
//! token that podman and skopeo refuse) have their own audience and die with a password change,
//! user deletion or robot secret refresh.
//!
//! Refusals on `/v2` (`registry::authorize_for`): no credentials at all → the plain challenge;
//! an anonymous token, or a right the client asked for and was refused → 401 with
//! `error="insufficient_scope"` and the message ("unauthorized to access repository: X, action:
//! push") also as `error_description`, which docker prints; a right never asked for → 403 with
//! the challenge (oras-py re-asks only after a 403); a project that does not exist → 404
//! `NAME_UNKNOWN`. Every client stops at once on these instead of retrying (dockerd retries a
//! bare refusal for ~50 s).
//!
//! Invariants:
//! - **Only ES256 with our key is accepted** (`verify`: the algorithm is pinned, so `none`
//!   and HS256-with-the-public-key tokens fail), with issuer, audience, `exp`/`nbf` (60 s
//!   leeway) and `kid` checked.
//! - **Each repository grant carries the id of the project it was granted in**; a token for
//!   a project deleted and created again under the same name grants nothing.
//! - **Refresh tokens have their own audience** (`<service>:refresh`), so they are never
//!   accepted as access tokens, and they die with a password change, user deletion, robot
//!   secret refresh, disabling or expiry.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::accounts;
use crate::audit::Event;
use crate::auth::{authenticate_basic, basic_credentials, BasicAuthError};
use crate::client::ClientCtx;
use crate::db::now_ms;
use crate::rbac::{self, Principal, ProjectAccess};
use crate::robots;
use crate::state::AppState;

/// One requested or granted scope: `type:name:actions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub typ: String,
    pub name: String,
    pub actions: Vec<String>,
    /// Id of the project the grant was made in (repository grants only).
    #[serde(rename = "pid", default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<i64>,
    /// Actions the client asked for and was refused. `/v2` answers a request needing one of
    /// these with 401 (asking again cannot help: docker gives up at once) and one needing an
    /// action never asked for with 403 (oras asks for a new token only after a 403).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
}

/// Parses `scope` parameters: each may hold several scopes separated by spaces. The type ends
/// at the first `:` and the actions start after the last one, so names may contain `host:port`.
/// A resource class (`repository(plugin)`) is dropped.
pub fn parse_scopes<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Vec<Access>, String> {
    let mut out: Vec<Access> = Vec::new();
    let mut n = 0;
    for value in values {
        for s in value.split(' ').filter(|s| !s.is_empty()) {
            // Each scope costs database lookups; clients ask for one to three.
            n += 1;
            if n > MAX_SCOPES {
                return Err(format!("at most {MAX_SCOPES} scopes per token request"));
            }
            let (typ, rest) = s.split_once(':').ok_or_else(|| format!("invalid scope {s:?}"))?;
            let (name, actions) = rest.rsplit_once(':').ok_or_else(|| format!("invalid scope {s:?}"))?;
            let typ = typ.split_once('(').map(|(t, _)| t).unwrap_or(typ);
            if typ.is_empty() || name.is_empty() {
                return Err(format!("invalid scope {s:?}"));
            }
            let actions: Vec<String> =
                actions.split(',').filter(|a| !a.is_empty()).map(str::to_string).collect();
            match out.iter_mut().find(|a| a.typ == typ && a.name == name) {
                Some(existing) => {
                    for a in actions {
                        if !existing.actions.contains(&a) {
                            existing.actions.push(a);
                        }
                    }
                }
                None => out.push(Access {
                    typ: typ.into(),
                    name: name.into(),
                    actions,
                    project_id: None,
                    refused: vec![],
                }),
            }
        }
    }
    Ok(out)
}

/// Scopes one token request may name.
pub const MAX_SCOPES: usize = 100;

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// Account name; empty for anonymous tokens.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(default)]
    pub access: Vec<Access>,
}

impl Claims {
    pub fn anonymous(&self) -> bool {
        self.sub.is_empty()
    }

    /// Whether the token grants `action` on repository `name` of project `project_id`.
    pub fn allows(&self, name: &str, project_id: i64, action: &str) -> bool {
        self.access.iter().any(|a| {
            a.typ == "repository"
                && a.name == name
                && a.project_id == Some(project_id)
                && a.actions.iter().any(|x| x == action || x == "*")
        })
    }

    /// Whether the client asked for `action` on `name` and the token service refused it.
    pub fn refused(&self, name: &str, action: &str) -> bool {
        self.access
            .iter()
            .any(|a| a.typ == "repository" && a.name == name && a.refused.iter().any(|x| x == action))
    }

    pub fn allows_catalog(&self) -> bool {
        self.access
            .iter()
            .any(|a| a.typ == "registry" && a.name == "catalog" && a.actions.iter().any(|x| x == "*"))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    nbf: i64,
    iat: i64,
    jti: String,
    /// `user` or `robot`.
    kind: String,
    id: i64,
    /// Password or secret epoch the token was issued under.
    epoch: i64,
}

fn refresh_audience(service: &str) -> String {
    format!("{service}:refresh")
}

fn jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn header_for(state: &AppState) -> Header {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(state.secrets.token_key.kid.clone());
    h.typ = Some("JWT".into());
    h
}

fn validation(state: &AppState, audience: &str) -> Validation {
    let mut v = Validation::new(Algorithm::ES256);
    v.leeway = 60;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.set_audience(&[audience]);
    v.set_issuer(&[&state.config.token.issuer]);
    v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    v
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// The signature of a compact JWS as P-256 ECDSA `r || s`, if it is one.
fn es256_signature(token: &str) -> Option<p256::ecdsa::Signature> {
    use base64::Engine as _;
    let sig = token.rsplit_once('.')?.1;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig).ok()?;
    p256::ecdsa::Signature::from_slice(&bytes).ok()
}

/// Signs with our key, with the signature's S in the lower half (S ≤ n/2). ECDSA accepts
/// (r, S) and (r, n−S) alike; `verify` accepts only the low one, so a valid token cannot be
/// turned into a second, different valid token.
pub fn sign<T: Serialize>(state: &AppState, claims: &T) -> Result<String, jsonwebtoken::errors::Error> {
    let token = jsonwebtoken::encode(&header_for(state), claims, &state.secrets.token_key.encoding)?;
    Ok(low_s(token))
}

/// The same token with a high S replaced by n − S (unchanged when S is already low).
pub fn low_s(token: String) -> String {
    use base64::Engine as _;
    match (es256_signature(&token).and_then(|s| s.normalize_s()), token.rsplit_once('.')) {
        (Some(low), Some((signed, _))) => {
            format!("{signed}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(low.to_bytes()))
        }
        _ => token,
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    state: &AppState,
    token: &str,
    audience: &str,
) -> Result<T, VerifyError> {
    // ECDSA signatures are malleable: (r, n−S) verifies wherever (r, S) does. Only the low-S
    // form is ours (`sign`).
    match es256_signature(token) {
        Some(sig) if sig.normalize_s().is_none() => {}
        Some(_) => return Err(VerifyError::Invalid("signature is not in low-S form".into())),
        None => return Err(VerifyError::Invalid("malformed ES256 signature".into())),
    }
    let header = jsonwebtoken::decode_header(token).map_err(|e| VerifyError::Invalid(e.to_string()))?;
    if header.alg != Algorithm::ES256 {
        return Err(VerifyError::Invalid(format!("algorithm {:?} is not accepted", header.alg)));
    }
    if header.kid.as_deref() != Some(state.secrets.token_key.kid.as_str()) {
        return Err(VerifyError::Invalid("unknown signing key".into()));
    }
    jsonwebtoken::decode::<T>(token, &state.secrets.token_key.decoding, &validation(state, audience))
        .map(|d| d.claims)
        .map_err(|e| VerifyError::Invalid(e.to_string()))
}

/// Verifies an access token presented to `/v2`.
pub fn verify(state: &AppState, token: &str) -> Result<Claims, VerifyError> {
    decode(state, token, &state.config.token.service)
}

/// Access tokens this process has verified, keyed by the SHA-256 of the whole token, so the
/// ~0.2 ms ES256 check runs once per token rather than once per request (a pull makes dozens
/// with the same token). Time bounds are re-checked on every use; the cache holds at most
/// `VERIFIED_MAX` tokens. Only ever saves work: a token enters it only after `verify`.
#[derive(Debug, Default)]
pub struct VerifiedTokens {
    map: std::sync::Mutex<std::collections::HashMap<[u8; 32], std::sync::Arc<Claims>>>,
}

const VERIFIED_MAX: usize = 10_000;
const LEEWAY_S: i64 = 60;

impl VerifiedTokens {
    pub fn verify(&self, state: &AppState, token: &str) -> Result<std::sync::Arc<Claims>, VerifyError> {
        use sha2::Digest as _;
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = now_ms() / 1000;
        if let Some(c) = self.lookup(&key, now) {
            return Ok(c);
        }
        let claims = std::sync::Arc::new(verify(state, token)?);
        self.insert(key, claims.clone(), now);
        Ok(claims)
    }

    fn fresh(c: &Claims, now: i64) -> bool {
        now <= c.exp + LEEWAY_S && now + LEEWAY_S >= c.nbf
    }

    /// A cached token still inside its time bounds (a stale one is dropped).
    fn lookup(&self, key: &[u8; 32], now: i64) -> Option<std::sync::Arc<Claims>> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some(c) if Self::fresh(c, now) => Some(c.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    fn insert(&self, key: [u8; 32], claims: std::sync::Arc<Claims>, now: i64) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= VERIFIED_MAX {
            map.retain(|_, c| Self::fresh(c, now));
            if map.len() >= VERIFIED_MAX {
                map.clear();
            }
        }
        map.insert(key, claims);
    }
}

/// Narrows requested scopes to what `who` holds. Unknown projects and types grant nothing.
/// `*` is granted as `*` when every action is held, otherwise as the actions that are. Refused
/// repository actions are listed in `refused` (see `Access`).
pub async fn grant(
    state: &AppState,
    who: Option<&Principal>,
    requested: Vec<Access>,
) -> Result<Vec<Access>, sqlx::Error> {
    let mut out = Vec::new();
    for req in requested {
        match req.typ.as_str() {
            "repository" => {
                let project = crate::registry::meta::project_of(&state.db, &req.name).await?;
                let held = match &project {
                    Some(p) => {
                        rbac::registry_actions(&state.db, who, ProjectAccess { id: p.id, public: p.public })
                            .await?
                    }
                    None => vec![],
                };
                let mut asked: Vec<&str> = Vec::new();
                for a in &req.actions {
                    let expanded: &[&str] =
                        if a == "*" { &["pull", "push", "delete"] } else { &[a.as_str()] };
                    for x in expanded {
                        if !asked.contains(x) {
                            asked.push(x);
                        }
                    }
                }
                let all = ["pull", "push", "delete"].iter().all(|x| held.contains(x));
                let actions: Vec<String> = if req.actions.iter().any(|a| a == "*") && all {
                    vec!["*".into()]
                } else {
                    asked.iter().filter(|a| held.contains(a)).map(|a| a.to_string()).collect()
                };
                let refused: Vec<String> = asked
                    .iter()
                    .filter(|a| !held.contains(a) && ["pull", "push", "delete"].contains(a))
                    .map(|a| a.to_string())
                    .collect();
                if !actions.is_empty() || !refused.is_empty() {
                    out.push(Access { actions, project_id: project.map(|p| p.id), refused, ..req });
                }
            }
            "registry"
                if req.name == "catalog"
                    && who.is_some_and(Principal::is_sysadmin)
                    && req.actions.iter().any(|a| a == "*") =>
            {
                out.push(Access { actions: vec!["*".into()], project_id: None, refused: vec![], ..req });
            }
            _ => {}
        }
    }
    Ok(out)
}

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub token: String,
    pub access_token: String,
    pub expires_in: i64,
    pub issued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Signs an access token (and a refresh token when an account asked for one and
/// `token.refresh_tokens` is on).
pub async fn issue(
    state: &AppState,
    who: Option<&Principal>,
    requested: Vec<Access>,
    offline: bool,
) -> Result<TokenResponse, TokenError> {
    let access = grant(state, who, requested).await?;
    metrics::counter!("berth_tokens_issued_total", "kind" => if who.is_some() { "authenticated" } else { "anonymous" })
        .increment(1);
    let settings = crate::settings::load(&state.db, &state.config).await?;
    let now = now_ms() / 1000;
    let lifetime = settings.token_expiration * 60;
    let claims = Claims {
        iss: state.config.token.issuer.clone(),
        sub: who.map(|w| w.name().to_string()).unwrap_or_default(),
        aud: state.config.token.service.clone(),
        exp: now + lifetime,
        nbf: now,
        iat: now,
        jti: jti(),
        access,
    };
    let token = sign(state, &claims).map_err(|e| TokenError::Internal(anyhow::anyhow!("signing: {e}")))?;
    let refresh_token = match (offline && state.config.token.refresh_tokens, who) {
        (true, Some(w)) => Some(refresh_token(state, w, now)?),
        _ => None,
    };
    Ok(TokenResponse {
        access_token: token.clone(),
        token,
        expires_in: lifetime,
        issued_at: crate::db::rfc3339(now * 1000),
        refresh_token,
    })
}

fn refresh_token(state: &AppState, who: &Principal, now: i64) -> Result<String, TokenError> {
    let (kind, id, epoch) = match who {
        Principal::User(u) => ("user", u.id, u.password_changed_at),
        Principal::Robot(r) => ("robot", r.id, r.secret_changed_at),
    };
    let claims = RefreshClaims {
        iss: state.config.token.issuer.clone(),
        sub: who.name().to_string(),
        aud: refresh_audience(&state.config.token.service),
        exp: now + state.config.token.refresh_lifetime.as_secs() as i64,
        nbf: now,
        iat: now,
        jti: jti(),
        kind: kind.into(),
        id,
        epoch,
    };
    sign(state, &claims).map_err(|e| TokenError::Internal(anyhow::anyhow!("signing: {e}")))
}

/// The account a refresh token stands for, if it is still valid.
async fn redeem(state: &AppState, token: &str) -> Result<Principal, TokenError> {
    let c: RefreshClaims = decode(state, token, &refresh_audience(&state.config.token.service))
        .map_err(|_| TokenError::Unauthorized("invalid or expired refresh token".into()))?;
    let principal = match c.kind.as_str() {
        "user" => accounts::get_by_id(&state.db, c.id)
            .await?
            .filter(|u| u.password_changed_at == c.epoch && u.username == c.sub)
            .map(Principal::User),
        "robot" => robots::still_valid(&state.db, c.id, c.epoch).await?.map(Principal::Robot),
        _ => None,
    };
    principal
        .ok_or_else(|| TokenError::Unauthorized("the refresh token is no longer valid; log in again".into()))
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    /// A locked name: 401 UNAUTHORIZED with the lockout message and `Retry-After` (seconds).
    /// Not 429: podman, skopeo and buildah print a 401's message but only "too many requests
    /// to registry" for any 429 (containers/image `httpResponseToError`); docker prints both.
    #[error("{0}")]
    Locked(String, u64),
    /// 429 with `Retry-After` (seconds): the password-check queue is full.
    #[error("{0}")]
    TooMany(String, u64),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(anyhow::Error),
}

impl From<sqlx::Error> for TokenError {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::error::is_transient(&e) {
            tracing::warn!(error = %e, kind = ?crate::db::error::classify(&e), "database unavailable");
            return TokenError::Unavailable("the database is unavailable; retry later".into());
        }
        TokenError::Internal(e.into())
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            TokenError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            TokenError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            TokenError::Locked(..) => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            TokenError::TooMany(..) => (StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS"),
            TokenError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
            TokenError::Internal(e) => {
                tracing::error!(error = %e, "token service failure");
                (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR")
            }
        };
        let body = Json(json!({ "errors": [{ "code": code, "message": self.to_string() }] }));
        let mut r = (status, body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"berth\""));
        }
        if let TokenError::Locked(_, s) | TokenError::TooMany(_, s) = self {
            r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(s));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(header::RETRY_AFTER, crate::db::error::retry_after());
        }
        r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
        r
    }
}

impl From<BasicAuthError> for TokenError {
    fn from(e: BasicAuthError) -> Self {
        match e {
            BasicAuthError::Invalid => TokenError::Unauthorized("invalid username or password".into()),
            BasicAuthError::Malformed => TokenError::Unauthorized("malformed credentials".into()),
            e @ BasicAuthError::TooLong(_) => TokenError::Unauthorized(e.to_string()),
            e @ BasicAuthError::Locked(s) => TokenError::Locked(e.to_string(), s),
            e @ BasicAuthError::Busy => TokenError::TooMany(e.to_string(), 1),
            BasicAuthError::Unavailable(m) => TokenError::Unavailable(m),
            BasicAuthError::Db(e) => e.into(),
        }
    }
}

/// The account behind Basic credentials, if any (`Ok(None)` without credentials).
async fn basic_principal(
    state: &AppState,
    headers: &HeaderMap,
    ctx: &ClientCtx,
) -> Result<Option<Principal>, TokenError> {
    let creds =
        basic_credentials(headers).map_err(|_| TokenError::Unauthorized("malformed credentials".into()))?;
    let Some((user, pass)) = creds else { return Ok(None) };
    Ok(Some(authenticate_basic(state, &user, &pass, ctx).await?))
}

fn ok(resp: TokenResponse) -> Response {
    let mut r = Json(resp).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    r
}

/// Records a `login` audit row the first time an account gets a token from an address
/// (then at most every 10 minutes), so repeated token requests of one push do not flood the log.
fn audit_login(state: &AppState, who: Option<&Principal>, ctx: &ClientCtx) {
    if let Some(w) = who {
        if state.audit.first_login_in_a_while(w.name(), &ctx.ip) {
            state
                .audit
                .record(Event::new(w.name(), "login", "user", w.name()).ip(&ctx.ip).detail("token service"));
        }
    }
}

/// `GET /service/token?service=…&scope=…&account=…&offline_token=…` (Basic credentials
/// optional; without them and without a scope: 401).
pub async fn get_token(
    State(state): State<AppState>,
    ctx: ClientCtx,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, TokenError> {
    let scopes = parse_scopes(params.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.as_str()))
        .map_err(TokenError::BadRequest)?;
    let offline = params.iter().any(|(k, v)| k == "offline_token" && v == "true");
    let who = basic_principal(&state, &headers, &ctx).await?;
    if who.is_none() && scopes.is_empty() {
        return Err(TokenError::Unauthorized("authentication required".into()));
    }
    audit_login(&state, who.as_ref(), &ctx);
    Ok(ok(issue(&state, who.as_ref(), scopes, offline).await?))
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    pub grant_type: String,
    // `service` and `client_id` are accepted and not needed: the audience is ours.
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub access_type: Option<String>,
}

/// `POST /service/token` (OAuth2 form): `grant_type=password` with `username`/`password`, or
/// `grant_type=refresh_token` with `refresh_token`.
pub async fn post_token(
    State(state): State<AppState>,
    ctx: ClientCtx,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, TokenError> {
    let Form(form) = form.map_err(|e| TokenError::BadRequest(format!("invalid token request: {e}")))?;
    let scopes = parse_scopes(form.scope.as_deref()).map_err(TokenError::BadRequest)?;
    let (who, offline) = match form.grant_type.as_str() {
        "password" => {
            let (Some(u), Some(p)) = (form.username.as_deref(), form.password.as_deref()) else {
                return Err(TokenError::BadRequest("username and password are required".into()));
            };
            let who = authenticate_basic(&state, u, p, &ctx).await?;
            audit_login(&state, Some(&who), &ctx);
            (who, form.access_type.as_deref() == Some("offline"))
        }
        // 401 (not OAuth's 400 unsupported_grant_type) so that docker, holding an identity
        // token from when they were on, prints the message and its user logs in again.
        "refresh_token" if !state.config.token.refresh_tokens => {
            return Err(TokenError::Unauthorized(
                "refresh tokens are disabled on this registry (token.refresh_tokens); log in again".into(),
            ))
        }
        "refresh_token" => {
            let t = form
                .refresh_token
                .as_deref()
                .ok_or_else(|| TokenError::BadRequest("refresh_token is required".into()))?;
            (redeem(&state, t).await?, false)
        }
        other => return Err(TokenError::BadRequest(format!("unsupported grant_type {other:?}"))),
    };
    let mut resp = issue(&state, Some(&who), scopes, offline).await?;
    if form.grant_type == "refresh_token" {
        // OAuth2 clients (docker) keep using the refresh token they have.
        resp.refresh_token = form.refresh_token;
    }
    Ok(ok(resp))
}

/// `GET /service/token/jwks` (also `/.well-known/jwks.json`): the public signing key.
pub async fn jwks(State(state): State<AppState>) -> Response {
    Json(json!({ "keys": [state.secrets.token_key.jwk] })).into_response()
}

/// A scope string for a challenge: `repository:<name>:<actions>`.
pub fn scope_string(name: &str, actions: &[&str]) -> String {
    format!("repository:{name}:{}", actions.join(","))
}

/// The `WWW-Authenticate` challenge of a `/v2` refusal. With an `error` (RFC 6750 §3.1), the
/// refusal's message goes along as `error_description`: docker turns an `insufficient_scope`
/// challenge into its own error and prints that description, or, without one, the bare
/// "denied: requested access to the resource is denied" instead of saying why.
pub fn challenge(
    state: &AppState,
    ctx: &ClientCtx,
    scope: Option<&str>,
    error: Option<&str>,
    description: Option<&str>,
) -> String {
    let mut c =
        format!("Bearer realm=\"{}/service/token\",service=\"{}\"", ctx.base_url, state.config.token.service);
    if let Some(s) = scope {
        c.push_str(&format!(",scope=\"{s}\""));
    }
    if let Some(e) = error {
        c.push_str(&format!(",error=\"{e}\""));
        if let Some(d) = description.map(error_description).filter(|d| !d.is_empty()) {
            c.push_str(&format!(",error_description=\"{d}\""));
        }
    }
    c
}

/// RFC 6750's `error_description` alphabet (printable ASCII without `"` and `\`), at most 300
/// characters: anything else becomes `'` or `?`.
fn error_description(text: &str) -> String {
    text.chars()
        .take(300)
        .map(|ch| match ch {
            '"' | '\\' => '\'',
            ' '..='~' => ch,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_descriptions_stay_inside_the_quoted_string() {
        assert_eq!(error_description("a \"b\" \\ c\u{202e}é"), "a 'b' ' c??");
        assert_eq!(error_description(&"x".repeat(400)).len(), 300);
    }

    #[test]
    fn scope_grammar() {
        let s = parse_scopes(["repository:p1/app:pull,push", "repository:p1/app:delete registry:catalog:*"])
            .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].actions, ["pull", "push", "delete"]);
        assert_eq!(s[1].typ, "registry");
        assert_eq!(s[1].name, "catalog");
        let h = parse_scopes(["repository:localhost:5000/p1/app:pull"]).unwrap();
        assert_eq!(h[0].name, "localhost:5000/p1/app");
        let c = parse_scopes(["repository(plugin):p/x:pull"]).unwrap();
        assert_eq!(c[0].typ, "repository");
        assert!(parse_scopes(["nonsense"]).is_err());
        assert!(parse_scopes(["repository:pull"]).is_err());
        assert!(parse_scopes(["repository::pull"]).is_err());
        assert!(parse_scopes([""]).unwrap().is_empty());
        let many: Vec<String> = (0..=MAX_SCOPES).map(|i| format!("repository:p/r{i}:pull")).collect();
        assert!(parse_scopes(many.iter().map(String::as_str)).is_err());
        assert_eq!(parse_scopes(many[..MAX_SCOPES].iter().map(String::as_str)).unwrap().len(), MAX_SCOPES);
    }

    #[test]
    fn verified_cache_rechecks_time_bounds() {
        let cache = VerifiedTokens::default();
        let c = |exp, nbf| {
            std::sync::Arc::new(Claims {
                iss: String::new(),
                sub: "a".into(),
                aud: String::new(),
                exp,
                nbf,
                iat: nbf,
                jti: String::new(),
                access: vec![],
            })
        };
        cache.insert([1; 32], c(1000, 900), 950);
        assert!(cache.lookup(&[1; 32], 950).is_some());
        assert!(cache.lookup(&[1; 32], 1060).is_some(), "within the leeway");
        assert!(cache.lookup(&[1; 32], 1061).is_none(), "expired");
        assert!(cache.lookup(&[1; 32], 950).is_none(), "and dropped");
        cache.insert([2; 32], c(2000, 1000), 900);
        assert!(cache.lookup(&[2; 32], 900).is_none(), "not yet valid");
        assert!(cache.lookup(&[3; 32], 950).is_none());
    }

    #[test]
    fn claims_check_project_and_action() {
        let c = Claims {
            iss: "i".into(),
            sub: "alice".into(),
            aud: "a".into(),
            exp: 0,
            nbf: 0,
            iat: 0,
            jti: "j".into(),
            access: vec![Access {
                typ: "repository".into(),
                name: "p/app".into(),
                actions: vec!["pull".into()],
                project_id: Some(3),
                refused: vec!["push".into()],
            }],
        };
        assert!(c.allows("p/app", 3, "pull"));
        assert!(!c.allows("p/app", 3, "push"));
        assert!(!c.allows("p/app", 4, "pull"), "a recreated project has a new id");
        assert!(!c.allows("p/other", 3, "pull"));
        assert!(c.refused("p/app", "push"));
        assert!(!c.refused("p/app", "delete"));
        assert!(!c.allows_catalog());
    }
}

//! Who is calling: HTTP Basic credentials or the portal session cookie, resolved by the
//! `Caller` extractor. Handlers state the permission they need explicitly
//! (`caller.require_user()?`, `caller.require_sysadmin()?`): there is no invisible auth layer.
//!
//! **Cookie-authenticated writes must carry the session's CSRF token** in
//! `X-Harbor-CSRF-Token` (checked in constant time); Basic-authenticated requests need none,
//! since browsers never attach those credentials on their own.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::accounts::{self, LoginError, User};
use crate::api::error::ApiError;
use crate::audit::Event;
use crate::client::ClientCtx;
use crate::rbac::Principal;
use crate::robots;
use crate::sessions::{ADMIN_IN_AUTH, AUTH_EPOCH, CSRF, GROUPS, USER_ID};
use crate::state::AppState;

pub const CSRF_HEADER: &str = "x-harbor-csrf-token";

/// Remembers recently verified Basic credentials so that a `docker push` (dozens of requests)
/// does not run argon2 on every one. Entries are keyed by a keyed SHA-256 of the credentials
/// (the password itself is never kept); a hit is trusted only if the user's password has not
/// changed since and the account is not locked (both checked in the database, so they hold
/// across replicas). An entry lives 60 s
/// after its last use and at most 10 minutes. Concurrent first uses of the same credentials
/// wait for one verification instead of each running argon2. Per-process by nature; it only
/// ever saves work, never grants access on its own.
///
/// **The in-flight map is bounded**: an entry lives only while a check of its credentials runs
/// (an `Inflight` guard removes it when the last check ends — returned, failed, cancelled by a
/// client that went away, or panicked), and it never holds more than `INFLIGHT_MAX` entries:
/// beyond that a check is not coalesced and goes straight to the argon2 queue, which answers
/// 429 when full. Many distinct credentials cannot grow it. Test: `auth::tests` `inflight_*`.
pub struct CredentialCache {
    key: [u8; 32],
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], CacheEntry>>,
    inflight: std::sync::Mutex<std::collections::HashMap<[u8; 32], Gate>>,
}

type Gate = std::sync::Arc<tokio::sync::Mutex<()>>;

/// Credentials being checked at most (each distinct credential is one entry).
const INFLIGHT_MAX: usize = 1024;

/// A check's place in the in-flight map; the last one of a credential removes its entry.
struct Inflight<'a> {
    cache: &'a CredentialCache,
    fp: [u8; 32],
    /// Always `Some` until `drop`, which releases it under the map's lock.
    gate: Option<Gate>,
}

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        // This check's clone is released under the map's lock, like every clone is taken: so
        // when two checks end at once, the second sees only the map's clone and removes it.
        let mut m = self.cache.inflight.lock().unwrap_or_else(|p| p.into_inner());
        drop(self.gate.take());
        if m.get(&self.fp).is_some_and(|g| std::sync::Arc::strong_count(g) == 1) {
            m.remove(&self.fp);
        }
    }
}

#[derive(Clone)]
struct CacheEntry {
    user_id: i64,
    epoch: i64,
    expires: std::time::Instant,
    created: std::time::Instant,
    /// Directory and provider users (`identity::Verified::external`): the groups found at the
    /// check, reused until `expires` (`auth.directory_cache`, never renewed).
    external: Option<(std::sync::Arc<[i64]>, bool)>,
}

const CREDENTIAL_IDLE: std::time::Duration = std::time::Duration::from_secs(60);
const CREDENTIAL_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(600);
const CREDENTIAL_CACHE_MAX: usize = 10_000;

impl CredentialCache {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key, entries: Default::default(), inflight: Default::default() }
    }

    fn fingerprint(&self, user: &str, pass: &str) -> [u8; 32] {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(self.key);
        h.update((user.len() as u64).to_le_bytes());
        h.update(user.as_bytes());
        h.update(pass.as_bytes());
        h.finalize().into()
    }

    /// A live entry, renewed for another idle period (up to the maximum age).
    fn lookup(&self, fp: &[u8; 32]) -> Option<CacheEntry> {
        let now = std::time::Instant::now();
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let e = map.get_mut(fp).filter(|e| e.expires > now)?;
        if e.external.is_none() {
            e.expires = (now + CREDENTIAL_IDLE).min(e.created + CREDENTIAL_MAX_AGE);
        }
        Some(e.clone())
    }

    /// The cached user if the password is unchanged; `Locked` while the account is locked
    /// (the lockout holds for credentials verified before it, too).
    async fn check(&self, state: &AppState, e: CacheEntry) -> Result<Option<User>, LoginError> {
        let Some(mut u) =
            accounts::get_by_id(&state.db, e.user_id).await?.filter(|u| u.password_changed_at == e.epoch)
        else {
            return Ok(None);
        };
        if let Some((groups, admin)) = &e.external {
            u.groups = groups.to_vec();
            u.admin_role_in_auth = *admin;
        }
        match accounts::locked_for(&state.db, &accounts::lockout_key(&u.username)).await? {
            Some(s) => Err(LoginError::Locked(s)),
            None => Ok(Some(u)),
        }
    }

    /// Same result as `identity::verify_password` (CLI surface), remembered on success.
    pub async fn authenticate(
        &self,
        state: &AppState,
        user: &str,
        pass: &str,
        count_unknown: bool,
    ) -> Result<User, LoginError> {
        let fp = self.fingerprint(user, pass);
        if let Some(e) = self.lookup(&fp) {
            if let Some(u) = self.check(state, e).await? {
                return Ok(u);
            }
        }
        // One verification per credential at a time; the others then find the cache filled.
        let inflight = self.enter(fp);
        let _turn = match inflight.as_ref().and_then(|i| i.gate.as_ref()) {
            Some(gate) => Some(gate.lock().await),
            None => None,
        };
        match self.lookup(&fp) {
            Some(e) => match self.check(state, e).await? {
                Some(u) => Ok(u),
                None => self.verify(state, fp, user, pass, count_unknown).await,
            },
            None => self.verify(state, fp, user, pass, count_unknown).await,
        }
    }

    /// Joins (or opens) the check of `fp`; `None` when the map is full (then not coalesced).
    fn enter(&self, fp: [u8; 32]) -> Option<Inflight<'_>> {
        let mut m = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= INFLIGHT_MAX && !m.contains_key(&fp) {
            return None;
        }
        let gate = m.entry(fp).or_default().clone();
        Some(Inflight { cache: self, fp, gate: Some(gate) })
    }

    #[cfg(test)]
    fn inflight_len(&self) -> usize {
        self.inflight.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    async fn verify(
        &self,
        state: &AppState,
        fp: [u8; 32],
        user: &str,
        pass: &str,
        count_unknown: bool,
    ) -> Result<User, LoginError> {
        let v =
            crate::identity::verify_password(state, user, pass, count_unknown, crate::identity::Surface::Cli)
                .await?;
        let u = v.user;
        let now = std::time::Instant::now();
        let directory_cache = state.config.auth.directory_cache;
        if v.external && directory_cache.is_zero() {
            return Ok(u);
        }
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CREDENTIAL_CACHE_MAX {
            map.retain(|_, e| e.expires > now);
            if map.len() >= CREDENTIAL_CACHE_MAX {
                map.clear();
            }
        }
        map.insert(
            fp,
            CacheEntry {
                user_id: u.id,
                epoch: u.password_changed_at,
                expires: now + if v.external { directory_cache } else { CREDENTIAL_IDLE },
                created: now,
                external: v.external.then(|| (u.groups.clone().into(), u.admin_role_in_auth)),
            },
        );
        Ok(u)
    }
}

/// Failed logins per client address in the current minute, per process. Past
/// `FAILURES_PER_MINUTE`, the client's logins are still checked and answered (a correct one
/// still works: many clients may share an address behind NAT or an untrusted proxy), but its
/// failures are no longer stored: no audit row, and no `login_failures` row for a name no
/// account has. So one anonymous client makes the server store at most that many rows of each
/// a minute (names at most 255 characters); rows for real accounts are bounded by their
/// number. IPv6 clients are counted per /64, which one host usually has whole.
#[derive(Debug, Default)]
pub struct FailureBudget {
    map: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, u32)>>,
}

pub const FAILURES_PER_MINUTE: u32 = 60;
const BUDGET_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

impl FailureBudget {
    fn client_key(ip: &str) -> String {
        match ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            Ok(std::net::IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_default(),
            _ => ip.to_string(),
        }
    }

    /// Whether this client has used its budget for the current minute.
    pub fn exhausted(&self, ip: &str) -> bool {
        let now = std::time::Instant::now();
        let m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        matches!(m.get(&Self::client_key(ip)),
            Some((start, n)) if *n >= FAILURES_PER_MINUTE && now.duration_since(*start) < BUDGET_WINDOW)
    }

    /// Counts one failed login of this client.
    pub fn spend(&self, ip: &str) {
        let now = std::time::Instant::now();
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= 100_000 {
            m.retain(|_, (start, _)| now.duration_since(*start) < BUDGET_WINDOW);
        }
        let e = m.entry(Self::client_key(ip)).or_insert((now, 0));
        if now.duration_since(e.0) >= BUDGET_WINDOW {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Anonymous,
    Basic,
    Session,
}

/// The authenticated caller of a REST request (possibly anonymous): a user (Basic or
/// session) or a robot (Basic only).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Option<Principal>,
    pub via: Via,
    /// The session's CSRF token when authenticated by cookie.
    pub csrf: Option<String>,
    pub ctx: ClientCtx,
}

impl Caller {
    pub fn user(&self) -> Option<&User> {
        self.principal.as_ref().and_then(Principal::user)
    }

    /// A local user (robots are refused: this is about a person's own account).
    pub fn require_user(&self) -> Result<&User, ApiError> {
        match &self.principal {
            Some(Principal::User(u)) => Ok(u),
            Some(Principal::Robot(_)) => Err(ApiError::Forbidden("robot accounts cannot do this".into())),
            None => Err(ApiError::unauthorized()),
        }
    }

    pub fn require_principal(&self) -> Result<&Principal, ApiError> {
        self.principal.as_ref().ok_or_else(ApiError::unauthorized)
    }

    pub fn require_sysadmin(&self) -> Result<&Principal, ApiError> {
        let p = self.require_principal()?;
        if p.is_sysadmin() {
            Ok(p)
        } else {
            Err(ApiError::Forbidden("system admin role required".into()))
        }
    }

    /// The name audit rows carry (`anonymous` without credentials).
    pub fn name(&self) -> &str {
        self.principal.as_ref().map(Principal::name).unwrap_or("anonymous")
    }

    /// An audit row by this caller from its address.
    pub fn event(&self, operation: &str, resource_type: &str, resource: impl Into<String>) -> Event {
        Event::new(self.name(), operation, resource_type, resource).ip(&self.ctx.ip)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BasicAuthError {
    #[error("invalid username or password")]
    Invalid,
    #[error("malformed credentials")]
    Malformed,
    /// Seconds until the name may try again (`LoginError::Locked`).
    #[error("{}", LoginError::Locked(*.0))]
    Locked(u64),
    /// Over-long name or secret (`LoginError::Malformed`): nothing was checked or stored.
    #[error("{0}")]
    TooLong(String),
    /// The password-check queue is full (`LoginError::Busy`).
    #[error("{}", LoginError::Busy)]
    Busy,
    /// The directory or identity provider is unavailable (`LoginError::Unavailable`).
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<LoginError> for BasicAuthError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::InvalidCredentials => BasicAuthError::Invalid,
            LoginError::Locked(s) => BasicAuthError::Locked(s),
            LoginError::Malformed(m) => BasicAuthError::TooLong(m),
            LoginError::Busy => BasicAuthError::Busy,
            LoginError::Unavailable(m) => BasicAuthError::Unavailable(m),
            LoginError::Db(e) => BasicAuthError::Db(e),
        }
    }
}

impl From<BasicAuthError> for ApiError {
    fn from(e: BasicAuthError) -> Self {
        match e {
            BasicAuthError::Invalid | BasicAuthError::Malformed | BasicAuthError::TooLong(_) => {
                ApiError::Unauthorized(e.to_string())
            }
            BasicAuthError::Locked(s) => LoginError::Locked(s).into(),
            BasicAuthError::Busy => LoginError::Busy.into(),
            BasicAuthError::Unavailable(m) => LoginError::Unavailable(m).into(),
            BasicAuthError::Db(e) => e.into(),
        }
    }
}

/// Basic credentials of a user (argon2, cached by `CredentialCache`, with lockout) or a robot
/// (`robot$…`, SHA-256 of its random secret). Failures are audited.
pub async fn authenticate_basic(
    state: &AppState,
    name: &str,
    secret: &str,
    ctx: &ClientCtx,
) -> Result<Principal, BasicAuthError> {
    // Over-long input is refused before anything is checked, counted or audited; a client past
    // its failure budget leaves no trace of its failures.
    accounts::check_login_input(name, secret)?;
    let store = !state.login_budget.exhausted(&ctx.ip);
    let result = if name.starts_with(robots::PREFIX) {
        match robots::authenticate(&state.db, &state.config.auth, name, secret, store).await {
            Ok(Some(r)) => Ok(Principal::Robot(r)),
            Ok(None) => Err(BasicAuthError::Invalid),
            Err(e) => Err(e.into()),
        }
    } else {
        state
            .credentials
            .authenticate(state, name, secret, store)
            .await
            .map(Principal::User)
            .map_err(Into::into)
    };
    if let Err(e @ (BasicAuthError::Invalid | BasicAuthError::Locked(_))) = &result {
        state.login_budget.spend(&ctx.ip);
        if !store {
            return result;
        }
        state
            .audit
            .record(Event::new(name, "login", "user", name).ip(&ctx.ip).failed().detail(e.to_string()));
    }
    result
}

/// Parses `Authorization: Basic …`. `Ok(None)` when there is no Basic header.
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value =
        value.to_str().map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(ApiError::Unauthorized("malformed Authorization header".into()));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::Unauthorized("malformed Basic credentials".into()))?;
    let (user, pass) = decoded
        .split_once(':')
        .ok_or_else(|| ApiError::Unauthorized("malformed Basic credentials".into()))?;
    Ok(Some((user.to_string(), pass.to_string())))
}

/// The user bound to a session, or None when the session is anonymous, the user is gone or
/// the password changed since login. The groups found at login come back with it.
pub async fn session_user(state: &AppState, session: &Session) -> Result<Option<User>, ApiError> {
    let Some(id) = session.get::<i64>(USER_ID).await? else { return Ok(None) };
    let epoch = session.get::<i64>(AUTH_EPOCH).await?;
    match accounts::get_by_id(&state.db, id).await? {
        Some(mut u) if Some(u.password_changed_at) == epoch => {
            u.groups = session.get::<Vec<i64>>(GROUPS).await?.unwrap_or_default();
            u.admin_role_in_auth = session.get::<bool>(ADMIN_IN_AUTH).await?.unwrap_or(false);
            Ok(Some(u))
        }
        _ => {
            session.flush().await?;
            Ok(None)
        }
    }
}

/// Checks credentials and binds the user to the session under a fresh id (no fixation).
/// Returns the user and the new session's CSRF token.
pub async fn login_session(
    state: &AppState,
    session: &Session,
    username: &str,
    password: &str,
    ctx: &ClientCtx,
) -> Result<(User, String), ApiError> {
    accounts::check_login_input(username, password)?;
    let store = !state.login_budget.exhausted(&ctx.ip);
    let verified =
        crate::identity::verify_password(state, username, password, store, crate::identity::Surface::Portal)
            .await;
    let user = match verified {
        Ok(v) => v.user,
        Err(e) => {
            if matches!(e, LoginError::InvalidCredentials | LoginError::Locked(_)) {
                state.login_budget.spend(&ctx.ip);
            }
            if store && matches!(e, LoginError::InvalidCredentials | LoginError::Locked(_)) {
                tracing::info!(username, reason = %e, "login failed");
                state.audit.record(
                    Event::new(username, "login", "user", username)
                        .ip(&ctx.ip)
                        .failed()
                        .detail(e.to_string()),
                );
            }
            return Err(e.into());
        }
    };
    let csrf = bind_session(session, &user).await?;
    tracing::info!(username = %user.username, "login");
    state
        .audit
        .record(Event::new(&user.username, "login", "user", &user.username).ip(&ctx.ip).detail("portal"));
    Ok((user, csrf))
}

/// Binds a verified user (with its groups) to the session under a fresh id (no fixation) and
/// returns the new CSRF token. For the password form and the OIDC callback.
pub async fn bind_session(session: &Session, user: &User) -> Result<String, ApiError> {
    session.cycle_id().await?;
    let csrf = new_csrf_token();
    session.insert(USER_ID, user.id).await?;
    session.insert(AUTH_EPOCH, user.password_changed_at).await?;
    session.insert(GROUPS, &user.groups).await?;
    session.insert(ADMIN_IN_AUTH, user.admin_role_in_auth).await?;
    session.insert(CSRF, &csrf).await?;
    Ok(csrf)
}

/// Whether a browser sent this request from another site: `Sec-Fetch-Site` other than
/// `same-origin` or `none` when the browser sends it; otherwise an `Origin` that is neither
/// the external URL nor the host the request was sent to. That host is `X-Forwarded-Host`
/// only from a peer in `trusted_proxies` (`ClientCtx::resolve`), `Host` otherwise. A request
/// with neither header is not from a browser (browsers send `Origin` on every cross-origin
/// POST) and passes. Guards the portal's server functions and the `/c/login` form (login CSRF).
pub fn cross_site(cfg: &crate::config::Config, peer: Option<std::net::IpAddr>, h: &HeaderMap) -> bool {
    if let Some(site) = h.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = h.get(header::ORIGIN) else { return false };
    let Some(origin) = origin.to_str().ok().map(|o| o.trim_end_matches('/')) else { return true };
    if origin.eq_ignore_ascii_case(cfg.external_base())
        || origin.eq_ignore_ascii_case(&ClientCtx::resolve(cfg, peer, h).base_url)
    {
        return false;
    }
    let Some(origin_host) = url::Url::parse(origin).ok().and_then(|u| {
        let host = u.host_str()?.to_string();
        Some(match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        })
    }) else {
        return true;
    };
    let trusted = peer.is_some_and(|ip| cfg.is_trusted_proxy(ip));
    let host =
        if trusted { h.get("x-forwarded-host").or_else(|| h.get(header::HOST)) } else { h.get(header::HOST) };
    let host = host.and_then(|v| v.to_str().ok()).and_then(|v| v.split(',').next()).map(str::trim);
    !host.is_some_and(|host| host.eq_ignore_ascii_case(&origin_host))
}

pub fn new_csrf_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// Marks a request the portal makes in-process to a REST handler on behalf of its session.
#[derive(Debug, Clone, Copy)]
pub struct PortalCall;

fn is_write(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ctx = ClientCtx::from_parts(&state.config, parts);
        if let Some((username, password)) = basic_credentials(&parts.headers)? {
            let principal = authenticate_basic(state, &username, &password, &ctx).await?;
            return Ok(Caller { principal: Some(principal), via: Via::Basic, csrf: None, ctx });
        }
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, m)| ApiError::internal(anyhow::anyhow!("session layer missing: {m}")))?;
        let Some(user) = session_user(state, &session).await? else {
            return Ok(Caller { principal: None, via: Via::Anonymous, csrf: None, ctx });
        };
        let csrf = session.get::<String>(CSRF).await?;
        // The portal's own calls (`portal::Backend::rest`) carry no CSRF header: the server
        // function that made them already passed `portal::same_origin_guard`. The marker is
        // a request extension, which no client can set.
        if is_write(&parts.method) && parts.extensions.get::<PortalCall>().is_none() {
            let sent = parts.headers.get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
            let expected = csrf.as_deref().unwrap_or_default().as_bytes();
            if expected.is_empty() || !bool::from(sent.ct_eq(expected)) {
                return Err(ApiError::Forbidden(
                    "CSRF token missing or invalid: send the X-Harbor-CSRF-Token header".into(),
                ));
            }
        }
        Ok(Caller { principal: Some(Principal::User(user)), via: Via::Session, csrf, ctx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        m
    }

    fn fp(i: u32) -> [u8; 32] {
        let mut f = [0u8; 32];
        f[..4].copy_from_slice(&i.to_le_bytes());
        f
    }

    /// Entries live while a check runs: the last check of a credential removes it.
    #[test]
    fn inflight_entries_go_with_the_last_check() {
        let c = CredentialCache::new([7; 32]);
        let a = c.enter(fp(1)).unwrap();
        let b = c.enter(fp(1)).unwrap();
        assert!(
            std::sync::Arc::ptr_eq(a.gate.as_ref().unwrap(), b.gate.as_ref().unwrap()),
            "the same credential is coalesced"
        );
        let other = c.enter(fp(2)).unwrap();
        assert_eq!(c.inflight_len(), 2);
        drop(a);
        assert_eq!(c.inflight_len(), 2, "b still checks credential 1");
        drop(b);
        drop(other);
        assert_eq!(c.inflight_len(), 0);
    }

    /// Checks of one credential ending at the same moment still leave no entry behind. A stress
    /// check: the race it guards (counting clones before releasing one's own, which could leak
    /// an entry) has a window of a few instructions and did not show in this test either way;
    /// the reasoning is in `Inflight::drop`.
    #[test]
    fn inflight_entries_go_when_checks_end_together() {
        let c = std::sync::Arc::new(CredentialCache::new([7; 32]));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000u32 {
                        drop(c.enter(fp(i % 4)).unwrap());
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(c.inflight_len(), 0);
    }

    /// A check cancelled (its client went away) or panicking still removes its entry.
    #[tokio::test]
    async fn inflight_entries_go_on_cancel_and_panic() {
        let c = std::sync::Arc::new(CredentialCache::new([7; 32]));
        let (held, mut started) = tokio::sync::mpsc::channel::<()>(1);
        let c2 = c.clone();
        let waiting = tokio::spawn(async move {
            let i = c2.enter(fp(1)).unwrap();
            let _turn = i.gate.as_ref().unwrap().lock().await;
            held.send(()).await.unwrap();
            std::future::pending::<()>().await;
        });
        started.recv().await.unwrap();
        assert_eq!(c.inflight_len(), 1);
        waiting.abort();
        let _ = waiting.await;
        assert_eq!(c.inflight_len(), 0, "cancelled");
        let c3 = c.clone();
        let panicking = tokio::spawn(async move {
            let _i = c3.enter(fp(2)).unwrap();
            panic!("check failed badly");
        });
        assert!(panicking.await.unwrap_err().is_panic());
        assert_eq!(c.inflight_len(), 0, "panicked");
    }

    /// Many distinct credentials cannot grow the map past `INFLIGHT_MAX`: further checks are
    /// not coalesced (they go to the argon2 queue on their own), those in the map still are.
    #[test]
    fn inflight_map_is_bounded() {
        let c = CredentialCache::new([7; 32]);
        let held: Vec<_> = (0..INFLIGHT_MAX as u32).map(|i| c.enter(fp(i)).unwrap()).collect();
        assert_eq!(c.inflight_len(), INFLIGHT_MAX);
        assert!(c.enter(fp(INFLIGHT_MAX as u32)).is_none());
        assert_eq!(c.inflight_len(), INFLIGHT_MAX);
        assert!(c.enter(fp(3)).is_some(), "a credential already in flight is still coalesced");
        drop(held);
        assert_eq!(c.inflight_len(), 0);
        assert!(c.enter(fp(INFLIGHT_MAX as u32)).is_some());
    }

    #[test]
    fn basic_parsing() {
        let ok = basic_credentials(&h(&format!("Basic {}", STANDARD.encode("admin:Har:bor")))).unwrap();
        assert_eq!(ok, Some(("admin".into(), "Har:bor".into())));
        assert_eq!(basic_credentials(&HeaderMap::new()).unwrap(), None);
        assert_eq!(basic_credentials(&h("Bearer abc")).unwrap(), None);
        assert!(basic_credentials(&h("Basic !!!")).is_err());
        assert!(basic_credentials(&h(&format!("Basic {}", STANDARD.encode("nocolon")))).is_err());
        assert!(basic_credentials(&h("garbage")).is_err());
    }
}

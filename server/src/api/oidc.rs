//! OpenID Connect over HTTP (Harbor's routes; the protocol is `identity::oidc`):
//!
//! - `GET /c/oidc/login?redirect_url=/path`: starts the authorization-code flow (PKCE S256;
//!   `state`, `nonce` and the verifier in the portal session) and redirects to the provider.
//!   `redirect_url` is honoured for same-site paths only.
//! - `GET /c/oidc/callback`: checks `state`, exchanges the code, verifies the ID token, finds
//!   the user by `subiss` or onboards it, binds the session (`auth::bind_session`), writes the
//!   audit row and redirects. **Every failure goes back to the sign-in page**
//!   (`/account/sign-in?error=oidc&message=…`), never to a page of the provider's choosing.
//! - `GET|POST /c/oidc/onboard`: with `oidc_auto_onboard` off, the user picks a username
//!   (a small server-rendered form; `POST` also takes JSON `{"username": …}` as Harbor's does).
//! - `PUT /api/v2.0/users/{user_id}/cli_secret`: the user or a system admin sets the CLI
//!   secret (412 outside `oidc_auth` or for a user that is not from OIDC).
//! - `POST /api/v2.0/system/oidc/ping`: checks an endpoint's discovery (system admins).
//! - `end_session_url`: the provider's logout redirect for `/c/log_out` and the portal's logout
//!   (`oidc_logout`).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tower_sessions::Session;
use utoipa::ToSchema;

use crate::accounts::{self, User};
use crate::api::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::audit::Event;
use crate::auth::Caller;
use crate::client::ClientCtx;
use crate::crypto;
use crate::db::now_ms;
use crate::identity::oidc::{self, Identity, OidcError, Pending, Provider};
use crate::sessions::{OIDC_ONBOARD, OIDC_PENDING, OIDC_TOKEN, USER_ID};
use crate::settings::{self, AuthMode, Settings};
use crate::state::AppState;

pub use app::rest::users::OidcCliSecretReq;

const ONBOARD_PURPOSE: &str = "session.oidc_onboard";
const ID_TOKEN_PURPOSE: &str = "session.oidc_id_token";
const SIGN_IN: &str = "/account/sign-in";

/// Back to the sign-in page with a message.
fn sign_in_error(message: &str) -> Response {
    let m = app::server_fns::auth::encode_component(message);
    Redirect::to(&format!("{SIGN_IN}?error=oidc&message={m}")).into_response()
}

async fn oidc_settings(state: &AppState) -> Result<Result<Settings, &'static str>, ApiError> {
    let s = settings::load(&state.db, &state.config).await?;
    Ok(if s.auth_mode == AuthMode::Oidc {
        Ok(s)
    } else {
        Err("sign-in through an OIDC provider is not enabled (auth_mode is not oidc_auth)")
    })
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    pub redirect_url: String,
}

/// `GET /c/oidc/login`.
pub async fn login(
    State(state): State<AppState>,
    session: Session,
    AppQuery(q): AppQuery<LoginQuery>,
) -> Result<Response, ApiError> {
    let settings = match oidc_settings(&state).await? {
        Ok(s) => s,
        Err(m) => return Ok(sign_in_error(m)),
    };
    let target = app::server_fns::auth::safe_redirect(&q.redirect_url);
    let provider = match Provider::load(&state, &settings.oidc).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "OIDC login cannot start");
            return Ok(sign_in_error(&e.to_string()));
        }
    };
    let (url, pending) = provider.begin(&target).map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?;
    session.insert(OIDC_PENDING, &pending).await?;
    Ok(Redirect::to(url.as_str()).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// `GET /c/oidc/callback`.
pub async fn callback(
    State(state): State<AppState>,
    ctx: ClientCtx,
    session: Session,
    AppQuery(q): AppQuery<CallbackQuery>,
) -> Result<Response, ApiError> {
    let pending: Option<Pending> = session.remove(OIDC_PENDING).await?;
    let Some(pending) = pending else {
        return Ok(sign_in_error("this sign-in expired or was started in another browser: sign in again"));
    };
    if let Some(err) = q.error.as_deref() {
        let desc = q.error_description.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
        return Ok(sign_in_error(&format!("the provider did not sign you in ({err}{desc})")));
    }
    let (Some(code), Some(st)) = (q.code.as_deref(), q.state.as_deref()) else {
        return Ok(sign_in_error("the provider's answer has no code or state"));
    };
    if !bool::from(st.as_bytes().ct_eq(pending.state.as_bytes())) {
        tracing::warn!(ip = %ctx.ip, "OIDC callback with a wrong state");
        return Ok(sign_in_error("the sign-in state does not match: sign in again"));
    }
    if now_ms() - pending.started_ms > oidc::LOGIN_TIMEOUT_MS {
        return Ok(sign_in_error("the sign-in took too long: sign in again"));
    }
    let settings = match oidc_settings(&state).await? {
        Ok(s) => s,
        Err(m) => return Ok(sign_in_error(m)),
    };
    let identity = match Provider::load(&state, &settings.oidc).await {
        Ok(p) => p.finish(&state, &pending, code).await,
        Err(e) => Err(e),
    };
    let identity = match identity {
        Ok(i) => i,
        Err(OidcError::Db(e)) => return Err(e.into()),
        Err(e) => {
            tracing::warn!(ip = %ctx.ip, error = %e, "OIDC sign-in failed");
            state.audit.record(
                Event::new("", "login", "user", "").ip(&ctx.ip).failed().detail(format!("oidc: {e}")),
            );
            return Ok(sign_in_error(&e.to_string()));
        }
    };
    if let Some(row) = oidc::row_by_subiss(&state.db, &identity.subiss).await? {
        let Some(user) = accounts::get_by_id(&state.db, row.user_id).await? else {
            return Ok(sign_in_error("the user of this provider account was deleted"));
        };
        oidc::save_tokens(&state, user.id, &identity.tokens, identity.expires_at).await?;
        return finish_login(&state, &session, &ctx, &settings, user, &identity, &pending.redirect).await;
    }
    if settings.oidc.auto_onboard {
        return match create_user(&state, &identity, &identity.username).await? {
            Ok(user) => {
                finish_login(&state, &session, &ctx, &settings, user, &identity, &pending.redirect).await
            }
            Err(m) => Ok(sign_in_error(&format!("{m}; ask an administrator"))),
        };
    }
    let waiting = Onboarding { identity, redirect: pending.redirect };
    let sealed = crypto::encrypt(
        &state.secrets.encryption_key,
        ONBOARD_PURPOSE,
        &serde_json::to_string(&waiting).map_err(|e| ApiError::internal(anyhow::Error::from(e)))?,
    );
    session.insert(OIDC_ONBOARD, sealed).await?;
    Ok(Redirect::to("/c/oidc/onboard").into_response())
}

/// A provider identity waiting for its username (in the session, encrypted).
#[derive(Debug, Serialize, Deserialize)]
struct Onboarding {
    identity: Identity,
    redirect: String,
}

/// Creates the user and links it; `Ok(Err(message))` when the name cannot be used.
async fn create_user(
    state: &AppState,
    id: &Identity,
    username: &str,
) -> Result<Result<User, String>, ApiError> {
    if !accounts::valid_username(username) {
        return Ok(Err(format!("{username:?} cannot be a username here")));
    }
    if accounts::get_by_name(&state.db, username).await?.is_some() {
        return Ok(Err(format!("the username {username:?} is taken")));
    }
    let user = match accounts::onboard(&state.db, "oidc", username, &id.email, &id.realname).await {
        Ok(u) => u,
        Err(accounts::UserError::Db(e)) => return Err(e.into()),
        Err(e) => return Ok(Err(e.to_string())),
    };
    if !oidc::link(state, user.id, id).await? {
        return Ok(Err(format!("the username {username:?} is taken")));
    }
    tracing::info!(username, subiss = %id.subiss, "OIDC user onboarded");
    state.audit.record(Event::new(username, "create", "user", username).detail("oidc onboarding"));
    Ok(Ok(user))
}

async fn finish_login(
    state: &AppState,
    session: &Session,
    ctx: &ClientCtx,
    settings: &Settings,
    user: User,
    id: &Identity,
    target: &str,
) -> Result<Response, ApiError> {
    let user = crate::identity::with_oidc_groups(&state.db, &settings.oidc, user, &id.groups).await?;
    crate::auth::bind_session(session, &user).await?;
    if !id.tokens.id_token.is_empty() {
        let sealed = crypto::encrypt(&state.secrets.encryption_key, ID_TOKEN_PURPOSE, &id.tokens.id_token);
        session.insert(OIDC_TOKEN, sealed).await?;
    }
    tracing::info!(username = %user.username, "login (oidc)");
    state
        .audit
        .record(Event::new(&user.username, "login", "user", &user.username).ip(&ctx.ip).detail("oidc"));
    Ok(Redirect::to(&app::server_fns::auth::safe_redirect(target)).into_response())
}

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

async fn onboarding(state: &AppState, session: &Session) -> Result<Option<Onboarding>, ApiError> {
    let Some(sealed) = session.get::<String>(OIDC_ONBOARD).await? else { return Ok(None) };
    Ok(crypto::decrypt(&state.secrets.encryption_key, ONBOARD_PURPOSE, &sealed)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok()))
}

#[derive(Debug, Deserialize)]
pub struct OnboardQuery {
    #[serde(default)]
    pub error: String,
}

/// `GET /c/oidc/onboard`: the username form.
pub async fn onboard_page(
    State(state): State<AppState>,
    session: Session,
    AppQuery(q): AppQuery<OnboardQuery>,
) -> Result<Response, ApiError> {
    let Some(w) = onboarding(&state, &session).await? else {
        return Ok(sign_in_error("no sign-in is waiting for a username: sign in again"));
    };
    let error = if q.error.is_empty() {
        String::new()
    } else {
        format!("<p class=\"alert alert-error\" role=\"alert\" id=\"onboard-error\">{}</p>", escape(&q.error))
    };
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>Choose a username · Berth</title></head>\
         <body><main class=\"auth-card\"><h1>Choose a username</h1><p>You signed in as {email} through \
         the identity provider. Pick the username you will use with Berth and <code>docker login</code>.</p>\
         {error}<form method=\"post\" action=\"/c/oidc/onboard\"><label for=\"username\">Username</label> \
         <input id=\"username\" name=\"username\" required maxlength=\"255\" value=\"{name}\" autocomplete=\"username\"> \
         <button type=\"submit\" id=\"onboard-submit\">Continue</button></form></main></body></html>",
        email = escape(if w.identity.email.is_empty() { &w.identity.subject } else { &w.identity.email }),
        name = escape(&w.identity.username),
    );
    Ok(([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct OnboardReq {
    pub username: String,
}

/// `POST /c/oidc/onboard` (form or JSON `{"username": …}`).
pub async fn onboard(
    State(state): State<AppState>,
    ctx: ClientCtx,
    session: Session,
    parts: axum::http::request::Parts,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    if crate::auth::cross_site(&state.config, peer, &parts.headers) {
        return Err(ApiError::Forbidden("cross-site onboarding refused".into()));
    }
    let json = is_json(&parts.headers);
    let req: OnboardReq = if json {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?
    } else {
        let username = url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "username")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| ApiError::BadRequest("username is required".into()))?;
        OnboardReq { username }
    };
    let Some(w) = onboarding(&state, &session).await? else {
        return if json {
            Err(ApiError::Unauthorized("no sign-in is waiting for a username: sign in again".into()))
        } else {
            Ok(sign_in_error("no sign-in is waiting for a username: sign in again"))
        };
    };
    let settings = match oidc_settings(&state).await? {
        Ok(s) => s,
        Err(m) => return Err(ApiError::PreconditionFailed(m.into())),
    };
    let username = req.username.trim();
    match create_user(&state, &w.identity, username).await? {
        Ok(user) => {
            session.remove::<String>(OIDC_ONBOARD).await?;
            let res = finish_login(&state, &session, &ctx, &settings, user, &w.identity, &w.redirect).await?;
            Ok(if json { StatusCode::OK.into_response() } else { res })
        }
        Err(m) if json => {
            Err(if m.contains("taken") { ApiError::Conflict(m) } else { ApiError::BadRequest(m) })
        }
        Err(m) => Ok(Redirect::to(&format!(
            "/c/oidc/onboard?error={}",
            app::server_fns::auth::encode_component(&m)
        ))
        .into_response()),
    }
}

fn is_json(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"))
}

/// Where the browser goes after the local logout: the provider's end-session endpoint when
/// the session is an OIDC login, `oidc_logout` is on and the provider advertises one.
pub async fn end_session_url(state: &AppState, session: &Session) -> Option<String> {
    let sealed = session.get::<String>(OIDC_TOKEN).await.ok().flatten()?;
    session.get::<i64>(USER_ID).await.ok().flatten()?;
    let id_token = crypto::decrypt(&state.secrets.encryption_key, ID_TOKEN_PURPOSE, &sealed).ok()?;
    let settings = settings::load(&state.db, &state.config).await.ok()?;
    if settings.auth_mode != AuthMode::Oidc || !settings.oidc.logout {
        return None;
    }
    let provider = match Provider::load(state, &settings.oidc).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "OIDC logout: the provider session is left as it is");
            return None;
        }
    };
    let after = format!("{}{SIGN_IN}", state.config.external_url.trim_end_matches('/'));
    provider.logout_url(&id_token, &after)
}

/// `PUT /api/v2.0/users/{user_id}/cli_secret`: the user or a system admin sets an OIDC user's
/// CLI secret (8–128 characters with upper- and lower-case letters and a digit).
#[utoipa::path(put, path = "/users/{user_id}/cli_secret", tag = "user", params(("user_id" = i64, Path)), request_body = OidcCliSecretReq, responses((status = 200), (status = 400), (status = 401), (status = 403), (status = 404), (status = 412)))]
pub async fn set_cli_secret(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(user_id): AppPath<i64>,
    AppJson(req): AppJson<OidcCliSecretReq>,
) -> Result<StatusCode, ApiError> {
    let me = caller.require_user()?;
    if me.id != user_id && !me.is_sysadmin() {
        return Err(ApiError::Forbidden("only the user and system admins may set a CLI secret".into()));
    }
    if let Err(m) = oidc_settings(&state).await? {
        return Err(ApiError::PreconditionFailed(format!("there is no CLI secret: {m}")));
    }
    let u = accounts::get_by_id(&state.db, user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("user not found".into()))?;
    if u.source != "oidc" {
        return Err(ApiError::PreconditionFailed(format!("{} is not an OIDC user", u.username)));
    }
    if !oidc::valid_cli_secret(&req.secret) {
        return Err(ApiError::BadRequest(
            "the secret must be 8 to 128 characters with an upper-case letter, a lower-case letter and a digit"
                .into(),
        ));
    }
    if !oidc::set_cli_secret(&state, user_id, &req.secret).await? {
        return Err(ApiError::PreconditionFailed(format!(
            "{} has not signed in through the provider",
            u.username
        )));
    }
    state.audit.record(caller.event("update", "user", &u.username).detail("CLI secret set"));
    Ok(StatusCode::OK)
}

/// Harbor's `OIDCPingRequest`-like body for `POST /system/oidc/ping`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OidcPingReq {
    /// The issuer URL to check (`<url>/.well-known/openid-configuration`).
    pub url: String,
    #[serde(default = "yes")]
    pub verify_cert: bool,
}

fn yes() -> bool {
    true
}

/// `POST /api/v2.0/system/oidc/ping` (system admins): 200 when the endpoint's discovery
/// document and keys load, 400 with the reason otherwise.
#[utoipa::path(post, path = "/system/oidc/ping", tag = "system", request_body = OidcPingReq, responses((status = 200), (status = 400), (status = 401), (status = 403)))]
pub async fn ping(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(req): AppJson<OidcPingReq>,
) -> Result<StatusCode, ApiError> {
    caller.require_sysadmin()?;
    let url = settings::oidc_endpoint("url", req.url.trim().to_string()).map_err(ApiError::BadRequest)?;
    if url.is_empty() {
        return Err(ApiError::BadRequest("url is required".into()));
    }
    let current = settings::load(&state.db, &state.config).await?;
    let http = oidc::http_client(req.verify_cert, &current.oidc.ca_cert)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    oidc::discover(&http, &url, req.verify_cert, &current.oidc.ca_cert, true)
        .await
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(StatusCode::OK)
}

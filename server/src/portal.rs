//! Server side of the portal: implements `app::backend::PortalBackend` (the REST relay every
//! page reads and writes through, plus login and logout), and guards server-function posts
//! against cross-site requests.
//!
//! The portal calls Leptos server functions (`/portal/fn/<name>`): `api` relays one REST call
//! in-process as the session's user (`Backend::rest`), `login`/`logout` start and end the
//! session, and the garbage collection forms turn their fields into a relayed REST call.
//! Server functions are cookie-authenticated writes, so instead of the REST API's
//! `X-Harbor-CSRF-Token` they are protected by Fetch Metadata / Origin checks
//! (`same_origin_guard`) plus the `SameSite=Lax` session cookie; both work for plain
//! (JavaScript-free) form posts too.

use std::sync::Arc;

use app::backend::PortalBackend;
use app::error::PortalError;
use app::server_fns::api::ApiReply;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use crate::api::error::ApiError;
use crate::auth;
use crate::state::AppState;

pub struct Backend {
    state: AppState,
    /// The REST API (`/api/v2.0` routes) the portal's reads and writes go through.
    api: axum::Router,
}

impl Backend {
    pub fn shared(state: AppState) -> Arc<dyn PortalBackend> {
        let api = crate::api::v2_routes().with_state(state.clone());
        Arc::new(Backend { state, api })
    }
}

/// Headers of the browser's request the REST handlers may look at (client address and
/// external URL behind a trusted proxy, user agent). Never `Authorization` or `Cookie`: the
/// caller is the session, passed along as it is.
const FORWARDED: [header::HeaderName; 2] = [header::HOST, header::USER_AGENT];
const FORWARDED_X: [&str; 3] = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"];

/// A REST error body's message (`{"errors":[{"code","message"}]}`).
fn rest_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect())
}

fn portal_error(e: ApiError) -> PortalError {
    match e {
        ApiError::Unauthorized(_) => PortalError::Unauthorized,
        ApiError::TooManyRequests { retry_after, locked: true, .. } => PortalError::Locked(retry_after),
        ApiError::TooManyRequests { retry_after, locked: false, .. } => PortalError::Busy(retry_after),
        ApiError::Forbidden(_) => PortalError::Forbidden,
        ApiError::BadRequest(m) | ApiError::Conflict(m) | ApiError::NotFound(m) => PortalError::Invalid(m),
        ApiError::Internal(err) => {
            tracing::error!(error = ?err, "portal request failed");
            PortalError::Server("internal server error; see the server log".into())
        }
        other => PortalError::Server(other.to_string()),
    }
}

async fn session() -> Result<Session, PortalError> {
    leptos_axum::extract::<Session>().await.map_err(|e| PortalError::Server(format!("no session: {e}")))
}

#[async_trait::async_trait]
impl PortalBackend for Backend {
    async fn rest(
        &self,
        method: String,
        path: String,
        body: Option<String>,
    ) -> Result<ApiReply, PortalError> {
        use tower::ServiceExt;
        let method = match method.as_str() {
            "GET" => Method::GET,
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            "PATCH" => Method::PATCH,
            "DELETE" => Method::DELETE,
            other => return Err(PortalError::Invalid(format!("method {other} is not allowed"))),
        };
        if !path.starts_with('/') || path.starts_with("//") {
            return Err(PortalError::Invalid(format!("invalid API path {path:?}")));
        }
        let mut req = Request::builder()
            .method(method)
            .uri(&path)
            .header("x-is-resource-name", "true")
            .body(match body {
                Some(b) => axum::body::Body::from(b),
                None => axum::body::Body::empty(),
            })
            .map_err(|e| PortalError::Invalid(format!("invalid API path {path:?}: {e}")))?;
        if axum::body::HttpBody::size_hint(req.body()).exact() != Some(0) {
            req.headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        }
        if let Some(parts) = leptos::prelude::use_context::<axum::http::request::Parts>() {
            for name in FORWARDED {
                if let Some(v) = parts.headers.get(&name) {
                    req.headers_mut().insert(name, v.clone());
                }
            }
            for name in FORWARDED_X {
                if let Some(v) = parts.headers.get(name) {
                    req.headers_mut().insert(name, v.clone());
                }
            }
            if let Some(ci) = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>() {
                req.extensions_mut().insert(*ci);
            }
        }
        req.extensions_mut().insert(session().await?);
        req.extensions_mut().insert(crate::auth::PortalCall);
        let res = self.api.clone().oneshot(req).await.unwrap_or_else(|e| match e {});
        let status = res.status();
        let total = res
            .headers()
            .get("x-total-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok());
        let retry_after = res
            .headers()
            .get(axum::http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let bytes = axum::body::to_bytes(res.into_body(), 32 << 20)
            .await
            .map_err(|e| PortalError::Server(format!("reading the API's answer: {e}")))?;
        if status.is_success() {
            return Ok(ApiReply {
                status: status.as_u16(),
                total,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        let message = rest_message(&bytes);
        Err(match status {
            StatusCode::UNAUTHORIZED => PortalError::Unauthorized,
            StatusCode::FORBIDDEN => PortalError::Forbidden,
            // Session calls check no password: a 429 here is a full queue, not a lockout.
            StatusCode::TOO_MANY_REQUESTS => PortalError::Busy(retry_after.unwrap_or(1)),
            s if s.is_client_error() => PortalError::Invalid(message),
            _ => PortalError::Server(message),
        })
    }

    async fn login(&self, username: String, password: String) -> Result<(), PortalError> {
        if username.is_empty() || password.is_empty() {
            return Err(PortalError::InvalidCredentials);
        }
        let s = session().await?;
        let ctx = leptos::prelude::use_context::<axum::http::request::Parts>()
            .map(|p| crate::client::ClientCtx::from_parts(&self.state.config, &p))
            .unwrap_or_else(|| {
                crate::client::ClientCtx::resolve(&self.state.config, None, &Default::default())
            });
        auth::login_session(&self.state, &s, &username, &password, &ctx).await.map_err(|e| match e {
            // The only 401 a login gives: wrong name or password.
            ApiError::Unauthorized(_) => PortalError::InvalidCredentials,
            other => portal_error(other),
        })?;
        Ok(())
    }

    async fn logout(&self) -> Result<Option<String>, PortalError> {
        let s = session().await?;
        let next = crate::api::oidc::end_session_url(&self.state, &s).await;
        s.flush().await.map_err(|e| portal_error(e.into()))?;
        Ok(next)
    }
}

/// Refuses cross-site writes to portal routes (`auth::cross_site`).
pub async fn same_origin_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    if auth::cross_site(&state.config, peer, req.headers()) {
        ApiError::Forbidden("cross-site request refused".into()).into_response()
    } else {
        next.run(req).await
    }
}

/// Leptos answers every server-function error with a 500. The client reads the error from the
/// body whatever the status, but a 500 says "server bug" to load balancers, logs and monitoring:
/// a wrong password or a bad cron expression is the caller's error. So the status follows the
/// error: 401 (sign in / bad credentials), 429 (locked), 403, 400; only `Server` stays a 500.
pub async fn server_fn_status(req: Request, next: Next) -> Response {
    let is_fn = req.uri().path().starts_with("/portal/fn/");
    let res = next.run(req).await;
    if !is_fn || res.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "error body too large").into_response();
    };
    if let Ok(e) = serde_json::from_slice::<PortalError>(&bytes) {
        parts.status = match e {
            PortalError::Unauthorized | PortalError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            PortalError::Locked(_) | PortalError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            PortalError::Forbidden => StatusCode::FORBIDDEN,
            PortalError::Invalid(_) => StatusCode::BAD_REQUEST,
            PortalError::Server(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

//! Harbor's portal login endpoints: `POST /c/login` (form `principal`, `password`) and
//! `GET|POST /c/log_out` (a redirect to the provider after an OIDC login with `oidc_logout`).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use tower_sessions::Session;

use crate::api::error::{ApiError, AppForm};
use crate::auth::{login_session, CSRF_HEADER};
use crate::client::ClientCtx;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    pub principal: String,
    pub password: String,
}

/// `POST /c/login`. A browser's cross-site post is refused with 403 (login CSRF: another site
/// must not sign its visitors in to an account of its choosing).
pub async fn login(
    State(state): State<AppState>,
    ctx: ClientCtx,
    parts: axum::http::request::Parts,
    session: Session,
    AppForm(form): AppForm<LoginForm>,
) -> Result<impl IntoResponse, ApiError> {
    let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    if crate::auth::cross_site(&state.config, peer, &parts.headers) {
        return Err(ApiError::Forbidden("cross-site login refused".into()));
    }
    if form.principal.is_empty() || form.password.is_empty() {
        return Err(ApiError::BadRequest("principal and password are required".into()));
    }
    let (_user, csrf) = login_session(&state, &session, &form.principal, &form.password, &ctx).await?;
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&csrf) {
        headers.insert(CSRF_HEADER, v);
    }
    Ok((StatusCode::OK, headers))
}

/// Ends the session. After an OIDC login with `oidc_logout` on, the answer is a redirect to
/// the provider's end-session endpoint (RP-initiated logout), as Harbor's.
pub async fn logout(
    State(state): State<AppState>,
    session: Session,
) -> Result<axum::response::Response, ApiError> {
    let next = crate::api::oidc::end_session_url(&state, &session).await;
    session.flush().await?;
    Ok(match next {
        Some(url) => axum::response::Redirect::to(&url).into_response(),
        None => StatusCode::OK.into_response(),
    })
}

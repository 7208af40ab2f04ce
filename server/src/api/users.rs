use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tower_sessions::Session;

use crate::accounts::{self, PasswordChangeError, User};
use crate::api::error::{ApiError, AppJson, AppPath};
use crate::auth::{Caller, Via, CSRF_HEADER};
use crate::db::rfc3339;
use crate::sessions::AUTH_EPOCH;
use crate::state::AppState;

/// Harbor's `UserResp`.
pub fn user_json(u: &User) -> Value {
    json!({
        "user_id": u.id,
        "username": u.username,
        "email": u.email,
        "realname": u.realname,
        "comment": u.comment,
        "sysadmin_flag": u.sysadmin,
        "admin_role_in_auth": false,
        "oidc_user_meta": null,
        "creation_time": rfc3339(u.created_at),
        "update_time": rfc3339(u.updated_at),
    })
}

/// `GET /api/v2.0/users/current`. For cookie sessions the CSRF token rides along in
/// `X-Harbor-CSRF-Token`, as Harbor does.
pub async fn current(caller: Caller) -> Result<impl IntoResponse, ApiError> {
    let user = caller.require_user()?;
    let mut headers = HeaderMap::new();
    if let Some(t) = caller.csrf.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
        headers.insert(CSRF_HEADER, t);
    }
    Ok((headers, Json(user_json(user))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordReq {
    #[serde(default)]
    pub old_password: Option<String>,
    pub new_password: String,
}

/// `PUT /api/v2.0/users/{user_id}/password`: users change their own password (old password
/// required); a system admin may reset another user's without it.
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    session: Session,
    AppPath(user_id): AppPath<i64>,
    AppJson(req): AppJson<PasswordReq>,
) -> Result<StatusCode, ApiError> {
    let me = caller.require_user()?;
    let own = me.id == user_id;
    if !own && !me.sysadmin {
        return Err(ApiError::Forbidden("you may only change your own password".into()));
    }
    let old = if own {
        Some(req.old_password.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
            ApiError::BadRequest("old_password is required to change your own password".into())
        })?)
    } else {
        None
    };
    let updated =
        accounts::change_password(&state.db, user_id, old, &req.new_password).await.map_err(|e| match e {
            PasswordChangeError::WrongOldPassword => ApiError::Forbidden(e.to_string()),
            PasswordChangeError::Weak(_) | PasswordChangeError::Unchanged => {
                ApiError::BadRequest(e.to_string())
            }
            PasswordChangeError::NoSuchUser => ApiError::NotFound(e.to_string()),
            PasswordChangeError::Db(e) => e.into(),
        })?;
    tracing::info!(actor = %me.username, target = %updated.username, "password changed");
    // Other sessions of this user end (their epoch no longer matches); keep the current one.
    if own && caller.via == Via::Session {
        session.insert(AUTH_EPOCH, updated.password_changed_at).await?;
    }
    Ok(StatusCode::OK)
}

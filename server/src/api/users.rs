use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use tower_sessions::Session;
use utoipa::IntoParams;

use crate::accounts::{self, PasswordChangeError, User};
use crate::api::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::api::{pagination_headers, Pagination};
use crate::auth::{Caller, Via, CSRF_HEADER};
use crate::db::rfc3339;
use crate::sessions::AUTH_EPOCH;
use crate::state::AppState;

pub use app::rest::users::{
    PasswordReq, SysadminReq, UserCreationReq, UserProfile, UserResp, UserSearchResp,
};

pub fn user_json(u: &User) -> UserResp {
    UserResp {
        user_id: u.id,
        username: u.username.clone(),
        email: u.email.clone(),
        realname: u.realname.clone(),
        comment: u.comment.clone(),
        sysadmin_flag: u.sysadmin,
        admin_role_in_auth: u.admin_role_in_auth,
        oidc_user_meta: None,
        creation_time: rfc3339(u.created_at),
        update_time: rfc3339(u.updated_at),
    }
}

/// `GET /api/v2.0/users/current`. For cookie sessions the CSRF token rides along in
/// `X-Harbor-CSRF-Token`, as Harbor does.
#[utoipa::path(get, path = "/users/current", tag = "user", responses((status = 200, body = UserResp), (status = 401)))]
pub async fn current(State(state): State<AppState>, caller: Caller) -> Result<impl IntoResponse, ApiError> {
    let user = caller.require_user()?;
    let mut headers = HeaderMap::new();
    if let Some(t) = caller.csrf.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
        headers.insert(CSRF_HEADER, t);
    }
    Ok((headers, Json(with_oidc_meta(&state, user_json(user), user).await?)))
}

/// Adds `oidc_user_meta` for an OIDC user. Callers are the user itself or a system admin,
/// the only ones who may see the CLI secret.
async fn with_oidc_meta(state: &AppState, mut resp: UserResp, u: &User) -> Result<UserResp, ApiError> {
    if u.source == "oidc" {
        resp.oidc_user_meta = crate::identity::oidc::user_meta(state, u.id, true).await?;
    }
    Ok(resp)
}

/// `PUT /api/v2.0/users/{user_id}/password`: users change their own password (old password
/// required); a system admin may reset another user's without it. Not for LDAP and OIDC
/// users (403): their password is the directory's or provider's.
#[utoipa::path(put, path = "/users/{user_id}/password", tag = "user", params(("user_id" = i64, Path)), request_body = PasswordReq, responses((status = 200), (status = 400), (status = 403)))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    session: Session,
    AppPath(user_id): AppPath<i64>,
    AppJson(req): AppJson<PasswordReq>,
) -> Result<StatusCode, ApiError> {
    let me = caller.require_user()?;
    let own = me.id == user_id;
    if !own && !me.is_sysadmin() {
        return Err(ApiError::Forbidden("you may only change your own password".into()));
    }
    // Directory and provider users have no local password (Harbor: not modifiable outside db_auth).
    if let Some(target) = accounts::get_by_id(&state.db, user_id).await?.filter(|u| u.source != "db") {
        return Err(ApiError::Forbidden(format!(
            "the password of {} is kept by the {}; change it there",
            target.username,
            if target.source == "ldap" { "LDAP directory" } else { "OIDC provider" }
        )));
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
    state.audit.record(caller.event("update", "user", &updated.username).detail("password changed"));
    // Other sessions of this user end (their epoch no longer matches); keep the current one.
    if own && caller.via == Via::Session {
        session.insert(AUTH_EPOCH, updated.password_changed_at).await?;
    }
    Ok(StatusCode::OK)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    pub q: Option<String>,
    pub username: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

/// `GET /api/v2.0/users` (system admins): `username=` or `q=username=~x` (fuzzy) /
/// `q=username=x` (exact).
#[utoipa::path(get, path = "/users", tag = "user", params(UserListParams), responses((status = 200, body = [UserResp]), (status = 403)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppQuery(p): AppQuery<UserListParams>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    let (page, page_size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let (mut name, mut exact) = (p.username.clone(), false);
    if let Some(q) = p.q.as_deref().filter(|q| !q.is_empty()) {
        let v = q
            .strip_prefix("username=")
            .ok_or_else(|| ApiError::BadRequest("users can be queried by username only".into()))?;
        match v.strip_prefix('~') {
            Some(f) => name = Some(f.to_string()),
            None => (name, exact) = (Some(v.to_string()), true),
        }
    }
    let (items, total) = accounts::list_users(&state.db, name.as_deref(), exact, page, page_size).await?;
    Ok((
        pagination_headers(&uri, page, page_size, total),
        Json(items.iter().map(user_json).collect::<Vec<_>>()),
    ))
}

/// `GET /api/v2.0/users/search?username=…`: any signed-in user finds others by name (for
/// adding members); only ids and names are returned.
#[utoipa::path(get, path = "/users/search", tag = "user", params(UserListParams), responses((status = 200, body = [UserSearchResp])))]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppQuery(p): AppQuery<UserListParams>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_principal()?;
    let name = p
        .username
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::BadRequest("username is required".into()))?;
    let (page, page_size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let (items, total) = accounts::list_users(&state.db, Some(name), false, page, page_size).await?;
    let out: Vec<UserSearchResp> =
        items.iter().map(|u| UserSearchResp { user_id: u.id, username: u.username.clone() }).collect();
    Ok((pagination_headers(&uri, page, page_size, total), Json(out)))
}

/// `POST /api/v2.0/users`: system admins create users; anyone may register when
/// `self_registration` is on (never as an admin). Only in `db_auth` (403 otherwise).
#[utoipa::path(post, path = "/users", tag = "user", request_body = UserCreationReq, responses((status = 201, headers(("Location" = String))), (status = 400), (status = 401), (status = 403), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(req): AppJson<UserCreationReq>,
) -> Result<impl IntoResponse, ApiError> {
    let admin = caller.principal.as_ref().is_some_and(|p| p.is_sysadmin());
    let settings = crate::settings::load(&state.db, &state.config).await?;
    // Outside db_auth users come from the directory or provider only (Harbor's rule).
    if settings.auth_mode != crate::settings::AuthMode::Db {
        return Err(ApiError::Forbidden(format!(
            "creating local user is not allowed under auth mode: {}",
            settings.auth_mode.as_str()
        )));
    }
    if !admin {
        if !settings.self_registration || caller.principal.is_some() {
            return Err(if caller.principal.is_none() {
                ApiError::Unauthorized("self-registration is disabled".into())
            } else {
                ApiError::Forbidden("only system admins may create users".into())
            });
        }
        if req.sysadmin_flag {
            return Err(ApiError::Forbidden("only system admins may create system admins".into()));
        }
    }
    let u = accounts::insert_user(
        &state.db,
        &accounts::NewUser {
            username: req.username,
            password: req.password,
            email: req.email,
            realname: req.realname,
            comment: req.comment,
            sysadmin: req.sysadmin_flag && admin,
        },
    )
    .await?;
    let actor = if admin { caller.name().to_string() } else { u.username.clone() };
    state.audit.record(
        crate::audit::Event::new(&actor, "create", "user", &u.username).ip(&caller.ctx.ip).detail(if admin {
            ""
        } else {
            "self-registration"
        }),
    );
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v2.0/users/{}", u.id)) {
        h.insert(axum::http::header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, h))
}

fn self_or_admin(caller: &Caller, id: i64) -> Result<(), ApiError> {
    let p = caller.require_principal()?;
    if p.is_sysadmin() || p.user().is_some_and(|u| u.id == id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("only system admins may manage other users".into()))
    }
}

/// `GET /api/v2.0/users/{user_id}`: oneself, or anyone for system admins.
#[utoipa::path(get, path = "/users/{user_id}", tag = "user", params(("user_id" = i64, Path)), responses((status = 200, body = UserResp), (status = 403), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<Json<UserResp>, ApiError> {
    self_or_admin(&caller, id)?;
    let u = accounts::get_by_id(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("user not found".into()))?;
    Ok(Json(with_oidc_meta(&state, user_json(&u), &u).await?))
}

/// `PUT /api/v2.0/users/{user_id}`: email, real name, comment.
#[utoipa::path(put, path = "/users/{user_id}", tag = "user", params(("user_id" = i64, Path)), request_body = UserProfile, responses((status = 200), (status = 400), (status = 403)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<UserProfile>,
) -> Result<StatusCode, ApiError> {
    self_or_admin(&caller, id)?;
    let u = accounts::update_profile(
        &state.db,
        id,
        &accounts::ProfileUpdate { email: req.email, realname: req.realname, comment: req.comment },
    )
    .await?;
    state.audit.record(caller.event("update", "user", &u.username));
    Ok(StatusCode::OK)
}

/// `DELETE /api/v2.0/users/{user_id}` (system admins; not oneself).
#[utoipa::path(delete, path = "/users/{user_id}", tag = "user", params(("user_id" = i64, Path)), responses((status = 200), (status = 403), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<StatusCode, ApiError> {
    let me = caller.require_sysadmin()?;
    if me.user().is_some_and(|u| u.id == id) {
        return Err(ApiError::Forbidden("you cannot delete your own account".into()));
    }
    let u = accounts::delete_user(&state.db, id).await?;
    state.audit.record(caller.event("delete", "user", &u.username));
    Ok(StatusCode::OK)
}

/// `PUT /api/v2.0/users/{user_id}/sysadmin` (system admins; not oneself).
#[utoipa::path(put, path = "/users/{user_id}/sysadmin", tag = "user", params(("user_id" = i64, Path)), request_body = SysadminReq, responses((status = 200), (status = 403), (status = 404)))]
pub async fn set_sysadmin(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<SysadminReq>,
) -> Result<StatusCode, ApiError> {
    let me = caller.require_sysadmin()?;
    if me.user().is_some_and(|u| u.id == id) {
        return Err(ApiError::Forbidden("you cannot change your own admin role".into()));
    }
    let u = accounts::set_sysadmin(&state.db, id, req.sysadmin_flag).await?;
    state.audit.record(
        caller.event("update", "user", &u.username).detail(format!("sysadmin={}", req.sysadmin_flag)),
    );
    Ok(StatusCode::OK)
}

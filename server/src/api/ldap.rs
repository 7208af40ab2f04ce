//! Harbor's `/ldap/*` (system admins only; `identity::ldap` talks to the directory):
//!
//! - `POST /ldap/ping`: tries the stored settings with the body's `LdapConf` fields instead
//!   (an absent, empty or `*****` password is the stored one); always 200 with
//!   `LdapPingResult` (`success: false` and the reason when the directory fails), in any
//!   `auth_mode`, so an admin can test a directory before switching to it. A value the
//!   configuration would refuse is a 400.
//! - `GET /ldap/users/search?username=`: directory users whose uid contains it (at most
//!   `ldap::MAX_SEARCH_RESULTS`).
//! - `POST /ldap/users/import`: onboards the listed uids as LDAP users (`accounts::onboard`);
//!   404 with `[LdapFailedImportUser]` naming those that failed.
//! - `GET /ldap/groups/search?groupname=&groupdn=`: directory groups as `[UserGroup]`
//!   (`group_type` 1, `id` of the stored user group or 0); 404 when none matches.
//!
//! The last three need `auth_mode = ldap_auth` (412 otherwise): imported users could not log
//! in under another mode, and their existence would pin `auth_mode`. A directory that cannot
//! be reached is a 503 saying why; settings that cannot work (no URL, a bad filter) a 400.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use crate::api::error::{ApiError, AppJson, AppQuery};
use crate::auth::Caller;
use crate::identity::groups::{GroupType, NewGroup};
use crate::identity::ldap::{self, LdapError};
use crate::settings::{self, AuthMode, LdapSettings};
use crate::state::AppState;

pub use app::rest::usergroups::{LdapConf, LdapFailedImportUser, LdapImportUsers, LdapPingResult, LdapUser};
pub use app::rest::UserGroup;

/// Most uids one import takes.
pub const MAX_IMPORT: usize = 100;

impl From<LdapError> for ApiError {
    fn from(e: LdapError) -> Self {
        match e {
            LdapError::Unavailable(m) => ApiError::Unavailable(format!("LDAP: {m}")),
            LdapError::Config(m) => ApiError::BadRequest(format!("LDAP: {m}")),
        }
    }
}

/// The stored search password in clear.
fn search_password(state: &AppState, cfg: &LdapSettings) -> Result<String, ApiError> {
    cfg.search_password.open(&state.secrets.encryption_key, "ldap_search_password").map_err(|_| {
        ApiError::PreconditionFailed("the LDAP search password no longer decrypts: enter it again".into())
    })
}

/// The stored LDAP settings and search password, when LDAP is the authentication mode.
async fn ldap_mode(state: &AppState) -> Result<(LdapSettings, String), ApiError> {
    let s = settings::load(&state.db, &state.config).await?;
    if s.auth_mode != AuthMode::Ldap {
        return Err(ApiError::PreconditionFailed(format!(
            "LDAP is not the authentication mode (auth_mode is {})",
            s.auth_mode.as_str()
        )));
    }
    let pw = search_password(state, &s.ldap)?;
    Ok((s.ldap, pw))
}

/// `POST /ldap/ping` (module doc).
#[utoipa::path(post, path = "/ldap/ping", tag = "ldap", request_body = LdapConf,
    responses((status = 200, body = LdapPingResult), (status = 400), (status = 401), (status = 403)))]
pub async fn ping(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(conf): AppJson<LdapConf>,
) -> Result<Json<LdapPingResult>, ApiError> {
    caller.require_sysadmin()?;
    let stored = settings::load(&state.db, &state.config).await?;
    let mut overrides: HashMap<&str, Value> = HashMap::new();
    let strings = [
        ("ldap_url", &conf.ldap_url),
        ("ldap_search_dn", &conf.ldap_search_dn),
        ("ldap_base_dn", &conf.ldap_base_dn),
        ("ldap_filter", &conf.ldap_filter),
        ("ldap_uid", &conf.ldap_uid),
        ("ldap_ca_cert", &conf.ldap_ca_cert),
    ];
    for (k, v) in strings {
        if let Some(v) = v {
            overrides.insert(k, Value::from(v.as_str()));
        }
    }
    if let Some(v) = conf.ldap_scope {
        overrides.insert("ldap_scope", Value::from(v));
    }
    if let Some(v) = conf.ldap_connection_timeout {
        overrides.insert("ldap_timeout", Value::from(v));
    }
    if let Some(v) = conf.ldap_verify_cert {
        overrides.insert("ldap_verify_cert", Value::from(v));
    }
    if let Some(v) = conf.ldap_starttls {
        overrides.insert("ldap_starttls", Value::from(v));
    }
    let cfg = stored.ldap_with(&overrides).map_err(ApiError::BadRequest)?;
    let password = match conf.ldap_search_password.as_deref() {
        Some(p) if !p.is_empty() && p != "*****" => p.to_string(),
        _ => search_password(&state, &stored.ldap)?,
    };
    Ok(Json(match ldap::ping(&cfg, &password).await {
        Ok(()) => LdapPingResult { success: true, message: "success".into() },
        Err(e) => {
            tracing::info!(url = %cfg.url, error = %e, "LDAP ping failed");
            LdapPingResult { success: false, message: e.to_string() }
        }
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSearchParams {
    /// Part of the uid (all users when empty).
    pub username: Option<String>,
}

/// `GET /ldap/users/search` (module doc).
#[utoipa::path(get, path = "/ldap/users/search", tag = "ldap", params(UserSearchParams),
    responses((status = 200, body = [LdapUser]), (status = 400), (status = 401), (status = 403), (status = 412), (status = 503)))]
pub async fn search_users(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(p): AppQuery<UserSearchParams>,
) -> Result<Json<Vec<LdapUser>>, ApiError> {
    caller.require_sysadmin()?;
    let (cfg, pw) = ldap_mode(&state).await?;
    let found = ldap::search_users(&cfg, &pw, p.username.as_deref().unwrap_or("").trim()).await?;
    Ok(Json(
        found
            .into_iter()
            .map(|u| LdapUser { username: u.username, realname: u.realname, email: u.email })
            .collect(),
    ))
}

/// `POST /ldap/users/import` (module doc).
#[utoipa::path(post, path = "/ldap/users/import", tag = "ldap", request_body = LdapImportUsers,
    responses((status = 200), (status = 400), (status = 401), (status = 403),
        (status = 404, body = [LdapFailedImportUser]), (status = 412), (status = 503)))]
pub async fn import_users(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(req): AppJson<LdapImportUsers>,
) -> Result<Response, ApiError> {
    caller.require_sysadmin()?;
    if req.ldap_uid_list.len() > MAX_IMPORT {
        return Err(ApiError::BadRequest(format!("at most {MAX_IMPORT} users can be imported at once")));
    }
    let (cfg, pw) = ldap_mode(&state).await?;
    let mut failed = Vec::new();
    for uid in &req.ldap_uid_list {
        let fail = |error: String| LdapFailedImportUser { uid: uid.clone(), error };
        let uid_t = uid.trim();
        if uid_t.is_empty() {
            failed.push(fail("empty_uid".into()));
            continue;
        }
        // A directory that cannot be reached fails the whole request (503), not each uid.
        let Some(found) = ldap::find_user(&cfg, &pw, uid_t).await? else {
            failed.push(fail("unknown_user".into()));
            continue;
        };
        match crate::accounts::onboard(&state.db, "ldap", &found.username, &found.email, &found.realname)
            .await
        {
            Ok(u) => state.audit.record(caller.event("create", "user", u.username).detail("ldap import")),
            Err(crate::accounts::UserError::Db(e)) => return Err(e.into()),
            Err(e) => failed.push(fail(format!("failed to import user {}: {e}", found.username))),
        }
    }
    if failed.is_empty() {
        Ok(StatusCode::OK.into_response())
    } else {
        Ok((StatusCode::NOT_FOUND, Json(failed)).into_response())
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupSearchParams {
    /// Part of the group's name (`ldap_group_attribute_name`), under `ldap_group_base_dn`.
    pub groupname: Option<String>,
    /// The group's DN (used when `groupname` is empty).
    pub groupdn: Option<String>,
}

/// `GET /ldap/groups/search` (module doc).
#[utoipa::path(get, path = "/ldap/groups/search", tag = "ldap", params(GroupSearchParams),
    responses((status = 200, body = [UserGroup]), (status = 400), (status = 401), (status = 403), (status = 404), (status = 412), (status = 503)))]
pub async fn search_groups(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(p): AppQuery<GroupSearchParams>,
) -> Result<Json<Vec<UserGroup>>, ApiError> {
    caller.require_sysadmin()?;
    let name = p.groupname.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let dn = p.groupdn.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if name.is_none() && dn.is_none() {
        return Err(ApiError::BadRequest("give groupname or groupdn".into()));
    }
    if name.is_none() && dn.is_some_and(|d| !d.contains('=')) {
        return Err(ApiError::BadRequest(format!("groupdn {:?} is not a DN", dn.unwrap_or_default())));
    }
    let (cfg, pw) = ldap_mode(&state).await?;
    let found = ldap::search_groups(&cfg, &pw, name, dn).await?;
    if found.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no LDAP group found (group name: {:?}, group DN: {:?})",
            name.unwrap_or_default(),
            dn.unwrap_or_default()
        )));
    }
    let mut out = Vec::with_capacity(found.len());
    for g in found {
        let key = NewGroup { kind: GroupType::Ldap, name: g.name.clone(), ldap_dn: g.dn.clone() }.key();
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM user_groups WHERE group_type = $1 AND group_key = $2")
                .bind(GroupType::Ldap.id())
                .bind(&key)
                .fetch_optional(&state.db.pool)
                .await?;
        out.push(UserGroup {
            id: id.unwrap_or(0),
            group_name: g.name,
            group_type: GroupType::Ldap.id(),
            ldap_group_dn: g.dn,
        });
    }
    Ok(Json(out))
}

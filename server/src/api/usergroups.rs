//! User groups under `/api/v2.0/usergroups` (Harbor's `usergroup` operations): system admins
//! list, create, read, rename and delete them; any signed-in caller searches them by name (to
//! add one as a project member). The data layer is `identity::groups`; groups as project
//! members are resolved here (`member_group`) for `api/projects.rs`.
//!
//! Harbor's rules kept: in `ldap_auth` the list shows LDAP groups only; an LDAP group needs a DN
//! of valid syntax and can be added only in `ldap_auth`; only the name changes on update.

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::api::{pagination_headers, Pagination};
use crate::auth::Caller;
use crate::identity::groups::{self, Group, GroupError, GroupType, NewGroup};
use crate::settings::AuthMode;
use crate::state::AppState;

pub use app::rest::usergroups::{UserGroup, UserGroupSearchItem};

impl From<GroupError> for ApiError {
    fn from(e: GroupError) -> Self {
        match e {
            GroupError::Invalid(m) => ApiError::BadRequest(m),
            GroupError::Exists(m) => ApiError::Conflict(m),
            GroupError::NotFound => ApiError::NotFound(e.to_string()),
            GroupError::Db(e) => e.into(),
        }
    }
}

pub fn group_json(g: &Group) -> UserGroup {
    UserGroup {
        id: g.id,
        group_name: g.group_name.clone(),
        group_type: g.group_type,
        ldap_group_dn: g.ldap_group_dn.clone(),
    }
}

async fn auth_mode(state: &AppState) -> Result<AuthMode, ApiError> {
    Ok(crate::settings::load(&state.db, &state.config).await?.auth_mode)
}

/// Harbor answers a group id that is not positive with 400.
fn group_id(id: i64) -> Result<i64, ApiError> {
    if id <= 0 {
        return Err(ApiError::BadRequest("the group id should be provided".into()));
    }
    Ok(id)
}

async fn existing(state: &AppState, id: i64) -> Result<Group, ApiError> {
    groups::get(&state.db, group_id(id)?)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("the user group with id {id} is not found")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    pub page: Option<u64>,
    pub page_size: Option<u64>,
    /// An LDAP group's DN (exact, case-insensitive).
    pub ldap_group_dn: Option<String>,
    /// Part of the group name (case-insensitive).
    pub group_name: Option<String>,
}

/// `GET /api/v2.0/usergroups` (system admins). In `ldap_auth` only LDAP groups, as in Harbor.
#[utoipa::path(get, path = "/usergroups", tag = "usergroup", params(ListParams),
    responses((status = 200, body = [UserGroup], headers(("X-Total-Count" = i64), ("Link" = String))), (status = 401), (status = 403)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppQuery(p): AppQuery<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    let (page, page_size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let q = groups::ListQuery {
        group_name: p.group_name,
        ldap_group_dn: p.ldap_group_dn,
        group_type: (auth_mode(&state).await? == AuthMode::Ldap).then_some(GroupType::Ldap),
        page,
        page_size,
    };
    let (items, total) = groups::list(&state.db, &q).await?;
    Ok((
        pagination_headers(&uri, page, page_size, total),
        Json(items.iter().map(group_json).collect::<Vec<_>>()),
    ))
}

/// `POST /api/v2.0/usergroups` (system admins): `group_name` and `group_type`, and for an LDAP
/// group its `ldap_group_dn` (only in `ldap_auth`). 409 when the group exists.
#[utoipa::path(post, path = "/usergroups", tag = "usergroup", request_body = UserGroup,
    responses((status = 201, headers(("Location" = String))), (status = 400), (status = 401), (status = 403), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(req): AppJson<UserGroup>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    let g = NewGroup {
        kind: groups::parse_type(req.group_type)?,
        name: req.group_name,
        ldap_dn: req.ldap_group_dn,
    };
    groups::validate(&g)?;
    if g.kind == GroupType::Ldap && auth_mode(&state).await? != AuthMode::Ldap {
        return Err(ApiError::BadRequest(
            "LDAP groups can be added only while auth_mode is ldap_auth (the DN names a directory group)"
                .into(),
        ));
    }
    let created = groups::create(&state.db, &g).await?;
    state.audit.record(
        caller
            .event("create", "user-group", &created.group_name)
            .detail(format!("type={} {}", created.group_type, created.ldap_group_dn).trim_end().to_string()),
    );
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v2.0/usergroups/{}", created.id)) {
        h.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, h))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    pub page: Option<u64>,
    pub page_size: Option<u64>,
    /// Part of the group name (case-insensitive); required.
    pub groupname: Option<String>,
}

/// `GET /api/v2.0/usergroups/search?groupname=…`: any signed-in caller; ids, names and types,
/// the closest matches first.
#[utoipa::path(get, path = "/usergroups/search", tag = "usergroup", params(SearchParams),
    responses((status = 200, body = [UserGroupSearchItem], headers(("X-Total-Count" = i64), ("Link" = String))), (status = 400), (status = 401)))]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppQuery(p): AppQuery<SearchParams>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_principal()?;
    let name = p
        .groupname
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::BadRequest("need to provide groupname to search user group".into()))?;
    let (page, page_size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let (items, total) = groups::search(&state.db, name, page, page_size).await?;
    let out: Vec<UserGroupSearchItem> = items
        .iter()
        .map(|g| UserGroupSearchItem { id: g.id, group_name: g.group_name.clone(), group_type: g.group_type })
        .collect();
    Ok((pagination_headers(&uri, page, page_size, total), Json(out)))
}

/// `GET /api/v2.0/usergroups/{group_id}` (system admins).
#[utoipa::path(get, path = "/usergroups/{group_id}", tag = "usergroup", params(("group_id" = i64, Path)),
    responses((status = 200, body = UserGroup), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<Json<UserGroup>, ApiError> {
    caller.require_sysadmin()?;
    Ok(Json(group_json(&existing(&state, id).await?)))
}

/// `PUT /api/v2.0/usergroups/{group_id}` (system admins): renames the group. Its type and DN
/// cannot change (sending the current ones back is not a change).
#[utoipa::path(put, path = "/usergroups/{group_id}", tag = "usergroup", params(("group_id" = i64, Path)), request_body = UserGroup,
    responses((status = 200), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<UserGroup>,
) -> Result<StatusCode, ApiError> {
    caller.require_sysadmin()?;
    let g = existing(&state, id).await?;
    if req.group_type != 0 && req.group_type != g.group_type {
        return Err(ApiError::BadRequest("the group_type of a user group cannot be changed".into()));
    }
    if !req.ldap_group_dn.trim().is_empty()
        && !crate::identity::ldap::dn_eq(&req.ldap_group_dn, &g.ldap_group_dn)
    {
        return Err(ApiError::BadRequest("the ldap_group_dn of a user group cannot be changed".into()));
    }
    let renamed = groups::rename(&state.db, g.id, &req.group_name).await?;
    if renamed.group_name != g.group_name {
        state.audit.record(
            caller
                .event("update", "user-group", &renamed.group_name)
                .detail(format!("renamed from {}", g.group_name)),
        );
    }
    Ok(StatusCode::OK)
}

/// `DELETE /api/v2.0/usergroups/{group_id}` (system admins): the group and its project
/// memberships.
#[utoipa::path(delete, path = "/usergroups/{group_id}", tag = "usergroup", params(("group_id" = i64, Path)),
    responses((status = 200), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<StatusCode, ApiError> {
    caller.require_sysadmin()?;
    let (g, members) = groups::delete(&state.db, group_id(id)?).await?;
    state.audit.record(
        caller
            .event("delete", "user-group", &g.group_name)
            .detail(format!("{members} project memberships removed")),
    );
    Ok(StatusCode::OK)
}

/// The group a project member request's `member_group` names, as Harbor resolves it:
/// - `id`: that group (404 when there is none);
/// - `ldap_group_dn`: the LDAP group with that DN; a DN that is not a group yet becomes one in
///   `ldap_auth` (named `group_name`, else the DN's first value), 404 in other modes;
/// - `group_name` (with `group_type`, or any type when 0): the oldest group of that name; a
///   missing one becomes an OIDC group in `oidc_auth` (the provider's groups are not listed
///   anywhere to check against), 404 otherwise.
///
/// The directory is not asked whether a new DN exists (this branch's `identity::ldap` has no
/// group lookup); the DN's syntax is checked.
pub async fn member_group(state: &AppState, req: &UserGroup) -> Result<Group, ApiError> {
    if req.id > 0 {
        return existing(state, req.id).await;
    }
    let dn = req.ldap_group_dn.trim();
    if !dn.is_empty() {
        let name = match req.group_name.trim() {
            "" => groups::dn_first_value(dn).unwrap_or_default(),
            _ => req.group_name.clone(),
        };
        let g = NewGroup { kind: GroupType::Ldap, name, ldap_dn: dn.to_string() };
        if let Some(found) = groups::find(&state.db, GroupType::Ldap, &g.key()).await? {
            return Ok(found);
        }
        groups::validate(&g)?;
        if auth_mode(state).await? != AuthMode::Ldap {
            return Err(ApiError::NotFound(format!(
                "LDAP group {dn:?} not found: LDAP groups are added while auth_mode is ldap_auth"
            )));
        }
        return onboard(state, g).await;
    }
    if !req.group_name.is_empty() {
        let kind = match req.group_type {
            0 => None,
            t => Some(groups::parse_type(t)?),
        };
        if let Some(found) = groups::find_by_name(&state.db, kind, &req.group_name).await? {
            return Ok(found);
        }
        if kind.is_none_or(|k| k == GroupType::Oidc) && auth_mode(state).await? == AuthMode::Oidc {
            let g = NewGroup { kind: GroupType::Oidc, name: req.group_name.clone(), ldap_dn: String::new() };
            groups::validate(&g)?;
            return onboard(state, g).await;
        }
        return Err(ApiError::NotFound(format!("user group {:?} not found", req.group_name)));
    }
    Err(ApiError::BadRequest("member_group needs its id, ldap_group_dn or group_name".into()))
}

/// Creates (or finds, when a login just created it) a group named in a member request.
async fn onboard(state: &AppState, g: NewGroup) -> Result<Group, ApiError> {
    let ids = groups::populate(&state.db, std::slice::from_ref(&g)).await?;
    let id = *ids.first().ok_or_else(|| ApiError::BadRequest("the group cannot be added".into()))?;
    groups::get(&state.db, id).await?.ok_or_else(|| ApiError::NotFound("user group not found".into()))
}

//! Projects, their members (users and user groups), repositories (delete) and logs under
//! `/api/v2.0/projects`.
//! Every handler names the permission it needs with `require(…)`.

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use std::collections::BTreeMap;

use serde_json::{json, Value};
use utoipa::IntoParams;

use crate::api::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::api::{pagination_headers, Pagination};
use crate::auth::Caller;
use crate::db::rfc3339;
use crate::projects::{self, Entity, ListQuery, Member, Project};
use crate::rbac::{self, Act, ProjectAccess, Resource, Role};
use crate::state::AppState;

pub use app::rest::projects::{
    MemberReq, MemberUser, ProjectMember, ProjectMetadata, ProjectReq, ProjectResp, ProjectSummary, Quota,
    ResourceAmount, RoleReq,
};
use app::rest::usergroups::UserGroup;

/// The metadata keys given, validated and normalised as Harbor does (`public` included).
fn normalized(m: &ProjectMetadata) -> Result<Vec<(String, String)>, ApiError> {
    let mut me = m.clone();
    let mut out = vec![];
    for k in std::iter::once("public").chain(projects::METADATA_KEYS) {
        if let Some(v) = me.slot(k).and_then(Option::take) {
            out.push((k.to_string(), projects::normalize_metadata(k, &v)?));
        }
    }
    Ok(out)
}

fn to_map(m: &ProjectMetadata) -> BTreeMap<String, String> {
    let mut me = m.clone();
    std::iter::once("public")
        .chain(projects::METADATA_KEYS)
        .filter_map(|k| me.slot(k).and_then(Option::take).map(|v| (k.to_string(), v)))
        .collect()
}

/// Stores validated metadata: `public` in the project row, the rest in `project_metadata`.
async fn store_metadata(
    state: &AppState,
    p: &Project,
    values: Vec<(String, String)>,
    only_new: bool,
) -> Result<(), ApiError> {
    let (public, rest): (Vec<_>, Vec<_>) = values.into_iter().partition(|(k, _)| k == "public");
    if !rest.is_empty() {
        projects::set_metadata(&state.db, p.id, &rest, only_new).await?;
    }
    if let Some((_, v)) = public.first() {
        projects::set_public(&state.db, p.id, v == "true").await?;
    }
    Ok(())
}

pub fn project_model(
    p: &Project,
    role: Option<Role>,
    meta: Option<&BTreeMap<String, String>>,
) -> ProjectResp {
    ProjectResp {
        project_id: p.id,
        name: p.name.clone(),
        owner_id: p.owner_id,
        owner_name: p.owner_name.clone(),
        creation_time: rfc3339(p.created_at),
        update_time: rfc3339(p.updated_at),
        deleted: false,
        repo_count: p.repo_count,
        current_user_role_id: role.map(Role::id).unwrap_or(0),
        current_user_role_ids: role.map(|r| vec![r.id()]).unwrap_or_default(),
        metadata: ProjectMetadata::of(p.public, meta),
        storage_used: None,
        registry_id: p.registry_id,
    }
}

/// What every refused write into a proxy-cache project says (REST and `/v2` alike): its
/// content comes only from its upstream registry.
pub fn proxy_push_refusal(project: &str) -> String {
    format!("project {project} is a proxy cache: push is not allowed")
}

/// Refuses adding content (copy, tag) to a proxy-cache project (403, as Harbor refuses).
pub fn require_not_proxy(p: &Project) -> Result<(), ApiError> {
    match p.registry_id {
        Some(_) => Err(ApiError::Forbidden(proxy_push_refusal(&p.name))),
        None => Ok(()),
    }
}

/// Resolves `{project_name_or_id}`: a name when `X-Is-Resource-Name: true` or when it is not a
/// number, an id otherwise (Harbor's rule).
pub async fn resolve(state: &AppState, headers: &HeaderMap, key: &str) -> Result<Project, ApiError> {
    let by_name = headers
        .get("x-is-resource-name")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let found = match key.parse::<i64>() {
        Ok(id) if !by_name => projects::get(&state.db, id).await?,
        _ => projects::get_by_name(&state.db, key).await?,
    };
    found.ok_or_else(|| ApiError::NotFound(format!("project {key} not found")))
}

/// Fails unless the caller may do `act` on `res` in the project: 401 for anonymous callers,
/// 403 otherwise.
pub async fn require(
    state: &AppState,
    caller: &Caller,
    p: &Project,
    res: Resource,
    act: Act,
) -> Result<(), ApiError> {
    let access = ProjectAccess { id: p.id, public: p.public };
    if rbac::allowed(&state.db, caller.principal.as_ref(), access, res, act).await? {
        return Ok(());
    }
    if caller.principal.is_none() {
        return Err(ApiError::unauthorized());
    }
    Err(ApiError::Forbidden(format!(
        "no permission to {} {} in project {}",
        act.as_str(),
        res.as_str(),
        p.name
    )))
}

async fn role_of(state: &AppState, caller: &Caller, p: &Project) -> Result<Option<Role>, ApiError> {
    Ok(match &caller.principal {
        Some(pr) => pr.role_in(&state.db, p.id).await?,
        None => None,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Part of the name (case-insensitive).
    pub name: Option<String>,
    pub public: Option<bool>,
    /// `name`, `public`, `owner_id`, `creation_time`, `update_time`.
    pub q: Option<String>,
    /// `name`, `creation_time`, `update_time` (`-` for descending).
    pub sort: Option<String>,
    // Not `#[serde(flatten)]`: flattening makes serde_urlencoded fail on numbers.
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

/// `GET /api/v2.0/projects`: the projects the caller may see.
#[utoipa::path(get, path = "/projects", tag = "project", params(ListParams), responses((status = 200, body = [ProjectResp], headers(("X-Total-Count" = i64), ("Link" = String)))))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    let (page, page_size) = Pagination { page: params.page, page_size: params.page_size }.resolve()?;
    let q = ListQuery {
        name: params.name,
        public: params.public,
        q: crate::api::query::Query::parse(params.q.as_deref().unwrap_or(""))?,
        sort: crate::api::query::parse_sort(params.sort.as_deref())?,
        page,
        page_size,
    };
    let (items, total) = projects::list_visible(&state.db, caller.principal.as_ref(), &q).await?;
    let headers = pagination_headers(&uri, page, page_size, total);
    let roles = match caller.user() {
        Some(u) => projects::roles_of(&state.db, u, &items.iter().map(|p| p.id).collect::<Vec<_>>()).await?,
        None => Default::default(),
    };
    let ids: Vec<i64> = items.iter().map(|p| p.id).collect();
    let meta = projects::metadata_of(&state.db, &ids).await?;
    // The page's storage in one query (what each project's summary reports as `quota.used`).
    let usage = crate::usage::usage(&state.db, Some(&ids)).await?;
    let out: Vec<ProjectResp> = items
        .iter()
        .map(|p| ProjectResp {
            storage_used: Some(usage.get(&p.id).copied().unwrap_or(0)),
            ..project_model(p, roles.get(&p.id).copied(), meta.get(&p.id))
        })
        .collect();
    Ok((headers, Json(out)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HeadParams {
    pub project_name: String,
}

/// `HEAD /api/v2.0/projects?project_name=…`: 200 when the name is taken, 404 otherwise.
#[utoipa::path(head, path = "/projects", tag = "project", params(HeadParams), responses((status = 200), (status = 404)))]
pub async fn head(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(q): AppQuery<HeadParams>,
) -> Result<StatusCode, ApiError> {
    caller.require_principal()?;
    match projects::get_by_name(&state.db, &q.project_name).await? {
        Some(_) => Ok(StatusCode::OK),
        None => Err(ApiError::NotFound(format!("project {} not found", q.project_name))),
    }
}

fn public_flag(req: &ProjectReq) -> Result<Option<bool>, ApiError> {
    if let Some(p) = req.metadata.as_ref().and_then(|m| m.public.as_deref()) {
        return Ok(Some(projects::normalize_metadata("public", p)? == "true"));
    }
    Ok(req.public)
}

/// `POST /api/v2.0/projects`: any user (or only system admins, per the
/// `project_creation_restriction` setting); the creator becomes project admin. A
/// `registry_id` makes a proxy-cache project: system admins only, the registry must exist.
#[utoipa::path(post, path = "/projects", tag = "project", request_body = ProjectReq, responses((status = 201, headers(("Location" = String))), (status = 400), (status = 403), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(req): AppJson<ProjectReq>,
) -> Result<impl IntoResponse, ApiError> {
    let user = caller.require_user()?;
    let settings = crate::settings::load(&state.db, &state.config).await?;
    if settings.project_creation_restriction == "adminonly" && !user.is_sysadmin() {
        return Err(ApiError::Forbidden("only system admins may create projects".into()));
    }
    let name =
        req.project_name.as_deref().ok_or_else(|| ApiError::BadRequest("project_name is required".into()))?;
    let public = public_flag(&req)?.unwrap_or(false);
    let meta = req.metadata.as_ref().map(normalized).transpose()?.unwrap_or_default();
    // A proxy-cache project (Harbor: system admins only; 0 means none, as Harbor clients send).
    let registry_id = req.registry_id.filter(|id| *id != 0);
    if registry_id.is_some() && !user.is_sysadmin() {
        return Err(ApiError::Forbidden("only system admins may create proxy cache projects".into()));
    }
    // The quota (Harbor: a system admin's `storage_limit`, else the `storage_per_project`
    // setting; 0 means "the default" as in Harbor).
    let storage_limit = match req.storage_limit.filter(|l| *l != 0) {
        Some(l) if user.is_sysadmin() => {
            if !crate::quota::valid_limit(l) {
                return Err(ApiError::BadRequest(format!(
                    "storage_limit must be -1 (unlimited) or a number of bytes up to {}",
                    crate::quota::MAX_LIMIT
                )));
            }
            l
        }
        _ => settings.storage_per_project,
    };
    let p = projects::create(&state.db, name, public, user, registry_id, storage_limit).await?;
    let rest: Vec<_> = meta.into_iter().filter(|(k, _)| k != "public").collect();
    if !rest.is_empty() {
        projects::set_metadata(&state.db, p.id, &rest, false).await?;
    }
    state.audit.record(caller.event("create", "project", &p.name).project(p.id));
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v2.0/projects/{}", p.id)) {
        headers.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, headers))
}

/// `GET /api/v2.0/projects/{project_name_or_id}`
#[utoipa::path(get, path = "/projects/{project_name_or_id}", tag = "project", params(("project_name_or_id" = String, Path)), responses((status = 200, body = ProjectResp), (status = 401), (status = 403), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath(key): AppPath<String>,
) -> Result<Json<ProjectResp>, ApiError> {
    let p = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &p, Resource::Project, Act::Read).await?;
    let meta = projects::metadata_of(&state.db, &[p.id]).await?;
    Ok(Json(project_model(&p, role_of(&state, &caller, &p).await?, meta.get(&p.id))))
}

/// `PUT /api/v2.0/projects/{project_name_or_id}`: the public flag.
#[utoipa::path(put, path = "/projects/{project_name_or_id}", tag = "project", params(("project_name_or_id" = String, Path)), request_body = ProjectReq, responses((status = 200), (status = 403), (status = 404)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath(key): AppPath<String>,
    AppJson(req): AppJson<ProjectReq>,
) -> Result<StatusCode, ApiError> {
    let p = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &p, Resource::Project, Act::Update).await?;
    // The upstream of a proxy cache is fixed at creation (as in Harbor); sending the current
    // value back is not a change.
    if let Some(rid) = req.registry_id {
        if p.registry_id.unwrap_or(0) != rid {
            return Err(ApiError::BadRequest("the registry_id of a project cannot be changed".into()));
        }
    }
    let public = public_flag(&req)?;
    let mut meta = req.metadata.as_ref().map(normalized).transpose()?.unwrap_or_default();
    meta.retain(|(k, _)| k != "public");
    if let Some(public) = public {
        meta.push(("public".into(), public.to_string()));
    }
    if !meta.is_empty() {
        let detail = meta.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        store_metadata(&state, &p, meta, false).await?;
        state.audit.record(caller.event("update", "project", &p.name).project(p.id).detail(detail));
    }
    Ok(StatusCode::OK)
}

/// `DELETE /api/v2.0/projects/{project_name_or_id}`: only when it has no repositories (412).
#[utoipa::path(delete, path = "/projects/{project_name_or_id}", tag = "project", params(("project_name_or_id" = String, Path)), responses((status = 200), (status = 403), (status = 404), (status = 412)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath(key): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    let p = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &p, Resource::Project, Act::Delete).await?;
    projects::delete(&state.db, p.id).await?;
    state.audit.record(caller.event("delete", "project", &p.name).project(p.id));
    Ok(StatusCode::OK)
}

/// `GET /api/v2.0/projects/{project_name_or_id}/_deletable`
#[utoipa::path(get, path = "/projects/{project_name_or_id}/_deletable", tag = "project", params(("project_name_or_id" = String, Path)), responses((status = 200, body = Object)))]
pub async fn deletable(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath(key): AppPath<String>,
) -> Result<Json<Value>, ApiError> {
    let p = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &p, Resource::Project, Act::Delete).await?;
    Ok(Json(if p.repo_count == 0 {
        json!({ "deletable": true })
    } else {
        json!({ "deletable": false, "message": format!("the project has {} repositories", p.repo_count) })
    }))
}

/// One more level of percent-decoding (axum decoded the first).
pub fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

// ---------------------------------------------------------------- members

fn member_json(m: &Member) -> ProjectMember {
    ProjectMember {
        id: m.id,
        project_id: m.project_id,
        entity_name: m.entity_name.clone(),
        entity_id: m.entity_id,
        entity_type: m.entity_type.clone(),
        role_id: m.role.id(),
        role_name: m.role.name().into(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberListParams {
    pub entityname: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

/// `GET /api/v2.0/projects/{p}/members`
#[utoipa::path(get, path = "/projects/{project_name_or_id}/members", tag = "member", params(("project_name_or_id" = String, Path), MemberListParams), responses((status = 200, body = [ProjectMember]), (status = 403)))]
pub async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    AppPath(key): AppPath<String>,
    AppQuery(q): AppQuery<MemberListParams>,
) -> Result<impl IntoResponse, ApiError> {
    let p = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &p, Resource::Member, Act::List).await?;
    let (page, page_size) = Pagination { page: q.page, page_size: q.page_size }.resolve()?;
    let (items, total) = projects::members(&state.db, p.id, q.entityname.as_deref(), page, page_size).await?;
    Ok((
        pagination_headers(&uri, page, page_size, total),
        Json(items.iter().map(member_json).collect::<Vec<_>>()),
    ))
}

fn role(id: i64) -> Result<Role, ApiError> {
    Role::from_id(id).ok_or_else(|| {
        ApiError::BadRequest("role_id must be 1 (project admin), 2 (developer), 3 (guest), 4 (maintainer) or 5 (limited guest)".into())
    })
}

/// `POST /api/v2.0/projects/{p}/members`: a user (`member_user`: `user_id` or `username`) or
/// a user group (`member_group`: `id`, `ldap_group_dn` or `group_name`; see
/// `usergroups::member_group`), in Harbor's order of precedence.
#[utoipa::path(post, path = "/projects/{project_name_or_id}/members", tag = "member", params(("project_name_or_id" = String, Path)), request_body = MemberReq, responses((status = 201, headers(("Location" = String))), (status = 400), (status = 403), (status = 404), (status = 409)))]
pub async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath(key): AppPath<String>,
    AppJson(req): AppJson<MemberReq>,
) -> Result<impl IntoResponse, ApiError> {
    let p = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &p, Resource::Member, Act::Create).await?;
    let role = role(req.role_id)?;
    let (user_id, username) = match &req.member_user {
        Some(mu) => (mu.user_id, mu.username.as_deref().filter(|n| !n.is_empty())),
        None => (None, None),
    };
    let group = req.member_group.as_ref();
    let (who, name) = if let Some(id) = user_id {
        member_user(crate::accounts::get_by_id(&state.db, id).await?)?
    } else if let Some(g) = group.filter(|g| g.id > 0) {
        member_group(&state, g).await?
    } else if let Some(name) = username {
        member_user(crate::accounts::get_by_name(&state.db, name).await?)?
    } else if let Some(g) = group {
        member_group(&state, g).await?
    } else if req.member_user.is_some() {
        return Err(ApiError::BadRequest("member_user needs user_id or username".into()));
    } else {
        return Err(ApiError::BadRequest("member_user or member_group is required".into()));
    };
    let m = projects::add_member(&state.db, p.id, who, role).await?;
    state.audit.record(
        caller.event("create", "member", format!("{}:{name}", p.name)).project(p.id).detail(role.name()),
    );
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v2.0/projects/{}/members/{}", p.id, m.id)) {
        h.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, h))
}

fn member_user(found: Option<crate::accounts::User>) -> Result<(Entity, String), ApiError> {
    let user = found.ok_or_else(|| ApiError::NotFound("user not found".into()))?;
    Ok((Entity::User(user.id), user.username))
}

async fn member_group(state: &AppState, g: &UserGroup) -> Result<(Entity, String), ApiError> {
    let group = crate::api::usergroups::member_group(state, g).await?;
    Ok((Entity::Group(group.id), group.group_name))
}

/// `GET /api/v2.0/projects/{p}/members/{mid}`
#[utoipa::path(get, path = "/projects/{project_name_or_id}/members/{mid}", tag = "member", params(("project_name_or_id" = String, Path), ("mid" = i64, Path)), responses((status = 200, body = ProjectMember), (status = 404)))]
pub async fn get_member(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, mid)): AppPath<(String, i64)>,
) -> Result<Json<ProjectMember>, ApiError> {
    let p = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &p, Resource::Member, Act::Read).await?;
    let m = projects::member(&state.db, p.id, mid)
        .await?
        .ok_or_else(|| ApiError::NotFound("member not found".into()))?;
    Ok(Json(member_json(&m)))
}

/// `PUT /api/v2.0/projects/{p}/members/{mid}`: changes the role.
#[utoipa::path(put, path = "/projects/{project_name_or_id}/members/{mid}", tag = "member", params(("project_name_or_id" = String, Path), ("mid" = i64, Path)), request_body = RoleReq, responses((status = 200), (status = 400), (status = 403), (status = 404)))]
pub async fn update_member(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, mid)): AppPath<(String, i64)>,
    AppJson(req): AppJson<RoleReq>,
) -> Result<StatusCode, ApiError> {
    let p = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &p, Resource::Member, Act::Update).await?;
    let role = role(req.role_id)?;
    let m = projects::update_member(&state.db, p.id, mid, role).await?;
    state.audit.record(
        caller
            .event("update", "member", format!("{}:{}", p.name, m.entity_name))
            .project(p.id)
            .detail(role.name()),
    );
    Ok(StatusCode::OK)
}

/// `DELETE /api/v2.0/projects/{p}/members/{mid}`
#[utoipa::path(delete, path = "/projects/{project_name_or_id}/members/{mid}", tag = "member", params(("project_name_or_id" = String, Path), ("mid" = i64, Path)), responses((status = 200), (status = 403), (status = 404)))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, mid)): AppPath<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    let p = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &p, Resource::Member, Act::Delete).await?;
    let m = projects::remove_member(&state.db, p.id, mid).await?;
    state
        .audit
        .record(caller.event("delete", "member", format!("{}:{}", p.name, m.entity_name)).project(p.id));
    Ok(StatusCode::OK)
}

// ---------------------------------------------------------------- logs

/// `GET /api/v2.0/projects/{p}/logs`: the project's audit rows (members with log access).
#[utoipa::path(get, path = "/projects/{project_name_or_id}/logs", tag = "auditlog", params(("project_name_or_id" = String, Path), crate::api::audit::LogParams), responses((status = 200, body = [crate::api::audit::AuditLogResp]), (status = 403)))]
pub async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    AppPath(key): AppPath<String>,
    AppQuery(q): AppQuery<crate::api::audit::LogParams>,
) -> Result<impl IntoResponse, ApiError> {
    let p = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &p, Resource::Log, Act::List).await?;
    crate::api::audit::respond(&state, &uri, q, Some(p.id)).await
}

// ---------------------------------------------------------------- summary, metadata

/// `GET /api/v2.0/projects/{project_name_or_id}/summary`
#[utoipa::path(get, path = "/projects/{project_name_or_id}/summary", tag = "project",
    params(("project_name_or_id" = String, Path)), responses((status = 200, body = ProjectSummary), (status = 403), (status = 404)))]
pub async fn summary(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath(key): AppPath<String>,
) -> Result<Json<ProjectSummary>, ApiError> {
    let p = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &p, Resource::Project, Act::Read).await?;
    let counts = projects::role_counts(&state.db, p.id).await?;
    let n = |r: Role| counts.iter().find(|(role, _)| *role == r).map(|(_, n)| *n).unwrap_or(0);
    // Member counts only for those who may list members (Harbor hides them from limited guests).
    let show = rbac::allowed(
        &state.db,
        caller.principal.as_ref(),
        ProjectAccess { id: p.id, public: p.public },
        Resource::Member,
        Act::List,
    )
    .await?;
    let m = |r: Role| if show { n(r) } else { 0 };
    let (hard, used) = match crate::quota::of_project(&state.db, p.id).await? {
        Some(q) => (q.hard, q.used),
        None => (-1, 0),
    };
    Ok(Json(ProjectSummary {
        quota: Quota { hard: ResourceAmount { storage: hard }, used: ResourceAmount { storage: used } },
        repo_count: p.repo_count,
        project_admin_count: m(Role::ProjectAdmin),
        maintainer_count: m(Role::Maintainer),
        developer_count: m(Role::Developer),
        guest_count: m(Role::Guest),
        limited_guest_count: m(Role::LimitedGuest),
    }))
}

async fn metadata_map(state: &AppState, p: &Project) -> Result<BTreeMap<String, String>, ApiError> {
    let stored = projects::metadata_of(&state.db, &[p.id]).await?;
    Ok(to_map(&ProjectMetadata::of(p.public, stored.get(&p.id))))
}

/// Harbor's rule for a metadata body: exactly one key/value pair.
fn one_pair(m: &BTreeMap<String, String>) -> Result<(String, String), ApiError> {
    match m.iter().next() {
        Some((k, v)) if m.len() == 1 => Ok((k.clone(), projects::normalize_metadata(k, v)?)),
        _ => Err(ApiError::BadRequest("only allow one key/value pair".into())),
    }
}

/// `GET /api/v2.0/projects/{project_name_or_id}/metadatas/`: every key set (whoever may read
/// the project, as before).
#[utoipa::path(get, path = "/projects/{project_name_or_id}/metadatas", tag = "project",
    params(("project_name_or_id" = String, Path)), responses((status = 200, body = ProjectMetadata), (status = 403), (status = 404)))]
pub async fn metadatas(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath(key): AppPath<String>,
) -> Result<Json<BTreeMap<String, String>>, ApiError> {
    let p = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &p, Resource::Project, Act::Read).await?;
    Ok(Json(metadata_map(&state, &p).await?))
}

/// `POST /api/v2.0/projects/{project_name_or_id}/metadatas/`: adds one key (409 when set).
#[utoipa::path(post, path = "/projects/{project_name_or_id}/metadatas", tag = "project",
    params(("project_name_or_id" = String, Path)), request_body = ProjectMetadata,
    responses((status = 200), (status = 400), (status = 403), (status = 404), (status = 409)))]
pub async fn add_metadata(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath(key): AppPath<String>,
    AppJson(m): AppJson<BTreeMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let p = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &p, Resource::Metadata, Act::Create).await?;
    let (k, v) = one_pair(&m)?;
    if k == "public" {
        // Every project has it.
        return Err(projects::ProjectError::MetadataExists(k).into());
    }
    store_metadata(&state, &p, vec![(k.clone(), v.clone())], true).await?;
    state.audit.record(caller.event("update", "project", &p.name).project(p.id).detail(format!("{k}={v}")));
    Ok(StatusCode::OK)
}

/// `GET /api/v2.0/projects/{project_name_or_id}/metadatas/{meta_name}`: `{name: value}`.
#[utoipa::path(get, path = "/projects/{project_name_or_id}/metadatas/{meta_name}", tag = "project",
    params(("project_name_or_id" = String, Path), ("meta_name" = String, Path)),
    responses((status = 200, body = ProjectMetadata), (status = 403), (status = 404)))]
pub async fn get_metadata(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, name)): AppPath<(String, String)>,
) -> Result<Json<BTreeMap<String, String>>, ApiError> {
    let p = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &p, Resource::Project, Act::Read).await?;
    let all = metadata_map(&state, &p).await?;
    match all.get(&name) {
        Some(v) => Ok(Json(BTreeMap::from([(name.clone(), v.clone())]))),
        None => Err(ApiError::NotFound(format!("metadata {name} of project {} not found", p.name))),
    }
}

/// `PUT /api/v2.0/projects/{project_name_or_id}/metadatas/{meta_name}`: `{meta_name: value}`.
#[utoipa::path(put, path = "/projects/{project_name_or_id}/metadatas/{meta_name}", tag = "project",
    params(("project_name_or_id" = String, Path), ("meta_name" = String, Path)), request_body = ProjectMetadata,
    responses((status = 200), (status = 400), (status = 403), (status = 404)))]
pub async fn update_metadata(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, name)): AppPath<(String, String)>,
    AppJson(m): AppJson<BTreeMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let p = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &p, Resource::Metadata, Act::Update).await?;
    let (k, v) = one_pair(&m)?;
    if k != name {
        return Err(ApiError::BadRequest(format!("the body sets {k:?}, the path names {name:?}")));
    }
    store_metadata(&state, &p, vec![(k.clone(), v.clone())], false).await?;
    state.audit.record(caller.event("update", "project", &p.name).project(p.id).detail(format!("{k}={v}")));
    Ok(StatusCode::OK)
}

/// `DELETE /api/v2.0/projects/{project_name_or_id}/metadatas/{meta_name}` (not `public`).
#[utoipa::path(delete, path = "/projects/{project_name_or_id}/metadatas/{meta_name}", tag = "project",
    params(("project_name_or_id" = String, Path), ("meta_name" = String, Path)),
    responses((status = 200), (status = 400), (status = 403), (status = 404)))]
pub async fn delete_metadata(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, name)): AppPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let p = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &p, Resource::Metadata, Act::Delete).await?;
    if name == "public" {
        return Err(ApiError::BadRequest(
            "every project is public or not: set public to \"false\" instead".into(),
        ));
    }
    if !projects::METADATA_KEYS.contains(&name.as_str()) {
        return Err(ApiError::BadRequest(format!("invalid metadata key {name:?}")));
    }
    if projects::delete_metadata(&state.db, p.id, &name).await? {
        state.audit.record(
            caller.event("update", "project", &p.name).project(p.id).detail(format!("{name} removed")),
        );
    }
    Ok(StatusCode::OK)
}

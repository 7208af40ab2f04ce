//! Labels under `/api/v2.0/labels` (Harbor's `label` operations) and on artifacts
//! (`…/artifacts/{reference}/labels`). Global labels are the system admin's to change and
//! every signed-in user's to read; project labels follow the project's roles (`rbac`:
//! `label`, and `artifact-label` for adding and removing them on artifacts).

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::artifacts::locate_artifact;
use crate::api::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::api::projects::require;
use crate::api::query::{parse_sort, Query};
use crate::api::{pagination_headers, Pagination};
use crate::artifacts::write;
use crate::auth::Caller;
use crate::db::query::contains;
use crate::labels::{self, LabelError, LabelRow, GLOBAL, PROJECT};
use crate::rbac::{Act, Resource};
use crate::state::AppState;

pub use app::rest::labels::{Label, LabelRef, LabelReq};

impl From<LabelError> for ApiError {
    fn from(e: LabelError) -> Self {
        match e {
            LabelError::Conflict(_) => ApiError::Conflict(e.to_string()),
            LabelError::NotFound => ApiError::NotFound(e.to_string()),
            LabelError::Db(e) => e.into(),
        }
    }
}

/// Fails unless the caller may do `act` on the label: the system admin for a global label's
/// changes (anyone signed in reads them), the project's roles for a project label.
async fn require_label(state: &AppState, caller: &Caller, l: &LabelRow, act: Act) -> Result<(), ApiError> {
    if l.scope == GLOBAL {
        if matches!(act, Act::Read | Act::List) {
            caller.require_principal()?;
        } else {
            caller.require_sysadmin()?;
        }
        return Ok(());
    }
    let project = crate::projects::get(&state.db, l.project_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("label {} not found", l.id)))?;
    require(state, caller, &project, Resource::Label, act).await
}

async fn found(state: &AppState, id: i64) -> Result<LabelRow, ApiError> {
    labels::get(&state.db, id).await?.ok_or_else(|| ApiError::NotFound(format!("label {id} not found")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LabelListParams {
    /// `g` (global labels) or `p` (a project's, with `project_id`).
    pub scope: Option<String>,
    pub project_id: Option<i64>,
    /// Part of the name (case-insensitive).
    pub name: Option<String>,
    /// Keys `name` and `id`.
    pub q: Option<String>,
    /// `name`, `id`, `creation_time`, `update_time` (`-` for descending); default `name`.
    pub sort: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

/// `GET /labels?scope=g|p[&project_id=]`
#[utoipa::path(get, path = "/labels", tag = "label", params(LabelListParams),
    responses((status = 200, body = [Label], headers(("X-Total-Count" = i64), ("Link" = String))),
        (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppQuery(p): AppQuery<LabelListParams>,
) -> Result<impl IntoResponse, ApiError> {
    let scope = p.scope.as_deref().unwrap_or("");
    let project_id = match scope {
        GLOBAL => {
            caller.require_principal()?;
            0
        }
        PROJECT => {
            let id = p.project_id.filter(|id| *id > 0).ok_or_else(|| {
                ApiError::BadRequest("must with project ID when to query project labels".into())
            })?;
            let project = crate::projects::get(&state.db, id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("project {id} not found")))?;
            require(&state, &caller, &project, Resource::Label, Act::List).await?;
            id
        }
        other => return Err(ApiError::BadRequest(format!("invalid scope: {other:?}; use g or p"))),
    };
    let (page, page_size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let mut conds = labels::scope_conds(scope, project_id);
    let q = Query::parse(p.q.as_deref().unwrap_or(""))?;
    conds.filter(&q.terms, &labels::KEYS, &[])?;
    if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
        if name.len() > labels::MAX_NAME_LEN {
            return Err(ApiError::BadRequest(format!("name is longer than {} bytes", labels::MAX_NAME_LEN)));
        }
        conds.push("lower(name) LIKE ? ESCAPE '\\'", contains(name));
    }
    let (rows, total) =
        labels::list(&state.db, conds, &parse_sort(p.sort.as_deref())?, page, page_size).await?;
    Ok((
        pagination_headers(&uri, page, page_size, total),
        Json(rows.iter().map(LabelRow::to_rest).collect::<Vec<_>>()),
    ))
}

/// `POST /labels`: 201 with the label's `Location`; 409 when its scope has the name already.
#[utoipa::path(post, path = "/labels", tag = "label", request_body = LabelReq,
    responses((status = 201, headers(("Location" = String))), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppJson(mut req): AppJson<LabelReq>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_principal()?;
    let project = match req.scope.as_str() {
        GLOBAL => {
            caller.require_sysadmin()?;
            req.project_id = 0;
            None
        }
        PROJECT => {
            if req.project_id <= 0 {
                return Err(ApiError::BadRequest("a project label needs its project_id".into()));
            }
            let project = crate::projects::get(&state.db, req.project_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("project {} not found", req.project_id)))?;
            require(&state, &caller, &project, Resource::Label, Act::Create).await?;
            Some(project)
        }
        other => return Err(ApiError::BadRequest(format!("invalid scope: {other:?}; use g or p"))),
    };
    labels::validate(&req.name, &req.description, &req.color).map_err(ApiError::BadRequest)?;
    let id = labels::create(&state.db, &req).await?;
    let mut ev =
        caller.event("create", "label", &req.name).detail(format!("label {id}, scope {}", req.scope));
    if let Some(p) = &project {
        ev = ev.project(p.id);
    }
    state.audit.record(ev);
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("{}/{id}", uri.path().trim_end_matches('/'))) {
        h.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, h))
}

/// `GET /labels/{label_id}`
#[utoipa::path(get, path = "/labels/{label_id}", tag = "label", params(("label_id" = i64, Path)),
    responses((status = 200, body = Label), (status = 401), (status = 403), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<Json<Label>, ApiError> {
    let l = found(&state, id).await?;
    require_label(&state, &caller, &l, Act::Read).await?;
    Ok(Json(l.to_rest()))
}

/// `PUT /labels/{label_id}`: name, description and color (scope and project stay).
#[utoipa::path(put, path = "/labels/{label_id}", tag = "label", params(("label_id" = i64, Path)), request_body = LabelReq,
    responses((status = 200), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<LabelReq>,
) -> Result<StatusCode, ApiError> {
    let l = found(&state, id).await?;
    require_label(&state, &caller, &l, Act::Update).await?;
    labels::validate(&req.name, &req.description, &req.color).map_err(ApiError::BadRequest)?;
    labels::update(&state.db, id, &req.name, &req.description, &req.color).await?;
    let mut ev = caller.event("update", "label", &req.name).detail(format!("label {id}, was {:?}", l.name));
    if l.scope == PROJECT {
        ev = ev.project(l.project_id);
    }
    state.audit.record(ev);
    Ok(StatusCode::OK)
}

/// `DELETE /labels/{label_id}`: the label and its place on every artifact.
#[utoipa::path(delete, path = "/labels/{label_id}", tag = "label", params(("label_id" = i64, Path)),
    responses((status = 200), (status = 401), (status = 403), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<StatusCode, ApiError> {
    let l = found(&state, id).await?;
    require_label(&state, &caller, &l, Act::Delete).await?;
    let Some(detached) = labels::delete(&state.db, id).await? else {
        return Err(ApiError::NotFound(format!("label {id} not found")));
    };
    let mut ev = caller
        .event("delete", "label", &l.name)
        .detail(format!("label {id}, removed from {detached} artifacts"));
    if l.scope == PROJECT {
        ev = ev.project(l.project_id);
    }
    state.audit.record(ev);
    Ok(StatusCode::OK)
}

/// `POST …/artifacts/{reference}/labels` with `{"id": …}`: a global label or one of the
/// artifact's project; 409 when the artifact carries it already.
#[utoipa::path(post, path = "/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/labels", tag = "artifact",
    params(("project_name_or_id" = String, Path), ("repository_name" = String, Path), ("reference" = String, Path)),
    request_body = LabelRef,
    responses((status = 200), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub async fn add_to_artifact(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, repo, reference)): AppPath<(String, String, String)>,
    AppJson(req): AppJson<LabelRef>,
) -> Result<StatusCode, ApiError> {
    let (p, r, a) = locate_artifact(
        &state,
        &caller,
        &headers,
        &key,
        &repo,
        &reference,
        (Resource::ArtifactLabel, Act::Create),
    )
    .await?;
    let l = found(&state, req.id).await?;
    if !l.usable_in(p.id) {
        return Err(ApiError::BadRequest(format!(
            "label {} belongs to another project; use a global label or one of project {}",
            l.id, p.name
        )));
    }
    match write::add_label(&state.db, a.id, l.id).await? {
        None => return Err(ApiError::NotFound(format!("artifact {}@{} not found", r.name, a.digest))),
        Some(false) => {
            return Err(ApiError::Conflict(format!(
                "label {} is already added to the artifact {}@{}",
                l.name, r.name, a.digest
            )))
        }
        Some(true) => {}
    }
    state.audit.record(
        caller
            .event("create", "artifact_label", format!("{}@{}", r.name, a.digest))
            .project(p.id)
            .detail(format!("label {} ({})", l.name, l.id)),
    );
    Ok(StatusCode::OK)
}

/// `DELETE …/artifacts/{reference}/labels/{label_id}`
#[utoipa::path(delete, path = "/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/labels/{label_id}", tag = "artifact",
    params(("project_name_or_id" = String, Path), ("repository_name" = String, Path), ("reference" = String, Path), ("label_id" = i64, Path)),
    responses((status = 200), (status = 401), (status = 403), (status = 404)))]
pub async fn remove_from_artifact(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, repo, reference, label_id)): AppPath<(String, String, String, i64)>,
) -> Result<StatusCode, ApiError> {
    let (p, r, a) = locate_artifact(
        &state,
        &caller,
        &headers,
        &key,
        &repo,
        &reference,
        (Resource::ArtifactLabel, Act::Delete),
    )
    .await?;
    if !write::remove_label(&state.db, a.id, label_id).await? {
        return Err(ApiError::NotFound(format!(
            "label {label_id} is not on the artifact {}@{}",
            r.name, a.digest
        )));
    }
    state.audit.record(
        caller
            .event("delete", "artifact_label", format!("{}@{}", r.name, a.digest))
            .project(p.id)
            .detail(format!("label {label_id}")),
    );
    Ok(StatusCode::OK)
}

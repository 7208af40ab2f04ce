//! Repositories under `/api/v2.0` (Harbor's shapes); their artifacts are in `api::artifacts`,
//! tags in `api::tags`.
//! Repository names containing `/` arrive double-URL-encoded in paths (`a%252Fb`).

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::api::projects::{percent_decode, require, resolve};
use crate::api::query::{parse_sort, Query};
use crate::api::{pagination_headers, Pagination};
use crate::artifacts::{self, RepoRow};
use crate::auth::Caller;
use crate::db::query::{order_by, Bind, Sql};
use crate::db::rfc3339;
use crate::projects::Project;
use crate::rbac::{Act, Resource};
use crate::state::AppState;

pub use app::rest::artifacts::{Repository, RepositoryUpdate};

impl From<&RepoRow> for Repository {
    fn from(r: &RepoRow) -> Self {
        Repository {
            id: r.id,
            project_id: r.project_id,
            name: r.name.clone(),
            description: r.description.clone(),
            artifact_count: r.artifact_count,
            pull_count: r.pull_count,
            creation_time: rfc3339(r.created_at),
            update_time: rfc3339(r.updated_at),
        }
    }
}

/// Paging, `q` and `sort`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Harbor's query grammar: `k=v`, `k=~v`, `k=[a~b]`, `k={a b}`, comma-separated.
    pub q: Option<String>,
    /// Keys, `-` for descending, comma-separated.
    pub sort: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

async fn repo_page(
    state: &AppState,
    uri: &axum::http::Uri,
    p: &ListParams,
    mut sql: Sql,
) -> Result<impl IntoResponse + use<>, ApiError> {
    let (page, page_size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let q = Query::parse(p.q.as_deref().unwrap_or(""))?;
    sql.filter(&q.terms, &artifacts::REPO_KEYS, &[])?;
    let order = order_by(&parse_sort(p.sort.as_deref())?, &artifacts::REPO_SORT, "r.name", "r.id")?;
    let (items, total) = artifacts::list_repositories(&state.db, &sql, &order, page, page_size).await?;
    Ok((
        pagination_headers(uri, page, page_size, total),
        Json(items.iter().map(Repository::from).collect::<Vec<_>>()),
    ))
}

/// `GET /api/v2.0/repositories`: repositories of every project the caller may see.
#[utoipa::path(get, path = "/repositories", tag = "repository", params(ListParams),
    responses((status = 200, body = [Repository], headers(("X-Total-Count" = i64), ("Link" = String)))))]
pub async fn list_all(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppQuery(p): AppQuery<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    let sql = crate::projects::visible_filter(caller.principal.as_ref());
    repo_page(&state, &uri, &p, sql).await
}

/// `GET /api/v2.0/projects/{project_name_or_id}/repositories`
#[utoipa::path(get, path = "/projects/{project_name_or_id}/repositories", tag = "repository",
    params(("project_name_or_id" = String, Path), ListParams),
    responses((status = 200, body = [Repository]), (status = 403), (status = 404)))]
pub async fn list_in_project(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    AppPath(key): AppPath<String>,
    AppQuery(p): AppQuery<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    let project = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &project, Resource::Repository, Act::List).await?;
    let mut sql = Sql::new();
    sql.push("r.project_id = ?", Bind::I(project.id));
    repo_page(&state, &uri, &p, sql).await
}

/// The project and repository of a path, with the caller's permission checked.
pub(super) async fn locate(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    key: &str,
    repo: &str,
    res: Resource,
    act: Act,
) -> Result<(Project, RepoRow), ApiError> {
    let project = resolve(state, headers, key).await?;
    require(state, caller, &project, res, act).await?;
    let full = format!("{}/{}", project.name, percent_decode(repo));
    let repo = artifacts::get_repository(&state.db, &full, false)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("repository {full} not found")))?;
    Ok((project, repo))
}

/// `GET /api/v2.0/projects/{p}/repositories/{repository_name}`
#[utoipa::path(get, path = "/projects/{project_name_or_id}/repositories/{repository_name}", tag = "repository",
    params(("project_name_or_id" = String, Path), ("repository_name" = String, Path, description = "double-URL-encoded when it contains '/'")),
    responses((status = 200, body = Repository), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, repo)): AppPath<(String, String)>,
) -> Result<Json<Repository>, ApiError> {
    let (_, r) = locate(&state, &caller, &headers, &key, &repo, Resource::Repository, Act::Read).await?;
    let r = artifacts::get_repository(&state.db, &r.name, true)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("repository {} not found", r.name)))?;
    Ok(Json(Repository::from(&r)))
}

/// `PUT /api/v2.0/projects/{p}/repositories/{repository_name}`: the description.
#[utoipa::path(put, path = "/projects/{project_name_or_id}/repositories/{repository_name}", tag = "repository",
    params(("project_name_or_id" = String, Path), ("repository_name" = String, Path)),
    request_body = RepositoryUpdate, responses((status = 200), (status = 403), (status = 404)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, repo)): AppPath<(String, String)>,
    AppJson(req): AppJson<RepositoryUpdate>,
) -> Result<StatusCode, ApiError> {
    let (p, r) = locate(&state, &caller, &headers, &key, &repo, Resource::Repository, Act::Update).await?;
    if req.description.len() > 64 * 1024 {
        return Err(ApiError::BadRequest("the description is longer than 64 KiB".into()));
    }
    artifacts::write::set_description(&state.db, r.id, &req.description).await?;
    state.audit.record(caller.event("update", "repository", &r.name).project(p.id));
    Ok(StatusCode::OK)
}

/// `DELETE /api/v2.0/projects/{p}/repositories/{repository_name}`: the repository and all its
/// artifacts and tags, logically (content stays until GC).
#[utoipa::path(delete, path = "/projects/{project_name_or_id}/repositories/{repository_name}", tag = "repository",
    params(("project_name_or_id" = String, Path), ("repository_name" = String, Path)),
    responses((status = 200), (status = 403), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, repo)): AppPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (p, r) = locate(&state, &caller, &headers, &key, &repo, Resource::Repository, Act::Delete).await?;
    let uploads = artifacts::write::delete_repository(&state.db, &r.name).await?.unwrap_or_default();
    // The sessions' rows are gone, so nobody can continue them: their data goes now (a failure
    // here leaves an orphan for the storage to keep, never a broken upload).
    for id in uploads {
        if let Err(e) = state.storage.delete(&format!("uploads/{id}/data")).await {
            tracing::warn!(upload = %id, error = %e, "could not delete the data of a deleted repository's upload");
        }
    }
    state.audit.record(caller.event("delete", "repository", &r.name).project(p.id));
    Ok(StatusCode::OK)
}

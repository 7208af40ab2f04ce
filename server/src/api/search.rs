//! `GET /api/v2.0/search`, `GET /api/v2.0/statistics` and
//! `GET /api/v2.0/users/current/permissions`.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::error::{ApiError, AppQuery};
use crate::api::projects::project_model;
use crate::auth::Caller;
use crate::db::query::{contains, Stmt};
use crate::projects::{self, ListQuery};
use crate::rbac::{self, Act, ProjectAccess, Resource};
use crate::state::AppState;

pub use app::rest::system::{Search, SearchRepository, Statistic};
pub use app::rest::users::Permission;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Part of a project or repository name.
    pub q: String,
}

/// Projects and repositories the caller may see whose names contain `q` (at most 50 of each).
#[utoipa::path(get, path = "/search", tag = "search", params(SearchParams), responses((status = 200, body = Search)))]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(p): AppQuery<SearchParams>,
) -> Result<Json<Search>, ApiError> {
    let term = p.q.trim();
    if term.is_empty() {
        return Err(ApiError::BadRequest("q must not be empty".into()));
    }
    let q = ListQuery { name: Some(term.to_string()), page: 1, page_size: 50, ..Default::default() };
    let (found, _) = projects::list_visible(&state.db, caller.principal.as_ref(), &q).await?;
    let project = found.iter().map(|p| project_model(p, None, None)).collect();
    let mut query = Stmt::new(
        "SELECT r.project_id, p.name AS project_name, p.public, r.name, r.pull_count, \
         (SELECT COUNT(*) FROM artifacts a WHERE a.repository_id = r.id AND a.visible = 1) AS artifact_count \
         FROM repositories r JOIN projects p ON p.id = r.project_id WHERE lower(r.name) LIKE ? ESCAPE '\\'",
    );
    query.bind(contains(term)).and(&projects::visible_filter(caller.principal.as_ref()));
    query.push(" ORDER BY r.name LIMIT 50");
    let rows: Vec<(i64, String, i64, String, i64, i64)> = query.query_as().fetch_all(&state.db.pool).await?;
    let repository = rows
        .into_iter()
        .map(|(project_id, project_name, public, repository_name, pull_count, artifact_count)| {
            SearchRepository {
                project_id,
                project_name,
                project_public: public != 0,
                repository_name,
                pull_count,
                artifact_count,
            }
        })
        .collect();
    Ok(Json(Search { project, repository }))
}

/// Counts of the projects and repositories the caller may see.
#[utoipa::path(get, path = "/statistics", tag = "statistic", responses((status = 200, body = Statistic), (status = 401)))]
pub async fn statistics(State(state): State<AppState>, caller: Caller) -> Result<Json<Statistic>, ApiError> {
    let who = caller.require_principal()?;
    let visible = projects::visible_filter(Some(who));
    let s = crate::artifacts::statistics(&state.db, &visible, who.is_sysadmin()).await?;
    Ok(Json(Statistic {
        private_project_count: s.private_projects,
        private_repo_count: s.private_repos,
        public_project_count: s.public_projects,
        public_repo_count: s.public_repos,
        total_project_count: s.private_projects + s.public_projects,
        total_repo_count: s.private_repos + s.public_repos,
        total_storage_consumption: s.storage,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PermissionParams {
    /// `/project/<id>` for project permissions; absent for system-level ones.
    pub scope: Option<String>,
    /// Return resources relative to the scope (Harbor's `relative`; always relative here).
    pub relative: Option<bool>,
}

const RESOURCES: [Resource; 16] = [
    Resource::Project,
    Resource::Member,
    Resource::Metadata,
    Resource::Log,
    Resource::Repository,
    Resource::Artifact,
    Resource::Tag,
    Resource::Accessory,
    Resource::Robot,
    Resource::Configuration,
    Resource::Quota,
    Resource::ImmutableTag,
    Resource::Label,
    Resource::ArtifactLabel,
    Resource::TagRetention,
    Resource::NotificationPolicy,
];
const ACTS: [Act; 7] = [Act::Create, Act::Read, Act::Update, Act::Delete, Act::List, Act::Pull, Act::Push];

/// What the caller may do in a project (`scope=/project/<id>`), or system-wide.
#[utoipa::path(get, path = "/users/current/permissions", tag = "user", params(PermissionParams),
    responses((status = 200, body = [Permission]), (status = 400), (status = 401)))]
pub async fn permissions(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(p): AppQuery<PermissionParams>,
) -> Result<Json<Vec<Permission>>, ApiError> {
    let who = caller.require_principal()?;
    let _ = p.relative;
    let Some(scope) = p.scope.as_deref().filter(|s| !s.is_empty()) else {
        let all = who.is_sysadmin();
        let out = if all {
            ["user", "project", "robot", "audit-log", "configuration", "statistic", "label"]
                .iter()
                .flat_map(|r| {
                    ["create", "read", "update", "delete", "list"]
                        .map(|a| Permission { resource: r.to_string(), action: a.into() })
                })
                .collect()
        } else {
            vec![Permission { resource: "project".into(), action: "create".into() }]
        };
        return Ok(Json(out));
    };
    let id: i64 = scope
        .strip_prefix("/project/")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::BadRequest("scope must be /project/<id>".into()))?;
    let project =
        projects::get(&state.db, id).await?.ok_or_else(|| ApiError::NotFound("project not found".into()))?;
    let access = ProjectAccess { id: project.id, public: project.public };
    let decider = rbac::Decider::load(&state.db, Some(who), access).await?;
    let mut out = Vec::new();
    for res in RESOURCES {
        for act in ACTS {
            if decider.can(res, act) {
                out.push(Permission { resource: res.as_str().into(), action: act.as_str().into() });
            }
        }
    }
    Ok(Json(out))
}

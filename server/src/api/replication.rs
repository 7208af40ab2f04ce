//! Replication under `/api/v2.0/replication` (system admins, as in Harbor): policies (CRUD),
//! executions (list, start, get, stop), their tasks and each task's log. The work itself is
//! `replication::{policy, execution, task}`; this file maps HTTP to it.

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::api::query::Query;
use crate::api::{pagination_headers, Pagination};
use crate::auth::Caller;
use crate::db::query::{order_by, Bind, Col, SortKey, Sql};
use crate::db::{rfc3339, ZERO_TIME};
use crate::replication::execution::{self, Counts, Execution, StopResult};
use crate::replication::policy::{self, PolicyError};
use crate::state::AppState;

pub use app::rest::replication::{
    Registry, ReplicationExecution, ReplicationFilter, ReplicationPolicy, ReplicationTask,
    ReplicationTrigger, StartReplicationExecution, TriggerSettings,
};

impl From<PolicyError> for ApiError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::Invalid(m) => ApiError::BadRequest(m),
            PolicyError::NotFound(m) => ApiError::NotFound(m),
            PolicyError::Conflict(m) => ApiError::Conflict(m),
            PolicyError::Busy(m) => ApiError::PreconditionFailed(m),
            PolicyError::Db(e) => e.into(),
        }
    }
}

fn time_or_zero(ms: i64) -> String {
    if ms > 0 {
        rfc3339(ms)
    } else {
        ZERO_TIME.into()
    }
}

fn location(path: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(path) {
        h.insert(header::LOCATION, v);
    }
    h
}

// ---------------------------------------------------------------- policies

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PolicyListParams {
    /// `name` (exact or `~fuzzy`).
    pub q: Option<String>,
    /// `name`, `creation_time`, `update_time` (a `-` prefix: descending).
    pub sort: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
    /// Deprecated (Harbor): a fuzzy match on the name.
    pub name: Option<String>,
}

const POLICY_KEYS: [(&str, Col); 1] = [("name", Col::Text("name"))];
const POLICY_SORT: [(&str, &str); 4] =
    [("name", "name"), ("creation_time", "created_at"), ("update_time", "updated_at"), ("id", "id")];

fn parse_sort(sort: Option<&str>) -> Vec<SortKey> {
    sort.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix('-') {
            Some(k) => SortKey { key: k.to_string(), desc: true },
            None => SortKey { key: s.to_string(), desc: false },
        })
        .collect()
}

/// `GET /api/v2.0/replication/policies`
#[utoipa::path(get, path = "/replication/policies", tag = "replication", params(PolicyListParams),
    responses((status = 200, body = [ReplicationPolicy], headers(("X-Total-Count" = i64), ("Link" = String))),
        (status = 400), (status = 401), (status = 403)))]
pub async fn list_policies(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppQuery(p): AppQuery<PolicyListParams>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    let (page, size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let mut conds = Sql::new();
    conds.filter(&Query::parse(p.q.as_deref().unwrap_or(""))?.terms, &POLICY_KEYS, &[])?;
    if let Some(n) = p.name.as_deref().filter(|n| !n.is_empty()) {
        conds.push("lower(name) LIKE ? ESCAPE '\\'", crate::db::query::contains(n));
    }
    let order = order_by(&parse_sort(p.sort.as_deref()), &POLICY_SORT, "id", "id")?;
    let (rows, total) = policy::list(&state.db, &conds, &order, page, size).await?;
    let mut body = Vec::with_capacity(rows.len());
    for r in &rows {
        body.push(policy::to_rest(&state.db, r, state.config.external_base()).await?);
    }
    Ok((pagination_headers(&uri, page, size, total), Json(body)))
}

/// `POST /api/v2.0/replication/policies`: 201 with `Location`.
#[utoipa::path(post, path = "/replication/policies", tag = "replication", request_body = ReplicationPolicy,
    responses((status = 201, headers(("Location" = String))), (status = 400), (status = 401), (status = 403), (status = 409)))]
pub async fn create_policy(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(req): AppJson<ReplicationPolicy>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    let v = policy::validate(&state.db, &req).await?;
    let id = policy::create(&state.db, &v, caller.name()).await?;
    state.audit.record(caller.event("create", "replication_policy", &v.name).detail(format!("id {id}")));
    Ok((StatusCode::CREATED, location(&format!("/api/v2.0/replication/policies/{id}"))))
}

async fn load_policy(state: &AppState, id: i64) -> Result<policy::Policy, ApiError> {
    policy::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("replication policy {id} not found")))
}

/// `GET /api/v2.0/replication/policies/{id}`
#[utoipa::path(get, path = "/replication/policies/{id}", tag = "replication", params(("id" = i64, Path)),
    responses((status = 200, body = ReplicationPolicy), (status = 401), (status = 403), (status = 404)))]
pub async fn get_policy(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<Json<ReplicationPolicy>, ApiError> {
    caller.require_sysadmin()?;
    let p = load_policy(&state, id).await?;
    Ok(Json(policy::to_rest(&state.db, &p, state.config.external_base()).await?))
}

/// `PUT /api/v2.0/replication/policies/{id}`: replaces the policy's settings; refused (412) while
/// a run of it is pending or in progress.
#[utoipa::path(put, path = "/replication/policies/{id}", tag = "replication", params(("id" = i64, Path)),
    request_body = ReplicationPolicy,
    responses((status = 200), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409), (status = 412)))]
pub async fn update_policy(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<ReplicationPolicy>,
) -> Result<StatusCode, ApiError> {
    caller.require_sysadmin()?;
    load_policy(&state, id).await?;
    let v = policy::validate(&state.db, &req).await?;
    policy::update(&state.db, id, &v).await?;
    state.audit.record(caller.event("update", "replication_policy", &v.name).detail(format!("id {id}")));
    Ok(StatusCode::OK)
}

/// `DELETE /api/v2.0/replication/policies/{id}`: 412 while one of its runs is active.
#[utoipa::path(delete, path = "/replication/policies/{id}", tag = "replication", params(("id" = i64, Path)),
    responses((status = 200), (status = 401), (status = 403), (status = 404), (status = 412)))]
pub async fn delete_policy(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<StatusCode, ApiError> {
    caller.require_sysadmin()?;
    let p = policy::delete(&state.db, id).await?;
    state.audit.record(caller.event("delete", "replication_policy", &p.name).detail(format!("id {id}")));
    Ok(StatusCode::OK)
}

// ---------------------------------------------------------------- executions

fn execution_json(e: &Execution, c: Counts) -> ReplicationExecution {
    ReplicationExecution {
        id: e.id,
        policy_id: e.policy_id,
        status: e.status.clone(),
        trigger: e.trigger.clone(),
        start_time: rfc3339(e.start_time),
        end_time: time_or_zero(e.end_time),
        status_text: e.status_text.clone(),
        total: c.total,
        failed: c.failed,
        succeed: c.succeed,
        in_progress: c.in_progress,
        stopped: c.stopped,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExecutionListParams {
    pub policy_id: Option<i64>,
    /// `Pending`, `InProgress`, `Succeed`, `Failed` or `Stopped`.
    pub status: Option<String>,
    /// `manual`, `scheduled` or `event_based`.
    pub trigger: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

const STATUSES: [&str; 5] = ["Pending", "InProgress", "Succeed", "Failed", "Stopped"];

/// `GET /api/v2.0/replication/executions`: newest first, with task counts.
#[utoipa::path(get, path = "/replication/executions", tag = "replication", params(ExecutionListParams),
    responses((status = 200, body = [ReplicationExecution], headers(("X-Total-Count" = i64), ("Link" = String))),
        (status = 400), (status = 401), (status = 403)))]
pub async fn list_executions(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppQuery(p): AppQuery<ExecutionListParams>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    let (page, size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let mut conds = Sql::new();
    if let Some(id) = p.policy_id {
        conds.push("policy_id = ?", Bind::I(id));
    }
    if let Some(s) = p.status.as_deref().filter(|s| !s.is_empty()) {
        if !STATUSES.contains(&s) {
            return Err(ApiError::BadRequest(format!("status {s:?}: use {}", STATUSES.join(", "))));
        }
        conds.push("status = ?", Bind::S(s.into()));
    }
    if let Some(t) = p.trigger.as_deref().filter(|s| !s.is_empty()) {
        if !["manual", "scheduled", "event_based"].contains(&t) {
            return Err(ApiError::BadRequest(format!("trigger {t:?}: use manual, scheduled or event_based")));
        }
        conds.push("trigger = ?", Bind::S(t.into()));
    }
    let (rows, total) = execution::list(&state.db, &conds, page, size).await?;
    let ids: Vec<i64> = rows.iter().map(|e| e.id).collect();
    let counts = execution::counts(&state.db, &ids).await?;
    let body: Vec<ReplicationExecution> =
        rows.iter().map(|e| execution_json(e, counts.get(&e.id).copied().unwrap_or_default())).collect();
    Ok((pagination_headers(&uri, page, size, total), Json(body)))
}

/// `POST /api/v2.0/replication/executions`: starts a run of a policy (201 with `Location`).
/// While the policy's previous run is active (and `single_active_replication` is on) the run
/// is recorded as skipped (`Failed`, with Harbor's note) instead of queued.
#[utoipa::path(post, path = "/replication/executions", tag = "replication", request_body = StartReplicationExecution,
    responses((status = 201, headers(("Location" = String))), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 412)))]
pub async fn start_execution(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppJson(req): AppJson<StartReplicationExecution>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    if req.policy_id <= 0 {
        return Err(ApiError::BadRequest("policy_id is required".into()));
    }
    let p = load_policy(&state, req.policy_id).await?;
    if !p.enabled {
        return Err(ApiError::PreconditionFailed(format!("replication policy {} is disabled", p.id)));
    }
    // Harbor's legacy scheduler calls this with `?trigger=scheduled`.
    let scheduled = uri.query().is_some_and(|q| q.split('&').any(|kv| kv == "trigger=scheduled"));
    let trigger = if scheduled { "scheduled" } else { "manual" };
    let started = execution::start(&state, &p, trigger, caller.name(), None).await?;
    let id = started.id();
    state.audit.record(caller.event("create", "replication_execution", format!("{}/{id}", p.name)));
    Ok((StatusCode::CREATED, location(&format!("/api/v2.0/replication/executions/{id}"))))
}

async fn load_execution(state: &AppState, id: i64) -> Result<Execution, ApiError> {
    execution::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("replication execution {id} not found")))
}

/// `GET /api/v2.0/replication/executions/{id}`
#[utoipa::path(get, path = "/replication/executions/{id}", tag = "replication", params(("id" = i64, Path)),
    responses((status = 200, body = ReplicationExecution), (status = 401), (status = 403), (status = 404)))]
pub async fn get_execution(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<Json<ReplicationExecution>, ApiError> {
    caller.require_sysadmin()?;
    let e = load_execution(&state, id).await?;
    let c = execution::counts(&state.db, &[id]).await?.get(&id).copied().unwrap_or_default();
    Ok(Json(execution_json(&e, c)))
}

/// `PUT /api/v2.0/replication/executions/{id}`: stops the run (pending tasks at once, running
/// ones at their next heartbeat); a run already over is left as it is (200).
#[utoipa::path(put, path = "/replication/executions/{id}", tag = "replication", params(("id" = i64, Path)),
    responses((status = 200), (status = 401), (status = 403), (status = 404)))]
pub async fn stop_execution(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<StatusCode, ApiError> {
    caller.require_sysadmin()?;
    match execution::stop(&state.db, id).await? {
        StopResult::Stopping => {
            state.audit.record(caller.event("stop", "replication_execution", id.to_string()));
            Ok(StatusCode::OK)
        }
        StopResult::AlreadyOver => Ok(StatusCode::OK),
        StopResult::NotFound => Err(ApiError::NotFound(format!("replication execution {id} not found"))),
    }
}

// ---------------------------------------------------------------- tasks

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskListParams {
    /// `Pending`, `InProgress`, `Succeed`, `Failed` or `Stopped`.
    pub status: Option<String>,
    /// `image` or `artifact`.
    pub resource_type: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

type TaskRow = (i64, i64, String, i64, String, String, String, String, i64, i64);

/// `GET /api/v2.0/replication/executions/{id}/tasks`
#[utoipa::path(get, path = "/replication/executions/{id}/tasks", tag = "replication",
    params(("id" = i64, Path), TaskListParams),
    responses((status = 200, body = [ReplicationTask], headers(("X-Total-Count" = i64), ("Link" = String))),
        (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn list_tasks(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppPath(id): AppPath<i64>,
    AppQuery(p): AppQuery<TaskListParams>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    load_execution(&state, id).await?;
    let (page, size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let mut conds = Sql::new();
    conds.push("execution_id = ?", Bind::I(id));
    if let Some(s) = p.status.as_deref().filter(|s| !s.is_empty()) {
        if !STATUSES.contains(&s) {
            return Err(ApiError::BadRequest(format!("status {s:?}: use {}", STATUSES.join(", "))));
        }
        conds.push("status = ?", Bind::S(s.into()));
    }
    if let Some(t) = p.resource_type.as_deref().filter(|s| !s.is_empty()) {
        conds.push("resource_type = ?", Bind::S(t.into()));
    }
    let mut count = crate::db::query::Stmt::new("SELECT COUNT(*) FROM replication_tasks");
    count.where_(&conds);
    let total: i64 = count.query_scalar().fetch_one(&state.db.pool).await?;
    let mut s = crate::db::query::Stmt::new(
        "SELECT id, execution_id, status, job_id, operation, resource_type, src_resource, dst_resource, \
         start_time, end_time FROM replication_tasks",
    );
    s.where_(&conds).push(" ORDER BY id");
    s.push_bind(" LIMIT ?", size as i64).push_bind(" OFFSET ?", ((page - 1) * size) as i64);
    let rows: Vec<TaskRow> = s.query_as().fetch_all(&state.db.pool).await?;
    let body: Vec<ReplicationTask> = rows
        .into_iter()
        .map(|(id, execution_id, status, job_id, operation, resource_type, src, dst, start, end)| {
            ReplicationTask {
                id,
                execution_id,
                status,
                job_id: job_id.to_string(),
                operation,
                resource_type,
                src_resource: src,
                dst_resource: dst,
                start_time: time_or_zero(start),
                end_time: time_or_zero(end),
            }
        })
        .collect();
    Ok((pagination_headers(&uri, page, size, total), Json(body)))
}

/// `GET /api/v2.0/replication/executions/{id}/tasks/{task_id}/log` (text/plain).
#[utoipa::path(get, path = "/replication/executions/{id}/tasks/{task_id}/log", tag = "replication",
    params(("id" = i64, Path), ("task_id" = i64, Path)),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 401), (status = 403), (status = 404)))]
pub async fn task_log(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((id, task_id)): AppPath<(i64, i64)>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    load_execution(&state, id).await?;
    let job: Option<i64> =
        sqlx::query_scalar("SELECT job_id FROM replication_tasks WHERE id = $1 AND execution_id = $2")
            .bind(task_id)
            .bind(id)
            .fetch_optional(&state.db.pool)
            .await?;
    let job = job.ok_or_else(|| ApiError::NotFound(format!("execution {id} has no task {task_id}")))?;
    let text = crate::jobs::log_text(&state.db, job).await?;
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    Ok((h, text))
}

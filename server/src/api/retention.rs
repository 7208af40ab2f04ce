//! Tag retention under `/api/v2.0/retentions` (Harbor's `Retention` operations): the
//! templates, one policy per project, its runs, their tasks and logs. Policies and runs are
//! `crate::retention`'s. Permissions are the project's `tag-retention` resource.

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::api::projects::require;
use crate::api::{pagination_headers, Pagination};
use crate::auth::Caller;
use crate::db::rfc3339;
use crate::projects::{self, Project};
use crate::rbac::{Act, Resource};
use crate::retention::{self, run, Invalid, Policy};
use crate::state::AppState;

pub use app::rest::retention::{
    RetentionExecution, RetentionExecutionAction, RetentionExecutionTask, RetentionMetadata, RetentionPolicy,
    RetentionTrigger,
};

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        match e {
            Invalid::Bad(m) => ApiError::BadRequest(m),
            Invalid::Conflict(m) => ApiError::Conflict(m),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

/// The policy and its project, when the caller may `act` on it (404 for a missing policy).
async fn policy_for(
    state: &AppState,
    caller: &Caller,
    id: i64,
    act: Act,
) -> Result<(Policy, Project), ApiError> {
    if caller.principal.is_none() {
        return Err(ApiError::unauthorized());
    }
    let not_found = || ApiError::NotFound(format!("retention policy {id} not found"));
    let policy = retention::get(&state.db, id).await?.ok_or_else(not_found)?;
    let project = projects::get(&state.db, policy.project_id).await?.ok_or_else(not_found)?;
    require(state, caller, &project, Resource::TagRetention, act).await?;
    Ok((policy, project))
}

async fn execution_of(state: &AppState, policy: &Policy, eid: i64) -> Result<run::Execution, ApiError> {
    match run::get_execution(&state.db, eid).await? {
        Some(e) if e.policy_id == policy.id => Ok(e),
        _ => Err(ApiError::NotFound(format!("retention execution {eid} not found"))),
    }
}

fn describe(d: &retention::Draft) -> String {
    let rules: Vec<String> = d
        .rules
        .iter()
        .map(|r| {
            format!(
                "{}{:?}{}",
                r.template,
                r.params.values().next(),
                if r.disabled { " (disabled)" } else { "" }
            )
        })
        .collect();
    format!("rules [{}], schedule {:?}", rules.join(", "), d.cron)
}

/// `GET /retentions/metadatas`: the rule templates and selectors.
#[utoipa::path(get, path = "/retentions/metadatas", tag = "Retention",
    responses((status = 200, body = RetentionMetadata), (status = 401)))]
pub async fn metadatas(caller: Caller) -> Result<Json<RetentionMetadata>, ApiError> {
    if caller.principal.is_none() {
        return Err(ApiError::unauthorized());
    }
    Ok(Json(retention::metadata()))
}

/// `POST /retentions`: the project's policy (`scope.ref`); 400 when it already has one (its
/// id is the project's `retention_id` metadata). 201 with the policy's `Location`.
#[utoipa::path(post, path = "/retentions", tag = "Retention", request_body = RetentionPolicy,
    responses((status = 201, headers(("Location" = String))), (status = 400), (status = 401), (status = 403),
        (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppJson(body): AppJson<RetentionPolicy>,
) -> Result<impl IntoResponse, ApiError> {
    if caller.principal.is_none() {
        return Err(ApiError::unauthorized());
    }
    let draft = retention::validate(&body)?;
    let Some(project_id) = draft.project_id else {
        return Err(ApiError::BadRequest("scope {level: project, ref: <project id>} is required".into()));
    };
    let project = projects::get(&state.db, project_id)
        .await?
        .ok_or_else(|| ApiError::BadRequest(format!("invalid project id {project_id}")))?;
    require(&state, &caller, &project, Resource::TagRetention, Act::Create).await?;
    let id = match retention::create(&state.db, project.id, &draft).await? {
        Ok(id) => id,
        Err(old) => {
            return Err(ApiError::BadRequest(format!(
                "project {} already has retention policy {old}",
                project.id
            )))
        }
    };
    state.audit.record(
        caller
            .event("create", "retention", format!("{}/retentions/{id}", project.name))
            .project(project.id)
            .detail(describe(&draft)),
    );
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("{}/{id}", uri.path().trim_end_matches('/'))) {
        h.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, h))
}

/// `GET /retentions/{id}`
#[utoipa::path(get, path = "/retentions/{id}", tag = "Retention", params(("id" = i64, Path)),
    responses((status = 200, body = RetentionPolicy), (status = 401), (status = 403), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<Json<RetentionPolicy>, ApiError> {
    let (policy, _) = policy_for(&state, &caller, id, Act::Read).await?;
    Ok(Json(policy.to_rest()))
}

/// `PUT /retentions/{id}`: replaces the rules and the schedule (a `scope`, when given, must be
/// the policy's project).
#[utoipa::path(put, path = "/retentions/{id}", tag = "Retention", params(("id" = i64, Path)),
    request_body = RetentionPolicy,
    responses((status = 200), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
    AppJson(body): AppJson<RetentionPolicy>,
) -> Result<StatusCode, ApiError> {
    let (policy, project) = policy_for(&state, &caller, id, Act::Update).await?;
    let draft = retention::validate(&body)?;
    if draft.project_id.is_some_and(|p| p != policy.project_id) {
        return Err(ApiError::BadRequest("a policy cannot move to another project".into()));
    }
    if !retention::update(&state.db, id, &draft).await? {
        return Err(ApiError::NotFound(format!("retention policy {id} not found")));
    }
    state.audit.record(
        caller
            .event("update", "retention", format!("{}/retentions/{id}", project.name))
            .project(project.id)
            .detail(describe(&draft)),
    );
    Ok(StatusCode::OK)
}

/// `DELETE /retentions/{id}`: the policy, its schedule and its history; a running run stops.
#[utoipa::path(delete, path = "/retentions/{id}", tag = "Retention", params(("id" = i64, Path)),
    responses((status = 200), (status = 401), (status = 403), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<StatusCode, ApiError> {
    let (_, project) = policy_for(&state, &caller, id, Act::Delete).await?;
    if !retention::delete(&state.db, id).await? {
        return Err(ApiError::NotFound(format!("retention policy {id} not found")));
    }
    state.audit.record(
        caller.event("delete", "retention", format!("{}/retentions/{id}", project.name)).project(project.id),
    );
    Ok(StatusCode::OK)
}

/// `POST /retentions/{id}/executions`: runs the policy now (`dry_run`: report only). 201 with
/// the run's `Location`; 409 while a run of the policy is pending or running.
#[utoipa::path(post, path = "/retentions/{id}/executions", tag = "Retention", params(("id" = i64, Path)),
    request_body = RetentionTrigger,
    responses((status = 201, headers(("Location" = String))), (status = 401), (status = 403), (status = 404),
        (status = 409)))]
pub async fn trigger(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppPath(id): AppPath<i64>,
    AppJson(body): AppJson<RetentionTrigger>,
) -> Result<impl IntoResponse, ApiError> {
    let (policy, project) = policy_for(&state, &caller, id, Act::Update).await?;
    let Some(eid) = run::trigger(&state, &policy, body.dry_run, caller.name()).await? else {
        return Err(ApiError::Conflict(format!(
            "a run of retention policy {id} is already pending or running"
        )));
    };
    state.audit.record(
        caller
            .event(
                "create",
                "retention_execution",
                format!("{}/retentions/{id}/executions/{eid}", project.name),
            )
            .project(project.id)
            .detail(if body.dry_run { "dry run" } else { "run" }),
    );
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("{}/{eid}", uri.path().trim_end_matches('/'))) {
        h.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, h))
}

fn execution_model(e: &run::Execution) -> RetentionExecution {
    RetentionExecution {
        id: e.id,
        policy_id: e.policy_id,
        start_time: rfc3339(e.start_time),
        end_time: if e.end_time > 0 { rfc3339(e.end_time) } else { String::new() },
        status: e.status.clone(),
        trigger: e.trigger.clone(),
        dry_run: e.dry_run,
    }
}

/// `GET /retentions/{id}/executions`: newest first.
#[utoipa::path(get, path = "/retentions/{id}/executions", tag = "Retention", params(("id" = i64, Path), PageParams),
    responses((status = 200, body = [RetentionExecution], headers(("X-Total-Count" = i64), ("Link" = String))),
        (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn executions(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppPath(id): AppPath<i64>,
    AppQuery(p): AppQuery<PageParams>,
) -> Result<impl IntoResponse, ApiError> {
    let (page, size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let (policy, _) = policy_for(&state, &caller, id, Act::List).await?;
    let (rows, total) =
        run::list_executions(&state.db, policy.id, ((page - 1) * size) as i64, size as i64).await?;
    Ok((
        pagination_headers(&uri, page, size, total),
        Json(rows.iter().map(execution_model).collect::<Vec<_>>()),
    ))
}

/// `PATCH /retentions/{id}/executions/{eid}`: `{"action": "stop"}`.
#[utoipa::path(patch, path = "/retentions/{id}/executions/{eid}", tag = "Retention",
    params(("id" = i64, Path), ("eid" = i64, Path)), request_body = RetentionExecutionAction,
    responses((status = 200), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn operate(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((id, eid)): AppPath<(i64, i64)>,
    AppJson(body): AppJson<RetentionExecutionAction>,
) -> Result<StatusCode, ApiError> {
    if body.action != "stop" {
        return Err(ApiError::BadRequest("action should be 'stop'".into()));
    }
    let (policy, project) = policy_for(&state, &caller, id, Act::Update).await?;
    let exec = execution_of(&state, &policy, eid).await?;
    run::stop(&state.db, &exec).await?;
    state.audit.record(
        caller
            .event(
                "update",
                "retention_execution",
                format!("{}/retentions/{id}/executions/{eid}", project.name),
            )
            .project(project.id)
            .detail("stop"),
    );
    Ok(StatusCode::OK)
}

/// `GET /retentions/{id}/executions/{eid}/tasks`: one per repository.
#[utoipa::path(get, path = "/retentions/{id}/executions/{eid}/tasks", tag = "Retention",
    params(("id" = i64, Path), ("eid" = i64, Path), PageParams),
    responses((status = 200, body = [RetentionExecutionTask], headers(("X-Total-Count" = i64), ("Link" = String))),
        (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn tasks(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppPath((id, eid)): AppPath<(i64, i64)>,
    AppQuery(p): AppQuery<PageParams>,
) -> Result<impl IntoResponse, ApiError> {
    let (page, size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let (policy, _) = policy_for(&state, &caller, id, Act::List).await?;
    let exec = execution_of(&state, &policy, eid).await?;
    let (rows, total) = run::list_tasks(&state.db, exec.id, ((page - 1) * size) as i64, size as i64).await?;
    let items: Vec<RetentionExecutionTask> = rows
        .iter()
        .map(|t| RetentionExecutionTask {
            id: t.id,
            execution_id: t.execution_id,
            repository: t.repository.clone(),
            job_id: exec.job_id.to_string(),
            status: t.status.clone(),
            status_code: t.status_code(),
            status_revision: t.end_time.max(t.start_time),
            start_time: if t.start_time > 0 { rfc3339(t.start_time) } else { String::new() },
            end_time: if t.end_time > 0 { rfc3339(t.end_time) } else { String::new() },
            total: t.total,
            retained: t.retained,
        })
        .collect();
    Ok((pagination_headers(&uri, page, size, total), Json(items)))
}

/// `GET /retentions/{id}/executions/{eid}/tasks/{tid}`: the task's log (text/plain), a table
/// of every artifact the rules looked at and what became of it.
#[utoipa::path(get, path = "/retentions/{id}/executions/{eid}/tasks/{tid}", tag = "Retention",
    params(("id" = i64, Path), ("eid" = i64, Path), ("tid" = i64, Path)),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 401), (status = 403),
        (status = 404)))]
pub async fn task_log(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((id, eid, tid)): AppPath<(i64, i64, i64)>,
) -> Result<impl IntoResponse, ApiError> {
    let (policy, _) = policy_for(&state, &caller, id, Act::Read).await?;
    let exec = execution_of(&state, &policy, eid).await?;
    let log = run::task_log(&state.db, exec.id, tid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("retention task {tid} not found")))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], log))
}

//! The job service dashboard under `/api/v2.0/jobservice` and `/api/v2.0/schedules` (system
//! admins), Harbor's `jobservice` and `schedule` operations. The data is `crate::jobservice`'s.

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use crate::api::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::api::gc::ListParams;
use crate::api::{pagination_headers, Pagination};
use crate::auth::Caller;
use crate::jobs::{self, StopOutcome};
use crate::jobservice::{self, ActError};
use crate::state::AppState;

pub use app::rest::jobservice::{ActionRequest, JobQueue, ScheduleTask, SchedulerStatus, Worker, WorkerPool};

impl From<ActError> for ApiError {
    fn from(e: ActError) -> Self {
        match e {
            ActError::Action => ApiError::BadRequest(e.to_string()),
            ActError::Type(_) => ApiError::NotFound(e.to_string()),
            ActError::Db(e) => e.into(),
        }
    }
}

/// `GET /jobservice/pools`: each live replica's job runner.
#[utoipa::path(get, path = "/jobservice/pools", tag = "jobservice",
    responses((status = 200, body = [WorkerPool]), (status = 401), (status = 403)))]
pub async fn pools(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<WorkerPool>>, ApiError> {
    caller.require_sysadmin()?;
    Ok(Json(jobservice::pools(&state.db).await?))
}

/// `GET /jobservice/pools/{pool_id}/workers` (`all`: every pool): the slots and their jobs.
#[utoipa::path(get, path = "/jobservice/pools/{pool_id}/workers", tag = "jobservice",
    params(("pool_id" = String, Path)),
    responses((status = 200, body = [Worker]), (status = 401), (status = 403), (status = 404)))]
pub async fn workers(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(pool): AppPath<String>,
) -> Result<Json<Vec<Worker>>, ApiError> {
    caller.require_sysadmin()?;
    jobservice::workers(&state.db, &pool)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("worker pool {pool} not found (or gone)")))
}

fn job_id(s: &str) -> Result<i64, ApiError> {
    s.parse().map_err(|_| ApiError::BadRequest(format!("job id {s:?} is not a number")))
}

/// `PUT /jobservice/jobs/{job_id}`: stops a job (at its next heartbeat when running).
#[utoipa::path(put, path = "/jobservice/jobs/{job_id}", tag = "jobservice", params(("job_id" = String, Path)),
    responses((status = 200), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn stop_job(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_sysadmin()?;
    let id = job_id(&id)?;
    match jobs::request_stop(&state.db, id).await? {
        StopOutcome::NotFound => Err(ApiError::NotFound(format!("job {id} not found"))),
        outcome => {
            if outcome != StopOutcome::NotRunning {
                state.audit.record(caller.event("stop", "job", format!("job/{id}")));
            }
            Ok(StatusCode::OK)
        }
    }
}

/// `GET /jobservice/jobs/{job_id}/log` (text/plain).
#[utoipa::path(get, path = "/jobservice/jobs/{job_id}/log", tag = "jobservice", params(("job_id" = String, Path)),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 400), (status = 401),
        (status = 403), (status = 404)))]
pub async fn job_log(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    let id = job_id(&id)?;
    jobs::get(&state.db, id).await?.ok_or_else(|| ApiError::NotFound(format!("job {id} not found")))?;
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    Ok((h, jobs::log_text(&state.db, id).await?))
}

/// `GET /jobservice/queues`: every job type's pending count, latency and pause.
#[utoipa::path(get, path = "/jobservice/queues", tag = "jobservice",
    responses((status = 200, body = [JobQueue]), (status = 401), (status = 403)))]
pub async fn queues(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<JobQueue>>, ApiError> {
    caller.require_sysadmin()?;
    Ok(Json(jobservice::queues(&state.db).await?))
}

/// `PUT /jobservice/queues/{job_type}` (`all`: every type): `stop` (end the pending jobs),
/// `pause` (nothing new starts), `resume`.
#[utoipa::path(put, path = "/jobservice/queues/{job_type}", tag = "jobservice", params(("job_type" = String, Path)),
    request_body = ActionRequest,
    responses((status = 200), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn act(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(job_type): AppPath<String>,
    AppJson(req): AppJson<ActionRequest>,
) -> Result<StatusCode, ApiError> {
    caller.require_sysadmin()?;
    let n = jobservice::act(&state.db, &job_type, &req.action, caller.name()).await?;
    let detail = if req.action == "stop" {
        format!("{} stopped {n} pending jobs", req.action)
    } else {
        req.action.clone()
    };
    state.audit.record(caller.event("update", "job_queue", &job_type).detail(detail));
    Ok(StatusCode::OK)
}

/// `GET /schedules`: every schedule (GC, audit purge, replication, retention).
#[utoipa::path(get, path = "/schedules", tag = "schedule", params(ListParams),
    responses((status = 200, body = [ScheduleTask], headers(("X-Total-Count" = i64), ("Link" = String))),
        (status = 400), (status = 401), (status = 403)))]
pub async fn schedules(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppQuery(p): AppQuery<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    let (page, size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let (items, total) = jobservice::schedules(&state.db, ((page - 1) * size) as i64, size as i64).await?;
    Ok((pagination_headers(&uri, page, size, total), Json(items)))
}

/// `GET /schedules/{job_type}/paused`: whether schedules are paused (only `all`, as Harbor).
#[utoipa::path(get, path = "/schedules/{job_type}/paused", tag = "schedule", params(("job_type" = String, Path)),
    responses((status = 200, body = SchedulerStatus), (status = 400), (status = 401), (status = 403)))]
pub async fn paused(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(job_type): AppPath<String>,
) -> Result<Json<SchedulerStatus>, ApiError> {
    caller.require_sysadmin()?;
    if job_type != "all" {
        return Err(ApiError::BadRequest("only job type all is supported".into()));
    }
    Ok(Json(SchedulerStatus { paused: jobservice::all_paused(&state.db).await? }))
}

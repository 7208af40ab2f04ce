//! Audit log purge under `/api/v2.0/system/purgeaudit` (system admins), Harbor's `purge`
//! operations: history, one run, its log, stop, and the schedule (`POST` with type `Manual`
//! runs now). The job is `crate::purge`'s; the shapes and helpers are GC's (`api::gc`).

use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;

use crate::api::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::api::gc::{
    create_schedule_of, history, load_kind, log_of, schedule_of, set_schedule_of, stop_job, ListParams,
    SystemJob,
};
use crate::api::{pagination_headers, Pagination};
use crate::auth::Caller;
use crate::jobs;
use crate::purge::{self, JOB};
use crate::state::AppState;

pub use app::rest::gc::{GcHistory, GcSchedule, ScheduleObj};
pub use app::rest::purge::{PurgeParams, PurgeScheduleReq};

const WHAT: &str = "audit log purge";

/// `GET /system/purgeaudit`: runs, newest first.
#[utoipa::path(get, path = "/system/purgeaudit", tag = "purge", params(ListParams),
    responses((status = 200, body = [GcHistory], headers(("X-Total-Count" = i64), ("Link" = String))),
        (status = 401), (status = 403)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    let (page, size) = Pagination { page: params.page, page_size: params.page_size }.resolve()?;
    let (jobs, total) = jobs::list(&state.db, JOB, ((page - 1) * size) as i64, size as i64).await?;
    Ok((pagination_headers(&uri, page, size, total), Json(jobs.iter().map(history).collect::<Vec<_>>())))
}

/// `GET /system/purgeaudit/{purge_id}`
#[utoipa::path(get, path = "/system/purgeaudit/{purge_id}", tag = "purge", params(("purge_id" = i64, Path)),
    responses((status = 200, body = GcHistory), (status = 401), (status = 403), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<Json<GcHistory>, ApiError> {
    caller.require_sysadmin()?;
    Ok(Json(history(&load_kind(&state, id, JOB, WHAT).await?)))
}

/// `PUT /system/purgeaudit/{purge_id}`: stops a pending or running purge (between batches).
#[utoipa::path(put, path = "/system/purgeaudit/{purge_id}", tag = "purge", params(("purge_id" = i64, Path)),
    responses((status = 200), (status = 401), (status = 403), (status = 404)))]
pub async fn stop(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<StatusCode, ApiError> {
    caller.require_sysadmin()?;
    stop_job(&state, &caller, id, JOB, WHAT).await
}

/// `GET /system/purgeaudit/{purge_id}/log` (text/plain).
#[utoipa::path(get, path = "/system/purgeaudit/{purge_id}/log", tag = "purge", params(("purge_id" = i64, Path)),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 401), (status = 403),
        (status = 404)))]
pub async fn log(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    log_of(&state, id, JOB, WHAT).await
}

/// `GET /system/purgeaudit/schedule`
#[utoipa::path(get, path = "/system/purgeaudit/schedule", tag = "purge",
    responses((status = 200, body = Object), (status = 401), (status = 403)))]
pub async fn get_schedule(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<GcSchedule>, ApiError> {
    caller.require_sysadmin()?;
    Ok(Json(schedule_of(&state, JOB).await?))
}

const PURGE: SystemJob = SystemJob {
    kind: JOB,
    path: "purgeaudit",
    run_resource: "purge_audit",
    schedule_resource: "purge_audit_schedule",
    a_run: "an audit log purge",
};

fn request(req: PurgeScheduleReq) -> Result<(ScheduleObj, serde_json::Value), ApiError> {
    let schedule = req.schedule.ok_or_else(|| ApiError::BadRequest("schedule is required".into()))?;
    let p = req.parameters.unwrap_or_default();
    purge::check(&p).map_err(ApiError::BadRequest)?;
    Ok((schedule, serde_json::to_value(&p).unwrap_or_default()))
}

/// `POST /system/purgeaudit/schedule`: type `Manual` runs now (201 with the run's `Location`;
/// 409 while one is pending or running); other types set the schedule.
#[utoipa::path(post, path = "/system/purgeaudit/schedule", tag = "purge", request_body = PurgeScheduleReq,
    responses((status = 201, headers(("Location" = String))), (status = 400), (status = 401), (status = 403),
        (status = 409)))]
pub async fn create_schedule(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(req): AppJson<PurgeScheduleReq>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    let (schedule, params) = request(req)?;
    create_schedule_of(&state, &caller, &PURGE, &schedule, &params).await
}

/// `PUT /system/purgeaudit/schedule`: sets (or with type `None` removes) the schedule.
#[utoipa::path(put, path = "/system/purgeaudit/schedule", tag = "purge", request_body = PurgeScheduleReq,
    responses((status = 200), (status = 400), (status = 401), (status = 403)))]
pub async fn update_schedule(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(req): AppJson<PurgeScheduleReq>,
) -> Result<StatusCode, ApiError> {
    caller.require_sysadmin()?;
    let (schedule, params) = request(req)?;
    set_schedule_of(&state, &caller, &PURGE, &schedule, &params).await?;
    Ok(StatusCode::OK)
}

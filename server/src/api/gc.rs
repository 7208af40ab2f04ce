//! Garbage collection under `/api/v2.0/system/gc` (system admins), in Harbor's shapes: history,
//! one run, its log, stop, and the schedule (`POST` with type `Manual` runs now).

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use crate::api::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::api::{pagination_headers, Pagination};
use crate::auth::Caller;
use crate::db::rfc3339;
use crate::gc::GcParams;
use crate::jobs::{self, Job, NewJob, StopOutcome};
use crate::state::AppState;

pub use app::rest::gc::{GcHistory, GcSchedule, GcUsage, ProjectUsage, ScheduleObj, ScheduleReq};

fn status_name(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

pub fn history(j: &Job) -> GcHistory {
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    GcHistory {
        id: j.id,
        job_name: if j.kind == crate::purge::JOB { "PURGE_AUDIT" } else { "GARBAGE_COLLECTION" }.into(),
        job_kind: j.job_kind.clone(),
        job_parameters: j.parameters.clone(),
        schedule: (j.job_kind == "MANUAL" || j.job_kind == "CLI")
            .then(|| ScheduleObj { kind: "Manual".into(), ..Default::default() }),
        job_status: status_name(&j.status),
        deleted: !parse(&j.parameters)["dry_run"].as_bool().unwrap_or(false),
        creation_time: rfc3339(j.created_at),
        update_time: rfc3339(j.updated_at),
        start_time: (j.started_at > 0).then(|| rfc3339(j.started_at)),
        end_time: (j.finished_at > 0).then(|| rfc3339(j.finished_at)),
        progress: parse(&j.progress),
        result: parse(&j.result),
        error: j.error.clone(),
        created_by: j.created_by.clone(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

/// `GET /api/v2.0/system/gc`: runs, newest first.
#[utoipa::path(get, path = "/system/gc", tag = "gc", params(ListParams),
    responses((status = 200, body = [GcHistory]), (status = 401), (status = 403)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    let (page, size) = Pagination { page: params.page, page_size: params.page_size }.resolve()?;
    let (jobs, total) = jobs::list(&state.db, "gc", ((page - 1) * size) as i64, size as i64).await?;
    let body: Vec<GcHistory> = jobs.iter().map(history).collect();
    Ok((pagination_headers(&uri, page, size, total), Json(body)))
}

async fn load(state: &AppState, id: i64) -> Result<Job, ApiError> {
    load_kind(state, id, "gc", "garbage collection").await
}

/// The job `id` of `kind` (`what` names it in the 404).
pub(crate) async fn load_kind(state: &AppState, id: i64, kind: &str, what: &str) -> Result<Job, ApiError> {
    jobs::get(&state.db, id)
        .await?
        .filter(|j| j.kind == kind)
        .ok_or_else(|| ApiError::NotFound(format!("{what} {id} not found")))
}

/// `GET /api/v2.0/system/gc/{gc_id}`
#[utoipa::path(get, path = "/system/gc/{gc_id}", tag = "gc", params(("gc_id" = i64, Path)),
    responses((status = 200, body = GcHistory), (status = 403), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<Json<GcHistory>, ApiError> {
    caller.require_sysadmin()?;
    Ok(Json(history(&load(&state, id).await?)))
}

/// `PUT /api/v2.0/system/gc/{gc_id}`: stops a pending or running GC (a running one stops at
/// its next heartbeat, keeping what it already deleted); a finished one is left as it is (200).
#[utoipa::path(put, path = "/system/gc/{gc_id}", tag = "gc", params(("gc_id" = i64, Path)),
    responses((status = 200), (status = 403), (status = 404)))]
pub async fn stop(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<StatusCode, ApiError> {
    caller.require_sysadmin()?;
    stop_job(&state, &caller, id, "gc", "garbage collection").await
}

/// Stops a pending or running job of `kind` (Harbor's 200 for one already over).
pub(crate) async fn stop_job(
    state: &AppState,
    caller: &Caller,
    id: i64,
    kind: &str,
    what: &str,
) -> Result<StatusCode, ApiError> {
    load_kind(state, id, kind, what).await?;
    match jobs::request_stop(&state.db, id).await? {
        StopOutcome::Stopped | StopOutcome::Stopping => {
            state.audit.record(caller.event("stop", kind, format!("{kind}/{id}")));
            Ok(StatusCode::OK)
        }
        // Harbor answers 200 for a job that is already over: there is nothing left to stop.
        StopOutcome::NotRunning => Ok(StatusCode::OK),
        StopOutcome::NotFound => Err(ApiError::NotFound(format!("{what} {id} not found"))),
    }
}

/// `GET /api/v2.0/system/gc/{gc_id}/log` (text/plain).
#[utoipa::path(get, path = "/system/gc/{gc_id}/log", tag = "gc", params(("gc_id" = i64, Path)),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 403), (status = 404)))]
pub async fn log(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    log_of(&state, id, "gc", "garbage collection").await
}

/// A job's log as text/plain.
pub(crate) async fn log_of(
    state: &AppState,
    id: i64,
    kind: &str,
    what: &str,
) -> Result<impl IntoResponse, ApiError> {
    load_kind(state, id, kind, what).await?;
    let text = jobs::log_text(&state.db, id).await?;
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    Ok((h, text))
}

/// `GET /api/v2.0/system/gc/usage` (system admins): bytes the blob store holds (referenced or
/// awaiting GC) and the 20 projects using the most, largest first (each blob once per project;
/// what each project summary reports as `quota.used.storage`).
#[utoipa::path(get, path = "/system/gc/usage", tag = "gc",
    responses((status = 200, body = GcUsage), (status = 401), (status = 403)))]
pub async fn usage(State(state): State<AppState>, caller: Caller) -> Result<Json<GcUsage>, ApiError> {
    caller.require_sysadmin()?;
    let db = &state.db;
    let (live, deleting) = crate::gc::total_usage(db).await?;
    let used = crate::usage::usage(db, None).await?;
    let names: std::collections::HashMap<i64, String> =
        sqlx::query_as::<_, (i64, String)>("SELECT id, name FROM projects")
            .fetch_all(&db.pool)
            .await?
            .into_iter()
            .collect();
    let mut projects: Vec<ProjectUsage> = used
        .into_iter()
        .filter(|(_, bytes)| *bytes > 0)
        .map(|(id, storage)| ProjectUsage {
            project_id: id,
            project_name: names.get(&id).cloned().unwrap_or_else(|| id.to_string()),
            storage,
        })
        .collect();
    projects.sort_by(|a, b| b.storage.cmp(&a.storage).then_with(|| a.project_name.cmp(&b.project_name)));
    projects.truncate(20);
    Ok(Json(GcUsage { total_storage: live + deleting, projects }))
}

/// Harbor's schedule types as cron expressions (6 fields, seconds first).
pub(crate) fn cron_of(s: &ScheduleObj) -> Result<Option<String>, ApiError> {
    let cron = match s.kind.as_str() {
        "None" | "" => return Ok(None),
        "Hourly" => "0 0 * * * *".to_string(),
        "Daily" => "0 0 0 * * *".to_string(),
        "Weekly" => "0 0 0 * * 0".to_string(),
        "Custom" | "Schedule" => s.cron.trim().to_string(),
        other => {
            return Err(ApiError::BadRequest(format!(
                "schedule type {other:?}: use Hourly, Daily, Weekly, Custom, Manual or None"
            )))
        }
    };
    // Parsing is not enough: `0 0 0 30 2 *` parses but never fires.
    jobs::next_run(&cron, crate::db::now_ms())
        .map_err(|e| ApiError::BadRequest(format!("{e}; the schedule must fire at some time")))?;
    Ok(Some(cron))
}

/// `GET /api/v2.0/system/gc/schedule`
#[utoipa::path(get, path = "/system/gc/schedule", tag = "gc",
    responses((status = 200, body = Object), (status = 403)))]
pub async fn get_schedule(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<GcSchedule>, ApiError> {
    caller.require_sysadmin()?;
    Ok(Json(schedule_of(&state, "gc").await?))
}

/// The schedule of `kind` in Harbor's shape (type `None` when there is none).
pub(crate) async fn schedule_of(state: &AppState, kind: &str) -> Result<GcSchedule, ApiError> {
    Ok(match jobs::get_schedule(&state.db, kind).await? {
        None => GcSchedule {
            schedule: ScheduleObj { kind: "None".into(), ..Default::default() },
            ..Default::default()
        },
        Some(s) => GcSchedule {
            schedule: ScheduleObj {
                kind: schedule_kind(&s.cron).into(),
                next_scheduled_time: Some(rfc3339(s.next_run)),
                cron: s.cron,
            },
            job_parameters: Some(s.parameters),
            creation_time: Some(rfc3339(s.created_at)),
            update_time: Some(rfc3339(s.updated_at)),
        },
    })
}

fn check_params(p: &GcParams) -> Result<(), ApiError> {
    if let Some(w) = p.workers {
        if !(1..=256).contains(&w) {
            return Err(ApiError::BadRequest("parameters.workers must be between 1 and 256".into()));
        }
    }
    Ok(())
}

/// A system job run by hand or on a schedule under `/system/<path>/schedule` (GC, audit purge):
/// what its API and audit rows call it.
pub(crate) struct SystemJob {
    /// The job kind, also its schedule's name and its unique key (one active run).
    pub kind: &'static str,
    /// `/api/v2.0/system/<path>`.
    pub path: &'static str,
    /// Audit resource types of a run and of the schedule.
    pub run_resource: &'static str,
    pub schedule_resource: &'static str,
    /// "a garbage collection" (in the 409).
    pub a_run: &'static str,
}

const GC: SystemJob = SystemJob {
    kind: "gc",
    path: "gc",
    run_resource: "gc",
    schedule_resource: "gc_schedule",
    a_run: "a garbage collection",
};

/// `POST …/schedule`: type `Manual` queues a run now (201 with its `Location`; 409 while one is
/// pending or running); other types set the schedule (201).
pub(crate) async fn create_schedule_of(
    state: &AppState,
    caller: &Caller,
    job: &SystemJob,
    schedule: &ScheduleObj,
    params: &Value,
) -> Result<(StatusCode, HeaderMap), ApiError> {
    let mut h = HeaderMap::new();
    if schedule.kind == "Manual" {
        let new = NewJob {
            kind: job.kind,
            job_kind: "MANUAL",
            parameters: params,
            unique_key: Some(job.kind),
            created_by: caller.name(),
        };
        let id = jobs::enqueue(&state.db, &new)
            .await?
            .ok_or_else(|| ApiError::Conflict(format!("{} is already pending or running", job.a_run)))?;
        state.jobs_wake.notify_one();
        let resource = format!("{}/{id}", job.path);
        state.audit.record(caller.event("create", job.run_resource, resource).detail(params.to_string()));
        if let Ok(v) = HeaderValue::from_str(&format!("/api/v2.0/system/{}/{id}", job.path)) {
            h.insert(header::LOCATION, v);
        }
        return Ok((StatusCode::CREATED, h));
    }
    set_schedule_of(state, caller, job, schedule, params).await?;
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v2.0/system/{}/schedule", job.path)) {
        h.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, h))
}

/// `PUT …/schedule`: sets (or with type `None` removes) the schedule; `Manual` is the POST's.
pub(crate) async fn set_schedule_of(
    state: &AppState,
    caller: &Caller,
    job: &SystemJob,
    schedule: &ScheduleObj,
    params: &Value,
) -> Result<(), ApiError> {
    if schedule.kind == "Manual" {
        return Err(ApiError::BadRequest(format!("use POST /system/{}/schedule to run now", job.path)));
    }
    let cron = cron_of(schedule)?;
    jobs::set_schedule(&state.db, job.kind, cron.as_deref().map(|c| (c, params))).await?;
    let detail = cron.unwrap_or_else(|| "none".into());
    state.audit.record(caller.event("update", job.schedule_resource, job.path).detail(detail));
    Ok(())
}

fn gc_request(req: ScheduleReq) -> Result<(ScheduleObj, Value), ApiError> {
    let schedule = req.schedule.ok_or_else(|| ApiError::BadRequest("schedule is required".into()))?;
    let params = req.parameters.unwrap_or_default();
    check_params(&params)?;
    Ok((schedule, serde_json::to_value(&params).unwrap_or_default()))
}

/// `POST /api/v2.0/system/gc/schedule`: type `Manual` starts a run now (201, `Location` of
/// the run; 409 while one is pending or running); other types set the schedule.
#[utoipa::path(post, path = "/system/gc/schedule", tag = "gc", request_body = ScheduleReq,
    responses((status = 201, headers(("Location" = String))), (status = 400), (status = 403), (status = 409)))]
pub async fn create_schedule(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(req): AppJson<ScheduleReq>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    let (schedule, params) = gc_request(req)?;
    create_schedule_of(&state, &caller, &GC, &schedule, &params).await
}

/// `PUT /api/v2.0/system/gc/schedule`: sets (or with type `None` removes) the schedule.
#[utoipa::path(put, path = "/system/gc/schedule", tag = "gc", request_body = ScheduleReq,
    responses((status = 200), (status = 400), (status = 403)))]
pub async fn update_schedule(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(req): AppJson<ScheduleReq>,
) -> Result<StatusCode, ApiError> {
    caller.require_sysadmin()?;
    let (schedule, params) = gc_request(req)?;
    set_schedule_of(&state, &caller, &GC, &schedule, &params).await?;
    Ok(StatusCode::OK)
}

/// The schedule type Harbor's portal shows for a cron.
pub fn schedule_kind(cron: &str) -> &'static str {
    match cron {
        "0 0 * * * *" => "Hourly",
        "0 0 0 * * *" => "Daily",
        "0 0 0 * * 0" => "Weekly",
        _ => "Custom",
    }
}

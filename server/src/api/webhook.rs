//! Webhooks under `/api/v2.0/projects/{p}/webhook/*` (Harbor's `webhook` operations): policies
//! (list, create, get, update, delete), their executions and tasks with each delivery's log, the
//! last trigger per event type, the supported event types, and a test of a target. Policies,
//! events and delivery are `crate::webhook`'s.

use app::rest::webhook::{
    PayloadFormat, SupportedWebhookEventTypes, WebhookExecution, WebhookLastTrigger, WebhookTask,
};
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use crate::api::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::api::projects::{require, resolve};
use crate::api::{pagination_headers, Pagination};
use crate::auth::Caller;
use crate::db::{rfc3339, ZERO_TIME};
use crate::projects::Project;
use crate::rbac::{Act, Resource};
use crate::state::AppState;
use crate::webhook::{self, PolicyError, PolicyRow};

pub use app::rest::webhook::{WebhookPolicy, WebhookTargetObject};

impl From<PolicyError> for ApiError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::Conflict(_) => ApiError::Conflict(e.to_string()),
            PolicyError::NotFound => ApiError::NotFound(e.to_string()),
            PolicyError::TooMany => ApiError::BadRequest(e.to_string()),
            PolicyError::Db(e) => e.into(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookListParams {
    pub page: Option<u64>,
    pub page_size: Option<u64>,
    /// `name=~part` (or `name=part`): policies whose name contains `part`.
    pub q: Option<String>,
    /// Policies are listed by id; no other sort is supported.
    pub sort: Option<String>,
}

async fn project_for(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    key: &str,
    act: Act,
) -> Result<Project, ApiError> {
    let project = resolve(state, headers, key).await?;
    require(state, caller, &project, Resource::NotificationPolicy, act).await?;
    Ok(project)
}

async fn policy_of(state: &AppState, project: &Project, id: i64) -> Result<PolicyRow, ApiError> {
    webhook::get(&state.db, project.id, id).await?.ok_or_else(|| PolicyError::NotFound.into())
}

fn name_filter(q: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) else { return Ok(None) };
    let value = q.strip_prefix("name=~").or_else(|| q.strip_prefix("name=")).ok_or_else(|| {
        ApiError::BadRequest(format!("unsupported q {q:?}: only name=~<part> is supported"))
    })?;
    if value.len() > 256 {
        return Err(ApiError::BadRequest("the name filter is longer than 256 characters".into()));
    }
    Ok(Some(value.to_string()))
}

/// `GET /projects/{p}/webhook/policies`
#[utoipa::path(get, path = "/projects/{project_name_or_id}/webhook/policies", tag = "webhook",
    params(("project_name_or_id" = String, Path), WebhookListParams),
    responses((status = 200, body = [WebhookPolicy], headers(("X-Total-Count" = i64), ("Link" = String))),
        (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    AppPath(key): AppPath<String>,
    AppQuery(p): AppQuery<WebhookListParams>,
) -> Result<impl IntoResponse, ApiError> {
    let project = project_for(&state, &caller, &headers, &key, Act::List).await?;
    if let Some(s) = p.sort.as_deref().filter(|s| !s.is_empty() && *s != "id") {
        return Err(ApiError::BadRequest(format!("unsupported sort {s:?}: policies are listed by id")));
    }
    let name = name_filter(p.q.as_deref())?;
    let (page, page_size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let (rows, total) = webhook::list(&state.db, project.id, name.as_deref(), page, page_size).await?;
    Ok((
        pagination_headers(&uri, page, page_size, total),
        Json(rows.iter().map(PolicyRow::to_rest).collect::<Vec<_>>()),
    ))
}

fn describe(d: &webhook::Draft) -> String {
    let targets: Vec<&str> = d.targets.iter().map(|(t, _)| t.address.as_str()).collect();
    format!(
        "{}: {} to {}{}",
        d.name,
        d.event_types.join(", "),
        targets.join(", "),
        if d.enabled { "" } else { " (disabled)" }
    )
}

/// `POST /projects/{p}/webhook/policies`: 201 with the policy's `Location`.
#[utoipa::path(post, path = "/projects/{project_name_or_id}/webhook/policies", tag = "webhook",
    params(("project_name_or_id" = String, Path)), request_body = WebhookPolicy,
    responses((status = 201, headers(("Location" = String))), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    AppPath(key): AppPath<String>,
    AppJson(body): AppJson<WebhookPolicy>,
) -> Result<impl IntoResponse, ApiError> {
    let project = project_for(&state, &caller, &headers, &key, Act::Create).await?;
    let draft = webhook::validate(&body).map_err(ApiError::BadRequest)?;
    let id =
        webhook::create(&state.db, &state.secrets.encryption_key, project.id, caller.name(), &draft).await?;
    state.audit.record(
        caller
            .event("create", "webhook_policy", format!("{}/webhook/policies/{id}", project.name))
            .project(project.id)
            .detail(describe(&draft)),
    );
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("{}/{id}", uri.path().trim_end_matches('/'))) {
        h.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, h))
}

/// `GET /projects/{p}/webhook/policies/{id}`
#[utoipa::path(get, path = "/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}", tag = "webhook",
    params(("project_name_or_id" = String, Path), ("webhook_policy_id" = i64, Path)),
    responses((status = 200, body = WebhookPolicy), (status = 401), (status = 403), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, id)): AppPath<(String, i64)>,
) -> Result<Json<WebhookPolicy>, ApiError> {
    let project = project_for(&state, &caller, &headers, &key, Act::Read).await?;
    Ok(Json(policy_of(&state, &project, id).await?.to_rest()))
}

/// `PUT /projects/{p}/webhook/policies/{id}`: replaces the policy. A target's empty
/// `auth_header` keeps the one stored for the same address.
#[utoipa::path(put, path = "/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}", tag = "webhook",
    params(("project_name_or_id" = String, Path), ("webhook_policy_id" = i64, Path)), request_body = WebhookPolicy,
    responses((status = 200), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, id)): AppPath<(String, i64)>,
    AppJson(body): AppJson<WebhookPolicy>,
) -> Result<StatusCode, ApiError> {
    let project = project_for(&state, &caller, &headers, &key, Act::Update).await?;
    if body.id != 0 && body.id != id {
        return Err(ApiError::BadRequest("the policy id in the body does not match the path".into()));
    }
    let draft = webhook::validate(&body).map_err(ApiError::BadRequest)?;
    webhook::update(&state.db, &state.secrets.encryption_key, project.id, id, &draft).await?;
    state.audit.record(
        caller
            .event("update", "webhook_policy", format!("{}/webhook/policies/{id}", project.name))
            .project(project.id)
            .detail(describe(&draft)),
    );
    Ok(StatusCode::OK)
}

/// `DELETE /projects/{p}/webhook/policies/{id}`: the policy and its history; deliveries not
/// yet made are dropped.
#[utoipa::path(delete, path = "/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}", tag = "webhook",
    params(("project_name_or_id" = String, Path), ("webhook_policy_id" = i64, Path)),
    responses((status = 200), (status = 401), (status = 403), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, id)): AppPath<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    let project = project_for(&state, &caller, &headers, &key, Act::Delete).await?;
    let policy = policy_of(&state, &project, id).await?;
    if !webhook::delete(&state.db, project.id, id).await? {
        return Err(PolicyError::NotFound.into());
    }
    state.audit.record(
        caller
            .event("delete", "webhook_policy", format!("{}/webhook/policies/{id}", project.name))
            .project(project.id)
            .detail(policy.name),
    );
    Ok(StatusCode::OK)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    pub page: Option<u64>,
    pub page_size: Option<u64>,
    /// `status=<status>` or `event_type=<type>` (executions only).
    pub q: Option<String>,
    /// Newest first; no other sort is supported.
    pub sort: Option<String>,
}

fn history_filter(q: Option<&str>, keys: &[&str]) -> Result<Option<(String, String)>, ApiError> {
    let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) else { return Ok(None) };
    let (k, v) = q.split_once('=').ok_or_else(|| ApiError::BadRequest(format!("invalid q {q:?}")))?;
    if !keys.contains(&k) || v.len() > 64 {
        return Err(ApiError::BadRequest(format!("unsupported q {q:?}: supported keys {}", keys.join(", "))));
    }
    Ok(Some((k.to_string(), v.trim_start_matches('~').to_string())))
}

/// `GET /projects/{p}/webhook/policies/{id}/executions`: the events the policy received,
/// newest first (the newest 100 are kept).
#[utoipa::path(get, path = "/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}/executions", tag = "webhook",
    params(("project_name_or_id" = String, Path), ("webhook_policy_id" = i64, Path), HistoryParams),
    responses((status = 200, body = [WebhookExecution], headers(("X-Total-Count" = i64), ("Link" = String))),
        (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn executions(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    AppPath((key, id)): AppPath<(String, i64)>,
    AppQuery(p): AppQuery<HistoryParams>,
) -> Result<impl IntoResponse, ApiError> {
    let project = project_for(&state, &caller, &headers, &key, Act::Read).await?;
    let policy = policy_of(&state, &project, id).await?;
    let filter = history_filter(p.q.as_deref(), &["status", "event_type"])?;
    let (page, page_size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let (rows, total) =
        crate::webhook::history::executions(&state.db, policy.id, filter, page, page_size).await?;
    let list: Vec<WebhookExecution> = rows
        .into_iter()
        .map(|e| WebhookExecution {
            id: e.id,
            vendor_type: "WEBHOOK".into(),
            vendor_id: policy.id,
            status: e.status,
            status_message: e.status_message,
            trigger: "EVENT".into(),
            extra_attrs: json!({
                "event_type": e.event_type,
                "event_id": e.event_id,
                "payload": serde_json::from_str::<serde_json::Value>(&e.payload).unwrap_or_default(),
            }),
            start_time: rfc3339(e.start_time),
            end_time: if e.end_time == 0 { ZERO_TIME.into() } else { rfc3339(e.end_time) },
        })
        .collect();
    Ok((pagination_headers(&uri, page, page_size, total), Json(list)))
}

/// `GET …/executions/{eid}/tasks`: the deliveries of an event, one per target.
#[utoipa::path(get, path = "/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}/executions/{execution_id}/tasks", tag = "webhook",
    params(("project_name_or_id" = String, Path), ("webhook_policy_id" = i64, Path), ("execution_id" = i64, Path), HistoryParams),
    responses((status = 200, body = [WebhookTask], headers(("X-Total-Count" = i64), ("Link" = String))),
        (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn tasks(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    AppPath((key, id, eid)): AppPath<(String, i64, i64)>,
    AppQuery(p): AppQuery<HistoryParams>,
) -> Result<impl IntoResponse, ApiError> {
    let project = project_for(&state, &caller, &headers, &key, Act::Read).await?;
    let policy = policy_of(&state, &project, id).await?;
    let filter = history_filter(p.q.as_deref(), &["status"])?;
    let (page, page_size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let (rows, total) = crate::webhook::history::tasks(&state.db, policy.id, eid, filter, page, page_size)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("webhook execution {eid} not found")))?;
    let time = |t: i64| if t == 0 { ZERO_TIME.to_string() } else { rfc3339(t) };
    let list: Vec<WebhookTask> = rows
        .into_iter()
        .map(|t| {
            let mut extra = json!({ "address": t.address, "payload_format": t.payload_format });
            if t.next_attempt > 0 {
                extra["next_attempt"] = json!(rfc3339(t.next_attempt));
            }
            WebhookTask {
                id: t.id,
                execution_id: eid,
                status: t.status,
                status_message: t.status_message,
                run_count: t.run_count as i32,
                extra_attrs: extra,
                creation_time: rfc3339(t.created_at),
                update_time: rfc3339(t.updated_at),
                start_time: time(t.start_time),
                end_time: time(t.end_time),
            }
        })
        .collect();
    Ok((pagination_headers(&uri, page, page_size, total), Json(list)))
}

/// `GET …/executions/{eid}/tasks/{tid}/log` (text/plain): every attempt of the delivery.
#[utoipa::path(get, path = "/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}/executions/{execution_id}/tasks/{task_id}/log", tag = "webhook",
    params(("project_name_or_id" = String, Path), ("webhook_policy_id" = i64, Path), ("execution_id" = i64, Path), ("task_id" = i64, Path)),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 401), (status = 403), (status = 404)))]
pub async fn task_log(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, id, eid, tid)): AppPath<(String, i64, i64, i64)>,
) -> Result<impl IntoResponse, ApiError> {
    let project = project_for(&state, &caller, &headers, &key, Act::Read).await?;
    let policy = policy_of(&state, &project, id).await?;
    let log = crate::webhook::history::task_log(&state.db, policy.id, eid, tid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("webhook task {tid} not found")))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], log))
}

/// `GET /projects/{p}/webhook/lasttrigger`: per policy and event type, the last time it fired.
#[utoipa::path(get, path = "/projects/{project_name_or_id}/webhook/lasttrigger", tag = "webhook",
    params(("project_name_or_id" = String, Path)),
    responses((status = 200, body = [WebhookLastTrigger]), (status = 401), (status = 403), (status = 404)))]
pub async fn last_trigger(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath(key): AppPath<String>,
) -> Result<Json<Vec<WebhookLastTrigger>>, ApiError> {
    let project = project_for(&state, &caller, &headers, &key, Act::List).await?;
    let policies = webhook::all_of(&state.db, project.id).await?;
    let last = crate::webhook::history::last_triggers(&state.db, project.id).await?;
    let mut out = vec![];
    for p in &policies {
        for t in p.event_types() {
            let at = last.get(&(p.id, t.clone())).copied();
            out.push(WebhookLastTrigger {
                policy_name: p.name.clone(),
                event_type: t,
                enabled: p.enabled,
                creation_time: rfc3339(p.created_at),
                last_trigger_time: at.map_or(ZERO_TIME.to_string(), rfc3339),
            });
        }
    }
    Ok(Json(out))
}

/// `GET /projects/{p}/webhook/events`: the event types, notify types and payload formats.
#[utoipa::path(get, path = "/projects/{project_name_or_id}/webhook/events", tag = "webhook",
    params(("project_name_or_id" = String, Path)),
    responses((status = 200, body = SupportedWebhookEventTypes), (status = 401), (status = 403), (status = 404)))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath(key): AppPath<String>,
) -> Result<Json<SupportedWebhookEventTypes>, ApiError> {
    project_for(&state, &caller, &headers, &key, Act::Read).await?;
    Ok(Json(SupportedWebhookEventTypes {
        event_type: webhook::EVENT_TYPES.iter().map(|s| s.to_string()).collect(),
        notify_type: webhook::NOTIFY_TYPES.iter().map(|s| s.to_string()).collect(),
        payload_formats: vec![PayloadFormat {
            notify_type: "http".into(),
            formats: webhook::FORMATS.iter().map(|s| s.to_string()).collect(),
        }],
    }))
}

/// `POST /projects/{p}/webhook/policies/test`: sends a test event (`type` `PING`, nothing
/// happened) to each target of the body, now; 200 when every target answered 2xx, else 400
/// with what each said. A target's empty `auth_header` uses the one stored for that address
/// in the policy named by the body's `id`.
#[utoipa::path(post, path = "/projects/{project_name_or_id}/webhook/policies/test", tag = "webhook",
    params(("project_name_or_id" = String, Path)), request_body = WebhookPolicy,
    responses((status = 200), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath(key): AppPath<String>,
    AppJson(mut body): AppJson<WebhookPolicy>,
) -> Result<StatusCode, ApiError> {
    let project = project_for(&state, &caller, &headers, &key, Act::Create).await?;
    // Only the targets matter for a test.
    if body.name.trim().is_empty() {
        body.name = "test".into();
    }
    if body.event_types.is_empty() {
        body.event_types = vec!["PUSH_ARTIFACT".into()];
    }
    let draft = webhook::validate(&body).map_err(ApiError::BadRequest)?;
    let stored = if body.id > 0 { webhook::get(&state.db, project.id, body.id).await? } else { None };
    let mut failures = vec![];
    for (t, header) in &draft.targets {
        let auth = match header {
            Some(h) => h.clone(),
            None => match stored
                .as_ref()
                .and_then(|p| p.targets().into_iter().find(|o| o.address == t.address).map(|o| (p.id, o)))
            {
                Some((pid, o)) => webhook::open_auth(&state.secrets.encryption_key, pid, &o)
                    .map_err(|e| ApiError::BadRequest(format!("the stored auth header: {e}")))?,
                None => String::new(),
            },
        };
        let event_id = uuid::Uuid::new_v4().to_string();
        let payload = json!({
            "type": "PING",
            "occur_at": crate::db::now_ms() / 1000,
            "operator": caller.name(),
            "event_data": { "custom_attributes": { "project": project.name } },
        });
        let (bytes, ct) = crate::webhook::deliver::request_body(
            &t.payload_format,
            &payload,
            &event_id,
            project.id,
            body.id,
        );
        if let Err(e) = crate::webhook::deliver::send(&state, t, &auth, &event_id, bytes, ct).await {
            failures.push(e);
        }
    }
    if failures.is_empty() {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::BadRequest(failures.join("; ")))
    }
}

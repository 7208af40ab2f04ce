//! `/api/v2.0/quotas` (Harbor's tag `quota`, system admins only as in Harbor): one storage quota
//! per project (`crate::quota`). `PUT` changes the hard limit (-1: unlimited); a lower limit
//! than the usage refuses new bytes only, never what is stored.

use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::api::{pagination_headers, Pagination};
use crate::auth::Caller;
use crate::db::rfc3339;
use crate::quota::{self, QuotaRow, Sort};
use crate::state::AppState;

pub use app::rest::projects::ResourceAmount;
pub use app::rest::quotas::{Quota, QuotaRef, QuotaUpdateReq};

pub fn model(q: &QuotaRow) -> Quota {
    Quota {
        id: q.id,
        reference: QuotaRef {
            id: q.project_id,
            name: q.project_name.clone(),
            owner_name: q.owner_name.clone(),
        },
        hard: ResourceAmount { storage: q.hard },
        used: ResourceAmount { storage: q.used },
        creation_time: rfc3339(q.created_at),
        update_time: rfc3339(q.updated_at),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// The reference type: `project` (the only one).
    pub reference: Option<String>,
    /// The reference id: a project id.
    pub reference_id: Option<String>,
    /// `hard.storage`, `used.storage`, `-` before for descending.
    pub sort: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

/// `GET /api/v2.0/quotas`
#[utoipa::path(get, path = "/quotas", tag = "quota", params(ListParams),
    responses((status = 200, body = [Quota], headers(("X-Total-Count" = i64), ("Link" = String))),
        (status = 400), (status = 401), (status = 403)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    let (page, page_size) = Pagination { page: params.page, page_size: params.page_size }.resolve()?;
    let sort = Sort::parse(params.sort.as_deref()).ok_or_else(|| {
        ApiError::BadRequest("sort must be hard.storage or used.storage, with '-' for descending".into())
    })?;
    let reference = params.reference.as_deref().filter(|r| !r.is_empty());
    if let Some(r) = reference {
        if r != "project" {
            return Err(ApiError::BadRequest(format!("unknown quota reference {r:?}: only \"project\"")));
        }
    }
    let project_id = match params.reference_id.as_deref().filter(|r| !r.is_empty()) {
        None => None,
        Some(id) => Some(
            id.parse::<i64>()
                .ok()
                .filter(|i| *i > 0)
                .ok_or_else(|| ApiError::BadRequest("reference_id must be a project id".into()))?,
        ),
    };
    let (rows, total) = quota::list(&state.db, project_id, sort, page, page_size).await?;
    let headers = pagination_headers(&uri, page, page_size, total);
    Ok((headers, Json(rows.iter().map(model).collect::<Vec<_>>())))
}

async fn load(state: &AppState, id: i64) -> Result<QuotaRow, ApiError> {
    quota::get(&state.db, id).await?.ok_or_else(|| ApiError::NotFound(format!("quota {id} not found")))
}

/// `GET /api/v2.0/quotas/{id}`
#[utoipa::path(get, path = "/quotas/{id}", tag = "quota", params(("id" = i64, Path)),
    responses((status = 200, body = Quota), (status = 401), (status = 403), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<Json<Quota>, ApiError> {
    caller.require_sysadmin()?;
    Ok(Json(model(&load(&state, id).await?)))
}

/// `PUT /api/v2.0/quotas/{id}`: `{"hard": {"storage": N}}`, N bytes or -1 (unlimited).
#[utoipa::path(put, path = "/quotas/{id}", tag = "quota", params(("id" = i64, Path)), request_body = QuotaUpdateReq,
    responses((status = 200), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<QuotaUpdateReq>,
) -> Result<StatusCode, ApiError> {
    caller.require_sysadmin()?;
    let hard = req.hard.storage;
    if !quota::valid_limit(hard) {
        return Err(ApiError::BadRequest(format!(
            "hard.storage must be -1 (unlimited) or a number of bytes from 0 to {}",
            quota::MAX_LIMIT
        )));
    }
    let before = load(&state, id).await?;
    if !quota::set_hard(&state.db, id, hard).await? {
        return Err(ApiError::NotFound(format!("quota {id} not found")));
    }
    state.audit.record(
        caller
            .event("update", "quota", &before.project_name)
            .project(before.project_id)
            .detail(format!("storage {} -> {}", before.hard, hard)),
    );
    Ok(StatusCode::OK)
}

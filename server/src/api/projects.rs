use axum::extract::{OriginalUri, State};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::error::{ApiError, AppQuery};
use crate::api::{pagination_headers, Pagination};
use crate::auth::Caller;
use crate::db::rfc3339;
use crate::projects::{self, ListQuery, Project};
use crate::state::AppState;

/// Harbor's `Project` model (the fields this release fills).
pub fn project_json(p: &Project) -> Value {
    json!({
        "project_id": p.id,
        "name": p.name,
        "owner_id": p.owner_id,
        "owner_name": p.owner_name,
        "creation_time": rfc3339(p.created_at),
        "update_time": rfc3339(p.updated_at),
        "deleted": false,
        "repo_count": 0,
        "metadata": { "public": if p.public { "true" } else { "false" } },
    })
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    pub name: Option<String>,
    pub public: Option<bool>,
    // Not `#[serde(flatten)]`: flattening makes serde_urlencoded fail on numbers.
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

/// `GET /api/v2.0/projects`
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    let (page, page_size) = Pagination { page: params.page, page_size: params.page_size }.resolve()?;
    let q = ListQuery { name: params.name, public: params.public, page, page_size };
    let (items, total) = projects::list_visible(&state.db, caller.user.as_ref(), &q).await?;
    let headers = pagination_headers(&uri, page, page_size, total);
    Ok((headers, Json(items.iter().map(project_json).collect::<Vec<_>>())))
}

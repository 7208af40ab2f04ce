//! Tags of an artifact under `/api/v2.0` (Harbor's shapes): list, create, delete.

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::artifacts::{locate_artifact, tag_model, Tag};
use crate::api::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::api::query::{Cond, Query};
use crate::api::{pagination_headers, Pagination};
use crate::artifacts::{self, write};
use crate::auth::Caller;
use crate::db::query::{Col, Sql};
use crate::rbac::{Act, Resource};
use crate::state::AppState;

pub use app::rest::artifacts::TagReq;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TagListParams {
    /// `name=~part` or `name=exact`.
    pub q: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

/// `GET …/artifacts/{reference}/tags`
#[utoipa::path(get, path = "/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/tags", tag = "artifact",
    params(("project_name_or_id" = String, Path), ("repository_name" = String, Path), ("reference" = String, Path), TagListParams),
    responses((status = 200, body = [Tag])))]
pub async fn list_tags(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    AppPath((key, repo, reference)): AppPath<(String, String, String)>,
    AppQuery(p): AppQuery<TagListParams>,
) -> Result<impl IntoResponse, ApiError> {
    let (_, _, a) =
        locate_artifact(&state, &caller, &headers, &key, &repo, &reference, (Resource::Tag, Act::List))
            .await?;
    let (page, page_size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let q = Query::parse(p.q.as_deref().unwrap_or(""))?;
    // Only `name` is known: this rejects any other key.
    Sql::new().filter(&q.terms, &[("name", Col::Text("name"))], &["name"])?;
    let name = match q.get("name") {
        Some(Cond::Fuzzy(n)) | Some(Cond::Exact(n)) => Some(n.as_str()),
        Some(_) => return Err(ApiError::BadRequest("name takes an exact or fuzzy value".into())),
        None => None,
    };
    let (tags, total) = artifacts::list_tags(&state.db, a.id, name, page, page_size).await?;
    let rules = crate::immutable::rules_of(&state.db.pool, a.project_id).await?;
    Ok((
        pagination_headers(&uri, page, page_size, total),
        Json(tags.iter().map(|t| tag_model(t, &a.repository_name, &rules)).collect::<Vec<Tag>>()),
    ))
}

/// `POST …/artifacts/{reference}/tags`: 409 when the repository already has the tag.
#[utoipa::path(post, path = "/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/tags", tag = "artifact",
    params(("project_name_or_id" = String, Path), ("repository_name" = String, Path), ("reference" = String, Path)),
    request_body = TagReq, responses((status = 201, headers(("Location" = String))), (status = 400), (status = 403), (status = 409)))]
pub async fn create_tag(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    AppPath((key, repo, reference)): AppPath<(String, String, String)>,
    AppJson(req): AppJson<TagReq>,
) -> Result<impl IntoResponse, ApiError> {
    let (p, r, a) =
        locate_artifact(&state, &caller, &headers, &key, &repo, &reference, (Resource::Tag, Act::Create))
            .await?;
    crate::api::projects::require_not_proxy(&p)?;
    if !crate::registry::path::valid_tag(&req.name) {
        return Err(ApiError::BadRequest(format!("invalid tag {:?}", req.name)));
    }
    if !write::create_tag(&state.db, r.id, a.id, &req.name).await? {
        return Err(ApiError::Conflict(format!("tag {} already exists in {}", req.name, r.name)));
    }
    state.audit.record(caller.event("create", "tag", format!("{}:{}", r.name, req.name)).project(p.id));
    crate::replication::on_artifact_event(
        &state,
        crate::replication::ArtifactEvent::Push,
        &r.name,
        &req.name,
    );
    // Harbor's Location: the request's path plus the tag's name.
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("{}/{}", uri.path().trim_end_matches('/'), req.name)) {
        h.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, h))
}

/// `DELETE …/artifacts/{reference}/tags/{tag_name}`
#[utoipa::path(delete, path = "/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/tags/{tag_name}", tag = "artifact",
    params(("project_name_or_id" = String, Path), ("repository_name" = String, Path), ("reference" = String, Path), ("tag_name" = String, Path)),
    responses((status = 200), (status = 403), (status = 404)))]
pub async fn delete_tag(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, repo, reference, tag)): AppPath<(String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let (p, r, a) =
        locate_artifact(&state, &caller, &headers, &key, &repo, &reference, (Resource::Tag, Act::Delete))
            .await?;
    if !write::delete_tag(&state.db, write::TagOf::Artifact(a.id), &tag).await? {
        return Err(ApiError::NotFound(format!("tag {tag} not found on this artifact")));
    }
    state.audit.record(caller.event("delete", "tag", format!("{}:{tag}", r.name)).project(p.id));
    crate::replication::on_artifact_event(&state, crate::replication::ArtifactEvent::Delete, &r.name, &tag);
    Ok(StatusCode::OK)
}

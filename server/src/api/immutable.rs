//! Tag immutability rules under `/api/v2.0/projects/{p}/immutabletagrules` (Harbor's
//! `immutable` operations): list, create, update, delete. Rules and their enforcement are
//! `crate::immutable`'s.

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::api::projects::{require, resolve};
use crate::api::{pagination_headers, Pagination};
use crate::auth::Caller;
use crate::immutable::{self, Draft, RuleError};
use crate::rbac::{Act, Resource};
use crate::state::AppState;

pub use app::rest::immutable::{ImmutableRule, ImmutableSelector};

impl From<RuleError> for ApiError {
    fn from(e: RuleError) -> Self {
        match e {
            RuleError::Conflict => ApiError::Conflict(e.to_string()),
            RuleError::TooMany => ApiError::BadRequest(e.to_string()),
            RuleError::NotFound => ApiError::NotFound(e.to_string()),
            RuleError::Db(e) => e.into(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RuleListParams {
    pub page: Option<u64>,
    pub page_size: Option<u64>,
    /// No key is supported (a non-empty `q` is a 400). Rules are listed by priority, then id.
    pub q: Option<String>,
}

fn describe(d: &Draft) -> String {
    format!(
        "repositories {} {:?}, tags {} {:?}{}",
        d.repo_decoration,
        d.repo_pattern,
        d.tag_decoration,
        d.tag_pattern,
        if d.disabled { " (disabled)" } else { "" }
    )
}

/// `GET /projects/{p}/immutabletagrules`
#[utoipa::path(get, path = "/projects/{project_name_or_id}/immutabletagrules", tag = "immutable",
    params(("project_name_or_id" = String, Path), RuleListParams),
    responses((status = 200, body = [ImmutableRule], headers(("X-Total-Count" = i64), ("Link" = String))),
        (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    AppPath(key): AppPath<String>,
    AppQuery(p): AppQuery<RuleListParams>,
) -> Result<impl IntoResponse, ApiError> {
    let project = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &project, Resource::ImmutableTag, Act::List).await?;
    if p.q.as_deref().is_some_and(|q| !q.trim().is_empty()) {
        return Err(ApiError::BadRequest("immutability rules take no q filter".into()));
    }
    let (page, page_size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let (rules, total) = immutable::list(&state.db, project.id, page, page_size).await?;
    Ok((
        pagination_headers(&uri, page, page_size, total),
        Json(rules.iter().map(immutable::to_rest).collect::<Vec<_>>()),
    ))
}

/// `POST /projects/{p}/immutabletagrules`: 201 with the rule's `Location`.
#[utoipa::path(post, path = "/projects/{project_name_or_id}/immutabletagrules", tag = "immutable",
    params(("project_name_or_id" = String, Path)), request_body = ImmutableRule,
    responses((status = 201, headers(("Location" = String))), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    AppPath(key): AppPath<String>,
    AppJson(body): AppJson<ImmutableRule>,
) -> Result<impl IntoResponse, ApiError> {
    let project = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &project, Resource::ImmutableTag, Act::Create).await?;
    let draft = immutable::validate(&body).map_err(ApiError::BadRequest)?;
    let id = immutable::create(&state.db, project.id, &draft).await?;
    state.audit.record(
        caller
            .event("create", "immutable_rule", format!("{}/immutabletagrules/{id}", project.name))
            .project(project.id)
            .detail(describe(&draft)),
    );
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("{}/{id}", uri.path().trim_end_matches('/'))) {
        h.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, h))
}

/// `PUT /projects/{p}/immutabletagrules/{id}`: replaces the rule (the body's `id`, when given,
/// must be the path's). Disabling is an update with `disabled: true`.
#[utoipa::path(put, path = "/projects/{project_name_or_id}/immutabletagrules/{immutable_rule_id}", tag = "immutable",
    params(("project_name_or_id" = String, Path), ("immutable_rule_id" = i64, Path)), request_body = ImmutableRule,
    responses((status = 200), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, id)): AppPath<(String, i64)>,
    AppJson(body): AppJson<ImmutableRule>,
) -> Result<StatusCode, ApiError> {
    let project = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &project, Resource::ImmutableTag, Act::Update).await?;
    if body.id != 0 && body.id != id {
        return Err(ApiError::BadRequest(
            "the immutable_rule_id doesn't match the id in the payload body of ImmutableRule".into(),
        ));
    }
    let draft = immutable::validate(&body).map_err(ApiError::BadRequest)?;
    immutable::update(&state.db, project.id, id, &draft).await?;
    state.audit.record(
        caller
            .event("update", "immutable_rule", format!("{}/immutabletagrules/{id}", project.name))
            .project(project.id)
            .detail(describe(&draft)),
    );
    Ok(StatusCode::OK)
}

/// `DELETE /projects/{p}/immutabletagrules/{id}`
#[utoipa::path(delete, path = "/projects/{project_name_or_id}/immutabletagrules/{immutable_rule_id}", tag = "immutable",
    params(("project_name_or_id" = String, Path), ("immutable_rule_id" = i64, Path)),
    responses((status = 200), (status = 401), (status = 403), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, id)): AppPath<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    let project = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &project, Resource::ImmutableTag, Act::Delete).await?;
    let Some(rule) = immutable::get(&state.db, project.id, id).await? else {
        return Err(RuleError::NotFound.into());
    };
    if !immutable::delete(&state.db, project.id, id).await? {
        return Err(RuleError::NotFound.into());
    }
    let r = immutable::to_rest(&rule);
    state.audit.record(
        caller
            .event("delete", "immutable_rule", format!("{}/immutabletagrules/{id}", project.name))
            .project(project.id)
            .detail(format!(
                "repositories {:?}, tags {:?}",
                r.scope_selectors.get("repository").and_then(|s| s.first()).map(|s| &s.pattern),
                r.tag_selectors.first().map(|s| &s.pattern)
            )),
    );
    Ok(StatusCode::OK)
}

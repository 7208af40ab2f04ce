//! The REST surface, shaped like Harbor's `/api/v2.0` (goharbor/harbor `api/v2.0/swagger.yaml`),
//! plus Harbor's portal login endpoints `/c/login` and `/c/log_out`.

pub mod artifacts;
pub mod audit;
pub mod configurations;
pub mod error;
pub mod gc;
pub mod openapi;
pub mod projects;
pub mod query;
pub mod repositories;
pub mod robots;
pub mod search;
pub mod session;
pub mod system;
pub mod tags;
pub mod users;

use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;

use crate::state::AppState;
use error::ApiError;

/// Routes under `/api/v2.0`.
pub fn v2_routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/ping", get(system::ping))
        .route("/health", get(system::health))
        .route("/systeminfo", get(system::systeminfo))
        .route("/systeminfo/volumes", get(system::volumes))
        .route("/users", get(users::list).post(users::create))
        .route("/users/current", get(users::current))
        .route("/users/search", get(users::search))
        .route("/users/{user_id}", get(users::get).put(users::update).delete(users::delete))
        .route("/users/{user_id}/password", put(users::change_password))
        .route("/users/{user_id}/sysadmin", put(users::set_sysadmin))
        .route("/projects", get(projects::list).head(projects::head).post(projects::create))
        .route(
            "/projects/{project_name_or_id}",
            get(projects::get).put(projects::update).delete(projects::delete),
        )
        .route("/projects/{project_name_or_id}/_deletable", get(projects::deletable))
        .route("/projects/{project_name_or_id}/summary", get(projects::summary))
        .route("/projects/{project_name_or_id}/metadatas", get(projects::metadatas).post(projects::add_metadata))
        .route("/projects/{project_name_or_id}/metadatas/", get(projects::metadatas).post(projects::add_metadata))
        .route(
            "/projects/{project_name_or_id}/metadatas/{meta_name}",
            get(projects::get_metadata).put(projects::update_metadata).delete(projects::delete_metadata),
        )
        .route("/search", get(search::search))
        .route("/statistics", get(search::statistics))
        .route("/users/current/permissions", get(search::permissions))
        .route(
            "/projects/{project_name_or_id}/members",
            get(projects::list_members).post(projects::add_member),
        )
        .route(
            "/projects/{project_name_or_id}/members/{mid}",
            get(projects::get_member).put(projects::update_member).delete(projects::remove_member),
        )
        .route("/projects/{project_name_or_id}/logs", get(projects::logs))
        .route("/repositories", get(repositories::list_all))
        .route("/projects/{project_name_or_id}/artifacts", get(artifacts::list_project_artifacts))
        .route("/projects/{project_name_or_id}/repositories", get(repositories::list_in_project))
        .route(
            "/projects/{project_name_or_id}/repositories/{repository_name}",
            get(repositories::get).put(repositories::update).delete(repositories::delete),
        )
        .route(
            "/projects/{project_name_or_id}/repositories/{repository_name}/artifacts",
            get(artifacts::list_artifacts).post(artifacts::copy),
        )
        .route(
            "/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}",
            get(artifacts::get_artifact).delete(artifacts::delete_artifact),
        )
        .route(
            "/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/tags",
            get(tags::list_tags).post(tags::create_tag),
        )
        .route(
            "/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/tags/{tag_name}",
            axum::routing::delete(tags::delete_tag),
        )
        .route(
            "/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/accessories",
            get(artifacts::accessories),
        )
        .route(
            "/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/additions/{addition}",
            get(artifacts::addition),
        )
        .route("/robots", get(robots::list).post(robots::create))
        .route(
            "/robots/{robot_id}",
            get(robots::get).put(robots::update).patch(robots::refresh).delete(robots::delete),
        )
        .route("/audit-logs", get(audit::list))
        .route("/configurations", get(configurations::get).put(configurations::put))
        .route("/system/gc", get(gc::list))
        .route(
            "/system/gc/schedule",
            get(gc::get_schedule).post(gc::create_schedule).put(gc::update_schedule),
        )
        .route("/system/gc/usage", get(gc::usage))
        .route("/system/gc/{gc_id}", get(gc::get).put(gc::stop))
        .route("/system/gc/{gc_id}/log", get(gc::log))
        .fallback(|| async { ApiError::NotFound("no such API endpoint".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("method not allowed on this endpoint".into())
        })
        .layer(axum::middleware::from_fn(uri_length))
}

/// Harbor's portal session endpoints.
pub fn c_routes() -> Router<AppState> {
    Router::new()
        .route("/login", post(session::login))
        .route("/log_out", get(session::logout).post(session::logout))
        .layer(axum::middleware::from_fn(uri_length))
}

/// The longest request target (path and query) the REST API reads: Harbor sits behind nginx,
/// whose 8 KiB request-line buffer answers 414 beyond it.
pub const MAX_URI_LEN: usize = 8192;

/// 414 in Harbor's error format for a longer request target (a `q` or `sort` of thousands of
/// terms), before any handler parses it.
async fn uri_length(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let len = req.uri().path_and_query().map(|p| p.as_str().len()).unwrap_or(0);
    if len > MAX_URI_LEN {
        return ApiError::UriTooLong(format!(
            "the request URI is {len} bytes long; at most {MAX_URI_LEN} are accepted"
        ))
        .into_response();
    }
    next.run(req).await
}

/// `page`/`page_size` as Harbor takes them (defaults 1 and 10, at most 100 per page).
#[derive(Debug, Clone, Deserialize)]
pub struct Pagination {
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

impl Pagination {
    pub fn resolve(&self) -> Result<(u64, u64), ApiError> {
        let page = self.page.unwrap_or(1);
        let size = self.page_size.unwrap_or(10);
        if page == 0 {
            return Err(ApiError::BadRequest("page must be at least 1".into()));
        }
        if size == 0 || size > 100 {
            return Err(ApiError::BadRequest("page_size must be between 1 and 100".into()));
        }
        // The offset goes into SQL as a 64-bit signed integer; beyond that the database fails.
        if (page - 1).checked_mul(size).is_none_or(|o| o > i64::MAX as u64) {
            return Err(ApiError::BadRequest("page is out of range".into()));
        }
        Ok((page, size))
    }
}

/// `X-Total-Count` and RFC 8288 `Link` (prev/next) headers, keeping the other query parameters.
pub fn pagination_headers(uri: &Uri, page: u64, size: u64, total: i64) -> HeaderMap {
    pagination_headers_with(uri, page, size, total, (page.saturating_mul(size) as i64) < total)
}

/// `pagination_headers` where the caller knows whether a next page exists (capped counts).
pub fn pagination_headers_with(uri: &Uri, page: u64, size: u64, total: i64, has_next: bool) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-total-count", HeaderValue::from(total.max(0) as u64));
    let others: Vec<(String, String)> = uri
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let link_to = |p: u64| {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &others {
            if k != "page" && k != "page_size" {
                ser.append_pair(k, v);
            }
        }
        ser.append_pair("page", &p.to_string());
        ser.append_pair("page_size", &size.to_string());
        format!("{}?{}", uri.path(), ser.finish())
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", link_to(page - 1)));
    }
    if has_next {
        links.push(format!("<{}>; rel=\"next\"", link_to(page + 1)));
    }
    if !links.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
            h.insert(axum::http::header::LINK, v);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        let uri: Uri = "/api/v2.0/projects?name=li&page=2&page_size=1".parse().unwrap();
        let h = pagination_headers(&uri, 2, 1, 3);
        assert_eq!(h["x-total-count"], "3");
        assert_eq!(
            h["link"],
            "</api/v2.0/projects?name=li&page=1&page_size=1>; rel=\"prev\", \
             </api/v2.0/projects?name=li&page=3&page_size=1>; rel=\"next\""
        );
        assert!(pagination_headers(&uri, 1, 10, 3).get("link").is_none());
    }

    #[test]
    fn pagination_bounds() {
        assert_eq!(Pagination { page: None, page_size: None }.resolve().unwrap(), (1, 10));
        assert!(Pagination { page: Some(0), page_size: None }.resolve().is_err());
        assert!(Pagination { page: None, page_size: Some(101) }.resolve().is_err());
        assert!(Pagination { page: Some(u64::MAX), page_size: Some(100) }.resolve().is_err());
        assert!(Pagination { page: Some(i64::MAX as u64 / 10 + 2), page_size: Some(10) }.resolve().is_err());
        assert!(Pagination { page: Some(i64::MAX as u64 / 10), page_size: Some(10) }.resolve().is_ok());
    }
}

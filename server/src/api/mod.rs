//! The REST surface, shaped like Harbor's `/api/v2.0` (goharbor/harbor `api/v2.0/swagger.yaml`),
//! plus Harbor's portal login endpoints `/c/login`, `/c/log_out` and `/c/oidc/*` (`oidc`).

pub mod artifacts;
pub mod audit;
pub mod configurations;
pub mod error;
pub mod gc;
pub mod immutable;
pub mod jobservice;
pub mod labels;
pub mod ldap;
pub mod oidc;
pub mod openapi;
pub mod projects;
pub mod purge;
pub mod query;
pub mod quotas;
pub mod registries;
pub mod replication;
pub mod repositories;
pub mod retention;
pub mod robots;
pub mod search;
pub mod session;
pub mod system;
pub mod tags;
pub mod usergroups;
pub mod users;
pub mod webhook;

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;
use error::ApiError;

/// The documented operations under `/api/v2.0`, each declared once: the handler's
/// `#[utoipa::path]` names its method and path, and its `routes!` entry here routes it and adds
/// it to the OpenAPI document. Handlers in one `routes!` share a path.
pub fn v2_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(system::ping))
        .routes(routes!(system::health))
        .routes(routes!(system::systeminfo))
        .routes(routes!(system::volumes))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::current))
        .routes(routes!(users::search))
        .routes(routes!(users::get, users::update, users::delete))
        .routes(routes!(users::change_password))
        .routes(routes!(users::set_sysadmin))
        .routes(routes!(oidc::set_cli_secret))
        .routes(routes!(oidc::ping))
        .routes(routes!(usergroups::list, usergroups::create))
        .routes(routes!(usergroups::search))
        .routes(routes!(usergroups::get, usergroups::update, usergroups::delete))
        .routes(routes!(projects::list, projects::head, projects::create))
        .routes(routes!(projects::get, projects::update, projects::delete))
        .routes(routes!(projects::deletable))
        .routes(routes!(projects::summary))
        .routes(routes!(projects::metadatas, projects::add_metadata))
        .routes(routes!(projects::get_metadata, projects::update_metadata, projects::delete_metadata))
        .routes(routes!(search::search))
        .routes(routes!(search::statistics))
        .routes(routes!(search::permissions))
        .routes(routes!(projects::list_members, projects::add_member))
        .routes(routes!(projects::get_member, projects::update_member, projects::remove_member))
        .routes(routes!(projects::logs))
        .routes(routes!(repositories::list_all))
        .routes(routes!(artifacts::list_project_artifacts))
        .routes(routes!(repositories::list_in_project))
        .routes(routes!(repositories::get, repositories::update, repositories::delete))
        .routes(routes!(artifacts::list_artifacts, artifacts::copy))
        .routes(routes!(artifacts::get_artifact, artifacts::delete_artifact))
        .routes(routes!(tags::list_tags, tags::create_tag))
        .routes(routes!(tags::delete_tag))
        .routes(routes!(artifacts::accessories))
        .routes(routes!(artifacts::addition))
        .routes(routes!(labels::add_to_artifact))
        .routes(routes!(labels::remove_from_artifact))
        .routes(routes!(labels::list, labels::create))
        .routes(routes!(labels::get, labels::update, labels::delete))
        .routes(routes!(immutable::list, immutable::create))
        .routes(routes!(immutable::update, immutable::delete))
        .routes(routes!(retention::metadatas))
        .routes(routes!(retention::create))
        .routes(routes!(retention::get, retention::update, retention::delete))
        .routes(routes!(retention::trigger, retention::executions))
        .routes(routes!(retention::operate))
        .routes(routes!(retention::tasks))
        .routes(routes!(retention::task_log))
        .routes(routes!(webhook::list, webhook::create))
        .routes(routes!(webhook::test))
        .routes(routes!(webhook::get, webhook::update, webhook::delete))
        .routes(routes!(webhook::executions))
        .routes(routes!(webhook::tasks))
        .routes(routes!(webhook::task_log))
        .routes(routes!(webhook::last_trigger))
        .routes(routes!(webhook::events))
        .routes(routes!(robots::list, robots::create))
        .routes(routes!(robots::get, robots::update, robots::refresh, robots::delete))
        .routes(routes!(audit::list))
        .routes(routes!(configurations::get, configurations::put))
        .routes(routes!(ldap::ping))
        .routes(routes!(ldap::search_users))
        .routes(routes!(ldap::import_users))
        .routes(routes!(ldap::search_groups))
        .routes(routes!(gc::list))
        .routes(routes!(gc::get_schedule, gc::create_schedule, gc::update_schedule))
        .routes(routes!(gc::get, gc::stop))
        .routes(routes!(gc::log))
        .routes(routes!(gc::usage))
        .routes(routes!(purge::list))
        .routes(routes!(purge::get_schedule, purge::create_schedule, purge::update_schedule))
        .routes(routes!(purge::get, purge::stop))
        .routes(routes!(purge::log))
        .routes(routes!(jobservice::pools))
        .routes(routes!(jobservice::workers))
        .routes(routes!(jobservice::stop_job))
        .routes(routes!(jobservice::job_log))
        .routes(routes!(jobservice::queues))
        .routes(routes!(jobservice::act))
        .routes(routes!(jobservice::schedules))
        .routes(routes!(jobservice::paused))
        .routes(routes!(quotas::list))
        .routes(routes!(quotas::get, quotas::update))
        .routes(routes!(registries::list, registries::create))
        .routes(routes!(registries::ping))
        .routes(routes!(registries::get, registries::update, registries::delete))
        .routes(routes!(registries::info))
        .routes(routes!(registries::adapter_types))
        .routes(routes!(registries::adapter_infos))
        .routes(routes!(replication::list_policies, replication::create_policy))
        .routes(routes!(replication::get_policy, replication::update_policy, replication::delete_policy))
        .routes(routes!(replication::list_executions, replication::start_execution))
        .routes(routes!(replication::get_execution, replication::stop_execution))
        .routes(routes!(replication::list_tasks))
        .routes(routes!(replication::task_log))
}

/// Routed under `/api/v2.0` but deliberately absent from the OpenAPI document (method, path):
/// the document itself, and the trailing-slash alias Harbor's portal calls for project metadata.
/// `v2_routes` adds exactly these with plain `.route`; a test checks nothing else is undocumented.
pub const UNDOCUMENTED: [(&str, &str); 3] = [
    ("GET", "/openapi.json"),
    ("GET", "/projects/{project_name_or_id}/metadatas/"),
    ("POST", "/projects/{project_name_or_id}/metadatas/"),
];

/// Routes under `/api/v2.0`: the documented operations of `v2_router`, the `UNDOCUMENTED` ones,
/// and Harbor's error format for unknown paths (404), methods (405) and long URIs (414).
pub fn v2_routes() -> Router<AppState> {
    let (router, doc) = v2_router().split_for_parts();
    let doc = Arc::new(doc);
    router
        // The document describes the API, not itself.
        .route("/openapi.json", get(move || openapi::document(doc.clone())))
        // Harbor's portal posts to `metadatas/`; an alias of the documented `metadatas`.
        .route(
            "/projects/{project_name_or_id}/metadatas/",
            get(projects::metadatas).post(projects::add_metadata),
        )
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
        .route("/oidc/login", get(oidc::login))
        .route("/oidc/callback", get(oidc::callback))
        .route("/oidc/onboard", get(oidc::onboard_page).post(oidc::onboard))
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

    /// Invariant: an `/api/v2.0` route is either a `routes!` entry of `v2_router` (documented by
    /// construction) or one of `UNDOCUMENTED`, added with a plain `.route` in `v2_routes`.
    /// `server/tests/it/openapi.rs` checks at run time that no other method answers on those paths.
    #[test]
    fn only_the_listed_exceptions_are_routed_without_documentation() {
        let src = include_str!("mod.rs");
        let body = |name: &str| {
            let start = src.find(&format!("pub fn {name}()")).unwrap();
            let end = start + src[start..].find("\n}\n").unwrap();
            &src[start..end]
        };
        let needle = concat!(".route", "(");
        assert!(!body("v2_router").contains(needle), "v2_router routes only with routes!");
        let mut plain: Vec<&str> = body("v2_routes")
            .split(needle)
            .skip(1)
            .map(|rest| rest.trim_start().trim_start_matches('"').split('"').next().unwrap())
            .collect();
        plain.sort();
        let mut listed: Vec<&str> = UNDOCUMENTED.iter().map(|(_, path)| *path).collect();
        listed.sort();
        listed.dedup();
        assert_eq!(plain, listed, "a plain .route in v2_routes must be listed in UNDOCUMENTED");
    }

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

//! The OpenAPI 3 document of `/api/v2.0`, generated from the handlers' `#[utoipa::path]`
//! declarations and served at `/api/v2.0/openapi.json`. `server/tests/openapi.rs` compares it
//! with the committed `server/tests/snapshots/openapi.json`, so every API change shows in review.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{
    artifacts, audit, configurations, gc, projects, repositories, robots, search, system, tags, users,
};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        c.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Harbor-CSRF-Token",
                "required on writes authenticated by the portal's session cookie",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "berth API", description = "Harbor-compatible REST API (`/api/v2.0`). Errors are \
        `{\"errors\":[{\"code\",\"message\"}]}`; lists take `page`/`page_size` and answer with `X-Total-Count` \
        and `Link`; `q` takes `k=v`, `k=~v`, `k=[a~b]`, `k={a b}`."),
    servers((url = "/api/v2.0")),
    modifiers(&Security),
    security(("basic" = [])),
    paths(
        system::ping, system::health, system::systeminfo, system::volumes,
        users::current, users::change_password, users::list, users::search, users::create, users::get,
        users::update, users::delete, users::set_sysadmin, search::permissions,
        projects::list, projects::head, projects::create, projects::get, projects::update, projects::delete,
        projects::deletable, projects::summary, projects::metadatas, projects::add_metadata, projects::get_metadata,
        projects::update_metadata, projects::delete_metadata,
        projects::list_members, projects::add_member, projects::get_member, projects::update_member,
        projects::remove_member, projects::logs,
        repositories::list_all, repositories::list_in_project, repositories::get, repositories::update,
        repositories::delete, artifacts::list_artifacts, artifacts::list_project_artifacts, artifacts::copy, artifacts::get_artifact,
        artifacts::delete_artifact, tags::list_tags, tags::create_tag,
        tags::delete_tag, artifacts::accessories, artifacts::addition,
        robots::list, robots::create, robots::get, robots::update, robots::refresh, robots::delete,
        audit::list, configurations::get, configurations::put, search::search, search::statistics,
        gc::list, gc::get, gc::stop, gc::log, gc::usage, gc::get_schedule, gc::create_schedule, gc::update_schedule,
    ),
    components(schemas(crate::api::error::ErrorsBody)),
)]
pub struct ApiDoc;

/// `GET /api/v2.0/openapi.json`
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

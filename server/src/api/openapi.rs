//! The OpenAPI 3 document of `/api/v2.0`: `ApiDoc` holds what is not an operation (info,
//! servers, security schemes, the error body); `api::v2_router` adds every operation from the
//! handlers' `#[utoipa::path]` as it routes them; served at `/api/v2.0/openapi.json`.
//! `server/tests/it/openapi.rs` compares it with the committed `server/tests/snapshots/openapi.json`,
//! so every API change shows in review.

use std::sync::Arc;

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
    components(schemas(crate::api::error::ErrorsBody)),
)]
pub struct ApiDoc;

/// `GET /api/v2.0/openapi.json`: the document `api::v2_router` collected from its routes.
pub async fn document(doc: Arc<utoipa::openapi::OpenApi>) -> Json<utoipa::openapi::OpenApi> {
    Json(doc.as_ref().clone())
}

//! What server functions need from the server, implemented in `server` (`portal.rs`): the REST
//! relay every page reads and writes through, and the session's start and end. Provided as
//! `Arc<dyn PortalBackend>` context.

use std::sync::Arc;

use crate::error::PortalError;
use crate::server_fns::api::ApiReply;

#[async_trait::async_trait]
pub trait PortalBackend: Send + Sync + 'static {
    /// Runs one REST API call (`method`, a path under `/api/v2.0`, a JSON body) in-process as
    /// the session's user: the same handler, RBAC checks, validation and audit rows as a
    /// script calling the API. 4xx/5xx answers come back as errors carrying the API's message.
    async fn rest(&self, method: String, path: String, body: Option<String>)
        -> Result<ApiReply, PortalError>;
    /// Checks credentials (with lockout) and starts a session.
    async fn login(&self, username: String, password: String) -> Result<(), PortalError>;
    /// Ends the current session; `Some(url)` when the browser should go on to end the
    /// identity provider's session too (OIDC `oidc_logout`).
    async fn logout(&self) -> Result<Option<String>, PortalError>;
}

pub fn backend() -> Result<Arc<dyn PortalBackend>, PortalError> {
    leptos::prelude::use_context::<Arc<dyn PortalBackend>>()
        .ok_or_else(|| PortalError::Server("portal backend missing from context".into()))
}

/// Whether the current request is a plain HTML form post (no JavaScript).
pub fn is_plain_form_post() -> bool {
    leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|p| {
            p.headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).map(|v| v.contains("text/html"))
        })
        .unwrap_or(false)
}

//! What server functions need from the server, implemented in `server` (`portal.rs`) on top of
//! the same service functions as the REST API. Provided as `Arc<dyn PortalBackend>` context.

use std::sync::Arc;

use crate::error::PortalError;
use crate::model::{ProjectPage, UserView};

#[async_trait::async_trait]
pub trait PortalBackend: Send + Sync + 'static {
    /// The signed-in user of the current request's session, if any.
    async fn current_user(&self) -> Result<Option<UserView>, PortalError>;
    /// Checks credentials (with lockout) and starts a session.
    async fn login(&self, username: String, password: String) -> Result<UserView, PortalError>;
    /// Ends the current session.
    async fn logout(&self) -> Result<(), PortalError>;
    /// Projects visible to the current user (anonymous: public ones).
    async fn list_projects(
        &self,
        name: String,
        page: u64,
        page_size: u64,
    ) -> Result<ProjectPage, PortalError>;
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

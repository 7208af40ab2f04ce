//! What server functions need from the server, implemented in `server` (`portal.rs`) on top of
//! the same service functions as the REST API. Provided as `Arc<dyn PortalBackend>` context.

use std::sync::Arc;

use crate::error::PortalError;
use crate::model::{ApiReply, ArtifactPage, GcOverview, ProjectPage, RepoPage, UserView};

#[async_trait::async_trait]
pub trait PortalBackend: Send + Sync + 'static {
    /// Runs one REST API call (`method`, a path under `/api/v2.0`, a JSON body) in-process as
    /// the session's user: the same handler, RBAC checks, validation and audit rows as a
    /// script calling the API. 4xx/5xx answers come back as errors carrying the API's message.
    async fn rest(&self, method: String, path: String, body: Option<String>)
        -> Result<ApiReply, PortalError>;
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
    /// Repositories of a project whose name contains `name` (newest update first), if the user
    /// may list them.
    async fn list_repositories(
        &self,
        project: String,
        name: String,
        page: u64,
        page_size: u64,
    ) -> Result<RepoPage, PortalError>;
    /// Artifacts of a repository (newest push first) with their tags, if the user may list them.
    async fn list_artifacts(
        &self,
        repository: String,
        page: u64,
        page_size: u64,
    ) -> Result<ArtifactPage, PortalError>;
    /// GC runs (newest first), the schedule and storage usage (system admins).
    async fn gc_overview(&self) -> Result<GcOverview, PortalError>;
    /// Queues a manual GC run (system admins); `Invalid` while one is pending or running.
    async fn gc_start(&self, dry_run: bool, delete_untagged: bool) -> Result<i64, PortalError>;
    /// Stops a pending or running GC (system admins).
    async fn gc_stop(&self, id: i64) -> Result<(), PortalError>;
    /// Sets the GC schedule: `None`, `Hourly`, `Daily`, `Weekly` or `Custom` with `cron`.
    async fn gc_schedule(&self, kind: String, cron: String, delete_untagged: bool)
        -> Result<(), PortalError>;
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

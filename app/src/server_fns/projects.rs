use leptos::prelude::*;

use crate::error::PortalError;
use crate::model::{ArtifactPage, ProjectPage, RepoPage};

/// Page size of the portal's project list.
pub const PAGE_SIZE: u64 = 15;

#[server(prefix = "/portal/fn", endpoint = "list_projects")]
pub async fn list_projects(name: String, page: u64) -> Result<ProjectPage, PortalError> {
    crate::backend::backend()?.list_projects(name, page.max(1), PAGE_SIZE).await
}

#[server(prefix = "/portal/fn", endpoint = "list_repositories")]
pub async fn list_repositories(project: String, name: String, page: u64) -> Result<RepoPage, PortalError> {
    crate::backend::backend()?.list_repositories(project, name, page.max(1), PAGE_SIZE).await
}

#[server(prefix = "/portal/fn", endpoint = "list_artifacts")]
pub async fn list_artifacts(repository: String, page: u64) -> Result<ArtifactPage, PortalError> {
    crate::backend::backend()?.list_artifacts(repository, page.max(1), PAGE_SIZE).await
}

use leptos::prelude::*;

use crate::error::PortalError;
use crate::model::ProjectPage;

/// Page size of the portal's project list.
pub const PAGE_SIZE: u64 = 15;

#[server(prefix = "/portal/fn", endpoint = "list_projects")]
pub async fn list_projects(name: String, page: u64) -> Result<ProjectPage, PortalError> {
    crate::backend::backend()?.list_projects(name, page.max(1), PAGE_SIZE).await
}

//! Data the portal shows, as sent from server functions to the browser.

use serde::{Deserialize, Serialize};

/// A REST API answer relayed to the portal (see `server_fns::api`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiReply {
    pub status: u16,
    /// `X-Total-Count`, for lists.
    pub total: Option<i64>,
    /// The JSON body (empty for most writes).
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub realname: String,
    pub email: String,
    pub sysadmin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectView {
    pub id: i64,
    pub name: String,
    pub public: bool,
    pub owner_name: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub repo_count: i64,
    /// Bytes of the distinct blobs and manifests the project's artifacts use (Harbor's
    /// `quota.used.storage`).
    pub storage_bytes: i64,
    /// The current user's role in the project (Harbor's role id; 0: not a member).
    pub role_id: i64,
}

/// A repository in a project's repository list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoView {
    /// Full name, project included (`library/app`).
    pub name: String,
    pub artifact_count: i64,
    pub pull_count: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoPage {
    pub project: String,
    pub public: bool,
    pub items: Vec<RepoView>,
    pub total: i64,
    pub page: u64,
    pub page_size: u64,
}

/// An artifact in a repository's artifact list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactView {
    pub digest: String,
    /// `IMAGE`, `INDEX`, `CHART`, `SIGNATURE`, `SBOM` or `ARTIFACT` (Harbor's `type`).
    pub kind: String,
    pub media_type: String,
    pub tags: Vec<String>,
    /// An index's platforms (`linux/amd64`, `linux/arm64/v8`); empty for other artifacts.
    pub platforms: Vec<String>,
    pub size: i64,
    /// Unix milliseconds; `pulled_at` 0 when never pulled.
    pub pushed_at: i64,
    pub pulled_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactPage {
    pub repository: String,
    /// `host[:port]` clients pull from (from `external_url`).
    pub registry: String,
    pub items: Vec<ArtifactView>,
    pub total: i64,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectPage {
    pub items: Vec<ProjectView>,
    pub total: i64,
    pub page: u64,
    pub page_size: u64,
}

/// One garbage collection run, as the Administration page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcRunView {
    pub id: i64,
    /// `MANUAL`, `SCHEDULE` or `CLI`.
    pub job_kind: String,
    /// `Pending`, `Running`, `Success`, `Error` or `Stopped`.
    pub status: String,
    pub dry_run: bool,
    pub delete_untagged: bool,
    pub created_by: String,
    /// Unix milliseconds (0: not yet).
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    /// `uploads`, `mark`, `artifacts`, `sweep`, `done` or `stopped`.
    pub phase: String,
    pub done: u64,
    pub total: u64,
    pub blobs: u64,
    pub manifests: u64,
    pub artifacts: u64,
    pub uploads: u64,
    pub bytes: u64,
    pub error: String,
}

impl GcRunView {
    pub fn active(&self) -> bool {
        self.status == "Pending" || self.status == "Running"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcScheduleView {
    /// `Hourly`, `Daily`, `Weekly` or `Custom`.
    pub kind: String,
    pub cron: String,
    pub next_run: i64,
    pub delete_untagged: bool,
}

/// Bytes a project's artifacts use (each blob once per project).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageView {
    pub project: String,
    pub bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcOverview {
    pub runs: Vec<GcRunView>,
    pub schedule: Option<GcScheduleView>,
    /// Bytes of every stored blob and manifest (referenced or awaiting GC).
    pub total_bytes: i64,
    /// Projects by bytes used, largest first.
    pub projects: Vec<UsageView>,
}

/// A path on this site (`/…`), never another origin (`//host`, `\`, control characters).
pub fn is_local_path(target: &str) -> bool {
    target.starts_with('/')
        && !target.starts_with("//")
        && !target.contains('\\')
        && !target.chars().any(|c| c.is_control())
}

/// Only same-site absolute paths may be redirect targets after login (no open redirects).
pub fn safe_redirect(target: &str) -> String {
    let ok = is_local_path(target) && !target.starts_with("/account/sign-in");
    if ok {
        target.to_string()
    } else {
        "/harbor/projects".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::safe_redirect;

    #[test]
    fn redirects_stay_on_site() {
        assert_eq!(safe_redirect("/harbor/projects?name=x"), "/harbor/projects?name=x");
        for bad in
            ["https://evil.example", "//evil.example", "/\\evil", "", "javascript:x", "/account/sign-in"]
        {
            assert_eq!(safe_redirect(bad), "/harbor/projects", "{bad}");
        }
    }
}

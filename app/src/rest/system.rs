//! System information, settings, search, statistics and audit logs.

use serde::{Deserialize, Serialize};

use super::projects::ProjectResp;

/// Harbor's `GeneralInfo` (`GET /systeminfo`). Anonymous callers get the first six fields
/// only (what the sign-in page needs); the others are omitted, not `null`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SystemInfo {
    pub auth_mode: String,
    pub primary_auth_mode: bool,
    pub self_registration: bool,
    pub harbor_version: String,
    pub banner_message: String,
    pub oidc_provider_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// `host[:port]` clients pull from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_creation_restriction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_ca_root: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_chartmuseum: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_enable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_storage_provider_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_store: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_time: Option<String>,
}

/// A `{"value": …, "editable": …}` item of `GET /configurations`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConfigItem<T> {
    pub value: T,
    pub editable: bool,
}

impl<T> ConfigItem<T> {
    pub fn editable(value: T) -> Self {
        ConfigItem { value, editable: true }
    }
}

/// `GET /configurations` (Harbor's `ConfigurationsResponse`, the keys this release has).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Configurations {
    pub auth_mode: ConfigItem<String>,
    pub project_creation_restriction: ConfigItem<String>,
    pub self_registration: ConfigItem<bool>,
    pub token_expiration: ConfigItem<i64>,
    pub robot_token_duration: ConfigItem<i64>,
}

/// Harbor's `AuditLog`, plus the outcome, client address, project and detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditLogResp {
    pub id: i64,
    pub username: String,
    pub resource: String,
    pub resource_type: String,
    pub operation: String,
    pub op_time: String,
    pub success: bool,
    pub client_ip: String,
    pub project_id: Option<i64>,
    pub detail: String,
}

/// A repository in search results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SearchRepository {
    pub project_id: i64,
    pub project_name: String,
    pub project_public: bool,
    pub repository_name: String,
    pub pull_count: i64,
    pub artifact_count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Search {
    pub project: Vec<ProjectResp>,
    pub repository: Vec<SearchRepository>,
}

/// Harbor's `Statistic`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Statistic {
    pub private_project_count: i64,
    pub private_repo_count: i64,
    pub public_project_count: i64,
    pub public_repo_count: i64,
    pub total_project_count: i64,
    pub total_repo_count: i64,
    /// Bytes of all blobs; system admins only (0 otherwise).
    pub total_storage_consumption: i64,
}

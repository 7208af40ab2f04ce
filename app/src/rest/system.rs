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
/// Secrets (`ldap_search_password`, `oidc_client_secret`) are never answered; `*_set` says
/// whether one is stored. Keys marked "Berth" are not Harbor's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Configurations {
    /// `db_auth`, `ldap_auth` or `oidc_auth`; editable only while no user but the admin exists.
    pub auth_mode: ConfigItem<String>,
    pub project_creation_restriction: ConfigItem<String>,
    pub self_registration: ConfigItem<bool>,
    pub token_expiration: ConfigItem<i64>,
    pub robot_token_duration: ConfigItem<i64>,
    /// The storage limit (bytes) of a new project created without `storage_limit`; -1 = unlimited.
    pub storage_per_project: ConfigItem<i64>,
    /// Syslog endpoint audit events are forwarded to (`host:port`, `tcp://…`, `udp://…`).
    pub audit_log_forward_endpoint: ConfigItem<String>,
    /// Audit events only forwarded, not stored (needs the endpoint).
    pub skip_audit_log_database: ConfigItem<bool>,
    pub ldap_url: ConfigItem<String>,
    pub ldap_search_dn: ConfigItem<String>,
    /// Berth: whether a search password is stored (the password itself is never answered).
    pub ldap_search_password_set: ConfigItem<bool>,
    pub ldap_base_dn: ConfigItem<String>,
    pub ldap_filter: ConfigItem<String>,
    pub ldap_uid: ConfigItem<String>,
    /// 0 base, 1 one level, 2 subtree.
    pub ldap_scope: ConfigItem<i64>,
    /// Seconds.
    pub ldap_timeout: ConfigItem<i64>,
    pub ldap_verify_cert: ConfigItem<bool>,
    /// Berth: upgrade an `ldap://` connection with StartTLS.
    pub ldap_starttls: ConfigItem<bool>,
    /// Berth: PEM CA certificates trusted for the directory besides the system's.
    pub ldap_ca_cert: ConfigItem<String>,
    pub ldap_group_base_dn: ConfigItem<String>,
    pub ldap_group_search_filter: ConfigItem<String>,
    pub ldap_group_attribute_name: ConfigItem<String>,
    pub ldap_group_search_scope: ConfigItem<i64>,
    pub ldap_group_admin_dn: ConfigItem<String>,
    pub ldap_group_membership_attribute: ConfigItem<String>,
    pub oidc_name: ConfigItem<String>,
    pub oidc_endpoint: ConfigItem<String>,
    pub oidc_client_id: ConfigItem<String>,
    /// Berth: whether a client secret is stored.
    pub oidc_client_secret_set: ConfigItem<bool>,
    pub oidc_groups_claim: ConfigItem<String>,
    pub oidc_admin_group: ConfigItem<String>,
    pub oidc_group_filter: ConfigItem<String>,
    /// Comma-separated, e.g. `openid,profile,email,offline_access`.
    pub oidc_scope: ConfigItem<String>,
    pub oidc_user_claim: ConfigItem<String>,
    pub oidc_verify_cert: ConfigItem<bool>,
    pub oidc_auto_onboard: ConfigItem<bool>,
    /// A JSON object of extra authorization-request parameters, e.g. `{"prompt":"login"}`.
    pub oidc_extra_redirect_parms: ConfigItem<String>,
    /// Also end the provider's session on logout (RP-initiated logout).
    pub oidc_logout: ConfigItem<bool>,
    /// Berth: PEM CA certificates trusted for the provider besides the system's.
    pub oidc_ca_cert: ConfigItem<String>,
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

//! User groups (`/usergroups`) and LDAP (`/ldap/*`), Harbor's shapes.

use serde::{Deserialize, Serialize};

/// Harbor's `UserGroup`: 1 LDAP group (found by `ldap_group_dn`), 2 HTTP group, 3 OIDC group.
/// Also the body of `POST/PUT /usergroups` (where `id` is ignored) and of a project member's
/// `member_group`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserGroup {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub group_name: String,
    #[serde(default)]
    pub group_type: i64,
    #[serde(default)]
    pub ldap_group_dn: String,
}

/// Harbor's `UserGroupSearchItem` (`GET /usergroups/search`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserGroupSearchItem {
    pub id: i64,
    pub group_name: String,
    pub group_type: i64,
}

/// Harbor's `LdapConf` (`POST /ldap/ping`): settings to try instead of the stored ones; an
/// absent field (or a `*****` password) takes the stored value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LdapConf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_search_dn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_search_password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_base_dn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_scope: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_connection_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_verify_cert: Option<bool>,
    /// Berth: StartTLS on an `ldap://` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_starttls: Option<bool>,
    /// Berth: PEM CA certificates to trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_ca_cert: Option<String>,
}

/// Harbor's `LdapPingResult`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LdapPingResult {
    pub success: bool,
    pub message: String,
}

/// Harbor's `LdapUser` (`GET /ldap/users/search`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LdapUser {
    pub username: String,
    pub realname: String,
    pub email: String,
}

/// Harbor's `LdapImportUsers` (`POST /ldap/users/import`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LdapImportUsers {
    pub ldap_uid_list: Vec<String>,
}

/// Harbor's `LdapFailedImportUser` (the 404 body of an import that failed for some).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LdapFailedImportUser {
    pub uid: String,
    pub error: String,
}

//! Users, the current user and permissions.

use serde::{Deserialize, Serialize};

/// Harbor's `UserResp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserResp {
    pub user_id: i64,
    pub username: String,
    pub email: String,
    pub realname: String,
    pub comment: String,
    pub sysadmin_flag: bool,
    pub admin_role_in_auth: bool,
    /// Only for OIDC users, and with the CLI secret only for the user itself (or a system
    /// admin): omitted otherwise, as Harbor omits it, never `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc_user_meta: Option<OidcUserMeta>,
    pub creation_time: String,
    pub update_time: String,
}

/// Harbor's `OIDCUserInfo`: the provider identity of an OIDC user and its CLI secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OidcUserMeta {
    pub id: i64,
    pub user_id: i64,
    /// The provider's subject and issuer.
    pub subiss: String,
    /// The CLI secret (what `docker login` takes as the password); empty when not shown.
    pub secret: String,
    pub creation_time: String,
    pub update_time: String,
}

/// `PUT /users/{user_id}/cli_secret` (Harbor's `OIDCCliSecretReq`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OidcCliSecretReq {
    pub secret: String,
}

/// A search hit: id and name only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserSearchResp {
    pub user_id: i64,
    pub username: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PasswordReq {
    #[serde(default)]
    pub old_password: Option<String>,
    pub new_password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserCreationReq {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub realname: String,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub sysadmin_flag: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserProfile {
    pub email: Option<String>,
    pub realname: Option<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SysadminReq {
    pub sysadmin_flag: bool,
}

// One `resource` + `action` the current user holds (`/users/current/permissions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Permission {
    pub resource: String,
    pub action: String,
}

//! Robot accounts.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AccessResp {
    pub resource: String,
    pub action: String,
    pub effect: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RobotPermissionResp {
    pub kind: String,
    /// A project name, or `*` for every project.
    pub namespace: String,
    pub access: Vec<AccessResp>,
}

/// Harbor's `Robot` (never with the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RobotResp {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// `system` or `project`.
    pub level: String,
    pub duration: i64,
    pub editable: bool,
    pub disable: bool,
    /// Unix seconds; -1 never.
    pub expires_at: i64,
    pub creator: String,
    /// Harbor's `creator_type`: `local` (a user) or `robot`.
    pub creator_type: String,
    /// Harbor's `creator_ref`: the creating user's or robot's id (0 when it no longer exists).
    pub creator_ref: i64,
    pub creation_time: String,
    pub update_time: String,
    pub permissions: Vec<RobotPermissionResp>,
}

/// Harbor's `RobotCreated`: the only answer that carries the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RobotCreated {
    pub id: i64,
    pub name: String,
    pub secret: String,
    pub creation_time: String,
    pub expires_at: i64,
}

/// The new secret from `PATCH` (absent when the caller chose it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RobotSec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AccessReq {
    pub resource: String,
    pub action: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PermissionReq {
    #[serde(default)]
    pub kind: Option<String>,
    pub namespace: String,
    pub access: Vec<AccessReq>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RobotCreate {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub duration: Option<i64>,
    pub level: String,
    #[serde(default)]
    pub disable: bool,
    pub permissions: Vec<PermissionReq>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RobotPut {
    pub description: Option<String>,
    pub duration: Option<i64>,
    pub disable: Option<bool>,
    pub permissions: Option<Vec<PermissionReq>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SecretReq {
    pub secret: Option<String>,
}

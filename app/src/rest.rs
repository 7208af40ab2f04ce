//! The REST API's JSON (Harbor's shapes), as the portal reads it through `server_fns::api`.
//! Only the fields the pages show; times are RFC 3339 strings (see `components::format`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProjectMetadata {
    pub public: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Project {
    pub project_id: i64,
    pub name: String,
    pub owner_name: String,
    pub creation_time: String,
    pub repo_count: i64,
    /// 1 project admin, 2 developer, 3 guest, 4 maintainer, 5 limited guest, 0 none.
    pub current_user_role_id: i64,
    pub metadata: ProjectMetadata,
}

impl Project {
    pub fn public(&self) -> bool {
        self.metadata.public.as_deref() == Some("true")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Quota {
    pub used: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProjectSummary {
    pub quota: Quota,
    pub repo_count: i64,
    pub project_admin_count: i64,
    pub maintainer_count: i64,
    pub developer_count: i64,
    pub guest_count: i64,
    pub limited_guest_count: i64,
}

impl ProjectSummary {
    pub fn storage(&self) -> i64 {
        self.quota.used.get("storage").and_then(|v| v.as_i64()).unwrap_or(0)
    }
}

/// One `resource` + `action` the current user holds (`/users/current/permissions`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Permission {
    pub resource: String,
    pub action: String,
}

/// What the current user may do in a project.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Perms(pub Vec<Permission>);

impl Perms {
    pub fn can(&self, resource: &str, action: &str) -> bool {
        self.0.iter().any(|p| p.resource == resource && p.action == action)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Member {
    pub id: i64,
    pub entity_name: String,
    pub entity_type: String,
    pub role_id: i64,
    pub role_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Access {
    pub resource: String,
    pub action: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RobotPermission {
    pub namespace: String,
    pub access: Vec<Access>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Robot {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub duration: i64,
    pub disable: bool,
    /// Unix seconds; -1 never.
    pub expires_at: i64,
    pub creator: String,
    pub creation_time: String,
    pub permissions: Vec<RobotPermission>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RobotCreated {
    pub id: i64,
    pub name: String,
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditLog {
    pub id: i64,
    pub username: String,
    pub resource: String,
    pub resource_type: String,
    pub operation: String,
    pub op_time: String,
    pub success: bool,
    pub client_ip: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    pub user_id: i64,
    pub username: String,
    pub email: String,
    pub realname: String,
    pub comment: String,
    pub sysadmin_flag: bool,
    pub creation_time: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Tag {
    pub name: String,
    pub push_time: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Reference {
    pub child_digest: String,
    pub platform: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Accessory {
    pub digest: String,
    pub size: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub artifact_type: String,
    pub creation_time: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Artifact {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub media_type: String,
    pub artifact_type: String,
    pub repository_name: String,
    pub digest: String,
    pub size: i64,
    pub push_time: String,
    pub pull_time: Option<String>,
    pub pull_count: i64,
    pub tags: Option<Vec<Tag>>,
    pub references: Vec<Reference>,
    pub accessories: Option<Vec<Accessory>>,
}

/// A `{"value": …, "editable": …}` item of `GET /configurations`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigItem<T> {
    pub value: T,
    pub editable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Configurations {
    pub auth_mode: ConfigItem<String>,
    pub project_creation_restriction: ConfigItem<String>,
    pub self_registration: ConfigItem<bool>,
    pub token_expiration: ConfigItem<i64>,
    pub robot_token_duration: ConfigItem<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SystemInfo {
    pub harbor_version: String,
    pub auth_mode: String,
    pub self_registration: bool,
    pub external_url: String,
    pub registry_url: String,
    pub project_creation_restriction: String,
    pub registry_storage_provider_name: String,
    pub database_type: String,
    pub session_store: String,
    pub read_only: bool,
}

/// A role's id and its English name (Harbor's ids).
pub const ROLES: [(i64, &str); 5] =
    [(1, "Project Admin"), (4, "Maintainer"), (2, "Developer"), (3, "Guest"), (5, "Limited Guest")];

pub fn role_name(id: i64) -> &'static str {
    ROLES.iter().find(|(r, _)| *r == id).map(|(_, n)| *n).unwrap_or("No role")
}

//! The REST API's JSON (`/api/v2.0`, Harbor's shapes), defined once: the server's handlers
//! return these types (and `server/src/api/*` re-exports them for its `#[utoipa::path]`
//! declarations), and the portal reads the same types through `server_fns::api`. No field has
//! a `serde(default)` the API does not have, so a renamed field is a compile error in the
//! portal, not an empty value. Times are RFC 3339 strings (see `components::format`).
//!
//! Under the `ssr` feature every type derives `utoipa::ToSchema`; the OpenAPI snapshot test
//! (`server/tests/it/openapi.rs`) pins their schemas.

pub mod artifacts;
pub mod gc;
pub mod immutable;
pub mod jobservice;
pub mod labels;
pub mod projects;
pub mod purge;
pub mod quotas;
pub mod registries;
pub mod replication;
pub mod retention;
pub mod robots;
pub mod system;
pub mod usergroups;
pub mod users;
pub mod webhook;

pub use artifacts::{Accessory, Artifact, Reference, Repository, Tag};
pub use gc::{GcHistory, GcUsage, ProjectUsage};
pub use immutable::{ImmutableRule, ImmutableSelector};
pub use labels::Label;
pub use projects::{ProjectMember, ProjectMetadata, ProjectResp, ProjectSummary};
pub use registries::{Registry, RegistryInfo};
pub use robots::{RobotCreated, RobotResp};
pub use system::{AuditLogResp, ConfigItem, Configurations, SystemInfo};
pub use usergroups::{UserGroup, UserGroupSearchItem};
pub use users::{OidcUserMeta, Permission, UserResp};

/// What the current user may do in a project (`/users/current/permissions`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Perms(pub Vec<Permission>);

impl Perms {
    pub fn can(&self, resource: &str, action: &str) -> bool {
        self.0.iter().any(|p| p.resource == resource && p.action == action)
    }
}

/// A role's id and its English name (Harbor's ids).
pub const ROLES: [(i64, &str); 5] =
    [(1, "Project Admin"), (4, "Maintainer"), (2, "Developer"), (3, "Guest"), (5, "Limited Guest")];

pub fn role_name(id: i64) -> &'static str {
    ROLES.iter().find(|(r, _)| *r == id).map(|(_, n)| *n).unwrap_or("No role")
}

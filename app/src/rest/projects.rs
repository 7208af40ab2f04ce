//! Projects, members and project summaries.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Harbor's `ProjectMetadata`: every key is a string, as Harbor spells it (`"true"`,
/// `"false"`, a severity). `public` is enforced; the others are kept and returned (this release
/// has no scanner or content trust to apply them). Keys Harbor has for proxy-cache projects are
/// ignored on create/update (unknown fields are, as in Harbor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProjectMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_content_trust: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_content_trust_cosign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prevent_vul: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scan: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_sbom_generation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse_sys_cve_allowlist: Option<String>,
    /// The project's tag retention policy (`/retentions/{id}`); set by creating the policy,
    /// not by project updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_id: Option<String>,
}

impl ProjectMetadata {
    /// The value of `key`, or `None` for a key Harbor does not have.
    pub fn slot(&mut self, key: &str) -> Option<&mut Option<String>> {
        Some(match key {
            "public" => &mut self.public,
            "enable_content_trust" => &mut self.enable_content_trust,
            "enable_content_trust_cosign" => &mut self.enable_content_trust_cosign,
            "prevent_vul" => &mut self.prevent_vul,
            "severity" => &mut self.severity,
            "auto_scan" => &mut self.auto_scan,
            "auto_sbom_generation" => &mut self.auto_sbom_generation,
            "reuse_sys_cve_allowlist" => &mut self.reuse_sys_cve_allowlist,
            _ => return None,
        })
    }

    /// A project's metadata: `public` and what is stored.
    pub fn of(public: bool, stored: Option<&BTreeMap<String, String>>) -> ProjectMetadata {
        let mut m = ProjectMetadata { public: Some(public.to_string()), ..Default::default() };
        for (k, v) in stored.into_iter().flatten() {
            if let Some(slot) = m.slot(k) {
                *slot = Some(v.clone());
            } else if k == "retention_id" {
                m.retention_id = Some(v.clone());
            }
        }
        m
    }
}

/// Harbor's `Project`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProjectResp {
    pub project_id: i64,
    pub name: String,
    pub owner_id: i64,
    pub owner_name: String,
    pub creation_time: String,
    pub update_time: String,
    pub deleted: bool,
    pub repo_count: i64,
    /// The caller's role (0: none).
    pub current_user_role_id: i64,
    pub current_user_role_ids: Vec<i64>,
    pub metadata: ProjectMetadata,
    /// Bytes of the distinct blobs and manifests the project's artifacts use (the project
    /// summary's `quota.used.storage`); in `GET /projects` lists only, one query per page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_used: Option<i64>,
    /// The upstream registry endpoint of a proxy-cache project (Harbor's `registry_id`);
    /// absent for a normal project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<i64>,
}

impl ProjectResp {
    pub fn public(&self) -> bool {
        self.metadata.public.as_deref() == Some("true")
    }
}

/// Harbor's `ProjectReq` (other fields Harbor clients send are accepted and ignored).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProjectReq {
    pub project_name: Option<String>,
    pub public: Option<bool>,
    pub metadata: Option<ProjectMetadata>,
    /// On create: makes the project a proxy cache of this registry endpoint (system admins
    /// only; 0 or absent: a normal project). It cannot change afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<i64>,
    /// On create: the project's storage quota in bytes (-1: unlimited). Applied only for
    /// system admins; absent, 0 or sent by anyone else: the `storage_per_project` setting
    /// (Harbor's rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_limit: Option<i64>,
}

/// Harbor's `ProjectMemberEntity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProjectMember {
    pub id: i64,
    pub project_id: i64,
    pub entity_name: String,
    pub entity_id: i64,
    /// `u` (user) or `g` (group).
    pub entity_type: String,
    pub role_id: i64,
    pub role_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MemberUser {
    pub user_id: Option<i64>,
    pub username: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MemberReq {
    pub role_id: i64,
    pub member_user: Option<MemberUser>,
    /// A group by `id`, or an LDAP group by `ldap_group_dn` (created when missing, as Harbor
    /// onboards it).
    pub member_group: Option<crate::rest::usergroups::UserGroup>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RoleReq {
    pub role_id: i64,
}

/// Bytes of one kind of resource (`storage`; Harbor's `ResourceList`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ssr", schema(as = ResourceList))]
pub struct ResourceAmount {
    pub storage: i64,
}

/// A project's quota: `hard` (-1: none) and `used`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub hard: ResourceAmount,
    pub used: ResourceAmount,
}

/// Harbor's `ProjectSummary`. `quota.used.storage` is the bytes charged to the project (each
/// blob once per project); `quota.hard.storage` its limit (-1: unlimited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProjectSummary {
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub quota: Quota,
    pub repo_count: i64,
    pub project_admin_count: i64,
    pub maintainer_count: i64,
    pub developer_count: i64,
    pub guest_count: i64,
    pub limited_guest_count: i64,
}

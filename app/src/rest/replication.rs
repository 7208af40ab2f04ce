//! Replication (`/replication/policies`, `/replication/executions`): rules, their runs and the
//! runs' tasks, in Harbor's shapes (`ReplicationPolicy`, `ReplicationTrigger`,
//! `ReplicationFilter`, `ReplicationExecution`, `ReplicationTask`, `StartReplicationExecution`).
//!
//! A policy's source and destination are Harbor's `Registry` (`rest::registries`, the secret
//! masked); on input only `id` is read, and id 0 is this product's own registry ("Local"), as
//! in Harbor.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::registries::Registry;

/// `ReplicationTriggerSettings`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TriggerSettings {
    /// The cron of a `scheduled` trigger (6 fields, seconds first and `0`).
    #[serde(default)]
    pub cron: String,
}

/// `ReplicationTrigger`: `manual`, `scheduled` (with a cron) or `event_based`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReplicationTrigger {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_settings: Option<TriggerSettings>,
}

/// `ReplicationFilter`: `name` and `tag` take a doublestar pattern, `resource` `image` or
/// `artifact`, `label` a list of label names; `decoration` (`matches`, the default, or
/// `excludes`) applies to `tag` and `label`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReplicationFilter {
    #[serde(rename = "type", default)]
    pub kind: String,
    /// A string, or for `label` an array of strings.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub value: Value,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub decoration: String,
}

/// `ReplicationPolicy`. Exactly one of `src_registry` (pull-based: remote → here) and
/// `dest_registry` (push-based: here → remote) names a stored registry; in responses the other
/// one is this product (`id` 0).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReplicationPolicy {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub src_registry: Option<Registry>,
    #[serde(default)]
    pub dest_registry: Option<Registry>,
    /// Where the copies go (empty: the source's own namespace).
    #[serde(default)]
    pub dest_namespace: String,
    /// Path components of the source replaced by `dest_namespace`; -1 (default): all but the
    /// repository's last component (Harbor's legacy flattening).
    #[serde(default)]
    pub dest_namespace_replace_count: Option<i64>,
    #[serde(default)]
    pub trigger: Option<ReplicationTrigger>,
    #[serde(default)]
    pub filters: Vec<ReplicationFilter>,
    /// Also delete on the destination what is deleted here (event-based push policies).
    #[serde(default)]
    pub replicate_deletion: bool,
    /// Deprecated spelling of `replicate_deletion` (Harbor keeps both).
    #[serde(default)]
    pub deletion: bool,
    /// Replace a destination tag that points at another digest.
    #[serde(rename = "override", default)]
    pub override_existing: bool,
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
    /// Bandwidth limit of each task in KiB/s; -1 or 0: unlimited.
    #[serde(default)]
    pub speed: Option<i64>,
    #[serde(default)]
    pub copy_by_chunk: Option<bool>,
    /// Skip a run while the previous one is still running (default on, except for event-based
    /// policies, where Harbor refuses it).
    #[serde(default)]
    pub single_active_replication: Option<bool>,
}

/// `ReplicationExecution`: one run of a policy with its task counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReplicationExecution {
    pub id: i64,
    pub policy_id: i64,
    /// `Pending`, `InProgress`, `Succeed`, `Failed` or `Stopped`.
    pub status: String,
    /// `manual`, `scheduled` or `event_based`.
    pub trigger: String,
    pub start_time: String,
    /// Harbor's zero time while the run is not over.
    pub end_time: String,
    pub status_text: String,
    pub total: i64,
    pub failed: i64,
    pub succeed: i64,
    pub in_progress: i64,
    pub stopped: i64,
}

/// `StartReplicationExecution`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StartReplicationExecution {
    #[serde(default)]
    pub policy_id: i64,
}

/// `ReplicationTask`: one artifact copied (or deleted) by a run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReplicationTask {
    pub id: i64,
    pub execution_id: i64,
    /// `Pending`, `InProgress`, `Succeed`, `Failed` or `Stopped`.
    pub status: String,
    /// The id of the job running the task (a string, as in Harbor).
    pub job_id: String,
    /// `copy` or `deletion`.
    pub operation: String,
    /// `image` or `artifact`.
    pub resource_type: String,
    /// `repository:tag` or `repository@digest`.
    pub src_resource: String,
    pub dst_resource: String,
    pub start_time: String,
    pub end_time: String,
}

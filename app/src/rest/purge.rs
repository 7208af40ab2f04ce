//! Audit log purge (`/system/purgeaudit`, Harbor's `purge` operations): runs, one run, its log,
//! stop, and the schedule. A run's history entry is `gc::GcHistory` (Harbor's `ExecHistory`
//! has the same shape), with `job_name` `PURGE_AUDIT`.

use serde::{Deserialize, Serialize};

use super::gc::ScheduleObj;

/// Parameters of a run (Harbor's `job_parameters`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PurgeParams {
    /// Rows older than this many hours are purged (Harbor caps it at 240000).
    #[serde(default)]
    pub audit_retention_hour: i64,
    /// Which rows, comma separated: an operation (`pull`, `create`, `delete`, `update`,
    /// `login`, …) or an operation and a resource type (`pull_artifact`, `create_artifact`,
    /// `delete_artifact`, …). Empty: nothing is purged (Harbor's rule).
    #[serde(default)]
    pub include_event_types: String,
    /// Count what would be purged without deleting.
    #[serde(default)]
    pub dry_run: bool,
}

/// The request body of `POST/PUT /system/purgeaudit/schedule`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PurgeScheduleReq {
    pub schedule: Option<ScheduleObj>,
    #[serde(default)]
    pub parameters: Option<PurgeParams>,
}

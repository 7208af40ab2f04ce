//! Garbage collection (`/system/gc`): runs, the schedule, and storage usage.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Parameters of a run (Harbor's `job_parameters`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GcParams {
    /// Report what would be deleted without deleting anything.
    #[serde(default)]
    pub dry_run: bool,
    /// Also delete artifacts without tags (not index children, not accessories).
    #[serde(default)]
    pub delete_untagged: bool,
    /// Storage deletions in flight (default `gc.workers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
}

/// Harbor's `ScheduleObj`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ScheduleObj {
    /// `Hourly`, `Daily`, `Weekly`, `Custom`, `Manual` or `None`.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cron: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_scheduled_time: Option<String>,
}

/// Harbor's `Schedule` (the request body of `POST/PUT /system/gc/schedule`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ScheduleReq {
    pub schedule: Option<ScheduleObj>,
    #[serde(default)]
    pub parameters: Option<GcParams>,
}

/// `GET /system/gc/schedule`: the schedule (type `None` and nothing else when there is none).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GcSchedule {
    pub schedule: ScheduleObj,
    /// The parameters of scheduled runs as a JSON string (Harbor's form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_parameters: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
}

impl GcSchedule {
    /// The parameters scheduled runs use.
    pub fn params(&self) -> GcParams {
        self.job_parameters.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default()
    }
}

/// Harbor's `GCHistory`, plus live `progress` and the run's `result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GcHistory {
    pub id: i64,
    pub job_name: String,
    /// `MANUAL`, `SCHEDULE` or `CLI`.
    pub job_kind: String,
    /// The run's parameters as a JSON string (Harbor's form).
    pub job_parameters: String,
    pub schedule: Option<ScheduleObj>,
    /// `Pending`, `Running`, `Success`, `Error` or `Stopped`.
    pub job_status: String,
    pub deleted: bool,
    pub creation_time: String,
    pub update_time: String,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    /// Phase, counts done and total, and what was freed so far.
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub progress: Value,
    /// The report of a finished run (`GcReport`).
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub result: Value,
    pub error: String,
    pub created_by: String,
}

impl GcHistory {
    /// Pending or running.
    pub fn active(&self) -> bool {
        self.job_status == "Pending" || self.job_status == "Running"
    }

    pub fn params(&self) -> GcParams {
        serde_json::from_str(&self.job_parameters).unwrap_or_default()
    }

    /// `uploads`, `mark`, `artifacts`, `sweep`, `done` or `stopped` (empty before the start).
    pub fn phase(&self) -> &str {
        self.progress.get("phase").and_then(Value::as_str).unwrap_or("")
    }

    /// A progress counter (`done`, `total`).
    pub fn progress_count(&self, key: &str) -> u64 {
        self.progress.get(key).and_then(Value::as_u64).unwrap_or(0)
    }

    /// What the run freed (or, dry, would free): `blobs`, `manifests`, `artifacts`, `uploads`,
    /// `bytes`: a finished run's from its result, a live one's from its progress.
    pub fn freed(&self, key: &str) -> u64 {
        let n = if self.result.get("bytes").is_some() { &self.result } else { &self.progress };
        n.get(key).and_then(Value::as_u64).unwrap_or(0)
    }
}

/// Bytes one project's artifacts use (each blob once per project).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProjectUsage {
    pub project_id: i64,
    pub project_name: String,
    pub storage: i64,
}

/// `GET /system/gc/usage`: what the blob store holds, for the garbage collection page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GcUsage {
    /// Bytes of every stored blob and manifest (referenced or awaiting GC).
    pub total_storage: i64,
    /// The projects using the most, largest first (at most 20; none that use nothing).
    pub projects: Vec<ProjectUsage>,
}

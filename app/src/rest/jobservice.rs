//! The job service dashboard (`/jobservice/*`, `/schedules`), Harbor's shapes: each replica's
//! job runner is a worker pool, its slots are workers, and each job type is a queue.

use serde::{Deserialize, Serialize};

/// One replica's job runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WorkerPool {
    pub pid: i64,
    /// The runner's name (`host:pid:random`), as in the jobs' `worker`.
    pub worker_pool_id: String,
    pub start_at: String,
    pub heartbeat_at: String,
    /// Jobs it runs at once (one ordinary job, `replication.workers` pooled ones and
    /// `webhook.workers` webhook deliveries).
    pub concurrency: i64,
    pub host: String,
}

/// A slot of a pool: the job it runs, or idle (empty `job_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Worker {
    pub id: String,
    pub pool_id: String,
    pub job_name: String,
    pub job_id: String,
    pub start_at: Option<String>,
    /// The job's last progress (JSON).
    pub check_in: String,
    pub checkin_at: Option<String>,
}

/// A job type's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobQueue {
    pub job_type: String,
    /// Pending jobs.
    pub count: i64,
    /// Seconds the oldest due pending job has waited.
    pub latency: i64,
    pub paused: bool,
}

/// `PUT /jobservice/queues/{job_type}`: `stop` (stop and clean the pending jobs), `pause`,
/// `resume`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ActionRequest {
    #[serde(default)]
    pub action: String,
}

/// A schedule (`GET /schedules`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ScheduleTask {
    /// The position in the list (schedules are named by type and vendor, not numbered).
    pub id: i64,
    /// `GARBAGE_COLLECTION`, `PURGE_AUDIT`, `REPLICATION`, `RETENTION`.
    pub vendor_type: String,
    /// The policy's id (replication, retention), else 0.
    pub vendor_id: i64,
    pub cron: String,
    pub update_time: String,
}

/// `GET /schedules/all/paused`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SchedulerStatus {
    pub paused: bool,
}

//! Garbage collection (Administration): the overview the page shows, and its three forms (run,
//! stop, schedule). The forms are server functions only so that they work as plain HTML form
//! posts without JavaScript (`ActionForm`); each turns its fields into one REST call through
//! the relay (`api`), so RBAC, validation and audit rows are the API's.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::PortalError;
use crate::rest::gc::{GcHistory, GcSchedule, GcUsage};
#[cfg(feature = "ssr")]
use crate::rest::gc::{GcParams, ScheduleObj, ScheduleReq};
use crate::server_fns::api;

/// Runs shown in the history.
pub const HISTORY: u64 = 20;

/// What the garbage collection page shows: recent runs (newest first), the schedule, usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GcOverview {
    pub runs: Vec<GcHistory>,
    pub schedule: GcSchedule,
    pub usage: GcUsage,
}

impl GcOverview {
    /// A run is pending or running.
    pub fn busy(&self) -> bool {
        self.runs.iter().any(GcHistory::active)
    }
}

/// `GET /system/gc`, `/system/gc/schedule` and `/system/gc/usage`.
pub async fn gc_overview() -> Result<GcOverview, PortalError> {
    let runs = api::list::<GcHistory>(format!("/system/gc?page=1&page_size={HISTORY}")).await?.items;
    let schedule = api::get::<GcSchedule>("/system/gc/schedule".into()).await?;
    let usage = api::get::<GcUsage>("/system/gc/usage".into()).await?;
    Ok(GcOverview { runs, schedule, usage })
}

/// Runs now (`POST /system/gc/schedule` with type `Manual`). Checkboxes post "on" when ticked
/// and nothing otherwise.
#[server(prefix = "/portal/fn", endpoint = "start_gc")]
pub async fn start_gc(dry_run: Option<String>, delete_untagged: Option<String>) -> Result<(), PortalError> {
    let req = ScheduleReq {
        schedule: Some(ScheduleObj { kind: "Manual".into(), ..Default::default() }),
        parameters: Some(GcParams {
            dry_run: dry_run.is_some(),
            delete_untagged: delete_untagged.is_some(),
            workers: None,
        }),
    };
    api::send("POST", "/system/gc/schedule".into(), Some(api::body(&req))).await.map(|_| ())
}

/// Stops a pending or running run (`PUT /system/gc/{id}`).
#[server(prefix = "/portal/fn", endpoint = "stop_gc")]
pub async fn stop_gc(id: i64) -> Result<(), PortalError> {
    api::send("PUT", format!("/system/gc/{id}"), None).await.map(|_| ())
}

/// Sets the schedule (`PUT /system/gc/schedule`): `None`, `Hourly`, `Daily`, `Weekly` or
/// `Custom` with `cron`.
#[server(prefix = "/portal/fn", endpoint = "schedule_gc")]
pub async fn schedule_gc(
    kind: String,
    cron: Option<String>,
    delete_untagged: Option<String>,
) -> Result<(), PortalError> {
    if kind == "Manual" {
        return Err(PortalError::Invalid("use Run garbage collection to run now".into()));
    }
    let req = ScheduleReq {
        schedule: Some(ScheduleObj { kind, cron: cron.unwrap_or_default(), next_scheduled_time: None }),
        parameters: Some(GcParams {
            dry_run: false,
            delete_untagged: delete_untagged.is_some(),
            workers: None,
        }),
    };
    api::send("PUT", "/system/gc/schedule".into(), Some(api::body(&req))).await.map(|_| ())
}

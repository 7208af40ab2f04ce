//! Garbage collection (Administration): overview, run, stop, schedule.

use leptos::prelude::*;

use crate::error::PortalError;
use crate::model::GcOverview;

#[server(prefix = "/portal/fn", endpoint = "gc_status")]
pub async fn gc_status() -> Result<GcOverview, PortalError> {
    crate::backend::backend()?.gc_overview().await
}

/// Checkboxes post "on" when ticked and nothing otherwise.
#[server(prefix = "/portal/fn", endpoint = "start_gc")]
pub async fn start_gc(dry_run: Option<String>, delete_untagged: Option<String>) -> Result<i64, PortalError> {
    crate::backend::backend()?.gc_start(dry_run.is_some(), delete_untagged.is_some()).await
}

#[server(prefix = "/portal/fn", endpoint = "stop_gc")]
pub async fn stop_gc(id: i64) -> Result<(), PortalError> {
    crate::backend::backend()?.gc_stop(id).await
}

#[server(prefix = "/portal/fn", endpoint = "schedule_gc")]
pub async fn schedule_gc(
    kind: String,
    cron: Option<String>,
    delete_untagged: Option<String>,
) -> Result<(), PortalError> {
    crate::backend::backend()?.gc_schedule(kind, cron.unwrap_or_default(), delete_untagged.is_some()).await
}

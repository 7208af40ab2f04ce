//! Audit log purge (Administration → Clean Up → Log Rotation): the overview the page shows and
//! its three forms (purge now, stop, schedule). Like `server_fns::gc`, the forms are server
//! functions only so that they work as plain HTML form posts without JavaScript; each turns its
//! fields into one REST call through the relay (`api`), so RBAC, validation and audit rows are
//! the API's.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::PortalError;
use crate::rest::gc::{GcHistory, GcSchedule};
use crate::rest::purge::PurgeParams;
#[cfg(feature = "ssr")]
use crate::rest::{gc::ScheduleObj, purge::PurgeScheduleReq};
use crate::server_fns::api;

/// Runs shown in the history.
pub const HISTORY: u64 = 20;

/// The operations the page offers to purge (the audit log's operations, `pages::project::OPERATIONS`).
pub const PURGE_OPERATIONS: [&str; 7] = ["create", "update", "delete", "push", "pull", "login", "stop"];

/// What the page proposes when nothing is scheduled (Harbor's defaults): 30 days, and the
/// operations Harbor's page ticks.
pub const DEFAULT_OPERATIONS: [&str; 3] = ["create", "delete", "pull"];
pub const DEFAULT_HOURS: i64 = 30 * 24;

/// Harbor's limit on the retention in days (and `10000 × 24` hours).
pub const MAX_DAYS: i64 = 10_000;

/// Whether a run is pending or running.
pub fn busy(runs: &[GcHistory]) -> bool {
    runs.iter().any(GcHistory::active)
}

/// The parameters of scheduled runs (Harbor's defaults when there is no schedule).
pub fn schedule_params(schedule: &GcSchedule) -> PurgeParams {
    let p: Option<PurgeParams> =
        schedule.job_parameters.as_deref().and_then(|p| serde_json::from_str(p).ok());
    p.unwrap_or_else(|| PurgeParams {
        audit_retention_hour: DEFAULT_HOURS,
        include_event_types: DEFAULT_OPERATIONS.join(","),
        dry_run: false,
    })
}

/// `GET /system/purgeaudit`: the recent runs, newest first.
pub async fn purge_runs() -> Result<Vec<GcHistory>, PortalError> {
    Ok(api::list::<GcHistory>(format!("/system/purgeaudit?page=1&page_size={HISTORY}")).await?.items)
}

/// `GET /system/purgeaudit/schedule`.
pub async fn purge_schedule() -> Result<GcSchedule, PortalError> {
    api::get::<GcSchedule>("/system/purgeaudit/schedule".into()).await
}

/// A retention in hours as the form shows it: a number of days when whole days (and more than
/// one), else hours (Harbor's page does the same).
pub fn split_hours(hours: i64) -> (i64, &'static str) {
    if hours > 24 && hours % 24 == 0 {
        (hours / 24, "days")
    } else {
        (hours, "hours")
    }
}

/// The checkbox fields of the operations, in `PURGE_OPERATIONS` order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationFields {
    #[serde(default)]
    pub op_create: Option<String>,
    #[serde(default)]
    pub op_update: Option<String>,
    #[serde(default)]
    pub op_delete: Option<String>,
    #[serde(default)]
    pub op_push: Option<String>,
    #[serde(default)]
    pub op_pull: Option<String>,
    #[serde(default)]
    pub op_login: Option<String>,
    #[serde(default)]
    pub op_stop: Option<String>,
}

impl OperationFields {
    /// The ticked operations, comma separated (`include_event_types`).
    pub fn joined(&self) -> String {
        let ticked = [
            &self.op_create,
            &self.op_update,
            &self.op_delete,
            &self.op_push,
            &self.op_pull,
            &self.op_login,
            &self.op_stop,
        ];
        PURGE_OPERATIONS
            .iter()
            .zip(ticked)
            .filter(|(_, v)| v.is_some())
            .map(|(op, _)| *op)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The parameters of a run from the form's fields: `retention` a whole number of `unit`
/// (`hours` or `days`), at least one operation. The errors are texts of the i18n table (the
/// page shows them translated).
pub fn purge_params(
    retention: &str,
    unit: &str,
    ops: &OperationFields,
    dry_run: bool,
) -> Result<PurgeParams, PortalError> {
    use crate::i18n::t;
    let n: i64 = retention.trim().parse().unwrap_or(0);
    let hours = match unit {
        "days" if (1..=MAX_DAYS).contains(&n) => n * 24,
        "hours" if (1..=MAX_DAYS * 24).contains(&n) => n,
        _ => {
            return Err(PortalError::Invalid(
                t("Keep records in: a whole number greater than 0 and at most 10000 days.").into(),
            ))
        }
    };
    let include_event_types = ops.joined();
    if include_event_types.is_empty() {
        return Err(PortalError::Invalid(t("Select at least one operation.").into()));
    }
    Ok(PurgeParams { audit_retention_hour: hours, include_event_types, dry_run })
}

/// Purges now (`POST /system/purgeaudit/schedule` with type `Manual`).
#[server(prefix = "/portal/fn", endpoint = "start_purge")]
pub async fn start_purge(
    retention: String,
    unit: String,
    #[server(flatten)] ops: OperationFields,
    dry_run: Option<String>,
) -> Result<(), PortalError> {
    let req = PurgeScheduleReq {
        schedule: Some(ScheduleObj { kind: "Manual".into(), ..Default::default() }),
        parameters: Some(purge_params(&retention, &unit, &ops, dry_run.is_some())?),
    };
    api::send("POST", "/system/purgeaudit/schedule".into(), Some(api::body(&req))).await.map(|_| ())
}

/// Stops a pending or running purge (`PUT /system/purgeaudit/{id}`).
#[server(prefix = "/portal/fn", endpoint = "stop_purge")]
pub async fn stop_purge(id: i64) -> Result<(), PortalError> {
    api::send("PUT", format!("/system/purgeaudit/{id}"), None).await.map(|_| ())
}

/// Sets the schedule (`PUT /system/purgeaudit/schedule`): `None`, `Hourly`, `Daily`, `Weekly`
/// or `Custom` with `cron`, and what scheduled runs purge.
#[server(prefix = "/portal/fn", endpoint = "schedule_purge")]
pub async fn schedule_purge(
    kind: String,
    cron: Option<String>,
    retention: String,
    unit: String,
    #[server(flatten)] ops: OperationFields,
) -> Result<(), PortalError> {
    if kind == "Manual" {
        return Err(PortalError::Invalid("use Purge now to run now".into()));
    }
    let req = PurgeScheduleReq {
        schedule: Some(ScheduleObj { kind, cron: cron.unwrap_or_default(), next_scheduled_time: None }),
        parameters: Some(purge_params(&retention, &unit, &ops, false)?),
    };
    api::send("PUT", "/system/purgeaudit/schedule".into(), Some(api::body(&req))).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_become_parameters() {
        let ops = OperationFields {
            op_pull: Some("on".into()),
            op_create: Some("on".into()),
            ..Default::default()
        };
        let p = purge_params("2", "days", &ops, true).unwrap();
        assert_eq!(
            p,
            PurgeParams {
                audit_retention_hour: 48,
                include_event_types: "create,pull".into(),
                dry_run: true
            }
        );
        assert_eq!(purge_params("5", "hours", &ops, false).unwrap().audit_retention_hour, 5);
        assert!(purge_params("0", "days", &ops, false).is_err());
        assert!(purge_params("10001", "days", &ops, false).is_err());
        assert!(purge_params("1.5", "hours", &ops, false).is_err());
        assert!(purge_params("3", "weeks", &ops, false).is_err());
        assert!(purge_params("3", "days", &OperationFields::default(), false).is_err());
        assert_eq!(split_hours(48), (2, "days"));
        assert_eq!(split_hours(24), (24, "hours"));
        assert_eq!(split_hours(5), (5, "hours"));
    }
}

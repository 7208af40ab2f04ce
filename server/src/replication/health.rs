//! The registries' `status`, kept current in the background (Harbor checks every endpoint's
//! health every 5 minutes; the portal and `GET /registries` show the last result).
//!
//! **One replica checks each endpoint per interval**: an endpoint is due when its
//! `status_checked_at` is older than `INTERVAL`, and a replica takes it by moving
//! `status_checked_at` forward with a compare-and-set; the others skip it. A check has a
//! deadline (`CHECK_TIMEOUT`) so one dead endpoint cannot hold the loop up. The check goes
//! through `AppState::replication` (the connector), so tests can drive it with a double.

use std::time::Duration;

use futures::StreamExt;

use super::endpoints::{self, HEALTHY, UNHEALTHY};
use crate::db::now_ms;
use crate::state::AppState;

/// How old a status may get before an endpoint is checked again.
pub const INTERVAL: Duration = Duration::from_secs(300);
/// How often each replica looks for due endpoints.
const POLL: Duration = Duration::from_secs(30);
/// The longest one check may take; beyond it the endpoint is unhealthy.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(20);
/// Endpoints checked at the same time.
const PARALLEL: usize = 8;
/// Endpoints checked per pass at most (the rest wait for the next pass).
const BATCH: i64 = 50;

/// Checks the endpoints that are due; returns how many this replica checked.
pub async fn check_due(state: &AppState, interval: Duration) -> Result<usize, sqlx::Error> {
    let now = now_ms();
    let due_before = now - interval.as_millis() as i64;
    let due: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT id, status_checked_at FROM registries WHERE status_checked_at <= $1 ORDER BY status_checked_at, id \
         LIMIT $2",
    )
    .bind(due_before)
    .bind(BATCH)
    .fetch_all(&state.db.pool)
    .await?;
    // Several at once: one endpoint that does not answer must not hold up the others.
    let results: Vec<Result<bool, sqlx::Error>> = futures::stream::iter(due)
        .map(|(id, seen)| check_one(state, id, seen))
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let mut checked = 0;
    for r in results {
        checked += r? as usize;
    }
    Ok(checked)
}

/// Checks endpoint `id` when this replica wins it (its `status_checked_at` is still `seen`).
async fn check_one(state: &AppState, id: i64, seen: i64) -> Result<bool, sqlx::Error> {
    let taken =
        sqlx::query("UPDATE registries SET status_checked_at = $1 WHERE id = $2 AND status_checked_at = $3")
            .bind(now_ms())
            .bind(id)
            .bind(seen)
            .execute(&state.db.pool)
            .await?
            .rows_affected()
            == 1;
    if !taken {
        return Ok(false); // another replica has it
    }
    let result = match state.replication.adapter(state, id).await {
        Ok(adapter) => match tokio::time::timeout(CHECK_TIMEOUT, adapter.health()).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
        },
        Err(e) => Err(e.to_string()),
    };
    let status = if result.is_ok() { HEALTHY } else { UNHEALTHY };
    if let Err(why) = &result {
        tracing::info!(registry = id, error = %why, "registry endpoint unhealthy");
    }
    endpoints::set_status(&state.db, id, status).await?;
    Ok(true)
}

/// The background loop (supervised; `serve::start_loops`).
pub async fn run(state: AppState, beat: crate::supervisor::Beat) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match check_due(&state, INTERVAL).await {
            Ok(_) => beat.ok(),
            Err(e) => {
                beat.failed(&e);
                tracing::warn!(error = %e, "registry health check: database unavailable; will retry");
            }
        }
    }
}

//! The job service dashboard (`/jobservice/*`, `/schedules`; `api/jobservice.rs`): what each
//! replica's job runner is doing, the queue of each job type, pausing and cleaning queues.
//!
//! - **Pools**: every runner pass (`jobs::run_loop`, every ≤ 2 s) upserts its row in
//!   `job_pools`; a pool whose heartbeat is older than [`POOL_STALE_MS`] is gone (its jobs are
//!   taken back by `jobs::requeue_stale`). Rows older than a day are removed by the runner's
//!   housekeeping (`forget_pools`).
//! - **Workers** are a pool's slots: the running jobs whose `worker` is the pool, then idle
//!   slots up to its concurrency.
//! - **Queues** are job types; `pause` adds a row to `job_queues_paused` (`*` for all types),
//!   which `jobs::claim_of` skips (running jobs go on; schedules still queue, nothing starts);
//!   `resume` removes it; `stop` ends every pending job of the type as `stopped` (the records
//!   of runs — retention and replication executions — settle from their job's status).

use app::rest::jobservice::{JobQueue, ScheduleTask, Worker, WorkerPool};
use serde_json::Value;

use crate::db::{now_ms, rfc3339, Db};
use crate::state::AppState;

/// A pool silent this long is gone.
pub const POOL_STALE_MS: i64 = 30_000;
const POOL_FORGET_MS: i64 = 86_400_000;

/// The job types, in the order the dashboard lists them.
pub const JOB_TYPES: [&str; 6] = [
    "gc",
    crate::webhook::deliver::JOB,
    crate::purge::JOB,
    crate::retention::run::JOB,
    crate::replication::execution::EXECUTION_JOB,
    crate::replication::execution::TASK_JOB,
];

/// Records this replica's runner as alive.
pub async fn beat_pool(state: &AppState, worker: &str, started: i64) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let concurrency =
        1 + state.config.replication.workers.max(1) as i64 + state.config.webhook.workers.max(1) as i64;
    sqlx::query(
        "INSERT INTO job_pools (worker, pid, host, concurrency, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (worker) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, concurrency = excluded.concurrency",
    )
    .bind(worker)
    .bind(i64::from(std::process::id()))
    .bind(crate::jobs::hostname())
    .bind(concurrency)
    .bind(started)
    .bind(now)
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

/// Removes pools silent for a day (the runner's housekeeping).
pub async fn forget_pools(db: &Db) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM job_pools WHERE heartbeat_at < $1")
        .bind(now_ms() - POOL_FORGET_MS)
        .execute(&db.pool)
        .await?;
    Ok(())
}

type PoolRow = (String, i64, String, i64, i64, i64);

async fn live_pools(db: &Db) -> Result<Vec<PoolRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT worker, pid, host, concurrency, started_at, heartbeat_at FROM job_pools WHERE heartbeat_at >= $1 \
         ORDER BY started_at, worker",
    )
    .bind(now_ms() - POOL_STALE_MS)
    .fetch_all(&db.pool)
    .await
}

/// The live pools.
pub async fn pools(db: &Db) -> Result<Vec<WorkerPool>, sqlx::Error> {
    Ok(live_pools(db)
        .await?
        .into_iter()
        .map(|(worker, pid, host, concurrency, started, beat)| WorkerPool {
            pid,
            worker_pool_id: worker,
            start_at: rfc3339(started),
            heartbeat_at: rfc3339(beat),
            concurrency,
            host,
        })
        .collect())
}

/// The slots of one pool (`all`: of every live pool): running jobs first, then idle slots.
/// `None` for an unknown pool.
pub async fn workers(db: &Db, pool: &str) -> Result<Option<Vec<Worker>>, sqlx::Error> {
    let pools: Vec<PoolRow> =
        live_pools(db).await?.into_iter().filter(|p| pool == "all" || p.0 == pool).collect();
    if pools.is_empty() && pool != "all" {
        return Ok(None);
    }
    let mut out = vec![];
    for (worker, _, _, concurrency, _, _) in pools {
        let running: Vec<(i64, String, i64, i64, String)> = sqlx::query_as(
            "SELECT id, kind, started_at, heartbeat, progress FROM jobs WHERE status = 'running' AND worker = $1 ORDER BY id",
        )
        .bind(&worker)
        .fetch_all(&db.pool)
        .await?;
        let busy = running.len() as i64;
        for (i, (id, kind, started, beat, progress)) in running.into_iter().enumerate() {
            out.push(Worker {
                id: format!("{worker}#{i}"),
                pool_id: worker.clone(),
                job_name: kind,
                job_id: id.to_string(),
                start_at: (started > 0).then(|| rfc3339(started)),
                check_in: serde_json::from_str::<Value>(&progress).map(|v| v.to_string()).unwrap_or(progress),
                checkin_at: (beat > 0).then(|| rfc3339(beat)),
            });
        }
        for i in busy..concurrency.max(busy) {
            out.push(Worker {
                id: format!("{worker}#{i}"),
                pool_id: worker.clone(),
                job_name: String::new(),
                job_id: String::new(),
                start_at: None,
                check_in: String::new(),
                checkin_at: None,
            });
        }
    }
    Ok(Some(out))
}

async fn paused_kinds(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT kind FROM job_queues_paused").fetch_all(&db.pool).await
}

/// Whether every job type is paused (`PUT /jobservice/queues/all {pause}`).
pub async fn all_paused(db: &Db) -> Result<bool, sqlx::Error> {
    Ok(paused_kinds(db).await?.iter().any(|k| k == "*"))
}

/// Every job type's queue.
pub async fn queues(db: &Db) -> Result<Vec<JobQueue>, sqlx::Error> {
    let now = now_ms();
    let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT kind, COUNT(*), MIN(CASE WHEN run_at <= $1 THEN run_at END) FROM jobs WHERE status = 'pending' GROUP BY kind",
    )
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    let paused = paused_kinds(db).await?;
    let all = paused.iter().any(|k| k == "*");
    let mut kinds: Vec<String> = JOB_TYPES.iter().map(|k| k.to_string()).collect();
    kinds.extend(rows.iter().map(|r| r.0.clone()).filter(|k| !JOB_TYPES.contains(&k.as_str())));
    Ok(kinds
        .into_iter()
        .map(|k| {
            let (count, oldest) = rows.iter().find(|r| r.0 == k).map_or((0, None), |r| (r.1, r.2));
            JobQueue {
                latency: oldest.map_or(0, |t| (now - t).max(0) / 1000),
                count,
                paused: all || paused.contains(&k),
                job_type: k,
            }
        })
        .collect())
}

#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("action should be stop, pause or resume")]
    Action,
    #[error("unknown job type {0:?}")]
    Type(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// `stop`, `pause` or `resume` the queue of `job_type` (`all`: every type). Returns how many
/// pending jobs `stop` ended.
pub async fn act(db: &Db, job_type: &str, action: &str, by: &str) -> Result<u64, ActError> {
    let all = job_type == "all";
    if !all && !JOB_TYPES.contains(&job_type) {
        return Err(ActError::Type(job_type.to_string()));
    }
    let key = if all { "*" } else { job_type };
    let now = now_ms();
    match action {
        "pause" => {
            sqlx::query(
                "INSERT INTO job_queues_paused (kind, paused_at, paused_by) VALUES ($1, $2, $3) ON CONFLICT (kind) DO NOTHING",
            )
            .bind(key)
            .bind(now)
            .bind(by)
            .execute(&db.pool)
            .await?;
            Ok(0)
        }
        "resume" => {
            let sql = if all {
                "DELETE FROM job_queues_paused"
            } else {
                "DELETE FROM job_queues_paused WHERE kind = $1"
            };
            let mut q = sqlx::query(sql);
            if !all {
                q = q.bind(key);
            }
            q.execute(&db.pool).await?;
            Ok(0)
        }
        "stop" => {
            let filter = if all { "" } else { " AND kind = $2" };
            let sql = format!(
                "UPDATE jobs SET status = 'stopped', finished_at = $1, updated_at = $1, stop_requested = 1 \
                 WHERE status = 'pending'{filter}"
            );
            let mut q = sqlx::query(&sql).bind(now);
            if !all {
                q = q.bind(key);
            }
            Ok(q.execute(&db.pool).await?.rows_affected())
        }
        _ => Err(ActError::Action),
    }
}

/// Every schedule, by name, one page; and the total.
pub async fn schedules(db: &Db, offset: i64, limit: i64) -> Result<(Vec<ScheduleTask>, i64), sqlx::Error> {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT kind, cron, updated_at FROM schedules ORDER BY kind LIMIT $1 OFFSET $2")
            .bind(limit)
            .bind(offset)
            .fetch_all(&db.pool)
            .await?;
    let total = sqlx::query_scalar("SELECT COUNT(*) FROM schedules").fetch_one(&db.pool).await?;
    let tasks = rows
        .into_iter()
        .enumerate()
        .map(|(i, (kind, cron, updated))| {
            let (base, id) =
                kind.split_once('/').map_or((kind.as_str(), 0), |(b, n)| (b, n.parse().unwrap_or(0)));
            let vendor_type = match base {
                "gc" => "GARBAGE_COLLECTION".to_string(),
                k if k == crate::purge::JOB => "PURGE_AUDIT".to_string(),
                k if k == crate::retention::run::JOB => "RETENTION".to_string(),
                k if k == crate::replication::execution::EXECUTION_JOB => "REPLICATION".to_string(),
                other => other.to_ascii_uppercase(),
            };
            ScheduleTask {
                id: offset + i as i64 + 1,
                vendor_type,
                vendor_id: id,
                cron,
                update_time: rfc3339(updated),
            }
        })
        .collect();
    Ok((tasks, total))
}

//! Background jobs: a queue in the database, safe with N replicas.
//!
//! - **Claiming** takes the oldest due `pending` row and makes it `running` in one statement
//!   (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single-writer lock on SQLite), so two replicas
//!   never run the same job.
//! - **Liveness**: the replica running a job writes `heartbeat` (and the job's progress) every
//!   few seconds. A running job whose heartbeat is older than `STALE_MS` belonged to a replica
//!   that died; any replica puts it back to `pending` and it runs again (jobs are idempotent and
//!   resumable; after `MAX_ATTEMPTS` it ends in `error`). A replica that finds its job taken
//!   back (heartbeat update matches no row) stops working on it.
//! - **Exclusivity**: `unique_key` with a partial unique index allows at most one pending or
//!   running job per key cluster-wide (one GC at a time).
//! - **Stopping**: a stop request on a pending job ends it at once; on a running one it sets
//!   `stop_requested`, which the runner sees at its next heartbeat.
//! - **Schedules** (cron, 6 fields with seconds as in Harbor, or 5): every replica checks due
//!   schedules; moving `next_run` forward is a compare-and-set, so one replica fires each time.
//!   A schedule's name is its job's kind, optionally followed by `/` and a key when a kind has
//!   several schedules (`replication/7`: one per replication policy); the whole name is the
//!   fired job's `unique_key`.
//! - **Concurrency** (`tick`): a replica runs one job of the ordinary kinds (GC) at a time, as
//!   before, and beside it up to `replication.workers` jobs of the `POOLED` kinds (replication
//!   runs and tasks), and up to `webhook.workers` webhook deliveries (`DELIVERIES`). A claim
//!   only takes a kind that has a free slot, so a full pool of tasks never keeps GC waiting,
//!   and GC never stops tasks from being claimed.
//! - **Retries later**: a job may end with `Outcome::retry_at` (`record_end`): it goes back to
//!   `pending` with a later `run_at` (webhook deliveries' backoff; they count their own
//!   attempts, so the `MAX_ATTEMPTS` give-up does not apply to them).
//! - **Housekeeping** (`run_loop`, every 10 minutes): forgotten job pools, old webhook history.
//! - **Cadence** (`run_loop`): a pass runs every 2 s or when this replica queued a job (a webhook
//!   delivery after each audit batch); the dashboard beat (`POOL_BEAT`, 5 s) and the schedule and
//!   stale-job checks (`CHECKS`, 2 s) run on their own clocks, not on every wake, since each is
//!   a write on SQLite's one lock. A claim seeks each kind of its class (`claim.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use sqlx::FromRow;

use crate::db::{now_ms, Db};

mod claim;
mod schedule;
pub use claim::{claim, claim_of, Claim};
pub use schedule::{fire_due, get_schedule, next_run, parse_cron, set_schedule, set_schedule_in, Schedule};

/// A running job whose heartbeat is older than this is taken back.
pub const STALE_MS: i64 = 30_000;
const HEARTBEAT: Duration = Duration::from_secs(3);
/// Runs of a job (claims) before it is given up.
pub const MAX_ATTEMPTS: i64 = 5;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub job_kind: String,
    pub parameters: String,
    pub status: String,
    pub attempts: i64,
    pub worker: String,
    pub heartbeat: i64,
    #[sqlx(try_from = "crate::db::Flag")]
    pub stop_requested: bool,
    pub progress: String,
    pub result: String,
    pub error: String,
    pub created_by: String,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, kind, job_kind, parameters, status, attempts, worker, heartbeat, stop_requested, \
    progress, result, error, created_by, created_at, started_at, finished_at, updated_at";

/// A new job. `None` when a job with the same `unique_key` is already pending or running.
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub job_kind: &'a str,
    pub parameters: &'a Value,
    pub unique_key: Option<&'a str>,
    pub created_by: &'a str,
}

/// Queues a job; `Ok(None)` when one with the same unique key is active.
pub async fn enqueue(db: &Db, new: &NewJob<'_>) -> Result<Option<i64>, sqlx::Error> {
    insert(db, new, "pending", "").await
}

/// Records a job that starts running right away in this process (`berth gc`).
pub async fn start_inline(db: &Db, new: &NewJob<'_>, worker: &str) -> Result<Option<i64>, sqlx::Error> {
    insert(db, new, "running", worker).await
}

/// Queues a job inside the caller's write transaction, with the rows it belongs to (both
/// are committed or neither). A `unique_key` conflict is an error here.
pub async fn enqueue_in(conn: &mut sqlx::AnyConnection, new: &NewJob<'_>) -> Result<i64, sqlx::Error> {
    let now = now_ms();
    sqlx::query_scalar(
        "INSERT INTO jobs (kind, job_kind, parameters, status, unique_key, attempts, run_at, worker, heartbeat, \
         created_by, created_at, started_at, updated_at) \
         VALUES ($1, $2, $3, 'pending', $4, 0, $5, '', 0, $6, $5, 0, $5) RETURNING id",
    )
    .bind(new.kind)
    .bind(new.job_kind)
    .bind(new.parameters.to_string())
    .bind(new.unique_key)
    .bind(now)
    .bind(new.created_by)
    .fetch_one(&mut *conn)
    .await
}

async fn insert(db: &Db, new: &NewJob<'_>, status: &str, worker: &str) -> Result<Option<i64>, sqlx::Error> {
    let now = now_ms();
    let running = status == "running";
    let r = sqlx::query_scalar(
        "INSERT INTO jobs (kind, job_kind, parameters, status, unique_key, attempts, run_at, worker, heartbeat, \
         created_by, created_at, started_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $7, $9, $7) RETURNING id",
    )
    .bind(new.kind)
    .bind(new.job_kind)
    .bind(new.parameters.to_string())
    .bind(status)
    .bind(new.unique_key)
    .bind(if running { 1i64 } else { 0 })
    .bind(now)
    .bind(worker)
    .bind(if running { now } else { 0 })
    .bind(new.created_by)
    .fetch_one(&db.pool)
    .await;
    match r {
        Ok(id) => {
            if running {
                // The start is now, not when the INSERT began: it may have waited for SQLite's
                // write lock behind the previous run's last writes.
                let now = now_ms();
                sqlx::query("UPDATE jobs SET started_at = $2, heartbeat = $2, updated_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&db.pool)
                    .await?;
            }
            Ok(Some(id))
        }
        Err(e) if crate::db::error::is_conflict(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Takes back jobs of dead replicas and gives up on jobs that failed too often.
pub async fn requeue_stale(db: &Db) -> Result<u64, sqlx::Error> {
    let now = now_ms();
    let r = sqlx::query(
        "UPDATE jobs SET status = 'pending', worker = '', updated_at = $1 \
         WHERE status = 'running' AND heartbeat < $2",
    )
    .bind(now)
    .bind(now - STALE_MS)
    .execute(&db.pool)
    .await?;
    if r.rows_affected() > 0 {
        tracing::warn!(jobs = r.rows_affected(), "took back jobs whose replica stopped answering");
    }
    // Deliveries count their own attempts (`webhook.max_attempts`, retried later on purpose).
    let given_up: Vec<(i64, String)> = sqlx::query_as(
        "UPDATE jobs SET status = 'error', error = 'gave up after repeated attempts', finished_at = $1, \
         updated_at = $1 WHERE status = 'pending' AND attempts >= $2 AND kind <> $3 RETURNING id, kind",
    )
    .bind(now)
    .bind(MAX_ATTEMPTS)
    .bind(crate::webhook::deliver::JOB)
    .fetch_all(&db.pool)
    .await?;
    for (id, kind) in given_up {
        if POOLED.contains(&kind.as_str()) {
            crate::replication::execution::job_gave_up(db, id).await?;
        }
    }
    Ok(r.rows_affected())
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Job>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(Job::from_row).transpose()
}

/// Jobs of a kind, newest first, and their total.
pub async fn list(db: &Db, kind: &str, offset: i64, limit: i64) -> Result<(Vec<Job>, i64), sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE kind = $1 ORDER BY id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(kind)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = $1")
        .bind(kind)
        .fetch_one(&db.pool)
        .await?;
    Ok((rows.iter().map(Job::from_row).collect::<Result<_, _>>()?, total))
}

/// What a stop request did.
#[derive(Debug, PartialEq, Eq)]
pub enum StopOutcome {
    /// The job had not started: it is stopped.
    Stopped,
    /// The job is running: it stops at its next heartbeat.
    Stopping,
    /// The job is already over.
    NotRunning,
    NotFound,
}

pub async fn request_stop(db: &Db, id: i64) -> Result<StopOutcome, sqlx::Error> {
    let now = now_ms();
    let r = sqlx::query(
        "UPDATE jobs SET status = 'stopped', finished_at = $2, updated_at = $2 WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(now)
    .execute(&db.pool)
    .await?;
    if r.rows_affected() == 1 {
        return Ok(StopOutcome::Stopped);
    }
    let r = sqlx::query(
        "UPDATE jobs SET stop_requested = 1, updated_at = $2 WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .bind(now)
    .execute(&db.pool)
    .await?;
    if r.rows_affected() == 1 {
        return Ok(StopOutcome::Stopping);
    }
    Ok(if get(db, id).await?.is_some() { StopOutcome::NotRunning } else { StopOutcome::NotFound })
}

/// Appends lines to a job's log.
pub async fn append_log(db: &Db, id: i64, text: &str) -> Result<(), sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    append_log_in(&mut conn, id, text).await
}

async fn append_log_in(conn: &mut sqlx::AnyConnection, id: i64, text: &str) -> Result<(), sqlx::Error> {
    if text.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO job_logs (job_id, seq, text) \
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2 FROM job_logs WHERE job_id = $1",
    )
    .bind(id)
    .bind(text)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A job's whole log.
pub async fn log_text(db: &Db, id: i64) -> Result<String, sqlx::Error> {
    let chunks: Vec<String> = sqlx::query_scalar("SELECT text FROM job_logs WHERE job_id = $1 ORDER BY seq")
        .bind(id)
        .fetch_all(&db.pool)
        .await?;
    Ok(chunks.concat())
}

/// Ends a job this worker runs. False when the job was taken back meanwhile.
pub async fn finish(
    db: &Db,
    id: i64,
    worker: &str,
    status: &str,
    result: &Value,
    error: &str,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let r = sqlx::query(
        "UPDATE jobs SET status = $3, result = $4, error = $5, finished_at = $6, updated_at = $6, heartbeat = $6 \
         WHERE id = $1 AND worker = $2 AND status = 'running'",
    )
    .bind(id)
    .bind(worker)
    .bind(status)
    .bind(result.to_string())
    .bind(error)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records the end of a run in one write transaction: the last log lines, the progress, the
/// status — or, with `retry_at`, the job back in the queue due then — and the job's own
/// `also` writes. Nothing changes when the job was taken back meanwhile (it is not `running`
/// for this worker any more).
async fn record_end(db: &Db, ctx: &JobCtx, outcome: &Outcome) -> Result<(), sqlx::Error> {
    let text = std::mem::take(&mut *ctx.log.lock().unwrap_or_else(|e| e.into_inner()));
    let done = async {
        let mut tx = db.begin_write().await?;
        append_log_in(&mut tx, ctx.id, &text).await?;
        let now = now_ms();
        let retry_at = outcome.retry_at;
        let q = match retry_at {
            Some(at) => sqlx::query(
                "UPDATE jobs SET status = 'pending', worker = '', run_at = $3, error = $4, progress = $5, \
                 updated_at = $6 WHERE id = $1 AND worker = $2 AND status = 'running'",
            )
            .bind(ctx.id)
            .bind(&ctx.worker)
            .bind(at)
            .bind(&outcome.error),
            None => sqlx::query(
                "UPDATE jobs SET status = $3, result = $7, error = $4, progress = $5, finished_at = $6, \
                 updated_at = $6, heartbeat = $6 WHERE id = $1 AND worker = $2 AND status = 'running'",
            )
            .bind(ctx.id)
            .bind(&ctx.worker)
            .bind(outcome.status)
            .bind(&outcome.error),
        };
        let q = q.bind(ctx.progress().to_string()).bind(now);
        let q = if retry_at.is_some() { q } else { q.bind(outcome.result.to_string()) };
        let ours = q.execute(&mut *tx).await?.rows_affected() == 1;
        if let (true, Some(also)) = (ours, &outcome.also) {
            also(&mut tx).await?;
        }
        tx.commit().await
    }
    .await;
    if done.is_err() {
        ctx.log.lock().unwrap_or_else(|e| e.into_inner()).insert_str(0, &text);
    }
    done
}

/// What a running job shares with its heartbeat: progress out, a stop flag in, and a log
/// buffer written with each beat.
#[derive(Debug, Clone)]
pub struct JobCtx {
    pub id: i64,
    pub worker: String,
    pub job_kind: String,
    pub parameters: String,
    stop: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    progress: Arc<Mutex<Value>>,
    log: Arc<Mutex<String>>,
}

impl JobCtx {
    pub fn new(id: i64, worker: &str, job_kind: &str, parameters: &str) -> JobCtx {
        JobCtx {
            id,
            worker: worker.to_string(),
            job_kind: job_kind.to_string(),
            parameters: parameters.to_string(),
            stop: Default::default(),
            lost: Default::default(),
            progress: Arc::new(Mutex::new(Value::Object(Default::default()))),
            log: Default::default(),
        }
    }

    /// True once a stop was requested or the job was taken back: the job should end.
    pub fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.lost.load(Ordering::Relaxed)
    }

    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    pub fn set_progress(&self, v: Value) {
        *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = v;
    }

    pub fn progress(&self) -> Value {
        self.progress.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Adds a line to the log (with a UTC time stamp).
    pub fn log(&self, line: impl AsRef<str>) {
        let ts = crate::db::rfc3339(now_ms());
        let mut l = self.log.lock().unwrap_or_else(|e| e.into_inner());
        l.push_str(&ts);
        l.push(' ');
        l.push_str(line.as_ref());
        l.push('\n');
    }

    /// Writes buffered log lines.
    pub async fn flush_log(&self, db: &Db) -> Result<(), sqlx::Error> {
        let text = std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()));
        if let Err(e) = append_log(db, self.id, &text).await {
            // Keep the lines for the next attempt.
            let mut l = self.log.lock().unwrap_or_else(|e| e.into_inner());
            l.insert_str(0, &text);
            return Err(e);
        }
        Ok(())
    }

    /// One heartbeat: progress and log out, stop request in.
    pub async fn beat(&self, db: &Db) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let stop: Option<i64> = sqlx::query_scalar(
            "UPDATE jobs SET heartbeat = $3, progress = $4, updated_at = $3 \
             WHERE id = $1 AND worker = $2 AND status = 'running' RETURNING stop_requested",
        )
        .bind(self.id)
        .bind(&self.worker)
        .bind(now)
        .bind(self.progress().to_string())
        .fetch_optional(&db.pool)
        .await?;
        match stop {
            None => {
                if !self.lost.swap(true, Ordering::Relaxed) {
                    tracing::warn!(job = self.id, "job was taken back by another replica; abandoning it");
                }
            }
            Some(s) if s != 0 => self.stop.store(true, Ordering::Relaxed),
            Some(_) => {}
        }
        self.flush_log(db).await
    }

    /// Beats every few seconds until the returned handle is dropped or aborted.
    pub fn spawn_heartbeat(&self, db: Db) -> tokio::task::JoinHandle<()> {
        let ctx = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = ctx.beat(&db).await {
                    tracing::warn!(job = ctx.id, error = %e, "job heartbeat failed; will retry");
                }
            }
        })
    }
}

/// Writes a job makes in the transaction that records its end (`Outcome::also`): its own
/// bookkeeping commits with the job's status, in one write, and not at all when the job was
/// taken back meanwhile (the replica that took it does the work again). May run more than once
/// when the transaction fails and is retried.
pub type EndWrites = Box<
    dyn for<'c> Fn(&'c mut sqlx::AnyConnection) -> futures::future::BoxFuture<'c, Result<(), sqlx::Error>>
        + Send
        + Sync,
>;

/// The end of a job run.
#[derive(Default)]
pub struct Outcome {
    pub status: &'static str,
    pub result: Value,
    pub error: String,
    /// Instead of ending, the job goes back to `pending`, due at this time (ms); `status` and
    /// `result` are then not recorded.
    pub retry_at: Option<i64>,
    pub also: Option<EndWrites>,
}

/// Runs a claimed (or inline) job to its end: heartbeat while it runs, then the final status,
/// progress and log.
pub async fn run_claimed<F, Fut>(db: &Db, ctx: JobCtx, work: F) -> Outcome
where
    F: FnOnce(JobCtx) -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    /// Stops the heartbeat also when the work panics or its task is cancelled.
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let hb = AbortOnDrop(ctx.spawn_heartbeat(db.clone()));
    let outcome = work(ctx.clone()).await;
    drop(hb);
    if ctx.lost() {
        return outcome;
    }
    // Final progress and log, then the status (a few retries: the database may blink).
    for attempt in 0..5u32 {
        match record_end(db, &ctx, &outcome).await {
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(job = ctx.id, error = %e, attempt, "could not record the end of a job");
                tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
            }
        }
    }
    outcome
}

// ---------------------------------------------------------------- the runner

/// This machine's name (read once).
pub fn hostname() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
    })
}

/// A name for this process in `jobs.worker`.
pub fn worker_name() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{}:{}:{}", hostname(), std::process::id(), &id[..8])
}

const HOUSEKEEPING: Duration = Duration::from_secs(600);

/// Cleaning that needs no hurry: pools gone for a day, webhook history beyond what is kept.
async fn housekeeping(state: &crate::state::AppState) -> Result<(), sqlx::Error> {
    crate::jobservice::forget_pools(&state.db).await?;
    let swept = crate::webhook::sweep(&state.db).await?;
    if swept > 0 {
        tracing::info!(executions = swept, "swept old webhook executions");
    }
    Ok(())
}

/// Each replica runs this loop: fire due schedules, take back jobs of dead replicas, claim
/// and run jobs (`tick`). `wake` cuts the wait short when this replica queued a job.
pub async fn run_loop(
    state: crate::state::AppState,
    wake: Arc<tokio::sync::Notify>,
    beat: crate::supervisor::Beat,
) -> anyhow::Result<()> {
    let worker = worker_name();
    tracing::info!(worker, "job runner started");
    let started = now_ms();
    let (mut cleaned, mut beaten, mut checked): (Option<Instant>, Option<Instant>, Option<Instant>) =
        (None, None, None);
    loop {
        // The dashboard's view of this replica (`jobservice`); a failure shows in the tick too.
        // Every POOL_BEAT, not at every wake: a replica queuing webhook deliveries is woken
        // after each audit batch, and each beat is a write.
        if beaten.is_none_or(|t| t.elapsed() >= POOL_BEAT)
            && crate::jobservice::beat_pool(&state, &worker, started).await.is_ok()
        {
            beaten = Some(Instant::now());
        }
        if cleaned.is_none_or(|t| t.elapsed() >= HOUSEKEEPING) {
            match housekeeping(&state).await {
                Ok(()) => cleaned = Some(Instant::now()),
                Err(e) => tracing::warn!(error = %e, "job runner housekeeping failed; will retry"),
            }
        }
        let check = checked.is_none_or(|t| t.elapsed() >= CHECKS);
        match pass(&state, &worker, check).await {
            Ok(()) => {
                if check {
                    checked = Some(Instant::now());
                }
                beat.ok()
            }
            Err(e) => {
                beat.failed(&e);
                tracing::warn!(error = %e, "job runner: database unavailable; will retry");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = wake.notified() => {}
        }
    }
}

/// Kinds run in the concurrent pool (up to `replication.workers` at once, beside one job of
/// any other kind).
pub const POOLED: [&str; 2] =
    [crate::replication::execution::EXECUTION_JOB, crate::replication::execution::TASK_JOB];

/// The kinds run one at a time beside the pools (a kind none of these lists names is claimed
/// only when every slot is free; it then ends with an error).
pub const ORDINARY: [&str; 3] = ["gc", crate::purge::JOB, crate::retention::run::JOB];

/// Webhook deliveries: a pool of their own (`webhook.workers` slots), so a slow receiver never
/// holds back the other jobs, nor them the deliveries.
pub const DELIVERIES: [&str; 1] = [crate::webhook::deliver::JOB];

/// One pass of the runner (tests call it to run queued jobs now): fires due schedules, takes
/// back jobs of dead replicas, then claims and runs jobs until none is left, one ordinary job
/// at a time and up to `replication.workers` pooled ones beside it (see the module doc).
pub async fn tick(state: &crate::state::AppState, worker: &str) -> Result<(), sqlx::Error> {
    pass(state, worker, true).await
}

/// How often the runner tells the dashboard this replica is alive (`jobservice::POOL_STALE_MS`
/// is 30 s).
const POOL_BEAT: Duration = Duration::from_secs(5);
/// How often the runner fires due schedules and takes back jobs of dead replicas — each a write
/// on SQLite's one lock — however often it is woken.
const CHECKS: Duration = Duration::from_secs(2);

/// `tick`, with the schedule and stale-job checks at its start only when `check`.
async fn pass(state: &crate::state::AppState, worker: &str, check: bool) -> Result<(), sqlx::Error> {
    if check {
        fire_due(&state.db).await?;
        requeue_stale(&state.db).await?;
    }
    let workers = state.config.replication.workers.max(1);
    let hooks = state.config.webhook.workers.max(1);
    let mut one = tokio::task::JoinSet::new();
    let mut pool = tokio::task::JoinSet::new();
    let mut deliveries = tokio::task::JoinSet::new();
    let mut failed: Option<sqlx::Error> = None;
    let mut checked = Instant::now();
    loop {
        // The kinds of the classes that have a free slot (see the module doc). With every slot
        // free, any kind (one the code does not know ends at once with an error).
        let (one_free, pool_free, hooks_free) =
            (one.is_empty(), pool.len() < workers, deliveries.len() < hooks);
        let mut free: Vec<&str> = vec![];
        for (kinds, is_free) in
            [(&ORDINARY[..], one_free), (&POOLED[..], pool_free), (&DELIVERIES[..], hooks_free)]
        {
            if is_free {
                free.extend(kinds)
            }
        }
        let which = match () {
            _ if failed.is_some() || free.is_empty() => None,
            _ if one_free && pool_free && hooks_free => Some(Claim::Any),
            _ => Some(Claim::Only(&free)),
        };
        if let Some(which) = which {
            match claim_of(&state.db, worker, which).await {
                Ok(Some(job)) => {
                    let kind = job.kind.clone();
                    let run = run_job(state.clone(), worker.to_string(), job);
                    if POOLED.contains(&kind.as_str()) {
                        pool.spawn(run);
                    } else if DELIVERIES.contains(&kind.as_str()) {
                        deliveries.spawn(run);
                    } else {
                        one.spawn(run);
                    }
                    continue;
                }
                Ok(None) => {}
                // Let the running jobs end before reporting (dropping them would abort them).
                Err(e) => failed = Some(e),
            }
        }
        if one.is_empty() && pool.is_empty() && deliveries.is_empty() {
            break;
        }
        let ended = tokio::select! {
            Some(r) = one.join_next(), if !one.is_empty() => Some(r),
            Some(r) = pool.join_next(), if !pool.is_empty() => Some(r),
            Some(r) = deliveries.join_next(), if !deliveries.is_empty() => Some(r),
            _ = tokio::time::sleep(Duration::from_secs(1)) => None,
        };
        if let Some(Err(e)) = ended {
            tracing::error!(error = %e, "a job panicked; it is taken back once its heartbeat is stale");
        }
        if failed.is_none() && checked.elapsed() >= CHECKS {
            checked = Instant::now();
            if let Err(e) = async {
                fire_due(&state.db).await?;
                requeue_stale(&state.db).await
            }
            .await
            {
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn run_job(state: crate::state::AppState, worker: String, job: Job) {
    use crate::replication::{execution, task};
    tracing::info!(job = job.id, kind = job.kind, attempt = job.attempts, "job started");
    let ctx = JobCtx::new(job.id, &worker, &job.job_kind, &job.parameters);
    let db = state.db.clone();
    let started = std::time::Instant::now();
    let kind = job.kind.clone();
    let outcome = match job.kind.as_str() {
        "gc" => run_claimed(&db, ctx, |ctx| async move { crate::gc::run_job(&state, ctx).await }).await,
        execution::EXECUTION_JOB => {
            run_claimed(&db, ctx, |ctx| async move { execution::run_execution_job(&state, ctx).await }).await
        }
        execution::TASK_JOB => {
            run_claimed(&db, ctx, |ctx| async move { task::run_task_job(&state, ctx).await }).await
        }
        crate::purge::JOB => {
            run_claimed(&db, ctx, |ctx| async move { crate::purge::run_job(&state.db, ctx).await }).await
        }
        crate::retention::run::JOB => {
            run_claimed(&db, ctx, |ctx| async move { crate::retention::run::run_job(&state, ctx).await })
                .await
        }
        crate::webhook::deliver::JOB => {
            run_claimed(&db, ctx, |ctx| async move { crate::webhook::deliver::run_job(&state, ctx).await })
                .await
        }
        other => {
            let other = other.to_string();
            run_claimed(&db, ctx, |_| async move {
                Outcome {
                    status: "error",
                    result: Value::Null,
                    error: format!("unknown job kind {other:?}"),
                    ..Default::default()
                }
            })
            .await
        }
    };
    tracing::info!(job = job.id, status = outcome.status, "job ended");
    metrics::counter!("berth_jobs_total", "kind" => kind.clone(), "status" => outcome.status).increment(1);
    metrics::histogram!("berth_job_duration_seconds", "kind" => kind, "status" => outcome.status)
        .record(started.elapsed().as_secs_f64());
}

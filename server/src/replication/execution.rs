//! Replication runs ("executions") on the database job queue.
//!
//! - **Start** (`start`: the API, an event; or a policy's schedule firing a `replication` job
//!   with only a `policy_id`) inserts the execution row and, in the same transaction, its job
//!   (`kind = "replication"`). With `single_active_replication` the row carries
//!   `active_policy = policy id` under a unique index, so of two concurrent starts exactly one
//!   is `Pending`; the other is recorded at once as a skipped, `Failed` run with Harbor's note
//!   (`SKIPPED`). Nothing else decides it: no read-then-write race.
//! - **The execution job** (`run_execution_job`) lists the resources (push-based: this
//!   registry's artifacts from the database, filters as SQL prefilters plus the exact glob
//!   check — `local_resources`; pull-based: the source adapter's `repositories` and tags;
//!   event-based: the one artifact of the event), computes the destination names, and in one
//!   transaction creates one `replication_tasks` row per artifact with one job each
//!   (`kind = "replication_task"`, run by `task`) and sets the run `InProgress`. A rerun of the
//!   job (its replica died) finds the run no longer `Pending` and does nothing: no task is
//!   ever created twice.
//! - **Settling** (`settle`): the last task to finish ends the run with one guarded `UPDATE`
//!   ("no task still pending or running"): `Stopped` when a stop was requested, `Failed` when a
//!   task failed, else `Succeed`; `active_policy` is cleared with it.
//! - **Stop** (`stop`): pending tasks (and their jobs) are stopped at once; running task jobs
//!   get `stop_requested`, which they see at their next heartbeat; the run ends `Stopped`.
//! - **Repair** (`repair`, before each start of a policy): tasks whose job ended without
//!   recording an end (given up after repeated attempts) are failed and their runs settled, so
//!   no run stays active for ever.
//! - **Events** (`on_artifact_event`): registry pushes and deletes start event-based push
//!   policies off the request path (a spawned task; one query on the small policies table).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::FromRow;

use crate::db::query::{escape_like, Bind, Sql, Stmt};
use crate::db::{now_ms, Db, Flag};
use crate::jobs::{self, JobCtx, NewJob, Outcome};
use crate::state::AppState;

use super::filters::Filters;
use super::policy::{self, Policy};

/// The job kind of an execution (listing and task creation).
pub const EXECUTION_JOB: &str = "replication";
/// The job kind of one task (one artifact).
pub const TASK_JOB: &str = "replication_task";
/// Harbor's note on a run skipped because the previous one is still active.
pub const SKIPPED: &str = "Execution skipped: active replication still in progress.";

#[derive(Debug, Clone, FromRow)]
pub struct Execution {
    pub id: i64,
    pub policy_id: i64,
    pub status: String,
    pub status_text: String,
    pub trigger: String,
    pub job_id: i64,
    #[sqlx(try_from = "Flag")]
    pub stop_requested: bool,
    pub start_time: i64,
    pub end_time: i64,
}

const EXEC_COLUMNS: &str =
    "id, policy_id, status, status_text, trigger, job_id, stop_requested, start_time, end_time";

/// What started a run, for an event-based one: a push or a delete of `repository:reference`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventParams {
    /// `push` or `delete`.
    pub kind: String,
    pub repository: String,
    /// A tag or a digest.
    pub reference: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ExecParams {
    #[serde(default)]
    execution_id: Option<i64>,
    #[serde(default)]
    policy_id: Option<i64>,
    #[serde(default)]
    event: Option<EventParams>,
}

/// One artifact to copy or delete: what a task job runs (its job's parameters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// `copy` or `deletion`.
    pub operation: String,
    /// `image` or `artifact`.
    pub resource_type: String,
    pub src_repo: String,
    /// The source reference: the digest when known (local artifacts), else the tag.
    pub src_ref: String,
    pub dst_repo: String,
    /// The tags to set on the destination; empty: the artifact is copied by digest.
    pub tags: Vec<String>,
    /// The digest when known at listing time.
    #[serde(default)]
    pub digest: String,
}

impl TaskSpec {
    fn resource(repo: &str, tags: &[String], reference: &str) -> String {
        if tags.is_empty() {
            format!("{repo}@{reference}")
        } else {
            format!("{repo}:{}", tags.join(","))
        }
    }
    pub fn src_resource(&self) -> String {
        Self::resource(&self.src_repo, &self.tags, &self.src_ref)
    }
    pub fn dst_resource(&self) -> String {
        Self::resource(&self.dst_repo, &self.tags, &self.src_ref)
    }
}

/// The result of a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// A run was queued.
    Queued(i64),
    /// The policy's previous run is still active: this one was recorded as skipped.
    Skipped(i64),
}

impl Started {
    pub fn id(self) -> i64 {
        match self {
            Started::Queued(id) | Started::Skipped(id) => id,
        }
    }
}

/// Inserts a run in `conn` (a write transaction): `Pending`, or skipped when the policy is
/// single-active and another run holds its `active_policy` slot. Returns (id, queued).
async fn insert_execution(
    conn: &mut sqlx::AnyConnection,
    policy: &Policy,
    trigger: &str,
    job_id: i64,
) -> Result<(i64, bool), sqlx::Error> {
    let now = now_ms();
    let active = policy.single_active_replication.then_some(policy.id);
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO replication_executions (policy_id, status, trigger, job_id, start_time, active_policy) \
         VALUES ($1, 'Pending', $2, $3, $4, $5) ON CONFLICT (active_policy) DO NOTHING RETURNING id",
    )
    .bind(policy.id)
    .bind(trigger)
    .bind(job_id)
    .bind(now)
    .bind(active)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = id {
        return Ok((id, true));
    }
    let id = sqlx::query_scalar(
        "INSERT INTO replication_executions (policy_id, status, status_text, trigger, job_id, start_time, end_time) \
         VALUES ($1, 'Failed', $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(policy.id)
    .bind(SKIPPED)
    .bind(trigger)
    .bind(job_id)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok((id, false))
}

/// Starts a run of `policy` (`trigger`: `manual`, `scheduled` or `event_based`), queuing its
/// job; `event` narrows an event-based run to one artifact.
pub async fn start(
    state: &AppState,
    policy: &Policy,
    trigger: &str,
    by: &str,
    event: Option<&EventParams>,
) -> Result<Started, sqlx::Error> {
    repair(&state.db, policy.id).await?;
    let mut tx = state.db.begin_write().await?;
    let (id, queued) = insert_execution(&mut tx, policy, trigger, 0).await?;
    if queued {
        let params = json!({ "execution_id": id, "event": event });
        let job_kind = match trigger {
            "scheduled" => "SCHEDULE",
            "event_based" => "EVENT",
            _ => "MANUAL",
        };
        let new =
            NewJob { kind: EXECUTION_JOB, job_kind, parameters: &params, unique_key: None, created_by: by };
        let job = jobs::enqueue_in(&mut tx, &new).await?;
        sqlx::query("UPDATE replication_executions SET job_id = $2 WHERE id = $1")
            .bind(id)
            .bind(job)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    if queued {
        state.jobs_wake.notify_one();
        tracing::info!(policy = policy.id, execution = id, trigger, "replication queued");
        Ok(Started::Queued(id))
    } else {
        tracing::info!(policy = policy.id, execution = id, trigger, "replication skipped: a run is active");
        Ok(Started::Skipped(id))
    }
}

/// Fails the tasks of `policy_id`'s active runs whose job ended without recording an end (it
/// was given up after repeated attempts, or its replica lost the database at the end), then
/// settles those runs; a run whose execution job ended while it was still `Pending` is failed.
/// Each row looks up its own job by id (`EXISTS`), never the whole job history.
pub async fn repair(db: &Db, policy_id: i64) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "UPDATE replication_tasks SET status = 'Failed', end_time = $2, \
         status_text = 'the task ended without recording a result (its job gave up)' \
         WHERE status IN ('Pending', 'InProgress') AND execution_id IN (SELECT id FROM replication_executions \
         WHERE policy_id = $1 AND status IN ('Pending', 'InProgress')) \
         AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = replication_tasks.job_id \
         AND j.status IN ('error', 'success', 'stopped'))",
    )
    .bind(policy_id)
    .bind(now)
    .execute(&db.pool)
    .await?;
    sqlx::query(
        "UPDATE replication_executions SET status = 'Failed', end_time = $2, active_policy = NULL, \
         status_text = 'the run ended before it created its tasks' \
         WHERE policy_id = $1 AND status = 'Pending' \
         AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = replication_executions.job_id \
         AND j.status IN ('error', 'success', 'stopped'))",
    )
    .bind(policy_id)
    .bind(now)
    .execute(&db.pool)
    .await?;
    let active: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM replication_executions WHERE policy_id = $1 AND status = 'InProgress'",
    )
    .bind(policy_id)
    .fetch_all(&db.pool)
    .await?;
    for id in active {
        settle(db, id).await?;
    }
    Ok(())
}

/// Ends the run when none of its tasks is pending or running (one guarded statement: of two
/// tasks finishing at once, the later one's statement sees both ends). True when it ended now.
pub async fn settle(db: &Db, id: i64) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE replication_executions SET status = CASE WHEN stop_requested = 1 THEN 'Stopped' \
         WHEN EXISTS (SELECT 1 FROM replication_tasks t WHERE t.execution_id = $1 AND t.status = 'Failed') \
         THEN 'Failed' ELSE 'Succeed' END, end_time = $2, active_policy = NULL \
         WHERE id = $1 AND status = 'InProgress' AND NOT EXISTS (SELECT 1 FROM replication_tasks t \
         WHERE t.execution_id = $1 AND t.status IN ('Pending', 'InProgress'))",
    )
    .bind(id)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Ends a run that failed before its tasks existed.
async fn fail(db: &Db, id: i64, message: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE replication_executions SET status = 'Failed', status_text = $2, end_time = $3, active_policy = NULL \
         WHERE id = $1 AND status IN ('Pending', 'InProgress')",
    )
    .bind(id)
    .bind(message)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}

async fn mark_stopped(db: &Db, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE replication_executions SET status = 'Stopped', end_time = $2, active_policy = NULL \
         WHERE id = $1 AND status = 'Pending'",
    )
    .bind(id)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Execution>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {EXEC_COLUMNS} FROM replication_executions WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
}

/// What a stop request found.
#[derive(Debug, PartialEq, Eq)]
pub enum StopResult {
    Stopping,
    AlreadyOver,
    NotFound,
}

/// Stops a run: pending tasks and their jobs at once, running task jobs at their next
/// heartbeat; the run ends `Stopped` when its last task has ended.
pub async fn stop(db: &Db, id: i64) -> Result<StopResult, sqlx::Error> {
    let now = now_ms();
    let r = sqlx::query(
        "UPDATE replication_executions SET stop_requested = 1 WHERE id = $1 AND status IN ('Pending', 'InProgress')",
    )
    .bind(id)
    .execute(&db.pool)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(if get(db, id).await?.is_some() { StopResult::AlreadyOver } else { StopResult::NotFound });
    }
    sqlx::query(
        "UPDATE replication_tasks SET status = 'Stopped', end_time = $2 WHERE execution_id = $1 AND status = 'Pending'",
    )
    .bind(id)
    .bind(now)
    .execute(&db.pool)
    .await?;
    sqlx::query(
        "UPDATE jobs SET status = 'stopped', finished_at = $2, updated_at = $2 WHERE status = 'pending' \
         AND id IN (SELECT job_id FROM replication_tasks WHERE execution_id = $1)",
    )
    .bind(id)
    .bind(now)
    .execute(&db.pool)
    .await?;
    sqlx::query(
        "UPDATE jobs SET stop_requested = 1, updated_at = $2 WHERE status = 'running' \
         AND id IN (SELECT job_id FROM replication_tasks WHERE execution_id = $1)",
    )
    .bind(id)
    .bind(now)
    .execute(&db.pool)
    .await?;
    if let Some(e) = get(db, id).await? {
        if e.job_id > 0 && jobs::request_stop(db, e.job_id).await? == jobs::StopOutcome::Stopped {
            // Its job will never run: nothing else ends the run.
            mark_stopped(db, id).await?;
        }
    }
    settle(db, id).await?;
    Ok(StopResult::Stopping)
}

/// Task counts of a run (Harbor's `total`, `failed`, `succeed`, `in_progress`, `stopped`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: i64,
    pub failed: i64,
    pub succeed: i64,
    pub in_progress: i64,
    pub stopped: i64,
}

/// The task counts of several runs in one `GROUP BY` query.
pub async fn counts(db: &Db, ids: &[i64]) -> Result<std::collections::HashMap<i64, Counts>, sqlx::Error> {
    let mut out = std::collections::HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut s =
        Stmt::new("SELECT execution_id, status, COUNT(*) FROM replication_tasks WHERE execution_id IN (");
    s.push_list(ids.iter().copied()).push(") GROUP BY execution_id, status");
    let rows: Vec<(i64, String, i64)> = s.query_as().fetch_all(&db.pool).await?;
    for (id, status, n) in rows {
        let c: &mut Counts = out.entry(id).or_default();
        c.total += n;
        match status.as_str() {
            "Failed" => c.failed += n,
            "Succeed" => c.succeed += n,
            "Stopped" => c.stopped += n,
            _ => c.in_progress += n,
        }
    }
    Ok(out)
}

/// One page of runs matching `conds` (newest first) and the total.
pub async fn list(db: &Db, conds: &Sql, page: u64, size: u64) -> Result<(Vec<Execution>, i64), sqlx::Error> {
    let mut count = Stmt::new("SELECT COUNT(*) FROM replication_executions");
    count.where_(conds);
    let total: i64 = count.query_scalar().fetch_one(&db.pool).await?;
    let mut s = Stmt::new(&format!("SELECT {EXEC_COLUMNS} FROM replication_executions"));
    s.where_(conds);
    s.push(" ORDER BY id DESC");
    s.push_bind(" LIMIT ?", size as i64).push_bind(" OFFSET ?", ((page - 1) * size) as i64);
    Ok((s.query_as().fetch_all(&db.pool).await?, total))
}

// ---------------------------------------------------------------- the execution job

/// Runs an execution job to its end (see the module doc).
pub async fn run_execution_job(state: &AppState, ctx: JobCtx) -> Outcome {
    match execute(state, &ctx).await {
        Ok(o) => o,
        Err(e) => {
            ctx.log(format!("replication failed: {e}"));
            Outcome { status: "error", result: Value::Null, error: e.to_string(), ..Default::default() }
        }
    }
}

fn done(note: impl Into<String>) -> Outcome {
    Outcome {
        status: "success",
        result: json!({ "note": note.into() }),
        error: String::new(),
        ..Default::default()
    }
}

async fn execute(state: &AppState, ctx: &JobCtx) -> Result<Outcome, sqlx::Error> {
    let db = &state.db;
    let p: ExecParams = serde_json::from_str(&ctx.parameters).unwrap_or_default();
    let id = match (p.execution_id, p.policy_id) {
        (Some(id), _) => id,
        (None, Some(policy_id)) => {
            // A schedule fired: this job is the run's job (a rerun finds the run it created).
            let Some(policy) = policy::get(db, policy_id).await? else {
                return Ok(done(format!("replication policy {policy_id} no longer exists")));
            };
            if !policy.enabled {
                ctx.log(format!("replication policy {:?} is disabled; nothing to do", policy.name));
                return Ok(done("policy disabled"));
            }
            let existing: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM replication_executions WHERE policy_id = $1 AND job_id = $2",
            )
            .bind(policy_id)
            .bind(ctx.id)
            .fetch_optional(&db.pool)
            .await?;
            match existing {
                Some(id) => id,
                None => {
                    repair(db, policy_id).await?;
                    let mut tx = db.begin_write().await?;
                    let (id, queued) = insert_execution(&mut tx, &policy, "scheduled", ctx.id).await?;
                    tx.commit().await?;
                    if !queued {
                        ctx.log(SKIPPED);
                        return Ok(done(SKIPPED));
                    }
                    id
                }
            }
        }
        _ => return Ok(done("no execution named")),
    };
    let Some(exec) = get(db, id).await? else {
        return Ok(done(format!("replication execution {id} no longer exists")));
    };
    if exec.status != "Pending" {
        // A rerun after the tasks were created (or the run was stopped meanwhile).
        return Ok(done(format!("execution {id} is already {}", exec.status)));
    }
    let Some(policy) = policy::get(db, exec.policy_id).await? else {
        fail(db, id, "the replication policy was deleted").await?;
        return Ok(done("policy deleted"));
    };
    if exec.stop_requested || ctx.should_stop() {
        mark_stopped(db, id).await?;
        return Ok(Outcome {
            status: "stopped",
            result: Value::Null,
            error: String::new(),
            ..Default::default()
        });
    }
    ctx.log(format!(
        "replication policy {:?} ({}), execution {id}: listing resources",
        policy.name,
        if policy.push_based() { "push-based" } else { "pull-based" }
    ));
    let specs = match super::resolve::resources(state, &policy, p.event.as_ref()).await {
        Ok(specs) => specs,
        Err(message) => {
            ctx.log(format!("error: {message}"));
            fail(db, id, &message).await?;
            return Ok(Outcome {
                status: "error",
                result: Value::Null,
                error: message,
                ..Default::default()
            });
        }
    };
    ctx.log(format!("{} task(s) to run", specs.len()));
    if !create_tasks(db, id, &specs).await? {
        mark_stopped(db, id).await?;
        ctx.log("stopped before the tasks were created");
        return Ok(Outcome {
            status: "stopped",
            result: Value::Null,
            error: String::new(),
            ..Default::default()
        });
    }
    settle(db, id).await?;
    state.jobs_wake.notify_one();
    Ok(Outcome {
        status: "success",
        result: json!({ "tasks": specs.len() }),
        error: String::new(),
        ..Default::default()
    })
}

/// Creates the tasks and their jobs and sets the run `InProgress`, all in one transaction;
/// false (nothing created) when a stop was requested first.
async fn create_tasks(db: &Db, id: i64, specs: &[TaskSpec]) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let r = sqlx::query(
        "UPDATE replication_executions SET status = 'InProgress' WHERE id = $1 AND status = 'Pending' \
         AND stop_requested = 0",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    for spec in specs {
        let params = serde_json::to_value(spec).unwrap_or(Value::Null);
        let new = NewJob {
            kind: TASK_JOB,
            job_kind: "MANUAL",
            parameters: &params,
            unique_key: None,
            created_by: "replication",
        };
        let job = jobs::enqueue_in(&mut tx, &new).await?;
        sqlx::query(
            "INSERT INTO replication_tasks (execution_id, job_id, status, operation, resource_type, src_resource, \
             dst_resource, digest) VALUES ($1, $2, 'Pending', $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(job)
        .bind(&spec.operation)
        .bind(&spec.resource_type)
        .bind(spec.src_resource())
        .bind(spec.dst_resource())
        .bind(&spec.digest)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}

// ---------------------------------------------------------------- events

/// What happened to an artifact of this registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactEvent {
    Push,
    Delete,
}

/// Called by the registry after a manifest push or delete (and the REST artifact and tag
/// deletes) committed: starts the enabled event-based push policies the artifact passes, off
/// the request path. Never blocks or fails the caller.
pub fn on_artifact_event(state: &AppState, kind: ArtifactEvent, repository: &str, reference: &str) {
    let state = state.clone();
    let event = EventParams {
        kind: match kind {
            ArtifactEvent::Push => "push".into(),
            ArtifactEvent::Delete => "delete".into(),
        },
        repository: repository.to_string(),
        reference: reference.to_string(),
    };
    tokio::spawn(async move {
        if let Err(e) = handle_event(&state, &event).await {
            tracing::warn!(error = %e, repository = event.repository, "event-based replication not started");
        }
    });
}

/// Starts the event-based policies `event` concerns; returns the runs started.
pub async fn handle_event(state: &AppState, event: &EventParams) -> Result<Vec<i64>, sqlx::Error> {
    let mut started = vec![];
    for policy in policy::event_based(&state.db).await? {
        if event.kind == "delete" && !policy.replicate_deletion {
            continue;
        }
        let Ok(filters) = policy.compiled_filters() else { continue };
        if !event_passes(&filters, event) {
            continue;
        }
        let by = format!("event:{}", event.kind);
        // One policy that cannot start does not keep the others from theirs.
        match start(state, &policy, "event_based", &by, Some(event)).await {
            Ok(run) => started.push(run.id()),
            Err(e) => tracing::warn!(policy = policy.id, error = %e, "event-based replication not started"),
        }
    }
    Ok(started)
}

/// Whether the event's repository and tag pass. A push by digest counts as untagged; a
/// deletion by digest is matched on the repository only (its tags went with it, and the
/// destination has that digest only if it was replicated there).
pub fn event_passes(filters: &Filters, event: &EventParams) -> bool {
    let by_digest = event.reference.contains(':');
    if !filters.repository_matches(&event.repository) {
        return false;
    }
    if by_digest && event.kind == "delete" {
        return true;
    }
    let tags: Vec<String> = if by_digest { vec![] } else { vec![event.reference.clone()] };
    filters.filter_tags(&tags).is_some()
}

/// SQL conditions of a name pattern on a column (an exact match for a literal pattern, a
/// `LIKE` prefix otherwise; nothing when the pattern starts with a wildcard).
pub fn name_prefilter(sql: &mut Sql, column: &str, pattern: &super::filters::Pattern) {
    if pattern.is_literal() {
        sql.push(&format!("{column} = ?"), Bind::S(pattern.text.clone()));
    } else if !pattern.like_prefix().is_empty() {
        sql.push(
            &format!("{column} LIKE ? ESCAPE '\\'"),
            Bind::S(format!("{}%", escape_like(pattern.like_prefix()))),
        );
    }
}

/// A replication job was given up after repeated attempts (`jobs::requeue_stale`): its task
/// fails (or its run, when it was the run's job) and the run settles.
pub async fn job_gave_up(db: &Db, job_id: i64) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let task: Option<i64> = sqlx::query_scalar(
        "UPDATE replication_tasks SET status = 'Failed', end_time = $2, \
         status_text = 'gave up after repeated attempts (the replicas running it stopped answering)' \
         WHERE job_id = $1 AND status IN ('Pending', 'InProgress') RETURNING execution_id",
    )
    .bind(job_id)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    if let Some(execution) = task {
        settle(db, execution).await?;
    }
    sqlx::query(
        "UPDATE replication_executions SET status = 'Failed', end_time = $2, active_policy = NULL, \
         status_text = 'gave up after repeated attempts' WHERE job_id = $1 AND status = 'Pending'",
    )
    .bind(job_id)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

//! One replication task: a job (`kind = "replication_task"`) that copies one artifact (each of
//! its tags) to the destination, or deletes it there (`replicate_deletion`).
//!
//! - The job finds its task row by `job_id`. It marks the task `InProgress` only from `Pending`
//!   or `InProgress` (a rerun after its replica died), so a task stopped meanwhile is never
//!   started, and a rerun reuses the same row: never a duplicate task. The copy is idempotent
//!   (the destination is checked before anything moves), so a rerun completes what the dead
//!   replica began.
//! - Transient errors (`ContentError::Transient`: 5xx, timeouts, resets) are retried with a
//!   doubling backoff; anything else fails the task at once with the error's message in the
//!   task's log and `status_text` (bad credentials, a missing remote project, TLS failures).
//! - The destination namespace is prepared first: the adapter's `ensure_namespace` for a remote
//!   destination, a private local project (owned by the policy's creator) for a pull-based run.
//! - A stop request (seen by the job's heartbeat) ends the task `Stopped`.
//! - A deletion removes the destination's manifest by digest (a tag is resolved there first);
//!   after a tag deletion it does so only when the artifact itself is gone here, since a
//!   registry cannot delete one tag of a manifest without the others.
//! - Each finished task settles its run (`execution::settle`), and each artifact written to or
//!   deleted from a remote destination gets an audit row by `replication` (a local destination's
//!   rows are written by `local::LocalRegistry` as the registry's own pushes).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::audit::Event;
use crate::db::now_ms;
use crate::jobs::{JobCtx, Outcome};
use crate::registry::digest::Digest;
use crate::state::AppState;

use super::connector::Connector;
use super::content::{Content, ContentError, ContentResult};
use super::copy::{CopyObserver, CopyOptions, Side};
use super::execution::{self, TaskSpec};
use super::policy::{self, Policy};

/// Runs of a step that fails transiently, before the task fails.
pub const ATTEMPTS: u32 = 4;
/// Chunk size of chunked uploads (`copy_by_chunk`), as Harbor's.
const CHUNK: u64 = 10 * 1024 * 1024;
/// The audit log's user for replicated artifacts.
pub const ACTOR: &str = "replication";

struct Observer {
    ctx: JobCtx,
    bytes: AtomicU64,
}

impl CopyObserver for Observer {
    fn log(&self, line: String) {
        self.ctx.log(line);
    }
    fn transferred(&self, n: u64) {
        let total = self.bytes.fetch_add(n, Ordering::Relaxed) + n;
        self.ctx.set_progress(json!({ "bytes": total }));
    }
    fn should_stop(&self) -> bool {
        self.ctx.should_stop()
    }
}

/// Runs a step, retrying transient failures with a doubling backoff.
async fn retrying<T, F, Fut>(conn: &dyn Connector, ctx: &JobCtx, what: &str, mut step: F) -> ContentResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ContentResult<T>>,
{
    let mut wait = conn.retry_backoff();
    let mut attempt = 1;
    loop {
        match step().await {
            Err(e) if e.is_transient() && attempt < ATTEMPTS && !ctx.should_stop() => {
                ctx.log(format!("{what}: {e}; retrying in {wait:?} (attempt {attempt} of {ATTEMPTS})"));
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            r => return r,
        }
    }
}

/// Runs a task job to its end.
pub async fn run_task_job(state: &AppState, ctx: JobCtx) -> Outcome {
    match run(state, &ctx).await {
        Ok(o) => o,
        Err(e) => {
            ctx.log(format!("error: {e}"));
            Outcome { status: "error", result: Value::Null, error: e.to_string(), ..Default::default() }
        }
    }
}

fn outcome(status: &'static str, error: String) -> Outcome {
    Outcome { status, result: Value::Null, error, ..Default::default() }
}

async fn run(state: &AppState, ctx: &JobCtx) -> Result<Outcome, sqlx::Error> {
    let db = &state.db;
    let Some((task_id, execution_id)) =
        sqlx::query_as::<_, (i64, i64)>("SELECT id, execution_id FROM replication_tasks WHERE job_id = $1")
            .bind(ctx.id)
            .fetch_optional(&db.pool)
            .await?
    else {
        return Ok(outcome("success", "no task for this job".into()));
    };
    let spec: TaskSpec = match serde_json::from_str(&ctx.parameters) {
        Ok(s) => s,
        Err(e) => {
            return finish(state, ctx, task_id, execution_id, Err(format!("bad task parameters: {e}"))).await
        }
    };
    let stop_requested = execution::get(db, execution_id).await?.is_none_or(|e| e.stop_requested);
    let now = now_ms();
    let started = if stop_requested {
        sqlx::query(
            "UPDATE replication_tasks SET status = 'Stopped', end_time = $2 WHERE id = $1 \
             AND status IN ('Pending', 'InProgress')",
        )
        .bind(task_id)
        .bind(now)
        .execute(&db.pool)
        .await?;
        false
    } else {
        sqlx::query(
            "UPDATE replication_tasks SET status = 'InProgress', \
             start_time = CASE WHEN start_time = 0 THEN $2 ELSE start_time END \
             WHERE id = $1 AND status IN ('Pending', 'InProgress')",
        )
        .bind(task_id)
        .bind(now)
        .execute(&db.pool)
        .await?
        .rows_affected()
            == 1
    };
    if !started {
        ctx.log("the task was stopped before it started");
        if execution::settle(db, execution_id).await? {
            super::events::notify_finished(state, execution_id).await?;
        }
        return Ok(outcome("stopped", String::new()));
    }
    let Some(policy) =
        policy::get(db, execution::get(db, execution_id).await?.map_or(0, |e| e.policy_id)).await?
    else {
        let r = Err("the replication policy no longer exists".to_string());
        return finish(state, ctx, task_id, execution_id, r).await;
    };
    ctx.log(format!(
        "{} {} → {} (policy {:?})",
        spec.operation,
        spec.src_resource(),
        spec.dst_resource(),
        policy.name
    ));
    let obs = Observer { ctx: ctx.clone(), bytes: AtomicU64::new(0) };
    let r = replicate(state, ctx, &policy, &spec, &obs).await;
    let bytes = obs.bytes.load(Ordering::Relaxed);
    let r = r.map_err(|e| e.to_string());
    if r.is_ok() {
        audit(state, &policy, &spec);
    }
    finish(state, ctx, task_id, execution_id, r.map(|digest| (digest, bytes))).await
}

/// Records the task's end (unless the job was taken back by another replica) and settles the run.
async fn finish(
    state: &AppState,
    ctx: &JobCtx,
    task_id: i64,
    execution_id: i64,
    r: Result<(String, u64), String>,
) -> Result<Outcome, sqlx::Error> {
    if ctx.lost() {
        return Ok(outcome("error", "taken back by another replica".into()));
    }
    let (status, text, digest, bytes) = match r {
        Ok((digest, bytes)) => ("Succeed", String::new(), digest, bytes),
        Err(_) if ctx.should_stop() => ("Stopped", "stopped".to_string(), String::new(), 0),
        Err(e) => ("Failed", e, String::new(), 0),
    };
    match status {
        "Succeed" => ctx.log("done"),
        "Stopped" => ctx.log("stopped on request"),
        _ => ctx.log(format!("failed: {text}")),
    }
    sqlx::query(
        "UPDATE replication_tasks SET status = $2, status_text = $3, end_time = $4, bytes = $5, \
         digest = CASE WHEN $6 = '' THEN digest ELSE $6 END WHERE id = $1 AND status = 'InProgress'",
    )
    .bind(task_id)
    .bind(status)
    .bind(&text)
    .bind(now_ms())
    .bind(bytes as i64)
    .bind(&digest)
    .execute(&state.db.pool)
    .await?;
    if execution::settle(&state.db, execution_id).await? {
        super::events::notify_finished(state, execution_id).await?;
    }
    Ok(match status {
        "Succeed" => Outcome {
            status: "success",
            result: json!({ "digest": digest, "bytes": bytes }),
            error: text,
            ..Default::default()
        },
        "Stopped" => outcome("stopped", text),
        _ => outcome("error", text),
    })
}

/// The copy or the deletion; returns the digest replicated (empty when unknown).
async fn replicate(
    state: &AppState,
    ctx: &JobCtx,
    policy: &Policy,
    spec: &TaskSpec,
    obs: &Observer,
) -> ContentResult<String> {
    let conn: Arc<dyn Connector> = state.replication.clone();
    let remote_id = policy.remote_id();
    let adapter =
        retrying(&*conn, ctx, "connecting to the remote registry", || conn.adapter(state, remote_id))
            .await
            .map_err(|e| ContentError::Other(format!("registry {remote_id}: {e}")))?;
    let local = conn.local(state, ACTOR);
    let remote = adapter.content();
    let (src, dst): (&dyn Content, &dyn Content) =
        if policy.push_based() { (&*local, &*remote) } else { (&*remote, &*local) };
    let refs: Vec<String> = if spec.tags.is_empty() { vec![spec.src_ref.clone()] } else { spec.tags.clone() };

    if spec.operation == "deletion" {
        for reference in &refs {
            let digest: Digest = match reference.parse() {
                Ok(d) => d,
                Err(_) => {
                    let head = retrying(&*conn, ctx, "looking up the destination", || {
                        dst.head_manifest(&spec.dst_repo, reference)
                    })
                    .await?;
                    match head {
                        Some(d) => d.digest,
                        None => {
                            ctx.log(format!("{}:{reference} is not on the destination", spec.dst_repo));
                            continue;
                        }
                    }
                }
            };
            // A registry deletes a tag only with its manifest (and every other tag on it): when
            // only a tag went here and the artifact stays, the destination keeps it too.
            if policy.push_based()
                && !spec.tags.is_empty()
                && still_here(state, &spec.src_repo, &digest).await?
            {
                ctx.log(format!(
                    "{}@{digest} is still here (only the tag {reference} was deleted): kept on the destination",
                    spec.src_repo
                ));
                continue;
            }
            let gone = retrying(&*conn, ctx, "deleting on the destination", || {
                dst.delete_manifest(&spec.dst_repo, &digest)
            })
            .await?;
            ctx.log(if gone {
                format!("deleted {}@{digest}", spec.dst_repo)
            } else {
                format!("{}@{digest} was already absent", spec.dst_repo)
            });
        }
        return Ok(String::new());
    }

    let namespace = spec.dst_repo.split('/').next().unwrap_or_default().to_string();
    if policy.push_based() {
        retrying(&*conn, ctx, "preparing the destination namespace", || adapter.ensure_namespace(&namespace))
            .await?;
    } else {
        ensure_local_project(state, ctx, policy, &namespace).await?;
    }
    let opts = CopyOptions {
        parallel_blobs: state.config.replication.parallel_blobs,
        speed_kib: policy.speed_kib.max(0) as u64,
        override_existing: policy.override_existing,
        with_referrers: true,
        chunk_size: policy.copy_by_chunk.then_some(CHUNK),
    };
    let mut digest = spec.digest.clone();
    for reference in &refs {
        let src_side = Side { content: src, repo: &spec.src_repo, reference: &spec.src_ref };
        let dst_side = Side { content: dst, repo: &spec.dst_repo, reference };
        let report = retrying(&*conn, ctx, "copying", || {
            conn.copy(src_side, dst_side, &opts, obs as &dyn CopyObserver)
        })
        .await?;
        if let Some(d) = &report.digest {
            digest = d.to_string();
        }
        ctx.log(if report.unchanged {
            format!("{}:{reference} is up to date ({digest})", spec.dst_repo)
        } else if report.skipped_existing {
            format!("{}:{reference} points at another artifact and override is off: skipped", spec.dst_repo)
        } else {
            format!(
                "copied {} → {}:{reference}: {} manifest(s), {} blob(s) copied, {} mounted, {} present, {} bytes",
                spec.src_resource(),
                spec.dst_repo,
                report.manifests,
                report.blobs_copied,
                report.blobs_mounted,
                report.blobs_present,
                report.bytes
            )
        });
        if ctx.should_stop() {
            return Err(ContentError::Other("stopped".into()));
        }
    }
    Ok(digest)
}

/// Creates the local project a pull-based run writes into when it is missing (as Harbor does),
/// private, owned by the policy's creator (or `admin` when that account is gone).
async fn ensure_local_project(
    state: &AppState,
    ctx: &JobCtx,
    policy: &Policy,
    name: &str,
) -> ContentResult<()> {
    let db_err = |e: sqlx::Error| ContentError::Transient(format!("database: {e}"));
    if crate::projects::get_by_name(&state.db, name).await.map_err(db_err)?.is_some() {
        return Ok(());
    }
    let mut owner = crate::accounts::get_by_name(&state.db, &policy.created_by).await.map_err(db_err)?;
    if owner.is_none() {
        owner = crate::accounts::get_by_name(&state.db, "admin").await.map_err(db_err)?;
    }
    let owner = owner.ok_or_else(|| ContentError::Other(format!("no owner for the new project {name:?}")))?;
    // Harbor gives a project replication creates the default quota (`storage_per_project`).
    let limit = crate::settings::load(&state.db, &state.config)
        .await
        .map_err(|e| ContentError::Transient(format!("settings: {e}")))?
        .storage_per_project;
    match crate::projects::create(&state.db, name, false, &owner, None, limit).await {
        Ok(_) => {
            ctx.log(format!("created the project {name:?} (owner {})", owner.username));
            Ok(())
        }
        Err(crate::projects::ProjectError::Exists(_)) => Ok(()),
        Err(e) => Err(ContentError::Other(format!("cannot create the project {name:?}: {e}"))),
    }
}

/// Whether this registry still has `repo@digest`.
async fn still_here(state: &AppState, repo: &str, digest: &Digest) -> ContentResult<bool> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT a.id FROM artifacts a JOIN repositories r ON r.id = a.repository_id WHERE r.name = $1 AND a.digest = $2",
    )
    .bind(repo)
    .bind(digest.to_string())
    .fetch_optional(&state.db.pool)
    .await
    .map_err(|e| ContentError::Transient(format!("database: {e}")))?;
    Ok(found.is_some())
}

/// Audit rows for an artifact replicated to (or deleted from) a remote destination.
fn audit(state: &AppState, policy: &Policy, spec: &TaskSpec) {
    if !policy.push_based() {
        return;
    }
    let operation = if spec.operation == "deletion" { "delete" } else { "create" };
    let detail = format!("replication policy {:?}: {} {}", policy.name, spec.operation, spec.src_resource());
    state.audit.record(Event::new(ACTOR, operation, "artifact", spec.dst_resource()).detail(detail));
}

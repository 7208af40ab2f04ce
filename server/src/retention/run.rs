//! Retention runs: executions and their tasks (one per repository), run as one job of the
//! job queue (see the module doc of `retention`).

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;

use super::eval::{self, Candidate};
use super::Policy;
use crate::artifacts::write::{self, Guard};
use crate::db::{now_ms, Db, Flag};
use crate::immutable;
use crate::jobs::{self, JobCtx, NewJob, Outcome};
use crate::registry::meta::MetaError;
use crate::state::AppState;

/// The job kind.
pub const JOB: &str = "retention";
/// A task's log is cut here (a table row per artifact; 100k artifacts are ~10 MiB).
pub const MAX_LOG: usize = 4 << 20;

pub const FINAL: [&str; 3] = ["Success", "Error", "Stopped"];

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Execution {
    pub id: i64,
    pub policy_id: i64,
    pub status: String,
    pub trigger: String,
    #[sqlx(try_from = "Flag")]
    pub dry_run: bool,
    pub job_id: i64,
    pub created_by: String,
    pub start_time: i64,
    pub end_time: i64,
}

const EXEC_COLUMNS: &str =
    "id, policy_id, status, trigger, dry_run, job_id, created_by, start_time, end_time";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Task {
    pub id: i64,
    pub execution_id: i64,
    pub repository: String,
    pub status: String,
    pub total: i64,
    pub retained: i64,
    pub deleted: i64,
    pub start_time: i64,
    pub end_time: i64,
}

const TASK_COLUMNS: &str =
    "id, execution_id, repository, status, total, retained, deleted, start_time, end_time";

impl Task {
    /// Harbor's `status_code`: 0 pending, 2 running, 3 ended.
    pub fn status_code(&self) -> i64 {
        match self.status.as_str() {
            "Pending" => 0,
            "Running" => 2,
            _ => 3,
        }
    }
}

/// Starts a run now. `None`: a run of this policy is already pending or running.
pub async fn trigger(
    state: &AppState,
    policy: &Policy,
    dry_run: bool,
    by: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = state.db.begin_write().await?;
    let id = insert_execution(&mut tx, policy.id, "MANUAL", dry_run, by, 0).await?;
    let params = json!({ "execution_id": id });
    let key = super::schedule_kind(policy.id);
    let new =
        NewJob { kind: JOB, job_kind: "MANUAL", parameters: &params, unique_key: Some(&key), created_by: by };
    let job = match jobs::enqueue_in(&mut tx, &new).await {
        Ok(job) => job,
        Err(e) if crate::db::error::is_conflict(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    sqlx::query("UPDATE retention_executions SET job_id = $2 WHERE id = $1")
        .bind(id)
        .bind(job)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    state.jobs_wake.notify_one();
    tracing::info!(policy = policy.id, execution = id, dry_run, "retention queued");
    Ok(Some(id))
}

async fn insert_execution(
    conn: &mut sqlx::AnyConnection,
    policy_id: i64,
    trigger: &str,
    dry_run: bool,
    by: &str,
    job_id: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO retention_executions (policy_id, status, trigger, dry_run, job_id, created_by, start_time) \
         VALUES ($1, 'Pending', $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(policy_id)
    .bind(trigger)
    .bind(i64::from(dry_run))
    .bind(job_id)
    .bind(by)
    .bind(now_ms())
    .fetch_one(&mut *conn)
    .await
}

pub async fn get_execution(db: &Db, id: i64) -> Result<Option<Execution>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {EXEC_COLUMNS} FROM retention_executions WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
}

/// Ends runs whose job ended without ending them (given up after repeated attempts, or its
/// replica lost the database at the end), with their unfinished tasks.
pub async fn settle(db: &Db, policy_id: i64) -> Result<(), sqlx::Error> {
    // Usually nothing to do: find out with a read before taking the write lock.
    let stale: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM retention_executions e WHERE e.policy_id = $1 AND e.status IN ('Pending', 'Running') \
         AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = e.job_id AND j.status IN ('stopped', 'error', 'success'))",
    )
    .bind(policy_id)
    .fetch_one(&db.pool)
    .await?;
    if stale == 0 {
        return Ok(());
    }
    for (job_status, status) in [("stopped", "Stopped"), ("error", "Error"), ("success", "Error")] {
        let cond = "status IN ('Pending', 'Running') AND EXISTS (SELECT 1 FROM jobs j \
                    WHERE j.id = retention_executions.job_id AND j.status = $2)";
        let mut tx = db.begin_write().await?;
        sqlx::query(&format!(
            "UPDATE retention_tasks SET status = $3, end_time = $4 WHERE status IN ('Pending', 'Running') \
             AND execution_id IN (SELECT id FROM retention_executions WHERE policy_id = $1 AND {cond})"
        ))
        .bind(policy_id)
        .bind(job_status)
        .bind(status)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "UPDATE retention_executions SET status = $3, end_time = $4 WHERE policy_id = $1 AND {cond}"
        ))
        .bind(policy_id)
        .bind(job_status)
        .bind(status)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

pub async fn list_executions(
    db: &Db,
    policy_id: i64,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Execution>, i64), sqlx::Error> {
    settle(db, policy_id).await?;
    let rows = sqlx::query_as(&format!(
        "SELECT {EXEC_COLUMNS} FROM retention_executions WHERE policy_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(policy_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    let total = sqlx::query_scalar("SELECT COUNT(*) FROM retention_executions WHERE policy_id = $1")
        .bind(policy_id)
        .fetch_one(&db.pool)
        .await?;
    Ok((rows, total))
}

pub async fn list_tasks(
    db: &Db,
    execution_id: i64,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Task>, i64), sqlx::Error> {
    let rows = sqlx::query_as(&format!(
        "SELECT {TASK_COLUMNS} FROM retention_tasks WHERE execution_id = $1 ORDER BY id LIMIT $2 OFFSET $3"
    ))
    .bind(execution_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    let total = sqlx::query_scalar("SELECT COUNT(*) FROM retention_tasks WHERE execution_id = $1")
        .bind(execution_id)
        .fetch_one(&db.pool)
        .await?;
    Ok((rows, total))
}

/// A task of `execution_id` and its log.
pub async fn task_log(db: &Db, execution_id: i64, task_id: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT log FROM retention_tasks WHERE id = $1 AND execution_id = $2")
        .bind(task_id)
        .bind(execution_id)
        .fetch_optional(&db.pool)
        .await
}

/// Asks a run to stop: a pending run ends at once, a running one at its next artifact.
pub async fn stop(db: &Db, e: &Execution) -> Result<(), sqlx::Error> {
    if e.job_id > 0 {
        jobs::request_stop(db, e.job_id).await?;
    }
    let now = now_ms();
    sqlx::query("UPDATE retention_executions SET status = 'Stopped', end_time = $2 WHERE id = $1 AND status = 'Pending'")
        .bind(e.id)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------- the job

#[derive(Debug, Default, Deserialize)]
struct Params {
    execution_id: Option<i64>,
    policy_id: Option<i64>,
}

fn done(note: impl Into<String>) -> Outcome {
    Outcome {
        status: "success",
        result: json!({ "note": note.into() }),
        error: String::new(),
        ..Default::default()
    }
}

pub async fn run_job(state: &AppState, ctx: JobCtx) -> Outcome {
    match execute(state, &ctx).await {
        Ok(o) => o,
        Err(e) => {
            ctx.log(format!("retention failed: {e}"));
            Outcome { status: "error", result: Value::Null, error: e.to_string(), ..Default::default() }
        }
    }
}

/// Deleted artifacts listed in one TAG_RETENTION event at most.
const MAX_REPORTED: usize = 1000;

async fn notify_finished(
    state: &AppState,
    exec: &Execution,
    policy: &Policy,
    status: &str,
    removed: &[Value],
) -> Result<(), sqlx::Error> {
    let counts: (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(total), 0) AS BIGINT), CAST(COALESCE(SUM(retained), 0) AS BIGINT) \
         FROM retention_tasks WHERE execution_id = $1",
    )
    .bind(exec.id)
    .fetch_one(&state.db.pool)
    .await?;
    let project: Option<String> = sqlx::query_scalar("SELECT name FROM projects WHERE id = $1")
        .bind(policy.project_id)
        .fetch_optional(&state.db.pool)
        .await?;
    let rules = serde_json::to_value(&policy.rules).unwrap_or(Value::Null);
    let event = crate::webhook::payload::Emitted::new(policy.project_id, "TAG_RETENTION", &exec.created_by)
        .data(
            "retention",
            json!({
                "total": counts.0,
                "retained": counts.1,
                "harbor_hostname": state.audit.webhooks.host(),
                "project_name": project.unwrap_or_default(),
                "retention_policy_id": policy.id,
                "retention_rule": rules,
                "result": if status == "Success" { "SUCCESS" } else { "ERROR" },
                "deleted_artifact": removed,
            }),
        );
    state.audit.notify(event);
    Ok(())
}

async fn end_execution(db: &Db, id: i64, status: &str) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE retention_tasks SET status = $2, end_time = $3 WHERE execution_id = $1 \
         AND status IN ('Pending', 'Running')",
    )
    .bind(id)
    .bind(if status == "Success" { "Error" } else { status })
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE retention_executions SET status = $2, end_time = $3 WHERE id = $1")
        .bind(id)
        .bind(status)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

async fn execute(state: &AppState, ctx: &JobCtx) -> Result<Outcome, sqlx::Error> {
    let db = &state.db;
    let p: Params = serde_json::from_str(&ctx.parameters).unwrap_or_default();
    let id = match (p.execution_id, p.policy_id) {
        (Some(id), _) => id,
        (None, Some(policy_id)) => {
            // A schedule fired: this job's run (a rerun finds the run it created).
            let existing: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM retention_executions WHERE policy_id = $1 AND job_id = $2",
            )
            .bind(policy_id)
            .bind(ctx.id)
            .fetch_optional(&db.pool)
            .await?;
            match existing {
                Some(id) => id,
                None => {
                    if super::get(db, policy_id).await?.is_none() {
                        return Ok(done(format!("retention policy {policy_id} no longer exists")));
                    }
                    let mut tx = db.begin_write().await?;
                    let id =
                        insert_execution(&mut tx, policy_id, "SCHEDULE", false, "scheduler", ctx.id).await?;
                    tx.commit().await?;
                    id
                }
            }
        }
        _ => return Ok(done("no execution named")),
    };
    let Some(exec) = get_execution(db, id).await? else {
        return Ok(done(format!("retention execution {id} no longer exists")));
    };
    if FINAL.contains(&exec.status.as_str()) {
        return Ok(done(format!("execution {id} is already {}", exec.status)));
    }
    let Some(policy) = super::get(db, exec.policy_id).await? else {
        end_execution(db, id, "Error").await?;
        return Ok(done("policy deleted"));
    };
    if ctx.should_stop() {
        end_execution(db, id, "Stopped").await?;
        return Ok(Outcome {
            status: "stopped",
            result: Value::Null,
            error: String::new(),
            ..Default::default()
        });
    }
    let running = sqlx::query(
        "UPDATE retention_executions SET status = 'Running' WHERE id = $1 AND status IN ('Pending', 'Running')",
    )
    .bind(id)
    .execute(&db.pool)
    .await?;
    if running.rows_affected() == 0 {
        return Ok(done(format!("execution {id} was stopped")));
    }
    let rules = super::compile(&policy.rules);
    ctx.log(format!(
        "retention of project {} (policy {}, execution {id}{})",
        policy.project_id,
        policy.id,
        if exec.dry_run { ", dry run" } else { "" }
    ));
    let tasks = make_tasks(db, &policy, id, &rules).await?;
    let (mut failed, mut deleted_total) = (0usize, 0i64);
    let mut removed = vec![];
    for task in &tasks {
        if ctx.should_stop() || ctx.lost() {
            end_execution(db, id, "Stopped").await?;
            return Ok(Outcome {
                status: "stopped",
                result: Value::Null,
                error: String::new(),
                ..Default::default()
            });
        }
        let (status, deleted) = run_task(state, ctx, &exec, &policy, &rules, task, &mut removed).await?;
        deleted_total += deleted;
        if status == "Error" {
            failed += 1;
        }
        if status == "Stopped" {
            end_execution(db, id, "Stopped").await?;
            return Ok(Outcome {
                status: "stopped",
                result: Value::Null,
                error: String::new(),
                ..Default::default()
            });
        }
        ctx.set_progress(json!({ "tasks": tasks.len(), "deleted": deleted_total }));
    }
    let status = if failed > 0 { "Error" } else { "Success" };
    end_execution(db, id, status).await?;
    ctx.log(format!("{} repositories, {deleted_total} artifacts deleted, {failed} failed", tasks.len()));
    // Harbor's TAG_RETENTION webhook: real runs that deleted something.
    if !exec.dry_run && deleted_total > 0 {
        notify_finished(state, &exec, &policy, status, &removed).await?;
    }
    Ok(Outcome {
        status: if failed > 0 { "error" } else { "success" },
        result: json!({ "execution_id": id, "repositories": tasks.len(), "deleted": deleted_total }),
        error: if failed > 0 { format!("{failed} repositories failed") } else { String::new() },
        ..Default::default()
    })
}

/// The run's tasks not yet ended; created (one per covered repository) on the first attempt.
async fn make_tasks(
    db: &Db,
    policy: &Policy,
    id: i64,
    rules: &[eval::Rule],
) -> Result<Vec<Task>, sqlx::Error> {
    let made: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM retention_tasks WHERE execution_id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await?;
    if made == 0 {
        let repos: Vec<String> =
            sqlx::query_scalar("SELECT name FROM repositories WHERE project_id = $1 ORDER BY name")
                .bind(policy.project_id)
                .fetch_all(&db.pool)
                .await?;
        let covered: Vec<&String> = repos
            .iter()
            .filter(|r| !eval::rules_for(rules, immutable::name_in_project(r)).is_empty())
            .collect();
        let mut tx = db.begin_write().await?;
        for r in covered {
            sqlx::query("INSERT INTO retention_tasks (execution_id, repository) VALUES ($1, $2)")
                .bind(id)
                .bind(r)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    sqlx::query_as(&format!(
        "SELECT {TASK_COLUMNS} FROM retention_tasks WHERE execution_id = $1 \
         AND status IN ('Pending', 'Running') ORDER BY id"
    ))
    .bind(id)
    .fetch_all(&db.pool)
    .await
}

/// A repository's artifacts as the rules see them (those listed on their own: not an index's
/// children or accessories, which go with their index or subject).
pub async fn candidates(db: &Db, repository_id: i64) -> Result<Vec<Candidate>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, digest, pushed_at, pulled_at FROM artifacts WHERE repository_id = $1 AND visible = 1",
    )
    .bind(repository_id)
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut index = HashMap::with_capacity(rows.len());
    for r in rows {
        let id: i64 = r.try_get("id")?;
        index.insert(id, out.len());
        out.push(Candidate {
            id,
            digest: r.try_get("digest")?,
            pushed_at: r.try_get("pushed_at")?,
            pulled_at: r.try_get("pulled_at")?,
            ..Default::default()
        });
    }
    let tags: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT artifact_id, name, pushed_at FROM tags WHERE repository_id = $1 ORDER BY name",
    )
    .bind(repository_id)
    .fetch_all(&db.pool)
    .await?;
    for (a, name, pushed) in tags {
        if let Some(c) = index.get(&a).map(|&i| &mut out[i]) {
            c.tags.push(name);
            c.pushed_at = c.pushed_at.max(pushed);
        }
    }
    let labels: Vec<(i64, String)> = sqlx::query_as(
        "SELECT al.artifact_id, l.name FROM artifact_labels al JOIN labels l ON l.id = al.label_id \
         JOIN artifacts a ON a.id = al.artifact_id WHERE a.repository_id = $1",
    )
    .bind(repository_id)
    .fetch_all(&db.pool)
    .await?;
    for (a, name) in labels {
        if let Some(c) = index.get(&a).map(|&i| &mut out[i]) {
            c.labels.push(name);
        }
    }
    Ok(out)
}

fn time(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// Evaluates and (unless a dry run) applies the rules to one repository. Returns the task's
/// status and how many artifacts it deleted.
async fn run_task(
    state: &AppState,
    ctx: &JobCtx,
    exec: &Execution,
    policy: &Policy,
    rules: &[eval::Rule],
    task: &Task,
    removed: &mut Vec<Value>,
) -> Result<(&'static str, i64), sqlx::Error> {
    let db = &state.db;
    let started = now_ms();
    sqlx::query("UPDATE retention_tasks SET status = 'Running', start_time = $2 WHERE id = $1")
        .bind(task.id)
        .bind(started)
        .execute(&db.pool)
        .await?;
    let repo_id: Option<i64> =
        sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1 AND project_id = $2")
            .bind(&task.repository)
            .bind(policy.project_id)
            .fetch_optional(&db.pool)
            .await?;
    let cands = match repo_id {
        Some(r) => candidates(db, r).await?,
        None => vec![],
    };
    let applying = eval::rules_for(rules, immutable::name_in_project(&task.repository));
    let keep = eval::retained(&applying, &cands, started);
    let protected = immutable::rules_of(&db.pool, policy.project_id).await?;

    let mut log = format!(
        "Repository: {}\nRules: {}\nDry run: {}\nCandidates: {}\n\n{:<73} {:<30} {:<19} {:<19} {}\n",
        task.repository,
        applying.len(),
        exec.dry_run,
        cands.len(),
        "Digest",
        "Tags",
        "Pushed",
        "Pulled",
        "Retention"
    );
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse((cands[i].pushed_at, cands[i].id)));
    let (mut deleted, mut errors, mut stopped) = (0i64, 0usize, false);
    for i in order {
        let c = &cands[i];
        let verdict: String = if keep[i] {
            "RETAIN".into()
        } else if let Some(t) =
            c.tags.iter().find(|t| immutable::is_immutable(&protected, &task.repository, t).is_some())
        {
            format!("RETAIN (tag {t} is immutable)")
        } else if exec.dry_run {
            deleted += 1;
            "DEL".into()
        } else if stopped || ctx.should_stop() || ctx.lost() {
            stopped = true;
            "RETAIN (stopped)".into()
        } else {
            match write::delete_artifact_guarded(db, c.id, Guard::Unchanged(started)).await {
                Ok(gone) if gone.is_empty() => "RETAIN (changed since the evaluation)".into(),
                Ok(gone) => {
                    deleted += 1;
                    // For the TAG_RETENTION webhook (Harbor's `deleted_artifact`), bounded.
                    if removed.len() < MAX_REPORTED {
                        let name_tag = if c.tags.is_empty() {
                            format!("{}@{}", task.repository, c.digest)
                        } else {
                            format!("{}:{}", task.repository, c.tags.join(","))
                        };
                        removed.push(json!({"type": "artifact", "status": "SUCCESS", "name_tag": name_tag,
                            "references": [c.digest]}));
                    }
                    for x in &gone {
                        state.audit.record(
                            crate::audit::Event::new(
                                &exec.created_by,
                                "delete",
                                "artifact",
                                format!("{}@{}", task.repository, x.digest),
                            )
                            .project(policy.project_id)
                            .detail(format!("tag retention execution {}", exec.id)),
                        );
                    }
                    crate::replication::on_artifact_event(
                        state,
                        crate::replication::ArtifactEvent::Delete,
                        &task.repository,
                        &c.digest,
                    );
                    "DEL".into()
                }
                Err(MetaError::Db(e)) => return Err(e),
                Err(e @ (MetaError::Immutable { .. } | MetaError::Referenced(_))) => format!("RETAIN ({e})"),
                Err(e) => {
                    errors += 1;
                    format!("ERR: {e}")
                }
            }
        };
        if log.len() < MAX_LOG {
            let tags = if c.tags.is_empty() { "<none>".to_string() } else { c.tags.join(",") };
            let _ = writeln!(
                log,
                "{:<73} {:<30} {:<19} {:<19} {verdict}",
                c.digest,
                tags,
                time(c.pushed_at),
                time(c.pulled_at)
            );
        }
    }
    if log.len() >= MAX_LOG {
        let _ = writeln!(log, "… the log is cut at {} MiB", MAX_LOG >> 20);
    }
    let total = cands.len() as i64;
    let status = if stopped {
        "Stopped"
    } else if errors > 0 {
        "Error"
    } else {
        "Success"
    };
    let _ = writeln!(
        log,
        "\nTotal {total}, retained {}, deleted {deleted}{}",
        total - deleted,
        if exec.dry_run { " (dry run: nothing was deleted)" } else { "" }
    );
    sqlx::query(
        "UPDATE retention_tasks SET status = $2, total = $3, retained = $4, deleted = $5, log = $6, end_time = $7 \
         WHERE id = $1",
    )
    .bind(task.id)
    .bind(status)
    .bind(total)
    .bind(total - deleted)
    .bind(deleted)
    .bind(&log)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    ctx.log(format!(
        "{}: {total} artifacts, {deleted} deleted{}",
        task.repository,
        if exec.dry_run { " (dry run)" } else { "" }
    ));
    Ok((status, if exec.dry_run { 0 } else { deleted }))
}

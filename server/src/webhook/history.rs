//! What policies received and how each delivery went (`…/executions`, `…/tasks`, `…/log`).

use std::collections::HashMap;

use crate::db::Db;

#[derive(Debug, sqlx::FromRow)]
pub struct ExecutionRow {
    pub id: i64,
    pub event_type: String,
    pub event_id: String,
    pub payload: String,
    pub status: String,
    pub status_message: String,
    pub start_time: i64,
    pub end_time: i64,
}

#[derive(Debug, sqlx::FromRow)]
pub struct TaskRow {
    pub id: i64,
    pub address: String,
    pub payload_format: String,
    pub status: String,
    pub status_message: String,
    pub run_count: i64,
    pub next_attempt: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub start_time: i64,
    pub end_time: i64,
}

fn page(page: u64, size: u64) -> String {
    format!("LIMIT {size} OFFSET {}", (page.max(1) - 1).saturating_mul(size))
}

/// A policy's executions, newest first; `filter` is (`status` | `event_type`, value).
pub async fn executions(
    db: &Db,
    policy: i64,
    filter: Option<(String, String)>,
    pg: u64,
    size: u64,
) -> Result<(Vec<ExecutionRow>, i64), sqlx::Error> {
    let (cond, value) = match &filter {
        Some((k, v)) if k == "status" => (" AND status = $2", v.as_str()),
        Some((_, v)) => (" AND event_type = $2", v.as_str()),
        None => (" AND $2 = $2", ""),
    };
    // An unsettled execution none of whose unsettled tasks has a live job was stopped from the
    // job service (its jobs stopped before they ran): it reads as `Stopped`.
    let executions = "(SELECT e.id, e.policy_id, e.event_type, e.event_id, e.payload, \
         CASE WHEN e.status IN ('Pending', 'Running') AND NOT EXISTS (SELECT 1 FROM webhook_tasks t \
           LEFT JOIN jobs j ON j.id = t.job_id WHERE t.execution_id = e.id AND t.status IN ('Pending', 'Running') \
           AND (j.status IS NULL OR j.status IN ('pending', 'running'))) THEN 'Stopped' ELSE e.status END AS status, \
         e.status_message, e.start_time, e.end_time FROM webhook_executions e WHERE e.policy_id = $1) executions";
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {executions} WHERE 1 = 1{cond}"))
        .bind(policy)
        .bind(value)
        .fetch_one(&db.pool)
        .await?;
    let rows = sqlx::query_as(&format!(
        "SELECT id, event_type, event_id, payload, status, status_message, start_time, end_time \
         FROM {executions} WHERE 1 = 1{cond} ORDER BY id DESC {}",
        page(pg, size)
    ))
    .bind(policy)
    .bind(value)
    .fetch_all(&db.pool)
    .await?;
    Ok((rows, total))
}

async fn execution_of(db: &Db, policy: i64, execution: i64) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM webhook_executions WHERE id = $1 AND policy_id = $2")
            .bind(execution)
            .bind(policy)
            .fetch_optional(&db.pool)
            .await?;
    Ok(found.is_some())
}

/// An execution's tasks by id; `None` when the execution is not the policy's.
pub async fn tasks(
    db: &Db,
    policy: i64,
    execution: i64,
    filter: Option<(String, String)>,
    pg: u64,
    size: u64,
) -> Result<Option<(Vec<TaskRow>, i64)>, sqlx::Error> {
    if !execution_of(db, policy, execution).await? {
        return Ok(None);
    }
    let (cond, value) = match &filter {
        Some((_, v)) => (" AND status = $2", v.as_str()),
        None => (" AND $2 = $2", ""),
    };
    // A pending task whose delivery job is running is being attempted right now: the attempt
    // writes nothing until it ends (`deliver::run_job`), so `Running` is read from the job; a
    // pending task whose job was stopped from the job service reads `Stopped`.
    let tasks = "(SELECT t.id, t.address, t.payload_format, \
         CASE WHEN t.status = 'Pending' AND j.status = 'running' THEN 'Running' \
         WHEN t.status = 'Pending' AND j.status = 'stopped' THEN 'Stopped' ELSE t.status END AS status, \
         t.status_message, t.run_count, t.next_attempt, t.created_at, t.updated_at, t.start_time, t.end_time \
         FROM webhook_tasks t LEFT JOIN jobs j ON j.id = t.job_id WHERE t.execution_id = $1) tasks";
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {tasks} WHERE 1 = 1{cond}"))
        .bind(execution)
        .bind(value)
        .fetch_one(&db.pool)
        .await?;
    let rows = sqlx::query_as(&format!(
        "SELECT id, address, payload_format, status, status_message, run_count, next_attempt, created_at, \
         updated_at, start_time, end_time FROM {tasks} WHERE 1 = 1{cond} ORDER BY id {}",
        page(pg, size)
    ))
    .bind(execution)
    .bind(value)
    .fetch_all(&db.pool)
    .await?;
    Ok(Some((rows, total)))
}

/// A task's log (its delivery job's); `None` when the task is not the policy's.
pub async fn task_log(
    db: &Db,
    policy: i64,
    execution: i64,
    task: i64,
) -> Result<Option<String>, sqlx::Error> {
    if !execution_of(db, policy, execution).await? {
        return Ok(None);
    }
    let job: Option<i64> =
        sqlx::query_scalar("SELECT job_id FROM webhook_tasks WHERE id = $1 AND execution_id = $2")
            .bind(task)
            .bind(execution)
            .fetch_optional(&db.pool)
            .await?;
    match job {
        None => Ok(None),
        Some(job) => crate::jobs::log_text(db, job).await.map(Some),
    }
}

/// The last execution time per (policy, event type) of a project's policies.
pub async fn last_triggers(db: &Db, project_id: i64) -> Result<HashMap<(i64, String), i64>, sqlx::Error> {
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT e.policy_id, e.event_type, MAX(e.start_time) FROM webhook_executions e \
         JOIN webhook_policies p ON p.id = e.policy_id WHERE p.project_id = $1 GROUP BY e.policy_id, e.event_type",
    )
    .bind(project_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|(p, t, at)| ((p, t), at)).collect())
}

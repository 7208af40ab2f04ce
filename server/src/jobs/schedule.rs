//! Schedules (cron, 6 fields with seconds as in Harbor, or 5): every replica checks due
//! schedules; moving `next_run` forward is a compare-and-set, so one replica fires each time
//! (see the module doc of `jobs`).

use serde::Serialize;
use serde_json::Value;

use super::{enqueue, NewJob};
use crate::db::{now_ms, Db};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Schedule {
    pub kind: String,
    pub cron: String,
    pub parameters: String,
    pub next_run: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Parses a cron expression: 6 fields (seconds first, Harbor's form) or 5.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    let fields = expr.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(format!("cron {expr:?}: expected 5 or 6 fields, found {fields}"));
    }
    croner::Cron::new(expr).with_seconds_optional().parse().map_err(|e| format!("cron {expr:?}: {e}"))
}

/// The first time strictly after `after_ms` that `expr` matches.
pub fn next_run(expr: &str, after_ms: i64) -> Result<i64, String> {
    let cron = parse_cron(expr)?;
    let after = chrono::DateTime::from_timestamp_millis(after_ms).ok_or("time out of range")?;
    let next = cron.find_next_occurrence(&after, false).map_err(|e| format!("cron {expr:?}: {e}"))?;
    Ok(next.timestamp_millis())
}

pub async fn get_schedule(db: &Db, kind: &str) -> Result<Option<Schedule>, sqlx::Error> {
    sqlx::query_as(
        "SELECT kind, cron, parameters, next_run, created_at, updated_at FROM schedules WHERE kind = $1",
    )
    .bind(kind)
    .fetch_optional(&db.pool)
    .await
}

/// Sets (`Some`) or removes (`None`) the schedule of a kind. The cron must have been validated.
pub async fn set_schedule(db: &Db, kind: &str, cron: Option<(&str, &Value)>) -> Result<(), sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    set_schedule_in(&mut conn, kind, cron).await
}

/// `set_schedule` inside the caller's transaction (with the policy it belongs to).
pub async fn set_schedule_in(
    conn: &mut sqlx::AnyConnection,
    kind: &str,
    cron: Option<(&str, &Value)>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    match cron {
        None => {
            sqlx::query("DELETE FROM schedules WHERE kind = $1").bind(kind).execute(&mut *conn).await?;
        }
        Some((expr, params)) => {
            let next = next_run(expr, now).map_err(sqlx::Error::Protocol)?;
            sqlx::query(
                "INSERT INTO schedules (kind, cron, parameters, next_run, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (kind) DO UPDATE SET cron = excluded.cron, \
                 parameters = excluded.parameters, next_run = excluded.next_run, updated_at = excluded.updated_at",
            )
            .bind(kind)
            .bind(expr)
            .bind(params.to_string())
            .bind(next)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Fires due schedules: each firing is claimed by moving `next_run` forward with a
/// compare-and-set, so exactly one replica enqueues it. Returns the jobs queued.
pub async fn fire_due(db: &Db) -> Result<Vec<i64>, sqlx::Error> {
    let now = now_ms();
    let due: Vec<(String, String, String, i64)> =
        sqlx::query_as("SELECT kind, cron, parameters, next_run FROM schedules WHERE next_run <= $1")
            .bind(now)
            .fetch_all(&db.pool)
            .await?;
    let mut queued = vec![];
    for (kind, expr, params, old) in due {
        let Ok(next) = next_run(&expr, now) else {
            tracing::warn!(kind, cron = expr, "invalid schedule; ignored");
            continue;
        };
        let won = sqlx::query("UPDATE schedules SET next_run = $3 WHERE kind = $1 AND next_run = $2")
            .bind(&kind)
            .bind(old)
            .bind(next)
            .execute(&db.pool)
            .await?;
        if won.rows_affected() != 1 {
            continue;
        }
        let params: Value = serde_json::from_str(&params).unwrap_or(Value::Null);
        // `replication/7` fires a `replication` job; the whole name keeps its firings apart.
        let job_kind = kind.split_once('/').map_or(kind.as_str(), |(k, _)| k);
        let job = NewJob {
            kind: job_kind,
            job_kind: "SCHEDULE",
            parameters: &params,
            unique_key: Some(&kind),
            created_by: "scheduler",
        };
        match enqueue(db, &job).await? {
            Some(id) => {
                tracing::info!(kind, job = id, "scheduled job queued");
                queued.push(id);
            }
            None => tracing::info!(kind, "scheduled job skipped: one is already pending or running"),
        }
    }
    Ok(queued)
}

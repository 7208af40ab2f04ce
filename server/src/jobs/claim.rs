//! Claiming a due job for a worker (`jobs` module doc: concurrency classes).

use crate::db::{now_ms, Db, DbKind};

use sqlx::FromRow;

use super::{Job, COLUMNS};

/// Which kinds of job a claim may take.
#[derive(Debug, Clone, Copy)]
pub enum Claim<'a> {
    Any,
    Only(&'a [&'a str]),
}

/// Claims the oldest due pending job for `worker`.
pub async fn claim(db: &Db, worker: &str) -> Result<Option<Job>, sqlx::Error> {
    claim_of(db, worker, Claim::Any).await
}

/// Claims the pending job that has been due longest, of the kinds `which` allows, without
/// walking past the jobs of other kinds (thousands when webhook deliveries queue up while the
/// claim is for GC's slot):
/// - SQLite: a read picks the job — one seek per kind in the `jobs_kind_claim` index (status,
///   kind, run_at, id), or the first entry of `jobs_claim` (status, run_at, id) for `Any` —
///   then an UPDATE takes it if it is still pending. An UPDATE takes SQLite's one write lock
///   even when it matches nothing, and every pass of the runner ends with a claim that finds
///   nothing, so nothing is written unless there is a job.
/// - PostgreSQL: one UPDATE over `FOR UPDATE SKIP LOCKED`, so replicas never wait for each other.
pub async fn claim_of(db: &Db, worker: &str, which: Claim<'_>) -> Result<Option<Job>, sqlx::Error> {
    let kinds: &[&str] = match which {
        Claim::Any => &[],
        Claim::Only([]) => return Ok(None),
        Claim::Only(k) => k,
    };
    const NOT_PAUSED: &str =
        "NOT EXISTS (SELECT 1 FROM job_queues_paused qp WHERE qp.kind IN (jobs.kind, '*'))";
    let due = format!("status = 'pending' AND run_at <= $2 AND {NOT_PAUSED}");
    let take = |target: &str| {
        format!(
            "UPDATE jobs SET status = 'running', worker = $1, heartbeat = $2, attempts = attempts + 1, \
             started_at = CASE WHEN started_at = 0 THEN $2 ELSE started_at END, updated_at = $2 \
             WHERE status = 'pending' AND id = {target} RETURNING {COLUMNS}"
        )
    };
    if db.kind == DbKind::Postgres {
        let list = if kinds.is_empty() {
            String::new()
        } else {
            let marks: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 3)).collect();
            format!(" AND kind IN ({})", marks.join(", "))
        };
        let sql = take(&format!(
            "(SELECT id FROM jobs WHERE {due}{list} ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
        ));
        let mut q = sqlx::query(&sql).bind(worker).bind(now_ms());
        for k in kinds {
            q = q.bind(*k);
        }
        let row = q.fetch_optional(&db.pool).await?;
        return row.as_ref().map(Job::from_row).transpose();
    }
    let pick = if kinds.is_empty() {
        format!("SELECT id FROM jobs WHERE {due} AND $1 = $1 ORDER BY run_at, id LIMIT 1")
    } else {
        let each: Vec<String> = (0..kinds.len())
            .map(|i| {
                format!(
                    "SELECT * FROM (SELECT id, run_at FROM jobs WHERE kind = ${} AND {due} ORDER BY run_at, id LIMIT 1)",
                    i + 3
                )
            })
            .collect();
        format!("SELECT id FROM ({}) WHERE $1 = $1 ORDER BY run_at, id LIMIT 1", each.join(" UNION ALL "))
    };
    // Another replica may take the picked job first: pick again, a few times.
    for _ in 0..3 {
        let now = now_ms();
        let mut q = sqlx::query(&pick).bind(worker).bind(now);
        for k in kinds {
            q = q.bind(*k);
        }
        let Some(row) = q.fetch_optional(&db.pool).await? else { return Ok(None) };
        let id: i64 = sqlx::Row::try_get(&row, 0)?;
        // Still pending and its queue still not paused (a pause may land between the two).
        let row = sqlx::query(&take(&format!("$3 AND {NOT_PAUSED}")))
            .bind(worker)
            .bind(now)
            .bind(id)
            .fetch_optional(&db.pool)
            .await?;
        if let Some(row) = row {
            return Job::from_row(&row).map(Some);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::super::{DELIVERIES, ORDINARY, POOLED};

    /// Every kind the code runs belongs to exactly one concurrency class, so a claim for a
    /// class with a free slot can name its kinds.
    #[test]
    fn every_job_type_is_in_one_class() {
        let mut classes: Vec<&str> = ORDINARY.iter().chain(&POOLED).chain(&DELIVERIES).copied().collect();
        classes.sort_unstable();
        let mut types = crate::jobservice::JOB_TYPES.to_vec();
        types.sort_unstable();
        assert_eq!(classes, types);
    }
}

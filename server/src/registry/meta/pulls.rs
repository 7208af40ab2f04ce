//! Pull accounting: counts kept in memory per artifact and written in batches.

use super::*;

/// Pull counting off the request path: manifest GETs add to an in-memory tally that a
/// background task (`PullRecorder::run`) writes in one transaction per second. Each replica
/// flushes its own tally; a crash loses at most the last second of counts (never content).
#[derive(Debug, Default)]
pub struct PullRecorder {
    pending: std::sync::Mutex<std::collections::HashMap<i64, (i64, i64)>>,
}

impl PullRecorder {
    pub fn record(&self, artifact_id: i64) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let e = p.entry(artifact_id).or_insert((0, 0));
        e.0 += 1;
        e.1 = now_ms();
    }

    /// Writes the tally; on failure it is merged back for the next attempt.
    pub async fn flush(&self, db: &Db) -> Result<(), sqlx::Error> {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if batch.is_empty() {
            return Ok(());
        }
        // Rows are locked in the order every other writer uses: repositories, then artifacts,
        // each by id. (Artifact then repository deadlocked with a repository delete on
        // PostgreSQL, which locks the repository first: the delete answered 503.)
        let result = async {
            let mut tx = db.begin_write().await?;
            let mut ids: Vec<i64> = batch.keys().copied().collect();
            ids.sort_unstable();
            // Pulls per repository (an artifact deleted meanwhile counts for nothing).
            let mut per_repo: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
            for chunk in ids.chunks(500) {
                let mut q =
                    crate::db::query::Stmt::new("SELECT id, repository_id FROM artifacts WHERE id IN (");
                q.push_list(chunk.iter().copied()).push(")");
                for (id, repo) in q.query_as::<(i64, i64)>().fetch_all(&mut *tx).await? {
                    *per_repo.entry(repo).or_insert(0) += batch[&id].0;
                }
            }
            for (repo, n) in &per_repo {
                sqlx::query("UPDATE repositories SET pull_count = pull_count + $2 WHERE id = $1")
                    .bind(repo)
                    .bind(n)
                    .execute(&mut *tx)
                    .await?;
            }
            for id in &ids {
                let (n, at) = batch[id];
                sqlx::query(
                    "UPDATE artifacts SET pull_count = pull_count + $2, \
                     pulled_at = CASE WHEN pulled_at > $3 THEN pulled_at ELSE $3 END WHERE id = $1",
                )
                .bind(id)
                .bind(n)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        }
        .await;
        if result.is_err() {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (id, (n, at)) in batch {
                let e = p.entry(id).or_insert((0, 0));
                e.0 += n;
                e.1 = e.1.max(at);
            }
        }
        result
    }

    /// Flushes every second until the process ends.
    pub async fn run(self: std::sync::Arc<Self>, db: Db) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Err(e) = self.flush(&db).await {
                tracing::warn!(error = %e, "could not record pulls; will retry");
            }
        }
    }
}

//! Pull accounting: counts kept in memory per artifact and written in batches
//! (`artifacts::write::record_pulls`).

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
        let result = crate::artifacts::write::record_pulls(db, &batch).await;
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
    pub async fn run(
        self: std::sync::Arc<Self>,
        db: Db,
        beat: crate::supervisor::Beat,
    ) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            match self.flush(&db).await {
                Ok(()) => beat.ok(),
                Err(e) => {
                    beat.failed(&e);
                    tracing::warn!(error = %e, "could not record pulls; will retry");
                }
            }
        }
    }
}

//! Storage used per project (Harbor's quota `used.storage`, the project list's `storage_used`,
//! the GC usage overview): each blob once per project, as Harbor counts it.
//!
//! **Replaced, not built on.** Until migration 0012 this module cached a figure recomputed
//! from the artifacts (`project_usage`): every push bumped the project's generation row as its
//! last statement, and a reader recomputed when it was stale. That row was one hot row per
//! project that every push locked until its commit — exactly what quota enforcement must not
//! add — and a figure that drops the moment an artifact is deleted is not Harbor's (the bytes
//! come back with GC). The usage is now the quota's own ledger (`crate::quota`): blobs are
//! charged to a project when first linked to it (`project_blobs`), the sum is kept in sharded
//! counters (`quota_usage`) read with one indexed `SUM`, GC releases what no artifact of the
//! project references any more, and `quota::repair` recomputes the sum.

use std::collections::HashMap;

use crate::db::Db;

/// Bytes used by each of `projects` (or by every project that uses any).
pub async fn usage(db: &Db, projects: Option<&[i64]>) -> Result<HashMap<i64, i64>, sqlx::Error> {
    crate::quota::used(db, projects).await
}

/// The bytes of the distinct digests (blobs the project's artifacts reference, and the
/// manifests themselves) that have a blob row: what the project's usage comes down to once
/// GC has released everything unreferenced.
pub async fn compute(db: &Db, project_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM blobs b WHERE b.digest IN ( \
           SELECT ab.digest FROM repositories r JOIN artifacts a ON a.repository_id = r.id \
             JOIN artifact_blobs ab ON ab.artifact_id = a.id WHERE r.project_id = $1 \
           UNION SELECT a.digest FROM repositories r JOIN artifacts a ON a.repository_id = r.id \
             WHERE r.project_id = $1)",
    )
    .bind(project_id)
    .fetch_one(&db.pool)
    .await
}

//! Storage used per project (Harbor's quota `used.storage`): the distinct blobs and manifests
//! the project's artifacts reference — a blob shared by two repositories of a project counts
//! once there, and once in every other project that uses it.
//!
//! Computing it reads every artifact of the project (half a second for 100,000 artifacts on
//! SQLite), far too slow for every project-list view, so the figure is cached in `project_usage`
//! (migration 0006):
//!
//! - every transaction that adds or removes artifacts of a project bumps the project's `gen` as
//!   its **last statement** ([`changed`]), so the row lock (PostgreSQL) is held only until the
//!   commit and never before another lock (no deadlock);
//! - [`usage`] returns `bytes` when `computed_gen = gen`. Otherwise it recomputes: at once when
//!   the project was never computed or is cheap (its last computation took under [`SLOW_MS`]),
//!   so small projects always show the exact figure; for an expensive project it returns the
//!   last figure and recomputes in the background (one refresh per project at a time in this
//!   process);
//! - a recomputation reads `gen` first and stores its result only `WHERE gen` is still that
//!   value, so a push that commits during the computation leaves the row stale for the next
//!   reader rather than hiding its bytes.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use crate::db::Db;

/// A project whose last computation took at least this long is refreshed in the background.
pub const SLOW_MS: i64 = 50;

/// Marks project `project_id`'s usage as changed. Call it as the last statement of the
/// transaction that added or removed artifacts of the project.
pub async fn changed(tx: &mut sqlx::Transaction<'_, sqlx::Any>, project_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO project_usage (project_id) VALUES ($1) \
         ON CONFLICT (project_id) DO UPDATE SET gen = project_usage.gen + 1",
    )
    .bind(project_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Bytes used by each of `projects` (or by every project), from the cache where it is current.
pub async fn usage(db: &Db, projects: Option<&[i64]>) -> Result<HashMap<i64, i64>, sqlx::Error> {
    let (ids, rows) = match projects {
        Some([]) => return Ok(HashMap::new()),
        Some(ids) => {
            let mut q = crate::db::query::Stmt::new(
                "SELECT project_id, gen, computed_gen, bytes, compute_ms FROM project_usage WHERE project_id IN (",
            );
            q.push_list(ids.iter().copied()).push(")");
            (ids.to_vec(), q.query().fetch_all(&db.pool).await?)
        }
        None => {
            let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM projects").fetch_all(&db.pool).await?;
            let rows =
                sqlx::query("SELECT project_id, gen, computed_gen, bytes, compute_ms FROM project_usage")
                    .fetch_all(&db.pool)
                    .await?;
            (ids, rows)
        }
    };
    let mut cached: HashMap<i64, (i64, i64, i64, i64)> = HashMap::new();
    for r in &rows {
        let (project_id, gen, computed_gen, bytes, compute_ms) = sqlx::FromRow::from_row(r)?;
        cached.insert(project_id, (gen, computed_gen, bytes, compute_ms));
    }
    let mut out = HashMap::new();
    for id in ids {
        let bytes = match cached.get(&id) {
            Some(&(gen, computed, bytes, _)) if gen == computed => bytes,
            Some(&(_, computed, bytes, ms)) if computed > 0 && ms >= SLOW_MS => {
                refresh_in_background(db, id);
                bytes
            }
            _ => refresh(db, id).await?,
        };
        out.insert(id, bytes);
    }
    Ok(out)
}

/// Recomputes one project's usage and stores it unless a write moved `gen` meanwhile.
pub async fn refresh(db: &Db, project_id: i64) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO project_usage (project_id) SELECT id FROM projects WHERE id = $1 \
         ON CONFLICT (project_id) DO NOTHING",
    )
    .bind(project_id)
    .execute(&db.pool)
    .await;
    match row {
        // The project was deleted while this ran (PostgreSQL checks the key at its commit).
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => return Ok(0),
        r => r?,
    };
    let gen: Option<i64> = sqlx::query_scalar("SELECT gen FROM project_usage WHERE project_id = $1")
        .bind(project_id)
        .fetch_optional(&db.pool)
        .await?;
    let Some(gen) = gen else { return Ok(0) }; // no such project
    let started = Instant::now();
    let bytes = compute(db, project_id).await?;
    let ms = started.elapsed().as_millis() as i64;
    sqlx::query(
        "UPDATE project_usage SET bytes = $2, computed_gen = $3, compute_ms = $4 \
         WHERE project_id = $1 AND gen = $3",
    )
    .bind(project_id)
    .bind(bytes)
    .bind(gen)
    .bind(ms)
    .execute(&db.pool)
    .await?;
    Ok(bytes)
}

fn refresh_in_background(db: &Db, project_id: i64) {
    static RUNNING: OnceLock<Mutex<HashSet<i64>>> = OnceLock::new();
    let running = RUNNING.get_or_init(Default::default);
    if !running.lock().unwrap_or_else(|e| e.into_inner()).insert(project_id) {
        return;
    }
    // Frees the project's slot however the task ends (done, failed, panicked or cancelled with
    // the runtime); a slot left taken would stop the project's usage from ever refreshing again.
    struct Slot(&'static Mutex<HashSet<i64>>, i64);
    impl Drop for Slot {
        fn drop(&mut self) {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.1);
        }
    }
    let slot = Slot(running, project_id);
    let db = db.clone();
    tokio::spawn(async move {
        let _slot = slot;
        if let Err(e) = refresh(&db, project_id).await {
            tracing::warn!(project_id, error = %e, "refreshing a project's storage usage failed");
        }
    });
}

/// The usage computed from the artifacts: the sizes of the distinct digests (blobs the
/// project's artifacts reference, and the manifests themselves) that have a blob row.
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

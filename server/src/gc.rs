//! Garbage collection: online mark-and-sweep from the database's references.
//!
//! Deleting a tag, artifact or repository is logical (rows go, bytes stay). GC reclaims the
//! bytes while pushes and pulls continue:
//!
//! 1. **Abandoned uploads**: sessions untouched for `gc.upload_max_age` lose their row first
//!    (so nobody can continue them), then their data. Then **orphaned upload data** (objects
//!    under `uploads/` with no session row, untouched for as long) goes too (`gc::orphans`).
//! 2. **Untagged artifacts** (option `delete_untagged`): artifacts with no tag, not listed by
//!    an index and not an accessory, pushed before the window, are deleted like a user's
//!    delete (with their accessories and the index children they free). Each is re-checked on
//!    its locked row first, so one tagged meanwhile stays.
//! 3. **Mark** (`plan`, a pure function of the graph loaded from the database — never a walk
//!    of storage): a blob or manifest is garbage when no remaining artifact references it and
//!    it was not used within `gc.window`.
//! 4. **Sweep**, in batches: one statement flips `status` to `deleting` only for rows that are
//!    *still* unreferenced and unused within the window (the authoritative check); then the
//!    objects are deleted from storage (`gc.workers` at a time) and then their rows. A blob in
//!    `deleting` is invisible to `/v2` and can never become `none` again, so a push racing
//!    with GC either keeps its blobs (it marked them used first) or is refused and retries.
//!    Reservations (`pending`) older than the window are abandoned uploads and go the same way;
//!    a writer whose reservation was swept finds its generation gone and is refused.
//!    A run that dies mid-sweep leaves `deleting` rows the next run finishes.
//!
//! 5. **Quotas** (`crate::quota`): the blob charges no artifact of their project references
//!    any more and unused within the window are released (the project's usage goes down), then
//!    every project's usage counter is recomputed from its charges (the repair).
//!
//! A dry run does 1–3 and reports exactly what 1–4 would delete, deleting nothing.

mod orphans;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::db::query::Stmt;
use crate::db::{now_ms, Db};
use crate::jobs::{JobCtx, Outcome};
use crate::storage::Storage;

pub use app::rest::gc::GcParams;

/// What a run deleted (or, dry, would delete).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct GcReport {
    pub dry_run: bool,
    /// Untagged artifacts deleted (with their accessories and freed children).
    pub artifacts: u64,
    /// Layers and configs.
    pub blobs: u64,
    pub manifests: u64,
    /// Bytes of blobs and manifests.
    pub bytes: u64,
    /// Abandoned upload sessions, and orphaned upload data (objects whose session is gone).
    pub uploads: u64,
    /// Bytes of upload data deleted with them.
    #[serde(default)]
    pub upload_bytes: u64,
    /// Objects whose deletion failed (kept as `deleting`; the next run retries).
    pub errors: u64,
    pub stopped: bool,
    pub duration_ms: u64,
}

// ---------------------------------------------------------------- the graph and the plan

#[derive(Debug, Clone)]
pub struct ArtifactNode {
    pub id: i64,
    pub repository_id: i64,
    pub digest: String,
    pub subject: Option<String>,
    pub tagged: bool,
    pub pushed_at: i64,
    /// Digests of the manifests an index lists.
    pub children: Vec<String>,
    /// Config and layers.
    pub blobs: Vec<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BlobNode {
    pub digest: String,
    pub size: i64,
    /// `pending` (reserved, content being written), `none` or `deleting`.
    pub status: String,
    pub last_used: i64,
    /// `blob` or `manifest`.
    pub kind: String,
}

#[derive(Debug, Default)]
pub struct Graph {
    pub artifacts: Vec<ArtifactNode>,
    pub blobs: Vec<BlobNode>,
    pub repositories: HashMap<i64, String>,
}

/// What a run deletes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Untagged roots to delete, each with what goes with it (accessories, freed children).
    pub roots: Vec<i64>,
    /// Every artifact that goes (roots and what goes with them).
    pub artifacts: Vec<i64>,
    /// Indexes into `Graph::blobs` of blobs and manifests to sweep.
    pub blobs: Vec<usize>,
}

/// The mark phase: a pure function of the graph, the option and the window's start.
pub fn plan(g: &Graph, delete_untagged: bool, cutoff: i64) -> Plan {
    let mut deleted: HashSet<usize> = HashSet::new();
    let mut roots = vec![];
    let mut order = vec![];
    if delete_untagged {
        let by_key: HashMap<(i64, &str), usize> =
            g.artifacts.iter().enumerate().map(|(i, a)| ((a.repository_id, a.digest.as_str()), i)).collect();
        let mut parents: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, a) in g.artifacts.iter().enumerate() {
            for c in &a.children {
                if let Some(&ci) = by_key.get(&(a.repository_id, c.as_str())) {
                    parents.entry(ci).or_default().push(i);
                }
            }
        }
        let mut accessories: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, a) in g.artifacts.iter().enumerate() {
            if let Some(s) = &a.subject {
                if let Some(&si) = by_key.get(&(a.repository_id, s.as_str())) {
                    accessories.entry(si).or_default().push(i);
                }
            }
        }
        for (i, a) in g.artifacts.iter().enumerate() {
            let root = !a.tagged
                && a.subject.is_none()
                && parents.get(&i).is_none_or(|p| p.is_empty())
                && a.pushed_at < cutoff;
            if root {
                roots.push(a.id);
                // What a user's delete of this root removes (see artifacts::write::delete_artifact).
                let mut work = vec![i];
                while let Some(x) = work.pop() {
                    if !deleted.insert(x) {
                        continue;
                    }
                    order.push(g.artifacts[x].id);
                    work.extend(accessories.get(&x).into_iter().flatten().copied());
                    for c in &g.artifacts[x].children {
                        if let Some(&ci) = by_key.get(&(g.artifacts[x].repository_id, c.as_str())) {
                            let freed = !g.artifacts[ci].tagged
                                && parents.get(&ci).into_iter().flatten().all(|p| deleted.contains(p));
                            if freed {
                                work.push(ci);
                            }
                        }
                    }
                }
            }
        }
    }
    let mut referenced: HashSet<&str> = HashSet::new();
    for (i, a) in g.artifacts.iter().enumerate() {
        if !deleted.contains(&i) {
            referenced.insert(&a.digest);
            referenced.extend(a.blobs.iter().map(String::as_str));
        }
    }
    let blobs = g
        .blobs
        .iter()
        .enumerate()
        .filter(|(_, b)| {
            // `pending` reservations older than the window are abandoned uploads.
            b.status == "deleting" || (b.last_used < cutoff && !referenced.contains(b.digest.as_str()))
        })
        .map(|(i, _)| i)
        .collect();
    Plan { roots, artifacts: order, blobs }
}

/// Loads the reference graph: artifacts with their tags, children and blobs, and every blob.
pub async fn load_graph(db: &Db) -> Result<Graph, sqlx::Error> {
    let mut g = Graph::default();
    let repositories: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, name FROM repositories").fetch_all(&db.pool).await?;
    g.repositories.extend(repositories);
    let tagged: HashSet<i64> = sqlx::query_scalar("SELECT DISTINCT artifact_id FROM tags")
        .fetch_all(&db.pool)
        .await?
        .into_iter()
        .collect();
    let mut index: HashMap<i64, usize> = HashMap::new();
    let artifacts: Vec<(i64, i64, String, Option<String>, i64)> =
        sqlx::query_as("SELECT id, repository_id, digest, subject, pushed_at FROM artifacts ORDER BY id")
            .fetch_all(&db.pool)
            .await?;
    for (id, repository_id, digest, subject, pushed_at) in artifacts {
        index.insert(id, g.artifacts.len());
        g.artifacts.push(ArtifactNode {
            id,
            repository_id,
            digest,
            subject,
            tagged: tagged.contains(&id),
            pushed_at,
            children: vec![],
            blobs: vec![],
        });
    }
    let children: Vec<(i64, String)> =
        sqlx::query_as("SELECT parent_id, child_digest FROM artifact_children").fetch_all(&db.pool).await?;
    for (parent_id, child_digest) in children {
        if let Some(&i) = index.get(&parent_id) {
            g.artifacts[i].children.push(child_digest);
        }
    }
    let blobs: Vec<(i64, String)> =
        sqlx::query_as("SELECT artifact_id, digest FROM artifact_blobs").fetch_all(&db.pool).await?;
    for (artifact_id, digest) in blobs {
        if let Some(&i) = index.get(&artifact_id) {
            g.artifacts[i].blobs.push(digest);
        }
    }
    g.blobs = sqlx::query_as("SELECT digest, size, status, last_used, kind FROM blobs ORDER BY digest")
        .fetch_all(&db.pool)
        .await?;
    Ok(g)
}

// ---------------------------------------------------------------- a run

/// Everything a run needs (the server's state or the `gc` subcommand's).
#[derive(Clone)]
pub struct Env {
    pub db: Db,
    pub storage: Arc<dyn Storage>,
    pub config: crate::config::GcConfig,
}

const BATCH: usize = 500;

fn set_progress(ctx: &JobCtx, phase: &str, done: usize, total: usize, report: &GcReport) {
    ctx.set_progress(json!({
        "phase": phase, "done": done, "total": total,
        "artifacts": report.artifacts, "blobs": report.blobs, "manifests": report.manifests,
        "bytes": report.bytes, "uploads": report.uploads,
    }));
}

/// Runs GC to its end (or until stopped). Errors are database/storage failures that ended
/// the run; everything done before them is done for good (the next run resumes).
pub async fn run(env: &Env, params: &GcParams, ctx: &JobCtx) -> Result<GcReport, anyhow::Error> {
    let started = std::time::Instant::now();
    let now = now_ms();
    let cutoff = now - env.config.window.as_millis() as i64;
    let upload_cutoff = now - env.config.upload_max_age.as_millis() as i64;
    let workers = params.workers.map(|w| w.clamp(1, 256) as usize).unwrap_or(env.config.workers);
    let mut report = GcReport { dry_run: params.dry_run, ..Default::default() };
    let verb = if params.dry_run { "would delete" } else { "deleted" };
    ctx.log(format!(
        "garbage collection started: dry_run={} delete_untagged={} window={}s upload_max_age={}s workers={workers}",
        params.dry_run,
        params.delete_untagged,
        env.config.window.as_secs(),
        env.config.upload_max_age.as_secs()
    ));

    // 1. Abandoned uploads.
    set_progress(ctx, "uploads", 0, 0, &report);
    let uploads: Vec<(String, i64)> =
        sqlx::query_as("SELECT id, size FROM uploads WHERE updated_at < $1 AND lease_until < $2 ORDER BY id")
            .bind(upload_cutoff)
            .bind(now)
            .fetch_all(&env.db.pool)
            .await?;
    for (id, size) in &uploads {
        if params.dry_run {
            report.uploads += 1;
            report.upload_bytes += (*size).max(0) as u64;
            ctx.log(format!("{verb} upload session {id}"));
            continue;
        }
        // The row first (re-checked): nobody can continue the session once it is gone.
        let gone = sqlx::query("DELETE FROM uploads WHERE id = $1 AND updated_at < $2 AND lease_until < $3")
            .bind(id)
            .bind(upload_cutoff)
            .bind(now_ms())
            .execute(&env.db.pool)
            .await?;
        if gone.rows_affected() == 1 {
            env.storage.delete(&format!("uploads/{id}/data")).await?;
            report.uploads += 1;
            report.upload_bytes += (*size).max(0) as u64;
            ctx.log(format!("{verb} upload session {id}"));
        }
    }
    // In a dry run the abandoned sessions' data still has its rows: not counted twice.
    orphans::reclaim(env, ctx, env.config.upload_max_age, params.dry_run, &mut report).await?;

    // Temporary files of writers killed mid-write (never referenced by anything).
    if !params.dry_run {
        match env.storage.sweep_temp(crate::storage::TEMP_MAX_AGE).await {
            Ok(0) => {}
            Ok(n) => ctx.log(format!("removed {n} orphaned temporary files")),
            Err(e) => ctx.log(format!("could not sweep temporary files: {e}")),
        }
    }

    if ctx.should_stop() {
        report.stopped = true;
        ctx.log("garbage collection stopped before the mark phase (stop requested)");
        set_progress(ctx, "stopped", 0, 0, &report);
        return Ok(report);
    }

    // 2 + 3. Load the graph and mark.
    set_progress(ctx, "mark", 0, 0, &report);
    let graph = load_graph(&env.db).await?;
    let plan = plan(&graph, params.delete_untagged, cutoff);
    ctx.log(format!(
        "marked: {} artifacts, {} blobs in the database; {} untagged artifacts and {} blobs/manifests to delete",
        graph.artifacts.len(),
        graph.blobs.len(),
        plan.artifacts.len(),
        plan.blobs.len()
    ));
    let names: HashMap<i64, String> = graph
        .artifacts
        .iter()
        .map(|a| {
            let repo = graph.repositories.get(&a.repository_id).cloned().unwrap_or_default();
            (a.id, format!("{repo}@{}", a.digest))
        })
        .collect();

    // Untagged artifacts.
    if params.dry_run {
        for id in &plan.artifacts {
            ctx.log(format!("{verb} artifact {}", names.get(id).map(String::as_str).unwrap_or("?")));
        }
        report.artifacts = plan.artifacts.len() as u64;
    } else {
        for (i, root) in plan.roots.iter().enumerate() {
            if ctx.should_stop() {
                report.stopped = true;
                break;
            }
            let deleted = match crate::artifacts::write::delete_artifact_guarded(
                &env.db,
                *root,
                crate::artifacts::write::Guard::Untagged(cutoff),
            )
            .await
            {
                Ok(d) => d,
                // An untagged root whose accessory carries an immutable tag stays (with it).
                Err(e @ crate::registry::meta::MetaError::Immutable { .. }) => {
                    let name = names.get(root).map(String::as_str).unwrap_or("?");
                    ctx.log(format!("kept artifact {name}: {e}"));
                    vec![]
                }
                Err(e) => return Err(e.into()),
            };
            for d in deleted {
                report.artifacts += 1;
                ctx.log(format!(
                    "{verb} artifact {}",
                    names.get(&d.id).map(String::as_str).unwrap_or(&d.digest)
                ));
            }
            set_progress(ctx, "artifacts", i + 1, plan.roots.len(), &report);
        }
    }

    // 4. Sweep.
    let total = plan.blobs.len();
    let mut done = 0;
    for chunk in plan.blobs.chunks(BATCH) {
        if report.stopped || ctx.should_stop() {
            report.stopped = true;
            break;
        }
        if params.dry_run {
            for &i in chunk {
                let b = &graph.blobs[i];
                count(&mut report, &b.kind, b.size);
                ctx.log(format!("{verb} {} {} ({} bytes)", b.kind, b.digest, b.size));
            }
        } else {
            sweep(
                env,
                ctx,
                chunk.iter().map(|&i| graph.blobs[i].digest.as_str()),
                cutoff,
                workers,
                &mut report,
            )
            .await?;
        }
        done += chunk.len();
        set_progress(ctx, "sweep", done, total, &report);
    }
    // 5. Quotas: give back what no artifact of a project references any more (unused within
    // the window, like the sweep), then recompute every project's counter (`quota::repair`).
    if !params.dry_run && !report.stopped {
        set_progress(ctx, "quota", done, total, &report);
        let (charges, bytes) = crate::quota::release_unused(&env.db, cutoff).await?;
        ctx.log(format!("quotas: released {charges} blob charges ({bytes} bytes)"));
        for (project, before, after) in crate::quota::repair_all(&env.db).await? {
            ctx.log(format!("quotas: project {project} usage repaired from {before} to {after} bytes"));
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    set_progress(ctx, if report.stopped { "stopped" } else { "done" }, done, total, &report);
    ctx.log(format!(
        "garbage collection {}: {verb} {} artifacts, {} blobs, {} manifests, {} bytes, {} upload sessions; {} errors; {} ms",
        if report.stopped { "stopped" } else { "finished" },
        report.artifacts,
        report.blobs,
        report.manifests,
        report.bytes,
        report.uploads,
        report.errors,
        report.duration_ms
    ));
    Ok(report)
}

fn count(report: &mut GcReport, kind: &str, size: i64) {
    if kind == "manifest" {
        report.manifests += 1;
    } else {
        report.blobs += 1;
    }
    report.bytes += size.max(0) as u64;
}

/// Marks one batch `deleting` (re-checking it on the locked rows), deletes the objects, then
/// the rows.
async fn sweep<'a>(
    env: &Env,
    ctx: &JobCtx,
    digests: impl Iterator<Item = &'a str>,
    cutoff: i64,
    workers: usize,
    report: &mut GcReport,
) -> Result<(), anyhow::Error> {
    let mut digests: Vec<&str> = digests.collect();
    if digests.is_empty() {
        return Ok(());
    }
    // Rows are locked in digest order, as pushes lock them (no deadlock between the two).
    digests.sort_unstable();
    // SQLite: `+status`/`+last_used` keep the planner off the `blobs_gc (status, last_used)`
    // index — with it, from ~20 digests on, it visits every collectable row per batch (the sweep
    // became quadratic: 200 ms per batch at 1M rows instead of 2 ms by primary key).
    let plus = if env.db.kind == crate::db::DbKind::Sqlite { "+" } else { "" };
    let mut mark = Stmt::new("UPDATE blobs SET status = 'deleting' WHERE digest IN (");
    mark.push_list(digests.iter().copied());
    mark.push(&format!(") AND ({plus}status = 'deleting' OR ({plus}last_used < ?"));
    mark.bind(cutoff).push(
        " AND NOT EXISTS (SELECT 1 FROM artifact_blobs ab WHERE ab.digest = blobs.digest) \
         AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.digest = blobs.digest))) \
         RETURNING digest, size, kind",
    );
    // PostgreSQL: lock the rows first, then re-check in a second statement. Under READ
    // COMMITTED a statement that waited for a row lock re-checks only that row's own columns,
    // while its subqueries keep the snapshot from before the wait — they would miss the
    // artifact a concurrent push was committing. The second statement takes a new snapshot
    // after every push holding these rows has committed; pushes arriving later wait for us and
    // then find `deleting`. (SQLite has one writer: the single statement already waits for it.)
    let mut tx = env.db.begin_write().await?;
    if env.db.kind == crate::db::DbKind::Postgres {
        let mut lock = Stmt::new("SELECT digest FROM blobs WHERE digest IN (");
        lock.push_list(digests.iter().copied()).push(") ORDER BY digest FOR UPDATE");
        lock.query().fetch_all(&mut *tx).await?;
    }
    let marked: Vec<(String, i64, String)> = mark.query_as().fetch_all(&mut *tx).await?;
    tx.commit().await?;
    if marked.len() < digests.len() {
        ctx.log(format!("{} blobs were used again since the mark and stay", digests.len() - marked.len()));
    }
    // Storage deletions: in bulk where the backend can (S3), else `workers` at a time.
    let mut results = Vec::with_capacity(marked.len());
    let mut keyed = vec![];
    for (digest, size, kind) in marked {
        match digest.parse::<crate::registry::digest::Digest>() {
            Ok(d) => keyed.push((d.blob_key(), digest, size, kind)),
            Err(e) => {
                results.push((digest, size, kind, Err(anyhow::anyhow!("bad digest in the database: {e}"))))
            }
        }
    }
    for chunk in keyed.chunks(workers.max(1) * 64) {
        let keys: Vec<String> = chunk.iter().map(|k| k.0.clone()).collect();
        let outcome = env.storage.delete_many(&keys, workers).await;
        for ((_, digest, size, kind), r) in chunk.iter().cloned().zip(outcome) {
            results.push((digest, size, kind, r.map_err(anyhow::Error::from)));
        }
    }
    let mut gone = vec![];
    for (digest, size, kind, r) in results {
        match r {
            Ok(()) => {
                count(report, &kind, size);
                ctx.log(format!("deleted {kind} {digest} ({size} bytes)"));
                gone.push(digest);
            }
            Err(e) => {
                report.errors += 1;
                ctx.log(format!("could not delete {kind} {digest}: {e} (kept; the next run retries)"));
            }
        }
    }
    if !gone.is_empty() {
        let mut tx = env.db.begin_write().await?;
        for table in ["repository_blobs", "blobs"] {
            let extra = if table == "blobs" { " AND status = 'deleting'" } else { "" };
            let mut q = Stmt::new(&format!("DELETE FROM {table} WHERE digest IN ("));
            q.push_list(&gone).push(&format!("){extra}"));
            q.query().execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Runs a claimed GC job.
pub async fn run_job(state: &crate::state::AppState, ctx: JobCtx) -> Outcome {
    let env = Env { db: state.db.clone(), storage: state.storage.clone(), config: state.config.gc.clone() };
    run_with(&env, ctx).await
}

/// Runs a GC job in `ctx` (claimed, or inline from `berth gc`) and turns the result into the
/// job's outcome.
pub async fn run_with(env: &Env, ctx: JobCtx) -> Outcome {
    let params: GcParams = match serde_json::from_str(&ctx.parameters) {
        Ok(p) => p,
        Err(e) => {
            return Outcome {
                status: "error",
                result: json!(null),
                error: format!("bad job parameters: {e}"),
                ..Default::default()
            }
        }
    };
    match run(env, &params, &ctx).await {
        Ok(report) if !report.dry_run => {
            metrics::counter!("berth_gc_freed_bytes_total").increment(report.bytes + report.upload_bytes);
            metrics::counter!("berth_gc_deleted_blobs_total").increment(report.blobs + report.manifests);
            Outcome {
                status: if report.stopped { "stopped" } else { "success" },
                result: serde_json::to_value(&report).unwrap_or_default(),
                error: String::new(),
                ..Default::default()
            }
        }
        Ok(report) => Outcome {
            status: if report.stopped { "stopped" } else { "success" },
            result: serde_json::to_value(&report).unwrap_or_default(),
            error: String::new(),
            ..Default::default()
        },
        Err(e) => {
            ctx.log(format!("garbage collection failed: {e:#}"));
            Outcome { status: "error", result: ctx.progress(), error: format!("{e:#}"), ..Default::default() }
        }
    }
}

// ---------------------------------------------------------------- storage usage

/// Bytes in storage by GC status: (in use or awaiting GC, being deleted).
pub async fn total_usage(db: &Db) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(CASE WHEN status = 'none' THEN size ELSE 0 END), 0) AS BIGINT) AS live, \
         CAST(COALESCE(SUM(CASE WHEN status = 'deleting' THEN size ELSE 0 END), 0) AS BIGINT) AS deleting FROM blobs",
    )
    .fetch_one(&db.pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn art(id: i64, repo: i64, digest: &str, tagged: bool) -> ArtifactNode {
        ArtifactNode {
            id,
            repository_id: repo,
            digest: digest.into(),
            subject: None,
            tagged,
            pushed_at: 0,
            children: vec![],
            blobs: vec![],
        }
    }

    fn blob(digest: &str, size: i64, last_used: i64) -> BlobNode {
        BlobNode { digest: digest.into(), size, status: "none".into(), last_used, kind: "blob".into() }
    }

    fn swept(g: &Graph, p: &Plan) -> Vec<String> {
        let mut v: Vec<String> = p.blobs.iter().map(|&i| g.blobs[i].digest.clone()).collect();
        v.sort();
        v
    }

    const CUTOFF: i64 = 1_000;

    /// Layers shared across repositories and projects survive while any artifact uses them.
    #[test]
    fn shared_layers() {
        let mut a = art(1, 1, "m1", true);
        a.blobs = vec!["cfg1".into(), "base".into(), "l1".into()];
        let mut b = art(2, 2, "m2", true);
        b.blobs = vec!["cfg2".into(), "base".into()];
        let g = Graph {
            artifacts: vec![a, b],
            blobs: ["m1", "m2", "cfg1", "cfg2", "base", "l1", "orphan"]
                .iter()
                .map(|d| blob(d, 10, 0))
                .collect(),
            ..Default::default()
        };
        let p = plan(&g, false, CUTOFF);
        assert_eq!(swept(&g, &p), vec!["orphan"]);
        // Without artifact 1, its own layer, config and manifest go; the shared base stays.
        let g2 =
            Graph { artifacts: vec![g.artifacts[1].clone()], blobs: g.blobs.clone(), ..Default::default() };
        assert_eq!(swept(&g2, &plan(&g2, false, CUTOFF)), vec!["cfg1", "l1", "m1", "orphan"]);
    }

    /// The window protects recently used blobs (uploads whose manifest is not pushed yet).
    #[test]
    fn window() {
        let g = Graph {
            blobs: vec![blob("old", 1, CUTOFF - 1), blob("new", 1, CUTOFF), blob("newer", 1, CUTOFF + 5)],
            ..Default::default()
        };
        assert_eq!(swept(&g, &plan(&g, false, CUTOFF)), vec!["old"]);
    }

    /// Blobs left `deleting` by an interrupted run are always finished.
    #[test]
    fn resumes_deleting() {
        let mut b = blob("half", 1, CUTOFF + 100);
        b.status = "deleting".into();
        let g = Graph { blobs: vec![b], ..Default::default() };
        assert_eq!(swept(&g, &plan(&g, false, CUTOFF)), vec!["half"]);
    }

    /// An index keeps its children; untagged children are not roots; deleting the untagged
    /// index frees children no other index lists, but not tagged ones.
    #[test]
    fn indexes() {
        let mut idx = art(1, 1, "idx", false);
        idx.children = vec!["amd64".into(), "arm64".into(), "tagged".into()];
        let mut other = art(5, 1, "idx2", true);
        other.children = vec!["arm64".into()];
        let mut amd = art(2, 1, "amd64", false);
        amd.blobs = vec!["l-amd".into()];
        let mut arm = art(3, 1, "arm64", false);
        arm.blobs = vec!["l-arm".into()];
        let tagged = art(4, 1, "tagged", true);
        let g = Graph {
            artifacts: vec![idx, amd, arm, tagged, other],
            blobs: ["idx", "idx2", "amd64", "arm64", "tagged", "l-amd", "l-arm"]
                .iter()
                .map(|d| blob(d, 1, 0))
                .collect(),
            ..Default::default()
        };
        // Without the option nothing referenced goes.
        assert_eq!(swept(&g, &plan(&g, false, CUTOFF)), Vec::<String>::new());
        let p = plan(&g, true, CUTOFF);
        assert_eq!(p.roots, vec![1]);
        let mut arts = p.artifacts.clone();
        arts.sort();
        assert_eq!(arts, vec![1, 2], "arm64 is listed by idx2 and `tagged` has a tag");
        assert_eq!(swept(&g, &p), vec!["amd64", "idx", "l-amd"]);
    }

    /// Signatures and SBOMs go with their subject; an accessory of a tagged subject stays; an
    /// accessory whose subject is not there (pushed first) is not collected.
    #[test]
    fn referrers() {
        let subject = art(1, 1, "img", false);
        let mut sig = art(2, 1, "sig", false);
        sig.subject = Some("img".into());
        let mut sig_of_sig = art(3, 1, "sigsig", false);
        sig_of_sig.subject = Some("sig".into());
        let kept = art(4, 1, "kept", true);
        let mut kept_sig = art(5, 1, "keptsig", false);
        kept_sig.subject = Some("kept".into());
        let mut early = art(6, 1, "early", false);
        early.subject = Some("not-yet-pushed".into());
        // The same digest in another repository is a different artifact.
        let other_repo = art(7, 2, "img", true);
        let g = Graph {
            artifacts: vec![subject, sig, sig_of_sig, kept, kept_sig, early, other_repo],
            blobs: ["img", "sig", "sigsig", "kept", "keptsig", "early"]
                .iter()
                .map(|d| blob(d, 1, 0))
                .collect(),
            ..Default::default()
        };
        let p = plan(&g, true, CUTOFF);
        assert_eq!(p.roots, vec![1]);
        let mut arts = p.artifacts.clone();
        arts.sort();
        assert_eq!(arts, vec![1, 2, 3]);
        // "img" is still referenced by repository 2's artifact.
        assert_eq!(swept(&g, &p), vec!["sig", "sigsig"]);
    }

    /// A reservation never confirmed (an upload that died between reserving and storing) is
    /// collected once older than the window; a fresh one is not.
    #[test]
    fn abandoned_reservations() {
        let mut old = blob("old-pending", 1, CUTOFF - 1);
        old.status = "pending".into();
        let mut fresh = blob("fresh-pending", 1, CUTOFF + 1);
        fresh.status = "pending".into();
        let g = Graph { blobs: vec![old, fresh], ..Default::default() };
        assert_eq!(swept(&g, &plan(&g, false, CUTOFF)), vec!["old-pending"]);
    }

    /// Untagged artifacts inside the window are not roots (an index's children pushed just
    /// before the index).
    #[test]
    fn untagged_window() {
        let mut young = art(1, 1, "young", false);
        young.pushed_at = CUTOFF + 1;
        let old = art(2, 1, "old", false);
        let g = Graph { artifacts: vec![young, old], ..Default::default() };
        assert_eq!(plan(&g, true, CUTOFF).roots, vec![2]);
    }
}

//! Registry metadata in the database: the only place the registry writes SQL.

use sqlx::Row;

use super::digest::Digest;
use super::manifest::Parsed;
use crate::db::{now_ms, Db};

mod pulls;
mod reads;
mod uploads;

pub use pulls::*;
pub use reads::*;
pub use uploads::*;

/// The project a repository belongs to: its first path component.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProjectRef {
    pub id: i64,
    pub owner_id: i64,
    #[sqlx(try_from = "crate::db::Flag")]
    pub public: bool,
}

pub fn project_name(repo: &str) -> &str {
    repo.split('/').next().unwrap_or(repo)
}

pub async fn project_of(db: &Db, repo: &str) -> Result<Option<ProjectRef>, sqlx::Error> {
    sqlx::query_as("SELECT id, owner_id, public FROM projects WHERE name = $1")
        .bind(project_name(repo))
        .fetch_optional(&db.pool)
        .await
}

/// Size of a blob the repository may serve.
pub async fn blob_in_repo(db: &Db, repo: &str, digest: &Digest) -> Result<Option<u64>, sqlx::Error> {
    let size: Option<i64> = sqlx::query_scalar(
        "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest \
         WHERE rb.repository = $1 AND rb.digest = $2 AND b.status = 'none'",
    )
    .bind(repo)
    .bind(digest.to_string())
    .fetch_optional(&db.pool)
    .await?;
    Ok(size.map(|s| s as u64))
}

/// Why a metadata write was refused.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// The blob is being deleted by garbage collection: retry once it is gone.
    #[error("blob {0} is being garbage collected; retry")]
    Collecting(String),
    /// A referenced blob or manifest is not (or no longer) there.
    #[error("{0} unknown")]
    Missing(String),
    /// The artifact is a child of an index in its repository (Harbor refuses too: deleting it
    /// would break the index).
    #[error("the artifact is referenced by an index ({0}); delete the index instead")]
    Referenced(String),
}

/// Reserves the blob row before content is written: creates it as `pending` (or marks an
/// existing row used now), unless GC is deleting it. Returns the row's generation, which the
/// writer presents again when it confirms (`confirm_in`). This is the synchronisation point
/// with GC (see migrations/*/0005_gc.sql): GC marks a row only when `last_used` is older than
/// its window, in one statement that re-checks it.
async fn reserve_in<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    digest: &str,
    size: u64,
    kind: &str,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO blobs (digest, size, created_at, last_used, kind, status, gen) \
         VALUES ($1, $2, $3, $3, $4, 'pending', $5) \
         ON CONFLICT (digest) DO UPDATE SET last_used = excluded.last_used, \
         kind = CASE WHEN excluded.kind = 'manifest' THEN 'manifest' ELSE blobs.kind END \
         WHERE blobs.status <> 'deleting' RETURNING gen",
    )
    .bind(digest)
    .bind(size as i64)
    .bind(now)
    .bind(kind)
    .bind(rand::random::<i64>() & i64::MAX)
    .fetch_optional(ex)
    .await
}

/// Reserves a blob row before its content is written to storage (upload completion, manifest
/// push): from here GC leaves it alone for at least its window. Returns the generation to
/// confirm with; `Collecting` when GC is deleting that content right now.
pub async fn reserve_blob(db: &Db, digest: &Digest, size: u64, kind: &str) -> Result<i64, MetaError> {
    let d = digest.to_string();
    reserve_in(&db.pool, &d, size, kind, now_ms()).await?.ok_or(MetaError::Collecting(d))
}

/// Confirms a reservation once the content is stored: the row must still be the one reserved
/// (same generation, not being deleted). False when GC swept it meanwhile (the window was
/// exceeded): the content may be gone, so the writer must not reference it.
async fn confirm_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    digest: &str,
    gen: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE blobs SET status = 'none', last_used = $3 WHERE digest = $1 AND gen = $2 AND status <> 'deleting'",
    )
    .bind(digest)
    .bind(gen)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Marks a stored blob used now, inside `tx`, if `repo` may use it; false when it is unknown,
/// not yet stored, being collected or not linked to `repo`. The link is checked here, inside
/// the transaction, not only before it: GC may have swept the blob (links included) and
/// another repository uploaded it again in between.
async fn touch_blob(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    repo: &str,
    digest: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE blobs SET last_used = $2 WHERE digest = $1 AND status = 'none' AND EXISTS ( \
         SELECT 1 FROM repository_blobs rb WHERE rb.repository = $3 AND rb.digest = $1)",
    )
    .bind(digest)
    .bind(now)
    .bind(repo)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Links a blob to a repository (idempotent), inside `tx`.
async fn link_blob(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    repo: &str,
    digest: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO repository_blobs (repository, digest, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (repository, digest) DO NOTHING",
    )
    .bind(repo)
    .bind(digest)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Confirms a reserved blob and links it to a repository (idempotent), inside `tx`.
async fn insert_linked_blob(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    repo: &str,
    digest: &str,
    gen: i64,
    now: i64,
) -> Result<(), MetaError> {
    if !confirm_in(tx, digest, gen, now).await? {
        return Err(MetaError::Collecting(digest.to_string()));
    }
    link_blob(tx, repo, digest, now).await?;
    Ok(())
}

/// Confirms a blob whose content is now stored (reserved with generation `gen`) and links it
/// to a repository.
pub async fn record_blob(db: &Db, repo: &str, digest: &Digest, gen: i64) -> Result<(), MetaError> {
    let mut tx = db.begin_write().await?;
    insert_linked_blob(&mut tx, repo, &digest.to_string(), gen, now_ms()).await?;
    tx.commit().await?;
    Ok(())
}

/// Links a blob already linked in `from` to `to` (cross-repository mount). False when `from`
/// does not have it.
pub async fn mount_blob(db: &Db, from: &str, to: &str, digest: &Digest) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let now = now_ms();
    // Used now (and not being collected), and linked in the source.
    let touched = sqlx::query(
        "UPDATE blobs SET last_used = $3 WHERE digest = $1 AND status = 'none' AND EXISTS ( \
         SELECT 1 FROM repository_blobs rb WHERE rb.repository = $2 AND rb.digest = $1)",
    )
    .bind(digest.to_string())
    .bind(from)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if touched.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO repository_blobs (repository, digest, created_at) \
         SELECT $1, digest, $4 FROM repository_blobs WHERE repository = $2 AND digest = $3 \
         ON CONFLICT (repository, digest) DO NOTHING",
    )
    .bind(to)
    .bind(from)
    .bind(digest.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn unlink_blob(db: &Db, repo: &str, digest: &Digest) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM repository_blobs WHERE repository = $1 AND digest = $2")
        .bind(repo)
        .bind(digest.to_string())
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Which of these digests are manifests stored in the repository.
pub async fn manifest_exists(db: &Db, repo: &str, digest: &Digest) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM artifacts a JOIN repositories r ON r.id = a.repository_id \
         WHERE r.name = $1 AND a.digest = $2",
    )
    .bind(repo)
    .bind(digest.to_string())
    .fetch_one(&db.pool)
    .await?;
    Ok(n > 0)
}

/// Stores a manifest's metadata and its tags (none, the one of a push by tag, or those of a push
/// by digest with `?tag=`) in one transaction. The manifest's own blob row was reserved
/// (`reserve_blob`, generation `manifest_gen`) before its bytes were written.
#[allow(clippy::too_many_arguments)]
pub async fn put_manifest(
    db: &Db,
    project_id: i64,
    repo: &str,
    digest: &Digest,
    manifest_size: u64,
    parsed: &Parsed,
    blob_sizes: u64,
    tags: &[&str],
    manifest_gen: i64,
) -> Result<(), MetaError> {
    let now = now_ms();
    let d = digest.to_string();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO repositories (project_id, name, created_at, updated_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at",
    )
    .bind(project_id)
    .bind(repo)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let repo_id: i64 = sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
        .bind(repo)
        .fetch_one(&mut *tx)
        .await?;
    // Everything the manifest references is marked used now, under the row locks GC's mark
    // statement takes too: either GC already marked a blob (refused: the client pushes it
    // again) or it will see it used and leave it.
    // Blob rows are locked in digest order (as GC's sweep locks them), the manifest's own row
    // among them.
    let mut rows: Vec<String> = parsed.blobs.iter().map(|b| b.digest.to_string()).collect();
    rows.push(d.clone());
    rows.sort_unstable();
    rows.dedup();
    for digest in &rows {
        if *digest == d {
            if !confirm_in(&mut tx, digest, manifest_gen, now).await? {
                return Err(MetaError::Collecting(d.clone()));
            }
        } else if !touch_blob(&mut tx, repo, digest, now).await? {
            return Err(MetaError::Missing(format!("blob {digest}")));
        }
    }
    for m in &parsed.manifests {
        let locked = sqlx::query(
            "UPDATE artifacts SET pushed_at = pushed_at WHERE repository_id = $1 AND digest = $2",
        )
        .bind(repo_id)
        .bind(m.digest.to_string())
        .execute(&mut *tx)
        .await?;
        if locked.rows_affected() == 0 {
            return Err(MetaError::Missing(format!("manifest {}", m.digest)));
        }
    }
    link_blob(&mut tx, repo, &d, now).await?;
    let annotations = serde_json::Value::Object(parsed.annotations.clone()).to_string();
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO artifacts (repository_id, digest, media_type, artifact_type, manifest_size, size, subject, \
         annotations, pushed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (repository_id, digest) DO NOTHING RETURNING id",
    )
    .bind(repo_id)
    .bind(&d)
    .bind(&parsed.media_type)
    .bind(&parsed.artifact_type)
    .bind(manifest_size as i64)
    .bind((manifest_size + blob_sizes) as i64)
    .bind(parsed.subject.as_ref().map(|s| s.digest.to_string()))
    .bind(annotations)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let artifact_id = match inserted {
        Some(id) => {
            for b in &parsed.blobs {
                sqlx::query(
                    "INSERT INTO artifact_blobs (artifact_id, digest) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(b.digest.to_string())
                .execute(&mut *tx)
                .await?;
            }
            for m in &parsed.manifests {
                sqlx::query(
                    "INSERT INTO artifact_children (parent_id, child_digest, platform) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(m.digest.to_string())
                .bind(m.platform.as_ref().map(|p| p.to_string()).unwrap_or_default())
                .execute(&mut *tx)
                .await?;
                // Children of an index are listed under it, not on their own.
                sqlx::query("UPDATE artifacts SET visible = 0 WHERE repository_id = $1 AND digest = $2")
                    .bind(repo_id)
                    .bind(m.digest.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            // Accessories (a `subject`) are listed under their subject; a manifest an index in
            // this repository already lists is listed under the index.
            sqlx::query(
                "UPDATE artifacts SET visible = 0 WHERE id = $1 AND (subject IS NOT NULL OR EXISTS ( \
                 SELECT 1 FROM artifact_children c CROSS JOIN artifacts p \
                 WHERE c.child_digest = $3 AND p.id = c.parent_id AND p.repository_id = $2))",
            )
            .bind(id)
            .bind(repo_id)
            .bind(&d)
            .execute(&mut *tx)
            .await?;
            id
        }
        None => {
            // Locks the existing artifact row, so GC's untagged sweep cannot remove it under
            // the tag written below.
            sqlx::query_scalar(
                "UPDATE artifacts SET pushed_at = pushed_at WHERE repository_id = $1 AND digest = $2 RETURNING id",
            )
            .bind(repo_id)
            .bind(&d)
            .fetch_one(&mut *tx)
            .await?
        }
    };
    for tag in tags {
        sqlx::query(
            "INSERT INTO tags (repository_id, artifact_id, name, pushed_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repository_id, name) DO UPDATE SET artifact_id = excluded.artifact_id, \
             pushed_at = excluded.pushed_at",
        )
        .bind(repo_id)
        .bind(artifact_id)
        .bind(*tag)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    if inserted.is_some() {
        crate::usage::changed(&mut tx, project_id).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// An artifact removed by `delete_artifact`.
#[derive(Debug, Clone)]
pub struct Deleted {
    pub id: i64,
    pub digest: String,
}

/// Deletes an artifact logically (its rows go, bytes stay until GC), in one transaction, with
/// what goes with it: its accessories (signatures, SBOMs: artifacts whose `subject` it is, in
/// the same repository, recursively) and, for an index, the child manifests it frees (untagged
/// and listed by no other index of the repository). Children still tagged or listed elsewhere
/// stay and are listed on their own again. Returns everything deleted, the artifact first.
///
/// `guard` (GC's untagged sweep) is checked on the locked row first: when it no longer holds
/// (the artifact was tagged or referenced meanwhile) nothing is deleted. Without a guard (a
/// user's delete) a child of an index of the repository is refused (`Referenced`).
pub async fn delete_artifact_guarded(
    db: &Db,
    artifact_id: i64,
    guard: Option<i64>,
) -> Result<Vec<Deleted>, MetaError> {
    let mut tx = db.begin_write().await?;
    // A write first: the row lock (PostgreSQL) or the write lock (SQLite) is held from here,
    // so the checks below see every push that committed before.
    let locked = sqlx::query("UPDATE artifacts SET pushed_at = pushed_at WHERE id = $1")
        .bind(artifact_id)
        .execute(&mut *tx)
        .await?;
    if locked.rows_affected() == 0 {
        return Ok(vec![]);
    }
    if let Some(cutoff) = guard {
        let still: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM artifacts a WHERE a.id = $1 AND a.pushed_at < $2 AND a.subject IS NULL \
             AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.artifact_id = a.id) \
             AND NOT EXISTS (SELECT 1 FROM artifact_children c CROSS JOIN artifacts p \
                 WHERE c.child_digest = a.digest AND p.id = c.parent_id AND p.repository_id = a.repository_id)",
        )
        .bind(artifact_id)
        .bind(cutoff)
        .fetch_one(&mut *tx)
        .await?;
        if still == 0 {
            return Ok(vec![]);
        }
    } else {
        let parent: Option<String> = sqlx::query_scalar(
            "SELECT p.digest FROM artifacts a CROSS JOIN artifact_children c CROSS JOIN artifacts p \
             WHERE a.id = $1 AND c.child_digest = a.digest AND p.id = c.parent_id \
             AND p.repository_id = a.repository_id LIMIT 1",
        )
        .bind(artifact_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(parent) = parent {
            return Err(MetaError::Referenced(parent));
        }
    }
    // Everything deleted below (accessories, freed children) is in the artifact's repository.
    let project_id: i64 = sqlx::query_scalar(
        "SELECT r.project_id FROM artifacts a JOIN repositories r ON r.id = a.repository_id WHERE a.id = $1",
    )
    .bind(artifact_id)
    .fetch_one(&mut *tx)
    .await?;
    let mut deleted = vec![];
    let mut work = vec![artifact_id];
    while let Some(id) = work.pop() {
        let row = sqlx::query("SELECT repository_id, digest FROM artifacts WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { continue };
        let repo_id: i64 = row.try_get("repository_id")?;
        let digest: String = row.try_get("digest")?;
        let accessories: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM artifacts WHERE repository_id = $1 AND subject = $2")
                .bind(repo_id)
                .bind(&digest)
                .fetch_all(&mut *tx)
                .await?;
        let children: Vec<String> =
            sqlx::query_scalar("SELECT child_digest FROM artifact_children WHERE parent_id = $1")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        for sql in [
            "DELETE FROM tags WHERE artifact_id = $1",
            "DELETE FROM artifact_blobs WHERE artifact_id = $1",
            "DELETE FROM artifact_children WHERE parent_id = $1",
            "DELETE FROM artifacts WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        deleted.push(Deleted { id, digest });
        work.extend(accessories);
        for child in children {
            // Freed: untagged and no other index of the repository lists it.
            let freed: Option<i64> = sqlx::query_scalar(
                "SELECT a.id FROM artifacts a WHERE a.repository_id = $1 AND a.digest = $2 \
                 AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.artifact_id = a.id) \
                 AND NOT EXISTS (SELECT 1 FROM artifact_children c CROSS JOIN artifacts p \
                     WHERE c.child_digest = $2 AND p.id = c.parent_id AND p.repository_id = $1)",
            )
            .bind(repo_id)
            .bind(&child)
            .fetch_optional(&mut *tx)
            .await?;
            match freed {
                Some(c) => work.push(c),
                None => {
                    // Still tagged or listed by another index: listed on its own again when
                    // no index of the repository lists it.
                    sqlx::query(
                        "UPDATE artifacts SET visible = 1 WHERE repository_id = $1 AND digest = $2 \
                         AND subject IS NULL AND NOT EXISTS (SELECT 1 FROM artifact_children c \
                         CROSS JOIN artifacts p WHERE c.child_digest = $2 AND p.id = c.parent_id \
                         AND p.repository_id = $1)",
                    )
                    .bind(repo_id)
                    .bind(&child)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
    }
    crate::usage::changed(&mut tx, project_id).await?;
    tx.commit().await?;
    Ok(deleted)
}

/// `delete_artifact_guarded` without a guard: a user's delete (refused for an index's child).
pub async fn delete_artifact(db: &Db, artifact_id: i64) -> Result<Vec<Deleted>, MetaError> {
    delete_artifact_guarded(db, artifact_id, None).await
}

/// Deletes a repository's metadata (tags, artifacts, blob links, uploads) in one transaction;
/// content stays in storage for GC. False when there was no such repository.
/// Deletes a repository's rows in one transaction. Returns `None` when there was no such
/// repository, else the ids of the upload sessions it had: their data objects are the caller's
/// to delete from storage (after the commit, so a failed transaction loses nothing).
pub async fn delete_repository(db: &Db, repo: &str) -> Result<Option<Vec<String>>, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    // A write first, so the transaction holds the write lock from the start (SQLite).
    sqlx::query("UPDATE repositories SET updated_at = updated_at WHERE name = $1")
        .bind(repo)
        .execute(&mut *tx)
        .await?;
    let row: Option<(i64, i64)> = sqlx::query_as("SELECT id, project_id FROM repositories WHERE name = $1")
        .bind(repo)
        .fetch_optional(&mut *tx)
        .await?;
    let Some((id, project_id)) = row else { return Ok(None) };
    for sql in [
        "DELETE FROM tags WHERE repository_id = $1",
        "DELETE FROM artifact_blobs WHERE artifact_id IN (SELECT id FROM artifacts WHERE repository_id = $1)",
        "DELETE FROM artifact_children WHERE parent_id IN (SELECT id FROM artifacts WHERE repository_id = $1)",
        "DELETE FROM artifacts WHERE repository_id = $1",
        "DELETE FROM repositories WHERE id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
    }
    sqlx::query("DELETE FROM repository_blobs WHERE repository = $1").bind(repo).execute(&mut *tx).await?;
    let uploads: Vec<String> = sqlx::query_scalar("SELECT id FROM uploads WHERE repository = $1")
        .bind(repo)
        .fetch_all(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM uploads WHERE repository = $1").bind(repo).execute(&mut *tx).await?;
    crate::usage::changed(&mut tx, project_id).await?;
    tx.commit().await?;
    Ok(Some(uploads))
}

pub async fn delete_tag(db: &Db, repo: &str, tag: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "DELETE FROM tags WHERE name = $2 AND repository_id = (SELECT id FROM repositories WHERE name = $1)",
    )
    .bind(repo)
    .bind(tag)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

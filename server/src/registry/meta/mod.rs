//! Registry metadata in the database: blobs (reservation against GC, confirmation, links to
//! repositories), uploads, pull counting and the registry's reads. Artifact, tag and repository
//! writes are `artifacts::write`'s (a push calls `confirm_in`, `touch_blob` and `link_blob` from
//! there, inside its transaction).

use super::digest::Digest;
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
    /// Set for a proxy-cache project: its upstream registry endpoint.
    pub registry_id: Option<i64>,
}

pub fn project_name(repo: &str) -> &str {
    repo.split('/').next().unwrap_or(repo)
}

pub async fn project_of(db: &Db, repo: &str) -> Result<Option<ProjectRef>, sqlx::Error> {
    sqlx::query_as("SELECT id, owner_id, public, registry_id FROM projects WHERE name = $1")
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
    /// The write would move or delete a tag an immutability rule protects (`immutable`).
    #[error("the tag {tag} of {repository} is configured as immutable (rule {rule}), cannot be {action}")]
    Immutable { repository: String, tag: String, rule: i64, action: &'static str },
    /// The project's storage quota does not admit the new bytes (`crate::quota`).
    #[error(transparent)]
    Quota(#[from] crate::quota::Exceeded),
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
pub(crate) async fn confirm_in(
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
pub(crate) async fn touch_blob(
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
pub(crate) async fn link_blob(
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

/// Confirms a blob whose content is now stored (reserved with generation `gen`), links it
/// to a repository and charges it to the repository's project (`quota::charge`: refused with
/// `MetaError::Quota` when it does not fit).
pub async fn record_blob(db: &Db, repo: &str, digest: &Digest, gen: i64) -> Result<(), MetaError> {
    let project = project_of(db, repo).await?;
    let mut tx = db.begin_write().await?;
    let now = now_ms();
    let d = digest.to_string();
    insert_linked_blob(&mut tx, repo, &d, gen, now).await?;
    if let Some(p) = project {
        crate::quota::charge(&mut tx, p.id, &[&d], now).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Links a blob already linked in `from` to `to` (cross-repository mount) and charges it to
/// `to`'s project. False when `from` does not have it; `MetaError::Quota` when it does not fit.
pub async fn mount_blob(db: &Db, from: &str, to: &str, digest: &Digest) -> Result<bool, MetaError> {
    let project = project_of(db, to).await?;
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
    if let Some(p) = project {
        crate::quota::charge(&mut tx, p.id, &[&digest.to_string()], now).await?;
    }
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

//! Every write to the artifact graph, for every surface: `repositories`, `artifacts`,
//! `artifact_blobs`, `artifact_children` (an index's references), `tags` and
//! `artifact_labels`. A registry push or
//! delete (`registry::manifests`), the REST API's copy, tag, description and delete operations
//! (`api::artifacts`, `api::tags`, `api::repositories`), GC's untagged sweep (`gc`) and the pull
//! counter (`registry::meta::PullRecorder`) all call this module; no other source file writes
//! these tables (`tests::no_other_file_writes_the_artifact_tables` scans the source).
//!
//! Each write is one transaction begun through `Db::begin_write`, and its first statement is a
//! write, so it holds its locks from the start. Rows are locked repositories first, then
//! artifacts (`record_pulls` once took them the other way round and deadlocked with a
//! repository delete on PostgreSQL). The blob bookkeeping a push does in the same transaction
//! (`blobs`, `repository_blobs`: confirming the reservation, marking used, linking) is
//! `registry::meta`'s.
//!
//! **Immutable tags are enforced here** (`crate::immutable`): `put_manifest` refuses to move
//! one to another digest, `delete_tag`, `delete_artifact_guarded` and `delete_repository`
//! refuse to remove one, each reading the project's rules inside its own transaction
//! (`MetaError::Immutable`). Every surface writes through these functions, so none can
//! bypass the rules.

use std::collections::HashMap;

use sqlx::Row;

use crate::api::error::ApiError;
use crate::db::{now_ms, Db};
use crate::registry::digest::Digest;
use crate::registry::manifest::{self, Parsed};
use crate::registry::meta::{self, MetaError};
use crate::state::AppState;

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
            if !meta::confirm_in(&mut tx, digest, manifest_gen, now).await? {
                return Err(MetaError::Collecting(d.clone()));
            }
        } else if !meta::touch_blob(&mut tx, repo, digest, now).await? {
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
    meta::link_blob(&mut tx, repo, &d, now).await?;
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
    .bind((manifest_size + parsed.blobs.iter().map(|b| b.size).sum::<u64>()) as i64)
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
    let rules =
        if tags.is_empty() { vec![] } else { crate::immutable::rules_of(&mut *tx, project_id).await? };
    for tag in tags {
        if let Some(rule) = crate::immutable::is_immutable(&rules, repo, tag) {
            // An immutable tag is created, or left as it is when it already names this
            // artifact; never moved. (Insert-or-nothing, then a look at the row that won: a
            // concurrent push of the same new tag to another digest waits for ours on the
            // unique index and is refused, instead of overwriting it.)
            let created = sqlx::query(
                "INSERT INTO tags (repository_id, artifact_id, name, pushed_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (repository_id, name) DO NOTHING",
            )
            .bind(repo_id)
            .bind(artifact_id)
            .bind(*tag)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if created.rows_affected() == 0 {
                let current: i64 =
                    sqlx::query_scalar("SELECT artifact_id FROM tags WHERE repository_id = $1 AND name = $2")
                        .bind(repo_id)
                        .bind(*tag)
                        .fetch_one(&mut *tx)
                        .await?;
                if current != artifact_id {
                    return Err(MetaError::Immutable {
                        repository: repo.to_string(),
                        tag: tag.to_string(),
                        rule: rule.id,
                        action: "updated",
                    });
                }
            }
            continue;
        }
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
    // Last: the quota charge (everything the manifest references, and the manifest itself),
    // so the shard row it updates is held only until the commit.
    let mut charged: Vec<&str> = rows.iter().map(String::as_str).collect();
    let children: Vec<String> = parsed.manifests.iter().map(|m| m.digest.to_string()).collect();
    charged.extend(children.iter().map(String::as_str));
    crate::quota::charge(&mut tx, project_id, &charged, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Copies one manifest (children first for an index) from `src` into `dst`, linking its blobs.
/// `done` holds the manifests already copied by this request: indexes whose children share a
/// child (many times over, at any depth) copy it once, not once per path to it.
pub async fn copy_manifest(
    state: &AppState,
    project_id: i64,
    src: &str,
    dst: &str,
    digest: &Digest,
    tag: Option<&str>,
    done: &mut std::collections::HashSet<String>,
) -> Result<(), ApiError> {
    if !done.insert(digest.to_string()) {
        return Ok(());
    }
    let body = state.storage.read_all(&digest.blob_key()).await.map_err(|e| match e {
        crate::storage::StorageError::NotFound => {
            ApiError::NotFound(format!("manifest {digest} of the source is missing"))
        }
        e => ApiError::internal(anyhow::anyhow!("{e}")),
    })?;
    let media_type: Option<String> = sqlx::query_scalar(
        "SELECT a.media_type FROM artifacts a JOIN repositories r ON r.id = a.repository_id WHERE r.name = $1 AND a.digest = $2",
    )
    .bind(src)
    .bind(digest.to_string())
    .fetch_optional(&state.db.pool)
    .await?;
    let parsed = manifest::parse(media_type.as_deref(), &body)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("stored manifest: {e}")))?;
    for child in &parsed.manifests {
        Box::pin(copy_manifest(state, project_id, src, dst, &child.digest, None, done)).await?;
    }
    for b in &parsed.blobs {
        if !meta::mount_blob(&state.db, src, dst, &b.digest).await? {
            return Err(ApiError::NotFound(format!("blob {} of the source is missing", b.digest)));
        }
    }
    // The manifest's bytes are already stored (it is the source's): reserving marks them used.
    let gen = meta::reserve_blob(&state.db, digest, body.len() as u64, "manifest").await?;
    if state
        .storage
        .stat(&digest.blob_key())
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?
        .is_none()
    {
        state
            .storage
            .put(&digest.blob_key(), body.clone())
            .await
            .map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?;
    }
    put_manifest(&state.db, project_id, dst, digest, body.len() as u64, &parsed, tag.as_slice(), gen).await?;
    Ok(())
}

/// Adds a tag (REST); `Ok(false)` when the repository already has a tag of that name. A push
/// moves an existing tag instead (`put_manifest`).
pub async fn create_tag(
    db: &Db,
    repository_id: i64,
    artifact_id: i64,
    name: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO tags (repository_id, artifact_id, name, pushed_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(repository_id)
    .bind(artifact_id)
    .bind(name)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Where `delete_tag` looks for the tag.
#[derive(Debug, Clone, Copy)]
pub enum TagOf<'a> {
    /// The repository of that name (a registry `DELETE /v2/<name>/manifests/<tag>`).
    Repository(&'a str),
    /// Only if the tag points at this artifact (REST `DELETE …/artifacts/{reference}/tags/{tag}`).
    Artifact(i64),
}

/// Removes a tag (the artifact stays); false when there was no such tag. An immutable tag is
/// refused (`MetaError::Immutable`).
pub async fn delete_tag(db: &Db, of: TagOf<'_>, name: &str) -> Result<bool, MetaError> {
    let mut tx = db.begin_write().await?;
    // The delete first (it takes the locks), then the rules: refused, it rolls back.
    let found: Option<i64> = match of {
        TagOf::Repository(repo) => {
            sqlx::query_scalar(
                "DELETE FROM tags WHERE name = $2 AND repository_id = (SELECT id FROM repositories WHERE name = $1) \
                 RETURNING repository_id",
            )
            .bind(repo)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
        }
        TagOf::Artifact(artifact_id) => {
            sqlx::query_scalar("DELETE FROM tags WHERE artifact_id = $1 AND name = $2 RETURNING repository_id")
                .bind(artifact_id)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
        }
    };
    let Some(repo_id) = found else { return Ok(false) };
    let (repo, project_id): (String, i64) =
        sqlx::query_as("SELECT name, project_id FROM repositories WHERE id = $1")
            .bind(repo_id)
            .fetch_one(&mut *tx)
            .await?;
    let rules = crate::immutable::rules_of(&mut *tx, project_id).await?;
    refuse_immutable(&rules, &repo, std::iter::once(name))?;
    tx.commit().await?;
    Ok(true)
}

/// `MetaError::Immutable` for the first of `tags` (of `repo`) a rule protects.
fn refuse_immutable<'a>(
    rules: &[crate::immutable::Rule],
    repo: &str,
    tags: impl IntoIterator<Item = &'a str>,
) -> Result<(), MetaError> {
    for tag in tags {
        if let Some(rule) = crate::immutable::is_immutable(rules, repo, tag) {
            return Err(MetaError::Immutable {
                repository: repo.to_string(),
                tag: tag.to_string(),
                rule: rule.id,
                action: "deleted",
            });
        }
    }
    Ok(())
}

/// Adds a label to an artifact (REST `POST …/artifacts/{reference}/labels`); false when the
/// artifact already carries it, `None` when the artifact is gone.
pub async fn add_label(db: &Db, artifact_id: i64, label_id: i64) -> Result<Option<bool>, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    // Locks the artifact against a concurrent delete (which removes its labels).
    let locked = sqlx::query("UPDATE artifacts SET pushed_at = pushed_at WHERE id = $1")
        .bind(artifact_id)
        .execute(&mut *tx)
        .await?;
    if locked.rows_affected() == 0 {
        return Ok(None);
    }
    let r = sqlx::query(
        "INSERT INTO artifact_labels (artifact_id, label_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(artifact_id)
    .bind(label_id)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(r.rows_affected() == 1))
}

/// Removes a label from an artifact; false when it did not carry it.
pub async fn remove_label(db: &Db, artifact_id: i64, label_id: i64) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM artifact_labels WHERE artifact_id = $1 AND label_id = $2")
        .bind(artifact_id)
        .bind(label_id)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Removes a label from every artifact, in the caller's transaction (the label's delete).
pub async fn remove_label_everywhere(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    label_id: i64,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM artifact_labels WHERE label_id = $1")
        .bind(label_id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected())
}

/// A repository's description (REST `PUT …/repositories/{r}`).
pub async fn set_description(db: &Db, id: i64, description: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE repositories SET description = $1, updated_at = $2 WHERE id = $3")
        .bind(description)
        .bind(now_ms())
        .bind(id)
        .execute(&db.pool)
        .await?;
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
/// `guard` is checked on the locked row first: when it no longer holds nothing is deleted (an
/// empty list). For a user's delete (`Guard::User`) a child of an index of the repository is
/// refused (`Referenced`).
pub async fn delete_artifact_guarded(
    db: &Db,
    artifact_id: i64,
    guard: Guard,
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
    if let Guard::Untagged(cutoff) = guard {
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
        if let Guard::Unchanged(since) = guard {
            let changed: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM artifacts a WHERE a.id = $1 AND (a.pushed_at >= $2 \
                 OR EXISTS (SELECT 1 FROM tags t WHERE t.artifact_id = a.id AND t.pushed_at >= $2))",
            )
            .bind(artifact_id)
            .bind(since)
            .fetch_one(&mut *tx)
            .await?;
            if changed > 0 {
                return Ok(vec![]);
            }
        }
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
    let rules = crate::immutable::rules_of(&mut *tx, project_id).await?;
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
        if !rules.is_empty() {
            let (repo, tags): (String, Vec<String>) = (
                sqlx::query_scalar("SELECT name FROM repositories WHERE id = $1")
                    .bind(repo_id)
                    .fetch_one(&mut *tx)
                    .await?,
                sqlx::query_scalar("SELECT name FROM tags WHERE artifact_id = $1 ORDER BY name")
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?,
            );
            refuse_immutable(&rules, &repo, tags.iter().map(String::as_str))?;
        }
        for sql in [
            "DELETE FROM tags WHERE artifact_id = $1",
            "DELETE FROM artifact_labels WHERE artifact_id = $1",
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
    tx.commit().await?;
    Ok(deleted)
}

/// When `delete_artifact_guarded` may delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// A user's delete: always (refused for an index's child).
    User,
    /// GC's untagged sweep: only while the artifact is still untagged, unreferenced and
    /// pushed before the cutoff (ms).
    Untagged(i64),
    /// Tag retention: as a user's delete, but only when neither the artifact nor any of its
    /// tags was pushed since the evaluation began (ms) — a tag moved onto it meanwhile was
    /// never judged by the rules.
    Unchanged(i64),
}

/// `delete_artifact_guarded` with `Guard::User`: a user's delete (refused for an index's child).
pub async fn delete_artifact(db: &Db, artifact_id: i64) -> Result<Vec<Deleted>, MetaError> {
    delete_artifact_guarded(db, artifact_id, Guard::User).await
}

/// Deletes a repository's rows (tags, artifacts, blob links, uploads) in one transaction;
/// content stays in storage for GC. Returns `None` when there was no such
/// repository, else the ids of the upload sessions it had: their data objects are the caller's
/// to delete from storage (after the commit, so a failed transaction loses nothing). A
/// repository holding an immutable tag is refused (`MetaError::Immutable`).
pub async fn delete_repository(db: &Db, repo: &str) -> Result<Option<Vec<String>>, MetaError> {
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
    let rules = crate::immutable::rules_of(&mut *tx, project_id).await?;
    if !rules.is_empty() {
        let tags: Vec<String> =
            sqlx::query_scalar("SELECT name FROM tags WHERE repository_id = $1 ORDER BY name")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        refuse_immutable(&rules, repo, tags.iter().map(String::as_str))?;
    }
    for sql in [
        "DELETE FROM tags WHERE repository_id = $1",
        "DELETE FROM artifact_labels WHERE artifact_id IN (SELECT id FROM artifacts WHERE repository_id = $1)",
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
    tx.commit().await?;
    Ok(Some(uploads))
}

/// Adds counted pulls (artifact id → (pulls, last pull time)) to the artifacts and their
/// repositories, in one transaction. An artifact deleted meanwhile counts for nothing.
pub async fn record_pulls(db: &Db, batch: &HashMap<i64, (i64, i64)>) -> Result<(), sqlx::Error> {
    // Rows are locked in the order every other writer uses: repositories, then artifacts,
    // each by id. (Artifact then repository deadlocked with a repository delete on
    // PostgreSQL, which locks the repository first: the delete answered 503.)
    let mut tx = db.begin_write().await?;
    let mut ids: Vec<i64> = batch.keys().copied().collect();
    ids.sort_unstable();
    // Pulls per repository.
    let mut per_repo: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
    for chunk in ids.chunks(500) {
        let mut q = crate::db::query::Stmt::new("SELECT id, repository_id FROM artifacts WHERE id IN (");
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

#[cfg(test)]
mod tests {
    /// The tables this module alone writes.
    const TABLES: [&str; 6] =
        ["repositories", "artifacts", "artifact_blobs", "artifact_children", "tags", "artifact_labels"];

    /// Statements in `text` (whitespace and case normalised) that write one of `TABLES`.
    fn writes(text: &str) -> Vec<String> {
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        let mut found = Vec::new();
        for verb in ["insert into ", "update ", "delete from "] {
            for (at, _) in flat.match_indices(verb) {
                if flat[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                    continue;
                }
                let rest = &flat[at + verb.len()..];
                let table: String =
                    rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if TABLES.contains(&table.as_str()) {
                    found.push(format!("{verb}{table}"));
                }
            }
        }
        found
    }

    #[test]
    fn the_scan_finds_writes() {
        assert_eq!(writes("sqlx::query(\"DELETE FROM tags WHERE id = $1\")"), ["delete from tags"]);
        assert_eq!(writes("\"UPDATE\n   artifacts SET visible = 0\""), ["update artifacts"]);
        assert_eq!(writes("INSERT INTO artifact_children (parent_id)"), ["insert into artifact_children"]);
        assert!(writes("UPDATE blobs SET x = 1; DELETE FROM tags_old; SELECT * FROM tags").is_empty());
        assert!(writes("last_update tags").is_empty());
        assert!(!writes(include_str!("write.rs")).is_empty());
    }

    /// Invariant: every write to `repositories`, `artifacts`, `artifact_blobs`,
    /// `artifact_children` and `tags` is in this file.
    #[test]
    fn no_other_file_writes_the_artifact_tables() {
        let mut found = Vec::new();
        for (p, text) in crate::source_files().iter().filter(|(p, _)| !p.ends_with("artifacts/write.rs")) {
            for w in writes(text) {
                found.push(format!("{}: {w}", p.display()));
            }
        }
        assert!(
            found.is_empty(),
            "writes to the artifact tables outside artifacts/write.rs:\n{}",
            found.join("\n")
        );
    }
}

//! The registry's reads: manifests by tag or digest, tags, the catalog and referrers.

use super::*;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredManifest {
    #[sqlx(rename = "id")]
    pub artifact_id: i64,
    #[sqlx(try_from = "String")]
    pub digest: Digest,
    pub media_type: String,
    #[sqlx(rename = "manifest_size", try_from = "i64")]
    pub size: u64,
}

pub async fn find_manifest(
    db: &Db,
    repo: &str,
    reference: &crate::registry::path::Reference,
) -> Result<Option<StoredManifest>, sqlx::Error> {
    use crate::registry::path::Reference;
    let (sql, key) = match reference {
        Reference::Tag(t) => (
            "SELECT a.id, a.digest, a.media_type, a.manifest_size FROM tags t \
             JOIN artifacts a ON a.id = t.artifact_id JOIN repositories r ON r.id = t.repository_id \
             WHERE r.name = $1 AND t.name = $2",
            t.clone(),
        ),
        Reference::Digest(d) => (
            "SELECT a.id, a.digest, a.media_type, a.manifest_size FROM artifacts a \
             JOIN repositories r ON r.id = a.repository_id WHERE r.name = $1 AND a.digest = $2",
            d.to_string(),
        ),
    };
    sqlx::query_as(sql).bind(repo).bind(key).fetch_optional(&db.pool).await
}

pub async fn repository_exists(db: &Db, repo: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM repositories WHERE name = $1")
        .bind(repo)
        .fetch_one(&db.pool)
        .await?;
    Ok(n > 0)
}

/// Tags in lexical order after `last`, at most `n`.
pub async fn tags(db: &Db, repo: &str, n: i64, last: Option<&str>) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id \
         WHERE r.name = $1 AND t.name > $2 ORDER BY t.name LIMIT $3",
    )
    .bind(repo)
    .bind(last.unwrap_or(""))
    .bind(n)
    .fetch_all(&db.pool)
    .await
}

/// Repository names after `last`, at most `n`; `public_only` limits to public projects.
/// Repository names after `last`, in the projects `viewer` may see (`None`: all projects).
pub async fn catalog(
    db: &Db,
    viewer: Option<&crate::rbac::Principal>,
    n: i64,
    last: Option<&str>,
) -> Result<Vec<String>, sqlx::Error> {
    let mut q = crate::db::query::Stmt::new(
        "SELECT r.name FROM repositories r JOIN projects p ON p.id = r.project_id WHERE r.name > ?",
    );
    q.bind(last.unwrap_or(""));
    if let Some(v) = viewer {
        q.and(&crate::projects::visible_filter(Some(v)));
    }
    q.push(" ORDER BY r.name LIMIT ?").bind(n);
    q.query_scalar().fetch_all(&db.pool).await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Referrer {
    pub digest: String,
    pub media_type: String,
    pub artifact_type: String,
    #[sqlx(rename = "manifest_size")]
    pub size: i64,
    pub annotations: String,
}

/// The artifacts of `repo` whose subject is `subject`, in digest order after `after`, at most
/// `limit`.
pub async fn referrers(
    db: &Db,
    repo: &str,
    subject: &Digest,
    artifact_type: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Referrer>, sqlx::Error> {
    let mut q = crate::db::query::Stmt::new(
        "SELECT a.digest, a.media_type, a.artifact_type, a.manifest_size, a.annotations FROM artifacts a \
         JOIN repositories r ON r.id = a.repository_id WHERE r.name = ? AND a.subject = ? AND a.digest > ?",
    );
    q.bind(repo).bind(subject.to_string()).bind(after.unwrap_or(""));
    if let Some(t) = artifact_type {
        // Rows without a stored type are candidates too: an image manifest's type is then its
        // config's media type, which the caller reads from the manifest and filters on.
        q.push_bind(" AND (a.artifact_type = ? OR a.artifact_type = '')", t);
    }
    q.push_bind(" ORDER BY a.digest LIMIT ?", limit);
    q.query_as().fetch_all(&db.pool).await
}

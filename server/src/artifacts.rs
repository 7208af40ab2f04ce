//! Repositories, artifacts and tags as the REST API and the portal see them: listing with
//! Harbor's query grammar, details, tags, accessories (referrers) and copies. The registry
//! (`registry::meta`) writes these tables; this module reads them and makes the edits the API
//! offers. Lists use the indexes of migration 0004 (`artifacts.visible` keeps index children and
//! accessories out of lists without an anti-join).

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::api::error::ApiError;
use crate::api::query::{self, Bind, Col, Query, Sql};
use crate::db::{now_ms, Db};

#[derive(Debug, Clone)]
pub struct RepoRow {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub description: String,
    pub artifact_count: i64,
    pub pull_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const REPO_SELECT: &str =
    "SELECT r.id, r.project_id, r.name, r.description, r.pull_count, r.created_at, r.updated_at, \
     (SELECT COUNT(*) FROM artifacts a WHERE a.repository_id = r.id AND a.visible = 1) AS artifact_count \
     FROM repositories r JOIN projects p ON p.id = r.project_id";

fn repo_from_row(r: &AnyRow) -> Result<RepoRow, sqlx::Error> {
    Ok(RepoRow {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        artifact_count: r.try_get("artifact_count")?,
        pull_count: r.try_get("pull_count")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub const REPO_KEYS: [(&str, Col); 4] = [
    ("name", Col::Text("r.name")),
    ("project_id", Col::Int("r.project_id")),
    ("creation_time", Col::Time("r.created_at")),
    ("update_time", Col::Time("r.updated_at")),
];
pub const REPO_SORT: [(&str, &str); 4] = [
    ("name", "r.name"),
    ("creation_time", "r.created_at"),
    ("update_time", "r.updated_at"),
    ("pull_count", "r.pull_count"),
];

/// Repositories matching `sql` (conditions on `r` and `p`), one page and the total.
pub async fn list_repositories(
    db: &Db,
    sql: &Sql,
    order: &str,
    page: u64,
    page_size: u64,
) -> Result<(Vec<RepoRow>, i64), sqlx::Error> {
    let filter = format!(" WHERE 1 = 1{}", sql.and());
    let count_sql =
        format!("SELECT COUNT(*) FROM repositories r JOIN projects p ON p.id = r.project_id{filter}");
    let total = query::bind_scalar(sqlx::query_scalar(&count_sql), &sql.binds).fetch_one(&db.pool).await?;
    let offset = (page.max(1) - 1).saturating_mul(page_size);
    let list_sql = format!("{REPO_SELECT}{filter}{order} LIMIT {page_size} OFFSET {offset}");
    let rows = query::bind_query(sqlx::query(&list_sql), &sql.binds).fetch_all(&db.pool).await?;
    Ok((rows.iter().map(repo_from_row).collect::<Result<_, _>>()?, total))
}

/// A repository by full name; `counted`: with its artifact count (a count over its artifacts,
/// which handlers that only locate the repository skip).
pub async fn get_repository(db: &Db, name: &str, counted: bool) -> Result<Option<RepoRow>, sqlx::Error> {
    let select = if counted {
        REPO_SELECT
    } else {
        "SELECT r.id, r.project_id, r.name, r.description, r.pull_count, r.created_at, r.updated_at, \
         0 AS artifact_count FROM repositories r"
    };
    let row = sqlx::query(&format!("{select} WHERE r.name = $1")).bind(name).fetch_optional(&db.pool).await?;
    row.as_ref().map(repo_from_row).transpose()
}

pub async fn set_description(db: &Db, id: i64, description: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE repositories SET description = $1, updated_at = $2 WHERE id = $3")
        .bind(description)
        .bind(now_ms())
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct ArtifactRow {
    pub id: i64,
    pub repository_id: i64,
    pub repository_name: String,
    pub project_id: i64,
    pub digest: String,
    pub media_type: String,
    pub artifact_type: String,
    pub manifest_size: i64,
    pub size: i64,
    pub subject: Option<String>,
    pub annotations: String,
    pub pushed_at: i64,
    pub pulled_at: i64,
    pub pull_count: i64,
}

const ARTIFACT_SELECT: &str = "SELECT a.id, a.repository_id, r.name AS repository_name, r.project_id, a.digest, \
     a.media_type, a.artifact_type, a.manifest_size, a.size, a.subject, a.annotations, a.pushed_at, a.pulled_at, \
     a.pull_count FROM artifacts a JOIN repositories r ON r.id = a.repository_id";

fn artifact_from_row(r: &AnyRow) -> Result<ArtifactRow, sqlx::Error> {
    Ok(ArtifactRow {
        id: r.try_get("id")?,
        repository_id: r.try_get("repository_id")?,
        repository_name: r.try_get("repository_name")?,
        project_id: r.try_get("project_id")?,
        digest: r.try_get("digest")?,
        media_type: r.try_get("media_type")?,
        artifact_type: r.try_get("artifact_type")?,
        manifest_size: r.try_get("manifest_size")?,
        size: r.try_get("size")?,
        subject: r.try_get("subject")?,
        annotations: r.try_get("annotations")?,
        pushed_at: r.try_get("pushed_at")?,
        pulled_at: r.try_get("pulled_at")?,
        pull_count: r.try_get("pull_count")?,
    })
}

pub const ARTIFACT_KEYS: [(&str, Col); 5] = [
    ("digest", Col::Text("a.digest")),
    ("media_type", Col::Text("a.media_type")),
    ("artifact_type", Col::Text("a.artifact_type")),
    ("push_time", Col::Time("a.pushed_at")),
    ("pull_time", Col::Time("a.pulled_at")),
];
pub const ARTIFACT_SORT: [(&str, &str); 4] =
    [("push_time", "a.pushed_at"), ("pull_time", "a.pulled_at"), ("size", "a.size"), ("digest", "a.digest")];

/// The listed artifacts of a repository (index children and accessories are listed under their
/// parent), filtered by `q` (keys `ARTIFACT_KEYS` plus `tags`: exact tag name, `~` fuzzy, or
/// `*` for any tag / `nil` for untagged), one page and the total.
pub async fn list_artifacts(
    db: &Db,
    repository_id: i64,
    q: &Query,
    sort: Option<&str>,
    page: u64,
    page_size: u64,
) -> Result<(Vec<ArtifactRow>, i64), ApiError> {
    list_artifacts_in(db, ArtifactScope::Repository(repository_id), q, sort, page, page_size).await
}

/// Where `list_artifacts_in` looks.
#[derive(Debug, Clone, Copy)]
pub enum ArtifactScope {
    Repository(i64),
    /// Every repository of the project (Harbor's `listArtifactsOfProject`).
    Project(i64),
}

/// `list_artifacts` of a repository or of a whole project.
pub async fn list_artifacts_in(
    db: &Db,
    scope: ArtifactScope,
    q: &Query,
    sort: Option<&str>,
    page: u64,
    page_size: u64,
) -> Result<(Vec<ArtifactRow>, i64), ApiError> {
    let mut sql = Sql::starting_at(2);
    query::to_sql(q, &ARTIFACT_KEYS, &["tags"], &mut sql)?;
    match q.get("tags") {
        None => {}
        Some(query::Cond::Exact(t)) if t == "*" => {
            sql.push_raw("EXISTS (SELECT 1 FROM tags t WHERE t.artifact_id = a.id)")
        }
        Some(query::Cond::Exact(t)) if t == "nil" => {
            sql.push_raw("NOT EXISTS (SELECT 1 FROM tags t WHERE t.artifact_id = a.id)")
        }
        Some(query::Cond::Exact(t)) => sql.push(
            "EXISTS (SELECT 1 FROM tags t WHERE t.artifact_id = a.id AND t.name = ?)",
            Bind::S(t.clone()),
        ),
        Some(query::Cond::Fuzzy(t)) => sql.push(
            "EXISTS (SELECT 1 FROM tags t WHERE t.artifact_id = a.id AND lower(t.name) LIKE ? ESCAPE '\\')",
            Bind::S(format!("%{}%", crate::projects::escape_like(&t.to_lowercase()))),
        ),
        Some(_) => return Err(ApiError::BadRequest("tags takes an exact or fuzzy value".into())),
    }
    let order = query::order_by(sort, &ARTIFACT_SORT, "a.pushed_at DESC", "a.id DESC")?;
    let (scope_sql, scope_id) = match scope {
        ArtifactScope::Repository(id) => ("a.repository_id = $1", id),
        ArtifactScope::Project(id) => {
            ("a.repository_id IN (SELECT id FROM repositories WHERE project_id = $1)", id)
        }
    };
    let filter = format!(" WHERE {scope_sql} AND a.visible = 1{}", sql.and());
    let count_sql = format!("SELECT COUNT(*) FROM artifacts a{filter}");
    let total = query::bind_scalar(sqlx::query_scalar(&count_sql).bind(scope_id), &sql.binds)
        .fetch_one(&db.pool)
        .await?;
    let offset = (page.max(1) - 1).saturating_mul(page_size);
    // Deferred join: the page's ids come from the `artifacts_list` index alone (an index-only
    // scan skips the offset without touching the table), then only those rows are read. A deep
    // page of 100k artifacts on PostgreSQL went from ~60 ms to a few.
    let list_sql = format!(
        "{ARTIFACT_SELECT} JOIN (SELECT a.id FROM artifacts a{filter}{order} LIMIT {page_size} OFFSET {offset}) page \
         ON page.id = a.id{order}"
    );
    let rows =
        query::bind_query(sqlx::query(&list_sql).bind(scope_id), &sql.binds).fetch_all(&db.pool).await?;
    Ok((rows.iter().map(artifact_from_row).collect::<Result<_, sqlx::Error>>()?, total))
}

/// An artifact of a repository by digest or tag.
pub async fn get_artifact(
    db: &Db,
    repository_id: i64,
    reference: &str,
) -> Result<Option<ArtifactRow>, sqlx::Error> {
    let row = if reference.contains(':') {
        sqlx::query(&format!("{ARTIFACT_SELECT} WHERE a.repository_id = $1 AND a.digest = $2"))
            .bind(repository_id)
            .bind(reference)
            .fetch_optional(&db.pool)
            .await?
    } else {
        sqlx::query(&format!(
            "{ARTIFACT_SELECT} JOIN tags t ON t.artifact_id = a.id WHERE a.repository_id = $1 AND t.name = $2"
        ))
        .bind(repository_id)
        .bind(reference)
        .fetch_optional(&db.pool)
        .await?
    };
    row.as_ref().map(artifact_from_row).transpose()
}

#[derive(Debug, Clone)]
pub struct TagRow {
    pub id: i64,
    pub repository_id: i64,
    pub artifact_id: i64,
    pub name: String,
    pub pushed_at: i64,
}

fn tag_from_row(r: &AnyRow) -> Result<TagRow, sqlx::Error> {
    Ok(TagRow {
        id: r.try_get("id")?,
        repository_id: r.try_get("repository_id")?,
        artifact_id: r.try_get("artifact_id")?,
        name: r.try_get("name")?,
        pushed_at: r.try_get("pushed_at")?,
    })
}

/// Tags of the given artifacts, in one query.
pub async fn tags_of(db: &Db, artifact_ids: &[i64]) -> Result<HashMap<i64, Vec<TagRow>>, sqlx::Error> {
    let mut out: HashMap<i64, Vec<TagRow>> = HashMap::new();
    if artifact_ids.is_empty() {
        return Ok(out);
    }
    let list: Vec<String> = artifact_ids.iter().map(|i| i.to_string()).collect();
    let rows = sqlx::query(&format!(
        "SELECT id, repository_id, artifact_id, name, pushed_at FROM tags WHERE artifact_id IN ({}) \
         ORDER BY pushed_at DESC, name",
        list.join(",")
    ))
    .fetch_all(&db.pool)
    .await?;
    for r in &rows {
        let t = tag_from_row(r)?;
        out.entry(t.artifact_id).or_default().push(t);
    }
    Ok(out)
}

/// Tags of one artifact, one page and the total.
pub async fn list_tags(
    db: &Db,
    artifact_id: i64,
    name_like: Option<&str>,
    page: u64,
    page_size: u64,
) -> Result<(Vec<TagRow>, i64), sqlx::Error> {
    let like = format!("%{}%", crate::projects::escape_like(&name_like.unwrap_or("").to_lowercase()));
    let filter = " WHERE artifact_id = $1 AND lower(name) LIKE $2 ESCAPE '\\'";
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM tags{filter}"))
        .bind(artifact_id)
        .bind(&like)
        .fetch_one(&db.pool)
        .await?;
    let offset = (page.max(1) - 1).saturating_mul(page_size);
    let rows = sqlx::query(&format!(
        "SELECT id, repository_id, artifact_id, name, pushed_at FROM tags{filter} \
         ORDER BY pushed_at DESC, name LIMIT {page_size} OFFSET {offset}"
    ))
    .bind(artifact_id)
    .bind(&like)
    .fetch_all(&db.pool)
    .await?;
    Ok((rows.iter().map(tag_from_row).collect::<Result<_, _>>()?, total))
}

/// Adds a tag; `Ok(false)` when the repository already has a tag of that name.
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

pub async fn delete_tag(db: &Db, artifact_id: i64, name: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM tags WHERE artifact_id = $1 AND name = $2")
        .bind(artifact_id)
        .bind(name)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Children of an index: (digest, platform JSON, the child's artifact id in the repository).
pub async fn references(
    db: &Db,
    artifact: &ArtifactRow,
) -> Result<Vec<(String, String, Option<i64>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.child_digest, c.platform, a.id AS child_id FROM artifact_children c \
         LEFT JOIN artifacts a ON a.repository_id = $2 AND a.digest = c.child_digest \
         WHERE c.parent_id = $1 ORDER BY c.child_digest",
    )
    .bind(artifact.id)
    .bind(artifact.repository_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("child_digest")?, r.try_get("platform")?, r.try_get("child_id")?)))
        .collect()
}

/// Artifacts in the same repository whose `subject` is this artifact (signatures, SBOMs, …).
pub async fn accessories(db: &Db, artifact: &ArtifactRow) -> Result<Vec<ArtifactRow>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{ARTIFACT_SELECT} WHERE a.repository_id = $1 AND a.subject = $2 ORDER BY a.pushed_at DESC, a.id DESC"
    ))
    .bind(artifact.repository_id)
    .bind(&artifact.digest)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(artifact_from_row).collect()
}

/// Harbor's artifact `type`.
pub fn kind(media_type: &str, artifact_type: &str) -> &'static str {
    match artifact_type {
        "" => "IMAGE",
        "application/vnd.cncf.helm.config.v1+json" => "CHART",
        "application/vnd.cnab.manifest.v1" => "CNAB",
        t if t.contains("image.config") => "IMAGE",
        _ if app::rest::artifacts::is_index(media_type) => "IMAGE",
        _ => "UNKNOWN",
    }
}

/// Harbor's accessory `type` for a referrer.
pub fn accessory_kind(artifact_type: &str) -> String {
    let t = artifact_type;
    if t.contains("cosign") || t.contains("signature") || t.contains("notary") {
        if t.contains("notary") {
            "signature.notation".into()
        } else {
            "signature.cosign".into()
        }
    } else if t.contains("spdx") || t.contains("cyclonedx") || t.contains("sbom") {
        "harbor.sbom".into()
    } else if t.is_empty() {
        "subject.accessory".into()
    } else {
        t.to_string()
    }
}

/// Counts for `/statistics`: projects and repositories visible to the viewer, by visibility.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub private_projects: i64,
    pub public_projects: i64,
    pub private_repos: i64,
    pub public_repos: i64,
    pub storage: i64,
}

pub async fn statistics(
    db: &Db,
    visible: &str,
    bind: Option<i64>,
    with_storage: bool,
) -> Result<Stats, sqlx::Error> {
    async fn count(db: &Db, sql: String, bind: Option<i64>) -> Result<i64, sqlx::Error> {
        let mut q = sqlx::query_scalar::<_, i64>(&sql);
        if let Some(b) = bind {
            q = q.bind(b);
        }
        q.fetch_one(&db.pool).await
    }
    let mut s = Stats {
        private_projects: count(db, format!("SELECT COUNT(*) FROM projects p WHERE p.public = 0 AND {visible}"), bind)
            .await?,
        public_projects: count(db, format!("SELECT COUNT(*) FROM projects p WHERE p.public = 1 AND {visible}"), bind)
            .await?,
        private_repos: count(
            db,
            format!(
                "SELECT COUNT(*) FROM repositories r JOIN projects p ON p.id = r.project_id WHERE p.public = 0 AND {visible}"
            ),
            bind,
        )
        .await?,
        public_repos: count(
            db,
            format!(
                "SELECT COUNT(*) FROM repositories r JOIN projects p ON p.id = r.project_id WHERE p.public = 1 AND {visible}"
            ),
            bind,
        )
        .await?,
        storage: 0,
    };
    if with_storage {
        s.storage = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs")
            .fetch_one(&db.pool)
            .await?;
    }
    Ok(s)
}

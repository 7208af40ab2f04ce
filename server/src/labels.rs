//! Labels (Harbor's `harbor_label`, goharbor/harbor `src/pkg/label`): global labels (`scope`
//! `g`, `project_id` 0, the system admin's) and project labels (`p`, the project's admins and
//! maintainers). A name is unique within its scope and project (409); a project label may
//! share a global label's name. An artifact carries global labels and its own project's
//! (`artifact_labels`, written by `artifacts::write`); deleting a label removes it from every
//! artifact in the same transaction.
//!
//! For rule evaluators (replication's `label` filter, retention later): `names_of` gives the
//! label names of many artifacts in one query, and `ids_named` turns names into the ids an
//! artifact list filters on.

use std::collections::HashMap;

use app::rest::labels::{Label, LabelReq};

use crate::db::query::{order_by, Bind, Col, SortKey, Sql, Stmt};
use crate::db::{now_ms, rfc3339, Db};

pub const MAX_NAME_LEN: usize = 128;
pub const MAX_DESCRIPTION_LEN: usize = 1024;
pub const MAX_COLOR_LEN: usize = 32;

pub const GLOBAL: &str = "g";
pub const PROJECT: &str = "p";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LabelRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub color: String,
    pub scope: String,
    pub project_id: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl LabelRow {
    pub fn to_rest(&self) -> Label {
        Label {
            id: self.id,
            name: self.name.clone(),
            description: self.description.clone(),
            color: self.color.clone(),
            scope: self.scope.clone(),
            project_id: self.project_id,
            creation_time: rfc3339(self.created_at),
            update_time: rfc3339(self.updated_at),
        }
    }

    /// Whether an artifact of `project_id` may carry this label.
    pub fn usable_in(&self, project_id: i64) -> bool {
        self.scope == GLOBAL || self.project_id == project_id
    }
}

/// Validates a label's name, description and color (the messages are the 400's).
pub fn validate(name: &str, description: &str, color: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("the label's name cannot be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("the label's name is longer than {MAX_NAME_LEN} bytes"));
    }
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err("the label's name has leading or trailing spaces or control characters".into());
    }
    if description.len() > MAX_DESCRIPTION_LEN {
        return Err(format!("the label's description is longer than {MAX_DESCRIPTION_LEN} bytes"));
    }
    if color.len() > MAX_COLOR_LEN || color.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("the label's color must be a CSS color of at most {MAX_COLOR_LEN} characters"));
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("a label named {0:?} already exists in this scope")]
    Conflict(String),
    #[error("label not found")]
    NotFound,
    #[error(transparent)]
    Db(sqlx::Error),
}

const SELECT: &str =
    "SELECT id, name, description, color, scope, project_id, created_at, updated_at FROM labels";

/// The keys `q` takes on `GET /labels`, and the sort keys.
pub const KEYS: [(&str, Col); 2] = [("name", Col::Text("name")), ("id", Col::Int("id"))];
pub const SORT: [(&str, &str); 4] =
    [("name", "name"), ("id", "id"), ("creation_time", "created_at"), ("update_time", "updated_at")];

/// One page of the labels of a scope (and project), filtered; and the total.
pub async fn list(
    db: &Db,
    conds: Sql,
    sort: &[SortKey],
    page: u64,
    size: u64,
) -> Result<(Vec<LabelRow>, i64), crate::api::error::ApiError> {
    let order = order_by(sort, &SORT, "name", "id")?;
    let mut count = Stmt::new("SELECT COUNT(*) FROM labels");
    count.where_(&conds);
    let total: i64 = count.query_scalar().fetch_one(&db.pool).await?;
    let offset = (page.max(1) - 1).saturating_mul(size);
    let mut q = Stmt::new(SELECT);
    q.where_(&conds).push(&format!("{order} LIMIT {size} OFFSET {offset}"));
    Ok((q.query_as::<LabelRow>().fetch_all(&db.pool).await?, total))
}

/// The conditions of a scope: global labels, or one project's.
pub fn scope_conds(scope: &str, project_id: i64) -> Sql {
    let mut s = Sql::new();
    s.push("scope = ?", Bind::S(scope.to_string()));
    s.push("project_id = ?", Bind::I(if scope == GLOBAL { 0 } else { project_id }));
    s
}

pub async fn get(db: &Db, id: i64) -> Result<Option<LabelRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE id = $1")).bind(id).fetch_optional(&db.pool).await
}

/// Creates a label (validated by the caller); its id.
pub async fn create(db: &Db, req: &LabelReq) -> Result<i64, LabelError> {
    let now = now_ms();
    let project_id = if req.scope == GLOBAL { 0 } else { req.project_id };
    let mut tx = db.begin_write().await.map_err(LabelError::Db)?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO labels (name, description, color, scope, project_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(&req.name)
    .bind(&req.description)
    .bind(&req.color)
    .bind(&req.scope)
    .bind(project_id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| conflict(e, &req.name))?;
    tx.commit().await.map_err(LabelError::Db)?;
    Ok(id)
}

fn conflict(e: sqlx::Error, name: &str) -> LabelError {
    if crate::db::error::is_conflict(&e) {
        LabelError::Conflict(name.to_string())
    } else {
        LabelError::Db(e)
    }
}

/// Changes a label's name, description and color (scope and project stay).
pub async fn update(db: &Db, id: i64, name: &str, description: &str, color: &str) -> Result<(), LabelError> {
    let mut tx = db.begin_write().await.map_err(LabelError::Db)?;
    let r = sqlx::query(
        "UPDATE labels SET name = $2, description = $3, color = $4, updated_at = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(description)
    .bind(color)
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .map_err(|e| conflict(e, name))?;
    if r.rows_affected() == 0 {
        return Err(LabelError::NotFound);
    }
    tx.commit().await.map_err(LabelError::Db)?;
    Ok(())
}

/// Deletes a label and removes it from every artifact, in one transaction; the number of
/// artifacts that carried it, `None` when there was no such label.
pub async fn delete(db: &Db, id: i64) -> Result<Option<u64>, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let detached = crate::artifacts::write::remove_label_everywhere(&mut tx, id).await?;
    let r = sqlx::query("DELETE FROM labels WHERE id = $1").bind(id).execute(&mut *tx).await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    tx.commit().await?;
    Ok(Some(detached))
}

/// The labels of the given artifacts (by name), in one query.
pub async fn of_artifacts(db: &Db, artifact_ids: &[i64]) -> Result<HashMap<i64, Vec<LabelRow>>, sqlx::Error> {
    let mut out: HashMap<i64, Vec<LabelRow>> = HashMap::new();
    for chunk in artifact_ids.chunks(500) {
        let mut q = Stmt::new(
            "SELECT al.artifact_id, l.id, l.name, l.description, l.color, l.scope, l.project_id, l.created_at, \
             l.updated_at FROM artifact_labels al JOIN labels l ON l.id = al.label_id WHERE al.artifact_id IN (",
        );
        q.push_list(chunk.iter().copied()).push(") ORDER BY l.name, l.id");
        let rows = q.query().fetch_all(&db.pool).await?;
        for row in rows {
            use sqlx::{FromRow, Row};
            let artifact: i64 = row.try_get("artifact_id")?;
            out.entry(artifact).or_default().push(LabelRow::from_row(&row)?);
        }
    }
    Ok(out)
}

/// The label names of the given artifacts, for rule evaluators (replication's `label`
/// filter): artifact id → names.
pub async fn names_of(db: &Db, artifact_ids: &[i64]) -> Result<HashMap<i64, Vec<String>>, sqlx::Error> {
    Ok(of_artifacts(db, artifact_ids)
        .await?
        .into_iter()
        .map(|(id, ls)| (id, ls.into_iter().map(|l| l.name).collect()))
        .collect())
}

/// The ids of the labels an artifact of `project_id` may carry that are named `name` (a
/// global one and the project's may share a name).
pub async fn ids_named(db: &Db, project_id: i64, name: &str) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM labels WHERE name = $1 AND (scope = 'g' OR (scope = 'p' AND project_id = $2)) ORDER BY id",
    )
    .bind(name)
    .bind(project_id)
    .fetch_all(&db.pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(validate("release", "", "#61717D").is_ok());
        assert!(validate("中文 label", "desc", "").is_ok());
        for (name, why) in
            [("", "empty"), ("   ", "empty"), (" x", "spaces"), ("x\n", "spaces"), ("a\u{7}b", "control")]
        {
            assert!(validate(name, "", "").unwrap_err().contains(why), "{name:?}");
        }
        assert!(validate(&"n".repeat(129), "", "").unwrap_err().contains("longer"));
        assert!(validate(&"n".repeat(128), "", "").is_ok());
        assert!(validate("x", &"d".repeat(1025), "").unwrap_err().contains("description"));
        assert!(validate("x", "", "red; x").unwrap_err().contains("color"));
        assert!(validate("x", "", &"f".repeat(33)).unwrap_err().contains("color"));
    }
}

//! Projects: the namespace every repository lives in. This issue brings the table, the default
//! public project `library` and listing; creation, members and RBAC come with the RBAC issue.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::accounts::User;
use crate::db::{now_ms, Db};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub owner_id: i64,
    pub owner_name: String,
    pub public: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

fn project_from_row(r: &AnyRow) -> Result<Project, sqlx::Error> {
    Ok(Project {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        owner_id: r.try_get("owner_id")?,
        owner_name: r.try_get("owner_name")?,
        public: r.try_get::<i64, _>("public")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Creates the public project `library`, owned by admin, when missing (first start).
pub async fn ensure_library(db: &Db) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO projects (name, owner_id, public, created_at, updated_at) \
         SELECT 'library', id, 1, $1, $1 FROM users WHERE username = 'admin' \
         ON CONFLICT DO NOTHING",
    )
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Query for listing projects.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Substring of the name (case-insensitive).
    pub name: Option<String>,
    pub public: Option<bool>,
    /// 1-based.
    pub page: u64,
    pub page_size: u64,
}

/// Projects the caller may see: all for a system admin, the public ones otherwise (membership
/// is added with the RBAC issue). Returns one page and the total count.
pub async fn list_visible(
    db: &Db,
    viewer: Option<&User>,
    q: &ListQuery,
) -> Result<(Vec<Project>, i64), sqlx::Error> {
    let mut filter = String::from(" WHERE 1 = 1");
    let mut binds: Vec<String> = Vec::new();
    let admin = viewer.map(|u| u.sysadmin).unwrap_or(false);
    if !admin {
        filter.push_str(" AND p.public = 1");
    }
    if let Some(public) = q.public {
        filter.push_str(if public { " AND p.public = 1" } else { " AND p.public = 0" });
    }
    if let Some(name) = q.name.as_deref().filter(|n| !n.is_empty()) {
        binds.push(format!("%{}%", escape_like(&name.to_lowercase())));
        filter.push_str(&format!(" AND lower(p.name) LIKE ${} ESCAPE '\\'", binds.len()));
    }
    let count_sql = format!("SELECT COUNT(*) FROM projects p{filter}");
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
    for b in &binds {
        count = count.bind(b);
    }
    let total = count.fetch_one(&db.pool).await?;

    let page_size = q.page_size.clamp(1, 100);
    let offset = (q.page.max(1) - 1).saturating_mul(page_size);
    let sql = format!(
        "SELECT p.id, p.name, p.owner_id, u.username AS owner_name, p.public, p.created_at, p.updated_at \
         FROM projects p JOIN users u ON u.id = p.owner_id{filter} ORDER BY p.name LIMIT {page_size} OFFSET {offset}"
    );
    let mut query = sqlx::query(&sql);
    for b in &binds {
        query = query.bind(b);
    }
    let rows = query.fetch_all(&db.pool).await?;
    let projects = rows.iter().map(project_from_row).collect::<Result<Vec<_>, _>>()?;
    Ok((projects, total))
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
pub fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_escaping() {
        assert_eq!(super::escape_like("a_b%c\\d"), "a\\_b\\%c\\\\d");
    }
}

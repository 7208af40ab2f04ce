//! Projects: the namespace every repository lives in, and their members — users and user
//! groups (`identity::groups`; a user holds a group's role through `User::groups`). Who may do
//! what in a project is decided in `rbac`; this module only stores and lists.

use serde::Serialize;
use sqlx::FromRow;

use crate::accounts::User;
use crate::api::error::ApiError;
use crate::api::query::Query;
use crate::db::error::is_conflict;
use crate::db::query::{contains, order_by, Bind, Col, SortKey, Sql, Stmt};
use crate::db::{now_ms, Db};
use crate::rbac::{Principal, Role};

#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub owner_id: i64,
    pub owner_name: String,
    #[sqlx(try_from = "crate::db::Flag")]
    pub public: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub repo_count: i64,
    /// The upstream registry endpoint of a proxy-cache project; set at creation only.
    pub registry_id: Option<i64>,
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
    sqlx::query(
        "INSERT INTO project_members (project_id, user_id, role, created_at, updated_at) \
         SELECT p.id, p.owner_id, 1, $1, $1 FROM projects p WHERE p.name = 'library' \
         AND NOT EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = p.id) \
         ON CONFLICT DO NOTHING",
    )
    .bind(now)
    .execute(&db.pool)
    .await?;
    // Its quota: unlimited.
    sqlx::query(
        "INSERT INTO quotas (project_id, hard, created_at, updated_at) \
         SELECT id, -1, $1, $1 FROM projects WHERE name = 'library' ON CONFLICT (project_id) DO NOTHING",
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
    /// Harbor's `q` (keys `PROJECT_KEYS`).
    pub q: Query,
    /// Harbor's `sort` (keys `PROJECT_SORT`); default by name.
    pub sort: Vec<SortKey>,
    /// 1-based.
    pub page: u64,
    pub page_size: u64,
}

pub const PROJECT_KEYS: [(&str, Col); 5] = [
    ("name", Col::Text("p.name")),
    ("public", Col::Flag("p.public")),
    ("owner_id", Col::Int("p.owner_id")),
    ("creation_time", Col::Time("p.created_at")),
    ("update_time", Col::Time("p.updated_at")),
];
pub const PROJECT_SORT: [(&str, &str); 3] =
    [("name", "p.name"), ("creation_time", "p.created_at"), ("update_time", "p.updated_at")];

/// The SQL condition (on alias `p`) selecting the projects a caller may see: all for a system
/// admin; public ones plus, for a user, those they are a member of and, for a robot, those its
/// permissions name (all of them with namespace `*`).
pub fn visible_filter(viewer: Option<&Principal>) -> Sql {
    let mut sql = Sql::new();
    match viewer {
        Some(v) if v.is_sysadmin() => sql.push_raw("1 = 1"),
        Some(Principal::User(u)) => {
            // Member itself or through one of its groups (`User::groups`).
            let groups = vec!["?"; u.groups.len()].join(", ");
            let by_group =
                if u.groups.is_empty() { String::new() } else { format!(" OR group_id IN ({groups})") };
            let mut binds = vec![Bind::I(u.id)];
            binds.extend(u.groups.iter().map(|g| Bind::I(*g)));
            sql.push_all(
                &format!(
                    "(p.public = 1 OR p.id IN (SELECT project_id FROM project_members WHERE user_id = ?{by_group}))"
                ),
                binds,
            )
        }
        Some(Principal::Robot(r)) => sql.push_all(
            "(p.public = 1 OR p.id IN (SELECT project_id FROM robot_permissions WHERE robot_id = ?) \
             OR EXISTS (SELECT 1 FROM robot_permissions WHERE robot_id = ? AND project_id IS NULL))",
            [Bind::I(r.id), Bind::I(r.id)],
        ),
        None => sql.push_raw("p.public = 1"),
    }
    sql
}

const PROJECT_SELECT: &str = "SELECT p.id, p.name, p.owner_id, u.username AS owner_name, p.public, \
     p.created_at, p.updated_at, (SELECT COUNT(*) FROM repositories r WHERE r.project_id = p.id) AS repo_count, \
     p.registry_id FROM projects p JOIN users u ON u.id = p.owner_id";

/// Projects the caller may see (`visible_filter`), one page and the total count. Bad `q` or
/// `sort` keys are a 400.
pub async fn list_visible(
    db: &Db,
    viewer: Option<&Principal>,
    q: &ListQuery,
) -> Result<(Vec<Project>, i64), ApiError> {
    let mut sql = visible_filter(viewer);
    if let Some(public) = q.public {
        sql.push_raw(if public { "p.public = 1" } else { "p.public = 0" });
    }
    if let Some(name) = q.name.as_deref().filter(|n| !n.is_empty()) {
        sql.push("lower(p.name) LIKE ? ESCAPE '\\'", contains(name));
    }
    sql.filter(&q.q.terms, &PROJECT_KEYS, &[])?;
    let order = order_by(&q.sort, &PROJECT_SORT, "p.name", "p.id")?;
    let mut count = Stmt::new("SELECT COUNT(*) FROM projects p");
    count.where_(&sql);
    let total = count.query_scalar().fetch_one(&db.pool).await?;

    let page_size = q.page_size.clamp(1, 100);
    let offset = (q.page.max(1) - 1).saturating_mul(page_size);
    let mut list = Stmt::new(PROJECT_SELECT);
    list.where_(&sql).push(&format!("{order} LIMIT {page_size} OFFSET {offset}"));
    let rows = list.query().fetch_all(&db.pool).await?;
    let projects = rows.iter().map(Project::from_row).collect::<Result<Vec<_>, _>>()?;
    Ok((projects, total))
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Project>, sqlx::Error> {
    let row =
        sqlx::query(&format!("{PROJECT_SELECT} WHERE p.id = $1")).bind(id).fetch_optional(&db.pool).await?;
    row.as_ref().map(Project::from_row).transpose()
}

pub async fn get_by_name(db: &Db, name: &str) -> Result<Option<Project>, sqlx::Error> {
    let row = sqlx::query(&format!("{PROJECT_SELECT} WHERE p.name = $1"))
        .bind(name)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(Project::from_row).transpose()
}

/// Harbor's project name rule: 1–255 characters of lower-case letters, digits and `._-`,
/// starting and ending with a letter or digit; also a valid first path component of an OCI
/// repository name.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 255
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("{0}")]
    Invalid(String),
    #[error("the project {0:?} already exists")]
    Exists(String),
    #[error("project not found")]
    NotFound,
    #[error("the metadata {0} is already set; change it with PUT")]
    MetadataExists(String),
    #[error("the project still has {0} repositories; delete them first")]
    NotEmpty(i64),
    #[error("{0}")]
    Member(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Creates a project; its creator becomes its project admin and its quota is `storage_limit`
/// bytes (-1: unlimited), in the same transaction. With `registry_id` it is a proxy cache of
/// that registry endpoint, which must exist (checked in the transaction).
pub async fn create(
    db: &Db,
    name: &str,
    public: bool,
    owner: &User,
    registry_id: Option<i64>,
    storage_limit: i64,
) -> Result<Project, ProjectError> {
    if !valid_name(name) {
        return Err(ProjectError::Invalid(
            "project names are 1-255 lower-case letters, digits, '.', '_' or '-', starting and ending with \
             a letter or digit"
                .into(),
        ));
    }
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    if let Some(rid) = registry_id {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM registries WHERE id = $1")
            .bind(rid)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Err(ProjectError::Invalid(format!("registry {rid} not found")));
        }
    }
    let id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO projects (name, owner_id, public, created_at, updated_at, registry_id) \
         VALUES ($1, $2, $3, $4, $4, $5) RETURNING id",
    )
    .bind(name)
    .bind(owner.id)
    .bind(i16::from(public))
    .bind(now)
    .bind(registry_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| if is_conflict(&e) { ProjectError::Exists(name.into()) } else { e.into() })?;
    sqlx::query(
        "INSERT INTO project_members (project_id, user_id, role, created_at, updated_at) VALUES ($1, $2, 1, $3, $3)",
    )
    .bind(id)
    .bind(owner.id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    crate::quota::create_in(&mut tx, id, storage_limit, now).await?;
    tx.commit().await?;
    get(db, id).await?.ok_or(ProjectError::NotFound)
}

pub async fn set_public(db: &Db, id: i64, public: bool) -> Result<(), ProjectError> {
    let done = sqlx::query("UPDATE projects SET public = $1, updated_at = $2 WHERE id = $3")
        .bind(i16::from(public))
        .bind(now_ms())
        .bind(id)
        .execute(&db.pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ProjectError::NotFound);
    }
    Ok(())
}

/// Deletes an empty project with its members, its robots and robot permissions naming it, and
/// the blob links of repositories that never got a manifest. Content stays for GC.
pub async fn delete(db: &Db, id: i64) -> Result<Project, ProjectError> {
    let project = get(db, id).await?.ok_or(ProjectError::NotFound)?;
    let mut tx = db.begin_write().await?;
    let repos: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM repositories WHERE project_id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    if repos > 0 {
        return Err(ProjectError::NotEmpty(repos));
    }
    for sql in [
        "DELETE FROM robot_permissions WHERE project_id = $1",
        "DELETE FROM robot_permissions WHERE robot_id IN (SELECT id FROM robots WHERE project_id = $1)",
        "DELETE FROM robots WHERE project_id = $1",
        "DELETE FROM project_members WHERE project_id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
    }
    sqlx::query("DELETE FROM repository_blobs WHERE repository LIKE $1 ESCAPE '\\'")
        .bind(format!("{}/%", crate::db::query::escape_like(&project.name)))
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM uploads WHERE repository LIKE $1 ESCAPE '\\'")
        .bind(format!("{}/%", crate::db::query::escape_like(&project.name)))
        .execute(&mut *tx)
        .await?;
    crate::quota::delete_in(&mut tx, id).await?;
    sqlx::query("DELETE FROM project_metadata WHERE project_id = $1").bind(id).execute(&mut *tx).await?;
    // An empty project: its labels are on no artifact any more.
    sqlx::query("DELETE FROM labels WHERE scope = 'p' AND project_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM immutable_rules WHERE project_id = $1").bind(id).execute(&mut *tx).await?;
    crate::retention::delete_in(&mut tx, id).await?;
    crate::webhook::delete_in(&mut tx, id).await?;
    sqlx::query("DELETE FROM projects WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(project)
}

/// A project member: a user (`entity_type` `u`) or a user group (`g`, `identity::groups`).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Member {
    pub id: i64,
    pub project_id: i64,
    /// `u` or `g`.
    pub entity_type: String,
    /// The user's or the group's id.
    pub entity_id: i64,
    /// The username or the group name.
    pub entity_name: String,
    #[sqlx(try_from = "i64")]
    pub role: Role,
}

/// Who becomes a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    User(i64),
    Group(i64),
}

const MEMBER_FROM: &str = "FROM project_members m LEFT JOIN users u ON u.id = m.user_id \
     LEFT JOIN user_groups g ON g.id = m.group_id";
const MEMBER_NAME: &str = "COALESCE(u.username, g.group_name, '')";

fn member_select() -> String {
    format!(
        "SELECT m.id, m.project_id, m.entity_type, COALESCE(m.user_id, m.group_id) AS entity_id, \
         {MEMBER_NAME} AS entity_name, m.role {MEMBER_FROM}"
    )
}

/// One page of a project's members (users and groups) whose name contains `entityname`
/// (case-insensitive), by name (case-insensitive), and the total.
pub async fn members(
    db: &Db,
    project_id: i64,
    entityname: Option<&str>,
    page: u64,
    page_size: u64,
) -> Result<(Vec<Member>, i64), sqlx::Error> {
    let like = format!("%{}%", crate::db::query::escape_like(&entityname.unwrap_or("").to_lowercase()));
    let filter = format!(" WHERE m.project_id = $1 AND lower({MEMBER_NAME}) LIKE $2 ESCAPE '\\'");
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {MEMBER_FROM}{filter}"))
        .bind(project_id)
        .bind(&like)
        .fetch_one(&db.pool)
        .await?;
    let offset = (page.max(1) - 1).saturating_mul(page_size);
    let rows = sqlx::query(&format!(
        "{}{filter} ORDER BY lower({MEMBER_NAME}), m.id LIMIT {page_size} OFFSET {offset}",
        member_select()
    ))
    .bind(project_id)
    .bind(&like)
    .fetch_all(&db.pool)
    .await?;
    Ok((rows.iter().map(Member::from_row).collect::<Result<_, _>>()?, total))
}

/// The user's roles in the given projects (its own or its groups', the most privileged
/// winning), in one query (for lists).
pub async fn roles_of(
    db: &Db,
    user: &crate::accounts::User,
    project_ids: &[i64],
) -> Result<std::collections::HashMap<i64, Role>, sqlx::Error> {
    if project_ids.is_empty() {
        return Ok(Default::default());
    }
    let mut q = Stmt::new("SELECT project_id, role FROM project_members WHERE (user_id = ?");
    q.bind(user.id);
    if !user.groups.is_empty() {
        q.push(" OR group_id IN (").push_list(user.groups.iter().copied()).push(")");
    }
    q.push(") AND project_id IN (").push_list(project_ids.iter().copied()).push(")");
    let rows: Vec<(i64, i64)> = q.query_as().fetch_all(&db.pool).await?;
    let mut out: std::collections::HashMap<i64, Role> = std::collections::HashMap::new();
    for (project_id, role) in rows {
        if let Some(role) = Role::from_id(role) {
            let best = Role::most_privileged(out.get(&project_id).copied().into_iter().chain([role]));
            out.insert(project_id, best.unwrap_or(role));
        }
    }
    Ok(out)
}

/// How many members (users and groups alike) hold each role.
pub async fn role_counts(db: &Db, project_id: i64) -> Result<Vec<(Role, i64)>, sqlx::Error> {
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT role, COUNT(*) AS n FROM project_members WHERE project_id = $1 GROUP BY role")
            .bind(project_id)
            .fetch_all(&db.pool)
            .await?;
    Ok(rows.into_iter().filter_map(|(role, n)| Some((Role::from_id(role)?, n))).collect())
}

pub async fn member(db: &Db, project_id: i64, member_id: i64) -> Result<Option<Member>, sqlx::Error> {
    let row = sqlx::query(&format!("{} WHERE m.project_id = $1 AND m.id = $2", member_select()))
        .bind(project_id)
        .bind(member_id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(Member::from_row).transpose()
}

/// Makes a user or a group a member; already being one is `Member` (409).
pub async fn add_member(db: &Db, project_id: i64, who: Entity, role: Role) -> Result<Member, ProjectError> {
    let now = now_ms();
    let (entity_type, user_id, group_id, what) = match who {
        Entity::User(id) => ("u", Some(id), None, "user"),
        Entity::Group(id) => ("g", None, Some(id), "group"),
    };
    let id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO project_members (project_id, user_id, group_id, entity_type, role, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(project_id)
    .bind(user_id)
    .bind(group_id)
    .bind(entity_type)
    .bind(role.id() as i16)
    .bind(now)
    .fetch_one(&db.pool)
    .await
    .map_err(|e| {
        if is_conflict(&e) {
            ProjectError::Member(format!("the {what} is already a member of the project"))
        } else {
            e.into()
        }
    })?;
    member(db, project_id, id).await?.ok_or(ProjectError::NotFound)
}

pub async fn update_member(
    db: &Db,
    project_id: i64,
    member_id: i64,
    role: Role,
) -> Result<Member, ProjectError> {
    let done = sqlx::query(
        "UPDATE project_members SET role = $1, updated_at = $2 WHERE project_id = $3 AND id = $4",
    )
    .bind(role.id() as i16)
    .bind(now_ms())
    .bind(project_id)
    .bind(member_id)
    .execute(&db.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(ProjectError::NotFound);
    }
    member(db, project_id, member_id).await?.ok_or(ProjectError::NotFound)
}

pub async fn remove_member(db: &Db, project_id: i64, member_id: i64) -> Result<Member, ProjectError> {
    let m = member(db, project_id, member_id).await?.ok_or(ProjectError::NotFound)?;
    sqlx::query("DELETE FROM project_members WHERE project_id = $1 AND id = $2")
        .bind(project_id)
        .bind(member_id)
        .execute(&db.pool)
        .await?;
    Ok(m)
}

// ---------------------------------------------------------------- metadata

/// Harbor's project metadata keys other than `public` (stored in `projects.public`).
pub const METADATA_KEYS: [&str; 7] = [
    "enable_content_trust",
    "enable_content_trust_cosign",
    "prevent_vul",
    "severity",
    "auto_scan",
    "auto_sbom_generation",
    "reuse_sys_cve_allowlist",
];

/// Harbor's validation and normalisation of one metadata value (`public` included): booleans
/// as Go's `ParseBool` reads them, written `true`/`false`; a severity in lower case.
pub fn normalize_metadata(key: &str, value: &str) -> Result<String, ProjectError> {
    let invalid = || ProjectError::Invalid(format!("invalid value of {key}: {value:?}"));
    match key {
        "severity" => {
            let v = value.to_ascii_lowercase();
            match v.as_str() {
                "none" | "low" | "medium" | "high" | "critical" => Ok(v),
                _ => Err(invalid()),
            }
        }
        "public"
        | "enable_content_trust"
        | "enable_content_trust_cosign"
        | "prevent_vul"
        | "auto_scan"
        | "auto_sbom_generation"
        | "reuse_sys_cve_allowlist" => match value {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok("true".into()),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok("false".into()),
            _ => Err(invalid()),
        },
        _ => Err(ProjectError::Invalid(format!(
            "invalid metadata key {key:?}; the keys are public, {}",
            METADATA_KEYS.join(", ")
        ))),
    }
}

/// The stored metadata (without `public`) of each of `ids`.
pub async fn metadata_of(
    db: &Db,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, std::collections::BTreeMap<String, String>>, sqlx::Error> {
    let mut out: std::collections::HashMap<i64, std::collections::BTreeMap<String, String>> =
        Default::default();
    for chunk in ids.chunks(500) {
        let mut q = Stmt::new("SELECT project_id, name, value FROM project_metadata WHERE project_id IN (");
        q.push_list(chunk.iter().copied()).push(")");
        for (project_id, name, value) in q.query_as::<(i64, String, String)>().fetch_all(&db.pool).await? {
            out.entry(project_id).or_default().insert(name, value);
        }
    }
    Ok(out)
}

/// Sets metadata values (already normalised; `public` is not one of them), replacing existing
/// values; with `only_new`, a key that is already set is `Exists`.
pub async fn set_metadata(
    db: &Db,
    id: i64,
    values: &[(String, String)],
    only_new: bool,
) -> Result<(), ProjectError> {
    let mut tx = db.begin_write().await?;
    for (k, v) in values {
        let sql = if only_new {
            "INSERT INTO project_metadata (project_id, name, value) VALUES ($1, $2, $3)"
        } else {
            "INSERT INTO project_metadata (project_id, name, value) VALUES ($1, $2, $3) \
             ON CONFLICT (project_id, name) DO UPDATE SET value = excluded.value"
        };
        sqlx::query(sql).bind(id).bind(k).bind(v).execute(&mut *tx).await.map_err(|e| {
            if is_conflict(&e) {
                ProjectError::MetadataExists(k.clone())
            } else if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) {
                ProjectError::NotFound
            } else {
                e.into()
            }
        })?;
    }
    sqlx::query("UPDATE projects SET updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Removes one metadata value; whether it was set.
pub async fn delete_metadata(db: &Db, id: i64, key: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM project_metadata WHERE project_id = $1 AND name = $2")
        .bind(id)
        .bind(key)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

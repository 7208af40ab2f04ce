//! Robot accounts: non-human credentials for CI. A project robot is named
//! `robot$<project>+<name>` and holds permissions in its project only; a system robot is named
//! `robot$<name>` and holds permissions in the projects it lists or, with namespace `*`, in
//! every project. Robots authenticate with Basic credentials on `/v2`, the token service and
//! the REST API, never on the portal (`accounts::authenticate` knows only users, and user
//! names cannot contain `$`).
//!
//! The secret is 32 random alphanumerics shown once at creation or refresh; only its SHA-256
//! is stored (compared in constant time). It has ~190 bits of entropy, so a slow password
//! hash would add cost to every registry request without adding safety.

use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{FromRow, Row};
use subtle::ConstantTimeEq;

use crate::accounts::LoginError;
use crate::config::AuthConfig;
use crate::db::query::{contains, Bind, Sql, Stmt};
use crate::db::{now_ms, Db};
use crate::rbac::{Act, Resource};

pub const PREFIX: &str = "robot$";

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Permission {
    /// `None`: every project.
    pub project_id: Option<i64>,
    /// The project's name (`*` for every project), for display.
    pub namespace: String,
    pub resource: String,
    pub action: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Robot {
    pub id: i64,
    /// Full name, e.g. `robot$library+ci`.
    pub name: String,
    pub description: String,
    /// Set for project robots.
    pub project_id: Option<i64>,
    #[sqlx(try_from = "crate::db::Flag")]
    pub disabled: bool,
    pub duration: i64,
    pub expires_at: i64,
    pub creator: String,
    pub secret_changed_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Loaded separately (`load_permissions`).
    #[sqlx(skip)]
    pub permissions: Vec<Permission>,
}

impl Robot {
    pub fn level(&self) -> &'static str {
        if self.project_id.is_some() {
            "project"
        } else {
            "system"
        }
    }

    pub fn expired(&self, now: i64) -> bool {
        self.expires_at >= 0 && self.expires_at <= now
    }

    /// Exactly the listed permissions: no role, no implication between actions.
    pub fn allows(&self, project_id: i64, res: Resource, act: Act) -> bool {
        self.permissions.iter().any(|p| {
            p.project_id.is_none_or(|id| id == project_id)
                && p.resource == res.as_str()
                && (p.action == act.as_str() || p.action == "*")
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RobotError {
    #[error("{0}")]
    Invalid(String),
    #[error("a robot account named {0:?} already exists")]
    Exists(String),
    #[error("robot account not found")]
    NotFound,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Harbor's robot name grammar (the part after the prefix and project).
pub fn valid_short_name(name: &str) -> bool {
    let ok_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    let bytes = name.as_bytes();
    !name.is_empty()
        && name.len() <= 255
        && ok_chars
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && !name.contains("--")
        && !name.contains("__")
}

pub fn full_name(project: Option<&str>, short: &str) -> String {
    match project {
        Some(p) => format!("{PREFIX}{p}+{short}"),
        None => format!("{PREFIX}{short}"),
    }
}

/// 32 alphanumerics with at least one upper-case letter, lower-case letter and digit (so it
/// also satisfies Harbor's password policy, which some tools check client-side).
pub fn generate_secret() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    loop {
        let s: String = (0..32).map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char).collect();
        if crate::accounts::check_password_strength(&s).is_ok() {
            return s;
        }
    }
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

const COLUMNS: &str = "r.id, r.name, r.description, r.project_id, r.disabled, r.duration, r.expires_at, \
     r.creator, r.secret_changed_at, r.created_at, r.updated_at";

/// Fills in the permissions of the given robots, in one query.
async fn load_permissions(db: &Db, robots: &mut [Robot]) -> Result<(), sqlx::Error> {
    if robots.is_empty() {
        return Ok(());
    }
    let mut q = Stmt::new(
        "SELECT rp.robot_id, rp.project_id, COALESCE(p.name, '*') AS namespace, rp.resource, rp.action \
         FROM robot_permissions rp LEFT JOIN projects p ON p.id = rp.project_id WHERE rp.robot_id IN (",
    );
    q.push_list(robots.iter().map(|r| r.id)).push(") ORDER BY namespace, rp.resource, rp.action");
    let rows: Vec<(i64, Option<i64>, String, String, String)> = q.query_as().fetch_all(&db.pool).await?;
    for (robot_id, project_id, namespace, resource, action) in rows {
        if let Some(robot) = robots.iter_mut().find(|x| x.id == robot_id) {
            robot.permissions.push(Permission { project_id, namespace, resource, action });
        }
    }
    Ok(())
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Robot>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM robots r WHERE r.id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut robots = [Robot::from_row(&row)?];
    load_permissions(db, &mut robots).await?;
    let [r] = robots;
    Ok(Some(r))
}

/// The id of the robot with this full name (`robot$…`), if any.
pub async fn id_by_name(db: &Db, name: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM robots WHERE name = $1").bind(name).fetch_optional(&db.pool).await
}

/// The robot with these credentials, if it is enabled and unexpired. Guesses are bounded
/// like users' passwords: the same lockout (`accounts::begin_attempt`), keyed by the robot's
/// name (or the name as given when no robot has it), is reserved before the secret is checked.
/// With `count_unknown` false, a name no robot has leaves no `login_failures` row (see
/// `accounts::authenticate_counting`).
pub async fn authenticate(
    db: &Db,
    cfg: &AuthConfig,
    name: &str,
    secret: &str,
    count_unknown: bool,
) -> Result<Option<Robot>, LoginError> {
    crate::accounts::check_login_input(name, secret)?;
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS}, r.secret_hash FROM robots r WHERE lower(r.name) = lower($1)"
    ))
    .bind(name)
    .fetch_optional(&db.pool)
    .await?;
    let key = crate::accounts::lockout_key(&match &row {
        Some(r) => r.try_get::<String, _>("name")?,
        None => name.to_string(),
    });
    if row.is_none() && !count_unknown {
        return Ok(None);
    }
    let attempt = crate::accounts::begin_attempt(db, cfg, &key).await?;
    let checked = match &row {
        Some(row) => {
            let stored: String = row.try_get("secret_hash")?;
            Some((Robot::from_row(row)?, bool::from(hash_secret(secret).as_bytes().ct_eq(stored.as_bytes()))))
        }
        None => None,
    };
    let ok = checked.as_ref().is_some_and(|(_, ok)| *ok);
    crate::accounts::end_attempt(db, cfg, attempt, Some(ok)).await?;
    let Some((robot, true)) = checked else { return Ok(None) };
    if robot.disabled || robot.expired(now_ms()) {
        return Ok(None);
    }
    let mut robots = [robot];
    load_permissions(db, &mut robots).await?;
    let [r] = robots;
    Ok(Some(r))
}

/// Whether this robot is still enabled, unexpired and on the same secret (for refresh tokens).
pub async fn still_valid(db: &Db, id: i64, secret_changed_at: i64) -> Result<Option<Robot>, sqlx::Error> {
    Ok(get(db, id)
        .await?
        .filter(|r| !r.disabled && !r.expired(now_ms()) && r.secret_changed_at == secret_changed_at))
}

pub struct NewRobot {
    pub name: String,
    pub description: String,
    pub project: Option<(i64, String)>,
    /// Days; -1 never expires.
    pub duration: i64,
    pub permissions: Vec<(Option<i64>, Resource, Act)>,
    pub creator: String,
}

/// When a robot created at `from` with `duration` days expires (-1: never).
pub fn expiry(from: i64, duration: i64) -> i64 {
    if duration < 0 {
        -1
    } else {
        from.saturating_add(duration.saturating_mul(86_400_000))
    }
}

/// Creates a robot; returns it with its secret (the only time the secret is known).
pub async fn create(db: &Db, new: NewRobot) -> Result<(Robot, String), RobotError> {
    if !valid_short_name(&new.name) {
        return Err(RobotError::Invalid(
            "robot names are lower-case letters, digits and single '.', '_' or '-' between them".into(),
        ));
    }
    if new.duration == 0 || new.duration < -1 {
        return Err(RobotError::Invalid("duration must be -1 (never expires) or a number of days".into()));
    }
    let name = full_name(new.project.as_ref().map(|p| p.1.as_str()), &new.name);
    if name.len() > crate::accounts::MAX_USERNAME {
        return Err(RobotError::Invalid(format!(
            "the robot's full name {name:?} is longer than {} characters",
            crate::accounts::MAX_USERNAME
        )));
    }
    let secret = generate_secret();
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let inserted = sqlx::query_scalar::<_, i64>(
        "INSERT INTO robots (name, description, project_id, secret_hash, secret_changed_at, disabled, \
         duration, expires_at, creator, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $5, $5) RETURNING id",
    )
    .bind(&name)
    .bind(&new.description)
    .bind(new.project.as_ref().map(|p| p.0))
    .bind(hash_secret(&secret))
    .bind(now)
    .bind(new.duration)
    .bind(expiry(now, new.duration))
    .bind(&new.creator)
    .fetch_one(&mut *tx)
    .await;
    let id = match inserted {
        Ok(id) => id,
        Err(e) if crate::db::error::is_conflict(&e) => return Err(RobotError::Exists(name)),
        Err(e) => return Err(e.into()),
    };
    insert_permissions(&mut tx, id, &new.permissions).await?;
    tx.commit().await?;
    let robot = get(db, id).await?.ok_or(RobotError::NotFound)?;
    Ok((robot, secret))
}

async fn insert_permissions(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    robot_id: i64,
    perms: &[(Option<i64>, Resource, Act)],
) -> Result<(), sqlx::Error> {
    let mut seen = std::collections::HashSet::new();
    for (project, res, act) in perms {
        if !seen.insert((*project, *res, *act)) {
            continue;
        }
        sqlx::query(
            "INSERT INTO robot_permissions (robot_id, project_id, resource, action) VALUES ($1, $2, $3, $4)",
        )
        .bind(robot_id)
        .bind(*project)
        .bind(res.as_str())
        .bind(act.as_str())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub struct RobotUpdate {
    pub description: Option<String>,
    pub disabled: Option<bool>,
    pub duration: Option<i64>,
    pub permissions: Option<Vec<(Option<i64>, Resource, Act)>>,
}

pub async fn update(db: &Db, id: i64, u: RobotUpdate) -> Result<Robot, RobotError> {
    let current = get(db, id).await?.ok_or(RobotError::NotFound)?;
    let duration = u.duration.unwrap_or(current.duration);
    if duration == 0 || duration < -1 {
        return Err(RobotError::Invalid("duration must be -1 (never expires) or a number of days".into()));
    }
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE robots SET description = $1, disabled = $2, duration = $3, expires_at = $4, updated_at = $5 \
         WHERE id = $6",
    )
    .bind(u.description.unwrap_or(current.description))
    .bind(i16::from(u.disabled.unwrap_or(current.disabled)))
    .bind(duration)
    .bind(if duration == current.duration {
        current.expires_at
    } else {
        expiry(current.created_at, duration)
    })
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if let Some(perms) = &u.permissions {
        sqlx::query("DELETE FROM robot_permissions WHERE robot_id = $1").bind(id).execute(&mut *tx).await?;
        insert_permissions(&mut tx, id, perms).await?;
    }
    tx.commit().await?;
    get(db, id).await?.ok_or(RobotError::NotFound)
}

/// Sets a new secret (generated when `secret` is None); old credentials and refresh tokens stop
/// working at once.
pub async fn refresh_secret(db: &Db, id: i64, secret: Option<String>) -> Result<String, RobotError> {
    let secret = match secret.filter(|s| !s.is_empty()) {
        Some(s) => {
            crate::accounts::check_password_strength(&s).map_err(RobotError::Invalid)?;
            s
        }
        None => generate_secret(),
    };
    let now = now_ms();
    let done = sqlx::query(
        "UPDATE robots SET secret_hash = $1, \
         secret_changed_at = CASE WHEN secret_changed_at >= $2 THEN secret_changed_at + 1 ELSE $2 END, \
         updated_at = $2 WHERE id = $3",
    )
    .bind(hash_secret(&secret))
    .bind(now)
    .bind(id)
    .execute(&db.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(RobotError::NotFound);
    }
    Ok(secret)
}

pub async fn delete(db: &Db, id: i64) -> Result<(), RobotError> {
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM robot_permissions WHERE robot_id = $1").bind(id).execute(&mut *tx).await?;
    let done = sqlx::query("DELETE FROM robots WHERE id = $1").bind(id).execute(&mut *tx).await?;
    if done.rows_affected() == 0 {
        return Err(RobotError::NotFound);
    }
    tx.commit().await?;
    Ok(())
}

/// Robots of one project (`Some`) or system robots (`None`), one page and the total.
pub async fn list(
    db: &Db,
    project_id: Option<i64>,
    name: Option<&str>,
    page: u64,
    page_size: u64,
) -> Result<(Vec<Robot>, i64), sqlx::Error> {
    let mut filter = Sql::new();
    match project_id {
        Some(id) => filter.push("r.project_id = ?", Bind::I(id)),
        None => filter.push_raw("r.project_id IS NULL"),
    }
    if let Some(n) = name {
        filter.push("lower(r.name) LIKE ? ESCAPE '\\'", contains(n));
    }
    let mut count = Stmt::new("SELECT COUNT(*) FROM robots r");
    count.where_(&filter);
    let total = count.query_scalar().fetch_one(&db.pool).await?;
    let offset = (page.max(1) - 1).saturating_mul(page_size);
    let mut list = Stmt::new(&format!("SELECT {COLUMNS} FROM robots r"));
    list.where_(&filter).push(&format!(" ORDER BY r.id LIMIT {page_size} OFFSET {offset}"));
    let mut robots: Vec<Robot> = list.query_as().fetch_all(&db.pool).await?;
    load_permissions(db, &mut robots).await?;
    Ok((robots, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["ci", "build-bot", "a.b_c", "x1"] {
            assert!(valid_short_name(ok), "{ok}");
        }
        for bad in ["", "-ci", "ci-", "CI", "a$b", "a+b", "a..b", "a b"] {
            assert!(!valid_short_name(bad), "{bad}");
        }
        assert_eq!(full_name(Some("p1"), "ci"), "robot$p1+ci");
        assert_eq!(full_name(None, "ci"), "robot$ci");
    }

    #[test]
    fn secrets_are_strong_and_distinct() {
        let a = generate_secret();
        assert_eq!(a.len(), 32);
        assert!(crate::accounts::check_password_strength(&a).is_ok());
        assert_ne!(a, generate_secret());
    }

    #[test]
    fn permissions_are_exact() {
        let r = Robot {
            id: 1,
            name: "robot$p+ci".into(),
            description: String::new(),
            project_id: Some(7),
            disabled: false,
            duration: -1,
            expires_at: -1,
            creator: "admin".into(),
            secret_changed_at: 0,
            created_at: 0,
            updated_at: 0,
            permissions: vec![Permission {
                project_id: Some(7),
                namespace: "p".into(),
                resource: "repository".into(),
                action: "push".into(),
            }],
        };
        assert!(r.allows(7, Resource::Repository, Act::Push));
        assert!(!r.allows(7, Resource::Repository, Act::Pull));
        assert!(!r.allows(8, Resource::Repository, Act::Push));
        assert!(!r.expired(now_ms()));
        assert!(Robot { expires_at: 5, ..r }.expired(6));
    }
}

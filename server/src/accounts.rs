//! Local user accounts: argon2id password hashes, login with lockout, password changes.
//! Called by the REST handlers, the portal's server functions and (later) the token service;
//! none of them touch the `users` table directly.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::config::AuthConfig;
use crate::db::{now_ms, Db};

/// A user as the rest of the code sees it (never carries the hash).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub realname: String,
    pub comment: String,
    pub sysadmin: bool,
    /// Changes with every password change; sessions remember it and end when it moves.
    pub password_changed_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const USER_COLUMNS: &str =
    "id, username, email, realname, comment, sysadmin, password_changed_at, created_at, updated_at";

fn user_from_row(r: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        email: r.try_get("email")?,
        realname: r.try_get("realname")?,
        comment: r.try_get("comment")?,
        sysadmin: r.try_get::<i64, _>("sysadmin")? != 0,
        password_changed_at: r.try_get("password_changed_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("too many failed logins; account locked for {0} more seconds")]
    Locked(u64),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("the old password is wrong")]
    WrongOldPassword,
    #[error("{0}")]
    Weak(String),
    #[error("the new password must differ from the old one")]
    Unchanged,
    #[error("user not found")]
    NoSuchUser,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Harbor's password policy: 8–128 characters with at least one upper-case letter, one
/// lower-case letter and one digit.
pub fn check_password_strength(pw: &str) -> Result<(), String> {
    let n = pw.chars().count();
    if !(8..=128).contains(&n)
        || !pw.chars().any(|c| c.is_ascii_uppercase())
        || !pw.chars().any(|c| c.is_ascii_lowercase())
        || !pw.chars().any(|c| c.is_ascii_digit())
    {
        return Err("the password must be 8 to 128 characters long and contain at least one \
                    upper-case letter, one lower-case letter and one digit"
            .into());
    }
    Ok(())
}

/// Argon2 runs at most this many at a time (one per CPU): each takes ~19 MiB and a core, so a
/// burst of logins queues instead of multiplying memory.
fn argon2_permits() -> &'static tokio::sync::Semaphore {
    static S: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2))
    })
}

/// Hashes on the blocking pool: argon2 is deliberately slow.
pub async fn hash_password(pw: &str) -> String {
    let pw = pw.to_owned();
    let _permit = argon2_permits().acquire().await.expect("semaphore never closes");
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(pw.as_bytes(), &salt).expect("argon2 hash").to_string()
    })
    .await
    .expect("hash task")
}

/// Argon2 verifications run by this process (a metric; tests use it to prove caching).
pub static VERIFICATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Constant-time verification (argon2's comparison) on the blocking pool.
pub async fn verify_password(pw: &str, hash: &str) -> bool {
    VERIFICATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (pw, hash) = (pw.to_owned(), hash.to_owned());
    let _permit = argon2_permits().acquire().await.expect("semaphore never closes");
    tokio::task::spawn_blocking(move || match PasswordHash::new(&hash) {
        Ok(parsed) => Argon2::default().verify_password(pw.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random password, verified against when the user does not exist so that the
/// response time does not reveal which names exist.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

async fn dummy_hash() -> String {
    if let Some(h) = DUMMY_HASH.get() {
        return h.clone();
    }
    let h = hash_password("Dummy-password-1").await;
    DUMMY_HASH.get_or_init(|| h).clone()
}

pub async fn get_by_id(db: &Db, id: i64) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND deleted = 0"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn get_by_name(db: &Db, username: &str) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE lower(username) = lower($1) AND deleted = 0"
    ))
    .bind(username)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// Whether `username` currently has password `pw` (no lockout accounting; for the start-up banner).
pub async fn password_is(db: &Db, username: &str, pw: &str) -> Result<bool, sqlx::Error> {
    let hash: Option<String> = sqlx::query_scalar(
        "SELECT password_hash FROM users WHERE lower(username) = lower($1) AND deleted = 0",
    )
    .bind(username)
    .fetch_optional(&db.pool)
    .await?;
    Ok(match hash {
        Some(h) => verify_password(pw, &h).await,
        None => false,
    })
}

/// Creates `admin` with the initial password when it does not exist yet (first start).
/// Returns true when it was created now.
pub async fn ensure_admin(db: &Db, initial_password: &str) -> Result<bool, sqlx::Error> {
    if get_by_name(db, "admin").await?.is_some() {
        return Ok(false);
    }
    let hash = hash_password(initial_password).await;
    let now = now_ms();
    let done = sqlx::query(
        "INSERT INTO users (username, email, realname, comment, password_hash, sysadmin, \
         password_changed_at, created_at, updated_at) \
         VALUES ('admin', 'admin@example.com', 'system admin', 'admin user', $1, 1, $2, $2, $2) \
         ON CONFLICT DO NOTHING",
    )
    .bind(hash)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Creates a local user with default profile fields (tests and the first admin).
pub async fn create_user(
    db: &Db,
    username: &str,
    password: &str,
    sysadmin: bool,
) -> Result<User, sqlx::Error> {
    let new = NewUser {
        username: username.into(),
        password: password.into(),
        email: format!("{username}@example.com"),
        realname: String::new(),
        comment: String::new(),
        sysadmin,
    };
    match insert_user(db, &new).await {
        Ok(u) => Ok(u),
        Err(UserError::Db(e)) => Err(e),
        Err(e) => Err(sqlx::Error::Protocol(e.to_string())),
    }
}

#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub email: String,
    pub realname: String,
    pub comment: String,
    pub sysadmin: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("user not found")]
    NotFound,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Harbor's user name rule: 1-255 characters, none of `,"~#$%` or white space. (`$` keeps
/// user names apart from robot names; `#` from the names of deleted users.)
pub fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 255
        && !name.chars().any(|c| ",\"~#$%:/".contains(c) || c.is_whitespace() || c.is_control())
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty() && !domain.is_empty() && !email.chars().any(char::is_whitespace) && email.len() <= 255
}

fn map_unique(e: sqlx::Error, what: &str) -> UserError {
    if crate::db::is_unique_violation(&e) {
        UserError::Conflict(format!("{what} is already taken"))
    } else {
        e.into()
    }
}

/// Validates and creates a user (admin-created or self-registered).
pub async fn insert_user(db: &Db, new: &NewUser) -> Result<User, UserError> {
    if !valid_username(&new.username) {
        return Err(UserError::Invalid(
            "user names are 1-255 characters without white space or any of , \" ~ # $ % : /".into(),
        ));
    }
    if !new.email.is_empty() && !valid_email(&new.email) {
        return Err(UserError::Invalid("the email address is not valid".into()));
    }
    check_password_strength(&new.password).map_err(UserError::Invalid)?;
    let hash = hash_password(&new.password).await;
    let now = now_ms();
    let row = sqlx::query(&format!(
        "INSERT INTO users (username, email, realname, comment, password_hash, sysadmin, password_changed_at, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7) RETURNING {USER_COLUMNS}"
    ))
    .bind(&new.username)
    .bind(&new.email)
    .bind(&new.realname)
    .bind(&new.comment)
    .bind(hash)
    .bind(i16::from(new.sysadmin))
    .bind(now)
    .fetch_one(&db.pool)
    .await
    .map_err(|e| map_unique(e, "the user name"))?;
    Ok(user_from_row(&row)?)
}

/// Profile fields a user (or an admin) may change.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    pub email: Option<String>,
    pub realname: Option<String>,
    pub comment: Option<String>,
}

pub async fn update_profile(db: &Db, id: i64, u: &ProfileUpdate) -> Result<User, UserError> {
    if let Some(e) = u.email.as_deref().filter(|e| !e.is_empty()) {
        if !valid_email(e) {
            return Err(UserError::Invalid("the email address is not valid".into()));
        }
    }
    let row = sqlx::query(&format!(
        "UPDATE users SET email = COALESCE($1, email), realname = COALESCE($2, realname), \
         comment = COALESCE($3, comment), updated_at = $4 WHERE id = $5 AND deleted = 0 RETURNING {USER_COLUMNS}"
    ))
    .bind(u.email.as_deref())
    .bind(u.realname.as_deref())
    .bind(u.comment.as_deref())
    .bind(now_ms())
    .bind(id)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(user_from_row).transpose()?.ok_or(UserError::NotFound)
}

pub async fn set_sysadmin(db: &Db, id: i64, flag: bool) -> Result<User, UserError> {
    let row = sqlx::query(&format!(
        "UPDATE users SET sysadmin = $1, updated_at = $2 WHERE id = $3 AND deleted = 0 RETURNING {USER_COLUMNS}"
    ))
    .bind(i16::from(flag))
    .bind(now_ms())
    .bind(id)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(user_from_row).transpose()?.ok_or(UserError::NotFound)
}

/// Deletes a user: memberships go; the row stays (renamed `<name>#<id>`, unusable) so project
/// owners and audit rows keep a name, and the name can be registered again.
pub async fn delete_user(db: &Db, id: i64) -> Result<User, UserError> {
    let user = get_by_id(db, id).await?.ok_or(UserError::NotFound)?;
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM project_members WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query(
        "UPDATE users SET deleted = 1, username = username || '#' || CAST(id AS TEXT), email = '', \
         password_hash = '', sysadmin = 0, password_changed_at = password_changed_at + 1, updated_at = $1 \
         WHERE id = $2",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Users (not deleted) whose name contains `name` (case-insensitive), one page and the total.
pub async fn list_users(
    db: &Db,
    name: Option<&str>,
    exact: bool,
    page: u64,
    page_size: u64,
) -> Result<(Vec<User>, i64), sqlx::Error> {
    let (cond, bind) = match name.filter(|n| !n.is_empty()) {
        Some(n) if exact => (" AND lower(username) = $1", n.to_lowercase()),
        Some(n) => (
            " AND lower(username) LIKE $1 ESCAPE '\\'",
            format!("%{}%", crate::projects::escape_like(&n.to_lowercase())),
        ),
        None => (" AND $1 = ''", String::new()),
    };
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM users WHERE deleted = 0{cond}"))
        .bind(&bind)
        .fetch_one(&db.pool)
        .await?;
    let offset = (page.max(1) - 1).saturating_mul(page_size);
    let rows = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE deleted = 0{cond} ORDER BY id LIMIT {page_size} OFFSET {offset}"
    ))
    .bind(&bind)
    .fetch_all(&db.pool)
    .await?;
    Ok((rows.iter().map(user_from_row).collect::<Result<_, _>>()?, total))
}

/// Checks a username and password, counting failures per name and locking the name for
/// `cfg.lockout` after `cfg.max_failed_logins` consecutive failures.
pub async fn authenticate(
    db: &Db,
    cfg: &AuthConfig,
    username: &str,
    password: &str,
) -> Result<User, LoginError> {
    let key = username.to_lowercase();
    let now = now_ms();
    let locked_until: Option<i64> =
        sqlx::query_scalar("SELECT locked_until FROM login_failures WHERE username = $1")
            .bind(&key)
            .fetch_optional(&db.pool)
            .await?;
    if let Some(until) = locked_until {
        if until > now {
            return Err(LoginError::Locked(((until - now) as u64).div_ceil(1000)));
        }
    }

    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE lower(username) = lower($1) AND deleted = 0"
    ))
    .bind(username)
    .fetch_optional(&db.pool)
    .await?;
    let (user, ok) = match row {
        Some(r) => {
            let hash: String = r.try_get("password_hash")?;
            let ok = verify_password(password, &hash).await;
            (Some(user_from_row(&r)?), ok)
        }
        None => {
            verify_password(password, &dummy_hash().await).await;
            (None, false)
        }
    };
    match (user, ok) {
        (Some(u), true) => {
            sqlx::query("DELETE FROM login_failures WHERE username = $1")
                .bind(&key)
                .execute(&db.pool)
                .await?;
            Ok(u)
        }
        _ => {
            record_failure(db, cfg, &key).await?;
            Err(LoginError::InvalidCredentials)
        }
    }
}

async fn record_failure(db: &Db, cfg: &AuthConfig, key: &str) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let failures: i64 = sqlx::query_scalar(
        "INSERT INTO login_failures (username, failures, locked_until, updated_at) VALUES ($1, 1, 0, $2) \
         ON CONFLICT (username) DO UPDATE SET failures = login_failures.failures + 1, updated_at = $2 \
         RETURNING failures",
    )
    .bind(key)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    if failures >= i64::from(cfg.max_failed_logins) {
        tracing::warn!(username = key, failures, "account locked after repeated failed logins");
        sqlx::query("UPDATE login_failures SET failures = 0, locked_until = $2 WHERE username = $1")
            .bind(key)
            .bind(now + cfg.lockout.as_millis() as i64)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// Changes a password. `old` is required when users change their own password; a system admin
/// resetting someone else's passes `None`.
pub async fn change_password(
    db: &Db,
    user_id: i64,
    old: Option<&str>,
    new: &str,
) -> Result<User, PasswordChangeError> {
    let hash: Option<String> =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1 AND deleted = 0")
            .bind(user_id)
            .fetch_optional(&db.pool)
            .await?;
    let hash = hash.ok_or(PasswordChangeError::NoSuchUser)?;
    if let Some(old) = old {
        if !verify_password(old, &hash).await {
            return Err(PasswordChangeError::WrongOldPassword);
        }
    }
    check_password_strength(new).map_err(PasswordChangeError::Weak)?;
    if verify_password(new, &hash).await {
        return Err(PasswordChangeError::Unchanged);
    }
    let new_hash = hash_password(new).await;
    // Strictly increasing, so sessions bound to the previous value end even within one ms.
    let now = now_ms();
    let row = sqlx::query(&format!(
        "UPDATE users SET password_hash = $1, \
         password_changed_at = CASE WHEN password_changed_at >= $2 THEN password_changed_at + 1 ELSE $2 END, \
         updated_at = $2 WHERE id = $3 RETURNING {USER_COLUMNS}"
    ))
    .bind(new_hash)
    .bind(now)
    .bind(user_id)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(user_from_row).transpose()?.ok_or(PasswordChangeError::NoSuchUser)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_policy() {
        assert!(check_password_strength("Harbor12345").is_ok());
        for bad in ["short1A", "alllowercase1", "ALLUPPERCASE1", "NoDigitsHere", ""] {
            assert!(check_password_strength(bad).is_err(), "{bad}");
        }
        assert!(check_password_strength(&format!("Aa1{}", "x".repeat(126))).is_err());
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_salted() {
        let a = hash_password("Harbor12345").await;
        let b = hash_password("Harbor12345").await;
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(verify_password("Harbor12345", &a).await);
        assert!(!verify_password("harbor12345", &a).await);
        assert!(!verify_password("Harbor12345", "not a hash").await);
    }
}

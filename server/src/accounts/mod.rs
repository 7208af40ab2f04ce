//! Local user accounts: argon2id password hashes, login with lockout, password changes.
//! Called by the REST handlers, the portal's server functions and the token service; none of
//! them touch the `users` table directly.
//!
//! - argon2id runs on the blocking pool, one per CPU at a time (~19 MiB each), with at most
//!   `ARGON2_QUEUE_PER_CPU` waiting per CPU; beyond that the answer is 429 with `Retry-After` at
//!   once. Unknown users are verified against a dummy hash, so timing does not reveal names.
//! - **The lockout is decided before the secret is checked**: one statement reserves an attempt
//!   in `login_failures` (`begin_attempt`: refused while locked, or while failures plus attempts
//!   in flight reach `max_failed_logins`; reservations expire after 30 s so a dead replica cannot
//!   lock a name) and `end_attempt` settles it. Concurrent guesses cannot exceed the limit on any
//!   replica, for users and robot names alike, keyed by the account's name folded to ASCII lower
//!   case (the same folding as the lookup).
//! - A locked name gets 401 `UNAUTHORIZED` with the lockout message on `/v2` and the token
//!   service (containers/image prints a 401's message but only "too many requests" for a 429),
//!   429 on REST and the portal.
//! - Names over 255 characters and passwords over 256 are refused before any write; past 60
//!   failures a minute from one address (`auth::FailureBudget`) failures are answered but not
//!   stored; idle rows of unknown names are purged every 10 minutes (`purge_login_failures`).
//! - A password change ends the user's other sessions (sessions carry `password_changed_at`).

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::Serialize;
use sqlx::{FromRow, Row};

use crate::config::AuthConfig;
use crate::db::{now_ms, Db};

mod login;
mod password;
pub use login::*;
pub use password::*;

/// A user as the rest of the code sees it (never carries the hash).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub realname: String,
    pub comment: String,
    #[sqlx(try_from = "crate::db::Flag")]
    pub sysadmin: bool,
    /// Changes with every password change; sessions remember it and end when it moves.
    pub password_changed_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Where the credentials live: `db`, `ldap` or `oidc` (`crate::identity`).
    pub source: String,
    /// The user groups (`user_groups.id`) the directory or provider put the user in at this
    /// login; never stored on the user (sessions and the credential cache carry them).
    #[sqlx(skip)]
    #[serde(skip)]
    pub groups: Vec<i64>,
    /// A member of the LDAP or OIDC admin group: a system admin while that lasts (Harbor's
    /// `admin_role_in_auth`; never written to `sysadmin`).
    #[sqlx(skip)]
    #[serde(skip)]
    pub admin_role_in_auth: bool,
}

impl User {
    /// Stored flag or admin group.
    pub fn is_sysadmin(&self) -> bool {
        self.sysadmin || self.admin_role_in_auth
    }
}

const USER_COLUMNS: &str =
    "id, username, email, realname, comment, sysadmin, password_changed_at, created_at, updated_at, source";

/// `password_hash` of users whose password lives elsewhere (LDAP, OIDC): not a PHC string, so
/// it never verifies.
pub const NO_LOCAL_PASSWORD: &str = "!";

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many failed logins: the message every client shows (`Retry-After` carries the seconds).
    #[error("too many failed logins: the account is locked, try again in {0} seconds")]
    Locked(u64),
    /// Input no account can match (over-long name or password): refused before any work.
    #[error("{0}")]
    Malformed(String),
    /// The password-check queue is full: retry shortly (`Retry-After: 1`).
    #[error("too many logins are being checked; retry shortly")]
    Busy,
    /// The directory or identity provider cannot be reached or answered badly (503); the
    /// message says which and why, without secrets.
    #[error("{0}")]
    Unavailable(String),
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

pub async fn get_by_id(db: &Db, id: i64) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND deleted = 0"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(User::from_row).transpose()
}

pub async fn get_by_name(db: &Db, username: &str) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE lower(username) = lower($1) AND deleted = 0"
    ))
    .bind(username)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(User::from_row).transpose()
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

/// User names: 1-255 printable ASCII characters, none of `,"~#$%:/` (Harbor's rule forbids
/// `,"~#$%` and white space; `$` keeps user names apart from robot names, `#` from the names
/// of deleted users). **ASCII only, by choice**: no control, format or bidi characters
/// (U+202E could make `admin` and a look-alike print the same in the audit log), no
/// homoglyphs of other scripts, and one case folding (`lockout_key`, SQL `lower()`) that is
/// the same on SQLite and PostgreSQL. Existing accounts with other names can still log in.
pub fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_USERNAME
        && name.bytes().all(|b| b.is_ascii_graphic() && !b",\"~#$%:/".contains(&b))
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty() && !domain.is_empty() && !email.chars().any(char::is_whitespace) && email.len() <= 255
}

fn map_unique(e: sqlx::Error, what: &str) -> UserError {
    if crate::db::error::is_conflict(&e) {
        UserError::Conflict(format!("{what} is already taken"))
    } else {
        e.into()
    }
}

/// Validates and creates a user (admin-created or self-registered).
pub async fn insert_user(db: &Db, new: &NewUser) -> Result<User, UserError> {
    if !valid_username(&new.username) {
        return Err(UserError::Invalid(
            "user names are 1-255 printable ASCII characters without white space or any of , \" ~ # $ % : /"
                .into(),
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
    Ok(User::from_row(&row)?)
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
    row.as_ref().map(User::from_row).transpose()?.ok_or(UserError::NotFound)
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
    row.as_ref().map(User::from_row).transpose()?.ok_or(UserError::NotFound)
}

/// Creates or refreshes a user whose credentials live in a directory or provider (`source`
/// `ldap` or `oidc`) at login or import: created with no local password, or its email and
/// real name updated. `Conflict` when a user of another source has the name.
pub async fn onboard(
    db: &Db,
    source: &str,
    username: &str,
    email: &str,
    realname: &str,
) -> Result<User, UserError> {
    if !valid_username(username) {
        return Err(UserError::Invalid(format!("{username:?} cannot be a user name here")));
    }
    let email = if valid_email(email) { email } else { "" };
    let realname: String = realname.chars().take(255).collect();
    let now = now_ms();
    if let Some(u) = get_by_name(db, username).await? {
        if u.source != source {
            return Err(UserError::Conflict(format!(
                "a {} user named {username:?} exists already",
                if u.source == "db" { "local" } else { u.source.as_str() }
            )));
        }
        if u.email == email && u.realname == realname {
            return Ok(u);
        }
        let row = sqlx::query(&format!(
            "UPDATE users SET email = $1, realname = $2, updated_at = $3 WHERE id = $4 RETURNING {USER_COLUMNS}"
        ))
        .bind(email)
        .bind(&realname)
        .bind(now)
        .bind(u.id)
        .fetch_one(&db.pool)
        .await?;
        return Ok(User::from_row(&row)?);
    }
    let row = sqlx::query(&format!(
        "INSERT INTO users (username, email, realname, comment, password_hash, sysadmin, password_changed_at, \
         created_at, updated_at, source) VALUES ($1, $2, $3, $4, $5, 0, $6, $6, $6, $7) RETURNING {USER_COLUMNS}"
    ))
    .bind(username)
    .bind(email)
    .bind(&realname)
    .bind(format!("onboarded from {source}"))
    .bind(NO_LOCAL_PASSWORD)
    .bind(now)
    .bind(source)
    .fetch_one(&db.pool)
    .await
    .map_err(|e| map_unique(e, "the user name"))?;
    Ok(User::from_row(&row)?)
}

/// Deletes a user: memberships go; the row stays (renamed `<name>#<id>`, unusable) so project
/// owners and audit rows keep a name, and the name can be registered again.
pub async fn delete_user(db: &Db, id: i64) -> Result<User, UserError> {
    let user = get_by_id(db, id).await?.ok_or(UserError::NotFound)?;
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM project_members WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM oidc_users WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
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
    use crate::db::query::{contains, Bind, Sql, Stmt};
    let mut filter = Sql::new();
    filter.push_raw("deleted = 0");
    match name.filter(|n| !n.is_empty()) {
        Some(n) if exact => filter.push("lower(username) = ?", Bind::S(n.to_lowercase())),
        Some(n) => filter.push("lower(username) LIKE ? ESCAPE '\\'", contains(n)),
        None => {}
    }
    let mut count = Stmt::new("SELECT COUNT(*) FROM users");
    count.where_(&filter);
    let total = count.query_scalar().fetch_one(&db.pool).await?;
    let offset = (page.max(1) - 1).saturating_mul(page_size);
    let mut list = Stmt::new(&format!("SELECT {USER_COLUMNS} FROM users"));
    list.where_(&filter).push(&format!(" ORDER BY id LIMIT {page_size} OFFSET {offset}"));
    Ok((list.query_as().fetch_all(&db.pool).await?, total))
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
    row.as_ref().map(User::from_row).transpose()?.ok_or(PasswordChangeError::NoSuchUser)
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

    #[test]
    fn user_names_are_printable_ascii() {
        for ok in ["admin", "a.b-c_d@corp", "X1", &"n".repeat(255)] {
            assert!(valid_username(ok), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "a,b",
            "a$b",
            "a#1",
            "a:b",
            "a/b",
            "ädmin",
            "\u{0430}dmin",
            "adm\u{202e}in",
            "a\u{200b}b",
            "a\u{00ad}b",
            "a\u{feff}",
            "x\u{7}",
            &"n".repeat(256),
        ] {
            assert!(!valid_username(bad), "{bad:?}");
        }
    }

    #[test]
    fn login_input_is_bounded() {
        assert!(check_login_input("admin", "x").is_ok());
        assert!(check_login_input(&"a".repeat(MAX_USERNAME), &"p".repeat(MAX_PASSWORD)).is_ok());
        assert!(check_login_input(&"a".repeat(MAX_USERNAME + 1), "x").is_err());
        assert!(check_login_input("", "x").is_err());
        assert!(check_login_input("admin", &"p".repeat(MAX_PASSWORD + 1)).is_err());
        assert!(check_login_input(&"é".repeat(MAX_USERNAME), "x").is_ok(), "characters, not bytes");
        assert_eq!(lockout_key("ÉmIlE"), "Émile", "ASCII folding only, like SQLite's lower()");
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

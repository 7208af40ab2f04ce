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
    S.get_or_init(|| tokio::sync::Semaphore::new(argon2_permits_total()))
}

/// Logins that may wait for an argon2 permit, per CPU, beyond those running. A login arriving
/// when the queue is full is refused at once (429 with `Retry-After`) instead of making every
/// login wait behind a flood of wrong passwords: a queued login waits for at most
/// `ARGON2_QUEUE_PER_CPU` verifications (~19 MiB and tens of ms each in a release build).
pub const ARGON2_QUEUE_PER_CPU: usize = 4;

static ARGON2_WAITING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A place among the logins running or waiting for argon2 (`argon2_capacity`).
pub struct Argon2Slot(());

impl Argon2Slot {
    pub fn enter() -> Result<Argon2Slot, LoginError> {
        use std::sync::atomic::Ordering;
        let cap = argon2_capacity();
        let mut n = ARGON2_WAITING.load(Ordering::Relaxed);
        loop {
            if n >= cap {
                return Err(LoginError::Busy);
            }
            match ARGON2_WAITING.compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Ok(Argon2Slot(())),
                Err(actual) => n = actual,
            }
        }
    }

    /// `verify_password` within this slot.
    pub async fn verify(&self, pw: &str, hash: &str) -> bool {
        verify_password(pw, hash).await
    }
}

impl Drop for Argon2Slot {
    fn drop(&mut self) {
        ARGON2_WAITING.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Logins running or waiting for argon2 at most, per process: one running and
/// `ARGON2_QUEUE_PER_CPU` waiting per CPU.
pub fn argon2_capacity() -> usize {
    argon2_permits_total() * (1 + ARGON2_QUEUE_PER_CPU)
}

fn argon2_permits_total() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
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

/// Longest user name accepted anywhere, in characters (Harbor: 255). Checked before any work
/// or write, so a megabyte-long name costs nothing and is stored nowhere.
pub const MAX_USERNAME: usize = 255;
/// Longest password (or robot secret) accepted at login, in characters (Harbor: 256).
pub const MAX_PASSWORD: usize = 256;

/// Refuses login input no account could match: an empty or over-long name, an over-long
/// password. Nothing is verified, counted or audited for such input.
pub fn check_login_input(name: &str, password: &str) -> Result<(), LoginError> {
    // Byte bounds first: counting the characters of a megabyte costs a megabyte.
    if name.is_empty() || name.len() > 4 * MAX_USERNAME || name.chars().count() > MAX_USERNAME {
        return Err(LoginError::Malformed(format!("user names are 1 to {MAX_USERNAME} characters")));
    }
    if password.len() > 4 * MAX_PASSWORD || password.chars().count() > MAX_PASSWORD {
        return Err(LoginError::Malformed(format!("passwords are at most {MAX_PASSWORD} characters")));
    }
    Ok(())
}

/// The one normalisation of account names for lockout keys: ASCII case folding, the same as
/// the account lookup (`lower()` on SQLite; user names are ASCII, see `valid_username`).
pub fn lockout_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// How long a reservation made by `begin_attempt` counts when it is never settled (the
/// replica died mid-check). Longer than any check takes: the argon2 queue is bounded.
const ATTEMPT_TTL_MS: i64 = 30_000;

/// A login attempt reserved by `begin_attempt`; settle it with `end_attempt`.
#[derive(Debug)]
pub struct Attempt {
    key: String,
}

/// Reserves one attempt for `key` **before** the secret is checked, in one statement, so the
/// lockout holds against concurrent attempts and across replicas: it is refused (`Locked`)
/// while the name is locked or while failures plus attempts still being checked have reached
/// `max_failed_logins`. At most `max_failed_logins` guesses are ever verified per lockout.
pub async fn begin_attempt(db: &Db, cfg: &AuthConfig, key: &str) -> Result<Attempt, LoginError> {
    let now = now_ms();
    let reserved: Option<i64> = sqlx::query_scalar(
        "INSERT INTO login_failures (username, failures, locked_until, updated_at, in_flight, in_flight_until) \
         VALUES ($1, 0, 0, $2, 1, $3) \
         ON CONFLICT (username) DO UPDATE SET \
           in_flight = (CASE WHEN login_failures.in_flight_until > $2 THEN login_failures.in_flight ELSE 0 END) + 1, \
           in_flight_until = $3, updated_at = $2 \
         WHERE login_failures.locked_until <= $2 AND login_failures.failures \
           + (CASE WHEN login_failures.in_flight_until > $2 THEN login_failures.in_flight ELSE 0 END) < $4 \
         RETURNING in_flight",
    )
    .bind(key)
    .bind(now)
    .bind(now + ATTEMPT_TTL_MS)
    .bind(i64::from(cfg.max_failed_logins))
    .fetch_optional(&db.pool)
    .await?;
    if reserved.is_some() {
        return Ok(Attempt { key: key.to_string() });
    }
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT locked_until, in_flight_until FROM login_failures WHERE username = $1")
            .bind(key)
            .fetch_optional(&db.pool)
            .await?;
    let (locked_until, in_flight_until) = row.unwrap_or((0, now + 1000));
    // Locked, or every remaining attempt is being checked right now (they will most likely
    // fail and lock the name): either way, no guess now.
    let until = if locked_until > now { locked_until } else { in_flight_until.max(now + 1000) };
    Err(LoginError::Locked(((until - now) as u64).div_ceil(1000)))
}

/// Settles an attempt: a success clears the name's failures; a failure counts and locks the
/// name for `cfg.lockout` at `max_failed_logins` consecutive failures. `None`: the secret was
/// never checked (nothing counts).
pub async fn end_attempt(db: &Db, cfg: &AuthConfig, a: Attempt, ok: Option<bool>) -> Result<(), sqlx::Error> {
    let now = now_ms();
    match ok {
        Some(true) => {
            // A success clears the count only when no other attempt is being checked: a
            // success amid a burst of guesses must not give the guessers a fresh allowance.
            sqlx::query(
                "UPDATE login_failures SET updated_at = $2, \
                 failures = CASE WHEN in_flight <= 1 OR in_flight_until <= $2 THEN 0 ELSE failures END, \
                 in_flight = CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END WHERE username = $1",
            )
            .bind(&a.key)
            .bind(now)
            .execute(&db.pool)
            .await?;
            sqlx::query(
                "DELETE FROM login_failures WHERE username = $1 AND in_flight = 0 AND locked_until <= $2",
            )
            .bind(&a.key)
            .bind(now)
            .execute(&db.pool)
            .await?;
        }
        None => {
            sqlx::query(
                "UPDATE login_failures SET updated_at = $2, \
                 in_flight = CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END WHERE username = $1",
            )
            .bind(&a.key)
            .bind(now)
            .execute(&db.pool)
            .await?;
        }
        Some(false) => {
            let max = i64::from(cfg.max_failed_logins);
            let lock = now + cfg.lockout.as_millis() as i64;
            // Reaching the limit locks the name and starts the count again for after the lock.
            let locked_until: i64 = sqlx::query_scalar(
                "INSERT INTO login_failures (username, failures, locked_until, updated_at, in_flight, in_flight_until) \
                 VALUES ($1, $5, $6, $2, 0, 0) \
                 ON CONFLICT (username) DO UPDATE SET \
                   in_flight = CASE WHEN login_failures.in_flight > 0 THEN login_failures.in_flight - 1 ELSE 0 END, \
                   failures = CASE WHEN login_failures.failures + 1 >= $3 THEN 0 ELSE login_failures.failures + 1 END, \
                   locked_until = CASE WHEN login_failures.failures + 1 >= $3 THEN $4 ELSE login_failures.locked_until END, \
                   updated_at = $2 \
                 RETURNING locked_until",
            )
            .bind(&a.key)
            .bind(now)
            .bind(max)
            .bind(lock)
            .bind(if max <= 1 { 0i64 } else { 1 })
            .bind(if max <= 1 { lock } else { 0 })
            .fetch_one(&db.pool)
            .await?;
            if locked_until == lock {
                tracing::warn!(username = a.key, "account locked after repeated failed logins");
            }
        }
    }
    Ok(())
}

/// Seconds `key` stays locked, if it is locked now (for credentials verified earlier: the
/// lockout holds for them too).
pub async fn locked_for(db: &Db, key: &str) -> Result<Option<u64>, sqlx::Error> {
    let now = now_ms();
    let until: Option<i64> =
        sqlx::query_scalar("SELECT locked_until FROM login_failures WHERE username = $1")
            .bind(key)
            .fetch_optional(&db.pool)
            .await?;
    Ok(until.filter(|u| *u > now).map(|u| ((u - now) as u64).div_ceil(1000)))
}

/// Deletes settled `login_failures` rows nobody needs: names that match no account once idle
/// for a lockout period (probes of made-up names cannot fill the database), and any name idle
/// for a day (its count of consecutive failures starts again). Locked names and attempts in
/// flight stay. Returns how many rows went.
pub async fn purge_login_failures(db: &Db, cfg: &AuthConfig) -> Result<u64, sqlx::Error> {
    let now = now_ms();
    let idle = now - (cfg.lockout.as_millis() as i64).max(60_000);
    let done = sqlx::query(
        "DELETE FROM login_failures WHERE locked_until <= $1 AND (in_flight = 0 OR in_flight_until <= $1) \
         AND (updated_at < $2 OR (updated_at < $3 \
           AND NOT EXISTS (SELECT 1 FROM users u WHERE lower(u.username) = login_failures.username AND u.deleted = 0) \
           AND NOT EXISTS (SELECT 1 FROM robots r WHERE lower(r.name) = login_failures.username)))",
    )
    .bind(now)
    .bind(now - 86_400_000)
    .bind(idle)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected())
}

/// Runs `purge_login_failures` every ten minutes. Every replica may: the delete is idempotent.
pub async fn purge_login_failures_loop(
    db: Db,
    cfg: AuthConfig,
    beat: crate::supervisor::Beat,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tick.tick().await;
        match purge_login_failures(&db, &cfg).await {
            Ok(n) => {
                beat.ok();
                if n > 0 {
                    tracing::info!(deleted = n, "idle failed-login counters purged");
                }
            }
            Err(e) => {
                beat.failed(&e);
                tracing::warn!(error = %e, "failed-login purge failed");
            }
        }
    }
}

/// Checks a username and password with the lockout of `begin_attempt`. The lockout is keyed
/// by the account's stored name (any spelling that finds the account shares its lockout), or
/// by the name as given when no account has it.
pub async fn authenticate(
    db: &Db,
    cfg: &AuthConfig,
    username: &str,
    password: &str,
) -> Result<User, LoginError> {
    authenticate_counting(db, cfg, username, password, true).await
}

/// `authenticate`; with `count_unknown` false, a name no account has is still checked (against
/// the dummy hash, so timing tells nothing) but leaves no `login_failures` row — for clients
/// past their failure budget (`auth::FailureBudget`), so they cannot fill the table.
pub async fn authenticate_counting(
    db: &Db,
    cfg: &AuthConfig,
    username: &str,
    password: &str,
    count_unknown: bool,
) -> Result<User, LoginError> {
    check_login_input(username, password)?;
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE lower(username) = lower($1) AND deleted = 0"
    ))
    .bind(username)
    .fetch_optional(&db.pool)
    .await?;
    let found = match row {
        Some(r) => Some((User::from_row(&r)?, r.try_get::<String, _>("password_hash")?)),
        None => None,
    };
    let key = lockout_key(found.as_ref().map(|(u, _)| u.username.as_str()).unwrap_or(username));
    // A place in the argon2 queue first: a full queue refuses at once, before any write.
    let slot = Argon2Slot::enter()?;
    let attempt =
        if found.is_some() || count_unknown { Some(begin_attempt(db, cfg, &key).await?) } else { None };
    let ok = match &found {
        Some((_, hash)) => slot.verify(password, hash).await,
        None => {
            let dummy = dummy_hash().await;
            slot.verify(password, &dummy).await;
            false
        }
    };
    if let Some(a) = attempt {
        end_attempt(db, cfg, a, Some(ok)).await?;
    }
    match found {
        Some((u, _)) if ok => Ok(u),
        _ => Err(LoginError::InvalidCredentials),
    }
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

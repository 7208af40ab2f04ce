//! Logins: bounded input, the lockout reserved before any check (`begin_attempt` /
//! `end_attempt`, module doc of `accounts`), its purge loop, and `authenticate`.

use super::*;

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
            let dummy = password::dummy_hash().await;
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

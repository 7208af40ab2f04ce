//! OIDC users' stored state (`oidc_users`): the link from the provider's subject to the user,
//! the sealed tokens and refresh, and the CLI secret the token service accepts.

use super::*;

fn secret_purpose(user_id: i64) -> String {
    format!("oidc_users.secret:{user_id}")
}

fn token_purpose(user_id: i64) -> String {
    format!("oidc_users.token:{user_id}")
}

/// A random CLI secret (32 letters and digits).
pub fn new_cli_secret() -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 32)
}

/// Harbor's rule for a CLI secret a user sets: its password policy
/// (`accounts::check_password_strength`).
pub fn valid_cli_secret(s: &str) -> bool {
    crate::accounts::check_password_strength(s).is_ok()
}

/// One `oidc_users` row.
#[derive(Debug, Clone)]
pub struct OidcRow {
    pub user_id: i64,
    pub subiss: String,
    pub secret: String,
    pub token: String,
    pub token_expires_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const ROW_COLUMNS: &str = "user_id, subiss, secret, token, token_expires_at, created_at, updated_at";

fn row(r: &sqlx::any::AnyRow) -> Result<OidcRow, sqlx::Error> {
    use sqlx::Row;
    Ok(OidcRow {
        user_id: r.try_get("user_id")?,
        subiss: r.try_get("subiss")?,
        secret: r.try_get("secret")?,
        token: r.try_get("token")?,
        token_expires_at: r.try_get("token_expires_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn row_by_user(db: &Db, user_id: i64) -> Result<Option<OidcRow>, sqlx::Error> {
    let r = sqlx::query(&format!("SELECT {ROW_COLUMNS} FROM oidc_users WHERE user_id = $1"))
        .bind(user_id)
        .fetch_optional(&db.pool)
        .await?;
    r.as_ref().map(row).transpose()
}

pub async fn row_by_subiss(db: &Db, subiss: &str) -> Result<Option<OidcRow>, sqlx::Error> {
    let r = sqlx::query(&format!("SELECT {ROW_COLUMNS} FROM oidc_users WHERE subiss = $1"))
        .bind(subiss)
        .fetch_optional(&db.pool)
        .await?;
    r.as_ref().map(row).transpose()
}

/// Links a user to the provider identity with a fresh CLI secret. `Ok(false)` when the user
/// or the identity is linked already.
pub async fn link(state: &AppState, user_id: i64, id: &Identity) -> Result<bool, sqlx::Error> {
    let key = &state.secrets.encryption_key;
    let secret = crypto::encrypt(key, &secret_purpose(user_id), &new_cli_secret());
    let token =
        crypto::encrypt(key, &token_purpose(user_id), &serde_json::to_string(&id.tokens).unwrap_or_default());
    let now = now_ms();
    let mut tx = state.db.begin_write().await?;
    let taken: Option<i64> =
        sqlx::query_scalar("SELECT user_id FROM oidc_users WHERE user_id = $1 OR subiss = $2")
            .bind(user_id)
            .bind(&id.subiss)
            .fetch_optional(&mut *tx)
            .await?;
    if taken.is_some() {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO oidc_users (user_id, subiss, secret, token, token_expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(user_id)
    .bind(&id.subiss)
    .bind(secret)
    .bind(token)
    .bind(id.expires_at)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Stores the provider's latest tokens for a user.
pub async fn save_tokens(
    state: &AppState,
    user_id: i64,
    tokens: &StoredToken,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    let token = crypto::encrypt(
        &state.secrets.encryption_key,
        &token_purpose(user_id),
        &serde_json::to_string(tokens).unwrap_or_default(),
    );
    let mut tx = state.db.begin_write().await?;
    sqlx::query(
        "UPDATE oidc_users SET token = $1, token_expires_at = $2, updated_at = $3 WHERE user_id = $4",
    )
    .bind(token)
    .bind(expires_at)
    .bind(now_ms())
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Sets a user's CLI secret; false when the user has no `oidc_users` row.
pub async fn set_cli_secret(state: &AppState, user_id: i64, secret: &str) -> Result<bool, sqlx::Error> {
    let sealed = crypto::encrypt(&state.secrets.encryption_key, &secret_purpose(user_id), secret);
    let mut tx = state.db.begin_write().await?;
    let r = sqlx::query("UPDATE oidc_users SET secret = $1, updated_at = $2 WHERE user_id = $3")
        .bind(sealed)
        .bind(now_ms())
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(r.rows_affected() == 1)
}

fn open_token(state: &AppState, r: &OidcRow) -> StoredToken {
    if r.token.is_empty() {
        return StoredToken::default();
    }
    crypto::decrypt(&state.secrets.encryption_key, &token_purpose(r.user_id), &r.token)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

/// Harbor's `oidc_user_meta` for a user (the secret only when `show_secret`).
pub async fn user_meta(
    state: &AppState,
    user_id: i64,
    show_secret: bool,
) -> Result<Option<app::rest::users::OidcUserMeta>, sqlx::Error> {
    let Some(r) = row_by_user(&state.db, user_id).await? else { return Ok(None) };
    let secret = if show_secret {
        crypto::decrypt(&state.secrets.encryption_key, &secret_purpose(user_id), &r.secret)
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(Some(app::rest::users::OidcUserMeta {
        id: r.user_id,
        user_id: r.user_id,
        subiss: r.subiss,
        secret,
        creation_time: rfc3339(r.created_at),
        update_time: rfc3339(r.updated_at),
    }))
}

/// The ID token kept for a user (for logout), when any.
pub async fn last_id_token(state: &AppState, user_id: i64) -> Result<Option<String>, sqlx::Error> {
    let Some(r) = row_by_user(&state.db, user_id).await? else { return Ok(None) };
    let t = open_token(state, &r).id_token;
    Ok((!t.is_empty()).then_some(t))
}

/// Users whose tokens are being refreshed (`verify_cli_secret`).
type RefreshLocks = HashMap<i64, Arc<tokio::sync::Mutex<()>>>;
static REFRESHING: LazyLock<Mutex<RefreshLocks>> = LazyLock::new(Default::default);

/// Checks an OIDC user's CLI secret (constant time). `Ok(Some(groups))` when it matches and
/// the user's provider session can still be refreshed (the refreshed tokens are stored);
/// `Ok(None)` for a wrong secret; `Err(InvalidCredentials)` when the provider refuses the
/// refresh (the session is over); `Err(Unavailable)` when the provider cannot be reached.
pub async fn verify_cli_secret(
    state: &AppState,
    cfg: &OidcSettings,
    user: &User,
    secret: &str,
) -> Result<Option<Vec<String>>, LoginError> {
    let Some(r) = row_by_user(&state.db, user.id).await? else { return Ok(None) };
    let stored = crypto::decrypt(&state.secrets.encryption_key, &secret_purpose(user.id), &r.secret)
        .map_err(|_| {
            LoginError::Unavailable("the user's CLI secret no longer decrypts: regenerate it".into())
        })?;
    if !bool::from(stored.as_bytes().ct_eq(secret.as_bytes())) {
        return Ok(None);
    }
    if r.token_expires_at > now_ms() {
        return Ok(Some(open_token(state, &r).groups));
    }
    // One refresh per user at a time in this process: a provider that rotates refresh tokens
    // treats a second use of the old one as theft and revokes the grant. Whoever waited reads
    // the row again and finds it refreshed.
    let lock = {
        let mut locks = REFRESHING.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(user.id).or_default().clone()
    };
    let _guard = lock.lock().await;
    let Some(r) = row_by_user(&state.db, user.id).await? else { return Ok(None) };
    let mut tokens = open_token(state, &r);
    if r.token_expires_at > now_ms() {
        return Ok(Some(tokens.groups));
    }
    let Some(refresh) = tokens.refresh_token.clone() else {
        tracing::info!(user = %user.username, "OIDC session expired and no refresh token is stored");
        return Err(LoginError::InvalidCredentials);
    };
    let subject = if tokens.subject.is_empty() {
        r.subiss.strip_suffix(cfg.endpoint.as_str()).unwrap_or(&r.subiss).to_string()
    } else {
        tokens.subject.clone()
    };
    let provider = Provider::load(state, cfg).await?;
    let (token, groups) = match provider.refresh(state, &refresh, &subject).await {
        Ok(t) => t,
        Err(e) => {
            tracing::info!(user = %user.username, error = %e, "OIDC refresh failed");
            return Err(e.into());
        }
    };
    if let Some(rt) = token.refresh_token() {
        tokens.refresh_token = Some(rt.secret().clone());
    }
    if let Some(g) = groups {
        tokens.groups = g;
    }
    if let Some(id) = token.id_token() {
        tokens.id_token = id.to_string();
    }
    save_tokens(state, user.id, &tokens, expires_at(&token)).await?;
    Ok(Some(tokens.groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_secret_rules() {
        assert!(valid_cli_secret("Abcdefg1"));
        assert!(!valid_cli_secret("Abcdef1"), "7 characters");
        assert!(!valid_cli_secret("abcdefg1"), "no upper-case letter");
        assert!(!valid_cli_secret("ABCDEFG1"), "no lower-case letter");
        assert!(!valid_cli_secret("Abcdefgh"), "no digit");
        assert!(!valid_cli_secret(&format!("Ab1{}", "x".repeat(126))), "129 characters");
        let s = new_cli_secret();
        assert_eq!(s.len(), 32);
        assert_ne!(s, new_cli_secret());
    }
}

//! Upload sessions: rows holding an upload's committed size and hash state, and the leases
//! that let one request at a time append to it (any replica may continue an upload).

use super::*;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Upload {
    pub id: String,
    #[sqlx(try_from = "i64")]
    pub size: u64,
    pub hash_state: Vec<u8>,
}

pub async fn create_upload(db: &Db, id: &str, repo: &str, hash_state: &[u8]) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO uploads (id, repository, size, hash_state, lease_until, created_at, updated_at) \
         VALUES ($1, $2, 0, $3, 0, $4, $4)",
    )
    .bind(id)
    .bind(repo)
    .bind(hash_state.to_vec())
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn get_upload(db: &Db, repo: &str, id: &str) -> Result<Option<Upload>, sqlx::Error> {
    sqlx::query_as("SELECT id, size, hash_state FROM uploads WHERE id = $1 AND repository = $2")
        .bind(id)
        .bind(repo)
        .fetch_optional(&db.pool)
        .await
}

/// How long an upload's lease lasts without renewal. The request writing the upload renews
/// it every [`LEASE_RENEW_MS`]; a request whose replica died holds it at most this long, after
/// which the client (or another replica) may resume the upload from its committed size.
pub const LEASE_MS: i64 = 30 * 1000;
/// How often the writing request renews its lease.
pub const LEASE_RENEW_MS: u64 = 10 * 1000;

/// Takes the upload for one request if nobody else holds it and its committed size is
/// `size`: two requests never write the same upload at once, on any replica.
pub async fn lease_upload(db: &Db, id: &str, size: u64) -> Result<bool, sqlx::Error> {
    set_lease(db, id, size, "lease_until < $4").await
}

/// Extends the lease of an upload this request holds (taken at committed size `size` and not
/// expired). False when the lease was lost: it expired (the database was unreachable for
/// longer than [`LEASE_MS`]) and may now belong to another request.
pub async fn renew_upload_lease(db: &Db, id: &str, size: u64) -> Result<bool, sqlx::Error> {
    set_lease(db, id, size, "lease_until >= $4").await
}

/// Sets the lease of upload `id` at committed size `size` to [`LEASE_MS`] from now when
/// `held` (a condition on `lease_until` against `$4`, now) is true.
async fn set_lease(db: &Db, id: &str, size: u64, held: &str) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let r = sqlx::query(&format!(
        "UPDATE uploads SET lease_until = $3, updated_at = $4 WHERE id = $1 AND size = $2 AND {held}"
    ))
    .bind(id)
    .bind(size as i64)
    .bind(now + LEASE_MS)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Commits appended data (new size and hash state) and releases the lease. False when the
/// upload no longer is where this request's lease found it (committed size `from`, leased):
/// the lease was lost and the appended data must not be committed.
pub async fn commit_append(
    db: &Db,
    id: &str,
    from: u64,
    size: u64,
    hash_state: &[u8],
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE uploads SET size = $2, hash_state = $3, lease_until = 0, updated_at = $4 \
         WHERE id = $1 AND size = $5 AND lease_until > 0",
    )
    .bind(id)
    .bind(size as i64)
    .bind(hash_state.to_vec())
    .bind(now_ms())
    .bind(from as i64)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn release_upload(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE uploads SET lease_until = 0 WHERE id = $1").bind(id).execute(&db.pool).await?;
    Ok(())
}

pub async fn delete_upload(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM uploads WHERE id = $1").bind(id).execute(&db.pool).await?;
    Ok(())
}

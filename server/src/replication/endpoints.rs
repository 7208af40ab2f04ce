//! Stored registry endpoints (`registries`). PLACEHOLDER: the registries-API work replaces it
//! (CRUD, credentials encrypted with the cluster's encryption key).

use super::adapter::Endpoint;
use crate::db::Db;

/// The endpoint with id `id`, its secret decrypted with `key`; `None` when there is none.
pub async fn load(_db: &Db, _key: &[u8; 32], _id: i64) -> Result<Option<Endpoint>, sqlx::Error> {
    Ok(None)
}

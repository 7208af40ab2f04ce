//! Blob storage behind a small trait; registry logic lives above it (in `registry`).
//!
//! Layout (keys are relative, `/`-separated, validated by `check_key`):
//! - `blobs/<alg>/<first two hex>/<hex>/data` — content, addressed by digest (layers, configs,
//!   manifests alike). Written once, never modified; overwriting with the same bytes is harmless.
//! - `uploads/<id>/data` — an upload in progress. Its committed length and hash state live in
//!   the database (`uploads` row), so any replica can continue it.
//! - `_health/…` — readiness probes.
//!
//! **Writes are crash-safe**: whole objects are written to a temporary name, synced and renamed;
//! upload data is truncated to the committed length before appending and again when it is
//! committed, so a request that died half-way leaves nothing behind that a later request could
//! mistake for data, nor anything a blob could contain.
//! **No backend relies on in-process locks**: several processes may share one filesystem mount.

pub mod fs;
pub mod memory;
pub mod s3;

use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

/// A stream of bytes (request bodies in, blob contents out).
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object not found")]
    NotFound,
    /// The object is shorter than the requested range, or an append offset is wrong.
    #[error("invalid range")]
    InvalidRange,
    #[error("invalid storage key {0:?}")]
    InvalidKey(String),
    /// Reading the client's body failed (disconnect): nothing was committed.
    #[error("reading the request body failed: {0}")]
    Body(std::io::Error),
    #[error("storage i/o error: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// An object as `Storage::list_meta` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// The last write (the backend's clock: file mtime, S3 `LastModified`).
    pub modified: std::time::SystemTime,
}

#[async_trait::async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    /// Size of an object, `None` when absent.
    async fn stat(&self, key: &str) -> Result<Option<u64>>;
    /// Bytes `[start, end)` of an object (the whole object for `None`).
    async fn read(&self, key: &str, range: Option<(u64, u64)>) -> Result<ByteStream>;
    /// Reads a small object completely (manifests).
    async fn read_all(&self, key: &str) -> Result<Bytes>;
    /// Writes a whole object atomically.
    async fn put(&self, key: &str, data: Bytes) -> Result<()>;
    /// Appends `data` to the upload object `key` at `offset` (its committed length; anything
    /// after it is discarded first) and makes it durable. Returns the new length.
    async fn append(&self, key: &str, offset: u64, data: ByteStream) -> Result<u64>;
    /// Moves the first `len` bytes of a finished upload object (its committed length) to its
    /// final key atomically; anything after them (left by a request that failed) is dropped, so
    /// a stored blob is exactly its committed bytes. `InvalidRange` when the upload is shorter.
    async fn commit(&self, from: &str, to: &str, len: u64) -> Result<()>;
    /// Deletes an object (absent is fine).
    async fn delete(&self, key: &str) -> Result<()>;
    /// Deletes many objects (GC's sweep); one result per key, in order. The default runs
    /// `delete` `concurrency` at a time; object stores override it with bulk requests.
    async fn delete_many(&self, keys: &[String], concurrency: usize) -> Vec<Result<()>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(concurrency.max(1)) {
            out.extend(futures::future::join_all(chunk.iter().map(|k| self.delete(k))).await);
        }
        out
    }
    /// Keys under a prefix (tests and GC).
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;
    /// Objects under a prefix with their size and last write, sorted by key (GC finds orphaned
    /// upload data by age). An upload in progress is one object at its key, however the
    /// backend stores it (S3: its parts, summed; modified = the newest part).
    async fn list_meta(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;
    /// Removes temporary files older than `older_than` that writers killed mid-write (kill -9,
    /// power loss) left behind; returns how many. Only the filesystem backend has any.
    async fn sweep_temp(&self, _older_than: std::time::Duration) -> Result<u64> {
        Ok(0)
    }
}

/// Temporary files older than this are orphans (a whole-object write takes well under a
/// second; a filesystem stalled for an hour has bigger problems). Swept at start and by GC.
pub const TEMP_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Refuses keys that could escape the storage root or are not in the layout's alphabet.
pub fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && !key.starts_with('/')
        && key.len() <= 512
        && key.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidKey(key.chars().take(100).collect()))
    }
}

/// The backend chosen by configuration.
pub fn from_config(cfg: &crate::config::StorageConfig) -> anyhow::Result<std::sync::Arc<dyn Storage>> {
    match cfg.kind.as_str() {
        "filesystem" => Ok(std::sync::Arc::new(fs::FsStorage::new(&cfg.path)?)),
        "s3" => Ok(std::sync::Arc::new(s3::S3Storage::new(&cfg.s3)?)),
        other => anyhow::bail!("storage.kind: unknown kind {other:?}"),
    }
}

#[cfg(test)]
pub(crate) mod suite;

#[cfg(test)]
mod tests {
    #[test]
    fn keys() {
        for ok in ["blobs/sha256/ab/abcd/data", "uploads/0f-1/data", "_health/x"] {
            assert!(super::check_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/abs", "a/../b", "a//b", "a/./b", "a\\b", "a/b c", ".."] {
            assert!(super::check_key(bad).is_err(), "{bad}");
        }
    }
}

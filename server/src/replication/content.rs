//! The content side of a registry, as replication and the proxy cache see it: manifests, blobs,
//! tags and referrers of one registry, local or remote.
//!
//! Two implementations: `client::RemoteRegistry` (any OCI Distribution registry over HTTP,
//! with the token flow a real client uses) and `local::LocalRegistry` (this product's own
//! registry in-process: the same checks, metadata writes and audit rows as a push over `/v2`,
//! without a loopback HTTP hop). `copy` moves an artifact between any two of them.
//!
//! Invariants every implementation keeps:
//! - **Blobs stream**: `get_blob` returns a stream and `put_blob` consumes one; no whole blob is
//!   held in memory and nothing is written to a temporary file.
//! - **Digests are verified end to end**: `put_blob` fails (`ContentError::Invalid`) unless the
//!   bytes hash to the digest named and have the size named; `get_manifest` checks the bytes
//!   against the digest it was asked for (by digest) or reports the digest it computed (by tag).
//! - **Errors say what went wrong** (`ContentError`): `Transient` is the only kind a caller
//!   retries (5xx, connection reset, timeout); the rest end a task with their message.

use async_trait::async_trait;
use bytes::Bytes;

use crate::registry::digest::Digest;
use crate::storage::ByteStream;

/// A manifest's bytes as stored, with its media type and digest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Bytes,
}

/// An OCI descriptor (of a manifest, a referrer or a blob).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// For referrers: the artifact type (`artifactType`, or the config's media type).
    pub artifact_type: Option<String>,
}

/// Why a content operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ContentError {
    /// The manifest, blob or repository does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The credentials were refused (401 after the token flow).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The credentials are valid but may not do this (403, a proxy project refusing a push, …).
    #[error("denied: {0}")]
    Denied(String),
    /// The content is wrong: digest or size mismatch, a manifest the destination refused.
    #[error("invalid: {0}")]
    Invalid(String),
    /// Worth retrying: 5xx, 429, a connection error or timeout.
    #[error("temporarily unavailable: {0}")]
    Transient(String),
    /// TLS failure, bad URL, anything else not worth retrying.
    #[error("{0}")]
    Other(String),
}

impl ContentError {
    pub fn is_transient(&self) -> bool {
        matches!(self, ContentError::Transient(_))
    }
}

pub type ContentResult<T> = Result<T, ContentError>;

/// One registry's content. `repo` is a full repository name (`project/name`), `reference` a
/// tag or a digest string.
#[async_trait]
pub trait Content: Send + Sync {
    /// Identifies the registry for cross-repository mounts: two `Content`s with the same key
    /// are the same registry (same base URL and credentials, or this product itself).
    fn registry_key(&self) -> String;

    /// The digest, media type and size of a manifest without its body; `None` when absent.
    async fn head_manifest(&self, repo: &str, reference: &str) -> ContentResult<Option<Descriptor>>;
    /// The manifest, verified against its digest; `None` when absent.
    async fn get_manifest(&self, repo: &str, reference: &str) -> ContentResult<Option<Manifest>>;
    /// Stores a manifest under `reference` (a tag, or its digest for an untagged one). Every
    /// blob and child it references must be in `repo` already.
    async fn put_manifest(&self, repo: &str, reference: &str, manifest: &Manifest) -> ContentResult<()>;
    /// Deletes a manifest by digest (and so every tag on it); `false` when it was not there.
    async fn delete_manifest(&self, repo: &str, digest: &Digest) -> ContentResult<bool>;

    /// The blob's size when `repo` can serve it.
    async fn blob_exists(&self, repo: &str, digest: &Digest) -> ContentResult<Option<u64>>;
    /// The blob's size and its bytes as a stream.
    async fn get_blob(&self, repo: &str, digest: &Digest) -> ContentResult<(u64, ByteStream)>;
    /// Uploads a blob from a stream of exactly `size` bytes, verified against `digest`.
    async fn put_blob(&self, repo: &str, digest: &Digest, size: u64, data: ByteStream) -> ContentResult<()>;
    /// Links a blob of `from_repo` into `repo` without copying it (same registry only);
    /// `false` when the registry would not mount it (the caller then copies).
    async fn mount_blob(&self, from_repo: &str, repo: &str, digest: &Digest) -> ContentResult<bool>;

    /// Every tag of the repository (empty when it does not exist).
    async fn tags(&self, repo: &str) -> ContentResult<Vec<String>>;
    /// The referrers of a manifest (signatures, SBOMs, attestations); empty when none or when
    /// the registry has no referrers API and no tag-schema fallback.
    async fn referrers(&self, repo: &str, subject: &Digest) -> ContentResult<Vec<Descriptor>>;
}

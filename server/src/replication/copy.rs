//! Copying one artifact between two registries. PLACEHOLDER: the local+copy work replaces the
//! body; the signature is the contract replication tasks and the proxy cache code against.

use crate::registry::digest::Digest;

use super::content::{Content, ContentError, ContentResult};

/// How a copy runs.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Blobs of one artifact transferred at the same time.
    pub parallel_blobs: usize,
    /// Bandwidth limit for this copy in KiB/s; 0 = unlimited.
    pub speed_kib: u64,
    /// Replace a destination tag that points at another digest (Harbor's `override`).
    pub override_existing: bool,
    /// Copy the referrers (signatures, SBOMs) of every manifest copied, recursively.
    pub with_referrers: bool,
    /// Upload blobs larger than this in chunks of this size (Harbor's `copy_by_chunk`); `None`:
    /// one streamed upload per blob.
    pub chunk_size: Option<u64>,
}

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// The digest of the top-level manifest copied.
    pub digest: Option<Digest>,
    /// The destination already had this digest under the reference: nothing was transferred.
    pub unchanged: bool,
    /// The destination tag points at another digest and `override_existing` is off.
    pub skipped_existing: bool,
    pub manifests: u64,
    pub blobs_copied: u64,
    pub blobs_mounted: u64,
    pub blobs_present: u64,
    pub bytes: u64,
}

/// Where a copy reports progress, and how it learns it should stop.
pub trait CopyObserver: Send + Sync {
    fn log(&self, line: String);
    /// Bytes transferred so far in this copy grew by `n`.
    fn transferred(&self, n: u64);
    /// True when the task was asked to stop (the copy ends with `ContentError::Other("stopped")`).
    fn should_stop(&self) -> bool;
}

/// One end of a copy: a registry, a repository in it and a reference (a tag, or a digest).
#[derive(Clone, Copy)]
pub struct Side<'a> {
    pub content: &'a dyn Content,
    pub repo: &'a str,
    pub reference: &'a str,
}

/// Copies `src` to `dst` (whose reference is a tag, or the digest for an untagged artifact):
/// an index with every child, each manifest's blobs (HEAD first, mounted when both sides are
/// the same registry), then the manifests bottom-up, then (optionally) referrers with their
/// subjects.
pub async fn copy_artifact(
    _src: Side<'_>,
    _dst: Side<'_>,
    _opts: &CopyOptions,
    _observer: &dyn CopyObserver,
) -> ContentResult<CopyReport> {
    Err(ContentError::Other("copy is not built yet".into()))
}

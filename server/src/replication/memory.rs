//! An in-memory registry implementing `Content`: the test double of an upstream (and of the
//! local side in `proxy`'s unit tests), like `storage::memory` is for storage. It keeps the
//! `Content` invariants that matter to callers — `put_blob` verifies size and digest and stores
//! nothing otherwise, `put_manifest` needs every blob and child present — counts the calls it
//! answers, and can be taken "offline" (every call a `Transient` error) to play an upstream that
//! is down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;

use super::content::{Content, ContentError, ContentResult, Descriptor, Manifest};
use crate::registry::digest::Digest;
use crate::registry::manifest;
use crate::storage::ByteStream;

#[derive(Default)]
struct Repo {
    manifests: HashMap<String, Manifest>,
    tags: HashMap<String, String>,
    blobs: HashMap<String, Bytes>,
}

/// Calls answered, per kind.
#[derive(Debug, Default)]
pub struct Calls {
    pub head_manifest: AtomicU64,
    pub get_manifest: AtomicU64,
    pub get_blob: AtomicU64,
    pub put_blob: AtomicU64,
    pub put_manifest: AtomicU64,
}

/// The in-memory registry. `chunk` is the size of the pieces `get_blob` streams.
pub struct MemoryContent {
    key: String,
    repos: Mutex<HashMap<String, Repo>>,
    pub calls: Calls,
    offline: AtomicBool,
    chunk: usize,
}

impl MemoryContent {
    pub fn new(key: impl Into<String>) -> MemoryContent {
        MemoryContent {
            key: key.into(),
            repos: Mutex::default(),
            calls: Calls::default(),
            offline: AtomicBool::new(false),
            chunk: 4096,
        }
    }

    /// Streams blobs in pieces of `chunk` bytes.
    pub fn with_chunk(mut self, chunk: usize) -> MemoryContent {
        self.chunk = chunk.max(1);
        self
    }

    /// Every call fails with `ContentError::Transient` while `offline` (an unreachable registry).
    pub fn set_offline(&self, offline: bool) {
        self.offline.store(offline, Ordering::SeqCst);
    }

    /// Adds a blob directly (test set-up); returns its digest.
    pub fn add_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::sha256(data);
        self.lock().entry(repo.into()).or_default().blobs.insert(d.to_string(), Bytes::copy_from_slice(data));
        d
    }

    /// Adds a manifest directly (no checks), tagged `tag` when given; returns its digest.
    pub fn add_manifest(&self, repo: &str, tag: Option<&str>, media_type: &str, body: &[u8]) -> Digest {
        let d = Digest::sha256(body);
        let m = Manifest {
            media_type: media_type.into(),
            digest: d.clone(),
            bytes: Bytes::copy_from_slice(body),
        };
        let mut repos = self.lock();
        let r = repos.entry(repo.into()).or_default();
        r.manifests.insert(d.to_string(), m);
        if let Some(t) = tag {
            r.tags.insert(t.into(), d.to_string());
        }
        d
    }

    /// Whether `repo` has the blob (without counting a call).
    pub fn has_blob(&self, repo: &str, digest: &Digest) -> bool {
        self.lock().get(repo).is_some_and(|r| r.blobs.contains_key(&digest.to_string()))
    }

    /// The digest `repo:tag` points at (without counting a call).
    pub fn tag_digest(&self, repo: &str, tag: &str) -> Option<String> {
        self.lock().get(repo).and_then(|r| r.tags.get(tag).cloned())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Repo>> {
        self.repos.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_online(&self) -> ContentResult<()> {
        if self.offline.load(Ordering::SeqCst) {
            return Err(ContentError::Transient(format!("{}: connection refused", self.key)));
        }
        Ok(())
    }

    /// The manifest `repo:reference` (a tag or a digest), without counting a call.
    pub fn find(&self, repo: &str, reference: &str) -> Option<Manifest> {
        let repos = self.lock();
        let r = repos.get(repo)?;
        let digest =
            if reference.contains(':') { reference.to_string() } else { r.tags.get(reference)?.clone() };
        r.manifests.get(&digest).cloned()
    }
}

#[async_trait]
impl Content for MemoryContent {
    fn registry_key(&self) -> String {
        self.key.clone()
    }

    async fn head_manifest(&self, repo: &str, reference: &str) -> ContentResult<Option<Descriptor>> {
        self.calls.head_manifest.fetch_add(1, Ordering::SeqCst);
        self.check_online()?;
        Ok(self.find(repo, reference).map(|m| Descriptor {
            media_type: m.media_type,
            digest: m.digest,
            size: m.bytes.len() as u64,
            artifact_type: None,
        }))
    }

    async fn get_manifest(&self, repo: &str, reference: &str) -> ContentResult<Option<Manifest>> {
        self.calls.get_manifest.fetch_add(1, Ordering::SeqCst);
        self.check_online()?;
        Ok(self.find(repo, reference))
    }

    async fn put_manifest(&self, repo: &str, reference: &str, m: &Manifest) -> ContentResult<()> {
        self.calls.put_manifest.fetch_add(1, Ordering::SeqCst);
        self.check_online()?;
        if Digest::of(m.digest.algorithm, &m.bytes) != m.digest {
            return Err(ContentError::Invalid("manifest digest mismatch".into()));
        }
        let parsed = manifest::parse(Some(&m.media_type), &m.bytes).map_err(ContentError::Invalid)?;
        let mut repos = self.lock();
        let r = repos.entry(repo.into()).or_default();
        for b in &parsed.blobs {
            if !r.blobs.contains_key(&b.digest.to_string()) {
                return Err(ContentError::Invalid(format!("blob {} unknown", b.digest)));
            }
        }
        for c in &parsed.manifests {
            if !r.manifests.contains_key(&c.digest.to_string()) {
                return Err(ContentError::Invalid(format!("manifest {} unknown", c.digest)));
            }
        }
        r.manifests.insert(m.digest.to_string(), m.clone());
        if !reference.contains(':') {
            r.tags.insert(reference.into(), m.digest.to_string());
        }
        Ok(())
    }

    async fn delete_manifest(&self, repo: &str, digest: &Digest) -> ContentResult<bool> {
        self.check_online()?;
        let mut repos = self.lock();
        let Some(r) = repos.get_mut(repo) else { return Ok(false) };
        let d = digest.to_string();
        r.tags.retain(|_, v| *v != d);
        Ok(r.manifests.remove(&d).is_some())
    }

    async fn blob_exists(&self, repo: &str, digest: &Digest) -> ContentResult<Option<u64>> {
        self.check_online()?;
        Ok(self.lock().get(repo).and_then(|r| r.blobs.get(&digest.to_string())).map(|b| b.len() as u64))
    }

    async fn get_blob(&self, repo: &str, digest: &Digest) -> ContentResult<(u64, ByteStream)> {
        self.calls.get_blob.fetch_add(1, Ordering::SeqCst);
        self.check_online()?;
        let data = self
            .lock()
            .get(repo)
            .and_then(|r| r.blobs.get(&digest.to_string()).cloned())
            .ok_or_else(|| ContentError::NotFound(format!("blob {digest}")))?;
        let size = data.len() as u64;
        let chunks: Vec<std::io::Result<Bytes>> = (0..data.len())
            .step_by(self.chunk)
            .map(|i| Ok(data.slice(i..(i + self.chunk).min(data.len()))))
            .collect();
        Ok((size, futures::stream::iter(chunks).boxed()))
    }

    async fn put_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        mut data: ByteStream,
    ) -> ContentResult<()> {
        self.calls.put_blob.fetch_add(1, Ordering::SeqCst);
        self.check_online()?;
        let mut buf = Vec::new();
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(|e| ContentError::Other(format!("reading the blob: {e}")))?;
            buf.extend_from_slice(&chunk);
            if buf.len() as u64 > size {
                return Err(ContentError::Invalid(format!("blob {digest} is longer than {size} bytes")));
            }
        }
        if buf.len() as u64 != size {
            return Err(ContentError::Invalid(format!("blob {digest}: {} of {size} bytes", buf.len())));
        }
        if &Digest::of(digest.algorithm, &buf) != digest {
            return Err(ContentError::Invalid(format!("blob {digest}: digest mismatch")));
        }
        self.lock().entry(repo.into()).or_default().blobs.insert(digest.to_string(), Bytes::from(buf));
        Ok(())
    }

    async fn mount_blob(&self, from_repo: &str, repo: &str, digest: &Digest) -> ContentResult<bool> {
        self.check_online()?;
        let mut repos = self.lock();
        let Some(data) = repos.get(from_repo).and_then(|r| r.blobs.get(&digest.to_string()).cloned()) else {
            return Ok(false);
        };
        repos.entry(repo.into()).or_default().blobs.insert(digest.to_string(), data);
        Ok(true)
    }

    async fn tags(&self, repo: &str) -> ContentResult<Vec<String>> {
        self.check_online()?;
        let mut t: Vec<String> =
            self.lock().get(repo).map(|r| r.tags.keys().cloned().collect()).unwrap_or_default();
        t.sort();
        Ok(t)
    }

    async fn referrers(&self, _repo: &str, _subject: &Digest) -> ContentResult<Vec<Descriptor>> {
        self.check_online()?;
        Ok(vec![])
    }
}

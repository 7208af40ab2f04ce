//! Proxy-cache projects (Harbor's proxy cache): a pull from `proxyproject/<repo>` that misses is
//! answered from the project's upstream registry and cached. This file is the logic, coded
//! against `Content` for both sides (the upstream: `adapters::build(..).content()`; the local
//! side: `local::LocalRegistry` acting as `proxy-cache`), so it runs against test doubles
//! (`memory::MemoryContent`); `registry/proxied.rs` is its `/v2` glue.
//!
//! **Manifests.** By digest: local first (content-addressed, immutable), else upstream. By tag:
//! a HEAD upstream learns the tag's current digest (cheaper than a GET, and Docker Hub does not
//! count it against the pull rate limit); the local copy is served when it has that digest under
//! the tag, else the manifest is fetched upstream *by that digest* (the tag may move between the
//! two requests; a client's HEAD gets this GET too, so what it names can be cached), served at
//! once and cached in the background. An upstream that is unreachable
//! or failing (any error but "not found") leaves the local copy served, with a warning in the
//! log; without one the client gets the upstream's error (`ProxyError`). An upstream that no
//! longer has the tag is a 404 even when a stale copy is cached (Harbor answers the same).
//!
//! **Caching a manifest** (`cache_manifest`, in the background): it is stored once everything
//! it references is local — an image's blobs, an index's children — because `put_manifest`
//! refuses dangling references. An image's blobs are normally cached by the client's own blob
//! pulls (the tee below); a blob neither cached nor being fetched after `BLOB_GRACE` (a client
//! that had the layer already) is fetched by the task itself, so the image is always cached. An
//! index waits up to `INDEX_WAIT` for its children, which only get cached when some client pulls
//! them (docker pulls one platform); an index whose children never all arrive is not stored and
//! keeps being answered from upstream (so it is not served while the upstream is down). While a
//! manifest waits it is kept in memory (`pending`, at most `MAX_PENDING_BYTES` in all), so the
//! by-digest GET that follows a HEAD by tag is answered without another upstream request.
//!
//! **Blobs** (`blob`): local first; on a miss the upstream stream is teed — every chunk goes to
//! the client and, through a bounded channel (`TEE_CHUNKS` chunks), into `put_blob` of the
//! local side, which verifies size and digest and commits nothing otherwise. Choice: **the
//! store follows the client** — a slow client slows the store (and the upstream read) instead
//! of buffering, and a client that disconnects ends the store, which then fails its size check
//! and leaves no blob (the next pull fetches again). No blob is ever whole in memory.
//! Concurrent misses of one blob in one repository are coalesced: one request fetches (the
//! leader), the others wait for its store to end (up to `FOLLOW_WAIT`) and are then served
//! locally, or become the leader when it failed.
//!
//! **Limits**: manifests over `manifest::MAX_MANIFEST_SIZE` (4 MiB) are refused; at most
//! `MAX_UPSTREAM_FETCHES` upstream requests (manifest requests and blob streams) run at once per
//! replica, and a request waits at most `FETCH_SLOT_WAIT` for a slot (then `ProxyError::Busy`, a
//! 429 with `Retry-After`); `ProxyCache::with_limits` sets both.
//!
//! **Upstreams** are resolved per registry id (`ProxyCache::upstream`): the endpoint from
//! `endpoints::load`, its adapter from `adapters::build`, kept per replica while the
//! `registries` row's `updated_at` is unchanged (so the client's tokens are reused across
//! pulls). Tests replace the resolution with `ProxyCache::set_upstream_override`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use super::content::{Content, ContentError, Descriptor, Manifest};
use crate::registry::digest::Digest;
use crate::registry::manifest::{self, MAX_MANIFEST_SIZE};
use crate::registry::path::Reference;
use crate::storage::ByteStream;

/// Upstream requests running at once per replica.
pub const MAX_UPSTREAM_FETCHES: usize = 32;
/// How long a request waits for an upstream slot before `ProxyError::Busy`.
pub const FETCH_SLOT_WAIT: Duration = Duration::from_secs(30);
/// Chunks buffered between the client's stream and the store.
pub const TEE_CHUNKS: usize = 8;
/// How long a request waits for another request's fetch of the same blob.
pub const FOLLOW_WAIT: Duration = Duration::from_secs(600);
/// How long a manifest's cache task lets clients fetch its blobs before fetching them itself.
pub const BLOB_GRACE: Duration = Duration::from_secs(5);
/// How long an index's cache task waits for its children.
pub const INDEX_WAIT: Duration = Duration::from_secs(600);
/// Bytes of manifests kept in memory while they wait to be cached, per replica; a manifest
/// beyond it is served but not cached this time (the next pull tries again).
pub const MAX_PENDING_BYTES: usize = 16 * 1024 * 1024;

/// Docker Hub's registry hosts: single-component names there mean `library/<name>`.
const DOCKER_HUB_HOSTS: [&str; 3] = ["registry-1.docker.io", "hub.docker.com", "index.docker.io"];

/// Whether an endpoint is Docker Hub (by type, or by its URL's host).
pub fn is_docker_hub(kind: &str, url: &str) -> bool {
    if kind == "docker-hub" {
        return true;
    }
    let host = url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    host.is_some_and(|h| DOCKER_HUB_HOSTS.contains(&h.as_str()))
}

/// The upstream repository of a local one: the name without its project
/// (`proxy/library/alpine` → `library/alpine`); on Docker Hub a single component gets the
/// implicit `library/` (`proxy/alpine` → `library/alpine`). `None` for a bare project name.
pub fn upstream_repo(local_repo: &str, docker_hub: bool) -> Option<String> {
    let (_, rest) = local_repo.split_once('/')?;
    if rest.is_empty() {
        return None;
    }
    if docker_hub && !rest.contains('/') {
        return Some(format!("library/{rest}"));
    }
    Some(rest.to_string())
}

/// A resolved upstream: its content API and whether it is Docker Hub.
#[derive(Clone)]
pub struct Upstream {
    pub content: Arc<dyn Content>,
    pub docker_hub: bool,
}

/// Replaces the resolution of upstreams by registry id (tests).
pub type UpstreamOverride = Arc<dyn Fn(i64) -> Option<Upstream> + Send + Sync>;

/// Why a proxied pull could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The upstream does not have it (and, for a tag, neither is it served from the cache).
    #[error("{0} not found in the upstream registry")]
    NotFound(String),
    /// The upstream failed and there is no local copy.
    #[error("the upstream registry failed: {0}")]
    Upstream(ContentError),
    #[error("the manifest is {0} bytes; at most {MAX_MANIFEST_SIZE} are proxied")]
    TooLarge(u64),
    /// No upstream slot within `FETCH_SLOT_WAIT`.
    #[error("too many upstream requests in progress; retry shortly")]
    Busy,
    /// The project's registry endpoint is gone or cannot be used.
    #[error("the upstream registry {0} of this proxy project is not available: {1}")]
    Registry(i64, String),
}

/// Where a manifest pull is answered from.
#[derive(Debug)]
pub enum ManifestSource {
    /// The local copy (under the reference asked for).
    Local,
    /// The upstream's manifest; `cache` is the reference to store it under (the tag, or the
    /// digest), `None` when it is already being cached.
    Upstream { manifest: Manifest, cache: Option<String> },
}

/// Where a blob pull is answered from.
pub enum BlobSource {
    /// The local copy (cached now or before).
    Local,
    /// The upstream's bytes, being stored as they stream (`size` bytes).
    Upstream { size: u64, stream: ByteStream },
}

/// The per-replica state of the proxy cache: built upstreams, the fetch slots, blobs being
/// fetched and manifests waiting to be cached.
pub struct ProxyCache {
    upstream_override: RwLock<Option<UpstreamOverride>>,
    /// Registry id → (`updated_at` of its row, the built upstream).
    upstreams: Mutex<HashMap<i64, (i64, Upstream)>>,
    fetches: Arc<Semaphore>,
    /// How long a request waits for a fetch slot (`FETCH_SLOT_WAIT`).
    slot_wait: Duration,
    /// `repo@digest` → a receiver that changes (or closes) when the fetch ends.
    inflight: Mutex<HashMap<String, watch::Receiver<()>>>,
    /// (repo, reference) → manifest waiting for its blobs or children.
    pending: Mutex<HashMap<(String, String), Manifest>>,
}

impl Default for ProxyCache {
    fn default() -> Self {
        ProxyCache::new(MAX_UPSTREAM_FETCHES)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A fetch of one blob this request leads; the followers are released when it drops.
struct Leader {
    cache: Arc<ProxyCache>,
    key: String,
    _done: watch::Sender<()>,
}

impl Drop for Leader {
    fn drop(&mut self) {
        lock(&self.cache.inflight).remove(&self.key);
    }
}

impl ProxyCache {
    pub fn new(max_fetches: usize) -> ProxyCache {
        ProxyCache::with_limits(max_fetches, FETCH_SLOT_WAIT)
    }

    /// At most `max_fetches` upstream requests at once, each waiting at most `slot_wait` to start.
    pub fn with_limits(max_fetches: usize, slot_wait: Duration) -> ProxyCache {
        ProxyCache {
            upstream_override: RwLock::default(),
            upstreams: Mutex::default(),
            fetches: Arc::new(Semaphore::new(max_fetches.max(1))),
            slot_wait,
            inflight: Mutex::default(),
            pending: Mutex::default(),
        }
    }

    /// Resolves every registry id with `f` instead of the stored endpoints (tests).
    pub fn set_upstream_override(&self, f: UpstreamOverride) {
        *self.upstream_override.write().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    /// The upstream of registry `id`: the stored endpoint's adapter, built once per version of
    /// the `registries` row.
    pub async fn upstream(&self, state: &crate::state::AppState, id: i64) -> Result<Upstream, ProxyError> {
        let overridden = self.upstream_override.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(f) = overridden {
            return f(id).ok_or_else(|| ProxyError::Registry(id, "no such registry".into()));
        }
        let db_err = |e: sqlx::Error| ProxyError::Registry(id, format!("database: {e}"));
        let updated_at: Option<i64> = sqlx::query_scalar("SELECT updated_at FROM registries WHERE id = $1")
            .bind(id)
            .fetch_optional(&state.db.pool)
            .await
            .map_err(db_err)?;
        let Some(updated_at) = updated_at else {
            lock(&self.upstreams).remove(&id);
            return Err(ProxyError::Registry(id, "the registry endpoint was deleted".into()));
        };
        if let Some((at, up)) = lock(&self.upstreams).get(&id) {
            if *at == updated_at {
                return Ok(up.clone());
            }
        }
        let endpoint = super::endpoints::load(&state.db, &state.secrets.encryption_key, id)
            .await
            .map_err(|e| ProxyError::Registry(id, super::endpoints::load_failure(id, e).to_string()))?
            .ok_or_else(|| ProxyError::Registry(id, "the registry endpoint was deleted".into()))?;
        let adapter =
            super::adapters::build(&endpoint).map_err(|e| ProxyError::Registry(id, e.to_string()))?;
        let up =
            Upstream { content: adapter.content(), docker_hub: is_docker_hub(&endpoint.kind, &endpoint.url) };
        lock(&self.upstreams).insert(id, (updated_at, up.clone()));
        Ok(up)
    }

    async fn slot(&self) -> Result<OwnedSemaphorePermit, ProxyError> {
        match tokio::time::timeout(self.slot_wait, self.fetches.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(ProxyError::Busy),
        }
    }

    fn pending_by_digest(&self, repo: &str, digest: &Digest) -> Option<Manifest> {
        lock(&self.pending)
            .iter()
            .find(|((r, _), m)| r == repo && &m.digest == digest)
            .map(|(_, m)| m.clone())
    }

    /// Decides where a manifest pull of `local_repo:reference` is answered from (see the module
    /// doc). `up_repo` is the upstream's name of the repository.
    pub async fn manifest(
        &self,
        up: &dyn Content,
        local: &dyn Content,
        up_repo: &str,
        local_repo: &str,
        reference: &Reference,
    ) -> Result<ManifestSource, ProxyError> {
        match reference {
            Reference::Digest(d) => {
                let ds = d.to_string();
                if local_head(local, local_repo, &ds).await.is_some() {
                    return Ok(ManifestSource::Local);
                }
                if let Some(m) = self.pending_by_digest(local_repo, d) {
                    return Ok(ManifestSource::Upstream { manifest: m, cache: None });
                }
                let m =
                    self.fetch_manifest(up, up_repo, &ds).await?.ok_or(ProxyError::NotFound(ds.clone()))?;
                Ok(ManifestSource::Upstream { manifest: m, cache: Some(ds) })
            }
            Reference::Tag(t) => {
                let cached = local_head(local, local_repo, t).await;
                let head = {
                    let _slot = self.slot().await?;
                    up.head_manifest(up_repo, t).await
                };
                let current = match head {
                    Ok(Some(d)) => d,
                    Ok(None) => return Err(ProxyError::NotFound(format!("{up_repo}:{t}"))),
                    Err(e) => return stale_or(cached, up_repo, t, e),
                };
                if cached.as_ref().is_some_and(|c| c.digest == current.digest) {
                    return Ok(ManifestSource::Local);
                }
                if current.size > MAX_MANIFEST_SIZE as u64 {
                    return Err(ProxyError::TooLarge(current.size));
                }
                let cache = (!lock(&self.pending).contains_key(&(local_repo.to_string(), t.clone())))
                    .then(|| t.clone());
                if let Some(m) = self.pending_by_digest(local_repo, &current.digest) {
                    return Ok(ManifestSource::Upstream { manifest: m, cache });
                }
                match self.fetch_manifest(up, up_repo, &current.digest.to_string()).await {
                    Ok(Some(m)) => Ok(ManifestSource::Upstream { manifest: m, cache }),
                    // Gone between the HEAD and the GET (the tag moved and the old digest was
                    // deleted): the client retries and gets the new one.
                    Ok(None) => Err(ProxyError::NotFound(format!("{up_repo}:{t}"))),
                    Err(ProxyError::Upstream(e)) => stale_or(cached, up_repo, t, e),
                    Err(e) => Err(e),
                }
            }
        }
    }

    async fn fetch_manifest(
        &self,
        up: &dyn Content,
        up_repo: &str,
        reference: &str,
    ) -> Result<Option<Manifest>, ProxyError> {
        let _slot = self.slot().await?;
        match up.get_manifest(up_repo, reference).await {
            Ok(Some(m)) if m.bytes.len() > MAX_MANIFEST_SIZE => {
                Err(ProxyError::TooLarge(m.bytes.len() as u64))
            }
            Ok(m) => Ok(m),
            Err(ContentError::NotFound(_)) => Ok(None),
            Err(e) => Err(ProxyError::Upstream(e)),
        }
    }

    /// Stores `m` under `reference` in `local_repo` once everything it references is local
    /// (see the module doc); true when it was stored.
    pub async fn cache_manifest(
        self: &Arc<Self>,
        up: Arc<dyn Content>,
        local: Arc<dyn Content>,
        up_repo: &str,
        local_repo: &str,
        reference: &str,
        m: Manifest,
    ) -> bool {
        let key = (local_repo.to_string(), reference.to_string());
        {
            let mut pending = lock(&self.pending);
            let held: usize = pending.values().map(|p| p.bytes.len()).sum();
            if pending.contains_key(&key) || held + m.bytes.len() > MAX_PENDING_BYTES {
                return false;
            }
            pending.insert(key.clone(), m.clone());
        }
        let stored = self.cache_manifest_now(&up, &local, up_repo, local_repo, reference, &m).await;
        lock(&self.pending).remove(&key);
        match &stored {
            Ok(()) => {
                tracing::info!(repository = local_repo, reference, digest = %m.digest, "proxy cache: manifest cached")
            }
            Err(e) => {
                tracing::warn!(repository = local_repo, reference, digest = %m.digest, error = %e, "proxy cache: manifest not cached")
            }
        }
        stored.is_ok()
    }

    async fn cache_manifest_now(
        self: &Arc<Self>,
        up: &Arc<dyn Content>,
        local: &Arc<dyn Content>,
        up_repo: &str,
        local_repo: &str,
        reference: &str,
        m: &Manifest,
    ) -> Result<(), String> {
        let parsed =
            manifest::parse(Some(&m.media_type), &m.bytes).map_err(|e| format!("unparsable: {e}"))?;
        let started = Instant::now();
        for child in &parsed.manifests {
            let d = child.digest.to_string();
            let mut pause = Duration::from_millis(200);
            while local_head(local.as_ref(), local_repo, &d).await.is_none() {
                if started.elapsed() > INDEX_WAIT {
                    return Err(format!("child {d} was not pulled within {INDEX_WAIT:?}"));
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
        for b in &parsed.blobs {
            self.ensure_blob(up, local, up_repo, local_repo, &b.digest, started).await?;
        }
        local.put_manifest(local_repo, reference, m).await.map_err(|e| e.to_string())
    }

    /// Makes sure `local_repo` has a blob: waits for a client's fetch of it, and after
    /// `BLOB_GRACE` since `since` fetches it itself.
    async fn ensure_blob(
        self: &Arc<Self>,
        up: &Arc<dyn Content>,
        local: &Arc<dyn Content>,
        up_repo: &str,
        local_repo: &str,
        digest: &Digest,
        since: Instant,
    ) -> Result<(), String> {
        loop {
            if matches!(local.blob_exists(local_repo, digest).await, Ok(Some(_))) {
                return Ok(());
            }
            if self.follow(local_repo, digest).await {
                continue;
            }
            if since.elapsed() < BLOB_GRACE {
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            let Some(leader) = self.lead(local_repo, digest) else { continue };
            let _slot = self.slot().await.map_err(|e| e.to_string())?;
            let (size, stream) =
                up.get_blob(up_repo, digest).await.map_err(|e| format!("blob {digest}: {e}"))?;
            let stored = local.put_blob(local_repo, digest, size, stream).await;
            drop(leader);
            return stored.map_err(|e| format!("blob {digest}: {e}"));
        }
    }

    /// Waits for another request's fetch of this blob, if there is one; true when it waited.
    async fn follow(&self, repo: &str, digest: &Digest) -> bool {
        let rx = lock(&self.inflight).get(&format!("{repo}@{digest}")).cloned();
        let Some(mut rx) = rx else { return false };
        // Ends when the leader's sender is dropped (`changed` then fails) or the wait times out.
        let _ = tokio::time::timeout(FOLLOW_WAIT, rx.changed()).await;
        true
    }

    /// Becomes the one request fetching this blob; `None` when another one is.
    fn lead(self: &Arc<Self>, repo: &str, digest: &Digest) -> Option<Leader> {
        let key = format!("{repo}@{digest}");
        let mut inflight = lock(&self.inflight);
        if inflight.contains_key(&key) {
            return None;
        }
        let (tx, rx) = watch::channel(());
        inflight.insert(key.clone(), rx);
        Some(Leader { cache: self.clone(), key, _done: tx })
    }

    /// Answers a blob pull the local side could not: waits for a fetch in progress, else
    /// streams the blob from upstream while storing it (see the module doc).
    pub async fn blob(
        self: &Arc<Self>,
        up: Arc<dyn Content>,
        local: Arc<dyn Content>,
        up_repo: &str,
        local_repo: &str,
        digest: &Digest,
    ) -> Result<BlobSource, ProxyError> {
        loop {
            if self.follow(local_repo, digest).await {
                if matches!(local.blob_exists(local_repo, digest).await, Ok(Some(_))) {
                    return Ok(BlobSource::Local);
                }
                continue;
            }
            let Some(leader) = self.lead(local_repo, digest) else { continue };
            // The leader may have finished between our local check and `lead`.
            if matches!(local.blob_exists(local_repo, digest).await, Ok(Some(_))) {
                return Ok(BlobSource::Local);
            }
            let slot = self.slot().await?;
            let (size, upstream) = match up.get_blob(up_repo, digest).await {
                Ok(b) => b,
                Err(ContentError::NotFound(_)) => return Err(ProxyError::NotFound(digest.to_string())),
                Err(e) => return Err(ProxyError::Upstream(e)),
            };
            let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(TEE_CHUNKS);
            let into_store: ByteStream =
                futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) }).boxed();
            let (repo, d) = (local_repo.to_string(), digest.clone());
            tokio::spawn(async move {
                match local.put_blob(&repo, &d, size, into_store).await {
                    Ok(()) => {
                        tracing::info!(repository = repo, digest = %d, size, "proxy cache: blob cached")
                    }
                    Err(e) => {
                        tracing::info!(repository = repo, digest = %d, error = %e, "proxy cache: blob not cached")
                    }
                }
                // The followers look again once the store has ended; the slot covered the
                // upstream stream, which ended before the store did.
                drop((leader, slot));
            });
            return Ok(BlobSource::Upstream { size, stream: tee(upstream, tx) });
        }
    }
}

/// The client's side of the tee: yields the upstream's chunks and sends each into the store
/// first (waiting while the store's buffer is full). A store that failed is left behind; an
/// upstream error ends both.
fn tee(upstream: ByteStream, tx: mpsc::Sender<std::io::Result<Bytes>>) -> ByteStream {
    futures::stream::unfold((upstream, Some(tx), false), |(mut up, mut tx, ended)| async move {
        if ended {
            return None;
        }
        match up.next().await {
            Some(Ok(chunk)) => {
                if let Some(t) = &tx {
                    if t.send(Ok(chunk.clone())).await.is_err() {
                        tx = None;
                    }
                }
                Some((Ok(chunk), (up, tx, false)))
            }
            Some(Err(e)) => {
                if let Some(t) = &tx {
                    let _ = t.send(Err(std::io::Error::new(e.kind(), e.to_string()))).await;
                }
                Some((Err(e), (up, None, true)))
            }
            None => None,
        }
    })
    .boxed()
}

/// The local copy's descriptor; a local side that fails counts as no copy (logged).
async fn local_head(local: &dyn Content, repo: &str, reference: &str) -> Option<Descriptor> {
    match local.head_manifest(repo, reference).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(repository = repo, reference, error = %e, "proxy cache: reading the local copy failed");
            None
        }
    }
}

/// The local copy when there is one (the upstream failed: logged), else the upstream's error.
fn stale_or(
    cached: Option<Descriptor>,
    up_repo: &str,
    tag: &str,
    e: ContentError,
) -> Result<ManifestSource, ProxyError> {
    match cached {
        Some(c) => {
            tracing::warn!(upstream = up_repo, tag, digest = %c.digest, error = %e, "proxy cache: upstream failed, serving the cached copy");
            Ok(ManifestSource::Local)
        }
        None => Err(ProxyError::Upstream(e)),
    }
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;

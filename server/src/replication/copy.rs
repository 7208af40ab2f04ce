//! Copying one artifact between two registries (any two `Content`s: local ↔ remote, remote ↔
//! remote, local ↔ local).
//!
//! What a copy does, in order:
//! 1. **HEAD the destination first**: when its reference already resolves to the source's
//!    digest the artifact is `unchanged` and nothing is transferred (only its referrers are
//!    compared, see 5) — what makes re-replicating an unchanged set take seconds. Another
//!    digest there and `override_existing` off: `skipped_existing`.
//! 2. **Gather** the manifests to push, children before their index (recursively, each once);
//!    a child the destination already has is not descended into.
//! 3. **Blobs** of all those manifests, deduplicated, `parallel_blobs` at a time: present on
//!    the destination (`blob_exists`) → nothing; same registry (`registry_key`) → mounted from
//!    the source repository; else streamed `get_blob` → `put_blob` (the destination verifies
//!    digest and size), retried on `ContentError::Transient`. Non-distributable (foreign)
//!    layers are not copied. `chunk_size` is the destination's concern (a `RemoteRegistry`
//!    built with it uploads in chunks); the copy streams each blob once either way.
//! 4. **Manifests**, children by digest, then the top one under the destination reference.
//! 5. **Referrers** (`with_referrers`): for every manifest pushed (and the top one when
//!    unchanged), the source's referrers the destination lacks are copied after their subject,
//!    by digest, and theirs in turn (a signature of an SBOM).
//!
//! **Bandwidth** (`speed_kib`): one token bucket for the whole copy, shared by the parallel
//! streams; a stream waits before handing on bytes it has no budget for. **Stopping**:
//! `should_stop` is asked between blobs and manifests and, while blobs stream, every
//! `TICK` (with the bytes transferred meanwhile reported through `transferred`); a stopped copy
//! ends with `ContentError::Other("stopped")` and pushes no further manifest. Errors name the
//! digest and repositories; nothing here panics.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

use crate::registry::digest::Digest;
use crate::registry::manifest::{self, Parsed};
use crate::storage::ByteStream;

use super::content::{Content, ContentError, ContentResult, Descriptor, Manifest};

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
    /// one streamed upload per blob. Read by whoever builds the destination's `RemoteRegistry`;
    /// `copy_artifact` itself streams every blob once either way.
    pub chunk_size: Option<u64>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            parallel_blobs: 4,
            speed_kib: 0,
            override_existing: true,
            with_referrers: true,
            chunk_size: None,
        }
    }
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
    /// Asked between blobs and manifests and every `TICK` while blobs stream: keep it cheap.
    fn should_stop(&self) -> bool;
}

/// One end of a copy: a registry, a repository in it and a reference (a tag, or a digest).
#[derive(Clone, Copy)]
pub struct Side<'a> {
    pub content: &'a dyn Content,
    pub repo: &'a str,
    pub reference: &'a str,
}

/// How often progress is reported and `should_stop` asked while blobs stream.
pub const TICK: Duration = Duration::from_millis(200);
/// Tries of one operation that fails with `ContentError::Transient`.
const ATTEMPTS: u32 = 4;
/// The first pause before a retry; doubled each time.
const BACKOFF: Duration = Duration::from_millis(500);
/// A rate-limited stream hands on at most this much at a time.
const LIMITED_PIECE: usize = 64 * 1024;
/// How far ahead of the rate a limited copy may run (a short burst).
const BURST: Duration = Duration::from_millis(50);

/// Copies `src` to `dst` (whose reference is a tag, or the digest for an untagged artifact):
/// an index with every child, each manifest's blobs (HEAD first, mounted when both sides are
/// the same registry), then the manifests bottom-up, then (optionally) referrers with their
/// subjects. See the module documentation for the details.
pub async fn copy_artifact(
    src: Side<'_>,
    dst: Side<'_>,
    opts: &CopyOptions,
    observer: &dyn CopyObserver,
) -> ContentResult<CopyReport> {
    let shared = Arc::new(Shared::default());
    let limiter = (opts.speed_kib > 0).then(|| Arc::new(RateLimiter::new(opts.speed_kib * 1024)));
    let run = Run {
        src,
        dst,
        opts,
        observer,
        same_registry: src.content.registry_key() == dst.content.registry_key(),
        shared: shared.clone(),
        limiter,
    };
    let flush = |shared: &Shared| {
        let n = shared.bytes.swap(0, Ordering::Relaxed);
        if n > 0 {
            observer.transferred(n);
        }
    };
    let ticker = async {
        loop {
            tokio::time::sleep(TICK).await;
            flush(&shared);
            if observer.should_stop() {
                shared.stop.store(true, Ordering::Relaxed);
            }
        }
    };
    let work = run.artifact();
    let result = match futures::future::select(Box::pin(work), Box::pin(ticker)).await {
        futures::future::Either::Left((r, _)) => r,
        futures::future::Either::Right(((), _)) => {
            Err(ContentError::Other("the progress ticker ended".into()))
        }
    };
    flush(&shared);
    result
}

/// State the streams of a copy share with it (they outlive the borrows of `Run`).
#[derive(Default)]
struct Shared {
    /// Bytes streamed since the last report to the observer.
    bytes: AtomicU64,
    /// The observer asked to stop, or one transfer failed: streams fail at their next chunk.
    stop: AtomicBool,
}

/// A token bucket in GCRA form: each chunk moves the theoretical arrival time on by its share
/// of the rate, and waits until that time (less `BURST`).
struct RateLimiter {
    bytes_per_sec: f64,
    tat: Mutex<Option<Instant>>,
}

impl RateLimiter {
    fn new(bytes_per_sec: u64) -> RateLimiter {
        RateLimiter { bytes_per_sec: bytes_per_sec.max(1) as f64, tat: Mutex::new(None) }
    }

    /// How long to wait before handing on `n` more bytes.
    fn delay(&self, n: usize, now: Instant) -> Duration {
        let mut tat = self.tat.lock().unwrap_or_else(|p| p.into_inner());
        let start = tat.map_or(now, |t| t.max(now));
        let next = start + Duration::from_secs_f64(n as f64 / self.bytes_per_sec);
        *tat = Some(next);
        next.saturating_duration_since(now + BURST)
    }
}

/// What happened to one blob.
enum BlobOutcome {
    Present,
    Mounted,
    Copied(u64),
}

/// A manifest read from the source, to be pushed.
struct Gathered {
    manifest: Manifest,
    parsed: Parsed,
    /// False when the destination already has it: pushed again (cheap) but its blobs and
    /// children are not looked at.
    needs_content: bool,
}

struct Run<'a> {
    src: Side<'a>,
    dst: Side<'a>,
    opts: &'a CopyOptions,
    observer: &'a dyn CopyObserver,
    same_registry: bool,
    shared: Arc<Shared>,
    limiter: Option<Arc<RateLimiter>>,
}

fn stopped() -> ContentError {
    ContentError::Other("stopped".into())
}

/// `e` with `context` in front of its message, of the same kind.
fn context(e: ContentError, context: &str) -> ContentError {
    use ContentError::*;
    match e {
        NotFound(m) => NotFound(format!("{context}: {m}")),
        Unauthorized(m) => Unauthorized(format!("{context}: {m}")),
        Denied(m) => Denied(format!("{context}: {m}")),
        Invalid(m) => Invalid(format!("{context}: {m}")),
        Transient(m) => Transient(format!("{context}: {m}")),
        Other(m) if m == "stopped" => Other(m),
        Other(m) => Other(format!("{context}: {m}")),
    }
}

/// `n` bytes for a log line (`1.5 MiB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl Run<'_> {
    /// True (and from then on) once the observer asked to stop.
    fn stopping(&self) -> bool {
        if self.shared.stop.load(Ordering::Relaxed) {
            return true;
        }
        let stop = self.observer.should_stop();
        if stop {
            self.shared.stop.store(true, Ordering::Relaxed);
        }
        stop
    }

    fn check_stop(&self) -> ContentResult<()> {
        if self.stopping() {
            Err(stopped())
        } else {
            Ok(())
        }
    }

    /// Runs `op` again on a transient error, with backoff, unless the copy is stopping.
    async fn retry<T, F, Fut>(&self, what: &str, mut op: F) -> ContentResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ContentResult<T>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Err(e) if e.is_transient() && self.stopping() => return Err(stopped()),
                Err(e) if e.is_transient() && attempt + 1 < ATTEMPTS => {
                    let wait = BACKOFF * 2u32.pow(attempt);
                    self.observer.log(format!("{what}: {e}; retrying in {:.1} s", wait.as_secs_f64()));
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                r => return r.map_err(|e| context(e, what)),
            }
        }
    }

    async fn artifact(&self) -> ContentResult<CopyReport> {
        let (src, dst) = (self.src, self.dst);
        let mut report = CopyReport::default();
        self.check_stop()?;
        let what = format!("{}:{} (source)", src.repo, src.reference);
        let top = self
            .retry(&what, || src.content.head_manifest(src.repo, src.reference))
            .await?
            .ok_or_else(|| ContentError::NotFound(format!("{what}: no such manifest")))?;
        report.digest = Some(top.digest.clone());
        if dst.reference.contains(':') && dst.reference != top.digest.to_string() {
            return Err(ContentError::Invalid(format!(
                "the destination reference {} is a digest other than the source's {}",
                dst.reference, top.digest
            )));
        }
        let what = format!("{}:{} (destination)", dst.repo, dst.reference);
        let existing = self.retry(&what, || dst.content.head_manifest(dst.repo, dst.reference)).await?;
        let mut done: HashSet<Digest> = HashSet::new();
        match existing {
            Some(d) if d.digest == top.digest => {
                self.observer
                    .log(format!("{}:{} is {} already: unchanged", dst.repo, dst.reference, top.digest));
                report.unchanged = true;
                if self.opts.with_referrers {
                    done.insert(top.digest.clone());
                    self.referrers(vec![top.digest.clone()], &mut done, &mut report).await?;
                    report.unchanged = report.manifests == 0;
                }
                return Ok(report);
            }
            Some(d) if !self.opts.override_existing => {
                self.observer.log(format!(
                    "{}:{} is {} on the destination, not {}; override is off: skipped",
                    dst.repo, dst.reference, d.digest, top.digest
                ));
                report.skipped_existing = true;
                return Ok(report);
            }
            _ => {}
        }
        let pushed = self.tree(&top.digest, dst.reference, &mut done, &mut report).await?;
        if self.opts.with_referrers {
            self.referrers(pushed, &mut done, &mut report).await?;
        }
        Ok(report)
    }

    /// Copies the manifest `root` with its children and blobs and pushes it under `reference`;
    /// returns the digests of the manifests pushed.
    async fn tree(
        &self,
        root: &Digest,
        reference: &str,
        done: &mut HashSet<Digest>,
        report: &mut CopyReport,
    ) -> ContentResult<Vec<Digest>> {
        let gathered = self.gather(root, done).await?;
        // Blobs of every manifest to push, each once.
        let mut seen = HashSet::new();
        let mut blobs: Vec<manifest::Descriptor> = vec![];
        for g in gathered.iter().filter(|g| g.needs_content) {
            for b in &g.parsed.blobs {
                if seen.insert(b.digest.clone()) {
                    blobs.push(b.clone());
                }
            }
            for b in &g.parsed.external_blobs {
                self.observer
                    .log(format!("blob {} ({}) is non-distributable: not copied", b.digest, b.media_type));
            }
        }
        let parallel = self.opts.parallel_blobs.max(1);
        // Owned descriptors: a closure over `&Descriptor` makes the future's `Send` proof
        // higher-ranked, which `async_trait` callers (the connector) cannot satisfy.
        let mut results = futures::stream::iter(blobs)
            .map(|b| async move { self.blob(&b).await })
            .buffer_unordered(parallel);
        // The first failure stops the other transfers at their next chunk, and they are
        // drained rather than dropped: a dropped transfer could be cut off inside a database
        // statement, and its upload session would outlive the copy's answer.
        let mut failed = None;
        while let Some(outcome) = results.next().await {
            match outcome {
                Err(e) => {
                    self.shared.stop.store(true, Ordering::Relaxed);
                    failed.get_or_insert(e);
                }
                Ok(_) if failed.is_some() => {}
                Ok(BlobOutcome::Present) => report.blobs_present += 1,
                Ok(BlobOutcome::Mounted) => report.blobs_mounted += 1,
                Ok(BlobOutcome::Copied(n)) => {
                    report.blobs_copied += 1;
                    report.bytes += n;
                }
            }
        }
        drop(results);
        if let Some(e) = failed {
            return Err(e);
        }
        let mut pushed = vec![];
        for g in &gathered {
            self.check_stop()?;
            let d = &g.manifest.digest;
            let digest_ref = d.to_string();
            let r = if d == root { reference } else { digest_ref.as_str() };
            let what = format!("pushing manifest {d} to {}:{r}", self.dst.repo);
            self.retry(&what, || self.dst.content.put_manifest(self.dst.repo, r, &g.manifest)).await?;
            report.manifests += 1;
            self.observer.log(format!(
                "manifest {d} ({}, {}) pushed to {}:{r}",
                g.manifest.media_type,
                human_bytes(g.manifest.bytes.len() as u64),
                self.dst.repo
            ));
            pushed.push(d.clone());
        }
        Ok(pushed)
    }

    /// The manifests under `root` to push, children before their parents, each once; `done`
    /// gains them all.
    async fn gather(&self, root: &Digest, done: &mut HashSet<Digest>) -> ContentResult<Vec<Gathered>> {
        let mut out = vec![];
        done.insert(root.clone());
        let first = self.fetch(root).await?;
        // The destination has the root already (under another tag, or by digest): it only
        // needs the reference.
        let root_there = self.dst_has(root).await?;
        if root_there {
            out.push(Gathered { manifest: first.0, parsed: first.1, needs_content: false });
            return Ok(out);
        }
        // Depth first, post-order: (manifest, parsed, next child to look at).
        let mut stack: Vec<(Manifest, Parsed, usize)> = vec![(first.0, first.1, 0)];
        while let Some(top) = stack.last_mut() {
            let Some(child) = top.1.manifests.get(top.2).map(|c| c.digest.clone()) else {
                if let Some((manifest, parsed, _)) = stack.pop() {
                    out.push(Gathered { manifest, parsed, needs_content: true });
                }
                continue;
            };
            top.2 += 1;
            if !done.insert(child.clone()) {
                continue;
            }
            self.check_stop()?;
            if self.dst_has(&child).await? {
                self.observer.log(format!("manifest {child} is on the destination already"));
                continue;
            }
            let (m, p) = self.fetch(&child).await?;
            stack.push((m, p, 0));
        }
        Ok(out)
    }

    /// A source manifest by digest, parsed.
    async fn fetch(&self, digest: &Digest) -> ContentResult<(Manifest, Parsed)> {
        let src = self.src;
        let what = format!("manifest {digest} in {} (source)", src.repo);
        let r = digest.to_string();
        let m = self
            .retry(&what, || src.content.get_manifest(src.repo, &r))
            .await?
            .ok_or_else(|| ContentError::NotFound(format!("{what}: no such manifest")))?;
        if &m.digest != digest {
            return Err(ContentError::Invalid(format!("{what}: the source answered with {}", m.digest)));
        }
        let parsed = manifest::parse(Some(&m.media_type), &m.bytes)
            .map_err(|e| ContentError::Invalid(format!("{what}: {e}")))?;
        Ok((m, parsed))
    }

    async fn dst_has(&self, digest: &Digest) -> ContentResult<bool> {
        let dst = self.dst;
        let r = digest.to_string();
        let what = format!("manifest {digest} in {} (destination)", dst.repo);
        Ok(self.retry(&what, || dst.content.head_manifest(dst.repo, &r)).await?.is_some())
    }

    /// Copies the referrers of `subjects` (and theirs) that the destination lacks.
    async fn referrers(
        &self,
        subjects: Vec<Digest>,
        done: &mut HashSet<Digest>,
        report: &mut CopyReport,
    ) -> ContentResult<()> {
        let mut queue: VecDeque<Digest> = subjects.into();
        while let Some(subject) = queue.pop_front() {
            self.check_stop()?;
            let src = self.src;
            let what = format!("referrers of {}@{subject} (source)", src.repo);
            let found: Vec<Descriptor> =
                self.retry(&what, || src.content.referrers(src.repo, &subject)).await?;
            for r in found {
                if done.contains(&r.digest) {
                    continue;
                }
                if self.dst_has(&r.digest).await? {
                    done.insert(r.digest.clone());
                    continue;
                }
                self.observer.log(format!(
                    "referrer {} ({}) of {subject}",
                    r.digest,
                    r.artifact_type.as_deref().unwrap_or(&r.media_type)
                ));
                let pushed = self.tree(&r.digest, &r.digest.to_string(), done, report).await?;
                queue.extend(pushed);
            }
        }
        Ok(())
    }

    /// One blob onto the destination: present, mounted or streamed.
    async fn blob(&self, b: &manifest::Descriptor) -> ContentResult<BlobOutcome> {
        let (src, dst) = (self.src, self.dst);
        let d = &b.digest;
        self.check_stop()?;
        let what = format!("blob {d} in {} (destination)", dst.repo);
        if self.retry(&what, || dst.content.blob_exists(dst.repo, d)).await?.is_some() {
            self.observer.log(format!("blob {d} ({}) present", human_bytes(b.size)));
            return Ok(BlobOutcome::Present);
        }
        if self.same_registry && src.repo != dst.repo {
            let what = format!("mounting blob {d} from {} to {}", src.repo, dst.repo);
            if self.retry(&what, || dst.content.mount_blob(src.repo, dst.repo, d)).await? {
                self.observer.log(format!("blob {d} ({}) mounted from {}", human_bytes(b.size), src.repo));
                return Ok(BlobOutcome::Mounted);
            }
        }
        let what = format!("copying blob {d} from {} to {}", src.repo, dst.repo);
        let mut attempt = 0;
        loop {
            self.check_stop()?;
            match self.transfer(b).await {
                Ok(n) => return Ok(BlobOutcome::Copied(n)),
                Err(_) if self.stopping() => return Err(stopped()),
                Err(e) if e.is_transient() && attempt + 1 < ATTEMPTS => {
                    let wait = BACKOFF * 2u32.pow(attempt);
                    self.observer.log(format!("{what}: {e}; retrying in {:.1} s", wait.as_secs_f64()));
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(context(e, &what)),
            }
        }
    }

    /// Streams one blob from the source to the destination; returns its size.
    async fn transfer(&self, b: &manifest::Descriptor) -> ContentResult<u64> {
        let (src, dst) = (self.src, self.dst);
        let d = &b.digest;
        let started = Instant::now();
        let (size, data) = src.content.get_blob(src.repo, d).await?;
        if size != b.size {
            return Err(ContentError::Invalid(format!(
                "the source has {size} bytes, the manifest says {}",
                b.size
            )));
        }
        let data = metered(data, self.shared.clone(), self.limiter.clone());
        dst.content.put_blob(dst.repo, d, size, data).await?;
        let secs = started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { human_bytes((size as f64 / secs) as u64) } else { "-".into() };
        self.observer.log(format!("blob {d} ({}) copied in {secs:.2} s ({rate}/s)", human_bytes(size)));
        Ok(size)
    }
}

/// `data` counted into `shared.bytes`, failing once the copy is stopping, and held to the
/// rate of `limiter` (in pieces of at most `LIMITED_PIECE`, so one large chunk does not make a
/// long burst followed by a long pause).
fn metered(data: ByteStream, shared: Arc<Shared>, limiter: Option<Arc<RateLimiter>>) -> ByteStream {
    let pieces: ByteStream = match &limiter {
        None => data,
        Some(_) => Box::pin(data.flat_map(|item| {
            let pieces: Vec<std::io::Result<Bytes>> = match item {
                Ok(chunk) if chunk.len() > LIMITED_PIECE => (0..chunk.len())
                    .step_by(LIMITED_PIECE)
                    .map(|at| Ok(chunk.slice(at..(at + LIMITED_PIECE).min(chunk.len()))))
                    .collect(),
                other => vec![other],
            };
            futures::stream::iter(pieces)
        })),
    };
    Box::pin(pieces.then(move |item| {
        let (shared, limiter) = (shared.clone(), limiter.clone());
        async move {
            let chunk = item?;
            if shared.stop.load(Ordering::Relaxed) {
                return Err(std::io::Error::other("stopped"));
            }
            if let Some(l) = limiter {
                let wait = l.delay(chunk.len(), Instant::now());
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
            shared.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            Ok(chunk)
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_spaces_bytes_at_its_rate() {
        let l = RateLimiter::new(1000);
        let t0 = Instant::now();
        // Within the burst: no wait.
        assert_eq!(l.delay(50, t0), Duration::ZERO);
        // 1000 bytes more: due at 1.05 s, waits until 1.0 s (burst 50 ms).
        assert_eq!(l.delay(1000, t0), Duration::from_millis(1000));
        // Later, after the budget caught up: the clock restarts from now.
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(l.delay(10, t1), Duration::ZERO);
    }

    #[test]
    fn errors_keep_their_kind_with_context() {
        let e = context(ContentError::Transient("503".into()), "blob x");
        assert!(e.is_transient());
        assert_eq!(e.to_string(), "temporarily unavailable: blob x: 503");
        assert_eq!(context(stopped(), "blob x").to_string(), "stopped");
        assert!(
            matches!(context(ContentError::Invalid("d".into()), "m"), ContentError::Invalid(m) if m == "m: d")
        );
    }

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }

    #[tokio::test]
    async fn a_metered_stream_counts_splits_and_stops() {
        let shared = Arc::new(Shared::default());
        let data: ByteStream =
            Box::pin(futures::stream::iter(vec![Ok(Bytes::from(vec![7u8; 3 * LIMITED_PIECE + 5]))]));
        let limiter = Some(Arc::new(RateLimiter::new(u64::MAX / 2)));
        let got: Vec<Bytes> = metered(data, shared.clone(), limiter).map(|c| c.unwrap()).collect().await;
        assert_eq!(
            got.iter().map(Bytes::len).collect::<Vec<_>>(),
            [LIMITED_PIECE, LIMITED_PIECE, LIMITED_PIECE, 5]
        );
        assert_eq!(shared.bytes.load(Ordering::Relaxed), 3 * LIMITED_PIECE as u64 + 5);

        shared.stop.store(true, Ordering::Relaxed);
        let data: ByteStream = Box::pin(futures::stream::iter(vec![Ok(Bytes::from_static(b"x"))]));
        let mut s = metered(data, shared, None);
        assert!(s.next().await.unwrap().is_err());
    }
}

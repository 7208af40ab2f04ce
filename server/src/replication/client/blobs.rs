//! Blobs: `HEAD` for presence, a streamed download verified while it streams (`Verified`),
//! a streamed upload (`POST` then one `PUT` with the body, or `PATCH` chunks of
//! `chunk_size` then a closing `PUT`; `ChunkBody` cuts the source stream into request bodies
//! without buffering a chunk) and cross-repository mounts.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::Stream;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};
use sha2::{Digest as _, Sha256, Sha512};
use url::Url;

use super::{check_repo, content_error, pull_scope, push_scope, RemoteRegistry};
use crate::registry::digest::{hex, Algorithm, Digest};
use crate::replication::content::{ContentError, ContentResult};
use crate::storage::ByteStream;

enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    fn new(a: Algorithm) -> Hasher {
        match a {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }
    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }
    fn finish(&mut self) -> Digest {
        match self {
            Hasher::Sha256(h) => {
                Digest { algorithm: Algorithm::Sha256, hex: hex(&std::mem::take(h).finalize()) }
            }
            Hasher::Sha512(h) => {
                Digest { algorithm: Algorithm::Sha512, hex: hex(&std::mem::take(h).finalize()) }
            }
        }
    }
}

fn io_err(kind: std::io::ErrorKind, e: ContentError) -> std::io::Error {
    std::io::Error::new(kind, e)
}

/// A download that hashes and counts while it streams and ends with an error instead of its
/// end when the bytes do not match the digest and size; a pause longer than `idle` fails it.
struct Verified {
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    hasher: Hasher,
    expected: Digest,
    size: u64,
    seen: u64,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    label: String,
    polled: bool,
    done: bool,
}

impl Stream for Verified {
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if !this.polled {
            // The pause limit counts from the first read, not from the request.
            this.polled = true;
            this.timer.as_mut().reset(tokio::time::Instant::now() + this.idle);
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                this.seen += b.len() as u64;
                if this.seen > this.size {
                    this.done = true;
                    let e = ContentError::Invalid(format!(
                        "{}: more than the {} bytes announced",
                        this.label, this.size
                    ));
                    return Poll::Ready(Some(Err(io_err(std::io::ErrorKind::InvalidData, e))));
                }
                this.hasher.update(&b);
                this.timer.as_mut().reset(tokio::time::Instant::now() + this.idle);
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                let e = ContentError::Transient(format!("{}: the download broke off: {e}", this.label));
                Poll::Ready(Some(Err(io_err(std::io::ErrorKind::ConnectionAborted, e))))
            }
            Poll::Ready(None) => {
                this.done = true;
                if this.seen != this.size {
                    let e = ContentError::Invalid(format!(
                        "{}: the download ended after {} of {} bytes",
                        this.label, this.seen, this.size
                    ));
                    return Poll::Ready(Some(Err(io_err(std::io::ErrorKind::InvalidData, e))));
                }
                let got = this.hasher.finish();
                if got != this.expected {
                    let e = ContentError::Invalid(format!(
                        "{}: digest mismatch: the bytes received hash to {got}",
                        this.label
                    ));
                    return Poll::Ready(Some(Err(io_err(std::io::ErrorKind::InvalidData, e))));
                }
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.timer.as_mut().poll(cx).is_ready() {
                    this.done = true;
                    let e = ContentError::Transient(format!("{}: no data for {:?}", this.label, this.idle));
                    return Poll::Ready(Some(Err(io_err(std::io::ErrorKind::TimedOut, e))));
                }
                Poll::Pending
            }
        }
    }
}

/// The source of an upload, shared by the request bodies cut from it.
struct Source {
    stream: ByteStream,
    /// Bytes read from `stream` and not yet sent.
    pending: Option<Bytes>,
    /// Bytes read from `stream` so far.
    read: u64,
    size: u64,
    /// Why a body stopped (the source failed or did not have `size` bytes).
    failure: Option<ContentError>,
    last_progress: Instant,
}

type Shared = Arc<Mutex<Source>>;

/// The next `remaining` bytes of the source as a request body. The last body of an upload
/// reads the source to its end (a verifying source checks its digest there) before it gives
/// up its final bytes, so a bad source fails the request before the registry has the whole
/// blob.
struct ChunkBody {
    src: Shared,
    remaining: u64,
    last: bool,
    /// The final bytes, held until the source has ended.
    held: Option<Bytes>,
    finished: bool,
}

impl ChunkBody {
    fn new(src: Shared, remaining: u64, last: bool) -> ChunkBody {
        ChunkBody { src, remaining, last, held: None, finished: false }
    }

    fn fail(&mut self, src: &mut Source, e: ContentError) -> Poll<Option<std::io::Result<Bytes>>> {
        self.finished = true;
        src.failure.get_or_insert(e.clone());
        Poll::Ready(Some(Err(std::io::Error::other(e))))
    }
}

fn too_long(size: u64) -> ContentError {
    ContentError::Invalid(format!("the source has more than the {size} bytes announced"))
}

impl Stream for ChunkBody {
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        let src = this.src.clone();
        let mut src = src.lock().expect("upload source lock");
        loop {
            if this.remaining == 0 {
                if !this.last {
                    this.finished = true;
                    return Poll::Ready(None);
                }
                // The last body: the source must end here.
                if src.pending.as_ref().is_some_and(|p| !p.is_empty()) {
                    let e = too_long(src.size);
                    return this.fail(&mut src, e);
                }
                match ready!(src.stream.as_mut().poll_next(cx)) {
                    None => {
                        this.finished = true;
                        return Poll::Ready(this.held.take().map(Ok));
                    }
                    Some(Ok(b)) if b.is_empty() => continue,
                    Some(Ok(_)) => {
                        let e = too_long(src.size);
                        return this.fail(&mut src, e);
                    }
                    Some(Err(e)) => return this.fail(&mut src, content_error(&e)),
                }
            }
            let chunk = match src.pending.take() {
                Some(b) => b,
                None => match ready!(src.stream.as_mut().poll_next(cx)) {
                    None => {
                        let e = ContentError::Invalid(format!(
                            "the source ended after {} of {} bytes",
                            src.read, src.size
                        ));
                        return this.fail(&mut src, e);
                    }
                    Some(Err(e)) => return this.fail(&mut src, content_error(&e)),
                    Some(Ok(b)) => {
                        src.read += b.len() as u64;
                        if src.read > src.size {
                            let e = too_long(src.size);
                            return this.fail(&mut src, e);
                        }
                        b
                    }
                },
            };
            if chunk.is_empty() {
                continue;
            }
            let n = (chunk.len() as u64).min(this.remaining) as usize;
            let mut head = chunk;
            if n < head.len() {
                src.pending = Some(head.split_off(n));
            }
            this.remaining -= n as u64;
            src.last_progress = Instant::now();
            if this.remaining == 0 && this.last {
                this.held = Some(head);
                continue;
            }
            return Poll::Ready(Some(Ok(head)));
        }
    }
}

fn octet_stream() -> HeaderValue {
    HeaderValue::from_static("application/octet-stream")
}

/// `url` with `digest=` added to its query.
fn with_digest(mut url: Url, digest: &Digest) -> Url {
    url.query_pairs_mut().append_pair("digest", &digest.to_string());
    url
}

impl RemoteRegistry {
    pub(super) async fn blob_exists_impl(&self, repo: &str, digest: &Digest) -> ContentResult<Option<u64>> {
        check_repo(repo)?;
        let req = self.req(Method::HEAD, &format!("/v2/{repo}/blobs/{digest}"), vec![pull_scope(repo)])?;
        let resp = self.send(&req).await?;
        match resp.status() {
            // The size is what callers use (a proxied HEAD's Content-Length, a download's
            // expected length): a reply without one is no answer, never "0 bytes".
            StatusCode::OK => header_len(&resp).map(Some).ok_or_else(|| {
                ContentError::Invalid(format!(
                    "HEAD blob {digest} in {repo}: registry {:?} sent no Content-Length",
                    self.name
                ))
            }),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.status_error(resp, &format!("HEAD blob {digest} in {repo}")).await),
        }
    }

    pub(super) async fn get_blob_impl(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> ContentResult<(u64, ByteStream)> {
        check_repo(repo)?;
        let what = format!("blob {digest} of {repo} at registry {:?}", self.name);
        let mut req = self.req(Method::GET, &format!("/v2/{repo}/blobs/{digest}"), vec![pull_scope(repo)])?;
        req.timeout = None;
        let resp = self.send(&req).await?;
        if resp.status() != StatusCode::OK {
            return Err(self.status_error(resp, &format!("GET {what}")).await);
        }
        let size = match header_len(&resp) {
            Some(s) => s,
            None => self
                .blob_exists_impl(repo, digest)
                .await?
                .ok_or_else(|| ContentError::NotFound(format!("{what}: gone while downloading")))?,
        };
        let stream = Verified {
            inner: Box::pin(resp.bytes_stream()),
            hasher: Hasher::new(digest.algorithm),
            expected: digest.clone(),
            size,
            seen: 0,
            idle: self.timeout,
            timer: Box::pin(tokio::time::sleep(self.timeout)),
            label: what,
            polled: false,
            done: false,
        };
        Ok((size, Box::pin(stream)))
    }

    pub(super) async fn put_blob_impl(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        data: ByteStream,
    ) -> ContentResult<()> {
        check_repo(repo)?;
        let scopes = vec![push_scope(repo)];
        let what = format!("upload of blob {digest} to {repo}");
        let location = self.start_upload(repo, &scopes, &what).await?;
        let src: Shared = Arc::new(Mutex::new(Source {
            stream: data,
            pending: None,
            read: 0,
            size,
            failure: None,
            last_progress: Instant::now(),
        }));
        let mut current = location;
        let result = self.upload(&mut current, digest, size, &scopes, &src, &what).await;
        if result.is_err() {
            // Best effort: the registry would expire it anyway.
            let req = super::transport::Req::new(Method::DELETE, current, scopes.clone(), self.timeout);
            let _ = self.send(&req).await;
        }
        result
    }

    /// `POST /v2/<repo>/blobs/uploads/`: the upload's location.
    async fn start_upload(&self, repo: &str, scopes: &[String], what: &str) -> ContentResult<Url> {
        let req = self.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), scopes.to_vec())?;
        let resp = self.send(&req).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.status_error(resp, &format!("start of the {what}")).await);
        }
        self.location(&resp, what)
    }

    fn location(&self, resp: &Response, what: &str) -> ContentResult<Url> {
        let loc = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| {
            ContentError::Other(format!("{what}: registry {:?} sent no upload location", self.name))
        })?;
        self.resolve(loc)
    }

    async fn upload(
        &self,
        location: &mut Url,
        digest: &Digest,
        size: u64,
        scopes: &[String],
        src: &Shared,
        what: &str,
    ) -> ContentResult<()> {
        match self.chunk_size.filter(|c| size > *c) {
            None => {
                let url = with_digest(location.clone(), digest);
                let resp = self.send_body(Method::PUT, url, scopes, 0, size, true, src, what).await?;
                if resp.status() != StatusCode::CREATED {
                    return Err(self.status_error(resp, what).await);
                }
                Ok(())
            }
            Some(chunk) => {
                let mut offset = 0;
                while offset < size {
                    let n = chunk.min(size - offset);
                    let last = offset + n == size;
                    let resp = self
                        .send_body(Method::PATCH, location.clone(), scopes, offset, n, last, src, what)
                        .await?;
                    if !matches!(resp.status(), StatusCode::ACCEPTED | StatusCode::NO_CONTENT) {
                        return Err(self.status_error(resp, &format!("{what} (chunk at {offset})")).await);
                    }
                    *location = self.location(&resp, what)?;
                    offset += n;
                }
                let mut req = super::transport::Req::new(
                    Method::PUT,
                    with_digest(location.clone(), digest),
                    scopes.to_vec(),
                    self.timeout,
                );
                req.headers.insert(CONTENT_TYPE, octet_stream());
                let resp = self.send(&req).await?;
                if resp.status() != StatusCode::CREATED {
                    return Err(self.status_error(resp, &format!("{what} (closing PUT)")).await);
                }
                Ok(())
            }
        }
    }

    /// Sends `len` bytes of the source as the body of one request (not retried: the body is
    /// consumed). A stall longer than the timeout, in the body or waiting for the answer, fails
    /// it with `Transient`.
    #[allow(clippy::too_many_arguments)]
    async fn send_body(
        &self,
        method: Method,
        url: Url,
        scopes: &[String],
        offset: u64,
        len: u64,
        last: bool,
        src: &Shared,
        what: &str,
    ) -> ContentResult<Response> {
        let auth = self.authorization(scopes, &[], false).await?;
        let body = ChunkBody::new(src.clone(), len, last);
        let mut b = self
            .http
            .request(method.clone(), url.clone())
            .header(CONTENT_TYPE, octet_stream())
            .header(CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(body));
        if method == Method::PATCH {
            let range = format!("{offset}-{}", (offset + len).saturating_sub(1));
            b = b.header(CONTENT_RANGE, range);
        }
        if let Some(a) = auth {
            b = b.header(AUTHORIZATION, a);
        }
        src.lock().expect("upload source lock").last_progress = Instant::now();
        let idle = self.timeout;
        let watchdog = async {
            let tick = (idle / 4).max(Duration::from_millis(100));
            loop {
                tokio::time::sleep(tick).await;
                if src.lock().expect("upload source lock").last_progress.elapsed() > idle {
                    break;
                }
            }
        };
        let sent = tokio::select! {
            r = b.send() => r,
            _ = watchdog => {
                return Err(ContentError::Transient(format!(
                    "{what}: registry {:?} made no progress for {idle:?}",
                    self.name
                )));
            }
        };
        let failure = src.lock().expect("upload source lock").failure.clone();
        match sent {
            Err(e) => Err(failure.unwrap_or_else(|| self.transport_error(&e, &url))),
            Ok(_) if failure.is_some() => Err(failure.expect("checked")),
            Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                // The token ran out during the upload: a new one comes with the retry.
                self.forget_token(scopes);
                let e = self.status_error(resp, what).await;
                Err(ContentError::Transient(e.to_string()))
            }
            Ok(resp) => Ok(resp),
        }
    }

    pub(super) async fn mount_blob_impl(
        &self,
        from_repo: &str,
        repo: &str,
        digest: &Digest,
    ) -> ContentResult<bool> {
        check_repo(from_repo)?;
        check_repo(repo)?;
        let mut url = self.endpoint_url(&format!("/v2/{repo}/blobs/uploads/"))?;
        url.query_pairs_mut().append_pair("mount", &digest.to_string()).append_pair("from", from_repo);
        let scopes = vec![push_scope(repo), pull_scope(from_repo)];
        let req = super::transport::Req::new(Method::POST, url, scopes.clone(), self.timeout);
        let resp = self.send(&req).await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                // The registry opened an upload instead: cancel it, the caller copies.
                if let Ok(loc) = self.location(&resp, "mount") {
                    let req = super::transport::Req::new(Method::DELETE, loc, scopes, self.timeout);
                    let _ = self.send(&req).await;
                }
                Ok(false)
            }
            _ => Err(self
                .status_error(resp, &format!("mount of blob {digest} from {from_repo} into {repo}"))
                .await),
        }
    }
}

/// `Content-Length` as sent (reqwest's `content_length` is the body's, 0 for a HEAD).
pub(super) fn header_len(resp: &Response) -> Option<u64> {
    resp.headers().get(CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn source(parts: Vec<&'static [u8]>, size: u64) -> Shared {
        let s = futures::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p))));
        Arc::new(Mutex::new(Source {
            stream: Box::pin(s),
            pending: None,
            read: 0,
            size,
            failure: None,
            last_progress: Instant::now(),
        }))
    }

    async fn collect(src: &Shared, n: u64, last: bool) -> Result<Vec<u8>, String> {
        let mut body = ChunkBody::new(src.clone(), n, last);
        let mut out = vec![];
        while let Some(b) = body.next().await {
            out.extend_from_slice(&b.map_err(|e| e.to_string())?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn chunk_bodies_cut_the_source_without_losing_bytes() {
        let src = source(vec![b"abc", b"", b"defgh", b"ij"], 10);
        assert_eq!(collect(&src, 4, false).await.unwrap(), b"abcd");
        assert_eq!(collect(&src, 4, false).await.unwrap(), b"efgh");
        assert_eq!(collect(&src, 2, true).await.unwrap(), b"ij");
        assert!(src.lock().unwrap().failure.is_none());
    }

    #[tokio::test]
    async fn chunk_bodies_refuse_a_short_or_long_source() {
        let src = source(vec![b"abc"], 5);
        let e = collect(&src, 5, true).await.unwrap_err();
        assert!(e.contains("ended after 3 of 5"), "{e}");
        assert!(matches!(src.lock().unwrap().failure, Some(ContentError::Invalid(_))));

        let src = source(vec![b"abc", b"de"], 3);
        let e = collect(&src, 3, true).await.unwrap_err();
        assert!(e.contains("more than the 3 bytes"), "{e}");
        let src = source(vec![b"abcde"], 3);
        let e = collect(&src, 3, true).await.unwrap_err();
        assert!(e.contains("more than the 3 bytes"), "{e}");
    }

    fn verified(
        inner: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
        expected: Digest,
        size: u64,
        idle: Duration,
    ) -> Verified {
        Verified {
            inner: Box::pin(inner),
            hasher: Hasher::new(expected.algorithm),
            expected,
            size,
            seen: 0,
            idle,
            // Already expired: the limit must count from the first read.
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            label: "blob".into(),
            polled: false,
            done: false,
        }
    }

    #[tokio::test]
    async fn verified_download_times_out_on_a_pause_counted_from_the_first_read() {
        let slow = futures::stream::once(async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, reqwest::Error>(Bytes::from_static(b"hello"))
        });
        let mut v = verified(slow, Digest::sha256(b"hello"), 5, Duration::from_secs(5));
        assert_eq!(v.next().await.unwrap().unwrap(), Bytes::from_static(b"hello"));
        assert!(v.next().await.is_none());

        let stalled = futures::stream::pending::<reqwest::Result<Bytes>>();
        let mut v = verified(stalled, Digest::sha256(b"hello"), 5, Duration::from_millis(50));
        let e = v.next().await.unwrap().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(content_error(&e).is_transient());
        assert!(v.next().await.is_none());
    }

    #[tokio::test]
    async fn verified_download_fails_on_a_wrong_digest_or_size() {
        async fn run(data: &'static [u8], expected: Digest, size: u64) -> Result<Vec<u8>, std::io::Error> {
            let inner = futures::stream::iter(vec![Ok::<_, reqwest::Error>(Bytes::from_static(data))]);
            let mut v = Verified {
                inner: Box::pin(inner),
                hasher: Hasher::new(expected.algorithm),
                expected,
                size,
                seen: 0,
                idle: Duration::from_secs(5),
                timer: Box::pin(tokio::time::sleep(Duration::from_secs(5))),
                label: "blob".into(),
                polled: false,
                done: false,
            };
            let mut out = vec![];
            while let Some(b) = v.next().await {
                out.extend_from_slice(&b?);
            }
            Ok(out)
        }
        assert_eq!(run(b"hello", Digest::sha256(b"hello"), 5).await.unwrap(), b"hello");
        let sha512 = Digest::of(Algorithm::Sha512, b"hello");
        assert_eq!(run(b"hello", sha512, 5).await.unwrap(), b"hello");
        let e = run(b"hellO", Digest::sha256(b"hello"), 5).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(matches!(content_error(&e), ContentError::Invalid(m) if m.contains("digest mismatch")));
        let e = run(b"hello", Digest::sha256(b"hello"), 4).await.unwrap_err();
        assert!(content_error(&e).to_string().contains("more than the 4 bytes"), "{e}");
        let e = run(b"hello", Digest::sha256(b"hello"), 6).await.unwrap_err();
        assert!(content_error(&e).to_string().contains("ended after 5 of 6"), "{e}");
    }
}

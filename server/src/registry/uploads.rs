//! Blob uploads: POST (monolithic, mount), PATCH (chunked/streamed, under a lease), PUT
//! (close, exactly the committed bytes), GET status, DELETE.
//!
//! **An upload is written by one request at a time**: a request first takes a lease on the row
//! (`meta::lease_upload`: only when the committed size matches and nobody holds it; 30 s,
//! renewed every 10 s while the body streams, so a dead replica blocks the upload for at most
//! 30 s); a request that loses its lease stops writing and commits nothing
//! (`meta::commit_append` checks size and lease). Storage appends truncate to the committed
//! size first and `Storage::commit` takes exactly the committed size, so bytes from a request
//! that died never become part of a blob. Its SHA-256 state is saved in the row after every
//! request, so any replica continues it.
//!
//! `new_upload`, `append_stream` and `close_upload` are the session's steps without HTTP;
//! `internal` exports them to `replication::local`, whose blob writes are uploads like these.

use super::*;

pub(crate) fn upload_key(id: &str) -> String {
    format!("uploads/{id}/data")
}

pub(super) fn upload_response(status: StatusCode, name: &str, id: &str, size: u64) -> Response {
    let mut resp = status.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, hv(&format!("/v2/{name}/blobs/uploads/{id}")));
    h.insert(header::RANGE, hv(&format!("0-{}", size.saturating_sub(1))));
    h.insert("docker-upload-uuid", hv(id));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    resp
}

pub(super) fn blob_created(name: &str, digest: &Digest) -> Response {
    let d = digest.to_string();
    let mut resp = StatusCode::CREATED.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, hv(&format!("/v2/{name}/blobs/{d}")));
    h.insert("docker-content-digest", hv(&d));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    resp
}

pub(super) fn digest_param(pairs: &[(String, String)]) -> OciResult<Option<Digest>> {
    query(pairs, "digest")
        .map(|d| d.parse::<Digest>().map_err(|e| OciError::new(Code::DigestInvalid, e.to_string())))
        .transpose()
}

pub(super) async fn start_upload(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    pairs: &[(String, String)],
    body: Body,
) -> OciResult<Response> {
    repo_in_project(name)?;
    let from_scope = query(pairs, "from")
        .filter(|f| query(pairs, "mount").is_some() && path::valid_name(f))
        .map(|f| token::scope_string(f, &["pull"]));
    authorize_for(state, who, name, Action::Push, from_scope).await?;
    // Cross-repository mount: 201 when the caller may read the source and it has the blob.
    if let (Some(mount), Some(from)) = (query(pairs, "mount"), query(pairs, "from")) {
        let digest: Digest = mount
            .parse()
            .map_err(|e: digest::DigestError| OciError::new(Code::DigestInvalid, e.to_string()))?;
        if path::valid_name(from)
            && authorize(state, who, from, Action::Pull).await.is_ok()
            && meta::mount_blob(&state.db, from, name, &digest).await?
        {
            tracing::info!(repository = name, from, %digest, "blob mounted");
            return Ok(blob_created(name, &digest));
        }
        // Otherwise fall through to a normal upload session (202), as the spec says.
    }
    let id = new_upload(state, name).await?;
    if let Some(digest) = digest_param(pairs)? {
        // Monolithic upload in one POST.
        let done = complete(state, name, &id, 0, &UploadHasher::new().save(), Some(body), &digest).await;
        return quota_event(state, who, name, &digest, done).await;
    }
    Ok(upload_response(StatusCode::ACCEPTED, name, &id, 0))
}

/// Opens an upload session in `name`; returns its id.
pub(crate) async fn new_upload(state: &AppState, name: &str) -> OciResult<String> {
    let id = uuid::Uuid::new_v4().to_string();
    meta::create_upload(&state.db, &id, name, &UploadHasher::new().save()).await?;
    Ok(id)
}

pub(super) async fn load_upload(state: &AppState, name: &str, id: &str) -> OciResult<meta::Upload> {
    meta::get_upload(&state.db, name, id).await?.ok_or_else(|| {
        OciError::new(Code::BlobUploadUnknown, "upload unknown (finished, cancelled or expired)")
    })
}

pub(super) async fn upload_status(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    id: &str,
) -> OciResult<Response> {
    authorize(state, who, name, Action::Push).await?;
    let up = load_upload(state, name, id).await?;
    Ok(upload_response(StatusCode::NO_CONTENT, name, id, up.size))
}

/// `Content-Range: <start>-<end>` (also accepts a `bytes ` / `bytes=` prefix).
pub(crate) fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let v = v.trim();
    let v = v.strip_prefix("bytes=").or_else(|| v.strip_prefix("bytes ")).unwrap_or(v);
    let (a, b) = v.split_once('-')?;
    let b = b.split('/').next()?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// Appends a request body to an upload (`append_stream`), reading it with `Coalesce`.
pub(super) async fn append(
    state: &AppState,
    id: &str,
    offset: u64,
    hash_state: &[u8],
    body: Body,
) -> OciResult<(u64, Vec<u8>)> {
    let expected = axum::body::HttpBody::size_hint(&body).exact();
    let stream = Coalesce::new(body.into_data_stream(), expected).map_err(std::io::Error::other);
    append_stream(state, id, offset, hash_state, Box::pin(stream)).await
}

/// Appends a stream to an upload under a lease, hashing as it streams, and commits the new
/// size and hash state. Returns (new size, hash state). An error of the stream ends the
/// append with `StorageError::Body` (nothing committed).
pub(crate) async fn append_stream(
    state: &AppState,
    id: &str,
    offset: u64,
    hash_state: &[u8],
    data: crate::storage::ByteStream,
) -> OciResult<(u64, Vec<u8>)> {
    if !meta::lease_upload(&state.db, id, offset).await? {
        return Err(OciError::new(
            Code::RangeInvalid,
            "another request is writing this upload, or the offset is stale",
        ));
    }
    let hasher = UploadHasher::restore(hash_state)
        .ok_or_else(|| OciError::internal("stored upload hash state is corrupt"))?;
    let hasher = Arc::new(Mutex::new(hasher));
    let h = hasher.clone();
    // Renew the lease while the body streams; if it is lost (database unreachable for longer
    // than the lease), stop writing: another request may own the upload by now.
    let renewal = LeaseRenewal::start(state, id, offset);
    let lost = renewal.lost.clone();
    let stream = data.and_then(move |chunk| {
        let r = if lost.load(Ordering::Relaxed) {
            Err(std::io::Error::other("the upload's lease was lost"))
        } else {
            h.lock().unwrap_or_else(|p| p.into_inner()).update(&chunk);
            Ok(chunk)
        };
        std::future::ready(r)
    });
    let result = state.storage.append(&upload_key(id), offset, Box::pin(stream)).await;
    match result {
        Ok(size) => {
            let saved = hasher.lock().unwrap_or_else(|p| p.into_inner()).save();
            if !meta::commit_append(&state.db, id, offset, size, &saved).await? {
                return Err(lease_lost());
            }
            Ok((size, saved))
        }
        // A lost lease may belong to another request by now: not ours to release.
        Err(_) if renewal.is_lost() => Err(lease_lost()),
        Err(e) => {
            let _ = meta::release_upload(&state.db, id).await;
            Err(e.into())
        }
    }
}

/// Reads of an upload body that returned less than this are followed by a short pause.
pub(super) const COALESCE_BELOW: usize = 64 * 1024;
pub(super) const COALESCE_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// Read coalescing for upload bodies. A client that sends slower than we can take it (almost
/// every client: the network, TLS or its own disk is slower than hashing and writing here) hands
/// over ~10–20 KiB per socket read, and every read costs a park and a wake-up of the worker,
/// which on a VM are the most expensive thing the push does (a third of the server's CPU per GiB
/// on the benchmark machine). After a small read we wait 1 ms before the next one, so the kernel
/// gathers more into the socket buffer (which TCP keeps open meanwhile: 1 ms is far below its
/// size at any rate); a read that is already large is never delayed, so a fast client is not
/// slowed down, and neither is the end of a body whose length is known (small blobs, manifests).
pub(super) struct Coalesce<S> {
    inner: S,
    /// Bytes still to come, when the request said (Content-Length).
    remaining: Option<u64>,
    pause: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> Coalesce<S> {
    fn new(inner: S, expected: Option<u64>) -> Self {
        Coalesce { inner, remaining: expected, pause: None }
    }
}

impl<S, E> futures::Stream for Coalesce<S>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::future::Future;
        if let Some(p) = self.pause.as_mut() {
            std::task::ready!(p.as_mut().poll(cx));
            self.pause = None;
        }
        let item = std::task::ready!(std::pin::Pin::new(&mut self.inner).poll_next(cx));
        if let Some(Ok(chunk)) = &item {
            let len = chunk.len() as u64;
            self.remaining = self.remaining.map(|r| r.saturating_sub(len));
            if chunk.len() < COALESCE_BELOW && self.remaining != Some(0) {
                self.pause = Some(Box::pin(tokio::time::sleep(COALESCE_PAUSE)));
            }
        }
        std::task::Poll::Ready(item)
    }
}

pub(super) fn lease_lost() -> OciError {
    OciError::new(
        Code::RangeInvalid,
        "the upload's lease was lost while writing (the database was unreachable); resume from the upload's status",
    )
}

/// Renews an upload's lease every [`meta::LEASE_RENEW_MS`] while a request holds it, until
/// dropped (the request ended, or its future was dropped). `lost` turns true, and renewing
/// stops, when the lease expired meanwhile and may belong to another request.
pub(super) struct LeaseRenewal {
    task: tokio::task::JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

impl LeaseRenewal {
    fn start(state: &AppState, id: &str, size: u64) -> LeaseRenewal {
        let (db, id, lost) = (state.db.clone(), id.to_string(), Arc::new(AtomicBool::new(false)));
        let flag = lost.clone();
        let task = tokio::spawn(async move {
            let every = std::time::Duration::from_millis(meta::LEASE_RENEW_MS);
            loop {
                tokio::time::sleep(every).await;
                match meta::renew_upload_lease(&db, &id, size).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(upload = %id, "upload lease lost; the request stops writing");
                        flag.store(true, Ordering::Relaxed);
                        return;
                    }
                    // Unreachable database: try again; the lease outlives two missed renewals.
                    Err(e) => tracing::warn!(upload = %id, error = %e, "could not renew an upload lease"),
                }
            }
        });
        LeaseRenewal { task, lost }
    }

    fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }
}

impl Drop for LeaseRenewal {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(super) async fn patch_upload(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> OciResult<Response> {
    authorize(state, who, name, Action::Push).await?;
    let up = load_upload(state, name, id).await?;
    check_content_range(headers, name, id, up.size)?;
    let (size, _) = append(state, id, up.size, &up.hash_state, body).await?;
    Ok(upload_response(StatusCode::ACCEPTED, name, id, size))
}

/// A chunk's `Content-Range` must start at the upload's committed size: 416 otherwise, before a
/// byte is written (with the upload's `Range` and `Location`, so the client can resume).
pub(super) fn check_content_range(headers: &HeaderMap, name: &str, id: &str, size: u64) -> OciResult<()> {
    let Some(cr) = headers.get(header::CONTENT_RANGE) else { return Ok(()) };
    let (start, end) = cr
        .to_str()
        .ok()
        .and_then(parse_content_range)
        .ok_or_else(|| OciError::new(Code::RangeInvalid, "malformed Content-Range"))?;
    if start != size || end < start {
        let mut e = OciError::new(Code::RangeInvalid, format!("chunk must start at offset {size}"));
        e.headers.push((header::RANGE, hv(&format!("0-{}", size.saturating_sub(1)))));
        e.headers.push((header::LOCATION, hv(&format!("/v2/{name}/blobs/uploads/{id}"))));
        return Err(e);
    }
    Ok(())
}

pub(super) async fn finish_upload(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    pairs: &[(String, String)],
    body: Body,
) -> OciResult<Response> {
    authorize(state, who, name, Action::Push).await?;
    let digest = digest_param(pairs)?
        .ok_or_else(|| OciError::new(Code::DigestInvalid, "the digest query parameter is required"))?;
    let up = load_upload(state, name, id).await?;
    let has_body =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).map(|v| v != "0").unwrap_or(true);
    if has_body {
        check_content_range(headers, name, id, up.size)?;
    }
    let body = has_body.then_some(body);
    let done = complete(state, name, id, up.size, &up.hash_state, body, &digest).await;
    quota_event(state, who, name, &digest, done).await
}

/// A blob refused by the project's quota is a webhook event (`QUOTA_EXCEED`).
async fn quota_event(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    digest: &Digest,
    done: OciResult<Response>,
) -> OciResult<Response> {
    if let Err(e) = &done {
        if let Ok(Some(p)) = meta::project_of(&state.db, name).await {
            internal::notify_quota_refusal(state, who.name(), p.id, name, &digest.to_string(), "", e);
        }
    }
    done
}

/// Appends an optional last chunk, then `close_upload`.
pub(super) async fn complete(
    state: &AppState,
    name: &str,
    id: &str,
    offset: u64,
    hash_state: &[u8],
    body: Option<Body>,
    digest: &Digest,
) -> OciResult<Response> {
    let (size, hash_state) = match body {
        Some(b) => append(state, id, offset, hash_state, b).await?,
        None => (offset, hash_state.to_vec()),
    };
    close_upload(state, name, id, size, &hash_state, digest).await?;
    Ok(blob_created(name, digest))
}

/// Closes an upload of `size` committed bytes: verifies the digest, reserves the blob row
/// against GC, moves the data into place and links the blob to `name` (`record_blob`). The
/// session is gone afterwards, except when the digest did not match or another request holds
/// it (the client may still fix it).
pub(crate) async fn close_upload(
    state: &AppState,
    name: &str,
    id: &str,
    size: u64,
    hash_state: &[u8],
    digest: &Digest,
) -> OciResult<()> {
    // The data file exists even for an empty blob.
    if size == 0 && state.storage.stat(&upload_key(id)).await?.is_none() {
        state.storage.put(&upload_key(id), Bytes::new()).await?;
    }
    let actual = match digest.algorithm {
        Algorithm::Sha256 => UploadHasher::restore(hash_state)
            .ok_or_else(|| OciError::internal("stored upload hash state is corrupt"))?
            .finish(),
        Algorithm::Sha512 => {
            // Rare: one extra streamed read to hash with the algorithm the client chose.
            // Exactly the committed bytes: the data file may be longer after a failed request.
            let stream = take_exactly(state.storage.read(&upload_key(id), None).await?, size);
            Digest::of_stream(Algorithm::Sha512, stream).await.map_err(crate::storage::StorageError::Io)?
        }
    };
    if &actual != digest {
        return Err(OciError::new(Code::DigestInvalid, "the uploaded content does not match the digest")
            .detail(json!({ "expected": digest.to_string(), "actual": actual.to_string() })));
    }
    // Over the project's quota: refused before the content moves (`charge` in `record_blob`
    // decides for good); the session is over, as Harbor ends it (its data goes with GC's
    // orphaned-upload sweep).
    if let Some(p) = meta::project_of(&state.db, name).await? {
        if let Err(e) = crate::quota::precheck(&state.db, p.id, &digest.to_string(), size).await {
            let _ = meta::delete_upload(&state.db, id).await;
            return Err(e.into());
        }
    }
    if !meta::lease_upload(&state.db, id, size).await? {
        return Err(OciError::new(Code::BlobUploadInvalid, "the upload is being written by another request"));
    }
    // Moving a large blob into place (an S3 copy) may take longer than one lease.
    let _renewal = LeaseRenewal::start(state, id, size);
    // Reserve the blob row before the content moves into place: from here GC leaves it alone;
    // when GC is deleting this very content the client is told to retry (the upload stays).
    let gen = match meta::reserve_blob(&state.db, digest, size, "blob").await {
        Ok(gen) => gen,
        Err(e) => {
            let _ = meta::release_upload(&state.db, id).await;
            return Err(e.into());
        }
    };
    let key = digest.blob_key();
    let moved = async {
        if state.storage.stat(&key).await? == Some(size) {
            // Already stored (by another upload of the same content): ours is redundant.
            state.storage.delete(&upload_key(id)).await?;
        } else {
            // Absent, or of the wrong size (damaged): exactly the committed bytes go in place.
            state.storage.commit(&upload_key(id), &key, size).await?;
        }
        Ok::<_, OciError>(())
    }
    .await;
    if let Err(e) = moved {
        let _ = meta::release_upload(&state.db, id).await;
        return Err(e);
    }
    if let Err(e) = meta::record_blob(&state.db, name, digest, gen).await {
        // GC swept the reservation (the window was exceeded): the data may be gone with it, so
        // this session is over; the client uploads again.
        let _ = meta::delete_upload(&state.db, id).await;
        return Err(e.into());
    }
    meta::delete_upload(&state.db, id).await?;
    tracing::info!(repository = name, %digest, size, "blob pushed");
    Ok(())
}

/// The first `n` bytes of a stream; an error when it ends sooner.
pub(super) fn take_exactly(stream: crate::storage::ByteStream, n: u64) -> crate::storage::ByteStream {
    Box::pin(futures::stream::unfold((stream, n), |(mut s, left)| async move {
        if left == 0 {
            return None;
        }
        match s.next().await {
            Some(Ok(mut chunk)) => {
                if chunk.len() as u64 > left {
                    chunk.truncate(left as usize);
                }
                let left = left - chunk.len() as u64;
                Some((Ok(chunk), (s, left)))
            }
            Some(Err(e)) => Some((Err(e), (s, 0))),
            None => Some((
                Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "upload data is short")),
                (s, 0),
            )),
        }
    }))
}

pub(super) async fn cancel_upload(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    id: &str,
) -> OciResult<Response> {
    authorize(state, who, name, Action::Push).await?;
    load_upload(state, name, id).await?;
    meta::delete_upload(&state.db, id).await?;
    state.storage.delete(&upload_key(id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes=100-199"), Some((100, 199)));
        assert_eq!(parse_content_range("bytes 100-199/300"), Some((100, 199)));
        assert_eq!(parse_content_range("nope"), None);
    }

    #[tokio::test]
    async fn coalescing_keeps_every_byte_in_order_and_never_pauses_after_a_known_end() {
        use futures::StreamExt;
        let chunks: Vec<Bytes> = vec![
            Bytes::from(vec![1u8; 100]),
            Bytes::from(vec![2u8; COALESCE_BELOW]),
            Bytes::from(vec![3u8; 10]),
        ];
        let total: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        for expected in [Some(total), None] {
            let inner = futures::stream::iter(chunks.clone().into_iter().map(Ok::<_, std::io::Error>));
            let mut s = Coalesce::new(inner, expected);
            let mut got = Vec::new();
            let mut pauses = Vec::new();
            while let Some(c) = s.next().await {
                got.push(c.unwrap());
                pauses.push(s.pause.is_some());
            }
            assert_eq!(got, chunks);
            // small read → pause; large read → none; the last small read pauses only when the
            // length is unknown (its end could not be told apart from a slow client).
            assert_eq!(pauses, vec![true, false, expected.is_none()], "expected length {expected:?}");
        }
    }
}

//! Pulls from proxy-cache projects (a `registry_id` on the project): the `/v2` side of
//! `replication::proxy`. `manifests.rs` and `blobs.rs` hand a proxy project's manifest GET/HEAD
//! and a blob GET/HEAD that misses locally to this file, after their usual pull check (so a
//! public proxy project serves anonymous callers, as in Harbor). Content that is local is served
//! by the usual handlers; this file answers from the upstream and starts the caching, which
//! goes through `local::LocalRegistry` acting as `proxy-cache` (its audit rows say so).

use super::*;
use crate::replication::content::Content;
use crate::replication::local::LocalRegistry;
use crate::replication::proxy::{self, BlobSource, ManifestSource, ProxyError, Upstream};

/// The name cached content is written under (audit rows).
pub const ACTOR: &str = "proxy-cache";

fn oci_error(e: ProxyError, what: Code) -> OciError {
    use crate::replication::content::ContentError as C;
    match e {
        ProxyError::NotFound(_) => OciError::new(what, e.to_string()),
        ProxyError::TooLarge(_) => {
            OciError::new(Code::ManifestInvalid, e.to_string()).status(StatusCode::PAYLOAD_TOO_LARGE)
        }
        ProxyError::Busy => OciError::new(Code::TooManyRequests, e.to_string())
            .header(header::RETRY_AFTER, HeaderValue::from_static("5")),
        // Unreachable, 5xx, 429 upstream: worth retrying later.
        ProxyError::Upstream(C::Transient(_)) => OciError::new(Code::Unavailable, e.to_string()),
        // Docker Hub answers 401 for a repository that does not exist (or that the proxy's
        // credentials may not pull): most often a mistyped name, so the client hears 404.
        ProxyError::Upstream(C::Unauthorized(m)) => OciError::new(
            Code::NameUnknown,
            format!(
                "{name_or_ref} not found upstream, or the proxy's credentials may not pull it: {m}",
                name_or_ref = what.as_str().to_lowercase()
            ),
        ),
        ProxyError::Upstream(C::Denied(_)) => OciError::new(Code::Denied, e.to_string()),
        // TLS, a bad answer, no usable endpoint: the proxy's configuration, not the client's
        // request.
        ProxyError::Upstream(_) | ProxyError::Registry(..) => {
            OciError::new(Code::Unavailable, e.to_string()).status(StatusCode::BAD_GATEWAY)
        }
    }
}

async fn upstream_of(
    state: &AppState,
    registry_id: i64,
    name: &str,
) -> Result<(Upstream, String), ProxyError> {
    let up = state.proxy.upstream(state, registry_id).await?;
    let repo = proxy::upstream_repo(name, up.docker_hub)
        .ok_or_else(|| ProxyError::NotFound(format!("repository {name}")))?;
    Ok((up, repo))
}

/// `GET`/`HEAD /v2/<proxy project>/<repo>/manifests/<reference>`: `None` when the local copy
/// is to be served (by the caller), else the upstream's answer.
pub(super) async fn get_manifest(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    reference: &Reference,
    head: bool,
    project: &meta::ProjectRef,
    registry_id: i64,
) -> OciResult<Option<Response>> {
    let (up, up_repo) = match upstream_of(state, registry_id, name).await {
        Ok(u) => u,
        // No usable upstream: the cache still serves what it has.
        Err(e) => {
            if meta::find_manifest(&state.db, name, reference).await?.is_some() {
                tracing::warn!(repository = name, error = %e, "proxy cache: no upstream, serving the cached copy");
                return Ok(None);
            }
            return Err(oci_error(e, Code::ManifestUnknown));
        }
    };
    let local: Arc<dyn Content> = Arc::new(LocalRegistry::proxy_cache(state.clone(), ACTOR));
    let source = state
        .proxy
        .manifest(up.content.as_ref(), local.as_ref(), &up_repo, name, reference)
        .await
        .map_err(|e| oci_error(e, Code::ManifestUnknown))?;
    let ManifestSource::Upstream { manifest: m, cache } = source else { return Ok(None) };
    if let Some(cache_ref) = cache {
        let (cache, state2, name2, m2) = (state.proxy.clone(), state.clone(), name.to_string(), m.clone());
        tokio::spawn(async move {
            let digest = m2.digest.clone();
            let stored = cache.cache_manifest(up.content, local, &up_repo, &name2, &cache_ref, m2).await;
            // The pull that brought it counts once it is an artifact (a HEAD is no pull).
            if stored && !head {
                if let Ok(Some(a)) = meta::find_manifest(&state2.db, &name2, &Reference::Digest(digest)).await
                {
                    state2.pulls.record(a.artifact_id);
                }
            }
        });
    }
    if !head {
        let e = who.event("pull", "artifact", artifact_ref(name, reference), project.id);
        state.audit.record(e.detail(m.digest.to_string()));
    }
    let d = m.digest.to_string();
    let size = m.bytes.len() as u64;
    let mut resp = Response::new(if head { Body::empty() } else { Body::from(m.bytes) });
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, hv(&m.media_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    h.insert("docker-content-digest", hv(&d));
    h.insert(header::ETAG, hv(&format!("\"{d}\"")));
    Ok(Some(resp))
}

/// `GET`/`HEAD /v2/<proxy project>/<repo>/blobs/<digest>` for a blob not cached: `None` when
/// it is local now (another pull cached it meanwhile), else the upstream's answer, stored
/// while it streams (a `Range` is not honoured on this path: the whole blob is sent, 200).
pub(super) async fn get_blob(
    state: &AppState,
    name: &str,
    digest: &Digest,
    head: bool,
    registry_id: i64,
) -> OciResult<Option<Response>> {
    let (up, up_repo) =
        upstream_of(state, registry_id, name).await.map_err(|e| oci_error(e, Code::BlobUnknown))?;
    let (size, body) = if head {
        let size = match up.content.blob_exists(&up_repo, digest).await {
            Ok(Some(s)) => s,
            Ok(None) | Err(crate::replication::content::ContentError::NotFound(_)) => {
                return Err(OciError::new(Code::BlobUnknown, format!("blob {digest} unknown")))
            }
            Err(e) => return Err(oci_error(ProxyError::Upstream(e), Code::BlobUnknown)),
        };
        (size, Body::empty())
    } else {
        let local: Arc<dyn Content> = Arc::new(LocalRegistry::proxy_cache(state.clone(), ACTOR));
        match state.proxy.blob(up.content, local, &up_repo, name, digest).await {
            Ok(BlobSource::Local) => return Ok(None),
            Ok(BlobSource::Upstream { size, stream }) => (size, Body::from_stream(stream)),
            Err(e) => return Err(oci_error(e, Code::BlobUnknown)),
        }
    };
    let d = digest.to_string();
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert("docker-content-digest", hv(&d));
    h.insert(header::ETAG, hv(&format!("\"{d}\"")));
    Ok(Some(resp))
}

//! Manifests: GET/HEAD by tag or digest, PUT (with `?tag=` on a push by digest and `?digest=`
//! on a push by tag), DELETE. The handlers parse and authorize; what a push, pull or delete
//! does is `internal`'s (shared with `replication::local`). After a PUT or DELETE committed,
//! event-based replication is told (`replication::on_artifact_event`, which only queues work
//! off the request path). A proxy-cache project's GET/HEAD goes through `proxied`
//! first.

use super::*;
use crate::replication::ArtifactEvent;

pub(super) async fn get_manifest(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    reference: &Reference,
    head: bool,
) -> OciResult<Response> {
    let project = authorize(state, who, name, Action::Pull).await?;
    if let Some(registry_id) = project.registry_id {
        if let Some(resp) =
            proxied::get_manifest(state, who, name, reference, head, &project, registry_id).await?
        {
            return Ok(resp);
        }
    }
    let m = internal::find_manifest(state, name, reference).await?;
    let body = if head { Bytes::new() } else { state.storage.read_all(&m.digest.blob_key()).await? };
    if !head {
        internal::record_pull(state, who.actor(), project.id, name, reference, &m);
    }
    let d = m.digest.to_string();
    let mut resp = Response::new(if head { Body::empty() } else { Body::from(body) });
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, hv(&m.media_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(m.size));
    h.insert("docker-content-digest", hv(&d));
    h.insert(header::ETAG, hv(&format!("\"{d}\"")));
    Ok(resp)
}

pub(super) async fn put_manifest(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    reference: &Reference,
    headers: &HeaderMap,
    pairs: &[(String, String)],
    body: Body,
) -> OciResult<Response> {
    repo_in_project(name)?;
    let project = authorize(state, who, name, Action::Push).await?;
    // A push by digest may tag in the same request: `?tag=a&tag=b` (distribution-spec, "Pushing
    // Manifests"); each accepted tag comes back in an `OCI-Tag` header.
    let query_tags: Vec<&str> = pairs.iter().filter(|(k, _)| k == "tag").map(|(_, v)| v.as_str()).collect();
    if !query_tags.is_empty() {
        if let Reference::Tag(_) = reference {
            return Err(OciError::new(
                Code::TagInvalid,
                "tag query parameters are for a push by digest (PUT /v2/<name>/manifests/<digest>?tag=…)",
            ));
        }
        if query_tags.len() > MAX_QUERY_TAGS {
            return Err(OciError::new(
                Code::TagInvalid,
                format!("at most {MAX_QUERY_TAGS} tag query parameters per request"),
            )
            .status(StatusCode::URI_TOO_LONG));
        }
        if let Some(bad) = query_tags.iter().find(|t| !path::valid_tag(t)) {
            return Err(OciError::new(Code::TagInvalid, format!("invalid tag {bad:?}")));
        }
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = read_limited(body, manifest::MAX_MANIFEST_SIZE).await?;
    // A push by tag is hashed with sha256, unless the client names the digest it expects
    // (`?digest=sha512:…`, as regclient and olareg do for tagged manifests with another
    // algorithm, distribution-spec issue #494): then with that digest's algorithm, and the
    // body must match it.
    let want = match (reference, pairs.iter().find(|(k, _)| k == "digest")) {
        (Reference::Tag(_), Some((_, want))) => Some(
            want.parse::<Digest>()
                .map_err(|e: digest::DigestError| OciError::new(Code::DigestInvalid, e.to_string()))?,
        ),
        _ => None,
    };
    let digest = internal::manifest_digest(reference, &body, want)?;
    let tags: Vec<&str> = match reference {
        Reference::Tag(t) => vec![t.as_str()],
        Reference::Digest(_) => query_tags,
    };
    let parsed = internal::push_manifest(
        state,
        who.actor(),
        &project,
        name,
        &digest,
        content_type.as_deref(),
        body,
        &tags,
    )
    .await;
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            let tag = tags.first().copied().unwrap_or("");
            internal::notify_quota_refusal(state, who.name(), project.id, name, &digest.to_string(), tag, &e);
            return Err(e);
        }
    };
    // Event-based replication (queued off the request path).
    if tags.is_empty() {
        crate::replication::on_artifact_event(state, ArtifactEvent::Push, name, &digest.to_string());
    }
    let mut seen = std::collections::HashSet::new();
    for t in tags.iter().filter(|t| seen.insert(**t)) {
        crate::replication::on_artifact_event(state, ArtifactEvent::Push, name, t);
    }
    let d = digest.to_string();
    let mut resp = StatusCode::CREATED.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, hv(&format!("/v2/{name}/manifests/{d}")));
    h.insert("docker-content-digest", hv(&d));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    if let Some(s) = &parsed.subject {
        h.insert("oci-subject", hv(&s.digest.to_string()));
    }
    if let Reference::Digest(_) = reference {
        let mut seen = std::collections::HashSet::new();
        for t in tags.iter().filter(|t| seen.insert(**t)) {
            h.append("oci-tag", hv(t));
        }
    }
    Ok(resp)
}

pub(super) async fn delete_manifest(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    reference: &Reference,
) -> OciResult<Response> {
    let project = authorize(state, who, name, Action::Delete).await?;
    internal::delete_manifest(state, who.actor(), project.id, name, reference).await?;
    crate::replication::on_artifact_event(state, ArtifactEvent::Delete, name, &reference.to_string());
    Ok(StatusCode::ACCEPTED.into_response())
}

pub(super) async fn read_limited(body: Body, limit: usize) -> OciResult<Bytes> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| OciError::new(Code::ManifestInvalid, format!("reading the body failed: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(OciError::new(
                Code::ManifestInvalid,
                format!("manifest larger than {} MiB", limit / (1024 * 1024)),
            )
            .status(StatusCode::PAYLOAD_TOO_LARGE));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

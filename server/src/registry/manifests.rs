//! Manifests: GET/HEAD by tag or digest, PUT (with `?tag=` on a push by digest and `?digest=`
//! on a push by tag), DELETE. A proxy-cache project's GET/HEAD goes through `proxied` first.

use super::*;
use crate::artifacts::write;

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
    let m = meta::find_manifest(&state.db, name, reference)
        .await?
        .ok_or_else(|| OciError::new(Code::ManifestUnknown, format!("manifest {reference} unknown")))?;
    let body = if head { Bytes::new() } else { state.storage.read_all(&m.digest.blob_key()).await? };
    if !head {
        state.pulls.record(m.artifact_id);
        state.audit.record(who.event("pull", "artifact", artifact_ref(name, reference), project.id));
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
    let digest = match reference {
        Reference::Digest(d) => {
            let actual = Digest::of(d.algorithm, &body);
            if &actual != d {
                return Err(OciError::new(
                    Code::DigestInvalid,
                    "manifest digest does not match the reference",
                )
                .detail(json!({ "expected": d.to_string(), "actual": actual.to_string() })));
            }
            actual
        }
        // A push by tag is hashed with sha256, unless the client names the digest it expects
        // (`?digest=sha512:…`, as regclient and olareg do for tagged manifests with another
        // algorithm, distribution-spec issue #494): then with that digest's algorithm, and the
        // body must match it.
        Reference::Tag(_) => match pairs.iter().find(|(k, _)| k == "digest") {
            None => Digest::sha256(&body),
            Some((_, want)) => {
                let want: Digest = want
                    .parse()
                    .map_err(|e: digest::DigestError| OciError::new(Code::DigestInvalid, e.to_string()))?;
                let actual = Digest::of(want.algorithm, &body);
                if actual != want {
                    return Err(OciError::new(
                        Code::DigestInvalid,
                        "manifest digest does not match the digest query parameter",
                    )
                    .detail(json!({ "expected": want.to_string(), "actual": actual.to_string() })));
                }
                actual
            }
        },
    };
    let parsed = manifest::parse(content_type.as_deref(), &body)
        .map_err(|m| OciError::new(Code::ManifestInvalid, m))?;
    // Everything referenced must be here.
    for b in &parsed.blobs {
        match meta::blob_in_repo(&state.db, name, &b.digest).await? {
            Some(size) if size == b.size => {}
            Some(size) => {
                return Err(OciError::new(
                    Code::ManifestInvalid,
                    format!("blob {} has size {size}, the manifest says {}", b.digest, b.size),
                ))
            }
            None => {
                return Err(OciError::new(Code::ManifestBlobUnknown, format!("blob {} unknown", b.digest))
                    .detail(json!({ "digest": b.digest.to_string() })))
            }
        }
    }
    for m in &parsed.manifests {
        if !meta::manifest_exists(&state.db, name, &m.digest).await? {
            return Err(OciError::new(Code::ManifestBlobUnknown, format!("manifest {} unknown", m.digest))
                .detail(json!({ "digest": m.digest.to_string() })));
        }
    }
    let size = body.len() as u64;
    // Reserved before the bytes are written: GC cannot be deleting this content meanwhile.
    let gen = meta::reserve_blob(&state.db, &digest, size, "manifest").await?;
    state.storage.put(&digest.blob_key(), body).await?;
    let mut tags: Vec<&str> = match reference {
        Reference::Tag(t) => vec![t.as_str()],
        Reference::Digest(_) => query_tags,
    };
    let mut seen = std::collections::HashSet::new();
    tags.retain(|t| seen.insert(*t));
    write::put_manifest(&state.db, project.id, name, &digest, size, &parsed, &tags, gen).await?;
    tracing::info!(repository = name, %digest, tags = ?tags, "manifest pushed");
    if tags.is_empty() {
        let resource = format!("{name}@{digest}");
        state.audit.record(who.event("create", "artifact", resource, project.id).detail(digest.to_string()));
    }
    for t in &tags {
        let resource = format!("{name}:{t}");
        state.audit.record(who.event("create", "artifact", resource, project.id).detail(digest.to_string()));
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
        for t in &tags {
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
    let kind = match reference {
        Reference::Tag(t) => {
            if !write::delete_tag(&state.db, write::TagOf::Repository(name), t).await? {
                return Err(OciError::new(Code::ManifestUnknown, format!("tag {t:?} unknown")));
            }
            "tag"
        }
        Reference::Digest(_) => {
            let m = meta::find_manifest(&state.db, name, reference).await?.ok_or_else(|| {
                OciError::new(Code::ManifestUnknown, format!("manifest {reference} unknown"))
            })?;
            // Its accessories and the children it frees go with it (one transaction).
            let deleted = write::delete_artifact(&state.db, m.artifact_id).await?;
            for d in deleted.iter().skip(1) {
                state.audit.record(who.event(
                    "delete",
                    "artifact",
                    format!("{name}@{}", d.digest),
                    project.id,
                ));
            }
            "artifact"
        }
    };
    tracing::info!(repository = name, %reference, "manifest deleted");
    state.audit.record(who.event("delete", kind, artifact_ref(name, reference), project.id));
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

//! The registry's operations below HTTP: what a `/v2` handler does once it has parsed the
//! request and authorized the caller. The handlers (`manifests`, `blobs`, `uploads`,
//! `referrers`) call these, and so does `replication::local::LocalRegistry` (this registry as
//! replication's and the proxy cache's `Content`, in-process), so a replicated artifact goes
//! through exactly the checks, metadata writes and audit rows of a push over `/v2`.
//!
//! What stays in the handlers: authentication and `authorize`, request parsing (paths,
//! headers, query parameters) and the responses. Callers of these functions have checked the
//! repository name (`path::valid_name`, `check_repo_name`) and the caller's rights.
//!
//! Uploads are the same sessions as over HTTP (`new_upload`, then `append_stream` under the
//! upload row's lease, hashing as the bytes stream in, then `close_upload`: digest check, GC
//! reservation, move into place, `record_blob`).

use super::*;
use crate::artifacts::write;
use crate::registry::manifest::Parsed;
use crate::registry::meta::{ProjectRef, StoredManifest};
use crate::storage::ByteStream;

pub(crate) use super::uploads::{append_stream, close_upload, new_upload, upload_key};

/// Who a registry operation is done for: the name and address audit rows carry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Actor<'a> {
    pub name: &'a str,
    pub ip: &'a str,
}

impl Actor<'_> {
    pub(crate) fn event(
        &self,
        operation: &str,
        resource_type: &str,
        resource: String,
        project_id: i64,
    ) -> Event {
        Event::new(self.name, operation, resource_type, resource).ip(self.ip).project(project_id)
    }
}

/// A repository name a push may use: the OCI grammar, and `<project>/<repository>`.
pub(crate) fn check_repo_name(name: &str) -> OciResult<()> {
    if !path::valid_name(name) {
        return Err(path::PathError::NameInvalid(name.chars().take(300).collect()).into());
    }
    repo_in_project(name)
}

/// A reference as a client would put it in a path: a digest, else a tag (validated).
pub(crate) fn parse_reference(reference: &str) -> OciResult<Reference> {
    if reference.contains(':') {
        return reference
            .parse::<Digest>()
            .map(Reference::Digest)
            .map_err(|e| OciError::new(Code::DigestInvalid, e.to_string()));
    }
    if !path::valid_tag(reference) {
        return Err(OciError::new(Code::TagInvalid, format!("invalid tag {reference:?}")));
    }
    Ok(Reference::Tag(reference.to_string()))
}

/// The manifest `reference` names in `name`; `ManifestUnknown` when there is none.
pub(crate) async fn find_manifest(
    state: &AppState,
    name: &str,
    reference: &Reference,
) -> OciResult<StoredManifest> {
    meta::find_manifest(&state.db, name, reference)
        .await?
        .ok_or_else(|| OciError::new(Code::ManifestUnknown, format!("manifest {reference} unknown")))
}

/// Counts a pull of a manifest and writes its audit row.
pub(crate) fn record_pull(
    state: &AppState,
    actor: Actor<'_>,
    project_id: i64,
    name: &str,
    reference: &Reference,
    m: &StoredManifest,
) {
    state.pulls.record(m.artifact_id);
    // The digest in the detail: the webhook's resource names it for a pull by tag too.
    state.audit.record(
        actor
            .event("pull", "artifact", artifact_ref(name, reference), project_id)
            .detail(m.digest.to_string()),
    );
}

/// Tells webhooks about a push the project's quota refused (Harbor's `QUOTA_EXCEED`); other
/// errors are no event.
pub(crate) fn notify_quota_refusal(
    state: &AppState,
    operator: &str,
    project_id: i64,
    name: &str,
    digest: &str,
    tag: &str,
    e: &OciError,
) {
    if !e.over_quota {
        return;
    }
    let host = state.audit.webhooks.host().to_string();
    let event = crate::webhook::payload::Emitted::new(project_id, "QUOTA_EXCEED", operator)
        .repository(name)
        .resource(&host, name, digest, tag)
        .data("custom_attributes", json!({ "Details": e.message }));
    state.audit.notify(event);
}

/// The digest of a pushed manifest body: the reference's (which the body must hash to) for a
/// push by digest; for a push by tag sha256, or the algorithm of `want` (`?digest=`), which
/// the body must then match.
pub(crate) fn manifest_digest(reference: &Reference, body: &[u8], want: Option<Digest>) -> OciResult<Digest> {
    let (expected, what) = match (reference, want) {
        (Reference::Digest(d), _) => (d.clone(), "the reference"),
        (Reference::Tag(_), None) => return Ok(Digest::sha256(body)),
        (Reference::Tag(_), Some(w)) => (w, "the digest query parameter"),
    };
    let actual = Digest::of(expected.algorithm, body);
    if actual != expected {
        return Err(OciError::new(Code::DigestInvalid, format!("manifest digest does not match {what}"))
            .detail(json!({ "expected": expected.to_string(), "actual": actual.to_string() })));
    }
    Ok(actual)
}

/// Stores a manifest whose digest was checked (`manifest_digest`) under `tags` (none: by
/// digest only) in `project`: parses and validates it, checks that every blob (with its size)
/// and child manifest is in the repository, reserves and writes its bytes, writes its
/// metadata (`write::put_manifest`) and one audit row `create` per tag (or one for the digest).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn push_manifest(
    state: &AppState,
    actor: Actor<'_>,
    project: &ProjectRef,
    name: &str,
    digest: &Digest,
    content_type: Option<&str>,
    body: Bytes,
    tags: &[&str],
) -> OciResult<Parsed> {
    if body.len() > manifest::MAX_MANIFEST_SIZE {
        return Err(OciError::new(
            Code::ManifestInvalid,
            format!("manifest larger than {} MiB", manifest::MAX_MANIFEST_SIZE / (1024 * 1024)),
        )
        .status(StatusCode::PAYLOAD_TOO_LARGE));
    }
    let parsed = manifest::parse(content_type, &body).map_err(|m| OciError::new(Code::ManifestInvalid, m))?;
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
    let gen = meta::reserve_blob(&state.db, digest, size, "manifest").await?;
    state.storage.put(&digest.blob_key(), body).await?;
    let mut tags = tags.to_vec();
    let mut seen = std::collections::HashSet::new();
    tags.retain(|t| seen.insert(*t));
    write::put_manifest(&state.db, project.id, name, digest, size, &parsed, &tags, gen).await?;
    tracing::info!(repository = name, %digest, tags = ?tags, actor = actor.name, "manifest pushed");
    if tags.is_empty() {
        let resource = format!("{name}@{digest}");
        state
            .audit
            .record(actor.event("create", "artifact", resource, project.id).detail(digest.to_string()));
    }
    for t in &tags {
        let resource = format!("{name}:{t}");
        state
            .audit
            .record(actor.event("create", "artifact", resource, project.id).detail(digest.to_string()));
    }
    Ok(parsed)
}

/// Deletes a tag (the artifact stays) or, by digest, an artifact with its accessories and the
/// children it frees, writing their audit rows.
pub(crate) async fn delete_manifest(
    state: &AppState,
    actor: Actor<'_>,
    project_id: i64,
    name: &str,
    reference: &Reference,
) -> OciResult<()> {
    let kind = match reference {
        Reference::Tag(t) => {
            if !write::delete_tag(&state.db, write::TagOf::Repository(name), t).await? {
                return Err(OciError::new(Code::ManifestUnknown, format!("tag {t:?} unknown")));
            }
            "tag"
        }
        Reference::Digest(_) => {
            let m = find_manifest(state, name, reference).await?;
            // Its accessories and the children it frees go with it (one transaction).
            let deleted = write::delete_artifact(&state.db, m.artifact_id).await?;
            for d in deleted.iter().skip(1) {
                state.audit.record(actor.event(
                    "delete",
                    "artifact",
                    format!("{name}@{}", d.digest),
                    project_id,
                ));
            }
            "artifact"
        }
    };
    tracing::info!(repository = name, %reference, actor = actor.name, "manifest deleted");
    state.audit.record(actor.event("delete", kind, artifact_ref(name, reference), project_id));
    Ok(())
}

/// The size of a blob `name` may serve; `BlobUnknown` when it may not.
pub(crate) async fn blob_size(state: &AppState, name: &str, digest: &Digest) -> OciResult<u64> {
    meta::blob_in_repo(&state.db, name, digest)
        .await?
        .ok_or_else(|| OciError::new(Code::BlobUnknown, format!("blob {digest} unknown")))
}

/// A blob's bytes (`range`: `[start, end)`) from storage.
pub(crate) async fn read_blob(
    state: &AppState,
    digest: &Digest,
    range: Option<(u64, u64)>,
) -> OciResult<ByteStream> {
    state.storage.read(&digest.blob_key(), range).await.map_err(|e| match e {
        crate::storage::StorageError::NotFound => {
            tracing::error!(%digest, "blob recorded in the database is missing from storage");
            OciError::new(Code::BlobUnknown, format!("blob {digest} unknown"))
        }
        other => other.into(),
    })
}

/// A referrer's artifact type as the referrers API reports it: the manifest's own, else an
/// image manifest's config media type; `None` for an index without one.
pub(crate) async fn referrer_artifact_type(
    state: &AppState,
    r: &meta::Referrer,
) -> OciResult<Option<String>> {
    Ok(if !r.artifact_type.is_empty() {
        Some(r.artifact_type.clone())
    } else if r.media_type == manifest::OCI_MANIFEST || r.media_type == manifest::DOCKER_MANIFEST {
        let d: Digest = r.digest.parse().map_err(|_| OciError::internal("stored digest is invalid"))?;
        manifest::config_media_type(&state.storage.read_all(&d.blob_key()).await?)
    } else {
        None
    })
}

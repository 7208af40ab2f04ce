//! This product's own registry as a `Content`, in-process: what replication (the local end of
//! a push- or pull-based policy) and the proxy cache (storing what it fetched) read and write.
//!
//! **Every operation is the registry's own** (`registry::internal`, which the `/v2` handlers
//! call too): a blob goes through an upload session (hashed while it streams in, under the
//! upload row's lease, digest and size checked, reserved against GC, linked by `record_blob`);
//! a manifest through the same parsing, reference checks, `artifacts::write::put_manifest` and
//! `create` audit rows as a push; a manifest read counts a pull and writes its audit row; a
//! delete removes accessories and freed children as a `DELETE` does. What is absent is the HTTP
//! hop and the token check: the caller is trusted (replication runs as the system), and audit
//! rows name `actor`. Repository names are validated as `/v2` validates them, and a repository
//! written to must be in an existing project (`NotFound` otherwise).
//!
//! Tests: `tests/it/replication_copy.rs` (copies between two instances, the audit rows, a
//! manifest with missing blobs refused).

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;

use super::content::{Content, ContentError, ContentResult, Descriptor, Manifest};
use crate::registry::digest::{Digest, UploadHasher};
use crate::registry::error::{Code, OciError};
use crate::registry::internal::{self, Actor};
use crate::registry::meta::{self, ProjectRef};
use crate::registry::path::{self, Reference};
use crate::state::AppState;
use crate::storage::ByteStream;

/// Tags and referrers read per query.
const PAGE: i64 = 1000;

/// The local registry, acting as `actor` (the name audit rows carry, e.g. `replication`).
/// Writes into a proxy-cache project are refused, as every push is, except for the proxy cache
/// itself (`LocalRegistry::proxy_cache`).
#[derive(Clone)]
pub struct LocalRegistry {
    pub state: AppState,
    pub actor: String,
    fills_proxy_cache: bool,
}

impl LocalRegistry {
    pub fn new(state: AppState, actor: impl Into<String>) -> Self {
        LocalRegistry { state, actor: actor.into(), fills_proxy_cache: false }
    }

    /// The writer of the proxy cache: the one allowed to store into proxy-cache projects.
    pub fn proxy_cache(state: AppState, actor: impl Into<String>) -> Self {
        LocalRegistry { state, actor: actor.into(), fills_proxy_cache: true }
    }

    fn actor(&self) -> Actor<'_> {
        Actor { name: &self.actor, ip: "" }
    }

    /// The project of a repository written to (name checked as a push checks it).
    async fn project(&self, repo: &str) -> ContentResult<ProjectRef> {
        internal::check_repo_name(repo).map_err(|e| content_error(e, repo))?;
        let project = meta::project_of(&self.state.db, repo)
            .await
            .map_err(|e| content_error(e.into(), repo))?
            .ok_or_else(|| {
                ContentError::NotFound(format!("project {:?} not found", meta::project_name(repo)))
            })?;
        if project.registry_id.is_some() && !self.fills_proxy_cache {
            return Err(ContentError::Denied(crate::api::projects::proxy_push_refusal(meta::project_name(
                repo,
            ))));
        }
        Ok(project)
    }
}

/// A repository name read from: the OCI grammar (a bad one is `Invalid`, never a query).
fn check_name(repo: &str) -> ContentResult<()> {
    if path::valid_name(repo) {
        Ok(())
    } else {
        Err(ContentError::Invalid(format!(
            "invalid repository name {:?}",
            repo.chars().take(300).collect::<String>()
        )))
    }
}

/// A registry error as a content error, prefixed with what it was about.
fn content_error(e: OciError, what: &str) -> ContentError {
    let msg = format!("{what}: {}", e.message);
    match e.code {
        Code::BlobUnknown | Code::BlobUploadUnknown | Code::ManifestUnknown | Code::NameUnknown => {
            ContentError::NotFound(msg)
        }
        Code::Unauthorized => ContentError::Unauthorized(msg),
        Code::Denied | Code::Precondition => ContentError::Denied(msg),
        Code::BlobUploadInvalid
        | Code::DigestInvalid
        | Code::ManifestBlobUnknown
        | Code::ManifestInvalid
        | Code::NameInvalid
        | Code::SizeInvalid
        | Code::RangeInvalid
        | Code::TagInvalid
        | Code::PaginationNumberInvalid
        | Code::Unsupported => ContentError::Invalid(msg),
        Code::Unavailable | Code::TooManyRequests => ContentError::Transient(msg),
        Code::Unknown => ContentError::Other(msg),
    }
}

fn reference(repo: &str, reference: &str) -> ContentResult<Reference> {
    internal::parse_reference(reference).map_err(|e| content_error(e, &format!("{repo}:{reference}")))
}

/// Removes an upload session and its data, best effort (GC removes what is left over).
async fn discard_upload(state: &AppState, id: &str) {
    let _ = meta::delete_upload(&state.db, id).await;
    let _ = state.storage.delete(&internal::upload_key(id)).await;
}

/// Discards an upload session when `put_blob` ends without completing it, also when its future
/// is dropped (a stopped or failed copy cancels its other transfers).
struct UploadGuard {
    state: AppState,
    id: Option<String>,
}

impl UploadGuard {
    async fn discard(mut self) {
        if let Some(id) = self.id.take() {
            discard_upload(&self.state, &id).await;
        }
    }
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let state = self.state.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { discard_upload(&state, &id).await });
            }
        }
    }
}

/// What went wrong with the stream handed to `put_blob` (as opposed to the registry).
#[derive(Default)]
struct SourceFault(std::sync::Mutex<Option<ContentError>>);

impl SourceFault {
    fn set(&self, e: ContentError) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
    }
    fn take(&self) -> Option<ContentError> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// `data`, failing once it has given more than `size` bytes; errors of `data` and the overrun
/// are noted in `fault`.
fn bounded(data: ByteStream, size: u64, digest: &Digest, fault: Arc<SourceFault>) -> ByteStream {
    let digest = digest.to_string();
    let mut seen = 0u64;
    Box::pin(data.map(move |item| match item {
        Ok(chunk) => {
            seen += chunk.len() as u64;
            if seen > size {
                let msg = format!("blob {digest}: the source sent more than the {size} bytes named");
                fault.set(ContentError::Invalid(msg.clone()));
                Err(std::io::Error::other(msg))
            } else {
                Ok(chunk)
            }
        }
        Err(e) => {
            fault.set(ContentError::Transient(format!("blob {digest}: reading the source failed: {e}")));
            Err(e)
        }
    }))
}

#[async_trait]
impl Content for LocalRegistry {
    /// `local:` and the cluster's token key id: replicas of one cluster share it, another
    /// instance (another database) has another.
    fn registry_key(&self) -> String {
        format!("local:{}", self.state.secrets.token_key.kid)
    }

    async fn head_manifest(&self, repo: &str, r: &str) -> ContentResult<Option<Descriptor>> {
        check_name(repo)?;
        let rf = reference(repo, r)?;
        let found = meta::find_manifest(&self.state.db, repo, &rf)
            .await
            .map_err(|e| content_error(e.into(), &format!("{repo}:{r}")))?;
        Ok(found.map(|m| Descriptor {
            media_type: m.media_type,
            digest: m.digest,
            size: m.size,
            artifact_type: None,
        }))
    }

    async fn get_manifest(&self, repo: &str, r: &str) -> ContentResult<Option<Manifest>> {
        check_name(repo)?;
        let rf = reference(repo, r)?;
        let what = format!("{repo}:{r}");
        let st = &self.state;
        let Some(m) =
            meta::find_manifest(&st.db, repo, &rf).await.map_err(|e| content_error(e.into(), &what))?
        else {
            return Ok(None);
        };
        let bytes = st
            .storage
            .read_all(&m.digest.blob_key())
            .await
            .map_err(|e| content_error(e.into(), &format!("manifest {} in {repo}", m.digest)))?;
        if Digest::of(m.digest.algorithm, &bytes) != m.digest {
            tracing::error!(repository = repo, digest = %m.digest, "stored manifest does not match its digest");
            return Err(ContentError::Invalid(format!(
                "manifest {} in {repo}: the stored bytes do not match the digest",
                m.digest
            )));
        }
        if let Some(p) = meta::project_of(&st.db, repo).await.map_err(|e| content_error(e.into(), &what))? {
            internal::record_pull(st, self.actor(), p.id, repo, &rf, &m);
        }
        Ok(Some(Manifest { media_type: m.media_type, digest: m.digest, bytes }))
    }

    async fn put_manifest(&self, repo: &str, r: &str, manifest: &Manifest) -> ContentResult<()> {
        let project = self.project(repo).await?;
        let rf = reference(repo, r)?;
        let what = format!("manifest {} to {repo}:{r}", manifest.digest);
        // By tag the bytes must still match the digest the caller named.
        let want = matches!(rf, Reference::Tag(_)).then(|| manifest.digest.clone());
        let digest =
            internal::manifest_digest(&rf, &manifest.bytes, want).map_err(|e| content_error(e, &what))?;
        let tags: Vec<&str> = match &rf {
            Reference::Tag(t) => vec![t.as_str()],
            Reference::Digest(_) => vec![],
        };
        internal::push_manifest(
            &self.state,
            self.actor(),
            &project,
            repo,
            &digest,
            Some(&manifest.media_type),
            manifest.bytes.clone(),
            &tags,
        )
        .await
        .map_err(|e| content_error(e, &what))?;
        Ok(())
    }

    async fn delete_manifest(&self, repo: &str, digest: &Digest) -> ContentResult<bool> {
        check_name(repo)?;
        let what = format!("{repo}@{digest}");
        let Some(project) =
            meta::project_of(&self.state.db, repo).await.map_err(|e| content_error(e.into(), &what))?
        else {
            return Ok(false);
        };
        let rf = Reference::Digest(digest.clone());
        match internal::delete_manifest(&self.state, self.actor(), project.id, repo, &rf).await {
            Ok(()) => Ok(true),
            Err(e) if e.code == Code::ManifestUnknown => Ok(false),
            Err(e) => Err(content_error(e, &format!("deleting {what}"))),
        }
    }

    async fn blob_exists(&self, repo: &str, digest: &Digest) -> ContentResult<Option<u64>> {
        check_name(repo)?;
        meta::blob_in_repo(&self.state.db, repo, digest)
            .await
            .map_err(|e| content_error(e.into(), &format!("blob {digest} in {repo}")))
    }

    async fn get_blob(&self, repo: &str, digest: &Digest) -> ContentResult<(u64, ByteStream)> {
        check_name(repo)?;
        let what = format!("blob {digest} in {repo}");
        let size =
            internal::blob_size(&self.state, repo, digest).await.map_err(|e| content_error(e, &what))?;
        let data =
            internal::read_blob(&self.state, digest, None).await.map_err(|e| content_error(e, &what))?;
        Ok((size, data))
    }

    async fn put_blob(&self, repo: &str, digest: &Digest, size: u64, data: ByteStream) -> ContentResult<()> {
        self.project(repo).await?;
        let what = format!("blob {digest} to {repo}");
        let st = &self.state;
        let id = internal::new_upload(st, repo).await.map_err(|e| content_error(e, &what))?;
        let guard = UploadGuard { state: st.clone(), id: Some(id.clone()) };
        let fault = Arc::new(SourceFault::default());
        let stream = bounded(data, size, digest, fault.clone());
        let fresh = UploadHasher::new().save();
        let (written, hash_state) = match internal::append_stream(st, &id, 0, &fresh, stream).await {
            Ok(r) => r,
            Err(e) => {
                guard.discard().await;
                return Err(fault.take().unwrap_or_else(|| content_error(e, &what)));
            }
        };
        if written != size {
            guard.discard().await;
            return Err(ContentError::Invalid(format!(
                "{what}: the source sent {written} bytes, {size} were named"
            )));
        }
        if let Err(e) = internal::close_upload(st, repo, &id, written, &hash_state, digest).await {
            guard.discard().await;
            return Err(content_error(e, &what));
        }
        // Closed: the session is gone.
        let mut guard = guard;
        guard.id = None;
        Ok(())
    }

    async fn mount_blob(&self, from_repo: &str, repo: &str, digest: &Digest) -> ContentResult<bool> {
        check_name(from_repo)?;
        self.project(repo).await?;
        meta::mount_blob(&self.state.db, from_repo, repo, digest).await.map_err(|e| {
            content_error(e.into(), &format!("mounting blob {digest} from {from_repo} to {repo}"))
        })
    }

    async fn tags(&self, repo: &str) -> ContentResult<Vec<String>> {
        check_name(repo)?;
        let mut all: Vec<String> = vec![];
        loop {
            let page = meta::tags(&self.state.db, repo, PAGE, all.last().map(String::as_str))
                .await
                .map_err(|e| content_error(e.into(), &format!("tags of {repo}")))?;
            let done = (page.len() as i64) < PAGE;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    async fn referrers(&self, repo: &str, subject: &Digest) -> ContentResult<Vec<Descriptor>> {
        check_name(repo)?;
        let what = format!("referrers of {repo}@{subject}");
        let mut all = vec![];
        let mut after: Option<String> = None;
        loop {
            let page = meta::referrers(&self.state.db, repo, subject, None, after.as_deref(), PAGE)
                .await
                .map_err(|e| content_error(e.into(), &what))?;
            let done = (page.len() as i64) < PAGE;
            for r in page {
                after = Some(r.digest.clone());
                let digest: Digest = r.digest.parse().map_err(|_| {
                    ContentError::Other(format!("{what}: stored digest {:?} is invalid", r.digest))
                })?;
                let artifact_type = internal::referrer_artifact_type(&self.state, &r)
                    .await
                    .map_err(|e| content_error(e, &what))?;
                all.push(Descriptor {
                    media_type: r.media_type,
                    digest,
                    size: r.size.max(0) as u64,
                    artifact_type,
                });
            }
            if done {
                return Ok(all);
            }
        }
    }
}

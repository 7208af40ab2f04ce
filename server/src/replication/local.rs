//! This product's own registry as a `Content`, in-process. PLACEHOLDER: the local+copy work
//! replaces it (same checks, metadata writes and audit rows as a push over `/v2`).

use crate::state::AppState;

/// The local registry, acting as `actor` (the name audit rows carry, e.g. `replication`).
#[derive(Clone)]
pub struct LocalRegistry {
    pub state: AppState,
    pub actor: String,
}

impl LocalRegistry {
    pub fn new(state: AppState, actor: impl Into<String>) -> Self {
        LocalRegistry { state, actor: actor.into() }
    }
}

// PLACEHOLDER (copy helper): lets this branch compile; the local+copy work's real
// implementation replaces it at merge.
#[async_trait::async_trait]
impl super::content::Content for LocalRegistry {
    fn registry_key(&self) -> String {
        "local".into()
    }
    async fn head_manifest(
        &self,
        _repo: &str,
        _reference: &str,
    ) -> super::content::ContentResult<Option<super::content::Descriptor>> {
        Err(placeholder())
    }
    async fn get_manifest(
        &self,
        _repo: &str,
        _reference: &str,
    ) -> super::content::ContentResult<Option<super::content::Manifest>> {
        Err(placeholder())
    }
    async fn put_manifest(
        &self,
        _repo: &str,
        _reference: &str,
        _manifest: &super::content::Manifest,
    ) -> super::content::ContentResult<()> {
        Err(placeholder())
    }
    async fn delete_manifest(
        &self,
        _repo: &str,
        _digest: &crate::registry::digest::Digest,
    ) -> super::content::ContentResult<bool> {
        Err(placeholder())
    }
    async fn blob_exists(
        &self,
        _repo: &str,
        _digest: &crate::registry::digest::Digest,
    ) -> super::content::ContentResult<Option<u64>> {
        Err(placeholder())
    }
    async fn get_blob(
        &self,
        _repo: &str,
        _digest: &crate::registry::digest::Digest,
    ) -> super::content::ContentResult<(u64, crate::storage::ByteStream)> {
        Err(placeholder())
    }
    async fn put_blob(
        &self,
        _repo: &str,
        _digest: &crate::registry::digest::Digest,
        _size: u64,
        _data: crate::storage::ByteStream,
    ) -> super::content::ContentResult<()> {
        Err(placeholder())
    }
    async fn mount_blob(
        &self,
        _from_repo: &str,
        _repo: &str,
        _digest: &crate::registry::digest::Digest,
    ) -> super::content::ContentResult<bool> {
        Err(placeholder())
    }
    async fn tags(&self, _repo: &str) -> super::content::ContentResult<Vec<String>> {
        Err(placeholder())
    }
    async fn referrers(
        &self,
        _repo: &str,
        _subject: &crate::registry::digest::Digest,
    ) -> super::content::ContentResult<Vec<super::content::Descriptor>> {
        Err(placeholder())
    }
}

// PLACEHOLDER (copy helper)
fn placeholder() -> super::content::ContentError {
    super::content::ContentError::Other("placeholder".into())
}

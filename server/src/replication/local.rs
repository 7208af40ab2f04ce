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

// PLACEHOLDER (copy helper): a stand-in so replication compiles before the local+copy work
// lands; the lead takes that helper's `impl Content for LocalRegistry` at merge.
mod placeholder {
    use async_trait::async_trait;

    use super::LocalRegistry;
    use crate::registry::digest::Digest;
    use crate::replication::content::{Content, ContentError, ContentResult, Descriptor, Manifest};
    use crate::storage::ByteStream;

    fn todo() -> ContentError {
        ContentError::Other("placeholder".into())
    }

    #[async_trait]
    impl Content for LocalRegistry {
        fn registry_key(&self) -> String {
            "local".into()
        }
        async fn head_manifest(&self, _: &str, _: &str) -> ContentResult<Option<Descriptor>> {
            Err(todo())
        }
        async fn get_manifest(&self, _: &str, _: &str) -> ContentResult<Option<Manifest>> {
            Err(todo())
        }
        async fn put_manifest(&self, _: &str, _: &str, _: &Manifest) -> ContentResult<()> {
            Err(todo())
        }
        async fn delete_manifest(&self, _: &str, _: &Digest) -> ContentResult<bool> {
            Err(todo())
        }
        async fn blob_exists(&self, _: &str, _: &Digest) -> ContentResult<Option<u64>> {
            Err(todo())
        }
        async fn get_blob(&self, _: &str, _: &Digest) -> ContentResult<(u64, ByteStream)> {
            Err(todo())
        }
        async fn put_blob(&self, _: &str, _: &Digest, _: u64, _: ByteStream) -> ContentResult<()> {
            Err(todo())
        }
        async fn mount_blob(&self, _: &str, _: &str, _: &Digest) -> ContentResult<bool> {
            Err(todo())
        }
        async fn tags(&self, _: &str) -> ContentResult<Vec<String>> {
            Err(todo())
        }
        async fn referrers(&self, _: &str, _: &Digest) -> ContentResult<Vec<Descriptor>> {
            Err(todo())
        }
    }
}

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

//! The registry types this product can replicate with. One file per type; `TYPES` lists them.
//! `with_tags` lists the tags of many repositories a few at a time (what every type needs).

use futures::{StreamExt, TryStreamExt};

use super::adapter::{Adapter, AdapterType, Endpoint, RemoteRepository};
use super::content::{Content, ContentError, ContentResult};

pub mod docker_registry;
pub mod harbor;

/// Every registry type, in the order `/replication/adapters` lists them.
pub static TYPES: &[AdapterType] = &[docker_registry::TYPE, harbor::TYPE];

/// The type called `name`.
pub fn find(name: &str) -> Option<&'static AdapterType> {
    TYPES.iter().find(|t| t.name == name)
}

/// An adapter for a stored endpoint.
pub fn build(endpoint: &Endpoint) -> ContentResult<Box<dyn Adapter>> {
    let t = find(&endpoint.kind)
        .ok_or_else(|| ContentError::Other(format!("unknown registry type {:?}", endpoint.kind)))?;
    (t.build)(endpoint)
}

/// Tag listings in flight at once.
const TAG_LISTINGS: usize = 8;

/// Each of `names` with its tags, `TAG_LISTINGS` listings at a time, in the order given.
pub(crate) async fn with_tags(
    content: &dyn Content,
    names: Vec<String>,
) -> ContentResult<Vec<RemoteRepository>> {
    futures::stream::iter(names)
        .map(|name| async move {
            let tags = content.tags(&name).await?;
            Ok::<_, ContentError>(RemoteRepository { name, tags })
        })
        .buffered(TAG_LISTINGS)
        .try_collect()
        .await
}

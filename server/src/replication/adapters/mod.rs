//! The registry types this product can replicate with. One file per type; `TYPES` lists them.

use super::adapter::{Adapter, AdapterType, Endpoint};
use super::content::{ContentError, ContentResult};

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

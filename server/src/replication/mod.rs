//! Replication between registries and proxy-cache projects (Harbor's registries,
//! replication policies, executions and tasks, and a project's `registry_id`).
//!
//! - `content`: the `Content` trait, one registry's manifests, blobs, tags and referrers.
//! - `adapter`: the `Adapter` trait, what a registry *type* adds (listing, namespaces, health)
//!   and the registry of adapter types (`harbor`, `docker-registry`; one file each).

pub mod adapter;
pub mod content;

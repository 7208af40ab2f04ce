//! Replication between registries and proxy-cache projects (Harbor's registries,
//! replication policies, executions and tasks, and a project's `registry_id`).
//!
//! - `content`: the `Content` trait, one registry's manifests, blobs, tags and referrers.
//! - `adapter`: the `Adapter` trait, what a registry *type* adds (listing, namespaces, health);
//!   `adapters/` has one file per type and the `TYPES` table.
//! - `local`: this product's registry as a `Content`, in-process.
//! - `copy`: one artifact from one `Content` to another.
//! - `endpoints`: the stored registry endpoints (credentials encrypted).
//! - `proxy`: proxy-cache projects, pull-through with caching (`registry/proxied.rs` is its
//!   `/v2` glue); `memory`: an in-memory `Content`, the upstream test double.

pub mod adapter;
pub mod adapters;
pub mod content;
pub mod copy;
pub mod endpoints;
pub mod local;
pub mod memory;
pub mod proxy;

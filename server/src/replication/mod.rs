//! Replication between registries and proxy-cache projects (Harbor's registries,
//! replication policies, executions and tasks, and a project's `registry_id`).
//!
//! - `content`: the `Content` trait, one registry's manifests, blobs, tags and referrers.
//! - `adapter`: the `Adapter` trait, what a registry *type* adds (listing, namespaces, health);
//!   `adapters/` has one file per type and the `TYPES` table.
//! - `client`: `RemoteRegistry`, any OCI Distribution registry over HTTP(S) as a `Content`.
//! - `local`: this product's registry as a `Content`, in-process.
//! - `copy`: one artifact from one `Content` to another.
//! - `endpoints`: the stored registry endpoints (validation, CRUD, health status; the secret
//!   encrypted by `crypto`, AES-256-GCM with the cluster's encryption key). Their REST API is
//!   `api/registries.rs`. `health`: their `status`, re-checked every 5 minutes.
//! - `policy` (rules: validation, CRUD, schedules) and `filters` (Harbor's filter semantics,
//!   doublestar patterns, destination names).
//! - `execution` (runs on the job queue: start, settle, stop, events), `resolve` (what a run
//!   replicates), `task` (one artifact's job), `connector` (the seam to adapters, the local
//!   registry and `copy`, replaced by test doubles).
//! - `proxy`: proxy-cache projects, pull-through with caching (`registry/proxied.rs` is its
//!   `/v2` glue); `memory`: an in-memory `Content`, the upstream test double.

pub mod adapter;
pub mod adapters;
pub mod client;
pub mod connector;
pub mod content;
pub mod copy;
pub use crate::crypto;
pub mod endpoints;
pub mod events;
pub mod execution;
pub mod filters;
pub mod health;
pub mod local;
pub mod memory;
pub mod policy;
pub mod proxy;
pub mod resolve;
pub mod task;

pub use execution::{on_artifact_event, ArtifactEvent};

//! The integration tests, one binary: the real router on a real database (`common::TestApp`),
//! one module per surface. Linking a test binary of this crate takes minutes and ~1 GB, so
//! every test lives here unless it measures or changes process-wide state (then it gets its own
//! binary beside this one, saying why at its top: `auth_burst.rs`).
//!
//! Test names say which servers they need: `postgres`, `redis`, `s3`, `distribution` or `slapd`
//! in a test's path means PostgreSQL, Redis, Garage (S3), CNCF distribution or OpenLDAP. The
//! fast inner loop skips those and runs the SQLite-only rest: `cargo test -p server --test it --
//! --skip postgres --skip redis --skip s3 --skip distribution --skip slapd`
//! (`scripts/test --fast`). The full run (`scripts/test`) starts the servers and runs them all.

#[macro_use]
mod common;

mod api;
mod audit_forward;
mod binary;
mod bodies;
mod catalog_api;
mod db;
mod gc;
mod harness;
mod immutable;
mod jobservice;
mod labels;
mod ldap;
mod metrics;
mod oidc;
mod openapi;
mod portal;
mod proxy_cache;
mod proxy_cache_e2e;
mod purge;
mod quotas;
mod rbac_api;
mod registries_api;
mod registry;
mod replication_api;
mod replication_client;
mod replication_copy;
mod replication_e2e;
mod retention;
mod schema;
mod sessions_redis;
mod token;
mod usergroups;
mod webhook;

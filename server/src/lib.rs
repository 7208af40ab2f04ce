//! The `berth` server: REST API, portal SSR, (later) the OCI registry and token service.
//! See ARCHITECTURE.md for the code map and invariants.

pub mod accounts;
pub mod api;
pub mod auth;
pub mod config;
pub mod db;
pub mod portal;
pub mod projects;
pub mod registry;
pub mod router;
pub mod secrets;
pub mod serve;
pub mod sessions;
pub mod state;
pub mod storage;
pub mod telemetry;

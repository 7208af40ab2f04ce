//! The `berth` server: REST API, portal SSR, the OCI registry and its token service.
//! See ARCHITECTURE.md for the code map and invariants.

pub mod accounts;
pub mod api;
pub mod artifacts;
pub mod audit;
pub mod auth;
pub mod client;
pub mod config;
pub mod db;
pub mod gc;
pub mod jobs;
pub mod portal;
pub mod projects;
pub mod rbac;
pub mod registry;
pub mod robots;
pub mod router;
pub mod secrets;
pub mod serve;
pub mod sessions;
pub mod settings;
pub mod state;
pub mod storage;
pub mod supervisor;
pub mod telemetry;
pub mod token;
pub mod usage;

#[cfg(test)]
mod parser_props;

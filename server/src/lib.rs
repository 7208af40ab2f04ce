//! The `berth` server: REST API, portal SSR, the OCI registry and its token service.
//! See ARCHITECTURE.md for the code map and invariants.

pub mod accounts;
pub mod api;
pub mod artifacts;
pub mod audit;
pub mod audit_forward;
pub mod auth;
pub mod client;
pub mod config;
pub mod crypto;
pub mod db;
pub mod gc;
pub mod identity;
pub mod immutable;
pub mod jobs;
pub mod jobservice;
pub mod labels;
pub mod metrics;
pub mod portal;
pub mod projects;
pub mod purge;
pub mod quota;
pub mod rbac;
pub mod registry;
pub mod replication;
pub mod retention;
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
pub mod webhook;

#[cfg(test)]
mod parser_props;

/// Every Rust source file of this crate (`src/`, recursively) with its text, for the tests that
/// check an invariant by scanning the code.
#[cfg(test)]
pub(crate) fn source_files() -> Vec<(std::path::PathBuf, String)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                out.push((p, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    assert!(out.len() > 50, "the scan found the sources");
    out
}

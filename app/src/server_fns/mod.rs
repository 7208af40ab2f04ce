//! Server functions, grouped by domain. All live under `/portal/fn/<name>` (stable names, no
//! hashes) so the CSRF guard in `server` can recognise them.

pub mod api;
pub mod auth;
pub mod gc;
pub mod purge;

//! How replication jobs reach registries and move content: the one seam between the execution
//! engine (`execution`, `task`) and the adapters, the local registry and `copy`.
//!
//! The product uses `Product`: stored endpoints (`endpoints::load`, credentials decrypted with
//! the cluster's key) built into adapters (`adapters::build`), this registry in-process
//! (`local::LocalRegistry`) and `copy::copy_artifact`. `AppState::replication` holds it; tests
//! replace it on their copy of the state to drive runs with a test double (the jobs read it
//! from the state they are run with, `jobs::tick`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::adapter::Adapter;
use super::content::{Content, ContentError, ContentResult};
use super::copy::{CopyObserver, CopyOptions, CopyReport, Side};
use crate::state::AppState;

#[async_trait]
pub trait Connector: Send + Sync {
    /// An adapter for the stored registry `registry_id`.
    async fn adapter(&self, state: &AppState, registry_id: i64) -> ContentResult<Box<dyn Adapter>>;
    /// This registry's content, writing as `actor` (the name its audit rows carry).
    fn local(&self, state: &AppState, actor: &str) -> Arc<dyn Content>;
    /// Copies one artifact (see `copy::copy_artifact`).
    async fn copy(
        &self,
        src: Side<'_>,
        dst: Side<'_>,
        opts: &CopyOptions,
        observer: &dyn CopyObserver,
    ) -> ContentResult<CopyReport>;
    /// The wait before the first retry of a transiently failed task step (doubling after).
    fn retry_backoff(&self) -> Duration {
        Duration::from_secs(2)
    }
}

/// The product's connector.
pub struct Product;

#[async_trait]
impl Connector for Product {
    async fn adapter(&self, state: &AppState, registry_id: i64) -> ContentResult<Box<dyn Adapter>> {
        let endpoint = super::endpoints::load(&state.db, &state.secrets.encryption_key, registry_id)
            .await
            .map_err(|e| super::endpoints::load_failure(registry_id, e))?
            .ok_or_else(|| ContentError::NotFound(format!("registry {registry_id} does not exist")))?;
        super::adapters::build(&endpoint)
    }

    fn local(&self, state: &AppState, actor: &str) -> Arc<dyn Content> {
        Arc::new(super::local::LocalRegistry::new(state.clone(), actor))
    }

    async fn copy(
        &self,
        src: Side<'_>,
        dst: Side<'_>,
        opts: &CopyOptions,
        observer: &dyn CopyObserver,
    ) -> ContentResult<CopyReport> {
        super::copy::copy_artifact(src, dst, opts, observer).await
    }
}

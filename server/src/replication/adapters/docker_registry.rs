//! The `docker-registry` registry type: any registry speaking the OCI Distribution API (CNCF
//! distribution, Docker's registry:2, Zot, …). Repositories come from `/v2/_catalog`, tags
//! from `/v2/<name>/tags/list`, content through `client::RemoteRegistry` (Basic or
//! Bearer-token authentication); there are no namespaces to create.

use std::sync::Arc;

use async_trait::async_trait;

use super::with_tags;
use crate::replication::adapter::{Adapter, AdapterType, Endpoint, RemoteRepository};
use crate::replication::client::RemoteRegistry;
use crate::replication::content::{Content, ContentResult};

pub const TYPE: AdapterType = AdapterType {
    name: "docker-registry",
    description: "Any registry speaking the OCI Distribution API (CNCF distribution / registry:2 and \
                  compatible): repositories from /v2/_catalog, tags from tags/list, Basic or \
                  Bearer-token authentication.",
    filters: &["name", "tag", "label", "resource"],
    triggers: &["manual", "scheduled", "event_based"],
    build,
};

fn build(endpoint: &Endpoint) -> ContentResult<Box<dyn Adapter>> {
    Ok(Box::new(DockerRegistry { client: Arc::new(RemoteRegistry::new(endpoint)?) }))
}

pub struct DockerRegistry {
    client: Arc<RemoteRegistry>,
}

#[async_trait]
impl Adapter for DockerRegistry {
    /// `GET /v2/` with the credentials.
    async fn health(&self) -> ContentResult<()> {
        self.client.ping().await
    }

    async fn repositories(
        &self,
        keep: &(dyn for<'a> Fn(&'a str) -> bool + Send + Sync),
    ) -> ContentResult<Vec<RemoteRepository>> {
        let names: Vec<String> = self.client.catalog().await?.into_iter().filter(|n| keep(n)).collect();
        with_tags(self.client.as_ref(), names).await
    }

    async fn ensure_namespace(&self, _namespace: &str) -> ContentResult<()> {
        Ok(())
    }

    fn content(&self) -> Arc<dyn Content> {
        self.client.clone()
    }
}

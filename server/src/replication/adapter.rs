//! Registry types ("adapters"): what replication needs from a kind of registry beyond its
//! content — listing repositories and tags, creating a namespace, a health check — and the
//! table of known types behind `/replication/adapters` and `/replication/adapterinfos`.
//!
//! **Adding a registry type is one file**: implement `Adapter` in `adapters/<type>.rs` and add
//! its `AdapterType` to `TYPES`. Content moves through `Content` (`client::RemoteRegistry`
//! for every HTTP registry), so an adapter only says how to list and where to push.

use std::sync::Arc;

use async_trait::async_trait;

use super::content::{Content, ContentResult};

/// A registry endpoint as stored (`registries` row), with its secret decrypted. Never
/// serialised: the secret must not reach a log or a response.
#[derive(Clone)]
pub struct Endpoint {
    pub id: i64,
    pub name: String,
    /// Adapter type name (`harbor`, `docker-registry`, …).
    pub kind: String,
    /// Base URL without a trailing slash (`https://host[:port]`).
    pub url: String,
    /// `basic` (user name + password), `oauth` (a bearer token as the secret), or empty.
    pub credential_type: String,
    pub access_key: String,
    pub access_secret: String,
    /// Skip TLS certificate verification.
    pub insecure: bool,
    /// PEM CA bundle trusted in addition to the system roots (empty: system roots only).
    pub ca_certificate: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("access_key", &self.access_key)
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

/// A repository on a registry with the tags replication considers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRepository {
    /// Full name (`namespace/…/name`).
    pub name: String,
    pub tags: Vec<String>,
}

/// One kind of registry.
#[async_trait]
pub trait Adapter: Send + Sync {
    /// Reachable and the credentials accepted (`/registries/ping`, the registry's `status`).
    async fn health(&self) -> ContentResult<()>;
    /// Repositories whose full name `keep` accepts, each with its tags. `keep` is the policy's
    /// name filter, so an adapter that can filter on the server side may ask for less.
    /// (`for<'a>` is spelled out: `async_trait` would otherwise tie the `&str` to the call.)
    async fn repositories(
        &self,
        keep: &(dyn for<'a> Fn(&'a str) -> bool + Send + Sync),
    ) -> ContentResult<Vec<RemoteRepository>>;
    /// Makes sure a repository can be pushed to under `namespace` (a Harbor project is
    /// created when missing); a no-op for registries without namespaces.
    async fn ensure_namespace(&self, namespace: &str) -> ContentResult<()>;
    /// The registry's content API.
    fn content(&self) -> Arc<dyn Content>;
}

/// A registry type: its name, what it supports (for `/registries/{id}/info` and
/// `/replication/adapterinfos`) and how to build an adapter for an endpoint.
pub struct AdapterType {
    pub name: &'static str,
    pub description: &'static str,
    /// Filters the type supports (`name`, `tag`, `label`, `resource`).
    pub filters: &'static [&'static str],
    /// Triggers the type supports (`manual`, `scheduled`, `event_based`).
    pub triggers: &'static [&'static str],
    pub build: fn(&Endpoint) -> ContentResult<Box<dyn Adapter>>,
}

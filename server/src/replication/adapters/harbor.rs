//! The `harbor` registry type: Harbor, or this product (which speaks Harbor's REST API).
//! Projects and repositories come from the REST API (`/api/v2.0/projects`,
//! `/api/v2.0/projects/{name}/repositories`, paged), tags and content from `/v2` through
//! `client::RemoteRegistry`. `ensure_namespace` creates a missing project (private).

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::with_tags;
use crate::replication::adapter::{Adapter, AdapterType, Endpoint, RemoteRepository};
use crate::replication::client::{RemoteRegistry, MAX_LISTING_ENTRIES};
use crate::replication::content::{Content, ContentError, ContentResult};

pub const TYPE: AdapterType = AdapterType {
    name: "harbor",
    description: "Harbor, or another instance of this product: projects and repositories through \
                  the REST API (/api/v2.0), content through /v2; missing projects are created on \
                  push.",
    filters: &["name", "tag", "label", "resource"],
    triggers: &["manual", "scheduled", "event_based"],
    build,
};

/// Entries per page of REST listings.
const PAGE_SIZE: usize = 100;

fn build(endpoint: &Endpoint) -> ContentResult<Box<dyn Adapter>> {
    Ok(Box::new(Harbor { client: Arc::new(RemoteRegistry::new(endpoint)?) }))
}

pub struct Harbor {
    client: Arc<RemoteRegistry>,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

/// A Harbor project name (`[a-z0-9]+([._-][a-z0-9]+)*`, at most 255 characters).
fn valid_project(name: &str) -> bool {
    name.len() <= 255 && crate::registry::path::valid_name(name) && !name.contains('/')
}

impl Harbor {
    /// The `name` of every item of a paged REST listing (`page`, `page_size`; `Link` or
    /// `X-Total-Count` say whether there is more).
    async fn names(&self, path: &str) -> ContentResult<Vec<String>> {
        let mut out = vec![];
        for page in 1.. {
            let resp = self
                .client
                .api(Method::GET, &format!("{path}?page={page}&page_size={PAGE_SIZE}"), None)
                .await?;
            if !resp.status.is_success() {
                return Err(self.client.api_error(&resp, &format!("GET {path}")));
            }
            let items: Vec<Named> = resp.json()?;
            let n = items.len();
            out.extend(items.into_iter().map(|i| i.name));
            if out.len() > MAX_LISTING_ENTRIES {
                return Err(ContentError::Invalid(format!(
                    "{path}: more than {MAX_LISTING_ENTRIES} entries"
                )));
            }
            let total = resp
                .headers
                .get("x-total-count")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            let more = match (resp.next_link(), total) {
                (Some(_), _) => true,
                (None, Some(t)) => out.len() < t,
                (None, None) => n == PAGE_SIZE,
            };
            if n == 0 || !more {
                break;
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Adapter for Harbor {
    /// `/api/v2.0/ping` (a Harbor API answers), then `GET /v2/` with the credentials.
    async fn health(&self) -> ContentResult<()> {
        let resp = self.client.api(Method::GET, "/api/v2.0/ping", None).await?;
        if resp.status != StatusCode::OK {
            return Err(ContentError::Other(format!(
                "{} does not answer Harbor's API (/api/v2.0/ping: {}); is it a docker-registry endpoint?",
                self.client.url(),
                resp.status
            )));
        }
        self.client.ping().await
    }

    async fn repositories(
        &self,
        keep: &(dyn for<'a> Fn(&'a str) -> bool + Send + Sync),
    ) -> ContentResult<Vec<RemoteRepository>> {
        let mut names = vec![];
        for project in self.names("/api/v2.0/projects").await? {
            if !valid_project(&project) {
                continue;
            }
            let repos = self.names(&format!("/api/v2.0/projects/{project}/repositories")).await?;
            names.extend(repos.into_iter().filter(|r| keep(r)));
        }
        with_tags(self.client.as_ref(), names).await
    }

    /// Creates the project (the first component of `namespace`), private, when missing.
    async fn ensure_namespace(&self, namespace: &str) -> ContentResult<()> {
        let project = namespace.split('/').next().unwrap_or("");
        if !valid_project(project) {
            return Err(ContentError::Invalid(format!("{project:?} is not a valid project name")));
        }
        let head = self
            .client
            .api(Method::HEAD, &format!("/api/v2.0/projects?project_name={project}"), None)
            .await?;
        if head.status == StatusCode::OK {
            return Ok(());
        }
        let body = json!({"project_name": project, "metadata": {"public": "false"}});
        let resp = self.client.api(Method::POST, "/api/v2.0/projects", Some(&body)).await?;
        match resp.status {
            // 409: created meanwhile by someone else.
            StatusCode::CREATED | StatusCode::CONFLICT => Ok(()),
            _ => Err(self.client.api_error(&resp, &format!("creating project {project:?}"))),
        }
    }

    fn content(&self) -> Arc<dyn Content> {
        self.client.clone()
    }
}

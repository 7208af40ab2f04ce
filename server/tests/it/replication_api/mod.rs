//! Replication policies, runs and tasks (`/api/v2.0/replication`), on SQLite and PostgreSQL.
//!
//! Runs reach registries through `AppState::replication` (`replication::connector`); these
//! tests put `Double` there on their copy of the state and run the job queue with it
//! (`jobs::tick`), so everything up to the copy is the product's own code: the API, the
//! policy checks, the listing from the database, the tasks on the job queue, stop, schedules,
//! events and settling. The copy itself is the double's (`replication_e2e.rs` copies for real
//! between two instances).

mod policies;
mod runs;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use server::registry::digest::Digest;
use server::replication::adapter::{Adapter, RemoteRepository};
use server::replication::connector::Connector;
use server::replication::content::{Content, ContentError, ContentResult, Descriptor, Manifest};
use server::replication::copy::{CopyObserver, CopyOptions, CopyReport, Side};
use server::state::AppState;
use server::storage::ByteStream;

use crate::common::oci::{admin, push_image, sha256};
use crate::common::{Resp, TestApp};

pub async fn api(app: &TestApp, method: Method, path: &str, body: Value) -> Resp {
    crate::common::api(app, method, path, &admin(), body).await
}

/// A stored registry endpoint (the registries API is another module's; the row is enough here).
pub async fn registry(app: &TestApp, name: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO registries (name, type, url, created_at, updated_at) VALUES ($1, 'harbor', 'https://127.0.0.1:1', 1, 1) RETURNING id",
    )
    .bind(name)
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap()
}

/// Creates a project as the admin.
pub async fn project(app: &TestApp, name: &str) {
    let r = api(app, Method::POST, "/api/v2.0/projects", json!({ "project_name": name })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

/// Creates a policy through the API, expecting 201; returns its id.
pub async fn create_policy(app: &TestApp, body: Value) -> i64 {
    let r = api(app, Method::POST, "/api/v2.0/replication/policies", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let loc = r.header("location").unwrap();
    loc.rsplit('/').next().unwrap().parse().unwrap()
}

/// Starts a run through the API, expecting 201; returns its id.
pub async fn start(app: &TestApp, policy: i64) -> i64 {
    let r = api(app, Method::POST, "/api/v2.0/replication/executions", json!({ "policy_id": policy })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap()
}

pub async fn execution(app: &TestApp, id: i64) -> Value {
    let r = api(app, Method::GET, &format!("/api/v2.0/replication/executions/{id}"), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

pub async fn tasks(app: &TestApp, id: i64) -> Vec<Value> {
    let r = api(
        app,
        Method::GET,
        &format!("/api/v2.0/replication/executions/{id}/tasks?page_size=100"),
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

pub async fn task_log(app: &TestApp, execution: i64, task: i64) -> String {
    let r = api(
        app,
        Method::GET,
        &format!("/api/v2.0/replication/executions/{execution}/tasks/{task}/log"),
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    r.text()
}

/// A push-based policy to registry `reg` (manual trigger) with `extra` fields merged in.
pub fn push_policy(name: &str, reg: i64, extra: Value) -> Value {
    let mut p = json!({
        "name": name, "dest_registry": {"id": reg}, "dest_namespace": "mirror",
        "dest_namespace_replace_count": 1, "trigger": {"type": "manual"},
        "filters": [{"type": "name", "value": "library/**"}], "enabled": true, "override": true,
    });
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

/// Pushes a small image with unique content; returns its digest.
pub async fn image(app: &TestApp, repo: &str, tag: &str) -> String {
    let layer = format!("{repo}:{tag}:{}", uuid::Uuid::new_v4());
    push_image(app, repo, tag, &[layer.as_bytes()]).await.0
}

/// The state with the double as its connector.
pub fn with_double(app: &TestApp, double: &Arc<Double>) -> AppState {
    let mut s = app.state.clone();
    s.replication = double.clone();
    s
}

// ---------------------------------------------------------------- the test double

/// One registry's manifests by (repository, reference) → digest.
#[derive(Default)]
pub struct FakeContent {
    pub manifests: Mutex<HashMap<(String, String), String>>,
    pub deleted: Mutex<Vec<(String, String)>>,
}

fn nope() -> ContentError {
    ContentError::Other("not used by these tests".into())
}

#[async_trait]
impl Content for FakeContent {
    fn registry_key(&self) -> String {
        "fake".into()
    }
    async fn head_manifest(&self, repo: &str, reference: &str) -> ContentResult<Option<Descriptor>> {
        let m = self.manifests.lock().unwrap();
        Ok(m.get(&(repo.to_string(), reference.to_string())).map(|d| Descriptor {
            media_type: crate::common::oci::OCI_MANIFEST.into(),
            digest: d.parse().unwrap(),
            size: 1,
            artifact_type: None,
        }))
    }
    async fn get_manifest(&self, _: &str, _: &str) -> ContentResult<Option<Manifest>> {
        Err(nope())
    }
    async fn put_manifest(&self, _: &str, _: &str, _: &Manifest) -> ContentResult<()> {
        Err(nope())
    }
    async fn delete_manifest(&self, repo: &str, digest: &Digest) -> ContentResult<bool> {
        let d = digest.to_string();
        let mut m = self.manifests.lock().unwrap();
        let before = m.len();
        m.retain(|(r, _), v| !(r == repo && *v == d));
        self.deleted.lock().unwrap().push((repo.to_string(), d));
        Ok(m.len() < before)
    }
    async fn blob_exists(&self, _: &str, _: &Digest) -> ContentResult<Option<u64>> {
        Err(nope())
    }
    async fn get_blob(&self, _: &str, _: &Digest) -> ContentResult<(u64, ByteStream)> {
        Err(nope())
    }
    async fn put_blob(&self, _: &str, _: &Digest, _: u64, _: ByteStream) -> ContentResult<()> {
        Err(nope())
    }
    async fn mount_blob(&self, _: &str, _: &str, _: &Digest) -> ContentResult<bool> {
        Err(nope())
    }
    async fn tags(&self, _: &str) -> ContentResult<Vec<String>> {
        Err(nope())
    }
    async fn referrers(&self, _: &str, _: &Digest) -> ContentResult<Vec<Descriptor>> {
        Err(nope())
    }
}

pub struct FakeAdapter {
    repos: Vec<RemoteRepository>,
    content: Arc<FakeContent>,
    namespaces: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Adapter for FakeAdapter {
    async fn health(&self) -> ContentResult<()> {
        Ok(())
    }
    async fn repositories(
        &self,
        _keep: &(dyn for<'a> Fn(&'a str) -> bool + Send + Sync),
    ) -> ContentResult<Vec<RemoteRepository>> {
        // Everything: the run checks the name filter on what an adapter returns anyway.
        Ok(self.repos.clone())
    }
    async fn ensure_namespace(&self, namespace: &str) -> ContentResult<()> {
        self.namespaces.lock().unwrap().push(namespace.to_string());
        Ok(())
    }
    fn content(&self) -> Arc<dyn Content> {
        self.content.clone()
    }
}

/// What the double's copy does for a destination repository: each call takes the next
/// scripted result (then succeeds); `Block` waits until the task is asked to stop.
#[derive(Clone, Debug)]
pub enum Step {
    Fail(ContentError),
    Block,
}

/// The test double: a fake remote registry (listing `repos`), a fake local one, and a copy
/// that records each call and follows `script`.
#[derive(Default)]
pub struct Double {
    pub repos: Vec<RemoteRepository>,
    pub remote: Arc<FakeContent>,
    pub local: Arc<FakeContent>,
    /// (src repo, src reference, dst repo, dst reference) of each successful copy.
    pub copies: Mutex<Vec<(String, String, String, String)>>,
    pub script: Mutex<HashMap<String, VecDeque<Step>>>,
    pub namespaces: Arc<Mutex<Vec<String>>>,
    /// Copies running now, and the most at once.
    pub running: Mutex<(usize, usize)>,
}

impl Double {
    pub fn script(&self, dst_repo: &str, steps: Vec<Step>) {
        self.script.lock().unwrap().insert(dst_repo.to_string(), steps.into());
    }
    pub fn copies(&self) -> Vec<(String, String, String, String)> {
        let mut c = self.copies.lock().unwrap().clone();
        c.sort();
        c
    }
}

#[async_trait]
impl Connector for Double {
    async fn adapter(&self, _: &AppState, _: i64) -> ContentResult<Box<dyn Adapter>> {
        Ok(Box::new(FakeAdapter {
            repos: self.repos.clone(),
            content: self.remote.clone(),
            namespaces: self.namespaces.clone(),
        }))
    }
    fn local(&self, _: &AppState, _: &str) -> Arc<dyn Content> {
        self.local.clone()
    }
    async fn copy(
        &self,
        src: Side<'_>,
        dst: Side<'_>,
        _: &CopyOptions,
        observer: &dyn CopyObserver,
    ) -> ContentResult<CopyReport> {
        let step = self.script.lock().unwrap().get_mut(dst.repo).and_then(|s| s.pop_front());
        {
            let mut r = self.running.lock().unwrap();
            r.0 += 1;
            r.1 = r.1.max(r.0);
        }
        // Long enough for others to overlap when tasks run concurrently.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let out = match step {
            Some(Step::Fail(e)) => Err(e),
            Some(Step::Block) => {
                let until = std::time::Instant::now() + Duration::from_secs(30);
                while !observer.should_stop() && std::time::Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(ContentError::Other("stopped".into()))
            }
            None => {
                observer.log(format!("fake copy of {}:{}", src.repo, src.reference));
                observer.transferred(10);
                let digest = if src.reference.starts_with("sha256:") {
                    src.reference.to_string()
                } else {
                    sha256(format!("{}:{}", src.repo, src.reference).as_bytes())
                };
                self.copies.lock().unwrap().push((
                    src.repo.to_string(),
                    src.reference.to_string(),
                    dst.repo.to_string(),
                    dst.reference.to_string(),
                ));
                Ok(CopyReport {
                    digest: Some(digest.parse().unwrap()),
                    manifests: 1,
                    bytes: 10,
                    ..Default::default()
                })
            }
        };
        self.running.lock().unwrap().0 -= 1;
        out
    }
    fn retry_backoff(&self) -> Duration {
        Duration::from_millis(20)
    }
}

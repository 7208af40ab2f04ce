//! TestApp: the real router on a real database, driven without a socket (`oneshot`).
//!
//! `both_dbs!` generates each test twice: on a fresh SQLite file and on a fresh PostgreSQL
//! database created in the server named by `TEST_BERTH_POSTGRES_URL` (the test command starts
//! one; a missing variable fails the Postgres variant loudly instead of skipping it) and dropped
//! when the test ends (`PgDb`). Generated names end in `sqlite`, `postgres`, `postgres_fs` or
//! `postgres_s3`, which is what the fast loop's `--skip postgres --skip s3` relies on.
//! `all_backends!` (three variants) and `both_dbs!` take `toml = EXPR` for extra configuration
//! (the GC tests' zero window).
//! Shared REST helpers live here (`api`, `member`, `PW`), OCI ones in `oci` (pushes and the
//! steps of a blob upload).
#![allow(dead_code)]

pub mod oci;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use base64::Engine;
use http_body_util::BodyExt;
use server::config::Config;
use server::state::AppState;
use sqlx::Connection;
use tower::ServiceExt;

pub const ADMIN_PASSWORD: &str = "Harbor12345";
/// The password the REST tests give the users they create.
pub const PW: &str = "Passw0rd!x";

/// A JSON request to `/api/v2.0` with `auth` (`""`: none); a `Value::Null` body is sent empty.
pub async fn api(app: &TestApp, method: Method, path: &str, auth: &str, body: serde_json::Value) -> Resp {
    let mut headers = vec![("content-type", "application/json")];
    if !auth.is_empty() {
        headers.push(("authorization", auth));
    }
    app.call(method, path, &headers, if body.is_null() { String::new() } else { body.to_string() }).await
}

/// Adds `name` to `project` with `role` as the admin (`POST .../members`); returns the response.
pub async fn member(app: &TestApp, project: &str, name: &str, role: i64) -> Resp {
    let body = serde_json::json!({"role_id": role, "member_user": {"username": name}});
    api(app, Method::POST, &format!("/api/v2.0/projects/{project}/members"), &oci::admin(), body).await
}

/// Creates a local user with default profile fields, through the product's own insert.
pub async fn create_user(
    db: &server::db::Db,
    username: &str,
    password: &str,
    sysadmin: bool,
) -> server::accounts::User {
    let new = server::accounts::NewUser {
        username: username.into(),
        password: password.into(),
        email: format!("{username}@example.com"),
        sysadmin,
        ..Default::default()
    };
    server::accounts::insert_user(db, &new).await.unwrap_or_else(|e| panic!("create user {username}: {e}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbChoice {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    pub config: Config,
    _dir: Arc<tempfile::TempDir>,
    /// The PostgreSQL database, shared with siblings; dropped with the last of them.
    _pg: Option<Arc<PgDb>>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts the Harbor error format and returns the first error's code.
    pub fn error_code(&self) -> String {
        let j = self.json();
        let e = &j["errors"][0];
        assert!(e["message"].is_string(), "no message in {j}");
        e["code"].as_str().unwrap_or_else(|| panic!("no code in {j}")).to_string()
    }
    /// `sid=…` from Set-Cookie.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers.get_all(header::SET_COOKIE).iter().find_map(|v| {
            let s = v.to_str().ok()?;
            let first = s.split(';').next()?;
            first.starts_with("sid=").then(|| first.to_string())
        })
    }
}

pub fn basic(user: &str, pass: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
}

/// A fresh, empty PostgreSQL database in the server named by `TEST_BERTH_POSTGRES_URL`, dropped
/// when this handle goes (also when the test panics), so a full run leaves no test databases.
pub struct PgDb {
    pub url: String,
    admin: String,
    name: String,
}

impl PgDb {
    pub async fn create() -> PgDb {
        let admin = std::env::var("TEST_BERTH_POSTGRES_URL").expect(
            "TEST_BERTH_POSTGRES_URL is not set: run the README's test command (scripts/test), \
             which starts PostgreSQL and sets it",
        );
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&admin).await.expect("connect to test PostgreSQL");
        let name = format!("berth_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
        let (base, _) = admin.rsplit_once('/').expect("URL with a database name");
        PgDb { url: format!("{base}/{name}"), admin, name }
    }
}

impl Drop for PgDb {
    /// `DROP DATABASE … WITH (FORCE)` ends the connections the app's pools and background tasks
    /// still hold. It runs on its own thread and runtime: a `Drop` may run inside the test's
    /// runtime (which cannot be blocked on) or while the test unwinds from a panic.
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async {
                let mut conn = sqlx::AnyConnection::connect(&admin).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
            .map_err(std::io::Error::other)
        })
        .join();
        let failure = match dropped {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "the dropping thread panicked".to_string(),
        };
        let msg = format!("could not drop test database {}: {failure}", self.name);
        // A second panic while unwinding would abort the whole test binary.
        if std::thread::panicking() {
            eprintln!("{msg}");
        } else {
            panic!("{msg}");
        }
    }
}

pub struct Builder {
    db: DbChoice,
    s3: bool,
    toml: String,
    dir: Option<Arc<tempfile::TempDir>>,
}

impl TestApp {
    pub fn builder(db: DbChoice) -> Builder {
        Builder { db, s3: false, toml: String::new(), dir: None }
    }

    pub async fn new(db: DbChoice) -> TestApp {
        Self::builder(db).build().await
    }

    /// Another instance ("replica" or "restart") on the same database and storage.
    pub async fn sibling(&self) -> TestApp {
        let state = AppState::build(self.config.clone()).await.expect("build sibling");
        TestApp {
            router: server::router::router(state.clone()),
            state,
            config: self.config.clone(),
            _dir: self._dir.clone(),
            _pg: self._pg.clone(),
        }
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.router.clone().oneshot(req).await.expect("infallible router");
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("read body").to_bytes().to_vec();
        Resp { status: parts.status, headers: parts.headers, body }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Request::get(path).body(Body::empty()).unwrap()).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut b = Request::get(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(b.body(Body::empty()).unwrap()).await
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(b.body(body.into()).unwrap()).await
    }

    /// Logs in through `POST /c/login`; returns (cookie, csrf token).
    pub async fn login(&self, user: &str, pass: &str) -> (String, String) {
        let body = format!("principal={user}&password={pass}");
        let r = self
            .call(Method::POST, "/c/login", &[("content-type", "application/x-www-form-urlencoded")], body)
            .await;
        assert_eq!(r.status, StatusCode::OK, "login failed: {}", r.text());
        let cookie = r.session_cookie().expect("session cookie");
        let csrf = r.header("x-harbor-csrf-token").expect("csrf header").to_string();
        (cookie, csrf)
    }
}

impl Builder {
    /// Blob storage in the S3 server the test command starts (Garage), under a fresh prefix.
    pub fn s3(mut self) -> Self {
        self.s3 = true;
        self
    }

    /// Extra TOML appended to the generated configuration.
    pub fn toml(mut self, extra: &str) -> Self {
        self.toml.push_str(extra);
        self.toml.push('\n');
        self
    }

    pub async fn build(self) -> TestApp {
        let dir = self.dir.unwrap_or_else(|| Arc::new(tempfile::tempdir().unwrap()));
        let pg = match self.db {
            DbChoice::Sqlite => None,
            DbChoice::Postgres => Some(Arc::new(PgDb::create().await)),
        };
        let db_url = match &pg {
            None => format!("sqlite://{}/berth.db", dir.path().display()),
            Some(pg) => pg.url.clone(),
        };
        let storage = if self.s3 {
            let c = server::config::S3Config::from_test_env();
            format!(
                "[storage]\nkind = \"s3\"\n[storage.s3]\nendpoint = \"{}\"\nregion = \"{}\"\nbucket = \"{}\"\n\
                 access_key_id = \"{}\"\nsecret_access_key = \"{}\"\nprefix = \"test-{}\"\n",
                c.endpoint.unwrap_or_default(),
                c.region,
                c.bucket,
                c.access_key_id,
                c.secret_access_key,
                uuid::Uuid::new_v4().simple()
            )
        } else {
            format!("[storage]\npath = \"{}/storage\"\n", dir.path().display())
        };
        // Top-level keys first, then sections.
        let toml = format!(
            "{}\n[database]\nurl = \"{db_url}\"\nmax_connections = 5\n{storage}[log]\nlevel = \"warn\"\n",
            self.toml,
        );
        let config = Config::from_toml(&toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
        let state = AppState::build(config.clone()).await.expect("build app");
        TestApp { router: server::router::router(state.clone()), state, config, _dir: dir, _pg: pg }
    }
}

/// Runs each test body on SQLite and PostgreSQL with filesystem storage, and on PostgreSQL
/// with S3 storage (Garage). `toml = EXPR` appends configuration (`Builder::toml`).
#[macro_export]
macro_rules! all_backends {
    ($name:ident, |$app:ident| $body:block) => {
        all_backends!($name, toml = "", |$app| $body);
    };
    ($name:ident, toml = $toml:expr, |$app:ident| $body:block) => {
        $crate::backend_variants!(
            $name, $toml, |$app| $body,
            sqlite_fs: Sqlite, postgres_fs: Postgres, postgres_s3: Postgres s3
        );
    };
}

/// Runs each test body on SQLite and on PostgreSQL. `toml = EXPR` appends configuration.
#[macro_export]
macro_rules! both_dbs {
    ($name:ident, |$app:ident| $body:block) => {
        both_dbs!($name, toml = "", |$app| $body);
    };
    ($name:ident, toml = $toml:expr, |$app:ident| $body:block) => {
        $crate::backend_variants!($name, $toml, |$app| $body, sqlite: Sqlite, postgres: Postgres);
    };
}

/// The module `all_backends!` and `both_dbs!` generate: the body as `run`, and one test per
/// variant (`name: DbChoice [s3]`) running it on a fresh `TestApp` built with `toml`.
#[macro_export]
macro_rules! backend_variants {
    ($name:ident, $toml:expr, |$app:ident| $body:block, $($variant:ident: $db:ident $($s3:ident)?),+) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::common::{DbChoice, TestApp};
            async fn run($app: TestApp) $body
            $(
                #[tokio::test]
                async fn $variant() {
                    run(TestApp::builder(DbChoice::$db).toml($toml)$(.$s3())?.build().await).await
                }
            )+
        }
    };
}

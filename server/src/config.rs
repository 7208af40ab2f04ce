//! Configuration: one TOML file (`berth.toml`, every key documented in `berth.example.toml`),
//! each key overridable by an environment variable `BERTH_<SECTION>__<KEY>` (double underscore
//! between section and key), e.g. `BERTH_DATABASE__URL=postgres://…`.
//!
//! Validation happens once, here, at start: a bad value produces one error line naming the key
//! and the process exits with code 2 (see `main.rs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Environment variable prefix of every configuration key.
pub const ENV_PREFIX: &str = "BERTH_";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// URL clients use to reach this service (realm of the token service, links, pull commands).
    pub external_url: String,
    /// Address the HTTP(S) listener binds to.
    pub listen: SocketAddr,
    /// Proxies (IP addresses or CIDR ranges) whose `X-Forwarded-For/-Proto/-Host` headers are
    /// believed: the client IP in the audit log and the token realm come from them.
    pub trusted_proxies: Vec<String>,
    pub tls: TlsConfig,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub redis: RedisConfig,
    pub session: SessionConfig,
    pub token: TokenConfig,
    pub admin: AdminConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub portal: PortalConfig,
    pub secrets: SecretsConfig,
    pub audit: AuditConfig,
    pub gc: GcConfig,
    pub replication: ReplicationConfig,
    pub metric: MetricConfig,
    pub webhook: WebhookConfig,
}

/// Prometheus metrics (`[metric]`, Harbor's `metric.enabled/port/path`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricConfig {
    /// Serve metrics in Prometheus' text format. Off by default.
    pub enabled: bool,
    /// 0: on the main listener (no authentication: restrict the path at the proxy); any
    /// other port: a second plain-HTTP listener on the main listener's address serving only
    /// `path` (Harbor's 9090).
    pub port: u16,
    /// The path metrics are served at.
    pub path: String,
}

impl Default for MetricConfig {
    fn default() -> Self {
        Self { enabled: false, port: 0, path: "/metrics".into() }
    }
}

/// Replication (`[replication]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationConfig {
    /// Replication jobs (tasks, and runs listing their resources) this replica runs at once,
    /// beside one other job (GC) at a time.
    pub workers: usize,
    /// Blobs of one artifact a task transfers at once.
    pub parallel_blobs: usize,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self { workers: 4, parallel_blobs: 4 }
    }
}

/// Webhook delivery (`[webhook]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Deliveries this replica makes at once (a pool of their own: a slow receiver never holds
    /// back GC or replication, nor more than one slot of the others).
    pub workers: usize,
    /// Attempts of one delivery before it is given up (Harbor's `WEBHOOK_JOB_MAX_RETRY`, 3
    /// there); with the backoff below, 10 attempts span 13.5 minutes.
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each further one, at most 5 minutes.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// Time a receiver has to answer one delivery.
    #[serde(with = "humantime_serde")]
    pub http_timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            workers: 8,
            max_attempts: 10,
            retry_backoff: Duration::from_secs(2),
            http_timeout: Duration::from_secs(10),
        }
    }
}

/// Connection limits of the listener (`[http]`): slow or idle clients cannot hold connections
/// (and file descriptors) for ever.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Time a client has to send a complete request head (request line and headers), counted
    /// from when the connection starts waiting for one: a new connection, or a kept-alive one
    /// after its last response. So it is also how long an idle keep-alive connection is kept.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Longest pause while a request body is being received (not the whole body's time: a slow
    /// push that keeps sending is never cut off). The request fails when it is exceeded.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Open connections at most; one more is answered `503` with `Connection: close` at once.
    /// Keep it under the process's file-descriptor limit (`ulimit -n`) minus what the database
    /// pool, storage and logs need.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(120),
            max_connections: 4096,
        }
    }
}

/// Garbage collection (`[gc]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcConfig {
    /// Blobs used (uploaded, mounted or referenced by a push) more recently than this are never
    /// collected: it protects pushes in progress. Must exceed the longest push.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Upload sessions untouched for this long are abandoned; GC removes them and their data.
    #[serde(with = "humantime_serde")]
    pub upload_max_age: Duration,
    /// Concurrent storage deletions during the sweep (S3 benefits from more).
    pub workers: usize,
}

impl Default for GcConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(2 * 3600),
            upload_max_age: Duration::from_secs(24 * 3600),
            workers: 16,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Audit rows older than this many days are purged (hourly); 0 keeps them forever.
    pub retention_days: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; TLS is on when both `cert` and `key` are set.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (created when missing) or `postgres://user:pass@host:port/db`.
    pub url: String,
    /// Upper bound of pooled connections per replica.
    pub max_connections: u32,
    /// How long a request waits for a free connection before failing with 503.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `filesystem` (a local directory or a shared CephFS/NFS mount) or `s3`.
    pub kind: String,
    /// Root directory of the filesystem backend.
    pub path: PathBuf,
    pub s3: S3Config,
}

/// An S3 bucket (AWS or any S3-compatible service such as Garage, Ceph RGW, MinIO).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// `http(s)://host:port` of an S3-compatible service; unset for AWS.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Key prefix inside the bucket (several installations can share one bucket).
    pub prefix: String,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: "us-east-1".into(),
            bucket: String::new(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            prefix: String::new(),
        }
    }
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl S3Config {
    /// The S3 server the test command starts (`TEST_BERTH_S3_*`); fails loudly when absent.
    pub fn from_test_env() -> S3Config {
        let get = |k: &str| {
            std::env::var(k).unwrap_or_else(|_| {
                panic!("{k} is not set: run the README's test command (scripts/test), which starts Garage")
            })
        };
        S3Config {
            endpoint: Some(get("TEST_BERTH_S3_ENDPOINT")),
            region: get("TEST_BERTH_S3_REGION"),
            bucket: get("TEST_BERTH_S3_BUCKET"),
            access_key_id: get("TEST_BERTH_S3_ACCESS_KEY"),
            secret_access_key: get("TEST_BERTH_S3_SECRET_KEY"),
            prefix: String::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port/db`; when set, portal sessions live in Redis (shared by all replicas).
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A session without activity for this long is over.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Send the cookie with `Secure` (defaults to true when `external_url` is https).
    pub secure_cookie: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Lifetime of registry bearer tokens.
    #[serde(with = "humantime_serde")]
    pub lifetime: Duration,
    /// `service` name clients ask tokens for (the `aud` claim).
    pub service: String,
    /// `iss` claim of issued tokens.
    pub issuer: String,
    /// Whether the token service hands out refresh tokens (`offline_token=true`,
    /// `access_type=offline`) and accepts the `refresh_token` grant. Off by default, like
    /// Harbor: `docker login` stores a refresh token as an identity token in the auth file it
    /// shares with podman, skopeo and buildah, which then refuse to run.
    pub refresh_tokens: bool,
    /// Lifetime of refresh tokens (`docker login` keeps one as its identity token).
    #[serde(with = "humantime_serde")]
    pub refresh_lifetime: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Password of `admin`, used only when the admin account is first created.
    pub initial_password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Consecutive failed logins after which an account is locked.
    pub max_failed_logins: u32,
    /// How long a locked account stays locked.
    #[serde(with = "humantime_serde")]
    pub lockout: Duration,
    /// How long a password checked by LDAP (or an OIDC CLI secret) and the groups found with it
    /// are reused for Basic auth and tokens before the directory is asked again: a password
    /// changed or a group membership removed in the directory takes effect within this.
    /// 0 asks the directory on every request.
    #[serde(with = "humantime_serde")]
    pub directory_cache: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `pretty` for terminals, `json` for log collectors.
    pub format: LogFormat,
    /// tracing filter directive, e.g. `info` or `info,server=debug`.
    pub level: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// Directory holding `pkg/berth.js`, `pkg/berth.wasm` and `pkg/berth.css`.
    /// Default: `site` next to the directory of the executable (`target/site`).
    pub site_root: Option<PathBuf>,
}

/// Secrets every replica must share. Generated on first start and kept in the database unless
/// given here (base64 for keys, PEM for the signing key).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// PKCS#8 PEM of the P-256 key that signs registry tokens (ES256).
    pub token_signing_key: Option<String>,
    /// base64 of 64 bytes: signs session cookies and derives CSRF tokens.
    pub session_key: Option<String>,
    /// base64 of 32 bytes: encrypts stored credentials (replication endpoints, …).
    pub encryption_key: Option<String>,
}

impl std::fmt::Debug for SecretsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |o: &Option<String>| if o.is_some() { "<set>" } else { "<generated>" };
        f.debug_struct("SecretsConfig")
            .field("token_signing_key", &shown(&self.token_signing_key))
            .field("session_key", &shown(&self.session_key))
            .field("encryption_key", &shown(&self.encryption_key))
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            external_url: "http://127.0.0.1:8080".into(),
            listen: "127.0.0.1:8080".parse().expect("static address"),
            trusted_proxies: Vec::new(),
            tls: TlsConfig::default(),
            http: HttpConfig::default(),
            database: DatabaseConfig::default(),
            storage: StorageConfig::default(),
            redis: RedisConfig::default(),
            session: SessionConfig::default(),
            token: TokenConfig::default(),
            admin: AdminConfig::default(),
            auth: AuthConfig::default(),
            log: LogConfig::default(),
            portal: PortalConfig::default(),
            secrets: SecretsConfig::default(),
            audit: AuditConfig::default(),
            gc: GcConfig::default(),
            replication: ReplicationConfig::default(),
            metric: MetricConfig::default(),
            webhook: WebhookConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://data/berth.db".into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { kind: "filesystem".into(), path: PathBuf::from("data/storage"), s3: S3Config::default() }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(60 * 60), secure_cookie: None }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(30 * 60),
            service: "harbor-registry".into(),
            issuer: "harbor-token-issuer".into(),
            refresh_tokens: false,
            refresh_lifetime: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self { initial_password: "Harbor12345".into() }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            max_failed_logins: 5,
            lockout: Duration::from_secs(5 * 60),
            directory_cache: Duration::from_secs(5),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Pretty, level: "info".into() }
    }
}

/// An IP address (as a single-address network) or a CIDR range.
fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>().ok().or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

/// A configuration error: always names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(key: &str, message: impl Into<String>) -> Self {
        Self { key: key.into(), message: message.into() }
    }
}

impl Config {
    /// Loads defaults, then the TOML file (when it exists, or always when named explicitly),
    /// then `BERTH_*` environment variables, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::new(
                        "--config",
                        format!("file {} does not exist", path.display()),
                    ));
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => figment = figment.merge(Toml::file("berth.toml")),
        }
        Self::from_figment(figment.merge(env_provider()))
    }

    /// Builds a configuration from defaults plus a TOML string (used by tests).
    pub fn from_toml(toml: &str) -> Result<Config, ConfigError> {
        Self::from_figment(Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(toml)))
    }

    fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment.extract().map_err(|e| {
            let key = e.path.join(".");
            let key = match (&e.kind, key.is_empty()) {
                (figment::error::Kind::UnknownField(f, _), true) => f.clone(),
                (_, true) => "<file>".into(),
                (_, false) => key,
            };
            ConfigError { key, message: e.kind.to_string() }
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let url = url::Url::parse(&self.external_url)
            .map_err(|e| ConfigError::new("external_url", e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(ConfigError::new("external_url", "must be an http:// or https:// URL"));
        }
        if url.path() != "/" || url.query().is_some() {
            return Err(ConfigError::new("external_url", "must not have a path or query"));
        }
        match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => return Err(ConfigError::new("tls.key", "required with tls.cert")),
            (None, Some(_)) => return Err(ConfigError::new("tls.cert", "required with tls.key")),
            (Some(c), Some(k)) => {
                for (key, p) in [("tls.cert", c), ("tls.key", k)] {
                    if !p.is_file() {
                        return Err(ConfigError::new(key, format!("{} is not a file", p.display())));
                    }
                }
            }
            _ => {}
        }
        if !(self.database.url.starts_with("sqlite:")
            || self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new("database.url", "must start with sqlite:// or postgres://"));
        }
        if !self.metric.path.starts_with('/')
            || self.metric.path.len() < 2
            || self.metric.path.contains(['?', '#', '{', '}'])
        {
            return Err(ConfigError::new("metric.path", "must be a path such as /metrics"));
        }
        if self.metric.enabled && self.metric.port != 0 && self.metric.port == self.listen.port() {
            return Err(ConfigError::new(
                "metric.port",
                "must differ from the main listener's port (0 serves metrics on it)",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::new("database.max_connections", "must be at least 1"));
        }
        match self.storage.kind.as_str() {
            "filesystem" => {
                if self.storage.path.as_os_str().is_empty() {
                    return Err(ConfigError::new("storage.path", "must not be empty"));
                }
            }
            "s3" => {
                let s3 = &self.storage.s3;
                for (key, v) in [
                    ("storage.s3.bucket", &s3.bucket),
                    ("storage.s3.region", &s3.region),
                    ("storage.s3.access_key_id", &s3.access_key_id),
                    ("storage.s3.secret_access_key", &s3.secret_access_key),
                ] {
                    if v.is_empty() {
                        return Err(ConfigError::new(key, "required when storage.kind = \"s3\""));
                    }
                }
                if let Some(ep) = &s3.endpoint {
                    let u = url::Url::parse(ep)
                        .map_err(|e| ConfigError::new("storage.s3.endpoint", e.to_string()))?;
                    if !matches!(u.scheme(), "http" | "https") {
                        return Err(ConfigError::new("storage.s3.endpoint", "must be an http(s):// URL"));
                    }
                }
            }
            other => {
                return Err(ConfigError::new(
                    "storage.kind",
                    format!("unknown storage kind {other:?} (expected \"filesystem\" or \"s3\")"),
                ))
            }
        }
        if let Some(r) = &self.redis.url {
            let u = url::Url::parse(r).map_err(|e| ConfigError::new("redis.url", e.to_string()))?;
            if !matches!(u.scheme(), "redis" | "rediss") {
                return Err(ConfigError::new("redis.url", "must start with redis:// or rediss://"));
            }
        }
        if self.session.timeout < Duration::from_secs(60) {
            return Err(ConfigError::new("session.timeout", "must be at least 1m"));
        }
        if self.token.lifetime < Duration::from_secs(60) {
            return Err(ConfigError::new("token.lifetime", "must be at least 1m"));
        }
        if self.token.issuer.is_empty() {
            return Err(ConfigError::new("token.issuer", "must not be empty"));
        }
        if self.token.refresh_lifetime < self.token.lifetime {
            return Err(ConfigError::new("token.refresh_lifetime", "must be at least token.lifetime"));
        }
        for p in &self.trusted_proxies {
            if parse_net(p).is_none() {
                return Err(ConfigError::new(
                    "trusted_proxies",
                    format!("{p:?} is neither an IP address nor a CIDR range"),
                ));
            }
        }
        if self.token.service.is_empty() {
            return Err(ConfigError::new("token.service", "must not be empty"));
        }
        crate::accounts::check_password_strength(&self.admin.initial_password)
            .map_err(|m| ConfigError::new("admin.initial_password", m))?;
        if self.auth.max_failed_logins == 0 {
            return Err(ConfigError::new("auth.max_failed_logins", "must be at least 1"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| ConfigError::new("log.level", e.to_string()))?;
        if self.http.header_read_timeout < Duration::from_secs(1) {
            return Err(ConfigError::new("http.header_read_timeout", "must be at least 1s"));
        }
        if self.http.body_read_timeout < Duration::from_secs(1) {
            return Err(ConfigError::new("http.body_read_timeout", "must be at least 1s"));
        }
        if self.http.max_connections == 0 {
            return Err(ConfigError::new("http.max_connections", "must be at least 1"));
        }
        if !(1..=256).contains(&self.gc.workers) {
            return Err(ConfigError::new("gc.workers", "must be between 1 and 256"));
        }
        if !(1..=64).contains(&self.webhook.workers) {
            return Err(ConfigError::new("webhook.workers", "must be between 1 and 64"));
        }
        if !(1..=100).contains(&self.webhook.max_attempts) {
            return Err(ConfigError::new("webhook.max_attempts", "must be between 1 and 100"));
        }
        if self.webhook.http_timeout.is_zero() || self.webhook.http_timeout > Duration::from_secs(300) {
            return Err(ConfigError::new("webhook.http_timeout", "must be between 1ms and 5 minutes"));
        }
        if self.webhook.retry_backoff > Duration::from_secs(300) {
            return Err(ConfigError::new("webhook.retry_backoff", "must be at most 5 minutes"));
        }
        if !(1..=64).contains(&self.replication.workers) {
            return Err(ConfigError::new("replication.workers", "must be between 1 and 64"));
        }
        if !(1..=64).contains(&self.replication.parallel_blobs) {
            return Err(ConfigError::new("replication.parallel_blobs", "must be between 1 and 64"));
        }
        crate::secrets::validate_config(&self.secrets)?;
        Ok(())
    }

    /// Whether the session cookie carries `Secure`.
    pub fn secure_cookie(&self) -> bool {
        self.session.secure_cookie.unwrap_or_else(|| self.external_url.starts_with("https://"))
    }

    /// Whether a peer address belongs to a trusted proxy.
    pub fn is_trusted_proxy(&self, ip: std::net::IpAddr) -> bool {
        self.trusted_proxies.iter().filter_map(|p| parse_net(p)).any(|n| n.contains(&ip))
    }

    /// The external URL without a trailing slash.
    pub fn external_base(&self) -> &str {
        self.external_url.trim_end_matches('/')
    }

    /// `host[:port]` of `external_url`: what `docker pull` and `docker login` take.
    pub fn registry_host(&self) -> String {
        url::Url::parse(&self.external_url)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_string(),
                })
            })
            .unwrap_or_default()
    }

    /// Directory of the portal's static files.
    pub fn site_root(&self) -> PathBuf {
        if let Some(p) = &self.portal.site_root {
            return p.clone();
        }
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().and_then(|d| d.parent()).map(|d| d.join("site")))
            .unwrap_or_else(|| PathBuf::from("target/site"))
    }
}

/// `BERTH_*` variables, except `BERTH_CONFIG` (the config file path, read by the CLI).
fn env_provider() -> Env {
    Env::prefixed(ENV_PREFIX).ignore(&["config"]).split("__").map(|k| k.as_str().to_ascii_lowercase().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.database.url, "sqlite://data/berth.db");
        assert_eq!(c.session.timeout, Duration::from_secs(3600));
        assert_eq!(c.token.lifetime, Duration::from_secs(1800));
        assert_eq!(c.admin.initial_password, "Harbor12345");
        assert!(!c.secure_cookie());
    }

    #[test]
    fn durations_parse_human_strings() {
        let c = Config::from_toml("[session]\ntimeout = \"2h 30m\"\n[token]\nlifetime = \"5m\"").unwrap();
        assert_eq!(c.session.timeout, Duration::from_secs(9000));
        assert_eq!(c.token.lifetime, Duration::from_secs(300));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("listen = \"nope\"", "listen"),
            ("external_url = \"ftp://x\"", "external_url"),
            ("[database]\nurl = \"mysql://x\"", "database.url"),
            ("[database]\nmax_connections = \"ten\"", "database.max_connections"),
            ("[session]\ntimeout = \"forever\"", "session.timeout"),
            ("[storage]\nkind = \"floppy\"", "storage.kind"),
            ("[storage]\nkind = \"s3\"", "storage.s3.bucket"),
            (
                "[storage]\nkind = \"s3\"\n[storage.s3]\nbucket = \"b\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\nendpoint = \"ftp://x\"",
                "storage.s3.endpoint",
            ),
            ("[storage]\nkind = \"s3\"", "storage.s3.bucket"),
            ("[storage]\nkind = \"s3\"\n[storage.s3]\nbucket = \"b\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\nendpoint = \"ftp://x\"", "storage.s3.endpoint"),
            ("[log]\nformat = \"xml\"", "log.format"),
            ("[http]\nheader_read_timeout = \"0s\"", "http.header_read_timeout"),
            ("[http]\nmax_connections = 0", "http.max_connections"),
            ("[replication]\nworkers = 0", "replication.workers"),
            ("[webhook]\nworkers = 0", "webhook.workers"),
            ("[webhook]\nmax_attempts = 0", "webhook.max_attempts"),
            ("[replication]\nparallel_blobs = 100", "replication.parallel_blobs"),
            ("[redis]\nurl = \"http://x\"", "redis.url"),
            ("[admin]\ninitial_password = \"short\"", "admin.initial_password"),
            ("[tls]\ncert = \"/nonexistent\"", "tls.key"),
            ("[secrets]\nsession_key = \"!!\"", "secrets.session_key"),
            ("[database]\nbogus = 1", "database.bogus"),
            ("bogus = 1", "bogus"),
        ];
        for (toml, key) in cases {
            let e = Config::from_toml(toml).expect_err(toml);
            assert_eq!(e.key, key, "{toml}: {e}");
            assert!(e.to_string().starts_with(&format!("configuration error: {key}: ")), "{e}");
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail dictates the closure's error type
    fn env_overrides_file() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("berth.toml", "[database]\nurl = \"sqlite://file.db\"\nmax_connections = 3")?;
            jail.set_env("BERTH_DATABASE__URL", "postgres://u:p@127.0.0.1/x");
            jail.set_env("BERTH_TOKEN__LIFETIME", "10m");
            jail.set_env("BERTH_CONFIG", "ignored.toml");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.database.url, "postgres://u:p@127.0.0.1/x");
            jail.set_env("BERTH_DATABASE__URLL", "typo");
            let e = Config::load(None).expect_err("unknown env key");
            assert_eq!(e.key, "database.urll");
            assert_eq!(c.database.max_connections, 3);
            assert_eq!(c.token.lifetime, Duration::from_secs(600));
            Ok(())
        });
    }

    #[test]
    fn example_file_matches_defaults() {
        // The committed example documents every key with its default: it must parse and give
        // exactly the built-in defaults.
        let example = include_str!("../../berth.example.toml");
        let parsed = Config::from_toml(example).unwrap();
        let defaults = Config::default();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), serde_json::to_value(&defaults).unwrap());
    }
}

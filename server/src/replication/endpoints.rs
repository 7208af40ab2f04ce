//! Stored registry endpoints (`registries` rows): validation, create, read, list, update,
//! delete, health status, and `load` — the endpoint with its secret decrypted, for adapters.
//!
//! Invariants:
//! - **The secret is stored only encrypted** (`crypto`, associated data `registries/<id>/access_secret`,
//!   so it is bound to its row and survives a rename); an empty secret is stored empty.
//!   Nothing here returns the plaintext except `load`/`endpoint`, whose `Endpoint` is never
//!   serialised (`registries_api::secret_is_never_returned_*`, `crypto::tests`).
//! - **A URL is stored normalised**: `http`/`https` with a host, no user info, query or
//!   fragment, no trailing slash (`tests::urls`).
//! - **Changing the URL without giving a secret drops the stored secret** (Harbor's rule: saved
//!   credentials are never sent to a new host an admin did not re-enter them for);
//!   changing anything else keeps it (`registries_api::update_keeps_or_drops_the_secret_*`).
//! - **A registry a replication policy or a proxy-cache project uses is not deleted** (412
//!   naming them; a reference inserted concurrently makes the foreign key refuse the delete,
//!   reported the same way) (`registries_api::delete_refused_while_referenced_*`).

use super::adapter::Endpoint;
use super::adapters;
use super::content::ContentError;
use crate::crypto::{self, CryptoError};
use crate::db::query::{Sql, Stmt};
use crate::db::{now_ms, Db, DbKind};

/// Harbor's limit on a registry's name.
pub const MAX_NAME: usize = 64;
pub const MAX_DESCRIPTION: usize = 1024;
pub const MAX_URL: usize = 2048;
pub const MAX_ACCESS_KEY: usize = 1024;
/// Tokens and JSON key files (GCR) are a few KiB.
pub const MAX_ACCESS_SECRET: usize = 16 * 1024;
pub const MAX_CA_CERTIFICATE: usize = 64 * 1024;

/// The credential types an endpoint may have: user name + password, a bearer token as the
/// secret, or none.
pub const CREDENTIAL_TYPES: [&str; 3] = ["basic", "oauth", ""];

/// Health as Harbor spells it.
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";
pub const UNKNOWN: &str = "unknown";

const COLUMNS: &str = "id, name, type, url, description, credential_type, access_key, access_secret, \
                       insecure, ca_certificate, status, status_checked_at, created_at, updated_at";

/// A `registries` row. `sealed_secret` is the encrypted secret (empty: none).
#[derive(Clone, sqlx::FromRow)]
pub struct Registry {
    pub id: i64,
    pub name: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub url: String,
    pub description: String,
    pub credential_type: String,
    pub access_key: String,
    #[sqlx(rename = "access_secret")]
    pub sealed_secret: String,
    #[sqlx(try_from = "crate::db::Flag")]
    pub insecure: bool,
    pub ca_certificate: String,
    pub status: String,
    pub status_checked_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("access_key", &self.access_key)
            .field("has_secret", &self.has_secret())
            .finish_non_exhaustive()
    }
}

impl Registry {
    pub fn has_secret(&self) -> bool {
        !self.sealed_secret.is_empty()
    }
}

/// Why an endpoint operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Bad input (400).
    #[error("{0}")]
    Invalid(String),
    /// The name is taken (409).
    #[error("a registry named {0:?} already exists")]
    Exists(String),
    #[error("registry {0} not found")]
    NotFound(i64),
    /// Referenced by policies or proxy-cache projects (412).
    #[error("{0}")]
    InUse(String),
    /// The stored secret cannot be read with this cluster's key.
    #[error("registry {id}: {source}")]
    Secret { id: i64, source: CryptoError },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Everything an endpoint is, with the secret in plain text (create, or a ping of settings
/// that are not stored).
#[derive(Clone, Default)]
pub struct Fields {
    pub name: String,
    pub kind: String,
    pub url: String,
    pub description: String,
    pub credential_type: String,
    pub access_key: String,
    pub access_secret: String,
    pub insecure: bool,
    pub ca_certificate: String,
}

/// A partial update (`None`: unchanged).
#[derive(Clone, Default)]
pub struct Change {
    pub name: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub credential_type: Option<String>,
    pub access_key: Option<String>,
    pub access_secret: Option<String>,
    pub insecure: Option<bool>,
    pub ca_certificate: Option<String>,
}

fn invalid(msg: impl Into<String>) -> EndpointError {
    EndpointError::Invalid(msg.into())
}

fn too_long(field: &str, value: &str, max: usize) -> Result<(), EndpointError> {
    if value.len() > max {
        return Err(invalid(format!("{field} is longer than {max} bytes")));
    }
    Ok(())
}

/// `http(s)://host[:port][/path]` as stored: parsed, checked and without a trailing slash.
pub fn normalize_url(s: &str) -> Result<String, EndpointError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(invalid("url is required"));
    }
    too_long("url", s, MAX_URL)?;
    let u = url::Url::parse(s).map_err(|e| invalid(format!("invalid url {s:?}: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(invalid(format!("invalid url {s:?}: the scheme must be http or https")));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!("invalid url {s:?}: no host")));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(invalid(
            "the url must not contain credentials; give them as access_key and access_secret",
        ));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(invalid(format!("invalid url {s:?}: no query or fragment is allowed")));
    }
    Ok(u.as_str().trim_end_matches('/').to_string())
}

/// The registry type names, for error messages.
fn type_names() -> String {
    adapters::TYPES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

/// Checks `kind` is a known registry type.
pub fn check_type(kind: &str) -> Result<(), EndpointError> {
    if adapters::find(kind).is_none() {
        return Err(invalid(format!("unsupported registry type {kind:?}; the types are {}", type_names())));
    }
    Ok(())
}

/// Checks a credential type (`basic`, `oauth` or empty).
pub fn check_credential_type(t: &str) -> Result<(), EndpointError> {
    if !CREDENTIAL_TYPES.contains(&t) {
        return Err(invalid(format!(
            "unsupported credential type {t:?}; use basic, oauth or leave it empty"
        )));
    }
    Ok(())
}

/// One or more PEM `CERTIFICATE` blocks, each DER inside (what a TLS client can load).
pub fn check_ca_certificate(pem: &str) -> Result<(), EndpointError> {
    use base64::Engine;
    too_long("ca_certificate", pem, MAX_CA_CERTIFICATE)?;
    let bad = || invalid("ca_certificate must be one or more PEM-encoded certificates");
    let mut rest = pem.trim();
    let mut found = 0;
    while !rest.is_empty() {
        let body = rest.strip_prefix("-----BEGIN CERTIFICATE-----").ok_or_else(bad)?;
        let (b64, after) = body.split_once("-----END CERTIFICATE-----").ok_or_else(bad)?;
        let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(compact).map_err(|_| bad())?;
        // A certificate is a DER SEQUENCE.
        if der.first() != Some(&0x30) || der.len() < 64 {
            return Err(bad());
        }
        found += 1;
        rest = after.trim_start();
    }
    if found == 0 {
        return Err(bad());
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), EndpointError> {
    if name.is_empty() {
        return Err(invalid("name is required"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(invalid(format!("the name is longer than {MAX_NAME} characters")));
    }
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err(invalid("the name must not start or end with spaces or contain control characters"));
    }
    Ok(())
}

/// Validates and normalises every field (the URL; the credential type `basic` when a key or
/// secret is given without one).
pub fn validate(f: &mut Fields) -> Result<(), EndpointError> {
    check_name(&f.name)?;
    too_long("description", &f.description, MAX_DESCRIPTION)?;
    validate_reach(f)
}

/// Validates and normalises what reaching the registry takes (type, URL, credential, TLS):
/// `validate` without the name and description, for a ping of unsaved settings.
pub fn validate_reach(f: &mut Fields) -> Result<(), EndpointError> {
    check_type(&f.kind)?;
    f.url = normalize_url(&f.url)?;
    too_long("access_key", &f.access_key, MAX_ACCESS_KEY)?;
    too_long("access_secret", &f.access_secret, MAX_ACCESS_SECRET)?;
    check_credential_type(&f.credential_type)?;
    if f.credential_type.is_empty() && !(f.access_key.is_empty() && f.access_secret.is_empty()) {
        f.credential_type = "basic".into();
    }
    if !f.ca_certificate.trim().is_empty() {
        check_ca_certificate(&f.ca_certificate)?;
    } else {
        f.ca_certificate.clear();
    }
    Ok(())
}

/// The associated data binding a stored secret to its row.
fn purpose(id: i64) -> String {
    format!("registries/{id}/access_secret")
}

fn seal(key: &[u8; 32], id: i64, secret: &str) -> String {
    if secret.is_empty() {
        String::new()
    } else {
        crypto::encrypt(key, &purpose(id), secret)
    }
}

/// The endpoint of a row, its secret decrypted.
pub fn endpoint(key: &[u8; 32], r: &Registry) -> Result<Endpoint, EndpointError> {
    let access_secret = if r.has_secret() {
        crypto::decrypt(key, &purpose(r.id), &r.sealed_secret)
            .map_err(|source| EndpointError::Secret { id: r.id, source })?
    } else {
        String::new()
    };
    Ok(Endpoint {
        id: r.id,
        name: r.name.clone(),
        kind: r.kind.clone(),
        url: r.url.clone(),
        credential_type: r.credential_type.clone(),
        access_key: r.access_key.clone(),
        access_secret,
        insecure: r.insecure,
        ca_certificate: r.ca_certificate.clone(),
    })
}

/// An endpoint that is not stored (a ping of new settings): id 0.
pub fn unsaved_endpoint(f: Fields) -> Endpoint {
    Endpoint {
        id: 0,
        name: f.name,
        kind: f.kind,
        url: f.url,
        credential_type: f.credential_type,
        access_key: f.access_key,
        access_secret: f.access_secret,
        insecure: f.insecure,
        ca_certificate: f.ca_certificate,
    }
}

/// What a failed `load` means to a caller that wanted to reach the registry: a secret that does
/// not decrypt needs an administrator (re-enter it), not a retry; anything else is the database.
pub fn load_failure(id: i64, e: sqlx::Error) -> ContentError {
    match e {
        sqlx::Error::Decode(why) => ContentError::Unauthorized(format!(
            "the stored secret of registry {id} cannot be decrypted ({why}); was the encryption key \
             changed? Enter the registry's secret again"
        )),
        e => ContentError::Transient(format!("database: {e}")),
    }
}

/// The endpoint with id `id`, its secret decrypted with `key`; `None` when there is none.
/// A secret that does not decrypt (another encryption key, a modified row) is an
/// `sqlx::Error::Decode` carrying the `CryptoError`, never a panic.
pub async fn load(db: &Db, key: &[u8; 32], id: i64) -> Result<Option<Endpoint>, sqlx::Error> {
    let Some(r) = get(db, id).await? else { return Ok(None) };
    match endpoint(key, &r) {
        Ok(e) => Ok(Some(e)),
        Err(EndpointError::Secret { source, .. }) => Err(sqlx::Error::Decode(Box::new(source))),
        Err(EndpointError::Db(e)) => Err(e),
        Err(other) => Err(sqlx::Error::Decode(other.to_string().into())),
    }
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Registry>, sqlx::Error> {
    sqlx::query_as::<_, Registry>(&format!("SELECT {COLUMNS} FROM registries WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
}

/// One page of registries matching `conds`, ordered by `order` (an `ORDER BY` clause built
/// by `db::query::order_by`), and the number matching.
pub async fn list(
    db: &Db,
    conds: &Sql,
    order: &str,
    page: u64,
    page_size: u64,
) -> Result<(Vec<Registry>, i64), sqlx::Error> {
    let mut count = Stmt::new("SELECT COUNT(*) FROM registries");
    count.where_(conds);
    let total: i64 = count.query_scalar().fetch_one(&db.pool).await?;
    let mut s = Stmt::new(&format!("SELECT {COLUMNS} FROM registries"));
    s.where_(conds)
        .push(order)
        .push_bind(" LIMIT ?", page_size as i64)
        .push_bind(" OFFSET ?", ((page - 1) * page_size) as i64);
    let items = s.query_as::<Registry>().fetch_all(&db.pool).await?;
    Ok((items, total))
}

fn conflict_or(name: &str) -> impl FnOnce(sqlx::Error) -> EndpointError + '_ {
    move |e| {
        if crate::db::error::is_conflict(&e) {
            EndpointError::Exists(name.to_string())
        } else {
            e.into()
        }
    }
}

/// Creates an endpoint (status `unknown` until pinged).
pub async fn create(db: &Db, key: &[u8; 32], mut f: Fields) -> Result<Registry, EndpointError> {
    validate(&mut f)?;
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO registries (name, type, url, description, credential_type, access_key, access_secret, \
         insecure, ca_certificate, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, '', $7, $8, $9, $10, $10) RETURNING id",
    )
    .bind(&f.name)
    .bind(&f.kind)
    .bind(&f.url)
    .bind(&f.description)
    .bind(&f.credential_type)
    .bind(&f.access_key)
    .bind(i64::from(f.insecure))
    .bind(&f.ca_certificate)
    .bind(UNKNOWN)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(conflict_or(&f.name))?;
    // The id is part of the associated data, so the secret is sealed once the row exists.
    if !f.access_secret.is_empty() {
        sqlx::query("UPDATE registries SET access_secret = $1 WHERE id = $2")
            .bind(seal(key, id, &f.access_secret))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    get(db, id).await?.ok_or(EndpointError::NotFound(id))
}

fn lock_suffix(db: &Db) -> &'static str {
    if db.kind == DbKind::Postgres {
        " FOR UPDATE"
    } else {
        ""
    }
}

/// Applies `c`; returns the row before and after. The status goes back to `unknown` when
/// the URL, the credentials or the TLS settings change.
pub async fn update(
    db: &Db,
    key: &[u8; 32],
    id: i64,
    c: Change,
) -> Result<(Registry, Registry), EndpointError> {
    let mut tx = db.begin_write().await?;
    let before = sqlx::query_as::<_, Registry>(&format!(
        "SELECT {COLUMNS} FROM registries WHERE id = $1{}",
        lock_suffix(db)
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(EndpointError::NotFound(id))?;
    let mut f = Fields {
        name: c.name.unwrap_or_else(|| before.name.clone()),
        kind: before.kind.clone(),
        url: c.url.unwrap_or_else(|| before.url.clone()),
        description: c.description.unwrap_or_else(|| before.description.clone()),
        credential_type: c.credential_type.unwrap_or_else(|| before.credential_type.clone()),
        access_key: c.access_key.unwrap_or_else(|| before.access_key.clone()),
        access_secret: c.access_secret.clone().unwrap_or_default(),
        insecure: c.insecure.unwrap_or(before.insecure),
        ca_certificate: c.ca_certificate.unwrap_or_else(|| before.ca_certificate.clone()),
    };
    validate(&mut f)?;
    let sealed = match &c.access_secret {
        Some(s) => seal(key, id, s),
        // Saved credentials never follow the endpoint to another URL unless given again.
        None if f.url != before.url => String::new(),
        None => before.sealed_secret.clone(),
    };
    if f.credential_type.is_empty() && !sealed.is_empty() {
        f.credential_type = "basic".into();
    }
    let reach_changed = f.url != before.url
        || f.credential_type != before.credential_type
        || f.access_key != before.access_key
        || sealed != before.sealed_secret
        || f.insecure != before.insecure
        || f.ca_certificate != before.ca_certificate;
    let (status, checked) =
        if reach_changed { (UNKNOWN, 0) } else { (before.status.as_str(), before.status_checked_at) };
    sqlx::query(
        "UPDATE registries SET name = $1, url = $2, description = $3, credential_type = $4, access_key = $5, \
         access_secret = $6, insecure = $7, ca_certificate = $8, status = $9, status_checked_at = $10, \
         updated_at = $11 WHERE id = $12",
    )
    .bind(&f.name)
    .bind(&f.url)
    .bind(&f.description)
    .bind(&f.credential_type)
    .bind(&f.access_key)
    .bind(&sealed)
    .bind(i64::from(f.insecure))
    .bind(&f.ca_certificate)
    .bind(status)
    .bind(checked)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(conflict_or(&f.name))?;
    tx.commit().await?;
    let after = get(db, id).await?.ok_or(EndpointError::NotFound(id))?;
    Ok((before, after))
}

/// Names of what uses the registry: replication policies (source or destination) and
/// proxy-cache projects.
async fn users_of(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: i64,
) -> Result<(Vec<String>, Vec<String>), sqlx::Error> {
    let policies: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM replication_policies WHERE src_registry_id = $1 OR dest_registry_id = $1 \
         ORDER BY name LIMIT $2",
    )
    .bind(id)
    .bind(USERS_SHOWN as i64)
    .fetch_all(&mut **tx)
    .await?;
    let projects: Vec<String> =
        sqlx::query_scalar("SELECT name FROM projects WHERE registry_id = $1 ORDER BY name LIMIT $2")
            .bind(id)
            .bind(USERS_SHOWN as i64)
            .fetch_all(&mut **tx)
            .await?;
    Ok((policies, projects))
}

/// At most this many names of each kind in the message.
const USERS_SHOWN: usize = 20;

fn in_use_message(r: &Registry, policies: &[String], projects: &[String]) -> String {
    let list = |names: &[String]| {
        let more = if names.len() >= USERS_SHOWN { ", …" } else { "" };
        format!("{}{more}", names.join(", "))
    };
    let mut parts = Vec::new();
    if !policies.is_empty() {
        parts.push(format!("replication policies {}", list(policies)));
    }
    if !projects.is_empty() {
        parts.push(format!("proxy-cache projects {}", list(projects)));
    }
    format!("the registry {:?} is used by {}; delete or change them first", r.name, parts.join(" and "))
}

fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_foreign_key_violation() || matches!(d.code().as_deref(), Some("23503" | "787"))
        }
        _ => false,
    }
}

/// Deletes an endpoint nothing uses; returns the deleted row.
pub async fn delete(db: &Db, id: i64) -> Result<Registry, EndpointError> {
    let mut tx = db.begin_write().await?;
    let r = sqlx::query_as::<_, Registry>(&format!(
        "SELECT {COLUMNS} FROM registries WHERE id = $1{}",
        lock_suffix(db)
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(EndpointError::NotFound(id))?;
    let (policies, projects) = users_of(&mut tx, id).await?;
    if !policies.is_empty() || !projects.is_empty() {
        return Err(EndpointError::InUse(in_use_message(&r, &policies, &projects)));
    }
    let deleted = sqlx::query("DELETE FROM registries WHERE id = $1").bind(id).execute(&mut *tx).await;
    match deleted {
        Ok(_) => {}
        // A policy or project referencing it committed after the check above.
        Err(e) if is_foreign_key_violation(&e) => {
            return Err(EndpointError::InUse(format!(
                "the registry {:?} is used by a replication policy or a proxy-cache project",
                r.name
            )))
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(r)
}

impl Registry {
    /// The row as the API answers it: the secret masked (`*****` when one is stored).
    pub fn to_rest(&self) -> app::rest::registries::Registry {
        use app::rest::registries::{RegistryCredential, MASKED_SECRET};
        app::rest::registries::Registry {
            id: self.id,
            url: self.url.clone(),
            name: self.name.clone(),
            credential: RegistryCredential {
                kind: self.credential_type.clone(),
                access_key: self.access_key.clone(),
                access_secret: if self.has_secret() { MASKED_SECRET.into() } else { String::new() },
            },
            kind: self.kind.clone(),
            insecure: self.insecure,
            ca_certificate: (!self.ca_certificate.is_empty()).then(|| self.ca_certificate.clone()),
            description: self.description.clone(),
            status: self.status.clone(),
            creation_time: crate::db::rfc3339(self.created_at),
            update_time: crate::db::rfc3339(self.updated_at),
        }
    }
}

/// Records the result of a health check.
pub async fn set_status(db: &Db, id: i64, status: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE registries SET status = $1, status_checked_at = $2 WHERE id = $3")
        .bind(status)
        .bind(now_ms())
        .bind(id)
        .execute(&db.pool)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for (given, stored) in [
            ("https://reg.example.com", "https://reg.example.com"),
            ("https://reg.example.com/", "https://reg.example.com"),
            ("  http://127.0.0.1:5000//  ", "http://127.0.0.1:5000"),
            ("https://Reg.Example.com:443/", "https://reg.example.com"),
            ("https://reg.example.com/prefix/", "https://reg.example.com/prefix"),
            ("http://[::1]:8080", "http://[::1]:8080"),
        ] {
            assert_eq!(normalize_url(given).unwrap(), stored, "{given}");
        }
        for bad in [
            "",
            "reg.example.com",
            "ftp://reg.example.com",
            "https://user:pw@reg.example.com",
            "https://user@reg.example.com",
            "https://reg.example.com/?x=1",
            "https://reg.example.com/#frag",
            "https://",
            "file:///etc/passwd",
            "http://exa mple.com",
        ] {
            assert!(matches!(normalize_url(bad), Err(EndpointError::Invalid(_))), "{bad}");
        }
        let long = format!("https://reg.example.com/{}", "a".repeat(MAX_URL));
        assert!(normalize_url(&long).is_err());
    }

    #[test]
    fn fields_are_checked() {
        let ok = || Fields {
            name: "hub".into(),
            kind: "docker-registry".into(),
            url: "https://reg.example.com/".into(),
            ..Default::default()
        };
        let mut f = ok();
        validate(&mut f).unwrap();
        assert_eq!(f.url, "https://reg.example.com");
        let mut f = Fields { access_key: "u".into(), access_secret: "p".into(), ..ok() };
        validate(&mut f).unwrap();
        assert_eq!(f.credential_type, "basic");
        let cases: &[fn(&mut Fields)] = &[
            |f| f.name.clear(),
            |f| f.name = "x".repeat(MAX_NAME + 1),
            |f| f.name = " padded".into(),
            |f| f.name = "a\nb".into(),
            |f| f.kind = "quay-but-not-really".into(),
            |f| f.credential_type = "kerberos".into(),
            |f| f.description = "d".repeat(MAX_DESCRIPTION + 1),
            |f| f.access_key = "k".repeat(MAX_ACCESS_KEY + 1),
            |f| f.access_secret = "s".repeat(MAX_ACCESS_SECRET + 1),
            |f| f.ca_certificate = "not a certificate".into(),
        ];
        for (i, spoil) in cases.iter().enumerate() {
            let mut f = ok();
            spoil(&mut f);
            assert!(matches!(validate(&mut f), Err(EndpointError::Invalid(_))), "case {i}");
        }
        let mut f = Fields { kind: "nope".into(), ..ok() };
        let msg = validate(&mut f).unwrap_err().to_string();
        assert!(msg.contains("docker-registry") && msg.contains("harbor"), "{msg}");
    }

    #[test]
    fn in_use_names_who() {
        let r = Registry {
            id: 1,
            name: "hub".into(),
            kind: "harbor".into(),
            url: String::new(),
            description: String::new(),
            credential_type: String::new(),
            access_key: String::new(),
            sealed_secret: String::new(),
            insecure: false,
            ca_certificate: String::new(),
            status: UNKNOWN.into(),
            status_checked_at: 0,
            created_at: 0,
            updated_at: 0,
        };
        let m = in_use_message(&r, &["p1".into()], &[]);
        assert_eq!(m, "the registry \"hub\" is used by replication policies p1; delete or change them first");
        let many: Vec<String> = (0..USERS_SHOWN).map(|i| format!("c{i}")).collect();
        let m = in_use_message(&r, &["p1".into()], &many);
        assert!(m.contains("policies p1 and proxy-cache projects c0, ") && m.contains("c19, …"), "{m}");
    }

    #[test]
    fn ca_certificates() {
        use base64::Engine;
        let der = [&[0x30u8, 0x82, 0x01, 0x00][..], &[0u8; 256][..]].concat();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let pem = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
        check_ca_certificate(&pem).unwrap();
        check_ca_certificate(&format!("{pem}\n{pem}")).unwrap();
        for bad in [
            "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nMIIB\n",
            "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----",
            &format!("{pem}trailing"),
        ] {
            assert!(check_ca_certificate(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2_000, failure_persistence: None, ..Default::default() })]

        /// Client input never panics the URL check, and what it accepts is stored in a form it
        /// accepts again unchanged, without credentials, query, fragment or trailing slash.
        #[test]
        fn url_check_is_total_and_idempotent(
            s in proptest::prop_oneof![
                proptest::prelude::any::<String>(),
                r"(https?|ftp|file)://[a-zA-Z0-9@:%?#./\\\[\] -]{0,40}",
            ]
        ) {
            if let Ok(u) = normalize_url(&s) {
                proptest::prop_assert_eq!(normalize_url(&u).ok(), Some(u.clone()));
                proptest::prop_assert!(u.starts_with("http://") || u.starts_with("https://"));
                proptest::prop_assert!(!u.ends_with('/') && !u.contains('?') && !u.contains('#'));
                let authority = u.split("://").nth(1).unwrap_or("").split('/').next().unwrap_or("");
                proptest::prop_assert!(!authority.contains('@'), "{}", u);
            }
        }

        #[test]
        fn ca_check_is_total(s in proptest::prelude::any::<String>()) {
            let _ = check_ca_certificate(&s);
            let _ = check_ca_certificate(&format!("-----BEGIN CERTIFICATE-----{s}-----END CERTIFICATE-----"));
        }
    }
}

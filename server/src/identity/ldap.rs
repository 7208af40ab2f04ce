//! LDAP (the `ldap3` crate over rustls with ring): search-then-bind login (`authenticate`),
//! the directory lookups of the `/ldap/*` REST endpoints (`ping`, `search_users`, `find_user`,
//! `search_groups`, `find_group`) and a user's groups.
//!
//! - **Connection**: `ldap_url` (`ldap://` or `ldaps://`), `ldap_starttls` upgrades an
//!   `ldap://` connection before anything is sent. TLS verifies the server's certificate
//!   against the system roots plus `ldap_ca_cert` (PEM); `ldap_verify_cert = false` is the
//!   explicit opt-out. `ldap_timeout` bounds the connection and every operation, and a whole
//!   call takes at most three times it (`deadline`).
//! - **Search-then-bind**: bind as `ldap_search_dn` (anonymous when empty), find exactly one
//!   entry with `(&<ldap_filter>(<ldap_uid>=<username>))` under `ldap_base_dn` (`ldap_scope`),
//!   then bind as that entry's DN with the password. **An empty password is always refused**
//!   (it would be an unauthenticated bind, which directories accept as anonymous).
//! - **Every value put into a filter is escaped** (RFC 4515, `ldap3::ldap_escape`): a user
//!   name like `*)(uid=*` matches no one. Test: `tests::filters_escape_every_value`, and the
//!   injection attempts in `server/tests/it/ldap.rs`.
//! - **Groups** are read with the search account after the user's bind succeeded: the
//!   `ldap_group_membership_attribute` (memberOf) values of the entry when it has any, else a
//!   search under `ldap_group_base_dn` (`ldap_group_search_filter`, `ldap_group_search_scope`)
//!   for groups naming the user as `member`/`uniqueMember` (DN) or `memberUid` (uid). The name
//!   is the group's `ldap_group_attribute_name`. Membership of `ldap_group_admin_dn` is always
//!   checked, wherever that group lives.
//! - **Errors** say what failed (connect, TLS, the search account's bind, a search, a
//!   timeout), never a password.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ldap3::{
    ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, SearchOptions, StdStream,
};

use crate::accounts::LoginError;
use crate::settings::LdapSettings;

/// A directory group the user is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGroup {
    pub dn: String,
    /// `ldap_group_attribute_name` of the group (or the first RDN's value).
    pub name: String,
}

/// A user found in the directory whose password the directory accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub dn: String,
    /// The `ldap_uid` attribute's value (the login name as the directory spells it).
    pub username: String,
    pub email: String,
    pub realname: String,
    pub groups: Vec<DirectoryGroup>,
}

/// A user entry found by a search (no password checked): `/ldap/users/search` and import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapUser {
    pub dn: String,
    pub username: String,
    pub email: String,
    pub realname: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// The directory cannot be reached, timed out, refused the search account or the TLS
    /// handshake: the message says which (never a password).
    #[error("{0}")]
    Unavailable(String),
    /// The settings cannot work (no URL, a bad filter).
    #[error("{0}")]
    Config(String),
}

impl From<LdapError> for LoginError {
    fn from(e: LdapError) -> Self {
        LoginError::Unavailable(format!("LDAP: {e}"))
    }
}

/// Most entries a user or group search answers (`/ldap/users/search`, `/ldap/groups/search`).
pub const MAX_SEARCH_RESULTS: i32 = 100;
/// Most groups read for one user.
const MAX_USER_GROUPS: i32 = 512;

/// Search-then-bind: finds exactly one entry with `uid = username` (escaped) under `base_dn`
/// (ANDed with `filter`), binds as it with `password`, and reads its groups. `Ok(None)` when
/// no single entry matches or the bind is refused.
pub async fn authenticate(
    cfg: &LdapSettings,
    search_password: &str,
    username: &str,
    password: &str,
) -> Result<Option<DirectoryUser>, LdapError> {
    if password.is_empty() || username.is_empty() {
        return Ok(None);
    }
    deadline(cfg, async {
        let mut s = Session::open(cfg).await?;
        s.search_bind(cfg, search_password).await?;
        let mut attrs = vec![cfg.uid.as_str(), "cn", "displayName", "mail", "email"];
        let membership = cfg.group_membership_attribute.trim();
        if !membership.is_empty() {
            attrs.push(membership);
        }
        let found =
            s.search(&cfg.base_dn, scope(cfg.scope), &user_filter(cfg, username, false), &attrs, 2).await?;
        let [entry] = found.as_slice() else { return Ok(None) };
        let user = to_user(cfg, entry, username);
        if !s.bind(&entry.dn, password).await? {
            return Ok(None);
        }
        // Groups are read with the search account: users may not read group entries.
        s.search_bind(cfg, search_password).await?;
        let member_of = if membership.is_empty() { Vec::new() } else { values(entry, membership).to_vec() };
        let groups = s.groups_of(cfg, &entry.dn, &user.username, &member_of).await?;
        s.close().await;
        Ok(Some(DirectoryUser {
            dn: user.dn,
            username: user.username,
            email: user.email,
            realname: user.realname,
            groups,
        }))
    })
    .await
}

/// Connects and binds as the search account (`POST /ldap/ping`); checks that `ldap_base_dn`
/// exists when it is set.
pub async fn ping(cfg: &LdapSettings, search_password: &str) -> Result<(), LdapError> {
    deadline(cfg, async {
        let mut s = Session::open(cfg).await?;
        s.search_bind(cfg, search_password).await?;
        if !cfg.base_dn.is_empty() {
            let found = s.search(&cfg.base_dn, Scope::Base, "(objectClass=*)", &["1.1"], 1).await?;
            if found.is_empty() {
                return Err(LdapError::Config(format!(
                    "the base DN {:?} does not exist or the search account cannot read it",
                    cfg.base_dn
                )));
            }
        }
        s.close().await;
        Ok(())
    })
    .await
}

/// Users whose `ldap_uid` contains `name` (all users when empty), at most
/// `MAX_SEARCH_RESULTS`, in the directory's order.
pub async fn search_users(
    cfg: &LdapSettings,
    search_password: &str,
    name: &str,
) -> Result<Vec<LdapUser>, LdapError> {
    deadline(cfg, async {
        let mut s = Session::open(cfg).await?;
        s.search_bind(cfg, search_password).await?;
        let attrs = [cfg.uid.as_str(), "cn", "displayName", "mail", "email"];
        let found = s
            .search(&cfg.base_dn, scope(cfg.scope), &user_filter(cfg, name, true), &attrs, MAX_SEARCH_RESULTS)
            .await?;
        s.close().await;
        Ok(found.iter().filter(|e| !values(e, &cfg.uid).is_empty()).map(|e| to_user(cfg, e, name)).collect())
    })
    .await
}

/// The one user whose `ldap_uid` is `uid` (`None` when no single entry matches).
pub async fn find_user(
    cfg: &LdapSettings,
    search_password: &str,
    uid: &str,
) -> Result<Option<LdapUser>, LdapError> {
    if uid.is_empty() {
        return Ok(None);
    }
    deadline(cfg, async {
        let mut s = Session::open(cfg).await?;
        s.search_bind(cfg, search_password).await?;
        let attrs = [cfg.uid.as_str(), "cn", "displayName", "mail", "email"];
        let found =
            s.search(&cfg.base_dn, scope(cfg.scope), &user_filter(cfg, uid, false), &attrs, 2).await?;
        s.close().await;
        Ok(match found.as_slice() {
            [entry] => Some(to_user(cfg, entry, uid)),
            _ => None,
        })
    })
    .await
}

/// Groups by name (the `ldap_group_attribute_name` contains `name`, under
/// `ldap_group_base_dn`) or by DN (the entry itself, if it passes `ldap_group_search_filter`);
/// the name wins when both are given. At most `MAX_SEARCH_RESULTS`.
pub async fn search_groups(
    cfg: &LdapSettings,
    search_password: &str,
    name: Option<&str>,
    dn: Option<&str>,
) -> Result<Vec<DirectoryGroup>, LdapError> {
    let name = name.filter(|n| !n.is_empty());
    let dn = dn.map(str::trim).filter(|d| !d.is_empty());
    if name.is_none() && dn.is_none() {
        return Ok(Vec::new());
    }
    if name.is_some() && cfg.group_base_dn.is_empty() {
        return Err(LdapError::Config(
            "ldap_group_base_dn is not set: groups cannot be searched by name".into(),
        ));
    }
    deadline(cfg, async {
        let mut s = Session::open(cfg).await?;
        s.search_bind(cfg, search_password).await?;
        let attr = group_attr(cfg);
        let found = match name {
            Some(n) => {
                let filter = format!("(&{}({attr}=*{}*))", group_filter(cfg), ldap_escape(n));
                s.search(
                    &cfg.group_base_dn,
                    scope(cfg.group_search_scope),
                    &filter,
                    &[attr],
                    MAX_SEARCH_RESULTS,
                )
                .await?
            }
            None => {
                let filter = format!("(&{}(objectClass=*))", group_filter(cfg));
                s.search(dn.unwrap_or_default(), Scope::Base, &filter, &[attr], 1).await?
            }
        };
        s.close().await;
        Ok(found.iter().map(|e| to_group(cfg, e)).collect())
    })
    .await
}

/// The group entry named by `dn` (`None` when absent or filtered out).
pub async fn find_group(
    cfg: &LdapSettings,
    search_password: &str,
    dn: &str,
) -> Result<Option<DirectoryGroup>, LdapError> {
    Ok(search_groups(cfg, search_password, None, Some(dn)).await?.into_iter().next())
}

/// Whether two DNs name the same entry (case-insensitive, spaces around separators ignored).
pub fn dn_eq(a: &str, b: &str) -> bool {
    normalize_dn(a) == normalize_dn(b)
}

/// Whether `dn` is `base` or below it.
pub fn dn_under(dn: &str, base: &str) -> bool {
    let (dn, base) = (normalize_dn(dn), normalize_dn(base));
    dn == base || dn.ends_with(&format!(",{base}"))
}

/// RDNs split at unescaped commas, each trimmed (also around `=`) and lower-cased.
fn normalize_dn(dn: &str) -> String {
    split_rdns(dn)
        .iter()
        .map(|rdn| match rdn.split_once('=') {
            Some((a, v)) => format!("{}={}", a.trim(), v.trim()).to_lowercase(),
            None => rdn.trim().to_lowercase(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn split_rdns(dn: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in dn.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                out.push(&dn[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&dn[start..]);
    out
}

/// The first RDN's attribute and (unescaped) value: `cn=a\,b,ou=x` is (`cn`, `a,b`).
fn first_rdn(dn: &str) -> Option<(String, String)> {
    let rdn = split_rdns(dn).into_iter().next()?;
    let (attr, value) = rdn.split_once('=')?;
    Some((attr.trim().to_string(), dn_unescape(value.trim())))
}

/// An RFC 4514 attribute value unescaped: `\,` is `,`, `\2c` is the byte 0x2c.
fn dn_unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(x) => {
                    out.push(x);
                    i += 3;
                }
                None => {
                    out.push(b[i + 1]);
                    i += 2;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `ldap_filter` (or a group filter) as one parenthesised filter; `""` stays empty.
fn parenthesised(f: &str) -> String {
    let f = f.trim();
    if f.is_empty() || f.starts_with('(') {
        f.to_string()
    } else {
        format!("({f})")
    }
}

/// `(&<ldap_filter>(<ldap_uid>=<name>))`, with `name` escaped; `substring` matches names
/// containing it (`*` alone when empty).
fn user_filter(cfg: &LdapSettings, name: &str, substring: bool) -> String {
    let value = match (substring, name.is_empty()) {
        (true, true) => "*".to_string(),
        (true, false) => format!("*{}*", ldap_escape(name)),
        (false, _) => ldap_escape(name).into_owned(),
    };
    format!("(&{}({}={value}))", parenthesised(&cfg.filter), cfg.uid)
}

fn group_filter(cfg: &LdapSettings) -> String {
    parenthesised(&cfg.group_search_filter)
}

fn group_attr(cfg: &LdapSettings) -> &str {
    let a = cfg.group_attribute_name.trim();
    if a.is_empty() {
        "cn"
    } else {
        a
    }
}

/// Groups naming the user: `member`/`uniqueMember` (its DN) or `memberUid` (its uid).
fn membership_filter(dn: &str, uid: &str) -> String {
    let (dn, uid) = (ldap_escape(dn), ldap_escape(uid));
    format!("(|(member={dn})(uniqueMember={dn})(memberUid={uid}))")
}

fn scope(n: i64) -> Scope {
    match n {
        0 => Scope::Base,
        1 => Scope::OneLevel,
        _ => Scope::Subtree,
    }
}

/// An attribute's values, the name matched case-insensitively (servers answer the schema's
/// spelling, e.g. `memberOf` for `memberof`).
fn values<'a>(e: &'a SearchEntry, name: &str) -> &'a [String] {
    e.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice()).unwrap_or(&[])
}

fn first(e: &SearchEntry, names: &[&str]) -> String {
    names.iter().find_map(|n| values(e, n).first()).cloned().unwrap_or_default()
}

/// The user's fields; the username is the `ldap_uid` value equal to `asked` (ignoring ASCII
/// case) if there is one, else the first.
fn to_user(cfg: &LdapSettings, e: &SearchEntry, asked: &str) -> LdapUser {
    let uids = values(e, &cfg.uid);
    let username = uids
        .iter()
        .find(|u| u.eq_ignore_ascii_case(asked))
        .or_else(|| uids.first())
        .cloned()
        .unwrap_or_default();
    LdapUser {
        dn: e.dn.clone(),
        username,
        email: first(e, &["mail", "email"]),
        realname: first(e, &["displayName", "cn"]),
    }
}

fn to_group(cfg: &LdapSettings, e: &SearchEntry) -> DirectoryGroup {
    let name = values(e, group_attr(cfg))
        .first()
        .cloned()
        .or_else(|| first_rdn(&e.dn).map(|(_, v)| v))
        .unwrap_or_default();
    DirectoryGroup { dn: e.dn.clone(), name }
}

/// Runs a whole directory conversation within three times `ldap_timeout`.
async fn deadline<T>(
    cfg: &LdapSettings,
    f: impl std::future::Future<Output = Result<T, LdapError>>,
) -> Result<T, LdapError> {
    let limit = op_timeout(cfg) * 3;
    tokio::time::timeout(limit, f).await.unwrap_or_else(|_| {
        Err(LdapError::Unavailable(format!("{} did not answer within {}s", cfg.url, limit.as_secs())))
    })
}

fn op_timeout(cfg: &LdapSettings) -> Duration {
    Duration::from_secs(cfg.timeout.clamp(1, 300) as u64)
}

/// The system's trusted roots, read once.
static SYSTEM_ROOTS: LazyLock<Vec<rustls::pki_types::CertificateDer<'static>>> =
    LazyLock::new(|| rustls_native_certs::load_native_certs().certs);

/// The last verifying TLS configuration built, by its `ldap_ca_cert` (the settings rarely
/// change; building one parses every system root).
static TLS_CACHE: std::sync::Mutex<Option<(String, Arc<rustls::ClientConfig>)>> = std::sync::Mutex::new(None);

/// TLS that verifies the server against the system roots plus `ldap_ca_cert`.
fn verifying_tls(cfg: &LdapSettings) -> Result<Arc<rustls::ClientConfig>, LdapError> {
    let mut cache = TLS_CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((ca, config)) = cache.as_ref() {
        if *ca == cfg.ca_cert {
            return Ok(config.clone());
        }
    }
    let config = build_verifying_tls(cfg)?;
    *cache = Some((cfg.ca_cert.clone(), config.clone()));
    Ok(config)
}

fn build_verifying_tls(cfg: &LdapSettings) -> Result<Arc<rustls::ClientConfig>, LdapError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(SYSTEM_ROOTS.iter().cloned());
    let pem = cfg.ca_cert.trim();
    if !pem.is_empty() {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| LdapError::Config(format!("ldap_ca_cert is not valid PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| LdapError::Config(format!("ldap_ca_cert holds an unusable certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(LdapError::Config("ldap_ca_cert holds no PEM certificate".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LdapError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One connection, bound as whoever the last bind named.
struct Session {
    ldap: Ldap,
    timeout: Duration,
    url: String,
}

/// Opens the TCP connection for `url` (`ldap://` or `ldaps://`, default ports 389 and 636) within
/// `timeout`, with `TCP_NODELAY` set.
async fn connect_nodelay(
    url: &str,
    ldaps: bool,
    timeout: Duration,
) -> Result<std::net::TcpStream, LdapError> {
    let parsed = url::Url::parse(url).map_err(|e| LdapError::Config(format!("ldap_url {url}: {e}")))?;
    let host = match parsed.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        _ => "localhost".to_string(),
    };
    let port = parsed.port().unwrap_or(if ldaps { 636 } else { 389 });
    let addr = format!("{host}:{port}");
    let stream = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
        Err(_) => {
            return Err(LdapError::Unavailable(format!(
                "connecting to {url} timed out after {}s",
                timeout.as_secs()
            )))
        }
        Ok(Err(e)) => return Err(LdapError::Unavailable(format!("cannot connect to {url}: {e}"))),
        Ok(Ok(s)) => s,
    };
    let unavailable = |e: std::io::Error| LdapError::Unavailable(format!("cannot connect to {url}: {e}"));
    stream.set_nodelay(true).map_err(unavailable)?;
    stream.into_std().map_err(unavailable)
}

impl Session {
    async fn open(cfg: &LdapSettings) -> Result<Session, LdapError> {
        let url = cfg.url.trim();
        if url.is_empty() {
            return Err(LdapError::Config("ldap_url is not set".into()));
        }
        let ldaps = url.starts_with("ldaps://");
        let starttls = cfg.starttls && !ldaps;
        let timeout = op_timeout(cfg);
        let mut settings = LdapConnSettings::new().set_conn_timeout(timeout).set_starttls(starttls);
        if ldaps || starttls {
            settings = if cfg.verify_cert {
                settings.set_config(verifying_tls(cfg)?)
            } else {
                settings.set_no_tls_verify(true)
            };
        }
        let tls = if ldaps {
            " over LDAPS"
        } else if starttls {
            " with StartTLS"
        } else {
            ""
        };
        // Our own TCP connection, with Nagle off: the TLS handshake's last flight and the first
        // request are separate small writes, and with Nagle on the request waits for the
        // server's delayed ACK (40 ms on Linux) — an uncached LDAPS login took ~55 ms instead of 4.
        let stream = connect_nodelay(url, ldaps, timeout).await?;
        settings = settings.set_std_stream(StdStream::Tcp(stream));
        let (conn, ldap) = LdapConnAsync::with_settings(settings, url).await.map_err(|e| {
            let msg = e.to_string();
            LdapError::Unavailable(match e {
                ldap3::LdapError::Timeout { .. } => {
                    format!("connecting to {url}{tls} timed out after {}s", timeout.as_secs())
                }
                ldap3::LdapError::LdapResult { .. } => format!("{url} refused StartTLS: {msg}"),
                _ if (ldaps || starttls) && msg.to_ascii_lowercase().contains("certificate") => format!(
                    "TLS handshake with {url} failed: the server's certificate was not accepted ({msg}); \
                     give the CA that signed it in ldap_ca_cert and check that it names this host \
                     (or set ldap_verify_cert to false)"
                ),
                _ => format!("cannot connect to {url}{tls}: {msg}"),
            })
        })?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection ended");
            }
        });
        Ok(Session { ldap, timeout, url: url.to_string() })
    }

    fn lost(&self, what: &str, e: ldap3::LdapError) -> LdapError {
        LdapError::Unavailable(match e {
            ldap3::LdapError::Timeout { .. } => {
                format!("{what}: {} did not answer within {}s", self.url, self.timeout.as_secs())
            }
            e => format!("{what}: {e}"),
        })
    }

    /// Binds as `dn`; false when the directory refuses the password (or the DN).
    async fn bind(&mut self, dn: &str, password: &str) -> Result<bool, LdapError> {
        if password.is_empty() {
            return Ok(false);
        }
        let r = self.ldap.with_timeout(self.timeout).simple_bind(dn, password).await;
        let r = r.map_err(|e| self.lost("bind", e))?;
        match r.rc {
            0 => Ok(true),
            // busy, unavailable, other: the directory did not decide.
            51 | 52 | 80 => Err(LdapError::Unavailable(format!("bind: the directory answered {r}"))),
            _ => Ok(false),
        }
    }

    /// Binds as `ldap_search_dn` (stays anonymous when it is empty).
    async fn search_bind(&mut self, cfg: &LdapSettings, password: &str) -> Result<(), LdapError> {
        let dn = cfg.search_dn.trim();
        if dn.is_empty() {
            return Ok(());
        }
        if password.is_empty() {
            return Err(LdapError::Config("ldap_search_password is not set".into()));
        }
        let r = self.ldap.with_timeout(self.timeout).simple_bind(dn, password).await;
        let r = r.map_err(|e| self.lost("the search account's bind", e))?;
        if r.rc != 0 {
            return Err(LdapError::Unavailable(format!(
                "the directory refused the search account {dn:?}: {}",
                if r.rc == 49 { "invalid credentials".to_string() } else { r.to_string() }
            )));
        }
        Ok(())
    }

    /// At most `limit` entries (a size limit reached answers those found so far); a base that
    /// does not exist answers none.
    async fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
        limit: i32,
    ) -> Result<Vec<SearchEntry>, LdapError> {
        let opts = SearchOptions::new().sizelimit(limit);
        let r = self
            .ldap
            .with_search_options(opts)
            .with_timeout(self.timeout)
            .search(base, scope, filter, attrs)
            .await;
        let r = match r {
            Err(ldap3::LdapError::FilterParsing) => {
                return Err(LdapError::Config(format!("the LDAP filter {filter:?} is not valid")))
            }
            r => r.map_err(|e| self.lost("search", e))?,
        };
        let (entries, result) = (r.0, r.1);
        match result.rc {
            0 | 4 | 32 => {}
            34 => return Err(LdapError::Config(format!("{base:?} is not a valid DN"))),
            _ => {
                return Err(LdapError::Unavailable(format!(
                    "search under {base:?} failed: the directory answered {result}"
                )))
            }
        }
        Ok(entries
            .into_iter()
            .take(limit.max(0) as usize)
            .filter_map(|e| {
                // `construct` panics on a malformed entry: a broken directory is skipped, not fatal.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SearchEntry::construct(e))).ok()
            })
            .collect())
    }

    /// The groups of the user `dn` (`uid`), see the module doc.
    async fn groups_of(
        &mut self,
        cfg: &LdapSettings,
        dn: &str,
        uid: &str,
        member_of: &[String],
    ) -> Result<Vec<DirectoryGroup>, LdapError> {
        let attr = group_attr(cfg).to_string();
        let base = cfg.group_base_dn.trim();
        let admin = cfg.group_admin_dn.trim();
        let mut out: Vec<DirectoryGroup> = Vec::new();
        if !member_of.is_empty() {
            for gdn in member_of.iter().take(MAX_USER_GROUPS as usize) {
                let is_admin = !admin.is_empty() && dn_eq(gdn, admin);
                if !base.is_empty() && !dn_under(gdn, base) && !is_admin {
                    continue;
                }
                let rdn = first_rdn(gdn);
                let group = match rdn {
                    // The common case needs no lookup: the name is the RDN's value.
                    Some((a, v))
                        if cfg.group_search_filter.trim().is_empty() && a.eq_ignore_ascii_case(&attr) =>
                    {
                        Some(DirectoryGroup { dn: gdn.clone(), name: v })
                    }
                    _ => {
                        let filter = format!("(&{}(objectClass=*))", group_filter(cfg));
                        let found = self.search(gdn, Scope::Base, &filter, &[attr.as_str()], 1).await?;
                        found.first().map(|e| to_group(cfg, e))
                    }
                };
                out.extend(group);
            }
        } else if !base.is_empty() {
            let filter = format!("(&{}{})", group_filter(cfg), membership_filter(dn, uid));
            let found = self
                .search(base, scope(cfg.group_search_scope), &filter, &[attr.as_str()], MAX_USER_GROUPS)
                .await?;
            out.extend(found.iter().map(|e| to_group(cfg, e)));
        }
        if !admin.is_empty() && !out.iter().any(|g| dn_eq(&g.dn, admin)) {
            let found =
                self.search(admin, Scope::Base, &membership_filter(dn, uid), &[attr.as_str()], 1).await?;
            out.extend(found.iter().map(|e| to_group(cfg, e)));
        }
        Ok(out)
    }

    async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LdapSettings {
        LdapSettings { uid: "uid".into(), filter: "objectClass=person".into(), ..Default::default() }
    }

    #[test]
    fn filters_escape_every_value() {
        let c = cfg();
        assert_eq!(user_filter(&c, "alice", false), "(&(objectClass=person)(uid=alice))");
        assert_eq!(user_filter(&c, "*", false), r"(&(objectClass=person)(uid=\2a))");
        assert_eq!(user_filter(&c, "*)(uid=*", false), r"(&(objectClass=person)(uid=\2a\29\28uid=\2a))");
        assert_eq!(
            user_filter(&c, "alice)(|(uid=*", false),
            r"(&(objectClass=person)(uid=alice\29\28|\28uid=\2a))"
        );
        assert_eq!(user_filter(&c, "a\\b\0", false), r"(&(objectClass=person)(uid=a\5cb\00))");
        assert_eq!(user_filter(&c, "", true), "(&(objectClass=person)(uid=*))");
        assert_eq!(user_filter(&c, "a*", true), r"(&(objectClass=person)(uid=*a\2a*))");
        let plain = LdapSettings { uid: "cn".into(), ..Default::default() };
        assert_eq!(user_filter(&plain, "bob", false), "(&(cn=bob))");
        assert_eq!(
            membership_filter("uid=x(1),dc=t", "x*"),
            r"(|(member=uid=x\281\29,dc=t)(uniqueMember=uid=x\281\29,dc=t)(memberUid=x\2a))"
        );
    }

    #[test]
    fn filter_settings_are_parenthesised() {
        assert_eq!(parenthesised(""), "");
        assert_eq!(parenthesised(" objectClass=person "), "(objectClass=person)");
        assert_eq!(parenthesised("(|(a=1)(b=2))"), "(|(a=1)(b=2))");
    }

    #[test]
    fn dn_comparison() {
        assert!(dn_eq("cn=Admins,ou=Groups,dc=berth,dc=test", "cn=admins, ou=groups, dc=berth, dc=test"));
        assert!(dn_eq("CN = admins ,dc=x", "cn=admins,dc=x"));
        assert!(!dn_eq("cn=admins,dc=x", "cn=admins2,dc=x"));
        assert!(!dn_eq(r"cn=a\,b,dc=x", "cn=a,b,dc=x"), "an escaped comma is part of the value");
        assert!(dn_under("cn=devs,ou=groups,dc=x", "OU=Groups, dc=x"));
        assert!(dn_under("ou=groups,dc=x", "ou=groups,dc=x"));
        assert!(!dn_under("cn=devs,ou=groupsx,dc=x", "ou=groups,dc=x"));
        assert!(!dn_under("cn=devs,xou=groups,dc=x", "ou=groups,dc=x"));
        assert_eq!(first_rdn(r"cn=a\,b,ou=x"), Some(("cn".into(), "a,b".into())));
        assert_eq!(first_rdn(r"cn=a\2cb\c3\a9,ou=x"), Some(("cn".into(), "a,bé".into())));
        assert_eq!(first_rdn("uid=o'hara(ext)*,ou=people"), Some(("uid".into(), "o'hara(ext)*".into())));
    }

    #[tokio::test]
    async fn misconfiguration_is_a_clear_error() {
        let none = LdapSettings::default();
        assert!(matches!(ping(&none, "pw").await, Err(LdapError::Config(m)) if m.contains("ldap_url")));
        let bad_ca = LdapSettings {
            url: "ldaps://127.0.0.1:1".into(),
            ca_cert: "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----".into(),
            ..Default::default()
        };
        assert!(matches!(ping(&bad_ca, "pw").await, Err(LdapError::Config(m)) if m.contains("ldap_ca_cert")));
        // Nothing is sent for an empty password.
        assert_eq!(authenticate(&none, "pw", "alice", "").await.unwrap(), None);
    }
}

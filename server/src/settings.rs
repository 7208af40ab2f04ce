//! Settings a system admin changes at run time (`GET/PUT /api/v2.0/configurations`), stored
//! in the `settings` table so every replica sees the same values. A key never set takes its
//! default from the configuration file (`token.lifetime`) or from Harbor's defaults.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::db::{now_ms, Db};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Settings {
    /// `everyone` or `adminonly`.
    pub project_creation_restriction: String,
    pub self_registration: bool,
    /// Registry token lifetime in minutes.
    pub token_expiration: i64,
    /// Default robot lifetime in days (-1: never expires).
    pub robot_token_duration: i64,
    /// Harbor's `storage_per_project`: the storage limit (bytes) a new project gets when its
    /// creator sends no `storage_limit`; -1 = unlimited.
    pub storage_per_project: i64,
    /// Harbor's `audit_log_forward_endpoint`: syslog `host:port` (TCP), `tcp://…` or `udp://…`;
    /// empty: none (`audit_forward`).
    pub audit_log_forward_endpoint: String,
    /// Harbor's `skip_audit_log_database`: audit events only forwarded (needs an endpoint).
    pub skip_audit_log_database: bool,
    /// Who checks passwords (`server/src/identity/`).
    pub auth_mode: AuthMode,
    pub ldap: LdapSettings,
    pub oidc: OidcSettings,
}

/// Harbor's `auth_mode`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default)]
pub enum AuthMode {
    #[default]
    Db,
    Ldap,
    Oidc,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Db => "db_auth",
            AuthMode::Ldap => "ldap_auth",
            AuthMode::Oidc => "oidc_auth",
        }
    }

    pub fn parse(s: &str) -> Option<AuthMode> {
        match s {
            "db_auth" => Some(AuthMode::Db),
            "ldap_auth" => Some(AuthMode::Ldap),
            "oidc_auth" => Some(AuthMode::Oidc),
            _ => None,
        }
    }
}

/// A secret setting as stored: `v1:` ciphertext bound to `settings/<key>` (`crate::crypto`),
/// or empty. Opened only where it is used (`open`); never serialised.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Sealed(pub String);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "Sealed(empty)" } else { "Sealed(*****)" })
    }
}

impl Serialize for Sealed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(!self.0.is_empty())
    }
}

impl Sealed {
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }

    /// The plain secret ("" when none is stored); an error when it no longer decrypts (the
    /// cluster key changed): the admin enters it again.
    pub fn open(&self, key: &[u8; 32], name: &str) -> Result<String, crate::crypto::CryptoError> {
        if self.0.is_empty() {
            return Ok(String::new());
        }
        crate::crypto::decrypt(key, &secret_purpose(name), &self.0)
    }
}

fn secret_purpose(name: &str) -> String {
    format!("settings/{name}")
}

/// The keys whose values are secrets: stored encrypted, never answered.
pub const SECRET_KEYS: [&str; 2] = ["ldap_search_password", "oidc_client_secret"];

/// Harbor's `ldap_*` keys (plus Berth's `ldap_starttls` and `ldap_ca_cert`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LdapSettings {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    pub search_dn: String,
    pub search_password: Sealed,
    pub base_dn: String,
    /// An extra filter ANDed with the uid match, e.g. `(objectClass=person)`.
    pub filter: String,
    /// The attribute holding the login name (`uid`, `cn`, `sAMAccountName`).
    pub uid: String,
    /// 0 base, 1 one level, 2 subtree.
    pub scope: i64,
    /// Seconds for connecting and for each operation.
    pub timeout: i64,
    pub verify_cert: bool,
    pub starttls: bool,
    pub ca_cert: String,
    pub group_base_dn: String,
    pub group_search_filter: String,
    /// The group attribute holding its name (`cn`).
    pub group_attribute_name: String,
    pub group_search_scope: i64,
    /// Members of this group (DN) are system admins while they are.
    pub group_admin_dn: String,
    /// The user attribute listing its groups (`memberof`); groups are also found by a search
    /// for groups naming the user as `member`/`uniqueMember`/`memberUid`.
    pub group_membership_attribute: String,
}

impl Default for LdapSettings {
    fn default() -> Self {
        LdapSettings {
            url: String::new(),
            search_dn: String::new(),
            search_password: Sealed::default(),
            base_dn: String::new(),
            filter: String::new(),
            uid: "cn".into(),
            scope: 2,
            timeout: 5,
            verify_cert: true,
            starttls: false,
            ca_cert: String::new(),
            group_base_dn: String::new(),
            group_search_filter: String::new(),
            group_attribute_name: "cn".into(),
            group_search_scope: 2,
            group_admin_dn: String::new(),
            group_membership_attribute: "memberof".into(),
        }
    }
}

/// Harbor's `oidc_*` keys (plus Berth's `oidc_ca_cert`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OidcSettings {
    /// The provider's name on the login button.
    pub name: String,
    /// The issuer URL (discovery at `<endpoint>/.well-known/openid-configuration`).
    pub endpoint: String,
    pub client_id: String,
    pub client_secret: Sealed,
    pub groups_claim: String,
    pub admin_group: String,
    /// A regular expression: only matching group names are kept ("" keeps all).
    pub group_filter: String,
    /// Comma-separated scopes; must include `openid`.
    pub scope: String,
    /// The claim that becomes the username ("" = `name`, then `preferred_username`).
    pub user_claim: String,
    pub verify_cert: bool,
    pub auto_onboard: bool,
    /// A JSON object of extra authorization-request parameters.
    pub extra_redirect_parms: String,
    pub logout: bool,
    pub ca_cert: String,
}

impl Default for OidcSettings {
    fn default() -> Self {
        OidcSettings {
            name: String::new(),
            endpoint: String::new(),
            client_id: String::new(),
            client_secret: Sealed::default(),
            groups_claim: String::new(),
            admin_group: String::new(),
            group_filter: String::new(),
            scope: "openid,offline_access".into(),
            user_claim: String::new(),
            verify_cert: true,
            auto_onboard: false,
            extra_redirect_parms: "{}".into(),
            logout: false,
            ca_cert: String::new(),
        }
    }
}

/// Longest accepted string setting (CA bundles included).
const MAX_SETTING_LEN: usize = 64 * 1024;

fn string(key: &str, v: &Value) -> Result<String, String> {
    let s = v.as_str().ok_or_else(|| format!("{key} must be a string"))?;
    if s.len() > MAX_SETTING_LEN {
        return Err(format!("{key} is longer than {MAX_SETTING_LEN} bytes"));
    }
    Ok(s.trim().to_string())
}

fn boolean(key: &str, v: &Value) -> Result<bool, String> {
    v.as_bool().ok_or_else(|| format!("{key} must be true or false"))
}

fn scope(key: &str, v: &Value) -> Result<i64, String> {
    match v.as_i64() {
        Some(n @ 0..=2) => Ok(n),
        _ => Err(format!("{key} must be 0 (base), 1 (one level) or 2 (subtree)")),
    }
}

fn ldap_url(key: &str, s: String) -> Result<String, String> {
    if s.is_empty() {
        return Ok(s);
    }
    let u = url::Url::parse(&s).map_err(|e| format!("{key}: {e}"))?;
    if !matches!(u.scheme(), "ldap" | "ldaps") || u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{key} must be ldap://host[:port] or ldaps://host[:port]"));
    }
    Ok(s.trim_end_matches('/').to_string())
}

/// https, or http to a loopback address (a provider on the same host).
pub fn oidc_endpoint(key: &str, s: String) -> Result<String, String> {
    if s.is_empty() {
        return Ok(s);
    }
    let u = url::Url::parse(&s).map_err(|e| format!("{key}: {e}"))?;
    let loopback = match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if u.scheme() != "https" && !(u.scheme() == "http" && loopback) {
        return Err(format!("{key} must be an https URL (http only to a loopback address)"));
    }
    Ok(s.trim_end_matches('/').to_string())
}

impl Settings {
    pub fn defaults(cfg: &Config) -> Settings {
        Settings {
            project_creation_restriction: "everyone".into(),
            self_registration: false,
            token_expiration: (cfg.token.lifetime.as_secs() / 60) as i64,
            robot_token_duration: 30,
            storage_per_project: -1,
            audit_log_forward_endpoint: String::new(),
            skip_audit_log_database: false,
            auth_mode: AuthMode::Db,
            ldap: LdapSettings::default(),
            oidc: OidcSettings::default(),
        }
    }

    /// Applies one stored or submitted value; `Err` names what is wrong with it.
    fn apply(&mut self, key: &str, v: &Value) -> Result<(), String> {
        match key {
            "project_creation_restriction" => match v.as_str() {
                Some(s @ ("everyone" | "adminonly")) => self.project_creation_restriction = s.into(),
                _ => return Err(format!("{key} must be \"everyone\" or \"adminonly\"")),
            },
            "self_registration" => {
                self.self_registration = v.as_bool().ok_or_else(|| format!("{key} must be true or false"))?
            }
            "token_expiration" => match v.as_i64() {
                Some(m) if (1..=7 * 24 * 60).contains(&m) => self.token_expiration = m,
                _ => return Err(format!("{key} must be a number of minutes between 1 and 10080")),
            },
            "robot_token_duration" => match v.as_i64() {
                Some(d) if d == -1 || (1..=36_500).contains(&d) => self.robot_token_duration = d,
                _ => return Err(format!("{key} must be -1 (never expires) or a number of days up to 36500")),
            },
            "storage_per_project" => match v.as_i64() {
                Some(b) if b == -1 || (0..=crate::quota::MAX_LIMIT).contains(&b) => {
                    self.storage_per_project = b
                }
                _ => return Err(format!("{key} must be -1 (unlimited) or a number of bytes up to 2^50")),
            },
            "audit_log_forward_endpoint" => {
                let s = string(key, v)?;
                crate::audit_forward::parse_endpoint(&s)?;
                self.audit_log_forward_endpoint = s.trim().to_string()
            }
            "skip_audit_log_database" => self.skip_audit_log_database = boolean(key, v)?,
            "auth_mode" => {
                self.auth_mode = v
                    .as_str()
                    .and_then(AuthMode::parse)
                    .ok_or_else(|| format!("{key} must be db_auth, ldap_auth or oidc_auth"))?
            }
            "ldap_url" => self.ldap.url = ldap_url(key, string(key, v)?)?,
            "ldap_search_dn" => self.ldap.search_dn = string(key, v)?,
            // Stored values are sealed already; `update` seals submitted ones before applying.
            "ldap_search_password" => self.ldap.search_password = Sealed(string(key, v)?),
            "ldap_base_dn" => self.ldap.base_dn = string(key, v)?,
            "ldap_filter" => self.ldap.filter = string(key, v)?,
            "ldap_uid" => {
                let s = string(key, v)?;
                if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';') {
                    return Err(format!("{key} must be an attribute name such as uid or cn"));
                }
                self.ldap.uid = s
            }
            "ldap_scope" => self.ldap.scope = scope(key, v)?,
            "ldap_timeout" | "ldap_connection_timeout" => match v.as_i64() {
                Some(t @ 1..=300) => self.ldap.timeout = t,
                _ => return Err(format!("{key} must be a number of seconds between 1 and 300")),
            },
            "ldap_verify_cert" => self.ldap.verify_cert = boolean(key, v)?,
            "ldap_starttls" => self.ldap.starttls = boolean(key, v)?,
            "ldap_ca_cert" => self.ldap.ca_cert = string(key, v)?,
            "ldap_group_base_dn" => self.ldap.group_base_dn = string(key, v)?,
            "ldap_group_search_filter" => self.ldap.group_search_filter = string(key, v)?,
            "ldap_group_attribute_name" => self.ldap.group_attribute_name = string(key, v)?,
            "ldap_group_search_scope" => self.ldap.group_search_scope = scope(key, v)?,
            "ldap_group_admin_dn" => self.ldap.group_admin_dn = string(key, v)?,
            "ldap_group_membership_attribute" => self.ldap.group_membership_attribute = string(key, v)?,
            "oidc_name" => self.oidc.name = string(key, v)?,
            "oidc_endpoint" => self.oidc.endpoint = oidc_endpoint(key, string(key, v)?)?,
            "oidc_client_id" => self.oidc.client_id = string(key, v)?,
            "oidc_client_secret" => self.oidc.client_secret = Sealed(string(key, v)?),
            "oidc_groups_claim" => self.oidc.groups_claim = string(key, v)?,
            "oidc_admin_group" => self.oidc.admin_group = string(key, v)?,
            "oidc_group_filter" => {
                let s = string(key, v)?;
                regex_check(&s).map_err(|e| format!("{key} is not a valid regular expression: {e}"))?;
                self.oidc.group_filter = s
            }
            "oidc_scope" => {
                let s = string(key, v)?;
                if !s.split(',').any(|x| x.trim() == "openid") {
                    return Err(format!("{key} must include openid"));
                }
                self.oidc.scope = s
            }
            "oidc_user_claim" => self.oidc.user_claim = string(key, v)?,
            "oidc_verify_cert" => self.oidc.verify_cert = boolean(key, v)?,
            "oidc_auto_onboard" => self.oidc.auto_onboard = boolean(key, v)?,
            "oidc_extra_redirect_parms" => {
                let s = string(key, v)?;
                let s = if s.is_empty() { "{}".to_string() } else { s };
                match serde_json::from_str::<Value>(&s) {
                    Ok(Value::Object(m)) if m.values().all(Value::is_string) => {}
                    _ => return Err(format!("{key} must be a JSON object of strings")),
                }
                self.oidc.extra_redirect_parms = s
            }
            "oidc_logout" => self.oidc.logout = boolean(key, v)?,
            "oidc_ca_cert" => self.oidc.ca_cert = string(key, v)?,
            other => return Err(format!("unknown or read-only configuration {other:?}")),
        }
        Ok(())
    }

    /// `GET /configurations`: every setting with whether it may be changed (Harbor's
    /// `{key: {value, editable}}`); secrets only as "is one stored". `auth_mode_editable`:
    /// whether no user but the admin exists (`identity::auth_mode_editable`).
    pub fn to_rest(&self, auth_mode_editable: bool) -> app::rest::Configurations {
        use app::rest::ConfigItem;
        fn e<T>(v: T) -> ConfigItem<T> {
            ConfigItem::editable(v)
        }
        let (l, o) = (&self.ldap, &self.oidc);
        app::rest::Configurations {
            project_creation_restriction: e(self.project_creation_restriction.clone()),
            self_registration: e(self.self_registration),
            token_expiration: e(self.token_expiration),
            robot_token_duration: e(self.robot_token_duration),
            storage_per_project: e(self.storage_per_project),
            audit_log_forward_endpoint: e(self.audit_log_forward_endpoint.clone()),
            skip_audit_log_database: e(self.skip_audit_log_database),
            auth_mode: ConfigItem { value: self.auth_mode.as_str().into(), editable: auth_mode_editable },
            ldap_url: e(l.url.clone()),
            ldap_search_dn: e(l.search_dn.clone()),
            ldap_search_password_set: e(l.search_password.is_set()),
            ldap_base_dn: e(l.base_dn.clone()),
            ldap_filter: e(l.filter.clone()),
            ldap_uid: e(l.uid.clone()),
            ldap_scope: e(l.scope),
            ldap_timeout: e(l.timeout),
            ldap_verify_cert: e(l.verify_cert),
            ldap_starttls: e(l.starttls),
            ldap_ca_cert: e(l.ca_cert.clone()),
            ldap_group_base_dn: e(l.group_base_dn.clone()),
            ldap_group_search_filter: e(l.group_search_filter.clone()),
            ldap_group_attribute_name: e(l.group_attribute_name.clone()),
            ldap_group_search_scope: e(l.group_search_scope),
            ldap_group_admin_dn: e(l.group_admin_dn.clone()),
            ldap_group_membership_attribute: e(l.group_membership_attribute.clone()),
            oidc_name: e(o.name.clone()),
            oidc_endpoint: e(o.endpoint.clone()),
            oidc_client_id: e(o.client_id.clone()),
            oidc_client_secret_set: e(o.client_secret.is_set()),
            oidc_groups_claim: e(o.groups_claim.clone()),
            oidc_admin_group: e(o.admin_group.clone()),
            oidc_group_filter: e(o.group_filter.clone()),
            oidc_scope: e(o.scope.clone()),
            oidc_user_claim: e(o.user_claim.clone()),
            oidc_verify_cert: e(o.verify_cert),
            oidc_auto_onboard: e(o.auto_onboard),
            oidc_extra_redirect_parms: e(o.extra_redirect_parms.clone()),
            oidc_logout: e(o.logout),
            oidc_ca_cert: e(o.ca_cert.clone()),
        }
    }
}

pub async fn load(db: &Db, cfg: &Config) -> Result<Settings, sqlx::Error> {
    let mut s = Settings::defaults(cfg);
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, value FROM settings").fetch_all(&db.pool).await?;
    for (k, v) in rows {
        if let Ok(v) = serde_json::from_str::<Value>(&v) {
            if let Err(e) = s.apply(&k, &v) {
                tracing::warn!(key = %k, error = %e, "ignoring an invalid stored setting");
            }
        }
    }
    Ok(s)
}

/// Validates every submitted key first, then stores them in one transaction. Returns the keys
/// that changed. Secrets are sealed with `key` before they are stored; an empty secret clears
/// it, and the mask `*****` (what a form shows for a stored secret) leaves it unchanged.
/// `auth_mode` changes only while no user but the admin exists (Harbor's rule: users of one
/// source would be stranded in another), checked inside the transaction.
pub async fn update(
    db: &Db,
    cfg: &Config,
    key: &[u8; 32],
    changes: &HashMap<String, Value>,
) -> Result<Vec<String>, UpdateError> {
    let current = load(db, cfg).await?;
    let mut probe = current.clone();
    let mut stored: Vec<(String, Value)> = Vec::new();
    for (k, v) in changes {
        let v = if SECRET_KEYS.contains(&k.as_str()) {
            let plain = string(k, v).map_err(UpdateError::Invalid)?;
            if plain == "*****" {
                continue;
            }
            if plain.is_empty() {
                Value::String(String::new())
            } else {
                Value::String(crate::crypto::encrypt(key, &secret_purpose(k), &plain))
            }
        } else {
            v.clone()
        };
        probe.apply(k, &v).map_err(UpdateError::Invalid)?;
        stored.push((k.clone(), v));
    }
    if probe.skip_audit_log_database && probe.audit_log_forward_endpoint.is_empty() {
        return Err(UpdateError::Invalid(
            "skip_audit_log_database needs an audit_log_forward_endpoint: the events must go somewhere"
                .into(),
        ));
    }
    let mode_changes = probe.auth_mode != current.auth_mode;
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    if mode_changes {
        let others: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE deleted = 0 AND id <> 1")
            .fetch_one(&mut *tx)
            .await?;
        if others > 0 {
            return Err(UpdateError::Invalid(format!(
                "auth_mode can only change while no user but the admin exists ({others} other users exist)"
            )));
        }
    }
    stored.sort_by(|a, b| a.0.cmp(&b.0));
    let keys: Vec<String> = stored.iter().map(|(k, _)| k.clone()).collect();
    for (k, v) in &stored {
        sqlx::query(
            "INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = $2, updated_at = $3",
        )
        .bind(k)
        .bind(v.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(keys)
}

impl Settings {
    /// The LDAP settings with some `ldap_*` keys replaced (not stored): `POST /ldap/ping`
    /// tries a configuration before it is saved. Secrets are not taken here; `Err` names the
    /// bad value as `update` would.
    pub fn ldap_with(&self, overrides: &HashMap<&str, Value>) -> Result<LdapSettings, String> {
        let mut s = self.clone();
        for (k, v) in overrides {
            if !k.starts_with("ldap_") || SECRET_KEYS.contains(k) {
                return Err(format!("{k} cannot be tried here"));
            }
            s.apply(k, v)?;
        }
        Ok(s.ldap)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Whether a pattern is a valid regular expression for `oidc_group_filter`.
fn regex_check(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Ok(());
    }
    regex::Regex::new(p).map(|_| ()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validation() {
        let mut s = Settings::defaults(&Config::default());
        assert_eq!(s.token_expiration, 30);
        assert!(s.apply("project_creation_restriction", &json!("adminonly")).is_ok());
        assert!(s.apply("project_creation_restriction", &json!("nobody")).is_err());
        assert!(s.apply("self_registration", &json!("yes")).is_err());
        assert!(s.apply("token_expiration", &json!(0)).is_err());
        assert!(s.apply("robot_token_duration", &json!(-1)).is_ok());
        assert!(s.apply("robot_token_duration", &json!(-2)).is_err());
        assert!(s.apply("auth_mode", &json!("ldap_auth")).is_ok());
        assert!(s.apply("auth_mode", &json!("none")).is_err());
        assert!(s.apply("ldap_url", &json!("ldaps://dir.example:636")).is_ok());
        assert!(s.apply("ldap_url", &json!("http://dir.example")).is_err());
        assert!(s.apply("ldap_scope", &json!(3)).is_err());
        assert!(s.apply("ldap_uid", &json!("uid)(x")).is_err());
        assert!(s.apply("oidc_endpoint", &json!("http://idp.example")).is_err());
        assert!(s.apply("oidc_endpoint", &json!("http://127.0.0.1:9000/oidc")).is_ok());
        assert!(s.apply("oidc_scope", &json!("profile")).is_err());
        assert!(s.apply("oidc_extra_redirect_parms", &json!("{\"prompt\": 1}")).is_err());
        assert!(s.apply("oidc_group_filter", &json!("(")).is_err());
        assert_eq!(s.project_creation_restriction, "adminonly");
    }
}

//! LDAP (the `ldap3` crate): search-then-bind login, user and group search, ping.
//! PLACEHOLDER: the contract below is filled in by the LDAP work.

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

/// Search-then-bind: finds exactly one entry with `uid = username` (escaped) under `base_dn`
/// (ANDed with `filter`), binds as it with `password`, and reads its groups. `Ok(None)` when
/// no single entry matches or the bind is refused.
pub async fn authenticate(
    cfg: &LdapSettings,
    search_password: &str,
    username: &str,
    password: &str,
) -> Result<Option<DirectoryUser>, LdapError> {
    let _ = (cfg, search_password, username, password);
    Err(LdapError::Config("LDAP is not implemented yet".into()))
}

/// Whether two DNs name the same entry (case-insensitive, spaces around separators ignored).
pub fn dn_eq(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> String {
        s.split(',').map(|p| p.trim().to_lowercase()).collect::<Vec<_>>().join(",")
    }
    norm(a) == norm(b)
}

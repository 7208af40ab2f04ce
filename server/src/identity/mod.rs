//! Who checks a password: the local database, an LDAP directory or an OpenID Connect provider
//! (Harbor's `auth_mode`: `db_auth`, `ldap_auth`, `oidc_auth`, in `settings`).
//!
//! - `verify_password` is **the one entry point** for every surface that takes a name and a
//!   secret: the portal's login form (`auth::login_session`), Basic auth on the REST API and
//!   `/v2`, and the token service (both through `auth::CredentialCache`).
//! - **Local users always log in against the database**, in any mode, so the admin can always
//!   log in while the directory or provider is down. Users onboarded from LDAP or OIDC have no
//!   local password (`accounts::NO_LOCAL_PASSWORD`).
//! - `ldap_auth`: search-then-bind (`ldap.rs`); the user is created on first login
//!   (`accounts::onboard`) and its directory groups become user groups (`groups::populate`).
//! - `oidc_auth`: the portal logs in through the provider (`oidc.rs`, authorization code with
//!   PKCE); Basic auth and the token service take the user's **CLI secret**, valid while the
//!   provider still refreshes the user's tokens.
//! - **Every check counts against the lockout** (`accounts::begin_attempt`), whatever checks
//!   the password, so guessing an LDAP password is throttled like a local one.
//! - The groups found at login are the user's `groups` (`User::groups`): kept in the portal
//!   session, and in the credential cache for at most `auth.directory_cache` (default 5 s) for
//!   Basic auth and tokens; project roles through groups follow (`rbac::member_role`).

pub mod groups;
pub mod ldap;
pub mod oidc;

use crate::accounts::{self, LoginError, User};
use crate::db::Db;
use crate::settings::{self, AuthMode};
use crate::state::AppState;

/// Where the name and secret were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The portal's login form: OIDC users log in through the provider instead.
    Portal,
    /// Basic auth and the token service: OIDC users give their CLI secret.
    Cli,
}

/// A successful check.
#[derive(Debug, Clone)]
pub struct Verified {
    /// With `groups` and `admin_role_in_auth` filled in.
    pub user: User,
    /// False for local users (the credential cache keys them on `password_changed_at`), true
    /// for directory and provider users (reused for `auth.directory_cache` only).
    pub external: bool,
}

/// Whether `auth_mode` may change: no user but the admin exists.
pub async fn auth_mode_editable(db: &Db) -> Result<bool, sqlx::Error> {
    let others: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE deleted = 0 AND id <> 1")
        .fetch_one(&db.pool)
        .await?;
    Ok(others == 0)
}

/// Checks a name and secret with whatever holds the user's credentials (module doc).
/// `count_unknown` as in `accounts::authenticate_counting`.
///
/// The check runs in a task of its own, so a client that hangs up mid-check cannot cancel it
/// between `begin_attempt` and `end_attempt`: an unsettled reservation counts against the
/// lockout until it expires, and a client timing out a slow directory would otherwise lock its
/// own user out.
pub async fn verify_password(
    state: &AppState,
    name: &str,
    secret: &str,
    count_unknown: bool,
    surface: Surface,
) -> Result<Verified, LoginError> {
    use tracing::Instrument;
    let (state, name, secret) = (state.clone(), name.to_owned(), secret.to_owned());
    let check = async move { verify(&state, &name, &secret, count_unknown, surface).await };
    match tokio::spawn(check.in_current_span()).await {
        Ok(result) => result,
        Err(e) => {
            tracing::error!(error = %e, "the password check failed");
            Err(LoginError::Unavailable("the password check failed; retry".into()))
        }
    }
}

async fn verify(
    state: &AppState,
    name: &str,
    secret: &str,
    count_unknown: bool,
    surface: Surface,
) -> Result<Verified, LoginError> {
    accounts::check_login_input(name, secret)?;
    let settings = settings::load(&state.db, &state.config).await?;
    let existing = accounts::get_by_name(&state.db, name).await?;
    let local = existing.as_ref().is_none_or(|u| u.source == "db");
    match settings.auth_mode {
        AuthMode::Ldap if existing.as_ref().is_none_or(|u| u.source != "db") => {
            // A client past its failure budget (`auth::FailureBudget`) cannot guess at names
            // this registry has never seen: they would leave no lockout row, so the guesses
            // would be unthrottled. Refused without asking the directory, for that minute.
            if existing.is_none() && !count_unknown {
                return Err(LoginError::InvalidCredentials);
            }
            let key = accounts::lockout_key(existing.as_ref().map(|u| u.username.as_str()).unwrap_or(name));
            let attempt = accounts::begin_attempt(&state.db, &state.config.auth, &key).await?;
            let result = ldap_login(state, &settings, name, secret).await;
            let ok = match &result {
                Ok(_) => Some(true),
                Err(LoginError::InvalidCredentials) => Some(false),
                // The directory did not decide: no failure is counted.
                Err(_) => None,
            };
            accounts::end_attempt(&state.db, &state.config.auth, attempt, ok).await?;
            result.map(|user| Verified { user, external: true })
        }
        AuthMode::Oidc
            if surface == Surface::Cli && existing.as_ref().is_some_and(|u| u.source == "oidc") =>
        {
            let Some(user) = existing else { return Err(LoginError::InvalidCredentials) };
            let key = accounts::lockout_key(&user.username);
            let attempt = accounts::begin_attempt(&state.db, &state.config.auth, &key).await?;
            let result = oidc::verify_cli_secret(state, &settings.oidc, &user, secret).await;
            let ok = match &result {
                Ok(Some(_)) => Some(true),
                Ok(None) | Err(LoginError::InvalidCredentials) => Some(false),
                Err(_) => None,
            };
            accounts::end_attempt(&state.db, &state.config.auth, attempt, ok).await?;
            let group_names = result?.ok_or(LoginError::InvalidCredentials)?;
            let user = with_oidc_groups(&state.db, &settings.oidc, user, &group_names).await?;
            Ok(Verified { user, external: true })
        }
        _ if local => {
            let user =
                accounts::authenticate_counting(&state.db, &state.config.auth, name, secret, count_unknown)
                    .await?;
            Ok(Verified { user, external: false })
        }
        // A directory or provider user while another mode is on (or an OIDC user at the
        // password form): never a password check; counted like a wrong password.
        _ => {
            let user = existing.ok_or(LoginError::InvalidCredentials)?;
            let key = accounts::lockout_key(&user.username);
            let attempt = accounts::begin_attempt(&state.db, &state.config.auth, &key).await?;
            accounts::end_attempt(&state.db, &state.config.auth, attempt, Some(false)).await?;
            Err(LoginError::InvalidCredentials)
        }
    }
}

/// Search-then-bind, onboarding and groups for `ldap_auth`.
async fn ldap_login(
    state: &AppState,
    settings: &settings::Settings,
    name: &str,
    secret: &str,
) -> Result<User, LoginError> {
    let cfg = &settings.ldap;
    let search_password =
        cfg.search_password.open(&state.secrets.encryption_key, "ldap_search_password").map_err(|_| {
            LoginError::Unavailable("the LDAP search password no longer decrypts: enter it again".into())
        })?;
    let found = ldap::authenticate(cfg, &search_password, name, secret).await.map_err(LoginError::from)?;
    let Some(found) = found else { return Err(LoginError::InvalidCredentials) };
    let user = accounts::onboard(&state.db, "ldap", &found.username, &found.email, &found.realname)
        .await
        .map_err(|e| match e {
            accounts::UserError::Db(e) => LoginError::Db(e),
            other => LoginError::Unavailable(format!("the directory user cannot log in here: {other}")),
        })?;
    with_ldap_groups(&state.db, cfg, user, &found.groups).await
}

/// Fills `groups` (populated from the directory's group DNs) and the admin-group flag.
pub async fn with_ldap_groups(
    db: &Db,
    cfg: &settings::LdapSettings,
    mut user: User,
    found: &[ldap::DirectoryGroup],
) -> Result<User, LoginError> {
    let entries: Vec<groups::NewGroup> = found
        .iter()
        .map(|g| groups::NewGroup {
            kind: groups::GroupType::Ldap,
            name: g.name.clone(),
            ldap_dn: g.dn.clone(),
        })
        .collect();
    user.groups = groups::populate(db, &entries).await?;
    let admin = cfg.group_admin_dn.trim();
    user.admin_role_in_auth = !admin.is_empty() && found.iter().any(|g| ldap::dn_eq(&g.dn, admin));
    Ok(user)
}

/// Fills `groups` from the provider's group names (after `oidc_group_filter`) and the
/// admin-group flag.
pub async fn with_oidc_groups(
    db: &Db,
    cfg: &settings::OidcSettings,
    mut user: User,
    names: &[String],
) -> Result<User, LoginError> {
    let filter = if cfg.group_filter.is_empty() { None } else { regex::Regex::new(&cfg.group_filter).ok() };
    let entries: Vec<groups::NewGroup> = names
        .iter()
        .filter(|n| filter.as_ref().is_none_or(|f| f.is_match(n)))
        .map(|n| groups::NewGroup { kind: groups::GroupType::Oidc, name: n.clone(), ldap_dn: String::new() })
        .collect();
    user.groups = groups::populate(db, &entries).await?;
    user.admin_role_in_auth = !cfg.admin_group.is_empty() && names.contains(&cfg.admin_group);
    Ok(user)
}

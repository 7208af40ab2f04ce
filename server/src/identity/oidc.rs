//! OpenID Connect (the `openidconnect` crate): the portal's authorization-code flow with PKCE,
//! onboarding, refresh, logout, and the CLI secret the token service accepts.
//! PLACEHOLDER: the contract below is filled in by the OIDC work.

use crate::accounts::{LoginError, User};
use crate::settings::OidcSettings;
use crate::state::AppState;

/// Checks an OIDC user's CLI secret (constant time). `Ok(Some(groups))` when it matches and
/// the user's provider session can still be refreshed (the refreshed tokens are stored);
/// `Ok(None)` for a wrong secret; `Err(InvalidCredentials)` when the provider refuses the
/// refresh (the session is over); `Err(Unavailable)` when the provider cannot be reached.
pub async fn verify_cli_secret(
    state: &AppState,
    cfg: &OidcSettings,
    user: &User,
    secret: &str,
) -> Result<Option<Vec<String>>, LoginError> {
    let _ = (state, cfg, user, secret);
    Err(LoginError::Unavailable("OIDC is not implemented yet".into()))
}

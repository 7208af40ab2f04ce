//! Signing in and out: the only server functions besides the REST relay (`api`), because they
//! create and end the session the relay then runs as. Who is signed in comes from the REST
//! API (`GET /users/current`).

use leptos::prelude::*;

use crate::error::PortalError;
use crate::rest::UserResp;

/// The signed-in user (`GET /users/current`), `None` without a session.
pub async fn current_user() -> Result<Option<UserResp>, PortalError> {
    match crate::server_fns::api::get::<UserResp>("/users/current".into()).await {
        Ok(u) => Ok(Some(u)),
        Err(PortalError::Unauthorized) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Signs in. Works as a plain form post (redirects with a 302) and from the hydrated page
/// (client-side navigation). A failed plain form post comes back to the sign-in page with an
/// error code in the URL, so the message shows without JavaScript too.
#[server(prefix = "/portal/fn", endpoint = "login")]
pub async fn login(username: String, password: String, redirect_url: String) -> Result<(), PortalError> {
    let target = safe_redirect(&redirect_url);
    match crate::backend::backend()?.login(username, password).await {
        Ok(_) => {
            leptos_axum::redirect(&target);
            Ok(())
        }
        Err(e) => {
            if crate::backend::is_plain_form_post() {
                let mut q = format!("/account/sign-in?error={}", e.code());
                if let PortalError::Locked(s) | PortalError::Busy(s) = e {
                    q.push_str(&format!("&retry={s}"));
                }
                q.push_str("&redirect_url=");
                q.push_str(&encode_component(&target));
                leptos_axum::redirect(&q);
            }
            Err(e)
        }
    }
}

#[server(prefix = "/portal/fn", endpoint = "logout")]
pub async fn logout() -> Result<(), PortalError> {
    let next = crate::backend::backend()?.logout().await?;
    leptos_axum::redirect(next.as_deref().unwrap_or("/account/sign-in"));
    Ok(())
}

/// Percent-encodes a URL query component.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A path on this site (`/…`), never another origin (`//host`, `\\`, control characters).
pub fn is_local_path(target: &str) -> bool {
    target.starts_with('/')
        && !target.starts_with("//")
        && !target.contains('\\')
        && !target.chars().any(|c| c.is_control())
}

/// Only same-site absolute paths may be redirect targets after login (no open redirects).
pub fn safe_redirect(target: &str) -> String {
    let ok = is_local_path(target) && !target.starts_with("/account/sign-in");
    if ok {
        target.to_string()
    } else {
        "/harbor/projects".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::safe_redirect;

    #[test]
    fn redirects_stay_on_site() {
        assert_eq!(safe_redirect("/harbor/projects?name=x"), "/harbor/projects?name=x");
        for bad in
            ["https://evil.example", "//evil.example", "/\\evil", "", "javascript:x", "/account/sign-in"]
        {
            assert_eq!(safe_redirect(bad), "/harbor/projects", "{bad}");
        }
    }
}

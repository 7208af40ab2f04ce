use leptos::prelude::*;

use crate::error::PortalError;
use crate::model::UserView;

#[server(prefix = "/portal/fn", endpoint = "current_user")]
pub async fn current_user() -> Result<Option<UserView>, PortalError> {
    crate::backend::backend()?.current_user().await
}

/// Signs in. Works as a plain form post (redirects with a 302) and from the hydrated page
/// (client-side navigation). A failed plain form post comes back to the sign-in page with an
/// error code in the URL, so the message shows without JavaScript too.
#[server(prefix = "/portal/fn", endpoint = "login")]
pub async fn login(username: String, password: String, redirect_url: String) -> Result<(), PortalError> {
    use crate::model::safe_redirect;
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
    crate::backend::backend()?.logout().await?;
    leptos_axum::redirect("/account/sign-in");
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

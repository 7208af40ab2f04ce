//! The CLI secret of an OIDC user on the account page (`oidc_user_meta` of `/users/current`):
//! hidden until shown, copyable, and replaced with `PUT /users/{id}/cli_secret` by a typed
//! secret or one generated in the browser (`crypto.getRandomValues`). `docker login` takes it
//! as the password, because a command-line client cannot follow the provider's browser flow.

use leptos::prelude::*;

use crate::components::page::CopyField;
use crate::error::PortalError;
use crate::i18n::t;
use crate::pages::project::{perform, OutcomeSignal, Reload};
use crate::rest::users::{OidcCliSecretReq, OidcUserMeta};
use crate::server_fns::api;

const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// A secret of `bytes.len()` characters (at least 3) from random bytes, with an upper-case
/// letter, a lower-case letter and a digit at the start (the API's password rule).
pub fn secret_from(bytes: &[u8]) -> String {
    bytes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let b = *b as usize;
            match i {
                0 => ALPHABET[b % 24] as char,             // upper
                1 => ALPHABET[24 + b % 25] as char,        // lower
                2 => ALPHABET[49 + b % 8] as char,         // digit
                _ => ALPHABET[b % ALPHABET.len()] as char, // any
            }
        })
        .collect()
}

/// 32 random characters from the browser's cryptographic generator (`None` outside it).
fn random_secret() -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        let mut buf = [0u8; 32];
        let crypto = web_sys::window()?.crypto().ok()?;
        crypto.get_random_values_with_u8_array(&mut buf).ok()?;
        Some(secret_from(&buf))
    }
    #[cfg(not(feature = "hydrate"))]
    None
}

#[component]
pub fn CliSecret(meta: OidcUserMeta, outcome: OutcomeSignal, reload: Reload) -> impl IntoView {
    let shown = RwSignal::new(false);
    let typed = RwSignal::new(String::new());
    let id = meta.user_id;
    let generate = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let own = typed.get_untracked();
        let secret = if own.is_empty() { random_secret() } else { Some(own) };
        let Some(secret) = secret else {
            outcome.set(Some(Err(PortalError::Invalid(
                t("This browser cannot generate a secret; type one.").into(),
            ))));
            return;
        };
        typed.set(String::new());
        shown.set(true);
        perform(
            outcome,
            reload,
            t("A new CLI secret is set; the old one no longer works.").into(),
            api::send(
                "PUT",
                format!("/users/{id}/cli_secret"),
                Some(api::body(&OidcCliSecretReq { secret })),
            ),
        );
    };
    let secret = meta.secret.clone();
    view! {
        <section class="card form-card" aria-labelledby="cli-secret-h" data-testid="cli-secret-card">
            <h2 id="cli-secret-h">{t("CLI secret")}</h2>
            <p class="muted small">{t("Use it as the password of docker login and other command-line clients.")}</p>
            {move || if shown.get() {
                view! { <CopyField value=secret.clone() label=t("CLI secret") testid="cli-secret" /> }.into_any()
            } else {
                view! { <input type="password" readonly value="••••••••••••" aria-label=t("CLI secret (hidden)") data-testid="cli-secret-hidden" /> }.into_any()
            }}
            <div>
                <button type="button" class="btn" on:click=move |_| shown.update(|s| *s = !*s)
                    aria-pressed=move || shown.get().to_string() data-testid="cli-secret-toggle">
                    {move || if shown.get() { t("Hide secret") } else { t("Show secret") }}
                </button>
            </div>
            <form class="stack" on:submit=generate data-testid="cli-secret-form">
                <label for="cli-own">{t("New secret (leave empty to generate one)")}</label>
                <input id="cli-own" type="password" autocomplete="new-password" bind:value=typed />
                <button type="submit" class="btn btn-primary" data-testid="cli-secret-generate">{t("Generate secret")}</button>
            </form>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_follow_the_password_rule() {
        for seed in 0..=255u8 {
            let bytes: Vec<u8> = (0..32).map(|i| seed.wrapping_mul(31).wrapping_add(i * 7)).collect();
            let s = secret_from(&bytes);
            assert_eq!(s.len(), 32);
            assert!(s.chars().any(|c| c.is_ascii_uppercase()), "{s}");
            assert!(s.chars().any(|c| c.is_ascii_lowercase()), "{s}");
            assert!(s.chars().any(|c| c.is_ascii_digit()), "{s}");
            assert!(s.chars().all(|c| c.is_ascii_alphanumeric()), "{s}");
        }
    }
}

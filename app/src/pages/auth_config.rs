//! The Authentication section of Administration → Configuration (Harbor's layout): the auth
//! mode, the LDAP settings with "Test LDAP server" (`POST /ldap/ping` with the form's values)
//! and the OIDC settings. Saved with `PUT /configurations` (the mode and the selected mode's
//! keys); the API's 400 message is shown as it is. Stored secrets (`ldap_search_password`,
//! `oidc_client_secret`) are never answered: the form shows the mask `*****` for one, and
//! sending the mask back keeps it (the API's rule).

use leptos::prelude::*;
use serde_json::{Map, Value};

use crate::error::PortalError;
use crate::i18n::t;
use crate::pages::project::{OutcomeSignal, Reload};
use crate::rest::usergroups::{LdapConf, LdapPingResult};
use crate::rest::Configurations;
use crate::server_fns::api;

/// What the form shows for a stored secret; sent back, it keeps the stored one.
pub const MASK: &str = "*****";

/// The modes of `auth_mode`, with their labels.
pub const AUTH_MODES: [(&str, &str); 3] =
    [("db_auth", "Database"), ("ldap_auth", "LDAP"), ("oidc_auth", "OIDC")];

/// LDAP search scopes (`ldap_scope`, `ldap_group_search_scope`).
pub const SCOPES: [(i64, &str); 3] = [(0, "Base"), (1, "One level"), (2, "Subtree")];

fn mask(set: bool) -> String {
    if set {
        MASK.to_string()
    } else {
        String::new()
    }
}

/// A text setting: its key, label, signal and input type.
#[derive(Clone, Copy)]
struct Text {
    key: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    kind: &'static str,
}

/// A checkbox setting.
#[derive(Clone, Copy)]
struct Flag {
    key: &'static str,
    label: &'static str,
    value: RwSignal<bool>,
}

fn text(key: &'static str, label: &'static str, v: &str) -> Text {
    Text { key, label, value: RwSignal::new(v.to_string()), kind: "text" }
}

fn secret(key: &'static str, label: &'static str, set: bool) -> Text {
    Text { key, label, value: RwSignal::new(mask(set)), kind: "password" }
}

fn flag(key: &'static str, label: &'static str, v: bool) -> Flag {
    Flag { key, label, value: RwSignal::new(v) }
}

fn text_field(f: Text) -> impl IntoView {
    let id = format!("cfg-{}", f.key);
    let autocomplete = if f.kind == "password" { "new-password" } else { "off" };
    view! {
        <label for=id.clone()>{f.label}</label>
        <input id=id type=f.kind autocomplete=autocomplete bind:value=f.value data-testid=format!("cfg-{}", f.key) />
    }
}

fn flag_field(f: Flag) -> impl IntoView {
    view! {
        <label class="check">
            <input type="checkbox" bind:checked=f.value data-testid=format!("cfg-{}", f.key) />
            {f.label}
        </label>
    }
}

fn pem_field(key: &'static str, label: &'static str, value: RwSignal<String>) -> impl IntoView {
    let id = format!("cfg-{key}");
    view! {
        <label for=id.clone()>{label}</label>
        <textarea id=id rows="4" spellcheck="false" placeholder="-----BEGIN CERTIFICATE-----" bind:value=value data-testid=format!("cfg-{key}")></textarea>
    }
}

fn scope_field(key: &'static str, label: &'static str, value: RwSignal<String>) -> impl IntoView {
    let id = format!("cfg-{key}");
    let current = value.get_untracked();
    view! {
        <label for=id.clone()>{label}</label>
        <select id=id bind:value=value data-testid=format!("cfg-{key}")>
            {SCOPES.map(|(v, l)| view! { <option value=v.to_string() selected=current == v.to_string()>{t(l)}</option> }).collect_view()}
        </select>
    }
}

fn number(s: &str) -> Value {
    s.trim().parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::String(s.to_string()))
}

#[component]
pub fn AuthConfigForm(c: Configurations, outcome: OutcomeSignal, reload: Reload) -> impl IntoView {
    let mode = RwSignal::new(c.auth_mode.value.clone());
    let editable = c.auth_mode.editable;
    // LDAP
    let ldap_url = text("ldap_url", t("LDAP URL"), &c.ldap_url.value);
    let ldap_texts = [
        ldap_url,
        text("ldap_search_dn", t("LDAP search DN"), &c.ldap_search_dn.value),
        secret("ldap_search_password", t("LDAP search password"), c.ldap_search_password_set.value),
        text("ldap_base_dn", t("LDAP base DN"), &c.ldap_base_dn.value),
        text("ldap_filter", t("LDAP filter"), &c.ldap_filter.value),
        text("ldap_uid", t("LDAP UID"), &c.ldap_uid.value),
    ];
    let ldap_scope = RwSignal::new(c.ldap_scope.value.to_string());
    let ldap_timeout = RwSignal::new(c.ldap_timeout.value.to_string());
    let ldap_flags = [
        flag("ldap_verify_cert", t(" LDAP verify certificate"), c.ldap_verify_cert.value),
        flag("ldap_starttls", t(" StartTLS (for ldap:// URLs)"), c.ldap_starttls.value),
    ];
    let ldap_ca = RwSignal::new(c.ldap_ca_cert.value.clone());
    let group_texts = [
        text("ldap_group_base_dn", t("LDAP group base DN"), &c.ldap_group_base_dn.value),
        text("ldap_group_search_filter", t("LDAP group filter"), &c.ldap_group_search_filter.value),
        text("ldap_group_attribute_name", t("LDAP group name attribute"), &c.ldap_group_attribute_name.value),
    ];
    let group_scope = RwSignal::new(c.ldap_group_search_scope.value.to_string());
    let group_more = [
        text("ldap_group_admin_dn", t("LDAP group admin DN"), &c.ldap_group_admin_dn.value),
        text(
            "ldap_group_membership_attribute",
            t("LDAP group membership attribute"),
            &c.ldap_group_membership_attribute.value,
        ),
    ];
    // OIDC
    let oidc_texts = [
        text("oidc_name", t("OIDC provider name"), &c.oidc_name.value),
        text("oidc_endpoint", t("OIDC endpoint"), &c.oidc_endpoint.value),
        text("oidc_client_id", t("OIDC client ID"), &c.oidc_client_id.value),
        secret("oidc_client_secret", t("OIDC client secret"), c.oidc_client_secret_set.value),
        text("oidc_groups_claim", t("Group claim name"), &c.oidc_groups_claim.value),
        text("oidc_admin_group", t("OIDC admin group"), &c.oidc_admin_group.value),
        text("oidc_group_filter", t("OIDC group filter (regular expression)"), &c.oidc_group_filter.value),
        text("oidc_scope", t("OIDC scope"), &c.oidc_scope.value),
        text("oidc_user_claim", t("Username claim"), &c.oidc_user_claim.value),
        text(
            "oidc_extra_redirect_parms",
            t("Extra redirect parameters (JSON object)"),
            &c.oidc_extra_redirect_parms.value,
        ),
    ];
    let oidc_flags = [
        flag("oidc_verify_cert", t(" OIDC verify certificate"), c.oidc_verify_cert.value),
        flag("oidc_auto_onboard", t(" Automatic onboarding"), c.oidc_auto_onboard.value),
        flag("oidc_logout", t(" Also log out of the provider"), c.oidc_logout.value),
    ];
    let oidc_ca = RwSignal::new(c.oidc_ca_cert.value.clone());

    let ldap_body = move || {
        let mut m = Map::new();
        for f in ldap_texts.iter().chain(&group_texts).chain(&group_more) {
            m.insert(f.key.into(), Value::String(f.value.get_untracked().trim().to_string()));
        }
        for f in &ldap_flags {
            m.insert(f.key.into(), Value::Bool(f.value.get_untracked()));
        }
        m.insert("ldap_scope".into(), number(&ldap_scope.get_untracked()));
        m.insert("ldap_timeout".into(), number(&ldap_timeout.get_untracked()));
        m.insert("ldap_group_search_scope".into(), number(&group_scope.get_untracked()));
        m.insert("ldap_ca_cert".into(), Value::String(ldap_ca.get_untracked()));
        m
    };
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mode_now = mode.get_untracked();
        let mut body = Map::new();
        body.insert("auth_mode".into(), Value::String(mode_now.clone()));
        // Only the selected mode's settings: the other mode's fields are hidden and not checked.
        if mode_now == "ldap_auth" {
            body.extend(ldap_body());
        }
        if mode_now == "oidc_auth" {
            for f in &oidc_texts {
                body.insert(f.key.into(), Value::String(f.value.get_untracked().trim().to_string()));
            }
            for f in &oidc_flags {
                body.insert(f.key.into(), Value::Bool(f.value.get_untracked()));
            }
            body.insert("oidc_ca_cert".into(), Value::String(oidc_ca.get_untracked()));
        }
        // Reloaded (the form rendered again from the stored values) only after a success, so a
        // refused value stays in the form to be corrected.
        let note = t("Saved.").to_string();
        leptos::task::spawn_local(async move {
            match api::send("PUT", "/configurations".into(), Some(Value::Object(body))).await {
                Ok(_) => {
                    outcome.set(Some(Ok(note)));
                    reload.update(|v| *v += 1);
                }
                Err(e) => outcome.set(Some(Err(e))),
            }
        });
    };
    // Test LDAP server: the form's values (the mask keeps the stored password).
    let ping: RwSignal<Option<Result<LdapPingResult, PortalError>>> = RwSignal::new(None);
    let pinging = RwSignal::new(false);
    let test_ldap = move |_| {
        let m = ldap_body();
        let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
        let conf = LdapConf {
            ldap_url: s("ldap_url"),
            ldap_search_dn: s("ldap_search_dn"),
            ldap_search_password: s("ldap_search_password"),
            ldap_base_dn: s("ldap_base_dn"),
            ldap_filter: s("ldap_filter"),
            ldap_uid: s("ldap_uid"),
            ldap_scope: m.get("ldap_scope").and_then(Value::as_i64),
            ldap_connection_timeout: m.get("ldap_timeout").and_then(Value::as_i64),
            ldap_verify_cert: m.get("ldap_verify_cert").and_then(Value::as_bool),
            ldap_starttls: m.get("ldap_starttls").and_then(Value::as_bool),
            ldap_ca_cert: s("ldap_ca_cert"),
        };
        pinging.set(true);
        ping.set(None);
        leptos::task::spawn_local(async move {
            let r = api::send("POST", "/ldap/ping".into(), Some(api::body(&conf)))
                .await
                .and_then(api::decode::<LdapPingResult>);
            ping.set(Some(r));
            pinging.set(false);
        });
    };
    let ping_view = move || {
        ping.get().map(|r| match r {
            Ok(p) if p.success => view! {
                <p class="alert alert-ok" role="status" data-testid="ldap-ping-result">{t("Connection to the LDAP server succeeded.")}</p>
            }
            .into_any(),
            Ok(p) => view! {
                <p class="alert alert-error" role="alert" data-testid="ldap-ping-result">
                    {t("Connection to the LDAP server failed: ")}{p.message}
                </p>
            }
            .into_any(),
            Err(e) => view! {
                <p class="alert alert-error" role="alert" data-testid="ldap-ping-result">
                    {t("Connection to the LDAP server failed: ")}{e.localized()}
                </p>
            }
            .into_any(),
        })
    };
    let current_mode = c.auth_mode.value.clone();
    view! {
        <form class="card form-card" on:submit=save data-testid="auth-config-form" aria-labelledby="auth-h">
            <h2 id="auth-h">{t("Authentication")}</h2>
            <label for="auth-mode">{t("Authentication mode")}</label>
            <select id="auth-mode" bind:value=mode disabled=!editable aria-describedby="auth-mode-help" data-testid="cfg-auth_mode">
                {AUTH_MODES.map(|(v, l)| view! { <option value=v selected=current_mode == v>{t(l)}</option> }).collect_view()}
            </select>
            <p id="auth-mode-help" class="muted small" data-testid="auth-mode-help">
                {if editable {
                    t("The mode can change only while no user but the admin exists.")
                } else {
                    t("The mode cannot change any more: users other than the admin exist.")
                }}
            </p>
            <Show when=move || mode.get() == "ldap_auth">
                <fieldset class="stack-fields" data-testid="ldap-settings">
                    <legend>{t("LDAP")}</legend>
                    {ldap_texts.map(text_field).collect_view()}
                    {scope_field("ldap_scope", t("LDAP scope"), ldap_scope)}
                    <label for="cfg-ldap_timeout">{t("LDAP timeout (seconds)")}</label>
                    <input id="cfg-ldap_timeout" type="number" min="1" max="300" bind:value=ldap_timeout data-testid="cfg-ldap_timeout" />
                    {ldap_flags.map(flag_field).collect_view()}
                    {pem_field("ldap_ca_cert", t("LDAP CA certificates (PEM)"), ldap_ca)}
                    {group_texts.map(text_field).collect_view()}
                    {scope_field("ldap_group_search_scope", t("LDAP group scope"), group_scope)}
                    {group_more.map(text_field).collect_view()}
                    <div>
                        <button type="button" class="btn" on:click=test_ldap disabled=move || pinging.get() data-testid="ldap-ping">
                            {move || if pinging.get() { t("Testing…") } else { t("Test LDAP server") }}
                        </button>
                    </div>
                    {ping_view}
                </fieldset>
            </Show>
            <Show when=move || mode.get() == "oidc_auth">
                <fieldset class="stack-fields" data-testid="oidc-settings">
                    <legend>{t("OIDC")}</legend>
                    {oidc_texts.map(text_field).collect_view()}
                    {oidc_flags.map(flag_field).collect_view()}
                    {pem_field("oidc_ca_cert", t("OIDC CA certificates (PEM)"), oidc_ca)}
                </fieldset>
            </Show>
            <div><button type="submit" class="btn btn-primary" data-testid="auth-config-save">{t("Save")}</button></div>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_sent_as_numbers_and_garbage_as_text() {
        assert_eq!(number(" 5 "), json!(5));
        assert_eq!(number("x"), json!("x"));
        assert_eq!(mask(true), MASK);
        assert_eq!(mask(false), "");
    }
}

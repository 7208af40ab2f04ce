//! Users page in LDAP mode: find directory users (`/ldap/users/search?username=`) and import
//! the selected ones (`POST /ldap/users/import`), as Harbor's "Import from LDAP" does.

use leptos::prelude::*;

use crate::components::page::ErrorAlert;
use crate::error::PortalError;
use crate::i18n::{fill, t};
use crate::pages::project::{perform, OutcomeSignal, Reload};
use crate::rest::usergroups::{LdapImportUsers, LdapUser};
use crate::server_fns::api;
use crate::server_fns::auth::encode_component;

#[component]
pub fn LdapUserImport(outcome: OutcomeSignal, reload: Reload) -> impl IntoView {
    let term = RwSignal::new(String::new());
    let found: RwSignal<Option<Result<Vec<LdapUser>, PortalError>>> = RwSignal::new(None);
    let chosen: RwSignal<Vec<String>> = RwSignal::new(vec![]);
    let search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let q = term.get_untracked().trim().to_string();
        chosen.set(vec![]);
        leptos::task::spawn_local(async move {
            let r =
                api::get::<Vec<LdapUser>>(format!("/ldap/users/search?username={}", encode_component(&q)))
                    .await;
            found.set(Some(r));
        });
    };
    let import = move |_| {
        let list = chosen.get_untracked();
        if list.is_empty() {
            return;
        }
        let note = fill(t("Imported {} user(s) from LDAP."), &[&list.len()]);
        chosen.set(vec![]);
        perform(
            outcome,
            reload,
            note,
            api::send(
                "POST",
                "/ldap/users/import".into(),
                Some(api::body(&LdapImportUsers { ldap_uid_list: list })),
            ),
        );
    };
    view! {
        <section class="card form-card" aria-labelledby="ldap-users-h" data-testid="ldap-user-import">
            <h2 id="ldap-users-h">{t("Import from LDAP")}</h2>
            <form class="toolbar" role="search" on:submit=search>
                <label class="visually-hidden" for="ldap-user-term">{t("Username in the directory")}</label>
                <input id="ldap-user-term" type="search" placeholder=t("Username in the directory") bind:value=term />
                <button type="submit" class="btn">{t("Search LDAP")}</button>
            </form>
            {move || found.get().map(|r| match r {
                Ok(list) if list.is_empty() => view! { <p class="muted">{t("No LDAP users match.")}</p> }.into_any(),
                Ok(list) => view! {
                    <fieldset class="stack" data-testid="ldap-user-results">
                        <legend class="visually-hidden">{t("Users to import")}</legend>
                        {list.into_iter().map(|u| {
                            let uid = u.username.clone();
                            let toggle = move |ev: leptos::ev::Event| {
                                let on = event_target_checked(&ev);
                                let uid = uid.clone();
                                chosen.update(|c| {
                                    c.retain(|x| *x != uid);
                                    if on {
                                        c.push(uid);
                                    }
                                });
                            };
                            view! {
                                <label class="check">
                                    <input type="checkbox" on:change=toggle />
                                    <span class="strong">{u.username.clone()}</span>
                                    <span class="muted">{u.realname.clone()} " " {u.email.clone()}</span>
                                </label>
                            }
                        }).collect_view()}
                        <button type="button" class="btn btn-primary" on:click=import
                            disabled=move || chosen.get().is_empty() data-testid="ldap-user-import-submit">{t("Import selected")}</button>
                    </fieldset>
                }.into_any(),
                Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
            })}
        </section>
    }
}

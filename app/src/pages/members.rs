//! A project's members tab, group part: adds a user group as a member (`POST
//! /projects/{p}/members` with `member_group`) — an existing group found by name
//! (`/usergroups/search`, offered as suggestions while typing) or an LDAP group by its DN
//! (the API onboards it). Listing, role changes and removal are the same as for users
//! (`pages::project::MembersBody`).

use leptos::prelude::*;

use crate::i18n::{fill, t};
use crate::pages::project::{perform, OutcomeSignal, Reload};
use crate::rest::projects::MemberReq;
use crate::rest::usergroups::{UserGroup, UserGroupSearchItem};
use crate::rest::{self, ROLES};
use crate::server_fns::api::{self, seg};
use crate::server_fns::auth::encode_component;

async fn search(term: String) -> Result<Vec<UserGroupSearchItem>, crate::error::PortalError> {
    api::get(format!("/usergroups/search?groupname={}&page=1&page_size=10", encode_component(&term))).await
}

/// What to send for the typed text: an existing group with exactly this name, else an LDAP DN
/// when it looks like one (`cn=…`), else nothing.
pub fn group_for(text: &str, found: &[UserGroupSearchItem]) -> Option<UserGroup> {
    if let Some(g) = found.iter().find(|g| g.group_name == text) {
        return Some(UserGroup { id: g.id, group_name: g.group_name.clone(), ..Default::default() });
    }
    text.contains('=').then(|| UserGroup {
        group_type: 1,
        ldap_group_dn: text.to_string(),
        ..Default::default()
    })
}

#[component]
pub fn AddGroupMember(project: String, outcome: OutcomeSignal, reload: Reload) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let role = RwSignal::new("2".to_string());
    let suggestions: RwSignal<Vec<UserGroupSearchItem>> = RwSignal::new(vec![]);
    let typed = move |ev: leptos::ev::Event| {
        let v = event_target_value(&ev);
        text.set(v.clone());
        if v.trim().len() < 2 || v.contains('=') {
            return;
        }
        leptos::task::spawn_local(async move {
            if let Ok(list) = search(v.trim().to_string()).await {
                suggestions.set(list);
            }
        });
    };
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let typed = text.get_untracked().trim().to_string();
        let role_id: i64 = role.get_untracked().parse().unwrap_or(2);
        let path = format!("/projects/{}/members", seg(&project));
        leptos::task::spawn_local(async move {
            let found =
                if typed.contains('=') { vec![] } else { search(typed.clone()).await.unwrap_or_default() };
            let Some(group) = group_for(&typed, &found) else {
                let msg = fill(t("No group named {}. Create it under Administration → Groups, or enter an LDAP group DN."), &[&typed]);
                outcome.set(Some(Err(crate::error::PortalError::Invalid(msg))));
                return;
            };
            let body = api::body(&MemberReq { role_id, member_user: None, member_group: Some(group) });
            let note = fill(t("Added group {} as {}."), &[&typed, &t(rest::role_name(role_id))]);
            text.set(String::new());
            perform(outcome, reload, note, api::send("POST", path, Some(body)));
        });
    };
    view! {
        <form class="toolbar toolbar-wide" on:submit=add data-testid="member-group-add">
            <label class="visually-hidden" for="member-group">{t("Group name or LDAP group DN")}</label>
            <input id="member-group" type="text" required list="member-group-options" autocomplete="off"
                placeholder=t("Group name or LDAP group DN") prop:value=move || text.get() on:input=typed data-testid="member-group-name" />
            <datalist id="member-group-options">
                {move || suggestions.get().into_iter().map(|g| view! { <option value=g.group_name.clone()></option> }).collect_view()}
            </datalist>
            <label class="visually-hidden" for="member-group-role">{t("Role of the group")}</label>
            <select id="member-group-role" bind:value=role data-testid="member-group-role">
                {ROLES.into_iter().map(|(id, name)| view! { <option value=id.to_string() selected=id == 2>{t(name)}</option> }).collect_view()}
            </select>
            <button type="submit" class="btn btn-primary" data-testid="member-group-submit">{t("Add group")}</button>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_name_is_an_existing_group_and_a_dn_an_ldap_group() {
        let found = vec![
            UserGroupSearchItem { id: 7, group_name: "devs".into(), group_type: 3 },
            UserGroupSearchItem { id: 8, group_name: "devs-2".into(), group_type: 3 },
        ];
        assert_eq!(group_for("devs", &found).map(|g| g.id), Some(7));
        assert_eq!(group_for("dev", &found), None);
        let dn = group_for("cn=ops,ou=groups,dc=example,dc=com", &[]).unwrap();
        assert_eq!(
            (dn.id, dn.group_type, dn.ldap_group_dn.as_str()),
            (0, 1, "cn=ops,ou=groups,dc=example,dc=com")
        );
    }
}

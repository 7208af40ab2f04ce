//! A project's Policy tab (`/harbor/projects/:project/policy`): tag retention
//! (`pages::retention`) and tag immutability — the rules that keep matching tags from being
//! overwritten or deleted (`/projects/{p}/immutabletagrules`): list, add, edit, enable/disable,
//! delete, each by the project's `immutable-tag` permissions.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::page::{loading, Confirm, ErrorAlert, Outcome};
use crate::error::PortalError;
use crate::i18n::{fill, t};
use crate::pages::project::{perform, project_param, OutcomeSignal, ProjectCtx, ProjectFrame, Reload};
use crate::pages::retention::{retention_resource, RetentionSection};
use crate::pages::retention_runs::runs_resource;
use crate::rest::{ImmutableRule, ImmutableSelector};
use crate::server_fns::api::{self, seg, Listing};

#[component]
pub fn ProjectPolicy() -> impl IntoView {
    let name = project_param();
    let reload: Reload = RwSignal::new(0);
    // Resources before any `Suspend` (see `pages::project::ProjectFrame`).
    let rules = Resource::new(
        move || (name(), reload.get()),
        |(n, _)| {
            api::list::<ImmutableRule>(format!(
                "/projects/{}/immutabletagrules?page=1&page_size=100",
                seg(&n)
            ))
        },
    );
    let retention_reload: Reload = RwSignal::new(0);
    let retention = retention_resource(name, retention_reload);
    let tick: Reload = RwSignal::new(0);
    let runs = runs_resource(name, retention_reload, tick);
    view! {
        <Title text=t("Policy · Berth") />
        <ProjectFrame tab="policy" body=move |ctx: ProjectCtx| view! {
            {ctx.can("tag-retention", "list").then(|| view! { <RetentionSection ctx=ctx.clone() data=retention runs reload=retention_reload tick /> })}
            {ctx.can("immutable-tag", "list").then(|| view! { <ImmutableSection ctx=ctx.clone() rules reload /> })}
        } />
    }
}

/// `matches`/`excludes` (tags) or `repoMatches`/`repoExcludes` (repositories) in words.
pub fn decoration_text(decoration: &str) -> &'static str {
    match decoration {
        "excludes" | "repoExcludes" => t("excluding"),
        _ => t("matching"),
    }
}

/// The rule's repository selector: decoration and pattern.
fn repo_selector(r: &ImmutableRule) -> (String, String) {
    r.scope_selectors
        .get("repository")
        .and_then(|s| s.first())
        .map(|s| (s.decoration.clone(), s.pattern.clone()))
        .unwrap_or_else(|| ("repoMatches".into(), "**".into()))
}

/// The rule's tag selector: decoration and pattern.
fn tag_selector(r: &ImmutableRule) -> (String, String) {
    r.tag_selectors
        .first()
        .map(|s| (s.decoration.clone(), s.pattern.clone()))
        .unwrap_or_else(|| ("matches".into(), "**".into()))
}

/// A rule from the form's values (Harbor's shape: one tag selector, one repository selector).
fn rule(
    id: i64,
    disabled: bool,
    repo_decoration: String,
    repo_pattern: String,
    tag_decoration: String,
    tag_pattern: String,
) -> ImmutableRule {
    let sel = |decoration: String, pattern: String| ImmutableSelector {
        kind: "doublestar".into(),
        decoration,
        pattern,
        extras: String::new(),
    };
    ImmutableRule {
        id,
        priority: 0,
        disabled,
        action: "immutable".into(),
        template: "immutable_template".into(),
        params: serde_json::json!({}),
        tag_selectors: vec![sel(tag_decoration, tag_pattern)],
        scope_selectors: BTreeMap::from([(
            "repository".to_string(),
            vec![sel(repo_decoration, repo_pattern)],
        )]),
    }
}

#[component]
fn ImmutableSection(
    ctx: ProjectCtx,
    rules: Resource<Result<Listing<ImmutableRule>, PortalError>>,
    reload: Reload,
) -> impl IntoView {
    let outcome: OutcomeSignal = RwSignal::new(None);
    // `Some(None)`: a new rule; `Some(Some(rule))`: editing that rule.
    let editing = RwSignal::new(None::<Option<Box<ImmutableRule>>>);
    let base = format!("/projects/{}/immutabletagrules", seg(&ctx.name()));
    let (can_create, can_update, can_delete) = (
        ctx.can("immutable-tag", "create"),
        ctx.can("immutable-tag", "update"),
        ctx.can("immutable-tag", "delete"),
    );
    let form_base = base.clone();
    view! {
        <section class="policy-section" aria-labelledby="immutable-h" data-testid="immutable-section">
            <div class="page-head">
                <h2 id="immutable-h">{t("Tag immutability")}</h2>
                {can_create.then(|| view! {
                    <button type="button" class="btn btn-primary" data-testid="immutable-add"
                        on:click=move |_| editing.set(Some(None))>{t("Add rule")}</button>
                })}
            </div>
            <p class="muted">{t("An immutable tag cannot be pushed again, retagged away or deleted, by anyone, until its rule is disabled or deleted.")}</p>
            {move || editing.get().map(|e| view! {
                <ImmutableForm stored=e base=form_base.clone() outcome reload close=Callback::new(move |_| editing.set(None)) />
            })}
            <Outcome result=outcome />
            <Transition fallback=loading>
                {move || {
                    let base = base.clone();
                    Suspend::new(async move {
                        match rules.await {
                            Ok(l) if l.items.is_empty() => view! {
                                <div class="empty-state"><p>{t("No immutability rules.")}</p></div>
                            }.into_any(),
                            Ok(l) => view! {
                                <ImmutableTable items=l.items base can_update can_delete editing outcome reload />
                            }.into_any(),
                            Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn ImmutableTable(
    items: Vec<ImmutableRule>,
    base: String,
    can_update: bool,
    can_delete: bool,
    editing: RwSignal<Option<Option<Box<ImmutableRule>>>>,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="immutable-table">
                <thead><tr>
                    <th scope="col">{t("Rule")}</th>
                    <th scope="col">{t("Status")}</th>
                    {(can_update || can_delete).then(|| view! { <th scope="col">{t("Actions")}</th> })}
                </tr></thead>
                <tbody>
                    {items.into_iter().map(|r| {
                        let (rd, rp) = repo_selector(&r);
                        let (td, tp) = tag_selector(&r);
                        let text = fill(t("For the repositories {} {}, tags {} {} are immutable"),
                            &[&decoration_text(&rd), &rp, &decoration_text(&td), &tp]);
                        let path = format!("{base}/{}", r.id);
                        let toggled = rule(r.id, !r.disabled, rd.clone(), rp.clone(), td.clone(), tp.clone());
                        let toggle_path = path.clone();
                        let toggle_note = if r.disabled { t("Rule enabled.") } else { t("Rule disabled.") };
                        let toggle = move |_| perform(outcome, reload, toggle_note.to_string(),
                            api::send("PUT", toggle_path.clone(), Some(api::body(&toggled))));
                        let remove = Callback::new(move |_| perform(outcome, reload, t("Rule deleted.").to_string(),
                            api::send("DELETE", path.clone(), None)));
                        let edit_with = r.clone();
                        view! {
                            <tr data-testid="immutable-row" data-id=r.id.to_string() data-repo=rp.clone() data-tag=tp.clone() data-disabled=r.disabled.to_string()>
                                <td class="wrap">{text.clone()}</td>
                                <td>{if r.disabled {
                                    view! { <span class="badge badge-stopped">{t("Disabled")}</span> }.into_any()
                                } else {
                                    view! { <span class="badge badge-success">{t("Enabled")}</span> }.into_any()
                                }}</td>
                                {(can_update || can_delete).then(|| view! {
                                    <td><div class="actions">
                                        {can_update.then(|| view! {
                                            <button type="button" class="btn btn-ghost" data-testid="immutable-edit"
                                                on:click=move |_| editing.set(Some(Some(Box::new(edit_with.clone())))) >{t("Edit")}</button>
                                            <button type="button" class="btn btn-ghost" data-testid="immutable-toggle" on:click=toggle>
                                                {if r.disabled { t("Enable") } else { t("Disable") }}
                                            </button>
                                        })}
                                        {can_delete.then(|| view! {
                                            <Confirm label=t("Delete") question=fill(t("Delete this rule: {}?"), &[&text]) on_confirm=remove testid="immutable-delete" />
                                        })}
                                    </div></td>
                                })}
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// Decoration and pattern of one selector: a select and a text input.
#[component]
pub fn SelectorFields(
    id: &'static str,
    legend: &'static str,
    /// (value, text) of the two decorations.
    options: [(&'static str, &'static str); 2],
    decoration: RwSignal<String>,
    pattern: RwSignal<String>,
) -> impl IntoView {
    let deco_id = format!("{id}-decoration");
    view! {
        <fieldset class="filters-set">
            <legend>{legend}</legend>
            <div class="inline-fields">
                <label class="visually-hidden" for=deco_id.clone()>{fill(t("{}: matching or excluding"), &[&legend])}</label>
                <select id=deco_id data-testid=format!("{id}-decoration") on:change=move |ev| decoration.set(event_target_value(&ev))>
                    {options.into_iter().map(|(v, text)| view! { <option value=v selected=move || decoration.get() == v>{t(text)}</option> }).collect_view()}
                </select>
                <label class="visually-hidden" for=id>{fill(t("{}: pattern"), &[&legend])}</label>
                <input id=id type="text" required maxlength="1024" spellcheck="false" bind:value=pattern data-testid=id />
            </div>
            <p class="muted small">{t("Patterns: * any characters but /, ** anything, ? one character, {a,b} either.")}</p>
        </fieldset>
    }
}

#[component]
fn ImmutableForm(
    stored: Option<Box<ImmutableRule>>,
    base: String,
    outcome: OutcomeSignal,
    reload: Reload,
    close: Callback<()>,
) -> impl IntoView {
    let (rd, rp) =
        stored.as_deref().map(repo_selector).unwrap_or_else(|| ("repoMatches".into(), "**".into()));
    let (td, tp) = stored.as_deref().map(tag_selector).unwrap_or_else(|| ("matches".into(), "**".into()));
    let (repo_decoration, repo_pattern) = (RwSignal::new(rd), RwSignal::new(rp));
    let (tag_decoration, tag_pattern) = (RwSignal::new(td), RwSignal::new(tp));
    let id = stored.as_ref().map(|r| r.id);
    let disabled = stored.as_ref().is_some_and(|r| r.disabled);
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let r = rule(
            id.unwrap_or(0),
            disabled,
            repo_decoration.get_untracked(),
            repo_pattern.get_untracked().trim().to_string(),
            tag_decoration.get_untracked(),
            tag_pattern.get_untracked().trim().to_string(),
        );
        let (method, path, note) = match id {
            Some(id) => ("PUT", format!("{base}/{id}"), t("Rule saved.")),
            None => ("POST", base.clone(), t("Rule added.")),
        };
        close.run(());
        perform(outcome, reload, note.to_string(), api::send(method, path, Some(api::body(&r))));
    };
    view! {
        <form class="card form-card" on:submit=save data-testid="immutable-form">
            <h3>{if id.is_some() { t("Edit immutability rule") } else { t("Add immutability rule") }}</h3>
            <SelectorFields id="immutable-repo" legend=t("Repositories") options=[("repoMatches", "matching"), ("repoExcludes", "excluding")]
                decoration=repo_decoration pattern=repo_pattern />
            <SelectorFields id="immutable-tag" legend=t("Tags") options=[("matches", "matching"), ("excludes", "excluding")]
                decoration=tag_decoration pattern=tag_pattern />
            <div class="actions">
                <button type="submit" class="btn btn-primary" data-testid="immutable-save">{t("Save")}</button>
                <button type="button" class="btn" on:click=move |_| close.run(())>{t("Cancel")}</button>
            </div>
        </form>
    }
}

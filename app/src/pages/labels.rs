//! Labels: Administration → Labels (`/harbor/labels`, the global labels, system admins) and a
//! project's Labels tab (`/harbor/projects/:project/labels`, the project's own labels, by the
//! project's `label` permissions), both `LabelsBody`; and what artifacts show of them — the
//! coloured chip (`LabelChip`) and the picker that adds and removes labels on an artifact
//! (`ArtifactLabels`, a global label or one of the artifact's project).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::format::time_str;
use crate::components::page::{listing, loading, page_param, Confirm, Outcome};
use crate::error::PortalError;
use crate::i18n::{fill, t};
use crate::pages::admin::AdminOnly;
use crate::pages::project::{perform, project_param, OutcomeSignal, ProjectCtx, ProjectFrame, Reload};
use crate::rest::labels::{LabelRef, LabelReq};
use crate::rest::{Label, ProjectResp};
use crate::server_fns::api::{self, seg, Listing, PAGE_SIZE};

/// The colour a new label starts with.
const DEFAULT_COLOR: &str = "#0b5cad";

/// `c` when it is a hex colour (`#rgb`, `#rrggbb`), the only colours the portal paints with (the
/// API takes any short CSS colour; anything else is shown in the default colour).
pub fn safe_color(c: &str) -> Option<&str> {
    let hex = c.strip_prefix('#')?;
    (matches!(hex.len(), 3 | 6) && hex.chars().all(|ch| ch.is_ascii_hexdigit())).then_some(c)
}

/// Black or white, whichever reads better on the hex colour `bg` (WCAG relative luminance).
pub fn text_color(bg: &str) -> &'static str {
    let hex = bg.trim_start_matches('#');
    let full: String =
        if hex.len() == 3 { hex.chars().flat_map(|c| [c, c]).collect() } else { hex.to_string() };
    let ch = |i: usize| {
        let v = u8::from_str_radix(full.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0) as f64 / 255.0;
        if v <= 0.03928 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * ch(0) + 0.7152 * ch(2) + 0.0722 * ch(4);
    // Contrast with black (l + 0.05) / 0.05 against white 1.05 / (l + 0.05).
    if (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) {
        "#000000"
    } else {
        "#ffffff"
    }
}

/// A label as a coloured chip (its description as the tooltip).
#[component]
pub fn LabelChip(label: Label, #[prop(optional)] children: Option<Children>) -> impl IntoView {
    let bg = safe_color(&label.color).unwrap_or(DEFAULT_COLOR).to_string();
    let style = format!("background: {bg}; color: {}", text_color(&bg));
    let scope = if label.scope == "g" { t("Global label") } else { t("Project label") };
    view! {
        <span class="badge label-chip" style=style data-testid="label-chip" data-label=label.name.clone()
            title=if label.description.is_empty() { scope.to_string() } else { format!("{} · {scope}", label.description) }>
            {label.name.clone()}
            {children.map(|c| c())}
        </span>
    }
}

/// The labels usable on the artifacts of `project`: the global ones, then the project's (those
/// only when the user may list them).
pub async fn usable_labels(project: &str) -> Result<Vec<Label>, PortalError> {
    let p: ProjectResp = api::get(format!("/projects/{}", seg(project))).await?;
    let mut all = api::get::<Vec<Label>>("/labels?scope=g&page=1&page_size=100".into()).await?;
    if let Ok(own) =
        api::get::<Vec<Label>>(format!("/labels?scope=p&project_id={}&page=1&page_size=100", p.project_id))
            .await
    {
        all.extend(own);
    }
    Ok(all)
}

// ---------------------------------------------------------------- pages

/// Administration → Labels.
#[component]
pub fn AdminLabels() -> impl IntoView {
    let page = page_param();
    let reload: Reload = RwSignal::new(0);
    let labels = Resource::new(
        move || (page(), reload.get()),
        |(pg, _)| api::list::<Label>(format!("/labels?scope=g&page={pg}&page_size={PAGE_SIZE}")),
    );
    view! {
        <Title text=t("Labels · Berth") />
        <AdminOnly body=move |_| view! {
            <div class="page-head"><h1>{t("Labels")}</h1></div>
            <p class="muted">{t("Global labels can be added to the artifacts of every project.")}</p>
            <LabelsBody scope="g" project_id=0 can=(true, true, true) labels reload />
        } />
    }
}

/// A project's Labels tab.
#[component]
pub fn ProjectLabels() -> impl IntoView {
    let name = project_param();
    let page = page_param();
    let reload: Reload = RwSignal::new(0);
    let labels = Resource::new(
        move || (name(), page(), reload.get()),
        |(n, pg, _)| async move {
            let p: ProjectResp = api::get(format!("/projects/{}", seg(&n))).await?;
            api::list::<Label>(format!(
                "/labels?scope=p&project_id={}&page={pg}&page_size={PAGE_SIZE}",
                p.project_id
            ))
            .await
        },
    );
    view! {
        <Title text=t("Labels · Berth") />
        <ProjectFrame tab="labels" body=move |ctx: ProjectCtx| {
            let can = (ctx.can("label", "create"), ctx.can("label", "update"), ctx.can("label", "delete"));
            view! { <LabelsBody scope="p" project_id=ctx.project.project_id can labels reload /> }
        } />
    }
}

/// What the label form edits.
#[derive(Clone, PartialEq)]
enum Editing {
    New,
    Edit(Box<Label>),
}

/// The labels of one scope: the list, and a form to create or edit one. `can`: may create,
/// update, delete.
#[component]
fn LabelsBody(
    scope: &'static str,
    project_id: i64,
    can: (bool, bool, bool),
    labels: Resource<Result<Listing<Label>, PortalError>>,
    reload: Reload,
) -> impl IntoView {
    let page = page_param();
    let outcome: OutcomeSignal = RwSignal::new(None);
    let editing = RwSignal::new(None::<Editing>);
    let (can_create, can_update, can_delete) = can;
    view! {
        {can_create.then(|| view! {
            <div class="toolbar">
                <button type="button" class="btn btn-primary" data-testid="label-new"
                    on:click=move |_| editing.set(Some(Editing::New))>{t("New label")}</button>
            </div>
        })}
        {move || editing.get().map(|e| view! { <LabelForm editing=e scope project_id outcome reload close=Callback::new(move |_| editing.set(None)) /> })}
        <Outcome result=outcome />
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                listing(labels.await, page(), PAGE_SIZE, t("No labels yet."), |p| format!("?page={p}"), move |items| view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="label-table">
                            <thead><tr>
                                <th scope="col">{t("Label")}</th>
                                <th scope="col">{t("Description")}</th>
                                <th scope="col">{t("Creation time")}</th>
                                {(can_update || can_delete).then(|| view! { <th scope="col">{t("Actions")}</th> })}
                            </tr></thead>
                            <tbody>
                                {items.into_iter().map(|l| {
                                    let (id, name) = (l.id, l.name.clone());
                                    let remove = Callback::new(move |_| {
                                        perform(outcome, reload, fill(t("Deleted label {}."), &[&name]), api::send("DELETE", format!("/labels/{id}"), None));
                                    });
                                    let edit_with = l.clone();
                                    view! {
                                        <tr data-testid="label-row" data-name=l.name.clone()>
                                            <td><LabelChip label=l.clone() /></td>
                                            <td class="wrap">{l.description.clone()}</td>
                                            <td>{time_str(&l.creation_time)}</td>
                                            {(can_update || can_delete).then(|| view! {
                                                <td><div class="actions">
                                                    {can_update.then(|| view! {
                                                        <button type="button" class="btn btn-ghost" data-testid="label-edit"
                                                            on:click=move |_| editing.set(Some(Editing::Edit(Box::new(edit_with.clone()))))>{t("Edit")}</button>
                                                    })}
                                                    {can_delete.then(|| view! {
                                                        <Confirm label=t("Delete") question=fill(t("Delete label {}? It is removed from every artifact."), &[&l.name]) on_confirm=remove testid="label-delete" />
                                                    })}
                                                </div></td>
                                            })}
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                })
            })}
        </Transition>
    }
}

#[component]
fn LabelForm(
    editing: Editing,
    scope: &'static str,
    project_id: i64,
    outcome: OutcomeSignal,
    reload: Reload,
    close: Callback<()>,
) -> impl IntoView {
    let stored = match &editing {
        Editing::Edit(l) => Some((**l).clone()),
        Editing::New => None,
    };
    let name = RwSignal::new(stored.as_ref().map(|l| l.name.clone()).unwrap_or_default());
    let description = RwSignal::new(stored.as_ref().map(|l| l.description.clone()).unwrap_or_default());
    let color = RwSignal::new(
        stored.as_ref().and_then(|l| safe_color(&l.color)).unwrap_or(DEFAULT_COLOR).to_ascii_lowercase(),
    );
    let id = stored.as_ref().map(|l| l.id);
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n = name.get_untracked().trim().to_string();
        let req = LabelReq {
            name: n.clone(),
            description: description.get_untracked(),
            color: color.get_untracked(),
            scope: scope.to_string(),
            project_id,
        };
        let (method, path, note) = match id {
            Some(id) => ("PUT", format!("/labels/{id}"), fill(t("Saved label {}."), &[&n])),
            None => ("POST", "/labels".to_string(), fill(t("Created label {}."), &[&n])),
        };
        close.run(());
        perform(outcome, reload, note, api::send(method, path, Some(api::body(&req))));
    };
    let preview = move || {
        let c = color.get();
        let bg = safe_color(&c).unwrap_or(DEFAULT_COLOR).to_string();
        format!("background: {bg}; color: {}", text_color(&bg))
    };
    view! {
        <form class="card form-card" on:submit=save data-testid="label-form">
            <h2>{if id.is_some() { t("Edit label") } else { t("New label") }}</h2>
            <label for="label-name">{t("Label name")}</label>
            <input id="label-name" type="text" required maxlength="128" autocomplete="off" bind:value=name data-testid="label-name" />
            <label for="label-description">{t("Description")}</label>
            <input id="label-description" type="text" maxlength="1024" bind:value=description data-testid="label-description" />
            <label for="label-color">{t("Colour")}</label>
            <div class="inline-fields">
                <input id="label-color" type="color" bind:value=color data-testid="label-color" />
                <span class="badge label-chip" style=preview aria-hidden="true">{move || { let n = name.get(); if n.is_empty() { t("Preview").to_string() } else { n } }}</span>
            </div>
            <div class="actions">
                <button type="submit" class="btn btn-primary" data-testid="label-save">{t("Save")}</button>
                <button type="button" class="btn" on:click=move |_| close.run(())>{t("Cancel")}</button>
            </div>
        </form>
    }
}

// ---------------------------------------------------------------- on artifacts

/// An artifact's labels as chips, and (with `can_add`/`can_remove`) the picker: every usable
/// label with a checkbox, checked when the artifact has it; ticking adds it, unticking removes
/// it. `path` is the artifact's API path (`…/artifacts/<digest>`).
#[component]
pub fn ArtifactLabels(
    path: String,
    attached: Vec<Label>,
    usable: Vec<Label>,
    can_add: bool,
    can_remove: bool,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    let open = RwSignal::new(false);
    let has: Vec<i64> = attached.iter().map(|l| l.id).collect();
    let picker_id =
        format!("labels-{}", path.rsplit(':').next().unwrap_or("").chars().take(12).collect::<String>());
    let chips = attached.into_iter().map(|l| view! { <LabelChip label=l /> " " }).collect_view();
    let pick = (can_add || can_remove).then(|| {
        let picker = picker_id.clone();
        view! {
            <button type="button" class="btn btn-ghost btn-small" data-testid="label-pick"
                aria-expanded=move || open.get().to_string() aria-controls=picker.clone()
                on:click=move |_| open.update(|o| *o = !*o)>{t("Labels…")}</button>
            <Show when=move || open.get()>
                <fieldset class="label-picker" id=picker_id.clone() data-testid="label-picker">
                    <legend>{t("Labels of this artifact")}</legend>
                    {if usable.is_empty() {
                        view! { <p class="muted small">{t("No labels yet: create them under Administration → Labels or in the project's Labels tab.")}</p> }.into_any()
                    } else {
                        usable.iter().map(|l| {
                            let on = has.contains(&l.id);
                            let allowed = if on { can_remove } else { can_add };
                            let (id, name, path) = (l.id, l.name.clone(), path.clone());
                            let toggle = move |_| {
                                open.set(false);
                                if on {
                                    perform(outcome, reload, fill(t("Removed label {}."), &[&name]),
                                        api::send("DELETE", format!("{path}/labels/{id}"), None));
                                } else {
                                    perform(outcome, reload, fill(t("Added label {}."), &[&name]),
                                        api::send("POST", format!("{path}/labels"), Some(api::body(&LabelRef { id }))));
                                }
                            };
                            view! {
                                <label class="check" data-testid="label-option" data-label=l.name.clone()>
                                    <input type="checkbox" checked=on disabled=!allowed on:change=toggle />
                                    <LabelChip label=l.clone() />
                                </label>
                            }
                        }).collect_view().into_any()
                    }}
                </fieldset>
            </Show>
        }
    });
    view! { <span class="labels" data-testid="artifact-labels">{chips}</span> {pick} }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours() {
        assert_eq!(safe_color("#A1b2C3"), Some("#A1b2C3"));
        assert_eq!(safe_color("#abc"), Some("#abc"));
        assert_eq!(safe_color("red;background:url(x)"), None);
        assert_eq!(safe_color("#abcd"), None);
        assert_eq!(text_color("#ffffff"), "#000000");
        assert_eq!(text_color("#000"), "#ffffff");
        assert_eq!(text_color("#0b5cad"), "#ffffff");
        assert_eq!(text_color("#ffd56b"), "#000000");
    }
}

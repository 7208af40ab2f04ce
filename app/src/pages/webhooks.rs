//! A project's Webhooks tab (`/harbor/projects/:project/webhook`, Harbor's): the policies with
//! their target, events, last trigger and an enable switch; a form to add or edit one (name,
//! description, event types from `/webhook/events`, notify type and payload format, endpoint,
//! auth header, certificate check); delete; and a policy's executions (one per event it
//! received) with each execution's tasks (one delivery per target) and their logs.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::format::time_str;
use crate::components::page::{listing, loading, page_param, Confirm, ErrorAlert, Outcome};
use crate::error::PortalError;
use crate::i18n::{fill, t, tv};
use crate::pages::project::{
    perform, project_param, OutcomeSignal, ProjectCtx, ProjectFrame, Reload, PAGE_SIZE,
};
use crate::rest::webhook::{
    SupportedWebhookEventTypes, WebhookExecution, WebhookLastTrigger, WebhookPolicy, WebhookTargetObject,
    WebhookTask,
};
use crate::server_fns::api::{self, seg, Listing};

/// Executions listed per policy (newest first).
const EXECUTIONS: u64 = 15;

type Policies = Resource<Result<(Listing<WebhookPolicy>, Vec<WebhookLastTrigger>), PortalError>>;
type Events = Resource<Result<SupportedWebhookEventTypes, PortalError>>;
type Executions = Resource<Result<Vec<WebhookExecution>, PortalError>>;
type Tasks = Resource<Result<Vec<WebhookTask>, PortalError>>;

/// A time of the webhook API: Harbor's zero time (`0001-01-01T…`) means not yet.
fn when(s: &str) -> AnyView {
    if s.is_empty() || s.starts_with("0001-") {
        "—".into_any()
    } else {
        time_str(s).into_any()
    }
}

fn base(project: &str) -> String {
    format!("/projects/{}/webhook", seg(project))
}

#[component]
pub fn ProjectWebhooks() -> impl IntoView {
    // Resources before any `Suspend` (see `pages::project::ProjectFrame`).
    let name = project_param();
    let page = page_param();
    let reload: Reload = RwSignal::new(0);
    let policies: Policies = Resource::new(
        move || (name(), page(), reload.get()),
        |(n, pg, _)| async move {
            let list =
                api::list::<WebhookPolicy>(format!("{}/policies?page={pg}&page_size={PAGE_SIZE}", base(&n)))
                    .await?;
            // Harbor's list reads the last triggers beside; a failure there only hides them.
            let last = api::get::<Vec<WebhookLastTrigger>>(format!("{}/lasttrigger", base(&n)))
                .await
                .unwrap_or_default();
            Ok((list, last))
        },
    );
    let events: Events = Resource::new(name, |n| api::get(format!("{}/events", base(&n))));
    // The policy whose executions are open, and the execution whose tasks are open.
    let open = RwSignal::new(None::<i64>);
    let open_exec = RwSignal::new(None::<i64>);
    let executions: Executions = Resource::new(
        move || (name(), open.get(), reload.get()),
        |(n, id, _)| async move {
            match id {
                Some(id) => Ok(api::list::<WebhookExecution>(format!(
                    "{}/policies/{id}/executions?page=1&page_size={EXECUTIONS}",
                    base(&n)
                ))
                .await?
                .items),
                None => Ok(vec![]),
            }
        },
    );
    let tasks: Tasks = Resource::new(
        move || (name(), open.get(), open_exec.get(), reload.get()),
        |(n, id, exec, _)| async move {
            match (id, exec) {
                (Some(id), Some(e)) => Ok(api::list::<WebhookTask>(format!(
                    "{}/policies/{id}/executions/{e}/tasks?page=1&page_size=100",
                    base(&n)
                ))
                .await?
                .items),
                _ => Ok(vec![]),
            }
        },
    );
    view! {
        <Title text=t("Webhooks · Berth") />
        <ProjectFrame tab="webhook" body=move |ctx: ProjectCtx| view! {
            <WebhooksBody ctx policies events executions tasks open open_exec reload />
        } />
    }
}

/// What the policy form edits.
#[derive(Clone, PartialEq)]
enum Editing {
    New,
    Edit(Box<WebhookPolicy>),
}

#[allow(clippy::too_many_arguments)]
#[component]
fn WebhooksBody(
    ctx: ProjectCtx,
    policies: Policies,
    events: Events,
    executions: Executions,
    tasks: Tasks,
    open: RwSignal<Option<i64>>,
    open_exec: RwSignal<Option<i64>>,
    reload: Reload,
) -> impl IntoView {
    let page = page_param();
    let project = ctx.name();
    let outcome: OutcomeSignal = RwSignal::new(None);
    let editing = RwSignal::new(None::<Editing>);
    // The name of the policy whose executions are open (for the heading).
    let open_name = RwSignal::new(String::new());
    let (can_create, can_update, can_delete) = (
        ctx.can("notification-policy", "create"),
        ctx.can("notification-policy", "update"),
        ctx.can("notification-policy", "delete"),
    );
    let form_project = project.clone();
    let list_project = project.clone();
    view! {
        {can_create.then(|| view! {
            <div class="toolbar">
                <button type="button" class="btn btn-primary" data-testid="webhook-new"
                    on:click=move |_| editing.set(Some(Editing::New))>{t("New webhook")}</button>
            </div>
        })}
        <Transition fallback=loading>
            {move || {
                let project = form_project.clone();
                Suspend::new(async move {
                    let supported = events.await;
                    editing.get().map(|e| match supported {
                        Ok(s) => view! {
                            <WebhookForm editing=e supported=s project=project.clone() outcome reload
                                close=Callback::new(move |_| editing.set(None)) />
                        }.into_any(),
                        Err(err) => view! { <ErrorAlert error=err /> }.into_any(),
                    })
                })
            }}
        </Transition>
        <Outcome result=outcome />
        <Transition fallback=loading>
            {move || {
                let project = list_project.clone();
                Suspend::new(async move {
                    let (result, last) = match policies.await {
                        Ok((l, last)) => (Ok(l), last),
                        Err(e) => (Err(e), vec![]),
                    };
                    listing(result, page(), PAGE_SIZE, t("No webhooks yet."), |p| format!("?page={p}"), move |items| view! {
                        <div class="table-wrap">
                            <table class="table" data-testid="webhook-table">
                                <thead><tr>
                                    <th scope="col">{t("Name")}</th>
                                    <th scope="col">{t("Enabled")}</th>
                                    <th scope="col">{t("Notify type")}</th>
                                    <th scope="col">{t("Endpoint URL")}</th>
                                    <th scope="col">{t("Event types")}</th>
                                    <th scope="col">{t("Last trigger")}</th>
                                    <th scope="col">{t("Creation time")}</th>
                                    <th scope="col">{t("Actions")}</th>
                                </tr></thead>
                                <tbody>
                                    {items.into_iter().map(|p| view! {
                                        <PolicyRow p=p last=last.clone() project=project.clone() can=(can_update, can_delete)
                                            editing open open_name open_exec outcome reload />
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    })
                })
            }}
        </Transition>
        <Show when=move || open.get().is_some()>
            <ExecutionsView project=project.clone() executions tasks open open_name open_exec />
        </Show>
    }
}

/// The latest trigger of `policy` over its event types (`None` when it never fired; Harbor
/// writes the zero time then).
fn last_trigger(last: &[WebhookLastTrigger], policy: &str) -> Option<String> {
    last.iter()
        .filter(|l| l.policy_name == policy && !l.last_trigger_time.starts_with("0001-"))
        .map(|l| l.last_trigger_time.clone())
        .max()
}

#[allow(clippy::too_many_arguments)]
#[component]
fn PolicyRow(
    p: WebhookPolicy,
    last: Vec<WebhookLastTrigger>,
    project: String,
    can: (bool, bool),
    editing: RwSignal<Option<Editing>>,
    open: RwSignal<Option<i64>>,
    open_name: RwSignal<String>,
    open_exec: RwSignal<Option<i64>>,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    let (can_update, can_delete) = can;
    let (id, name, enabled) = (p.id, p.name.clone(), p.enabled);
    let target = p.targets.first().cloned().unwrap_or_default();
    let fired = last_trigger(&last, &p.name);
    let path = format!("{}/policies/{id}", base(&project));
    // Flips `enabled` on the stored policy, read again first: this row may predate an edit whose
    // reload has not landed yet, and a PUT of the row's copy would undo that edit.
    let toggle = {
        let (path, name) = (path.clone(), name.clone());
        move |_| {
            let note = if enabled {
                fill(t("Disabled webhook {}."), &[&name])
            } else {
                fill(t("Enabled webhook {}."), &[&name])
            };
            let path = path.clone();
            perform(outcome, reload, note, async move {
                let mut body: WebhookPolicy = api::get(path.clone()).await?;
                body.enabled = !enabled;
                api::send("PUT", path, Some(api::body(&body))).await
            });
        }
    };
    let remove = {
        let (path, name) = (path.clone(), name.clone());
        Callback::new(move |_| {
            if open.get_untracked() == Some(id) {
                open.set(None);
            }
            perform(
                outcome,
                reload,
                fill(t("Deleted webhook {}."), &[&name]),
                api::send("DELETE", path.clone(), None),
            );
        })
    };
    let edit_with = p.clone();
    let row_name = name.clone();
    let events = p.event_types.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ");
    view! {
        <tr data-testid="webhook-row" data-name=name.clone() data-enabled=enabled.to_string()>
            <td class="strong">{name.clone()}<div class="muted small wrap">{p.description.clone()}</div></td>
            <td>
                {if can_update {
                    view! {
                        <button type="button" class="btn btn-ghost" role="switch" aria-checked=enabled.to_string()
                            data-testid="webhook-enabled" aria-label=fill(t("Enabled: {}"), &[&name]) on:click=toggle>
                            {if enabled { t("Enabled") } else { t("Disabled") }}
                        </button>
                    }.into_any()
                } else {
                    view! { <span>{if enabled { t("Enabled") } else { t("Disabled") }}</span> }.into_any()
                }}
            </td>
            <td>{target.kind.clone()}<span class="muted small">{format!(" · {}", target.payload_format)}</span></td>
            <td class="wrap">{target.address.clone()}</td>
            <td class="wrap">{events}</td>
            <td data-testid="webhook-last">{match fired {
                Some(f) => time_str(&f).into_any(),
                None => "—".into_any(),
            }}</td>
            <td>{time_str(&p.creation_time)}</td>
            <td><div class="actions">
                <button type="button" class="btn btn-ghost" data-testid="webhook-executions"
                    aria-expanded=move || (open.get() == Some(id)).to_string()
                    aria-label=fill(t("Executions of {}"), &[&name])
                    on:click=move |_| {
                        open_exec.set(None);
                        open_name.set(row_name.clone());
                        open.update(|o| *o = if *o == Some(id) { None } else { Some(id) });
                    }>{t("Executions")}</button>
                {can_update.then(|| view! {
                    <button type="button" class="btn btn-ghost" data-testid="webhook-edit"
                        aria-label=fill(t("Edit {}"), &[&name])
                        on:click=move |_| editing.set(Some(Editing::Edit(Box::new(edit_with.clone()))))>{t("Edit")}</button>
                })}
                {can_delete.then(|| view! {
                    <Confirm label=t("Delete") question=fill(t("Delete webhook {}?"), &[&name]) on_confirm=remove testid="webhook-delete" />
                })}
            </div></td>
        </tr>
    }
}

#[component]
fn WebhookForm(
    editing: Editing,
    supported: SupportedWebhookEventTypes,
    project: String,
    outcome: OutcomeSignal,
    reload: Reload,
    close: Callback<()>,
) -> impl IntoView {
    let stored = match &editing {
        Editing::Edit(p) => Some((**p).clone()),
        Editing::New => None,
    };
    let target = stored.as_ref().and_then(|p| p.targets.first().cloned()).unwrap_or_else(|| {
        WebhookTargetObject { kind: "http".into(), payload_format: "Default".into(), ..Default::default() }
    });
    let name = RwSignal::new(stored.as_ref().map(|p| p.name.clone()).unwrap_or_default());
    let description = RwSignal::new(stored.as_ref().map(|p| p.description.clone()).unwrap_or_default());
    let kind = RwSignal::new(target.kind.clone());
    let format = RwSignal::new(target.payload_format.clone());
    let address = RwSignal::new(target.address.clone());
    // Write-only: empty in an edit keeps the stored header.
    let auth = RwSignal::new(String::new());
    let verify = RwSignal::new(!target.skip_cert_verify);
    let chosen = RwSignal::new(
        stored.as_ref().map(|p| p.event_types.clone()).unwrap_or_else(|| supported.event_type.clone()),
    );
    let id = stored.as_ref().map(|p| p.id);
    let enabled = stored.as_ref().map(|p| p.enabled).unwrap_or(true);
    let formats = supported.payload_formats.clone();
    let formats_of = move |k: &str| {
        formats
            .iter()
            .find(|f| f.notify_type == k)
            .map(|f| f.formats.clone())
            .unwrap_or_else(|| vec!["Default".into()])
    };
    // The policy the fields describe.
    let draft = move || WebhookPolicy {
        id: id.unwrap_or(0),
        name: name.get_untracked().trim().to_string(),
        description: description.get_untracked(),
        targets: vec![WebhookTargetObject {
            kind: kind.get_untracked(),
            address: address.get_untracked().trim().to_string(),
            auth_header: auth.get_untracked(),
            skip_cert_verify: !verify.get_untracked(),
            payload_format: format.get_untracked(),
        }],
        event_types: chosen.get_untracked(),
        enabled,
        ..Default::default()
    };
    let save_project = project.clone();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = draft();
        if body.event_types.is_empty() {
            outcome.set(Some(Err(PortalError::Invalid(t("Select at least one event type.").into()))));
            return;
        }
        let n = body.name.clone();
        let (method, path, note) = match id {
            Some(id) => {
                ("PUT", format!("{}/policies/{id}", base(&save_project)), fill(t("Saved webhook {}."), &[&n]))
            }
            None => {
                ("POST", format!("{}/policies", base(&save_project)), fill(t("Created webhook {}."), &[&n]))
            }
        };
        close.run(());
        perform(outcome, reload, note, api::send(method, path, Some(api::body(&body))));
    };
    // Sends a test event (`PING`) to the endpoint as the fields are (the stored auth header when
    // the field is left empty); nothing is saved, so nothing reloads.
    let test = move |_| {
        let body = draft();
        let address = body.targets[0].address.clone();
        let path = format!("{}/policies/test", base(&project));
        outcome.set(None);
        leptos::task::spawn_local(async move {
            let r = api::send("POST", path, Some(api::body(&body))).await;
            outcome.set(Some(r.map(|_| fill(t("The endpoint {} answered the test event."), &[&address]))));
        });
    };
    let kinds = supported.notify_type.clone();
    view! {
        <form class="card form-card" on:submit=save data-testid="webhook-form">
            <h2>{if id.is_some() { t("Edit webhook") } else { t("New webhook") }}</h2>
            <label for="webhook-name">{t("Name")}</label>
            <input id="webhook-name" type="text" required maxlength="256" autocomplete="off" bind:value=name data-testid="webhook-name" />
            <label for="webhook-description">{t("Description")}</label>
            <input id="webhook-description" type="text" maxlength="1024" bind:value=description data-testid="webhook-description" />
            <label for="webhook-kind">{t("Notify type")}</label>
            <select id="webhook-kind" data-testid="webhook-kind" on:change=move |ev| kind.set(event_target_value(&ev))>
                {kinds.into_iter().map(|k| {
                    let selected = k == kind.get_untracked();
                    view! { <option value=k.clone() selected=selected>{k.clone()}</option> }
                }).collect_view()}
            </select>
            <label for="webhook-format">{t("Payload format")}</label>
            <select id="webhook-format" data-testid="webhook-format" on:change=move |ev| format.set(event_target_value(&ev))>
                {move || formats_of(&kind.get()).into_iter().map(|f| {
                    let selected = f == format.get_untracked();
                    view! { <option value=f.clone() selected=selected>{f.clone()}</option> }
                }).collect_view()}
            </select>
            <fieldset class="checks" data-testid="webhook-events">
                <legend>{t("Event types")}</legend>
                {supported.event_type.iter().map(|e| {
                    let e = e.clone();
                    let (e1, e2) = (e.clone(), e.clone());
                    view! {
                        <label class="check">
                            <input type="checkbox" value=e.clone() data-testid=format!("webhook-event-{e}")
                                prop:checked=move || chosen.with(|c| c.contains(&e1))
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    chosen.update(|c| {
                                        c.retain(|x| *x != e2);
                                        if on {
                                            c.push(e2.clone());
                                        }
                                    });
                                } />
                            {format!(" {e}")}
                        </label>
                    }
                }).collect_view()}
            </fieldset>
            <label for="webhook-address">{t("Endpoint URL")}</label>
            <input id="webhook-address" type="url" required maxlength="2048" placeholder="https://hooks.example.com/harbor"
                bind:value=address data-testid="webhook-address" />
            <label for="webhook-auth">{t("Auth header")}</label>
            <input id="webhook-auth" type="password" autocomplete="off" maxlength="4096" bind:value=auth data-testid="webhook-auth"
                placeholder=if id.is_some() { t("(unchanged when empty)") } else { "" } />
            <label class="check">
                <input type="checkbox" bind:checked=verify data-testid="webhook-verify" />
                {t(" Verify remote certificate")}
            </label>
            <div class="actions">
                <button type="submit" class="btn btn-primary" data-testid="webhook-save">{t("Save")}</button>
                <button type="button" class="btn" data-testid="webhook-test" on:click=test>{t("Test endpoint")}</button>
                <button type="button" class="btn" on:click=move |_| close.run(())>{t("Cancel")}</button>
            </div>
        </form>
    }
}

#[component]
fn ExecutionsView(
    project: String,
    executions: Executions,
    tasks: Tasks,
    open: RwSignal<Option<i64>>,
    open_name: RwSignal<String>,
    open_exec: RwSignal<Option<i64>>,
) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="webhook-exec-h" data-testid="webhook-executions-view">
            <h2 id="webhook-exec-h">{move || fill(t("Executions of webhook {}"), &[&open_name.get()])}</h2>
            <Transition fallback=loading>
                {move || {
                    let project = project.clone();
                    Suspend::new(async move {
                        match executions.await {
                            Ok(list) if list.is_empty() => view! { <p class="muted">{t("This webhook has not been triggered yet.")}</p> }.into_any(),
                            Ok(list) => view! {
                                <div class="table-wrap">
                                    <table class="table" data-testid="webhook-exec-table">
                                        <thead><tr>
                                            <th scope="col">{t("ID")}</th>
                                            <th scope="col">{t("Event type")}</th>
                                            <th scope="col">{t("Status")}</th>
                                            <th scope="col">{t("Start time")}</th>
                                            <th scope="col">{t("End time")}</th>
                                            <th scope="col">{t("Actions")}</th>
                                        </tr></thead>
                                        <tbody>
                                            {list.into_iter().map(|e| {
                                                let id = e.id;
                                                let event = e.extra_attrs.get("event_type").and_then(|v| v.as_str()).unwrap_or("").to_string();
                                                let event_attr = event.clone();
                                                view! {
                                                    <tr data-testid="webhook-exec-row" data-status=e.status.clone() data-event=event_attr>
                                                        <td>{id}</td>
                                                        <td>{event}</td>
                                                        <td>
                                                            <span class=format!("badge badge-{}", e.status.to_lowercase())>{tv(&e.status)}</span>
                                                            {(!e.status_message.is_empty()).then(|| view! { <span class="muted small">{format!(" {}", e.status_message)}</span> })}
                                                        </td>
                                                        <td>{when(&e.start_time)}</td>
                                                        <td>{when(&e.end_time)}</td>
                                                        <td>
                                                            <button type="button" class="btn btn-ghost" data-testid="webhook-exec-open"
                                                                aria-expanded=move || (open_exec.get() == Some(id)).to_string()
                                                                aria-label=fill(t("Tasks of execution {}"), &[&id])
                                                                on:click=move |_| open_exec.update(|o| *o = if *o == Some(id) { None } else { Some(id) })>{t("Tasks")}</button>
                                                        </td>
                                                    </tr>
                                                }
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                                <Show when=move || open_exec.get().is_some()>
                                    <TasksView project=project.clone() tasks open open_exec />
                                </Show>
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
fn TasksView(
    project: String,
    tasks: Tasks,
    open: RwSignal<Option<i64>>,
    open_exec: RwSignal<Option<i64>>,
) -> impl IntoView {
    view! {
        <h3>{move || fill(t("Tasks of execution {}"), &[&open_exec.get().unwrap_or(0)])}</h3>
        <Transition fallback=loading>
            {move || {
                let project = project.clone();
                Suspend::new(async move {
                    match tasks.await {
                        Ok(list) => {
                            let (pid, eid) = (open.get_untracked().unwrap_or(0), open_exec.get_untracked().unwrap_or(0));
                            view! {
                                <div class="table-wrap">
                                    <table class="table" data-testid="webhook-task-table">
                                        <thead><tr>
                                            <th scope="col">{t("ID")}</th>
                                            <th scope="col">{t("Endpoint URL")}</th>
                                            <th scope="col">{t("Payload format")}</th>
                                            <th scope="col">{t("Status")}</th>
                                            <th scope="col" class="num">{t("Attempts")}</th>
                                            <th scope="col">{t("Start time")}</th>
                                            <th scope="col">{t("End time")}</th>
                                            <th scope="col">{t("Actions")}</th>
                                        </tr></thead>
                                        <tbody>
                                            {list.into_iter().map(|k| {
                                                let attr = |key: &str| k.extra_attrs.get(key).and_then(|v| v.as_str()).unwrap_or("").to_string();
                                                let log = format!("/api/v2.0{}/policies/{pid}/executions/{eid}/tasks/{}/log", base(&project), k.id);
                                                view! {
                                                    <tr data-testid="webhook-task-row" data-status=k.status.clone()>
                                                        <td>{k.id}</td>
                                                        <td class="wrap">{attr("address")}</td>
                                                        <td>{attr("payload_format")}</td>
                                                        <td>
                                                            <span class=format!("badge badge-{}", k.status.to_lowercase())>{tv(&k.status)}</span>
                                                            {(!k.status_message.is_empty()).then(|| view! { <span class="muted small">{format!(" {}", k.status_message)}</span> })}
                                                        </td>
                                                        <td class="num">{k.run_count}</td>
                                                        <td>{when(&k.start_time)}</td>
                                                        <td>{when(&k.end_time)}</td>
                                                        <td><a class="btn btn-ghost" href=log target="_blank" rel="noopener"
                                                            aria-label=fill(t("Log of task {}"), &[&k.id])>{t("Log")}</a></td>
                                                    </tr>
                                                }
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            }.into_any()
                        }
                        Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
}

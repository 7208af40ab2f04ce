//! A project's robot accounts tab (`/harbor/projects/:project/robot-account`): list, create
//! (the secret shown once), enable/disable, refresh the secret, delete — all through the REST
//! relay, with the same permission rules as the API.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::format::time_str;
use crate::components::page::{listing, loading, page_param, Confirm, CopyField, Outcome};
use crate::error::PortalError;
use crate::i18n::{fill, t};
use crate::pages::project::{
    perform, project_param, OutcomeSignal, ProjectCtx, ProjectFrame, Reload, PAGE_SIZE,
};
use crate::rest::robots::{AccessReq, PermissionReq, RobotCreate, RobotPut, SecretReq};
use crate::rest::{self, RobotCreated, RobotResp as Robot};
use crate::server_fns::api::{self, seg, Listing};
use crate::server_fns::auth::encode_component;

#[component]
pub fn ProjectRobots() -> impl IntoView {
    let name = project_param();
    let page = page_param();
    let reload: Reload = RwSignal::new(0);
    let robots = Resource::new(
        move || (name(), reload.get(), page()),
        |(n, _, pg)| async move {
            let p: rest::ProjectResp = api::get(format!("/projects/{}", seg(&n))).await?;
            let q = encode_component(&format!("Level=project,ProjectID={}", p.project_id));
            api::list::<Robot>(format!("/robots?q={q}&page={pg}&page_size={PAGE_SIZE}")).await
        },
    );
    view! {
        <Title text=t("Robot Accounts · Berth") />
        <ProjectFrame tab="robot-account" body=move |ctx: ProjectCtx| view! { <RobotsBody ctx robots reload /> } />
    }
}

/// The rights a project robot can be given here: (resource, action, label).
pub const ROBOT_RIGHTS: [(&str, &str, &str); 8] = [
    ("repository", "pull", "Pull artifacts"),
    ("repository", "push", "Push artifacts"),
    ("artifact", "delete", "Delete artifacts"),
    ("tag", "create", "Create tags"),
    ("tag", "delete", "Delete tags"),
    ("repository", "list", "List repositories"),
    ("artifact", "list", "List artifacts"),
    ("artifact", "read", "Read artifacts"),
];

fn rights_summary(r: &Robot) -> String {
    r.permissions
        .iter()
        .flat_map(|p| p.access.iter())
        .map(|a| {
            ROBOT_RIGHTS
                .iter()
                .find(|(res, act, _)| *res == a.resource && *act == a.action)
                .map(|(_, _, label)| t(label).to_string())
                .unwrap_or_else(|| format!("{} {}", a.action, a.resource))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[component]
fn RobotsBody(
    ctx: ProjectCtx,
    robots: Resource<Result<Listing<Robot>, PortalError>>,
    reload: Reload,
) -> impl IntoView {
    let name = ctx.name();
    let page = page_param();
    let outcome: OutcomeSignal = RwSignal::new(None);
    // The secret of a robot just created or refreshed: shown this once.
    let secret = RwSignal::new(None::<(String, String)>);
    let show_form = RwSignal::new(false);
    let r_name = RwSignal::new(String::new());
    let r_desc = RwSignal::new(String::new());
    let r_days = RwSignal::new("30".to_string());
    let rights: Vec<RwSignal<bool>> =
        ROBOT_RIGHTS.iter().map(|(_, a, _)| RwSignal::new(*a == "pull")).collect();
    let rights_for_submit = rights.clone();
    let project_name = name.clone();
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let access: Vec<AccessReq> = ROBOT_RIGHTS
            .iter()
            .zip(&rights_for_submit)
            .filter(|(_, on)| on.get_untracked())
            .map(|((res, act, _), _)| AccessReq { resource: res.to_string(), action: act.to_string() })
            .collect();
        let duration: i64 = r_days.get_untracked().trim().parse().unwrap_or(-2);
        let body = api::body(&RobotCreate {
            name: r_name.get_untracked().trim().to_string(),
            description: r_desc.get_untracked(),
            duration: Some(duration),
            level: "project".into(),
            disable: false,
            permissions: vec![PermissionReq {
                kind: Some("project".into()),
                namespace: project_name.clone(),
                access,
            }],
        });
        leptos::task::spawn_local(async move {
            match api::send("POST", "/robots".into(), Some(body)).await.and_then(api::decode::<RobotCreated>)
            {
                Ok(c) => {
                    secret.set(Some((c.name.clone(), c.secret)));
                    outcome.set(Some(Ok(fill(t("Created robot account {}."), &[&c.name]))));
                    show_form.set(false);
                    r_name.set(String::new());
                    r_desc.set(String::new());
                }
                Err(e) => outcome.set(Some(Err(e))),
            }
            reload.update(|v| *v += 1);
        });
    };
    let (can_create, can_update, can_delete) =
        (ctx.can("robot", "create"), ctx.can("robot", "update"), ctx.can("robot", "delete"));
    view! {
        {can_create.then(|| view! {
            <div class="toolbar">
                <button type="button" class="btn btn-primary" on:click=move |_| show_form.update(|s| *s = !*s)
                    aria-expanded=move || show_form.get().to_string() data-testid="robot-new">{t("New robot account")}</button>
            </div>
            <Show when=move || show_form.get()>
                <form class="card form-card" on:submit=create.clone() data-testid="robot-form">
                    <h2>{t("New robot account")}</h2>
                    <label for="robot-name">{t("Name")}</label>
                    <input id="robot-name" type="text" required bind:value=r_name data-testid="robot-name" />
                    <label for="robot-desc">{t("Description")}</label>
                    <input id="robot-desc" type="text" bind:value=r_desc />
                    <label for="robot-days">{t("Expires after (days; -1 never)")}</label>
                    <input id="robot-days" type="number" min="-1" required value="30" bind:value=r_days />
                    <fieldset class="rights">
                        <legend>{t("Permissions")}</legend>
                        {ROBOT_RIGHTS.iter().zip(rights.clone()).map(|((res, act, label), on)| view! {
                            <label class="check"><input type="checkbox" checked=*act == "pull" bind:checked=on data-testid=format!("right-{res}-{act}") />{t(label)}</label>
                        }).collect_view()}
                    </fieldset>
                    <div class="actions">
                        <button type="submit" class="btn btn-primary" data-testid="robot-create">{t("Create")}</button>
                        <button type="button" class="btn" on:click=move |_| show_form.set(false)>{t("Cancel")}</button>
                    </div>
                </form>
            </Show>
        })}
        <Outcome result=outcome />
        {move || secret.get().map(|(n, s)| view! {
            <section class="card secret-card" role="status" data-testid="robot-secret">
                <h2>{fill(t("Secret of {}"), &[&n])}</h2>
                <p class="muted">{t("Copy it now: it is shown only once. Log in with the robot's name and this secret.")}</p>
                <CopyField value=n.clone() label=t("Name") testid="robot-secret-name" />
                " "
                <CopyField value=s label=t("Secret") testid="robot-secret-value" />
                <div><button type="button" class="btn" on:click=move |_| secret.set(None)>{t("Done")}</button></div>
            </section>
        })}
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                listing(robots.await, page(), PAGE_SIZE, t("No robot accounts."), |p| format!("?page={p}"), move |items| view! {
                        <div class="table-wrap">
                            <table class="table" data-testid="robot-table">
                                <thead><tr>
                                    <th scope="col">{t("Name")}</th>
                                    <th scope="col">{t("Status")}</th>
                                    <th scope="col">{t("Permissions")}</th>
                                    <th scope="col">{t("Creation time")}</th>
                                    <th scope="col">{t("Expires")}</th>
                                    <th scope="col">{t("Description")}</th>
                                    <th scope="col">{t("Actions")}</th>
                                </tr></thead>
                                <tbody>
                                    {items.into_iter().map(|r| {
                                        let id = r.id;
                                        let (n1, n2, n3) = (r.name.clone(), r.name.clone(), r.name.clone());
                                        let disabled = r.disable;
                                        let refresh = move |_| {
                                            let n = n1.clone();
                                            leptos::task::spawn_local(async move {
                                                match api::send("PATCH", format!("/robots/{id}"), Some(api::body(&SecretReq { secret: None }))).await {
                                                    Ok(v) => {
                                                        let s = v["secret"].as_str().unwrap_or_default().to_string();
                                                        secret.set(Some((n.clone(), s)));
                                                        outcome.set(Some(Ok(fill(t("New secret for {}."), &[&n]))));
                                                    }
                                                    Err(e) => outcome.set(Some(Err(e))),
                                                }
                                            });
                                        };
                                        let toggle = move |_| {
                                            let note = if disabled { fill(t("Enabled {}."), &[&n2]) } else { fill(t("Disabled {}."), &[&n2]) };
                                            perform(outcome, reload, note, api::send("PUT", format!("/robots/{id}"), Some(api::body(&RobotPut { description: None, duration: None, disable: Some(!disabled), permissions: None }))));
                                        };
                                        let remove = Callback::new(move |_| {
                                            perform(outcome, reload, fill(t("Deleted {}."), &[&n3]), api::send("DELETE", format!("/robots/{id}"), None));
                                        });
                                        let expires = if r.expires_at < 0 { t("Never").to_string() } else { String::new() };
                                        view! {
                                            <tr data-testid="robot-row" data-name=r.name.clone()>
                                                <td class="strong">{r.name.clone()}</td>
                                                <td>
                                                    {if r.disable {
                                                        view! { <span class="badge badge-stopped" data-testid="robot-status">{t("Disabled")}</span> }.into_any()
                                                    } else {
                                                        view! { <span class="badge badge-success" data-testid="robot-status">{t("Enabled")}</span> }.into_any()
                                                    }}
                                                </td>
                                                <td class="wrap">{rights_summary(&r)}</td>
                                                <td>{time_str(&r.creation_time)}</td>
                                                <td>
                                                    {if r.expires_at < 0 {
                                                        view! { <span>{expires}</span> }.into_any()
                                                    } else {
                                                        view! { <crate::components::format::Time ms=r.expires_at * 1000 /> }.into_any()
                                                    }}
                                                </td>
                                                <td>{r.description.clone()}</td>
                                                <td class="actions">
                                                    {can_update.then(|| view! {
                                                        <button type="button" class="btn btn-ghost" on:click=refresh data-testid="robot-refresh">{t("Refresh secret")}</button>
                                                        <button type="button" class="btn btn-ghost" on:click=toggle data-testid="robot-toggle">
                                                            {if disabled { t("Enable") } else { t("Disable") }}
                                                        </button>
                                                    })}
                                                    {can_delete.then(|| view! {
                                                        <Confirm label=t("Delete") question=fill(t("Delete robot account {}?"), &[&r.name]) on_confirm=remove testid="robot-delete" />
                                                    })}
                                                </td>
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

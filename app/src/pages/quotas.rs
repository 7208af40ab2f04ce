//! Administration → Project Quotas (`/harbor/project-quotas`, system admins; Harbor's page of the
//! same name): every project's storage quota as a bar, fullest first, each limit editable in
//! place (`PUT /quotas/{id}`).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::page::{listing, loading, page_param, Outcome};
use crate::components::quota::{join_limit, split_limit, LimitFields, QuotaBar};
use crate::error::PortalError;
use crate::i18n::{fill, t};
use crate::pages::admin::AdminOnly;
use crate::pages::project::{perform, OutcomeSignal, Reload};
use crate::rest::projects::ResourceAmount;
use crate::rest::quotas::{Quota, QuotaUpdateReq};
use crate::server_fns::api::{self, Listing, PAGE_SIZE};

#[component]
pub fn ProjectQuotas() -> impl IntoView {
    // Resources before any `Suspend` (see `pages::project::ProjectFrame`).
    let page = page_param();
    let reload: Reload = RwSignal::new(0);
    let quotas = Resource::new(
        move || (page(), reload.get()),
        |(pg, _)| api::list::<Quota>(format!("/quotas?sort=-used.storage&page={pg}&page_size={PAGE_SIZE}")),
    );
    view! {
        <Title text=t("Project Quotas · Berth") />
        <AdminOnly body=move |_| view! { <QuotasBody quotas reload /> } />
    }
}

#[component]
fn QuotasBody(quotas: Resource<Result<Listing<Quota>, PortalError>>, reload: Reload) -> impl IntoView {
    let page = page_param();
    let outcome: OutcomeSignal = RwSignal::new(None);
    // The quota whose limit is being edited.
    let editing = RwSignal::new(None::<i64>);
    view! {
        <div class="page-head"><h1>{t("Project Quotas")}</h1></div>
        <p class="muted">{t("Each project's storage, each blob counted once per project. New projects get the default quota set under Configuration.")}</p>
        <Outcome result=outcome />
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                listing(quotas.await, page(), PAGE_SIZE, t("No projects yet."), |p| format!("?page={p}"), move |items| view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="quota-table">
                            <thead><tr>
                                <th scope="col">{t("Project name")}</th>
                                <th scope="col">{t("Owner")}</th>
                                <th scope="col">{t("Quota")}</th>
                                <th scope="col">{t("Actions")}</th>
                            </tr></thead>
                            <tbody>
                                {items.into_iter().map(|q| view! { <QuotaRow q editing outcome reload /> }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                })
            })}
        </Transition>
    }
}

#[component]
fn QuotaRow(
    q: Quota,
    editing: RwSignal<Option<i64>>,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    let (id, name) = (q.id, q.reference.name.clone());
    let (n, u) = split_limit(q.hard.storage);
    let number = RwSignal::new(n);
    let unit = RwSignal::new(u.to_string());
    let save = {
        let name = name.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let Some(limit) = join_limit(&number.get_untracked(), &unit.get_untracked()) else {
                outcome.set(Some(Err(PortalError::Invalid(
                    t("The limit must be -1 or a number of at least 0.").into(),
                ))));
                return;
            };
            editing.set(None);
            let body = api::body(&QuotaUpdateReq { hard: ResourceAmount { storage: limit } });
            perform(
                outcome,
                reload,
                fill(t("Saved the quota of {}."), &[&name]),
                api::send("PUT", format!("/quotas/{id}"), Some(body)),
            );
        }
    };
    view! {
        <tr data-testid="quota-row" data-name=name.clone()>
            <td class="strong"><a href=format!("/harbor/projects/{name}/summary")>{name.clone()}</a></td>
            <td>{q.reference.owner_name.clone()}</td>
            <td><QuotaBar used=q.used.storage hard=q.hard.storage /></td>
            <td>
                <Show when=move || editing.get() == Some(id) fallback=move || view! {
                    <button type="button" class="btn btn-ghost" data-testid="quota-edit" on:click=move |_| editing.set(Some(id))>{t("Edit")}</button>
                }>
                    <form class="inline-form tag-form" on:submit=save.clone()>
                        <LimitFields id="quota-row-limit" label=t("Storage limit") number unit />
                        <button type="submit" class="btn btn-primary" data-testid="quota-row-save">{t("Save")}</button>
                        <button type="button" class="btn" on:click=move |_| editing.set(None)>{t("Cancel")}</button>
                    </form>
                </Show>
            </td>
        </tr>
    }
}

//! The replication rule editor of `pages::replications` (Harbor's "New Replication Rule"):
//! name, description, mode (push-based: this registry → an endpoint; pull-based: an endpoint →
//! this registry), the endpoint, source resource filters (name, tag and label with matching /
//! excluding, resource type), destination namespace and flattening, trigger (manual, scheduled
//! with a cron, event based), bandwidth, override, deletion replication and enabled. Saving is
//! `POST /replication/policies` or `PUT /replication/policies/{id}` with the whole rule.

use leptos::prelude::*;
use serde_json::Value;

use crate::i18n::{fill, t};
use crate::pages::project::{OutcomeSignal, Reload};
use crate::rest::registries::Registry;
use crate::rest::replication::{ReplicationFilter, ReplicationPolicy, ReplicationTrigger, TriggerSettings};
use crate::server_fns::api;

/// Harbor's flattening choices: (`dest_namespace_replace_count`, label).
pub const FLATTENING: [(i64, &str); 5] = [
    (-1, "Flatten All Levels"),
    (0, "No Flattening"),
    (1, "Flatten 1 Level"),
    (2, "Flatten 2 Levels"),
    (3, "Flatten 3 Levels"),
];

/// Trigger modes: (API value, label).
pub const TRIGGERS: [(&str, &str); 3] =
    [("manual", "Manual"), ("scheduled", "Scheduled"), ("event_based", "Event Based")];

/// The label of a trigger mode (its API value when unknown).
pub fn trigger_label(kind: &str) -> String {
    TRIGGERS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, l)| t(l).to_string())
        .unwrap_or_else(|| kind.to_string())
}

/// Whether a rule pushes (this registry → an endpoint) rather than pulls.
pub fn is_push(p: &ReplicationPolicy) -> bool {
    p.dest_registry.as_ref().is_some_and(|r| r.id != 0)
}

/// The value of the rule's filter of `kind` (a string; labels joined with commas) and its
/// decoration.
fn filter_of(p: Option<&ReplicationPolicy>, kind: &str) -> (String, String) {
    let f = p.and_then(|p| p.filters.iter().find(|f| f.kind == kind));
    let value = match f.map(|f| &f.value) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items.iter().filter_map(|i| i.as_str()).collect::<Vec<_>>().join(","),
        _ => String::new(),
    };
    let decoration =
        f.map(|f| f.decoration.clone()).filter(|d| !d.is_empty()).unwrap_or_else(|| "matches".into());
    (value, decoration)
}

#[component]
pub fn RuleEditor(
    /// The rule being edited; `None` for a new one.
    rule: Option<ReplicationPolicy>,
    /// The registry endpoints to choose from.
    registries: Vec<Registry>,
    outcome: OutcomeSignal,
    reload: Reload,
    close: Callback<()>,
) -> impl IntoView {
    let r = rule.as_ref();
    let id = r.map(|p| p.id);
    let name = RwSignal::new(r.map(|p| p.name.clone()).unwrap_or_default());
    let description = RwSignal::new(r.map(|p| p.description.clone()).unwrap_or_default());
    let push = RwSignal::new(r.map(is_push).unwrap_or(true));
    let remote_of = |p: &ReplicationPolicy| {
        if is_push(p) { p.dest_registry.as_ref() } else { p.src_registry.as_ref() }.map(|r| r.id)
    };
    let first = registries.first().map(|r| r.id).unwrap_or(0);
    let remote = RwSignal::new(r.and_then(remote_of).unwrap_or(first).to_string());
    let (name_f, _) = filter_of(r, "name");
    let (tag_f, tag_d) = filter_of(r, "tag");
    let (label_f, label_d) = filter_of(r, "label");
    let (resource_f, _) = filter_of(r, "resource");
    let (f_name, f_tag, f_tag_d) = (RwSignal::new(name_f), RwSignal::new(tag_f), RwSignal::new(tag_d));
    let (f_label, f_label_d, f_resource) =
        (RwSignal::new(label_f), RwSignal::new(label_d), RwSignal::new(resource_f));
    let dest_ns = RwSignal::new(r.map(|p| p.dest_namespace.clone()).unwrap_or_default());
    let flatten = RwSignal::new(r.and_then(|p| p.dest_namespace_replace_count).unwrap_or(-1).to_string());
    let trig = r.and_then(|p| p.trigger.clone()).unwrap_or_default();
    let trigger = RwSignal::new(if trig.kind.is_empty() { "manual".to_string() } else { trig.kind.clone() });
    let cron = RwSignal::new(trig.trigger_settings.map(|s| s.cron).unwrap_or_default());
    let speed = RwSignal::new(r.and_then(|p| p.speed).filter(|s| *s > 0).unwrap_or(-1).to_string());
    let override_existing = RwSignal::new(r.map(|p| p.override_existing).unwrap_or(true));
    let deletion = RwSignal::new(r.map(|p| p.replicate_deletion || p.deletion).unwrap_or(false));
    let enabled = RwSignal::new(r.map(|p| p.enabled).unwrap_or(true));
    let keep = rule.clone().unwrap_or_default();

    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let remote_id: i64 = remote.get_untracked().parse().unwrap_or(0);
        let registry = Some(Registry { id: remote_id, ..Default::default() });
        let local = Some(Registry { id: 0, ..Default::default() });
        let is_push = push.get_untracked();
        let mut filters = vec![];
        let text = |s: RwSignal<String>| s.get_untracked().trim().to_string();
        if !text(f_name).is_empty() {
            filters.push(ReplicationFilter {
                kind: "name".into(),
                value: Value::String(text(f_name)),
                decoration: String::new(),
            });
        }
        if !text(f_tag).is_empty() {
            filters.push(ReplicationFilter {
                kind: "tag".into(),
                value: Value::String(text(f_tag)),
                decoration: f_tag_d.get_untracked(),
            });
        }
        let labels: Vec<Value> = text(f_label)
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| Value::String(l.into()))
            .collect();
        if !labels.is_empty() {
            filters.push(ReplicationFilter {
                kind: "label".into(),
                value: Value::Array(labels),
                decoration: f_label_d.get_untracked(),
            });
        }
        if !text(f_resource).is_empty() {
            filters.push(ReplicationFilter {
                kind: "resource".into(),
                value: Value::String(text(f_resource)),
                decoration: String::new(),
            });
        }
        let kind = trigger.get_untracked();
        // Harbor refuses "single active" for event-based rules; the server picks the default.
        let single_active_replication =
            if kind == "event_based" { None } else { keep.single_active_replication };
        let trigger_settings = (kind == "scheduled").then(|| TriggerSettings { cron: text(cron) });
        let policy = ReplicationPolicy {
            id: id.unwrap_or(0),
            name: text(name),
            description: description.get_untracked(),
            src_registry: if is_push { local.clone() } else { registry.clone() },
            dest_registry: if is_push { registry } else { local },
            dest_namespace: text(dest_ns),
            dest_namespace_replace_count: Some(flatten.get_untracked().parse().unwrap_or(-1)),
            trigger: Some(ReplicationTrigger { kind, trigger_settings }),
            filters,
            replicate_deletion: is_push && deletion.get_untracked(),
            deletion: false,
            override_existing: override_existing.get_untracked(),
            enabled: enabled.get_untracked(),
            speed: Some(text(speed).parse().unwrap_or(-1)),
            creation_time: None,
            update_time: None,
            single_active_replication,
            ..keep.clone()
        };
        let n = policy.name.clone();
        let (method, path, note) = match id {
            Some(id) => ("PUT", format!("/replication/policies/{id}"), fill(t("Saved rule {}."), &[&n])),
            None => ("POST", "/replication/policies".to_string(), fill(t("Created rule {}."), &[&n])),
        };
        leptos::task::spawn_local(async move {
            match api::send(method, path, Some(api::body(&policy))).await {
                Ok(_) => {
                    outcome.set(Some(Ok(note)));
                    close.run(());
                    reload.update(|v| *v += 1);
                }
                Err(e) => outcome.set(Some(Err(e))),
            }
        });
    };
    let selected_remote = remote.get_untracked();
    let options = move || {
        registries
            .iter()
            .map(|reg| {
                let v = reg.id.to_string();
                let sel = v == selected_remote;
                view! { <option value=v selected=sel>{format!("{} · {}", reg.name, reg.url)}</option> }
            })
            .collect_view()
    };
    let choice = |signal: RwSignal<String>, value: &'static str| {
        let selected = signal.get_untracked() == value;
        view! { <option value=value selected=selected>{move || match value {
            "matches" => t("matching"), "excludes" => t("excluding"),
            "image" => t("image"), "artifact" => t("artifact"), _ => t("All"),
        }}</option> }
    };
    view! {
        <form class="card form-card rule-editor" on:submit=save data-testid="rule-form">
            <h2>{if id.is_some() { t("Edit replication rule") } else { t("New replication rule") }}</h2>
            <label for="rule-name">{t("Name")}</label>
            <input id="rule-name" type="text" required maxlength="255" autocomplete="off" bind:value=name data-testid="rule-name" />
            <label for="rule-desc">{t("Description")}</label>
            <input id="rule-desc" type="text" bind:value=description />
            <fieldset class="radio-row">
                <legend>{t("Replication mode")}</legend>
                <label class="check"><input type="radio" name="rule-mode" checked=push.get_untracked() data-testid="rule-push"
                    on:change=move |_| push.set(true) />{t("Push-based")}</label>
                <label class="check"><input type="radio" name="rule-mode" checked=!push.get_untracked() data-testid="rule-pull"
                    on:change=move |_| { push.set(false); if trigger.get_untracked() == "event_based" { trigger.set("manual".into()); } } />{t("Pull-based")}</label>
            </fieldset>
            <label for="rule-remote">{move || if push.get() { t("Destination registry") } else { t("Source registry") }}</label>
            <select id="rule-remote" required on:change=move |ev| remote.set(event_target_value(&ev)) data-testid="rule-registry">
                {options}
            </select>
            <fieldset class="filters-set">
                <legend>{t("Source resource filter")}</legend>
                <label for="rule-f-name">{t("Name")}</label>
                <input id="rule-f-name" type="text" placeholder="library/**" bind:value=f_name data-testid="rule-filter-name" />
                <label for="rule-f-tag">{t("Tag")}</label>
                <span class="inline-fields">
                    <select aria-label=t("Tag filter mode") on:change=move |ev| f_tag_d.set(event_target_value(&ev))>
                        {choice(f_tag_d, "matches")}{choice(f_tag_d, "excludes")}
                    </select>
                    <input id="rule-f-tag" type="text" placeholder="v*" bind:value=f_tag data-testid="rule-filter-tag" />
                </span>
                <label for="rule-f-label">{t("Label")}</label>
                <span class="inline-fields">
                    <select aria-label=t("Label filter mode") on:change=move |ev| f_label_d.set(event_target_value(&ev))>
                        {choice(f_label_d, "matches")}{choice(f_label_d, "excludes")}
                    </select>
                    <input id="rule-f-label" type="text" placeholder=t("label names, comma-separated") bind:value=f_label />
                </span>
                <label for="rule-f-resource">{t("Resource")}</label>
                <select id="rule-f-resource" on:change=move |ev| f_resource.set(event_target_value(&ev))>
                    {choice(f_resource, "")}{choice(f_resource, "image")}{choice(f_resource, "artifact")}
                </select>
            </fieldset>
            <label for="rule-ns">{t("Destination namespace")}</label>
            <input id="rule-ns" type="text" placeholder=t("empty: the source's namespace") bind:value=dest_ns data-testid="rule-namespace" />
            <label for="rule-flatten">{t("Flattening")}</label>
            <select id="rule-flatten" on:change=move |ev| flatten.set(event_target_value(&ev)) data-testid="rule-flatten">
                {FLATTENING.iter().map(|(v, l)| {
                    let sel = flatten.get_untracked() == v.to_string();
                    view! { <option value=v.to_string() selected=sel>{t(l)}</option> }
                }).collect_view()}
            </select>
            <label for="rule-trigger">{t("Trigger mode")}</label>
            <select id="rule-trigger" on:change=move |ev| trigger.set(event_target_value(&ev)) prop:value=move || trigger.get() data-testid="rule-trigger">
                {TRIGGERS.iter().map(|(v, l)| {
                    let sel = trigger.get_untracked() == *v;
                    let event = *v == "event_based";
                    view! { <option value=*v selected=sel disabled=move || event && !push.get()>{t(l)}</option> }
                }).collect_view()}
            </select>
            <Show when=move || trigger.get() == "scheduled">
                <label for="rule-cron">{t("Cron (seconds first and 0, e.g. 0 0 2 * * *)")}</label>
                <input id="rule-cron" type="text" required spellcheck="false" bind:value=cron data-testid="rule-cron" />
            </Show>
            <label for="rule-speed">{t("Bandwidth (KiB/s; -1 unlimited)")}</label>
            <input id="rule-speed" type="number" min="-1" bind:value=speed data-testid="rule-speed" />
            <label class="check"><input type="checkbox" bind:checked=override_existing data-testid="rule-override" />{t(" Override: replace a destination tag that points elsewhere")}</label>
            <Show when=move || push.get()>
                <label class="check"><input type="checkbox" bind:checked=deletion data-testid="rule-deletion" />{t(" Delete remote resources when locally deleted")}</label>
            </Show>
            <label class="check"><input type="checkbox" bind:checked=enabled data-testid="rule-enabled" />{t(" Enable rule")}</label>
            <div class="actions">
                <button type="submit" class="btn btn-primary" data-testid="rule-save">{t("Save")}</button>
                <button type="button" class="btn" on:click=move |_| close.run(())>{t("Cancel")}</button>
            </div>
        </form>
    }
}

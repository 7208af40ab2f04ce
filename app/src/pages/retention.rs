//! The tag retention section of a project's Policy tab (Harbor's `/retentions` API, one policy
//! per project: its id is the project's `metadata.retention_id`). The rules ("For the
//! repositories matching **, retain the most recently pushed 10 artifacts with tags matching **
//! including untagged artifacts"), a form to add or edit one, enable/disable and delete, the
//! schedule, "Dry run" and "Run now"; the runs are `pages::retention_runs`.
//!
//! The first rule creates the policy (`POST /retentions`, scope the project); every later
//! change replaces it (`PUT /retentions/{id}`) — Harbor's UI does the same.

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde_json::Value;

use crate::components::page::{loading, Confirm, ErrorAlert, Outcome};
use crate::error::PortalError;
use crate::i18n::{fill, t};
use crate::pages::policy::{decoration_text, SelectorFields};
use crate::pages::project::{perform, OutcomeSignal, ProjectCtx, Reload};
use crate::pages::retention_runs::{RetentionRuns, RunsPage, RunsView};
use crate::rest::retention::{
    RetentionMetadata, RetentionPolicy, RetentionPolicyScope, RetentionRule, RetentionRuleTrigger,
    RetentionSelector, RetentionTrigger,
};
use crate::rest::ProjectResp;
use crate::server_fns::api::{self, seg};

/// Page size of the run history.
pub const RUNS_PAGE_SIZE: u64 = 10;

/// The rule templates: Harbor's id, the text with `{}` for the parameter, whether it has one.
pub const TEMPLATES: [(&str, &str, bool); 5] = [
    ("latestPushedK", "retain the most recently pushed {} artifacts", true),
    ("latestPulledN", "retain the most recently pulled {} artifacts", true),
    ("nDaysSinceLastPush", "retain the artifacts pushed within the last {} days", true),
    ("nDaysSinceLastPull", "retain the artifacts pulled within the last {} days", true),
    ("always", "retain always", false),
];

/// The schedules the select offers and their cron (Harbor's, seconds first); "Custom" is any other.
pub const SCHEDULES: [(&str, &str); 4] =
    [("None", ""), ("Hourly", "0 0 * * * *"), ("Daily", "0 0 0 * * *"), ("Weekly", "0 0 0 * * 0")];

/// A template the server offers: id, text and whether it takes a number.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Template {
    pub id: String,
    pub has_param: bool,
    /// The server's `display_text`, used for a template this portal does not know.
    pub display: String,
}

/// Everything the section shows, loaded together.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RetentionData {
    pub project_id: i64,
    pub policy: Option<RetentionPolicy>,
    pub templates: Vec<Template>,
}

/// The id of the project's policy (`metadata.retention_id`), if it has one.
pub fn policy_id(p: &ProjectResp) -> Option<i64> {
    p.metadata.retention_id.as_deref().and_then(|v| v.parse::<i64>().ok()).filter(|id| *id > 0)
}

async fn load(name: String) -> Result<RetentionData, PortalError> {
    let p: ProjectResp = api::get(format!("/projects/{}", seg(&name))).await?;
    let templates = match api::get::<RetentionMetadata>("/retentions/metadatas".into()).await {
        Ok(m) => m
            .templates
            .into_iter()
            .map(|x| Template {
                has_param: !x.params.is_empty(),
                id: x.rule_template,
                display: x.display_text,
            })
            .collect(),
        // The templates Harbor documents, when the server cannot say.
        Err(_) => TEMPLATES
            .iter()
            .map(|(id, _, has)| Template { id: id.to_string(), has_param: *has, display: id.to_string() })
            .collect(),
    };
    let policy = match policy_id(&p) {
        Some(id) => Some(api::get::<RetentionPolicy>(format!("/retentions/{id}")).await?),
        None => None,
    };
    Ok(RetentionData { project_id: p.project_id, policy, templates })
}

/// The section's policy for the project `name()`, loaded again when `reload` changes (the run
/// history is `retention_runs::runs_resource`, which also polls).
pub fn retention_resource(
    name: impl Fn() -> String + Copy + Send + Sync + 'static,
    reload: Reload,
) -> Resource<Result<RetentionData, PortalError>> {
    Resource::new(move || (name(), reload.get()), |(n, _)| load(n))
}

/// The rule's template text with its parameter (`retain the most recently pushed 10 artifacts`).
fn template_text(r: &RetentionRule, templates: &[Template]) -> String {
    let n =
        r.params.get(&r.template).map(|v| v.to_string().trim_matches('"').to_string()).unwrap_or_default();
    match TEMPLATES.iter().find(|(id, _, _)| *id == r.template) {
        Some((_, text, _)) => fill(t(text), &[&n]),
        None => {
            let display = templates.iter().find(|x| x.id == r.template).map(|x| x.display.clone());
            display.unwrap_or_else(|| r.template.clone()).replace('#', &n)
        }
    }
}

/// Whether the tag selector also selects untagged artifacts (`extras` `{"untagged":true}`).
fn untagged(s: &RetentionSelector) -> bool {
    serde_json::from_str::<Value>(&s.extras).ok().and_then(|v| v["untagged"].as_bool()).unwrap_or(false)
}

fn repo_of(r: &RetentionRule) -> (String, String) {
    r.scope_selectors
        .get("repository")
        .and_then(|s| s.first())
        .map(|s| (s.decoration.clone(), s.pattern.clone()))
        .unwrap_or_else(|| ("repoMatches".into(), "**".into()))
}

fn tag_of(r: &RetentionRule) -> (String, String, bool) {
    r.tag_selectors
        .iter()
        .find(|s| s.kind == "doublestar")
        .map(|s| (s.decoration.clone(), s.pattern.clone(), untagged(s)))
        .unwrap_or_else(|| ("matches".into(), "**".into(), true))
}

/// The rule's label selector: `withLabels`/`withoutLabels` and the names (empty: none).
fn labels_of(r: &RetentionRule) -> (String, String) {
    r.tag_selectors
        .iter()
        .find(|s| s.kind == "label")
        .map(|s| (s.decoration.clone(), s.pattern.clone()))
        .unwrap_or_else(|| ("withLabels".into(), String::new()))
}

/// Label names as typed (`a, b,`) as the API wants them (`a,b`).
fn label_list(names: &str) -> String {
    names.split(',').map(str::trim).filter(|n| !n.is_empty()).collect::<Vec<_>>().join(",")
}

/// A rule in words, Harbor's sentence.
pub fn rule_text(r: &RetentionRule, templates: &[Template]) -> String {
    let (rd, rp) = repo_of(r);
    let (td, tp, u) = tag_of(r);
    let untagged = if u { t("including untagged artifacts") } else { t("excluding untagged artifacts") };
    let mut text = fill(
        t("For the repositories {} {}, {} with tags {} {} {}"),
        &[&decoration_text(&rd), &rp, &template_text(r, templates), &decoration_text(&td), &tp, &untagged],
    );
    let (ld, names) = labels_of(r);
    if !names.is_empty() {
        let with = if ld == "withoutLabels" { t(", without labels {}") } else { t(", with labels {}") };
        text.push_str(&fill(with, &[&names]));
    }
    text
}

/// What the rule form edits.
#[derive(Debug, Clone, PartialEq)]
struct Draft {
    template: String,
    param: String,
    repo_decoration: String,
    repo_pattern: String,
    tag_decoration: String,
    tag_pattern: String,
    untagged: bool,
    /// `withLabels` or `withoutLabels`.
    label_decoration: String,
    /// Label names separated by commas (empty: no label selector).
    labels: String,
}

impl Draft {
    fn of(r: Option<&RetentionRule>) -> Draft {
        match r {
            None => Draft {
                template: "latestPushedK".into(),
                param: "10".into(),
                repo_decoration: "repoMatches".into(),
                repo_pattern: "**".into(),
                tag_decoration: "matches".into(),
                tag_pattern: "**".into(),
                untagged: true,
                label_decoration: "withLabels".into(),
                labels: String::new(),
            },
            Some(r) => {
                let (repo_decoration, repo_pattern) = repo_of(r);
                let (tag_decoration, tag_pattern, untagged) = tag_of(r);
                let (label_decoration, labels) = labels_of(r);
                Draft {
                    template: r.template.clone(),
                    param: r.params.get(&r.template).map(|v| v.to_string()).unwrap_or_default(),
                    repo_decoration,
                    repo_pattern,
                    tag_decoration,
                    tag_pattern,
                    untagged,
                    label_decoration,
                    labels,
                }
            }
        }
    }

    /// The rule (keeping `base`'s id, priority and disabled flag), or the reason it is not one.
    fn rule(&self, base: Option<&RetentionRule>, has_param: bool) -> Result<RetentionRule, String> {
        let mut params = BTreeMap::new();
        if has_param {
            let n: i64 =
                self.param.trim().parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    t("The rule's number must be a whole number of at least 0.").to_string()
                })?;
            params.insert(self.template.clone(), Value::from(n));
        }
        let sel = |decoration: &str, pattern: &str, extras: String| RetentionSelector {
            kind: "doublestar".into(),
            decoration: decoration.into(),
            pattern: pattern.trim().into(),
            extras,
        };
        let mut tag_selectors = vec![sel(
            &self.tag_decoration,
            &self.tag_pattern,
            serde_json::json!({ "untagged": self.untagged }).to_string(),
        )];
        let labels = label_list(&self.labels);
        if !labels.is_empty() {
            tag_selectors.push(RetentionSelector {
                kind: "label".into(),
                decoration: self.label_decoration.clone(),
                pattern: labels,
                extras: String::new(),
            });
        }
        Ok(RetentionRule {
            id: base.map(|b| b.id).unwrap_or(0),
            priority: base.map(|b| b.priority).unwrap_or(0),
            disabled: base.is_some_and(|b| b.disabled),
            action: "retain".into(),
            template: self.template.clone(),
            params,
            tag_selectors,
            scope_selectors: BTreeMap::from([(
                "repository".to_string(),
                vec![sel(&self.repo_decoration, &self.repo_pattern, String::new())],
            )]),
        })
    }
}

/// Stores `rules` and `cron` as the project's policy: creates it when there is none yet.
async fn store(
    policy: Option<RetentionPolicy>,
    project_id: i64,
    rules: Vec<RetentionRule>,
    cron: String,
) -> Result<Value, PortalError> {
    let trigger = RetentionRuleTrigger {
        kind: "Schedule".into(),
        settings: serde_json::json!({ "cron": cron }),
        references: serde_json::json!({}),
    };
    match policy {
        Some(p) => {
            let id = p.id;
            let body = RetentionPolicy { rules, trigger: Some(trigger), ..p };
            api::send("PUT", format!("/retentions/{id}"), Some(api::body(&body))).await
        }
        None => {
            let body = RetentionPolicy {
                id: 0,
                algorithm: "or".into(),
                rules,
                trigger: Some(trigger),
                scope: Some(RetentionPolicyScope { level: "project".into(), reference: project_id }),
            };
            api::send("POST", "/retentions".into(), Some(api::body(&body))).await
        }
    }
}

/// The policy's cron (empty: manual only).
fn cron_of(p: Option<&RetentionPolicy>) -> String {
    p.and_then(|p| p.trigger.as_ref())
        .and_then(|t| t.settings["cron"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[component]
pub fn RetentionSection(
    ctx: ProjectCtx,
    data: Resource<Result<RetentionData, PortalError>>,
    runs: Resource<Result<RunsPage, PortalError>>,
    reload: Reload,
    tick: Reload,
) -> impl IntoView {
    let outcome: OutcomeSignal = RwSignal::new(None);
    // Live history: poll the runs (only them: a rule being edited stays as it is) while one is
    // pending or running (in the browser only).
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(
            move || {
                if runs.get_untracked().and_then(|r| r.ok()).is_some_and(|d| d.busy()) {
                    tick.update(|v| *v += 1);
                }
            },
            std::time::Duration::from_secs(2),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    let runs_view = RunsView::new(reload, tick);
    let can = RetentionPerms {
        create: ctx.can("tag-retention", "create"),
        update: ctx.can("tag-retention", "update"),
        // Running and stopping are updates of the policy (the server's rule).
        operate: ctx.can("tag-retention", "update"),
    };
    view! {
        <section class="policy-section" aria-labelledby="retention-h" data-testid="retention-section">
            <h2 id="retention-h">{t("Tag retention")}</h2>
            <p class="muted">{t("Artifacts a rule looks at and no rule retains are deleted when the policy runs; a dry run only reports them.")}</p>
            <Outcome result=outcome />
            <Transition fallback=loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(d) => view! { <RetentionBody d can outcome reload /> }.into_any(),
                        Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                    }
                })}
            </Transition>
            <Transition fallback=loading>
                {move || Suspend::new(async move {
                    match runs.await {
                        Ok(r) => view! { <RetentionRuns runs=r can_stop=can.operate state=runs_view outcome reload /> }.into_any(),
                        Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// The retention writes the user may make.
#[derive(Debug, Clone, Copy)]
pub struct RetentionPerms {
    pub create: bool,
    pub update: bool,
    pub operate: bool,
}

#[component]
fn RetentionBody(
    d: RetentionData,
    can: RetentionPerms,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    let policy = d.policy.clone();
    let rules = policy.as_ref().map(|p| p.rules.clone()).unwrap_or_default();
    let may_edit = if policy.is_some() { can.update } else { can.create };
    // `Some(None)`: a new rule; `Some(Some(i))`: editing rule number i.
    let editing = RwSignal::new(None::<Option<usize>>);
    let project_id = d.project_id;
    let templates = d.templates.clone();
    let cron = cron_of(policy.as_ref());
    let has_rules = !rules.is_empty();
    // Harbor's limit of rules per policy.
    let full = rules.len() >= 15;
    let form = {
        let (policy, rules, templates, cron) =
            (policy.clone(), rules.clone(), templates.clone(), cron.clone());
        move || {
            editing.get().map(|which| {
                view! {
                    <RuleForm which policy=policy.clone() rules=rules.clone() templates=templates.clone() cron=cron.clone()
                        project_id outcome reload close=Callback::new(move |_| editing.set(None)) />
                }
            })
        }
    };
    let policy_id = d.policy.as_ref().map(|p| p.id);
    let run = move |dry_run: bool| {
        let Some(id) = policy_id else { return };
        let note = if dry_run { t("Dry run started.") } else { t("Retention run started.") };
        perform(
            outcome,
            reload,
            note.to_string(),
            api::send(
                "POST",
                format!("/retentions/{id}/executions"),
                Some(api::body(&RetentionTrigger { dry_run })),
            ),
        );
    };
    let run_now = Callback::new(move |_| run(false));
    view! {
        <div class="toolbar toolbar-wide">
            {may_edit.then(|| view! {
                <button type="button" class="btn btn-primary" data-testid="retention-add" disabled=full
                    on:click=move |_| editing.set(Some(None))>{t("Add rule")}</button>
            })}
            {(can.operate && has_rules).then(|| view! {
                <button type="button" class="btn" data-testid="retention-dry-run" on:click=move |_| run(true)>{t("Dry run")}</button>
                <Confirm label=t("Run now") question=t("Run the retention policy now? Artifacts no rule retains are deleted.").to_string()
                    on_confirm=run_now testid="retention-run-now" />
            })}
        </div>
        {form}
        {if rules.is_empty() {
            view! { <div class="empty-state"><p>{t("No retention rules: every artifact is kept.")}</p></div> }.into_any()
        } else {
            view! { <RuleTable policy=policy.clone().unwrap_or_default() templates=templates.clone() may_edit editing outcome reload /> }.into_any()
        }}
        {policy.clone().map(|p| view! { <ScheduleForm policy=p may_edit outcome reload /> })}
    }
}

#[component]
fn RuleTable(
    policy: RetentionPolicy,
    templates: Vec<Template>,
    may_edit: bool,
    editing: RwSignal<Option<Option<usize>>>,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    let cron = cron_of(Some(&policy));
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="retention-table">
                <thead><tr>
                    <th scope="col">{t("Rule")}</th>
                    <th scope="col">{t("Status")}</th>
                    {may_edit.then(|| view! { <th scope="col">{t("Actions")}</th> })}
                </tr></thead>
                <tbody>
                    {policy.rules.iter().enumerate().map(|(i, r)| {
                        let text = rule_text(r, &templates);
                        let toggle = {
                            let (policy, cron) = (policy.clone(), cron.clone());
                            move |_| {
                                let mut rules = policy.rules.clone();
                                rules[i].disabled = !rules[i].disabled;
                                let note = if rules[i].disabled { t("Rule disabled.") } else { t("Rule enabled.") };
                                perform(outcome, reload, note.to_string(), store(Some(policy.clone()), 0, rules, cron.clone()));
                            }
                        };
                        let remove = {
                            let (policy, cron) = (policy.clone(), cron.clone());
                            Callback::new(move |_| {
                                let mut rules = policy.rules.clone();
                                rules.remove(i);
                                perform(outcome, reload, t("Rule deleted.").to_string(), store(Some(policy.clone()), 0, rules, cron.clone()));
                            })
                        };
                        view! {
                            <tr data-testid="retention-row" data-template=r.template.clone() data-disabled=r.disabled.to_string()>
                                <td class="wrap" data-testid="retention-text">{text.clone()}</td>
                                <td>{if r.disabled {
                                    view! { <span class="badge badge-stopped">{t("Disabled")}</span> }.into_any()
                                } else {
                                    view! { <span class="badge badge-success">{t("Enabled")}</span> }.into_any()
                                }}</td>
                                {may_edit.then(|| view! {
                                    <td><div class="actions">
                                        <button type="button" class="btn btn-ghost" data-testid="retention-edit"
                                            on:click=move |_| editing.set(Some(Some(i)))>{t("Edit")}</button>
                                        <button type="button" class="btn btn-ghost" data-testid="retention-toggle" on:click=toggle>
                                            {if r.disabled { t("Enable") } else { t("Disable") }}
                                        </button>
                                        <Confirm label=t("Delete") question=fill(t("Delete this rule: {}?"), &[&text]) on_confirm=remove testid="retention-delete" />
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

#[component]
#[allow(clippy::too_many_arguments)]
fn RuleForm(
    /// `None`: a new rule; `Some(i)`: rule number i.
    which: Option<usize>,
    policy: Option<RetentionPolicy>,
    rules: Vec<RetentionRule>,
    templates: Vec<Template>,
    cron: String,
    project_id: i64,
    outcome: OutcomeSignal,
    reload: Reload,
    close: Callback<()>,
) -> impl IntoView {
    let base = which.and_then(|i| rules.get(i).cloned());
    let draft = Draft::of(base.as_ref());
    let template = RwSignal::new(draft.template.clone());
    let param = RwSignal::new(draft.param.clone());
    let (repo_decoration, repo_pattern) =
        (RwSignal::new(draft.repo_decoration), RwSignal::new(draft.repo_pattern));
    let (tag_decoration, tag_pattern) =
        (RwSignal::new(draft.tag_decoration), RwSignal::new(draft.tag_pattern));
    let untagged = RwSignal::new(draft.untagged);
    let (label_decoration, labels) = (RwSignal::new(draft.label_decoration), RwSignal::new(draft.labels));
    let with_param = {
        let templates = templates.clone();
        move || templates.iter().find(|x| x.id == template.get()).is_some_and(|x| x.has_param)
    };
    let unit = move || match template.get().as_str() {
        "nDaysSinceLastPush" | "nDaysSinceLastPull" => t("Days"),
        _ => t("Count"),
    };
    let save = {
        let with_param = with_param.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let d = Draft {
                template: template.get_untracked(),
                param: param.get_untracked(),
                repo_decoration: repo_decoration.get_untracked(),
                repo_pattern: repo_pattern.get_untracked(),
                tag_decoration: tag_decoration.get_untracked(),
                tag_pattern: tag_pattern.get_untracked(),
                untagged: untagged.get_untracked(),
                label_decoration: label_decoration.get_untracked(),
                labels: labels.get_untracked(),
            };
            let rule = match d.rule(base.as_ref(), untrack(&with_param)) {
                Ok(r) => r,
                Err(e) => {
                    outcome.set(Some(Err(PortalError::Invalid(e))));
                    return;
                }
            };
            let mut all = rules.clone();
            let note = match which {
                Some(i) if i < all.len() => {
                    all[i] = rule;
                    t("Rule saved.")
                }
                _ => {
                    all.push(rule);
                    t("Rule added.")
                }
            };
            close.run(());
            perform(outcome, reload, note.to_string(), store(policy.clone(), project_id, all, cron.clone()));
        }
    };
    let options = templates
        .iter()
        .map(|x| {
            let text = match TEMPLATES.iter().find(|(id, _, _)| *id == x.id) {
                Some((_, text, _)) => fill(t(text), &[&"#"]),
                None => x.display.clone(),
            };
            let id = x.id.clone();
            let sel = id.clone();
            view! { <option value=id selected=move || template.get() == sel>{text}</option> }
        })
        .collect_view();
    view! {
        <form class="card form-card" on:submit=save data-testid="retention-form">
            <h3>{if which.is_some() { t("Edit retention rule") } else { t("Add retention rule") }}</h3>
            <SelectorFields id="retention-repo" legend=t("Repositories") options=[("repoMatches", "matching"), ("repoExcludes", "excluding")]
                decoration=repo_decoration pattern=repo_pattern />
            <label for="retention-template">{t("By artifact count or number of days")}</label>
            <select id="retention-template" data-testid="retention-template" on:change=move |ev| template.set(event_target_value(&ev))>
                {options}
            </select>
            <Show when=with_param.clone()>
                <label for="retention-param">{unit}</label>
                <input id="retention-param" type="number" min="0" step="1" required data-testid="retention-param"
                    value=param.get_untracked() bind:value=param />
            </Show>
            <SelectorFields id="retention-tag" legend=t("Tags") options=[("matches", "matching"), ("excludes", "excluding")]
                decoration=tag_decoration pattern=tag_pattern />
            <label class="check">
                <input type="checkbox" bind:checked=untagged data-testid="retention-untagged" />
                {t(" Untagged artifacts too")}
            </label>
            <fieldset class="filters-set">
                <legend>{t("Labels")}</legend>
                <div class="inline-fields">
                    <label class="visually-hidden" for="retention-label-decoration">{t("With or without the labels")}</label>
                    <select id="retention-label-decoration" data-testid="retention-label-decoration"
                        on:change=move |ev| label_decoration.set(event_target_value(&ev))>
                        <option value="withLabels" selected=move || label_decoration.get() == "withLabels">{t("with labels")}</option>
                        <option value="withoutLabels" selected=move || label_decoration.get() == "withoutLabels">{t("without labels")}</option>
                    </select>
                    <label class="visually-hidden" for="retention-labels">{t("Label names")}</label>
                    <input id="retention-labels" type="text" maxlength="1024" spellcheck="false" bind:value=labels data-testid="retention-labels" />
                </div>
                <p class="muted small">{t("Label names separated by commas; empty: labels do not matter.")}</p>
            </fieldset>
            <div class="actions">
                <button type="submit" class="btn btn-primary" data-testid="retention-save">{t("Save")}</button>
                <button type="button" class="btn" on:click=move |_| close.run(())>{t("Cancel")}</button>
            </div>
        </form>
    }
}

/// The policy's schedule: none, hourly, daily, weekly or a custom cron (seconds first).
#[component]
fn ScheduleForm(
    policy: RetentionPolicy,
    may_edit: bool,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    let stored = cron_of(Some(&policy));
    let kind = RwSignal::new(
        SCHEDULES
            .iter()
            .find(|(_, c)| *c == stored)
            .map(|(k, _)| k.to_string())
            .unwrap_or_else(|| "Custom".into()),
    );
    let cron = RwSignal::new(stored.clone());
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let k = kind.get_untracked();
        let c = match SCHEDULES.iter().find(|(name, _)| *name == k) {
            Some((_, c)) => c.to_string(),
            None => cron.get_untracked().trim().to_string(),
        };
        let rules = policy.rules.clone();
        perform(outcome, reload, t("Schedule saved.").to_string(), store(Some(policy.clone()), 0, rules, c));
    };
    let current = if stored.is_empty() {
        t("Not scheduled.").to_string()
    } else {
        fill(t("Runs on cron {}."), &[&stored])
    };
    view! {
        <form class="card form-card" on:submit=save data-testid="retention-schedule">
            <h3>{t("Schedule")}</h3>
            <p class="muted small" data-testid="retention-schedule-current">{current}</p>
            <label for="retention-repeat">{t("Repeat")}</label>
            <select id="retention-repeat" disabled=!may_edit data-testid="retention-repeat" on:change=move |ev| kind.set(event_target_value(&ev))>
                {SCHEDULES.iter().map(|(k, _)| k).chain(std::iter::once(&"Custom")).map(|k| {
                    let k = *k;
                    view! { <option value=k selected=move || kind.get() == k>{t(k)}</option> }
                }).collect_view()}
            </select>
            <Show when=move || kind.get() == "Custom">
                <label for="retention-cron">{t("Cron (Custom; seconds first, e.g. 0 30 2 * * *)")}</label>
                <input id="retention-cron" type="text" required spellcheck="false" disabled=!may_edit value=cron.get_untracked() bind:value=cron data-testid="retention-cron" />
            </Show>
            {may_edit.then(|| view! { <div><button type="submit" class="btn btn-primary" data-testid="retention-schedule-save">{t("Save schedule")}</button></div> })}
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_reads_like_harbors_sentence_and_round_trips_through_the_form() {
        let templates: Vec<Template> = TEMPLATES
            .iter()
            .map(|(id, _, has)| Template { id: id.to_string(), has_param: *has, display: id.to_string() })
            .collect();
        let rule = Draft::of(None).rule(None, true).unwrap();
        assert_eq!(rule.params.get("latestPushedK"), Some(&Value::from(10)));
        assert_eq!(
            rule_text(&rule, &templates),
            "For the repositories matching **, retain the most recently pushed 10 artifacts with tags matching ** including untagged artifacts"
        );
        assert_eq!(Draft::of(Some(&rule)), Draft::of(None));
        let mut d = Draft::of(None);
        d.labels = " keep, prod ,".into();
        d.label_decoration = "withoutLabels".into();
        let labelled = d.rule(None, true).unwrap();
        assert_eq!(labelled.tag_selectors[1].pattern, "keep,prod");
        assert!(rule_text(&labelled, &templates)
            .ends_with("including untagged artifacts, without labels keep,prod"));
        assert_eq!(Draft::of(Some(&labelled)).labels, "keep,prod");
        let mut d = Draft::of(None);
        d.param = "-1".into();
        assert!(d.rule(None, true).is_err());
        d.template = "always".into();
        assert!(d.rule(None, false).unwrap().params.is_empty());
    }
}

//! Tag retention (`/retentions`, one policy per project), Harbor's `RetentionPolicy`,
//! `RetentionExecution`, `RetentionExecutionTask` and `RetentionMetadata`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A selector of a rule. Tags: `kind` `doublestar`, `decoration` `matches`/`excludes`, a
/// doublestar `pattern`, `extras` `{"untagged":true}` to select untagged artifacts as well; or
/// `kind` `label`, `decoration` `withLabels`/`withoutLabels`, `pattern` label names separated
/// by commas. Repositories (`scope_selectors.repository`): `doublestar` with `repoMatches`/
/// `repoExcludes` on the name inside the project.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RetentionSelector {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub decoration: String,
    #[serde(default)]
    pub pattern: String,
    #[serde(default)]
    pub extras: String,
}

/// One rule: which artifacts it looks at (selectors) and which of them it retains (`template`
/// with its parameter in `params`, keyed by the template's name: `{"latestPushedK": 10}`).
/// Templates: `latestPushedK`, `latestPulledN`, `nDaysSinceLastPush`, `nDaysSinceLastPull`,
/// `always`. `action` is always `retain`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RetentionRule {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub template: String,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub params: BTreeMap<String, Value>,
    #[serde(default)]
    pub tag_selectors: Vec<RetentionSelector>,
    #[serde(default)]
    pub scope_selectors: BTreeMap<String, Vec<RetentionSelector>>,
}

/// When the policy runs by itself: `kind` `Schedule`, `settings` `{"cron": "0 0 0 * * *"}` (an
/// empty cron: manual only).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RetentionRuleTrigger {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub settings: Value,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub references: Value,
}

/// What the policy applies to: `level` `project`, `ref` the project's id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RetentionPolicyScope {
    #[serde(default)]
    pub level: String,
    #[serde(default, rename = "ref")]
    pub reference: i64,
}

/// A project's retention policy: an artifact is kept when any enabled rule retains it
/// (`algorithm` `or`); everything else its rules look at is deleted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RetentionPolicy {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub algorithm: String,
    #[serde(default)]
    pub rules: Vec<RetentionRule>,
    #[serde(default)]
    pub trigger: Option<RetentionRuleTrigger>,
    #[serde(default)]
    pub scope: Option<RetentionPolicyScope>,
}

/// One run of a policy. `status`: `Pending`, `Running`, `Success`, `Error`, `Stopped`
/// (Harbor's spelling); `trigger`: `MANUAL` or `SCHEDULE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RetentionExecution {
    pub id: i64,
    pub policy_id: i64,
    pub start_time: String,
    pub end_time: String,
    pub status: String,
    pub trigger: String,
    pub dry_run: bool,
}

/// One repository of an execution: how many artifacts the rules looked at (`total`) and kept
/// (`retained`). Its log (`…/tasks/{tid}`) is a table of every artifact and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RetentionExecutionTask {
    pub id: i64,
    pub execution_id: i64,
    pub repository: String,
    pub job_id: String,
    pub status: String,
    pub status_code: i64,
    pub status_revision: i64,
    pub start_time: String,
    pub end_time: String,
    pub total: i64,
    pub retained: i64,
}

/// The body of `POST /retentions/{id}/executions`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RetentionTrigger {
    #[serde(default)]
    pub dry_run: bool,
}

/// The body of `PATCH /retentions/{id}/executions/{eid}`: `{"action": "stop"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RetentionExecutionAction {
    #[serde(default)]
    pub action: String,
}

/// A parameter of a rule template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RetentionRuleParamMetadata {
    #[serde(rename = "type")]
    pub kind: String,
    pub unit: String,
    pub required: bool,
}

/// A rule template (`GET /retentions/metadatas`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RetentionRuleMetadata {
    pub rule_template: String,
    pub display_text: String,
    pub action: String,
    pub params: Vec<RetentionRuleParamMetadata>,
}

/// A selector kind and its decorations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RetentionSelectorMetadata {
    pub display_text: String,
    pub kind: String,
    pub decorations: Vec<String>,
}

/// `GET /retentions/metadatas`: the templates and selectors a policy may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RetentionMetadata {
    pub templates: Vec<RetentionRuleMetadata>,
    pub scope_selectors: Vec<RetentionSelectorMetadata>,
    pub tag_selectors: Vec<RetentionSelectorMetadata>,
}

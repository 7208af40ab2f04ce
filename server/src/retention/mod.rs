//! Tag retention: Harbor's per-project retention policy (`/retentions`), its rules, runs and
//! schedule.
//!
//! - **Policy**: one per project (`retention_policies.project_id` unique; the project's
//!   metadata `retention_id` names it, as in Harbor). Rules are Harbor's JSON, validated here
//!   ([`validate`]) and stored normalised; [`compile`] turns them into [`eval::Rule`]s.
//! - **Evaluation** is [`eval`]'s, pure: in every repository some enabled rule covers, an
//!   artifact is kept when any rule retains it; all others are deleted (Harbor's semantics).
//!   Immutable tags are never deleted (`immutable::is_immutable`, and `artifacts::write`
//!   refuses anyway).
//! - **Runs** ([`run`]): `POST …/executions` inserts the execution and queues its job in one
//!   transaction; a schedule (`schedules` kind `retention/<id>`) queues a job that creates its
//!   execution. The job's `unique_key` `retention/<id>` allows one active run per policy
//!   cluster-wide. The job makes one task per repository and works through them with the
//!   job queue's heartbeat, stop and take-back (a rerun skips finished tasks).
//! - **Deletion** is the UI's logical delete (`artifacts::write::delete_artifact_guarded` with
//!   `Guard::Unchanged`: an artifact pushed or tagged after the evaluation began is skipped,
//!   since the rules never judged it); GC reclaims the bytes and gives the quota back. Each
//!   deleted artifact gets an audit row (`delete artifact`, detail naming the execution).

pub mod eval;
pub mod run;

use std::collections::BTreeMap;

use app::rest::retention::{
    RetentionMetadata, RetentionPolicy, RetentionPolicyScope, RetentionRule, RetentionRuleMetadata,
    RetentionRuleParamMetadata, RetentionRuleTrigger, RetentionSelectorMetadata,
};
use serde_json::{json, Value};

use crate::db::{now_ms, Db};
use crate::replication::filters::Pattern;
use eval::{TagSelector, Template};

/// Harbor's limit on rules per policy.
pub const MAX_RULES: usize = 15;
/// Selectors per rule (tag + label, repository).
pub const MAX_SELECTORS: usize = 4;
pub const MAX_PATTERN_LEN: usize = 256;
/// Bounds of the rule parameters: Harbor's for days; counts go beyond Harbor's 32766 (a
/// repository of 100k artifacts may keep its newest 50k).
pub const MAX_COUNT: i64 = 10_000_000;
pub const MAX_DAYS: i64 = 20_190_904;

/// The schedule's name in `schedules`.
pub fn schedule_kind(policy_id: i64) -> String {
    format!("retention/{policy_id}")
}

/// `GET /retentions/metadatas` (Harbor's payload).
pub fn metadata() -> RetentionMetadata {
    let t = |id: &str, text: &str, unit: Option<&str>| RetentionRuleMetadata {
        rule_template: id.into(),
        display_text: text.into(),
        action: "retain".into(),
        params: unit
            .map(|u| RetentionRuleParamMetadata { kind: "int".into(), unit: u.into(), required: true })
            .into_iter()
            .collect(),
    };
    RetentionMetadata {
        templates: vec![
            t("latestPushedK", "the most recently pushed # artifacts", Some("COUNT")),
            t("latestPulledN", "the most recently pulled # artifacts", Some("COUNT")),
            t("nDaysSinceLastPush", "pushed within the last # days", Some("DAYS")),
            t("nDaysSinceLastPull", "pulled within the last # days", Some("DAYS")),
            t("always", "always", None),
        ],
        scope_selectors: vec![RetentionSelectorMetadata {
            display_text: "Repositories".into(),
            kind: "doublestar".into(),
            decorations: vec!["repoMatches".into(), "repoExcludes".into()],
        }],
        tag_selectors: vec![
            RetentionSelectorMetadata {
                display_text: "Tags".into(),
                kind: "doublestar".into(),
                decorations: vec!["matches".into(), "excludes".into()],
            },
            RetentionSelectorMetadata {
                display_text: "Labels".into(),
                kind: "label".into(),
                decorations: vec!["withLabels".into(), "withoutLabels".into()],
            },
        ],
    }
}

/// A validated policy body: its rules normalised (ids by position, `action` `retain`) and its
/// cron (empty: manual only).
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub project_id: Option<i64>,
    pub rules: Vec<RetentionRule>,
    pub cron: String,
}

fn pattern(p: &str, what: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err(format!("the {what} selector needs a pattern (** for every {what})"));
    }
    if p.len() > MAX_PATTERN_LEN {
        return Err(format!("the {what} pattern is longer than {MAX_PATTERN_LEN} bytes"));
    }
    Pattern::new(p).map(|_| ()).map_err(|e| format!("the {what} pattern: {e}"))
}

fn untagged_extra(extras: &str) -> Result<Option<bool>, String> {
    if extras.trim().is_empty() {
        return Ok(None);
    }
    let v: Value =
        serde_json::from_str(extras).map_err(|_| format!("extras {extras:?} is not a JSON object"))?;
    match v.get("untagged") {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err("extras.untagged must be true or false".into()),
    }
}

fn int_param(params: &BTreeMap<String, Value>, key: &str, max: i64) -> Result<i64, String> {
    let v = params.get(key).ok_or_else(|| format!("rule {key} needs the parameter {key:?}"))?;
    // Harbor's portal sends numbers, sometimes as strings.
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("the parameter {key} must be an integer"))?;
    if !(0..=max).contains(&n) {
        return Err(format!("the parameter {key} must be between 0 and {max}"));
    }
    Ok(n)
}

fn template_of(r: &RetentionRule) -> Result<Template, String> {
    Ok(match r.template.as_str() {
        "latestPushedK" => Template::LatestPushed(int_param(&r.params, "latestPushedK", MAX_COUNT)? as usize),
        "latestPulledN" => Template::LatestPulled(int_param(&r.params, "latestPulledN", MAX_COUNT)? as usize),
        "nDaysSinceLastPush" => {
            Template::DaysSincePush(int_param(&r.params, "nDaysSinceLastPush", MAX_DAYS)?)
        }
        "nDaysSinceLastPull" => {
            Template::DaysSincePull(int_param(&r.params, "nDaysSinceLastPull", MAX_DAYS)?)
        }
        "always" => Template::Always,
        other => {
            return Err(format!(
                "unknown rule template {other:?}: latestPushedK, latestPulledN, nDaysSinceLastPush, \
                 nDaysSinceLastPull or always"
            ))
        }
    })
}

fn check_rule(r: &RetentionRule) -> Result<RetentionRule, String> {
    if !r.action.is_empty() && r.action != "retain" {
        return Err(format!("the action must be \"retain\", not {:?}", r.action));
    }
    let template = template_of(r)?;
    if r.tag_selectors.len() > MAX_SELECTORS {
        return Err(format!("a rule has at most {MAX_SELECTORS} tag selectors"));
    }
    for s in &r.tag_selectors {
        match (s.kind.as_str(), s.decoration.as_str()) {
            ("doublestar", "matches" | "excludes") => {
                pattern(&s.pattern, "tag")?;
                untagged_extra(&s.extras)?;
            }
            ("label", "withLabels" | "withoutLabels") => {
                if s.pattern.len() > MAX_PATTERN_LEN {
                    return Err(format!("the label list is longer than {MAX_PATTERN_LEN} bytes"));
                }
                if s.pattern.split(',').any(|n| n.trim().is_empty()) {
                    return Err("a label selector needs label names separated by commas".into());
                }
            }
            (kind, decoration) => {
                return Err(format!(
                    "unknown tag selector {kind:?}/{decoration:?}: doublestar with matches or excludes, \
                     label with withLabels or withoutLabels"
                ))
            }
        }
    }
    if let Some(other) = r.scope_selectors.keys().find(|k| *k != "repository") {
        return Err(format!("unknown scope selector {other:?}: only repository"));
    }
    let repos = r.scope_selectors.get("repository").map(Vec::as_slice).unwrap_or_default();
    if repos.is_empty() || repos.len() > MAX_SELECTORS {
        return Err(format!("a rule needs 1 to {MAX_SELECTORS} repository selectors"));
    }
    for s in repos {
        if s.kind != "doublestar" || !matches!(s.decoration.as_str(), "repoMatches" | "repoExcludes") {
            return Err(format!(
                "unknown repository selector {:?}/{:?}: doublestar with repoMatches or repoExcludes",
                s.kind, s.decoration
            ));
        }
        pattern(&s.pattern, "repository")?;
    }
    let mut params = BTreeMap::new();
    if let Some(n) = template.param() {
        params.insert(template.name().to_string(), json!(n));
    }
    Ok(RetentionRule {
        id: 0,
        priority: r.priority,
        disabled: r.disabled,
        action: "retain".into(),
        template: template.name().into(),
        params,
        tag_selectors: r.tag_selectors.clone(),
        scope_selectors: r.scope_selectors.clone(),
    })
}

/// Validates Harbor's `RetentionPolicy` body (the messages are the 400's; a duplicate rule is
/// `Err(Conflict)` as Harbor's 409).
pub fn validate(p: &RetentionPolicy) -> Result<Draft, Invalid> {
    if !p.algorithm.is_empty() && p.algorithm != "or" {
        return Err(Invalid::Bad(format!("the algorithm must be \"or\", not {:?}", p.algorithm)));
    }
    let project_id = match &p.scope {
        None => None,
        Some(RetentionPolicyScope { level, reference }) => {
            if level != "project" {
                return Err(Invalid::Bad(format!("scope {level:?} is not supported: project")));
            }
            if *reference <= 0 {
                return Err(Invalid::Bad(format!("invalid project id {reference}")));
            }
            Some(*reference)
        }
    };
    if p.rules.len() > MAX_RULES {
        return Err(Invalid::Bad(format!("only {MAX_RULES} rules are allowed at most")));
    }
    let mut rules: Vec<RetentionRule> = vec![];
    for (i, r) in p.rules.iter().enumerate() {
        let mut rule = check_rule(r).map_err(|e| Invalid::Bad(format!("rule {i}: {e}")))?;
        if let Some(j) = rules.iter().position(|o| *o == rule) {
            return Err(Invalid::Conflict(format!("rule {i} is conflict with rule {j}")));
        }
        rule.id = 0;
        rules.push(rule);
    }
    for (i, r) in rules.iter_mut().enumerate() {
        r.id = i as i64;
    }
    let cron = match &p.trigger {
        None => String::new(),
        Some(RetentionRuleTrigger { kind, settings, .. }) => {
            if !kind.is_empty() && kind != "Schedule" {
                return Err(Invalid::Bad(format!("trigger kind {kind:?} is not supported: Schedule")));
            }
            match settings.get("cron") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(c)) if c.trim().is_empty() => String::new(),
                Some(Value::String(c)) => {
                    crate::jobs::parse_cron(c.trim()).map_err(Invalid::Bad)?;
                    c.trim().to_string()
                }
                Some(_) => return Err(Invalid::Bad("trigger.settings.cron must be a string".into())),
            }
        }
    };
    Ok(Draft { project_id, rules, cron })
}

#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    #[error("{0}")]
    Bad(String),
    #[error("{0}")]
    Conflict(String),
}

/// Compiles stored rules. A stored pattern that no longer compiles makes its rule keep
/// everything in every repository (fail closed: a broken rule never deletes).
pub fn compile(rules: &[RetentionRule]) -> Vec<eval::Rule> {
    let pat = |p: &str| crate::immutable::compiled(p);
    rules
        .iter()
        .map(|r| {
            let fallback = || eval::Rule {
                disabled: r.disabled,
                template: Template::Always,
                repositories: vec![],
                tags: vec![],
            };
            let Ok(template) = template_of(r) else { return fallback() };
            let mut repositories = vec![];
            for s in r.scope_selectors.get("repository").into_iter().flatten() {
                let Ok(p) = pat(&s.pattern) else { return fallback() };
                repositories.push((s.decoration == "repoExcludes", p));
            }
            let mut tags = vec![];
            for s in &r.tag_selectors {
                if s.kind == "label" {
                    tags.push(TagSelector::Labels {
                        without: s.decoration == "withoutLabels",
                        names: s.pattern.split(',').map(|n| n.trim().to_string()).collect(),
                    });
                } else {
                    let Ok(p) = pat(&s.pattern) else { return fallback() };
                    // Harbor's default: `matches` includes untagged artifacts, `excludes` not.
                    let untagged =
                        untagged_extra(&s.extras).ok().flatten().unwrap_or(s.decoration == "matches");
                    tags.push(TagSelector::Tags {
                        excludes: s.decoration == "excludes",
                        pattern: p,
                        untagged,
                    });
                }
            }
            eval::Rule { disabled: r.disabled, template, repositories, tags }
        })
        .collect()
}

/// A stored policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: i64,
    pub project_id: i64,
    pub rules: Vec<RetentionRule>,
    pub cron: String,
}

impl Policy {
    pub fn to_rest(&self) -> RetentionPolicy {
        RetentionPolicy {
            id: self.id,
            algorithm: "or".into(),
            rules: self.rules.clone(),
            trigger: Some(RetentionRuleTrigger {
                kind: "Schedule".into(),
                settings: json!({ "cron": self.cron }),
                references: json!({}),
            }),
            scope: Some(RetentionPolicyScope { level: "project".into(), reference: self.project_id }),
        }
    }
}

type Row = (i64, i64, String, String);

fn from_row((id, project_id, rules, cron): Row) -> Policy {
    Policy { id, project_id, rules: serde_json::from_str(&rules).unwrap_or_default(), cron }
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Policy>, sqlx::Error> {
    let row: Option<Row> =
        sqlx::query_as("SELECT id, project_id, rules, trigger_cron FROM retention_policies WHERE id = $1")
            .bind(id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(from_row))
}

pub async fn of_project(db: &Db, project_id: i64) -> Result<Option<Policy>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, project_id, rules, trigger_cron FROM retention_policies WHERE project_id = $1",
    )
    .bind(project_id)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(from_row))
}

/// Creates the project's policy, its `retention_id` metadata and its schedule in one
/// transaction. `None`: the project already has one (its id).
pub async fn create(db: &Db, project_id: i64, d: &Draft) -> Result<Result<i64, i64>, sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM retention_policies WHERE project_id = $1")
        .bind(project_id)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(id) = existing {
        return Ok(Err(id));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO retention_policies (project_id, algorithm, rules, trigger_cron, created_at, updated_at) \
         VALUES ($1, 'or', $2, $3, $4, $4) RETURNING id",
    )
    .bind(project_id)
    .bind(serde_json::to_string(&d.rules).unwrap_or_else(|_| "[]".into()))
    .bind(&d.cron)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM project_metadata WHERE project_id = $1 AND name = 'retention_id'")
        .bind(project_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO project_metadata (project_id, name, value) VALUES ($1, 'retention_id', $2)")
        .bind(project_id)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    schedule_in(&mut tx, id, &d.cron).await?;
    tx.commit().await?;
    Ok(Ok(id))
}

async fn schedule_in(conn: &mut sqlx::AnyConnection, id: i64, cron: &str) -> Result<(), sqlx::Error> {
    let params = json!({ "policy_id": id });
    let cron = (!cron.is_empty()).then_some((cron, &params));
    crate::jobs::set_schedule_in(conn, &schedule_kind(id), cron).await
}

/// Replaces a policy's rules and schedule. False: no such policy.
pub async fn update(db: &Db, id: i64, d: &Draft) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let r = sqlx::query(
        "UPDATE retention_policies SET rules = $2, trigger_cron = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(serde_json::to_string(&d.rules).unwrap_or_else(|_| "[]".into()))
    .bind(&d.cron)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    schedule_in(&mut tx, id, &d.cron).await?;
    tx.commit().await?;
    Ok(true)
}

/// Deletes a policy with its runs, schedule and metadata; asks its active job to stop.
pub async fn delete(db: &Db, id: i64) -> Result<bool, sqlx::Error> {
    let active: Vec<i64> = sqlx::query_scalar(
        "SELECT job_id FROM retention_executions WHERE policy_id = $1 AND status IN ('Pending', 'Running') \
         AND job_id > 0",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    let mut tx = db.begin_write().await?;
    let project_id: Option<i64> =
        sqlx::query_scalar("SELECT project_id FROM retention_policies WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(project_id) = project_id else { return Ok(false) };
    delete_rows(&mut tx, id, project_id).await?;
    tx.commit().await?;
    for job in active {
        crate::jobs::request_stop(db, job).await?;
    }
    Ok(true)
}

async fn delete_rows(conn: &mut sqlx::AnyConnection, id: i64, project_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM retention_tasks WHERE execution_id IN (SELECT id FROM retention_executions WHERE policy_id = $1)",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM retention_executions WHERE policy_id = $1").bind(id).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM retention_policies WHERE id = $1").bind(id).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM project_metadata WHERE project_id = $1 AND name = 'retention_id'")
        .bind(project_id)
        .execute(&mut *conn)
        .await?;
    crate::jobs::set_schedule_in(conn, &schedule_kind(id), None).await
}

/// Removes a project's policy inside the project's deletion.
pub async fn delete_in(conn: &mut sqlx::AnyConnection, project_id: i64) -> Result<(), sqlx::Error> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM retention_policies WHERE project_id = $1")
        .bind(project_id)
        .fetch_optional(&mut *conn)
        .await?;
    match id {
        Some(id) => delete_rows(conn, id, project_id).await,
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::rest::retention::RetentionSelector;

    fn sel(kind: &str, decoration: &str, pattern: &str, extras: &str) -> RetentionSelector {
        RetentionSelector {
            kind: kind.into(),
            decoration: decoration.into(),
            pattern: pattern.into(),
            extras: extras.into(),
        }
    }

    fn rule(template: &str, n: Option<Value>) -> RetentionRule {
        RetentionRule {
            template: template.into(),
            params: n.map(|n| BTreeMap::from([(template.to_string(), n)])).unwrap_or_default(),
            tag_selectors: vec![sel("doublestar", "matches", "**", r#"{"untagged":true}"#)],
            scope_selectors: BTreeMap::from([(
                "repository".into(),
                vec![sel("doublestar", "repoMatches", "**", "")],
            )]),
            ..Default::default()
        }
    }

    fn policy(rules: Vec<RetentionRule>, cron: &str) -> RetentionPolicy {
        RetentionPolicy {
            rules,
            trigger: Some(RetentionRuleTrigger {
                kind: "Schedule".into(),
                settings: json!({ "cron": cron }),
                references: json!({}),
            }),
            scope: Some(RetentionPolicyScope { level: "project".into(), reference: 3 }),
            ..Default::default()
        }
    }

    fn bad(p: &RetentionPolicy) -> String {
        match validate(p) {
            Err(Invalid::Bad(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn a_harbor_portal_policy_validates_and_normalises() {
        let d = validate(&policy(
            vec![rule("latestPushedK", Some(json!("10"))), rule("always", None)],
            "0 0 0 * * *",
        ))
        .unwrap();
        assert_eq!(d.project_id, Some(3));
        assert_eq!(d.cron, "0 0 0 * * *");
        assert_eq!(d.rules[0].params["latestPushedK"], json!(10));
        assert_eq!((d.rules[0].id, d.rules[1].id), (0, 1));
        assert_eq!(d.rules[1].action, "retain");
        let compiled = compile(&d.rules);
        assert_eq!(compiled[0].template, Template::LatestPushed(10));
        assert!(compiled[0].covers("a/b"));
        assert!(validate(&policy(vec![], "")).unwrap().cron.is_empty());
    }

    #[test]
    fn bad_policies_are_400s_and_duplicates_409s() {
        assert!(bad(&policy(vec![rule("latestPushedK", None)], "")).contains("needs the parameter"));
        assert!(bad(&policy(vec![rule("latestPushedK", Some(json!(-1)))], "")).contains("between 0"));
        assert!(bad(&policy(vec![rule("latestPushedK", Some(json!(20_000_000)))], "")).contains("between 0"));
        assert!(bad(&policy(vec![rule("latestPushedK", Some(json!("x")))], "")).contains("integer"));
        assert!(bad(&policy(vec![rule("nothing", None)], "")).contains("unknown rule template"));
        assert!(bad(&policy(vec![rule("always", None)], "every day")).contains("cron"));
        let mut r = rule("always", None);
        r.tag_selectors[0].pattern = "[".into();
        assert!(!bad(&policy(vec![r], "")).is_empty());
        let mut r = rule("always", None);
        r.scope_selectors.clear();
        assert!(bad(&policy(vec![r], "")).contains("repository selectors"));
        let mut r = rule("always", None);
        r.tag_selectors[0].extras = r#"{"untagged":"yes"}"#.into();
        assert!(bad(&policy(vec![r], "")).contains("untagged"));
        let mut p = policy(vec![rule("always", None)], "");
        p.scope = Some(RetentionPolicyScope { level: "system".into(), reference: 0 });
        assert!(bad(&p).contains("not supported"));
        let p = policy(vec![rule("always", None); 16], "");
        assert!(bad(&p).contains("15 rules"));
        match validate(&policy(vec![rule("always", None), rule("always", None)], "")) {
            Err(Invalid::Conflict(m)) => assert_eq!(m, "rule 1 is conflict with rule 0"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn untagged_defaults_follow_harbor() {
        let mut r = rule("always", None);
        r.tag_selectors = vec![sel("doublestar", "matches", "**", "")];
        let c = compile(&[r.clone()]);
        assert!(matches!(c[0].tags[0], TagSelector::Tags { untagged: true, .. }));
        r.tag_selectors = vec![sel("doublestar", "excludes", "x", "")];
        let c = compile(&[r.clone()]);
        assert!(matches!(c[0].tags[0], TagSelector::Tags { untagged: false, .. }));
        r.tag_selectors = vec![
            sel("doublestar", "matches", "**", r#"{"untagged":false}"#),
            sel("label", "withLabels", "a, b", ""),
        ];
        let c = compile(&[r]);
        assert!(matches!(c[0].tags[0], TagSelector::Tags { untagged: false, .. }));
        assert!(
            matches!(&c[0].tags[1], TagSelector::Labels { without: false, names } if names == &["a", "b"])
        );
    }
}

//! Tag immutability: Harbor's immutable tag rules (goharbor/harbor `src/pkg/immutable`,
//! `src/lib/selector/selectors/doublestar`), stored per project in `immutable_rules`.
//!
//! A rule has one repository selector (`repoMatches`/`repoExcludes`) and one tag selector
//! (`matches`/`excludes`), each a doublestar pattern (`replication::filters::Pattern`: `*` and
//! `?` within a path component, `**` across, `{a,b}`, `[…]`). Repository patterns match the
//! name **inside the project** (`app` of `p1/app`, as Harbor's candidates carry it). A tag is
//! immutable when any enabled rule selects both its repository and its name
//! ([`is_immutable`], a pure function retention can call as well).
//!
//! Enforcement is `artifacts::write`'s, inside the write transactions, so every surface (`/v2`
//! push and delete, REST tag/artifact/repository delete and copy, replication and the proxy
//! cache through `registry::internal`) gets it and none can skip it:
//! - a push may create an immutable tag, or re-push it to the digest it already names
//!   (idempotent); moving it to another digest is refused;
//! - deleting an immutable tag, an artifact carrying one or a repository holding one is
//!   refused.
//!
//! The refusal is `MetaError::Immutable`: Harbor's 412 `PRECONDITION` on both surfaces.
//!
//! **The rules are not cached; their compiled patterns are.** The rules are read in the write
//! transaction that could break them (one indexed query, usually returning no rows), so a rule
//! created on one replica binds every replica at once, and a concurrent push sees either the
//! rule or nothing committed. A per-project generation would cost the same query; a TTL would
//! leave a window in which an immutable tag can be overwritten. What costs is compiling the
//! globs (a regex each): 20 rules compiled per push added ~7 ms to a debug-build push, so
//! compiled patterns are kept per process by their text (`compiled`) — a pattern's meaning
//! never changes, so this cache needs no invalidation and is right on every replica. Reads
//! that only display the `immutable` flag load the project's rules once per request.

use std::collections::BTreeMap;
use std::sync::Arc;

use app::rest::immutable::{ImmutableRule, ImmutableSelector};
use serde_json::Value;

use crate::db::{now_ms, Db, Flag};
use crate::replication::filters::Pattern;

/// At most this many rules per project (Harbor's portal stops at 15).
pub const MAX_RULES: i64 = 100;
/// The longest pattern accepted.
pub const MAX_PATTERN_LEN: usize = 256;
/// The largest `params` object accepted (serialized).
pub const MAX_PARAMS_LEN: usize = 4096;

/// Harbor's one action and template for immutability rules.
pub const ACTION: &str = "immutable";
pub const TEMPLATE: &str = "immutable_template";

/// At most this many compiled patterns are kept (then the cache starts over).
const COMPILED_CAP: usize = 4096;

/// `Pattern::new`, compiled once per process and pattern text, and shared (one regex, so its
/// match caches are reused too).
pub fn compiled(text: &str) -> Result<Arc<Pattern>, String> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, Arc<Pattern>>>> =
        std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(p) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(text) {
        return Ok(p.clone());
    }
    let p = Arc::new(Pattern::new(text)?);
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    if c.len() >= COMPILED_CAP {
        c.clear();
    }
    c.insert(text.to_string(), p.clone());
    Ok(p)
}

/// A compiled selector: does the pattern match, or (excludes) not match.
#[derive(Debug, Clone)]
pub struct Selector {
    pub excludes: bool,
    pub pattern: Arc<Pattern>,
}

impl Selector {
    pub fn selects(&self, s: &str) -> bool {
        self.pattern.is_match(s) != self.excludes
    }
}

/// A stored rule, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: i64,
    pub project_id: i64,
    pub priority: i64,
    pub disabled: bool,
    pub params: Value,
    pub repository: Selector,
    pub tag: Selector,
}

/// The name patterns match: the repository's name inside its project (`p1/a/b` → `a/b`).
pub fn name_in_project(repository: &str) -> &str {
    repository.split_once('/').map(|(_, r)| r).unwrap_or(repository)
}

/// The first enabled rule that makes `tag` of `repository` (full name, `<project>/<name>`)
/// immutable; `None` when the tag may move and be deleted. `rules` are one project's.
pub fn is_immutable<'a>(rules: &'a [Rule], repository: &str, tag: &str) -> Option<&'a Rule> {
    let name = name_in_project(repository);
    rules.iter().find(|r| !r.disabled && r.repository.selects(name) && r.tag.selects(tag))
}

/// A validated rule, ready to store.
#[derive(Debug, Clone)]
pub struct Draft {
    pub priority: i64,
    pub disabled: bool,
    pub params: String,
    pub repo_decoration: String,
    pub repo_pattern: String,
    pub tag_decoration: String,
    pub tag_pattern: String,
}

fn selector(s: &ImmutableSelector, what: &str, decorations: [&str; 2]) -> Result<(), String> {
    if s.kind != "doublestar" {
        return Err(format!("the {what} selector's kind must be doublestar, not {:?}", s.kind));
    }
    if !decorations.contains(&s.decoration.as_str()) {
        return Err(format!(
            "the {what} selector's decoration must be {} or {}, not {:?}",
            decorations[0], decorations[1], s.decoration
        ));
    }
    if s.pattern.is_empty() {
        return Err(format!("the {what} selector needs a pattern (** for every {what})"));
    }
    if s.pattern.len() > MAX_PATTERN_LEN {
        return Err(format!("the {what} pattern is longer than {MAX_PATTERN_LEN} bytes"));
    }
    Pattern::new(&s.pattern)?;
    Ok(())
}

/// Validates Harbor's `ImmutableRule` body (the messages are the 400's).
pub fn validate(r: &ImmutableRule) -> Result<Draft, String> {
    if !r.action.is_empty() && r.action != ACTION {
        return Err(format!("the action must be {ACTION:?}"));
    }
    if !r.template.is_empty() && r.template != TEMPLATE {
        return Err(format!("the template must be {TEMPLATE:?}"));
    }
    let params = match &r.params {
        Value::Null => "{}".to_string(),
        v @ Value::Object(_) => v.to_string(),
        _ => return Err("params must be an object".into()),
    };
    if params.len() > MAX_PARAMS_LEN {
        return Err(format!("params is larger than {MAX_PARAMS_LEN} bytes"));
    }
    let [tag] = r.tag_selectors.as_slice() else {
        return Err("a rule needs exactly one tag selector".into());
    };
    selector(tag, "tag", ["matches", "excludes"])?;
    if let Some(other) = r.scope_selectors.keys().find(|k| *k != "repository") {
        return Err(format!("unknown scope selector {other:?}: only repository"));
    }
    let Some([repo]) = r.scope_selectors.get("repository").map(Vec::as_slice) else {
        return Err("a rule needs exactly one repository scope selector".into());
    };
    selector(repo, "repository", ["repoMatches", "repoExcludes"])?;
    Ok(Draft {
        priority: r.priority,
        disabled: r.disabled,
        params,
        repo_decoration: repo.decoration.clone(),
        repo_pattern: repo.pattern.clone(),
        tag_decoration: tag.decoration.clone(),
        tag_pattern: tag.pattern.clone(),
    })
}

#[derive(Debug, sqlx::FromRow)]
struct RuleRow {
    id: i64,
    project_id: i64,
    priority: i64,
    #[sqlx(try_from = "Flag")]
    disabled: bool,
    params: String,
    repo_decoration: String,
    repo_pattern: String,
    tag_decoration: String,
    tag_pattern: String,
}

impl RuleRow {
    fn compile(self) -> Rule {
        // Stored patterns were validated; one that no longer compiles matches everything, so
        // a broken rule protects rather than silently stopping to (fail closed).
        let pattern = |p: &str| {
            compiled(p).unwrap_or_else(|e| {
                tracing::error!(rule = self.id, error = %e, "stored immutability pattern does not compile");
                Arc::new(Pattern::new("").expect("the empty pattern compiles"))
            })
        };
        Rule {
            id: self.id,
            project_id: self.project_id,
            priority: self.priority,
            disabled: self.disabled,
            params: serde_json::from_str(&self.params).unwrap_or(Value::Object(Default::default())),
            repository: Selector {
                excludes: self.repo_decoration == "repoExcludes",
                pattern: pattern(&self.repo_pattern),
            },
            tag: Selector {
                excludes: self.tag_decoration == "excludes",
                pattern: pattern(&self.tag_pattern),
            },
        }
    }
}

const SELECT: &str = "SELECT id, project_id, priority, disabled, params, repo_decoration, repo_pattern, \
     tag_decoration, tag_pattern FROM immutable_rules";

/// A project's rules (enabled and disabled), by priority then id. Takes a transaction (the
/// writers' check) or the pool.
pub async fn rules_of<'e, E>(ex: E, project_id: i64) -> Result<Vec<Rule>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows: Vec<RuleRow> = sqlx::query_as(&format!("{SELECT} WHERE project_id = $1 ORDER BY priority, id"))
        .bind(project_id)
        .fetch_all(ex)
        .await?;
    Ok(rows.into_iter().map(RuleRow::compile).collect())
}

/// Harbor's JSON of a rule.
pub fn to_rest(r: &Rule) -> ImmutableRule {
    let sel = |s: &Selector, d: [&str; 2]| ImmutableSelector {
        kind: "doublestar".into(),
        decoration: d[s.excludes as usize].into(),
        pattern: s.pattern.text.clone(),
        extras: String::new(),
    };
    ImmutableRule {
        id: r.id,
        priority: r.priority,
        disabled: r.disabled,
        action: ACTION.into(),
        template: TEMPLATE.into(),
        params: r.params.clone(),
        tag_selectors: vec![sel(&r.tag, ["matches", "excludes"])],
        scope_selectors: BTreeMap::from([(
            "repository".to_string(),
            vec![sel(&r.repository, ["repoMatches", "repoExcludes"])],
        )]),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("an immutability rule with the same selectors already exists in this project")]
    Conflict,
    #[error("a project has at most {MAX_RULES} immutability rules")]
    TooMany,
    #[error("immutability rule not found in this project")]
    NotFound,
    #[error(transparent)]
    Db(sqlx::Error),
}

impl From<sqlx::Error> for RuleError {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::error::is_conflict(&e) {
            RuleError::Conflict
        } else {
            RuleError::Db(e)
        }
    }
}

/// One page of a project's rules and their total.
pub async fn list(db: &Db, project_id: i64, page: u64, size: u64) -> Result<(Vec<Rule>, i64), sqlx::Error> {
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM immutable_rules WHERE project_id = $1")
        .bind(project_id)
        .fetch_one(&db.pool)
        .await?;
    let offset = (page.max(1) - 1).saturating_mul(size);
    let rows: Vec<RuleRow> = sqlx::query_as(&format!(
        "{SELECT} WHERE project_id = $1 ORDER BY priority, id LIMIT {size} OFFSET {offset}"
    ))
    .bind(project_id)
    .fetch_all(&db.pool)
    .await?;
    Ok((rows.into_iter().map(RuleRow::compile).collect(), total))
}

/// A rule of the project by id.
pub async fn get(db: &Db, project_id: i64, id: i64) -> Result<Option<Rule>, sqlx::Error> {
    let row: Option<RuleRow> = sqlx::query_as(&format!("{SELECT} WHERE project_id = $1 AND id = $2"))
        .bind(project_id)
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(RuleRow::compile))
}

/// Stores a new rule; its id.
pub async fn create(db: &Db, project_id: i64, d: &Draft) -> Result<i64, RuleError> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    // The insert first (the write lock from the start), then the count it may exceed.
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO immutable_rules (project_id, priority, disabled, params, repo_decoration, repo_pattern, \
         tag_decoration, tag_pattern, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
         RETURNING id",
    )
    .bind(project_id)
    .bind(d.priority)
    .bind(d.disabled as i64)
    .bind(&d.params)
    .bind(&d.repo_decoration)
    .bind(&d.repo_pattern)
    .bind(&d.tag_decoration)
    .bind(&d.tag_pattern)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM immutable_rules WHERE project_id = $1")
        .bind(project_id)
        .fetch_one(&mut *tx)
        .await?;
    if n > MAX_RULES {
        return Err(RuleError::TooMany);
    }
    tx.commit().await?;
    Ok(id)
}

/// Replaces a rule of the project.
pub async fn update(db: &Db, project_id: i64, id: i64, d: &Draft) -> Result<(), RuleError> {
    let mut tx = db.begin_write().await?;
    let r = sqlx::query(
        "UPDATE immutable_rules SET priority = $3, disabled = $4, params = $5, repo_decoration = $6, \
         repo_pattern = $7, tag_decoration = $8, tag_pattern = $9, updated_at = $10 \
         WHERE project_id = $1 AND id = $2",
    )
    .bind(project_id)
    .bind(id)
    .bind(d.priority)
    .bind(d.disabled as i64)
    .bind(&d.params)
    .bind(&d.repo_decoration)
    .bind(&d.repo_pattern)
    .bind(&d.tag_decoration)
    .bind(&d.tag_pattern)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 0 {
        return Err(RuleError::NotFound);
    }
    tx.commit().await?;
    Ok(())
}

/// Deletes a rule of the project; false when there was none.
pub async fn delete(db: &Db, project_id: i64, id: i64) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let r = sqlx::query("DELETE FROM immutable_rules WHERE project_id = $1 AND id = $2")
        .bind(project_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(r.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(repo: (&str, &str), tag: (&str, &str), disabled: bool) -> Rule {
        Rule {
            id: 1,
            project_id: 1,
            priority: 0,
            disabled,
            params: Value::Null,
            repository: Selector { excludes: repo.0 == "repoExcludes", pattern: compiled(repo.1).unwrap() },
            tag: Selector { excludes: tag.0 == "excludes", pattern: compiled(tag.1).unwrap() },
        }
    }

    fn immutable(r: &Rule, repo: &str, tag: &str) -> bool {
        is_immutable(std::slice::from_ref(r), repo, tag).is_some()
    }

    #[test]
    fn patterns_follow_harbors_doublestar() {
        let r = rule(("repoMatches", "**"), ("matches", "v*"), false);
        assert!(immutable(&r, "p1/app", "v1"));
        assert!(immutable(&r, "p1/a/b/c", "v1.2.3"));
        assert!(!immutable(&r, "p1/app", "latest"));
        // `*` stays within a path component, `**` spans them; the project is not part of it.
        let r = rule(("repoMatches", "team/*"), ("matches", "**"), false);
        assert!(immutable(&r, "p1/team/app", "x"));
        assert!(!immutable(&r, "p1/team/a/b", "x"));
        assert!(!immutable(&r, "p1/app", "x"));
        assert!(!immutable(&r, "team/app", "x"), "the first component is the project");
        let r = rule(("repoMatches", "team/**"), ("matches", "**"), false);
        assert!(immutable(&r, "p1/team/a/b", "x"));
        // Alternatives, classes and `?`.
        let r = rule(("repoMatches", "{app,web}"), ("matches", "{v1.*,release-[0-9]}"), false);
        assert!(immutable(&r, "p1/app", "v1.0"));
        assert!(immutable(&r, "p1/web", "release-7"));
        assert!(!immutable(&r, "p1/api", "v1.0"));
        assert!(!immutable(&r, "p1/app", "release-x"));
        assert!(!immutable(&r, "p1/app", "v2.0"));
        let r = rule(("repoMatches", "ap?"), ("matches", "1.?"), false);
        assert!(immutable(&r, "p1/app", "1.2"));
        assert!(!immutable(&r, "p1/appp", "1.2"));
        assert!(!immutable(&r, "p1/app", "1.23"));
        // A literal pattern matches only itself.
        let r = rule(("repoMatches", "app"), ("matches", "latest"), false);
        assert!(immutable(&r, "p1/app", "latest"));
        assert!(!immutable(&r, "p1/app", "latest2"));
    }

    #[test]
    fn compiled_patterns_are_shared_and_equal_to_fresh_ones() {
        let a = compiled("team/**").unwrap();
        let b = compiled("team/**").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        for s in ["team/a", "team/a/b", "other/a", "team"] {
            assert_eq!(a.is_match(s), Pattern::new("team/**").unwrap().is_match(s), "{s}");
            assert_eq!(a.is_match(s), b.is_match(s), "{s}");
        }
        assert!(compiled("a[").is_err());
    }

    #[test]
    fn excludes_decorations_invert_the_match() {
        let r = rule(("repoExcludes", "dev/**"), ("excludes", "*-snapshot"), false);
        assert!(immutable(&r, "p1/app", "v1"));
        assert!(!immutable(&r, "p1/app", "v1-snapshot"));
        assert!(!immutable(&r, "p1/dev/app", "v1"));
        assert!(!immutable(&r, "p1/dev/app", "v1-snapshot"));
    }

    #[test]
    fn disabled_rules_protect_nothing_and_any_rule_suffices() {
        let off = rule(("repoMatches", "**"), ("matches", "**"), true);
        assert!(!immutable(&off, "p1/app", "v1"));
        let mut on = rule(("repoMatches", "app"), ("matches", "v1"), false);
        on.id = 2;
        let rules = [off, on];
        assert_eq!(is_immutable(&rules, "p1/app", "v1").map(|r| r.id), Some(2));
        assert!(is_immutable(&rules, "p1/app", "v2").is_none());
        assert!(is_immutable(&[], "p1/app", "v1").is_none());
    }

    fn body(tag: (&str, &str), repo: (&str, &str)) -> ImmutableRule {
        ImmutableRule {
            id: 0,
            priority: 0,
            disabled: false,
            action: "immutable".into(),
            template: "immutable_template".into(),
            params: Value::Null,
            tag_selectors: vec![ImmutableSelector {
                kind: "doublestar".into(),
                decoration: tag.0.into(),
                pattern: tag.1.into(),
                extras: String::new(),
            }],
            scope_selectors: BTreeMap::from([(
                "repository".to_string(),
                vec![ImmutableSelector {
                    kind: "doublestar".into(),
                    decoration: repo.0.into(),
                    pattern: repo.1.into(),
                    extras: String::new(),
                }],
            )]),
        }
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(validate(&body(("matches", "v*"), ("repoMatches", "**"))).is_ok());
        assert!(validate(&body(("excludes", "v*"), ("repoExcludes", "a/**"))).is_ok());
        let err = |b: &ImmutableRule| validate(b).unwrap_err();
        assert!(err(&body(("repoMatches", "v*"), ("repoMatches", "**"))).contains("decoration"));
        assert!(err(&body(("matches", "v*"), ("matches", "**"))).contains("decoration"));
        assert!(err(&body(("matches", ""), ("repoMatches", "**"))).contains("pattern"));
        assert!(err(&body(("matches", "v["), ("repoMatches", "**"))).contains("invalid pattern"));
        assert!(err(&body(("matches", &"a".repeat(300)), ("repoMatches", "**"))).contains("longer"));
        let mut b = body(("matches", "v*"), ("repoMatches", "**"));
        b.tag_selectors[0].kind = "label".into();
        assert!(err(&b).contains("doublestar"));
        let mut b = body(("matches", "v*"), ("repoMatches", "**"));
        b.tag_selectors.clear();
        assert!(err(&b).contains("exactly one tag"));
        let mut b = body(("matches", "v*"), ("repoMatches", "**"));
        b.scope_selectors.clear();
        assert!(err(&b).contains("exactly one repository"));
        let mut b = body(("matches", "v*"), ("repoMatches", "**"));
        b.scope_selectors.insert("namespace".into(), vec![]);
        assert!(err(&b).contains("unknown scope"));
        let mut b = body(("matches", "v*"), ("repoMatches", "**"));
        b.action = "retain".into();
        assert!(err(&b).contains("action"));
        let mut b = body(("matches", "v*"), ("repoMatches", "**"));
        b.params = Value::from(3);
        assert!(err(&b).contains("params"));
        // Harbor's defaults for action and template.
        let mut b = body(("matches", "v*"), ("repoMatches", "**"));
        b.action.clear();
        b.template.clear();
        assert!(validate(&b).is_ok());
    }

    #[test]
    fn rules_round_trip_to_harbors_json() {
        let r = rule(("repoExcludes", "dev/**"), ("matches", "v*"), true);
        let j = serde_json::to_value(to_rest(&r)).unwrap();
        assert_eq!(j["action"], "immutable");
        assert_eq!(j["template"], "immutable_template");
        assert_eq!(j["disabled"], true);
        assert_eq!(j["tag_selectors"][0]["decoration"], "matches");
        assert_eq!(j["tag_selectors"][0]["pattern"], "v*");
        assert_eq!(j["scope_selectors"]["repository"][0]["decoration"], "repoExcludes");
        assert_eq!(j["scope_selectors"]["repository"][0]["kind"], "doublestar");
    }
}

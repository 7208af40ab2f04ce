//! What a run replicates: the resources a policy's filters select, each with its destination
//! name, as `TaskSpec`s (one per artifact).
//!
//! - **Push-based** (this registry → remote): artifacts come from the database
//!   (`local_resources`), never from a walk of storage or of all history: name patterns become
//!   `=`/`LIKE` prefilters on `repositories.name`, a tag pattern with a literal prefix an
//!   `EXISTS` on `tags`, and the exact doublestar check runs on the candidate rows only.
//!   Accessories (a `subject`) travel with their subject and untagged index children with
//!   their index, so neither gets a task of its own.
//! - **Pull-based** (remote → this registry): the source adapter lists repositories (asked
//!   with the name filter) and their tags; each kept tag is one task, copied by tag (the copy
//!   compares digests first, so an unchanged tag moves nothing).
//! - **Event-based**: the one artifact of the event (a deletion when `replicate_deletion`).

use std::collections::HashMap;

use crate::db::query::{Sql, Stmt};
use crate::state::AppState;

use super::execution::{name_prefilter, EventParams, TaskSpec};
use super::filters::{Decoration, Filters};
use super::policy::{self, Policy};

/// The tasks of a run. The error is the run's `status_text`.
pub async fn resources(
    state: &AppState,
    policy: &Policy,
    event: Option<&EventParams>,
) -> Result<Vec<TaskSpec>, String> {
    let filters = policy.compiled_filters().map_err(|e| format!("invalid filters: {e}"))?;
    let found = match (policy.push_based(), event) {
        (true, Some(ev)) => event_resources(state, policy, &filters, ev).await.map_err(db_error)?,
        (true, None) => local_resources(state, &filters).await.map_err(db_error)?,
        (false, _) => remote_resources(state, policy, &filters).await?,
    };
    let mut specs = Vec::with_capacity(found.len());
    for mut spec in found {
        spec.dst_repo = policy::dest_repository(policy, &spec.src_repo)?;
        specs.push(spec);
    }
    Ok(specs)
}

fn db_error(e: sqlx::Error) -> String {
    format!("database error while listing resources: {e}")
}

fn resource_type(kind: &str) -> String {
    if kind == "IMAGE" { "image" } else { "artifact" }.to_string()
}

/// This registry's artifacts the filters keep.
pub async fn local_resources(state: &AppState, filters: &Filters) -> Result<Vec<TaskSpec>, sqlx::Error> {
    let mut conds = Sql::new();
    conds.push_raw("a.subject IS NULL");
    // Untagged children of an index go with the index.
    conds.push_raw(
        "(EXISTS (SELECT 1 FROM tags t WHERE t.artifact_id = a.id) OR NOT EXISTS (SELECT 1 FROM \
         artifact_children c JOIN artifacts p ON p.id = c.parent_id WHERE p.repository_id = a.repository_id \
         AND c.child_digest = a.digest))",
    );
    let mut repo_conds = Sql::new();
    for p in &filters.names {
        name_prefilter(&mut repo_conds, "r.name", p);
    }
    conds.extend(repo_conds.clone());
    for (p, d) in &filters.tags {
        if *d == Decoration::Matches && !p.like_prefix().is_empty() {
            let mut t = Sql::new();
            name_prefilter(&mut t, "t.name", p);
            let clause = format!(
                "EXISTS (SELECT 1 FROM tags t WHERE t.artifact_id = a.id AND {})",
                t.clauses.join(" AND ")
            );
            conds.push_all(&clause, t.binds);
        }
    }
    let mut s = Stmt::new(
        "SELECT a.id, r.name, a.digest, a.media_type, a.artifact_type FROM artifacts a \
         JOIN repositories r ON r.id = a.repository_id",
    );
    s.where_(&conds).push(" ORDER BY r.name, a.id");
    let rows: Vec<(i64, String, String, String, String)> = s.query_as().fetch_all(&state.db.pool).await?;
    let mut t =
        Stmt::new("SELECT t.artifact_id, t.name FROM tags t JOIN repositories r ON r.id = t.repository_id");
    t.where_(&repo_conds).push(" ORDER BY t.name");
    let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
    for (id, name) in t.query_as::<(i64, String)>().fetch_all(&state.db.pool).await? {
        tags.entry(id).or_default().push(name);
    }
    // The candidates' labels (by name), only when a label filter needs them.
    let labels = if filters.labels.is_empty() {
        HashMap::new()
    } else {
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        crate::labels::names_of(&state.db, &ids).await?
    };
    let mut out = vec![];
    for (id, repo, digest, media_type, artifact_type) in rows {
        if !filters.repository_matches(&repo) {
            continue;
        }
        let kind = crate::artifacts::kind(&media_type, &artifact_type);
        if !filters.resource_matches(kind)
            || !filters.labels_match(labels.get(&id).map(Vec::as_slice).unwrap_or(&[]))
        {
            continue;
        }
        let Some(kept) = filters.filter_tags(tags.get(&id).map(Vec::as_slice).unwrap_or(&[])) else {
            continue;
        };
        out.push(TaskSpec {
            operation: "copy".into(),
            resource_type: resource_type(kind),
            src_repo: repo,
            src_ref: digest.clone(),
            dst_repo: String::new(),
            tags: kept,
            digest,
        });
    }
    Ok(out)
}

/// The artifact of an event, when the filters keep it.
async fn event_resources(
    state: &AppState,
    policy: &Policy,
    filters: &Filters,
    ev: &EventParams,
) -> Result<Vec<TaskSpec>, sqlx::Error> {
    if !super::execution::event_passes(filters, ev) {
        return Ok(vec![]);
    }
    let by_digest = ev.reference.contains(':');
    let tags: Vec<String> = if by_digest { vec![] } else { vec![ev.reference.clone()] };
    if ev.kind == "delete" {
        // The deleted artifact's labels are gone with it: a label filter that must match
        // keeps nothing, as before labels existed.
        if !policy.replicate_deletion || filters.excludes_everything() {
            return Ok(vec![]);
        }
        return Ok(vec![TaskSpec {
            operation: "deletion".into(),
            resource_type: "artifact".into(),
            src_repo: ev.repository.clone(),
            src_ref: ev.reference.clone(),
            dst_repo: String::new(),
            tags,
            digest: if by_digest { ev.reference.clone() } else { String::new() },
        }]);
    }
    let row: Option<(i64, String, String, String)> = sqlx::query_as(
        "SELECT a.id, a.digest, a.media_type, a.artifact_type FROM artifacts a JOIN repositories r ON r.id = a.repository_id \
         WHERE r.name = $1 AND (a.digest = $2 OR a.id IN (SELECT t.artifact_id FROM tags t \
         WHERE t.repository_id = r.id AND t.name = $2))",
    )
    .bind(&ev.repository)
    .bind(&ev.reference)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some((id, digest, media_type, artifact_type)) = row else { return Ok(vec![]) };
    let kind = crate::artifacts::kind(&media_type, &artifact_type);
    if !filters.resource_matches(kind) {
        return Ok(vec![]);
    }
    if !filters.labels.is_empty() {
        let labels = crate::labels::names_of(&state.db, &[id]).await?;
        if !filters.labels_match(labels.get(&id).map(Vec::as_slice).unwrap_or(&[])) {
            return Ok(vec![]);
        }
    }
    Ok(vec![TaskSpec {
        operation: "copy".into(),
        resource_type: resource_type(kind),
        src_repo: ev.repository.clone(),
        src_ref: digest.clone(),
        dst_repo: String::new(),
        tags,
        digest,
    }])
}

/// The source registry's tags the filters keep, one task per tag.
async fn remote_resources(
    state: &AppState,
    policy: &Policy,
    filters: &Filters,
) -> Result<Vec<TaskSpec>, String> {
    // The source's labels are not listed by the adapters: its artifacts count as unlabelled.
    if filters.excludes_everything() {
        return Ok(vec![]);
    }
    let id = policy.remote_id();
    let adapter =
        state.replication.adapter(state, id).await.map_err(|e| format!("source registry {id}: {e}"))?;
    let keep = |name: &str| filters.repository_matches(name);
    let repos = adapter.repositories(&keep).await.map_err(|e| format!("listing the source registry: {e}"))?;
    let mut out = vec![];
    for repo in repos {
        if !filters.repository_matches(&repo.name) {
            continue;
        }
        let mut tags = repo.tags.clone();
        tags.sort();
        for tag in tags {
            let Some(kept) = filters.filter_tags(std::slice::from_ref(&tag)) else { continue };
            if kept.is_empty() {
                continue;
            }
            out.push(TaskSpec {
                operation: "copy".into(),
                resource_type: "artifact".into(),
                src_repo: repo.name.clone(),
                src_ref: tag.clone(),
                dst_repo: String::new(),
                tags: kept,
                digest: String::new(),
            });
        }
    }
    Ok(out)
}

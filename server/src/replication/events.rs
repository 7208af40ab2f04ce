//! The `REPLICATION` webhook: when a run ends, each local project it read from (push-based) or
//! wrote to (pull-based) hears of it, with Harbor's `replication` event data.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{endpoints, execution, policy};
use crate::state::AppState;
use crate::webhook::payload::Emitted;

/// Artifacts listed per outcome in one event at most.
const MAX_LISTED: usize = 1000;

fn resource(r: Option<&endpoints::Registry>, host: &str, namespace: &str) -> Value {
    match r {
        Some(r) => {
            json!({"registry_name": r.name, "registry_type": r.kind, "endpoint": r.url, "namespace": namespace})
        }
        None => {
            json!({"registry_name": "Local", "registry_type": "harbor", "endpoint": host, "namespace": namespace})
        }
    }
}

/// Queues the webhook events of a run that just ended.
pub async fn notify_finished(state: &AppState, execution_id: i64) -> Result<(), sqlx::Error> {
    let db = &state.db;
    let Some(exec) = execution::get(db, execution_id).await? else { return Ok(()) };
    let Some(p) = policy::get(db, exec.policy_id).await? else { return Ok(()) };
    let tasks: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT status, resource_type, src_resource, dst_resource FROM replication_tasks WHERE execution_id = $1 \
         ORDER BY id LIMIT 10000",
    )
    .bind(execution_id)
    .fetch_all(&db.pool)
    .await?;
    // The local side: the source of a push-based policy, the destination of a pull-based one.
    let pull_based = p.src_registry_id.is_some();
    let mut by_project: BTreeMap<String, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
    for (status, kind, src, dst) in &tasks {
        let local = if pull_based { dst } else { src };
        let Some((project, _)) = local.split_once('/') else { continue };
        let entry = by_project.entry(project.to_string()).or_default();
        let item = json!({"type": kind, "status": status, "name_tag": local, "references": [src]});
        let list = if status == "Succeed" { &mut entry.0 } else { &mut entry.1 };
        if list.len() < MAX_LISTED {
            list.push(item);
        }
    }
    let src = match p.src_registry_id {
        Some(id) => endpoints::get(db, id).await?,
        None => None,
    };
    let dst = match p.dest_registry_id {
        Some(id) => endpoints::get(db, id).await?,
        None => None,
    };
    let host = state.audit.webhooks.host().to_string();
    for (project, (ok, failed)) in by_project {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM projects WHERE name = $1")
            .bind(&project)
            .fetch_optional(&db.pool)
            .await?;
        let Some(id) = id else { continue };
        let data = json!({
            "harbor_hostname": host,
            "job_status": exec.status,
            "description": p.description,
            "override_mode": p.override_existing,
            "trigger_type": exec.trigger,
            "policy_creator": p.created_by,
            "execution_timestamp": exec.start_time / 1000,
            "src_resource": resource(src.as_ref(), &host, &project),
            "dest_resource": resource(dst.as_ref(), &host, if p.dest_namespace.is_empty() { &project } else { &p.dest_namespace }),
            "successful_artifact": ok,
            "failed_artifact": failed,
            "execution_id": exec.id,
        });
        state.audit.notify(Emitted::new(id, "REPLICATION", &p.created_by).data("replication", data));
    }
    Ok(())
}

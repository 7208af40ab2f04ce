//! What a webhook says: events in Harbor's payload (`type`, `occur_at`, `operator`,
//! `event_data`), and their CloudEvents 1.0 form (Harbor's `harbor.artifact.pushed` … types).

use serde_json::{json, Map, Value};

use crate::audit;

/// An event on its way to the policies that want it.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted {
    pub project_id: i64,
    pub event_type: &'static str,
    pub operator: String,
    pub occur_at_ms: i64,
    /// The repository (`project/name`) the event is about; its details (`repository` in
    /// `event_data`) are looked up when a policy wants the event.
    pub repository: Option<String>,
    /// Harbor's `resources`: `digest`, `tag`, `resource_url`.
    pub resources: Vec<Value>,
    /// Other members of `event_data` (`replication`, `retention`, `custom_attributes`).
    pub data: Map<String, Value>,
}

impl Emitted {
    pub fn new(project_id: i64, event_type: &'static str, operator: &str) -> Emitted {
        Emitted {
            project_id,
            event_type,
            operator: operator.to_string(),
            occur_at_ms: crate::db::now_ms(),
            repository: None,
            resources: vec![],
            data: Map::new(),
        }
    }

    pub fn data(mut self, key: &str, v: Value) -> Emitted {
        self.data.insert(key.to_string(), v);
        self
    }

    pub fn repository(mut self, name: &str) -> Emitted {
        self.repository = Some(name.to_string());
        self
    }

    pub fn resource(mut self, host: &str, repository: &str, digest: &str, tag: &str) -> Emitted {
        self.resources.push(resource(host, repository, digest, tag));
        self
    }
}

/// Harbor's resource: the tag, or the digest when there is none, in `resource_url`.
pub fn resource(host: &str, repository: &str, digest: &str, tag: &str) -> Value {
    let url = if tag.is_empty() {
        format!("{host}/{repository}@{digest}")
    } else {
        format!("{host}/{repository}:{tag}")
    };
    let mut r = Map::new();
    if !digest.is_empty() {
        r.insert("digest".into(), json!(digest));
    }
    if !tag.is_empty() {
        r.insert("tag".into(), json!(tag));
    }
    r.insert("resource_url".into(), json!(url));
    Value::Object(r)
}

/// The webhook event of an audit row: a successful push, pull or deletion of an artifact.
pub fn from_audit(e: &audit::Event, host: &str) -> Option<Emitted> {
    if !e.success || e.resource_type != "artifact" {
        return None;
    }
    let project_id = e.project_id?;
    let event_type = match e.operation.as_str() {
        "create" => "PUSH_ARTIFACT",
        "pull" => "PULL_ARTIFACT",
        "delete" => "DELETE_ARTIFACT",
        _ => return None,
    };
    let (repository, digest, tag) = match e.resource.split_once('@') {
        Some((repo, digest)) => (repo, digest, ""),
        None => {
            let (repo, tag) = e.resource.rsplit_once(':')?;
            // Push and pull rows carry the digest in their detail.
            let digest =
                if e.detail.contains(':') && !e.detail.contains(' ') { e.detail.as_str() } else { "" };
            (repo, digest, tag)
        }
    };
    let mut m = Emitted::new(project_id, event_type, &e.username)
        .repository(repository)
        .resource(host, repository, digest, tag);
    m.occur_at_ms = e.op_time;
    Some(m)
}

/// Harbor's `repository` member.
pub fn repository(full_name: &str, created_at_ms: i64, public: bool) -> Value {
    let (namespace, name) = full_name.split_once('/').unwrap_or(("", full_name));
    json!({
        "date_created": created_at_ms / 1000,
        "name": name,
        "namespace": namespace,
        "repo_full_name": full_name,
        "repo_type": if public { "public" } else { "private" },
    })
}

/// Harbor's default payload of an event (`repository` already looked up, or `None`).
pub fn harbor(e: &Emitted, repository: Option<Value>) -> Value {
    let mut data = e.data.clone();
    if !e.resources.is_empty() {
        data.insert("resources".into(), Value::Array(e.resources.clone()));
    }
    if let Some(r) = repository {
        data.insert("repository".into(), r);
    }
    json!({
        "type": e.event_type,
        "occur_at": e.occur_at_ms / 1000,
        "operator": e.operator,
        "event_data": data,
    })
}

/// Harbor's CloudEvents type of an event type.
pub fn cloudevents_type(event_type: &str) -> String {
    let t = match event_type {
        "PUSH_ARTIFACT" => "artifact.pushed",
        "PULL_ARTIFACT" => "artifact.pulled",
        "DELETE_ARTIFACT" => "artifact.deleted",
        "QUOTA_EXCEED" => "quota.exceeded",
        "QUOTA_WARNING" => "quota.warned",
        "REPLICATION" => "replication.status.changed",
        "TAG_RETENTION" => "tag_retention.finished",
        other => return format!("harbor.{}", other.to_ascii_lowercase()),
    };
    format!("harbor.{t}")
}

/// The CloudEvents 1.0 structured form (`application/cloudevents+json`) of a stored payload.
pub fn cloudevent(payload: &Value, event_id: &str, project_id: i64, policy_id: i64) -> Value {
    let time = payload["occur_at"].as_i64().unwrap_or(0);
    json!({
        "specversion": "1.0",
        "id": event_id,
        "source": format!("/projects/{project_id}/webhook/policies/{policy_id}"),
        "type": cloudevents_type(payload["type"].as_str().unwrap_or("")),
        "datacontenttype": "application/json",
        "time": crate::db::rfc3339(time * 1000).replace(".000Z", "Z"),
        "data": payload["event_data"],
        "operator": payload["operator"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(op: &str, resource: &str, detail: &str) -> audit::Event {
        audit::Event::new("alice", op, "artifact", resource).project(3).detail(detail)
    }

    #[test]
    fn audit_rows_become_harbor_resources() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let push = from_audit(&ev("create", "p1/app:v1", d), "reg.example").unwrap();
        assert_eq!(push.event_type, "PUSH_ARTIFACT");
        assert_eq!(push.repository.as_deref(), Some("p1/app"));
        assert_eq!(
            push.resources,
            vec![json!({"digest": d, "tag": "v1", "resource_url": "reg.example/p1/app:v1"})]
        );
        let del = from_audit(&ev("delete", &format!("p1/app@{d}"), ""), "reg.example").unwrap();
        assert_eq!(del.event_type, "DELETE_ARTIFACT");
        assert_eq!(
            del.resources,
            vec![json!({"digest": d, "resource_url": format!("reg.example/p1/app@{d}")})]
        );
        // Not artifacts, failures and other operations are no events.
        assert!(from_audit(&audit::Event::new("a", "delete", "tag", "p1/app:v1").project(3), "h").is_none());
        assert!(from_audit(&ev("create", "p1/app:v1", d).failed(), "h").is_none());
        assert!(from_audit(&ev("update", "p1/app:v1", d), "h").is_none());
        assert!(from_audit(&audit::Event::new("a", "pull", "artifact", "p1/app:v1"), "h").is_none());
    }

    #[test]
    fn payloads_follow_harbor() {
        let mut e =
            Emitted::new(3, "PULL_ARTIFACT", "admin").resource("h", "library/busybox", "sha256:ab", "");
        e.occur_at_ms = 1_678_082_303_500;
        let p = harbor(&e, Some(repository("library/busybox", 1_677_053_165_000, true)));
        assert_eq!(
            p,
            json!({"type": "PULL_ARTIFACT", "occur_at": 1_678_082_303, "operator": "admin", "event_data": {
                "resources": [{"digest": "sha256:ab", "resource_url": "h/library/busybox@sha256:ab"}],
                "repository": {"date_created": 1_677_053_165, "name": "busybox", "namespace": "library",
                    "repo_full_name": "library/busybox", "repo_type": "public"}}})
        );
        let ce = cloudevent(&p, "id-1", 3, 7);
        assert_eq!(ce["type"], "harbor.artifact.pulled");
        assert_eq!(ce["source"], "/projects/3/webhook/policies/7");
        assert_eq!(ce["time"], "2023-03-06T05:58:23Z");
        assert_eq!(ce["data"], p["event_data"]);
        assert_eq!(ce["operator"], "admin");
        for t in super::super::EVENT_TYPES {
            assert!(!cloudevents_type(t).contains('_') || t == "TAG_RETENTION", "{t}");
        }
    }
}

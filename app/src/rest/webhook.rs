//! Webhooks (`/projects/{p}/webhook/*`), Harbor's shapes: a project's policies say which events
//! go to which HTTP targets; each event a policy receives is an execution, with one task per
//! target (the delivery, retried with backoff).

use serde::{Deserialize, Serialize};

/// Where a policy delivers: `type` `http` (the only notify type), `address` an http(s) URL,
/// `auth_header` sent as `Authorization` (write-only: listed as `""` once set, and a `""` in an
/// update keeps the stored one), `payload_format` `Default` or `CloudEvents`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WebhookTargetObject {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub auth_header: String,
    #[serde(default)]
    pub skip_cert_verify: bool,
    #[serde(default)]
    pub payload_format: String,
}

/// Harbor's `WebhookPolicy`: the body of create and update, and a listed policy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WebhookPolicy {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub project_id: i64,
    #[serde(default)]
    pub targets: Vec<WebhookTargetObject>,
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub creator: String,
    #[serde(default)]
    pub creation_time: String,
    #[serde(default)]
    pub update_time: String,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// The formats one notify type can send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PayloadFormat {
    pub notify_type: String,
    pub formats: Vec<String>,
}

/// `GET /projects/{p}/webhook/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SupportedWebhookEventTypes {
    pub event_type: Vec<String>,
    pub notify_type: Vec<String>,
    pub payload_formats: Vec<PayloadFormat>,
}

/// `GET /projects/{p}/webhook/lasttrigger`: per policy and event type, when it last fired
/// (Harbor's zero time when never).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WebhookLastTrigger {
    pub policy_name: String,
    pub event_type: String,
    pub enabled: bool,
    pub creation_time: String,
    pub last_trigger_time: String,
}

/// One event a policy received (Harbor's `Execution`, `vendor_type` `WEBHOOK`, `vendor_id` the
/// policy). `status`: `Pending`, `Running` (a delivery is being retried), `Success`, `Error`,
/// `Stopped`. `extra_attrs` holds `event_type`, the event's `id` (its idempotency id, sent with
/// every delivery) and the `payload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WebhookExecution {
    pub id: i64,
    pub vendor_type: String,
    pub vendor_id: i64,
    pub status: String,
    pub status_message: String,
    pub trigger: String,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub extra_attrs: serde_json::Value,
    pub start_time: String,
    pub end_time: String,
}

/// One delivery of an execution to one target (Harbor's `Task`). `run_count` is the number of
/// attempts; `extra_attrs` holds the target's `address` and `payload_format`, and
/// `next_attempt` while a retry is due.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WebhookTask {
    pub id: i64,
    pub execution_id: i64,
    pub status: String,
    pub status_message: String,
    pub run_count: i32,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub extra_attrs: serde_json::Value,
    pub creation_time: String,
    pub update_time: String,
    pub start_time: String,
    pub end_time: String,
}

//! Labels (`/labels`, and on artifacts `…/artifacts/{reference}/labels`), Harbor's `Label`.

use serde::{Deserialize, Serialize};

/// Harbor's `Label`: `scope` `g` (global, `project_id` 0) or `p` (the project's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Label {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub color: String,
    pub scope: String,
    pub project_id: i64,
    pub creation_time: String,
    pub update_time: String,
}

/// The body of `POST /labels` and `PUT /labels/{id}` (Harbor takes a `Label`; on update only
/// `name`, `description` and `color` change).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LabelReq {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub color: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub project_id: i64,
}

/// The body of `POST …/artifacts/{reference}/labels`: the label's id (Harbor sends a `Label`;
/// only `id` is read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LabelRef {
    pub id: i64,
}

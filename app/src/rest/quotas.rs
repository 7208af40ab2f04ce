//! Harbor's quota JSON (`/quotas`, tag `quota`): one quota per project, storage only.

use serde::{Deserialize, Serialize};

use crate::rest::projects::ResourceAmount;

/// What a quota is for (Harbor's `QuotaRefObject` for a project).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct QuotaRef {
    /// The project's id.
    pub id: i64,
    /// The project's name.
    pub name: String,
    pub owner_name: String,
}

/// Harbor's `Quota`: `hard.storage` is the limit in bytes (-1: unlimited), `used.storage` the
/// bytes the project's blobs take, each blob once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Quota {
    pub id: i64,
    #[serde(rename = "ref")]
    pub reference: QuotaRef,
    pub hard: ResourceAmount,
    pub used: ResourceAmount,
    pub creation_time: String,
    pub update_time: String,
}

/// Harbor's `QuotaUpdateReq`: the new hard limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct QuotaUpdateReq {
    pub hard: ResourceAmount,
}

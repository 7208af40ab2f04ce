//! Registry endpoints (`/registries`) and registry types (`/replication/adapters`,
//! `/replication/adapterinfos`), in Harbor's shapes. A stored secret is never sent back:
//! `credential.access_secret` is `*****` when one is set and empty otherwise.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a response shows instead of a stored secret.
pub const MASKED_SECRET: &str = "*****";

/// Harbor's `RegistryCredential` as answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RegistryCredential {
    /// `basic`, `oauth` or empty.
    #[serde(rename = "type")]
    pub kind: String,
    pub access_key: String,
    /// `*****` when a secret is stored, empty otherwise; never the secret.
    pub access_secret: String,
}

/// Harbor's `Registry` as answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Registry {
    pub id: i64,
    pub url: String,
    pub name: String,
    pub credential: RegistryCredential,
    /// The registry type (`harbor`, `docker-registry`, …; see `/replication/adapters`).
    #[serde(rename = "type")]
    pub kind: String,
    pub insecure: bool,
    /// Omitted when none is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    pub description: String,
    /// `healthy`, `unhealthy` or `unknown` (never checked since the last change).
    pub status: String,
    pub creation_time: String,
    pub update_time: String,
}

/// The credential of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RegistryCredentialReq {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub access_key: String,
    #[serde(default)]
    pub access_secret: String,
}

/// The body of `POST /registries` (Harbor's `Registry`; `id`, `status` and times are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RegistryReq {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub credential: Option<RegistryCredentialReq>,
    #[serde(default)]
    pub insecure: bool,
    #[serde(default)]
    pub ca_certificate: Option<String>,
}

/// Harbor's `RegistryUpdate` (`PUT /registries/{id}`): absent fields are unchanged. Without
/// `access_secret` the stored secret is kept, unless `url` changes (then it is dropped).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RegistryUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub credential_type: Option<String>,
    pub access_key: Option<String>,
    pub access_secret: Option<String>,
    pub insecure: Option<bool>,
    pub ca_certificate: Option<String>,
}

/// Harbor's `RegistryPing` (`POST /registries/ping`): a stored registry by `id` (its URL and
/// TLS settings; the credential fields given replace the stored ones, an absent
/// `access_secret` uses the stored secret), or new settings by `type` and `url`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RegistryPing {
    pub id: Option<i64>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub url: Option<String>,
    pub credential_type: Option<String>,
    pub access_key: Option<String>,
    pub access_secret: Option<String>,
    pub insecure: Option<bool>,
    pub ca_certificate: Option<String>,
}

/// Harbor's `FilterStyle`: how the rule editor shows a filter (`input`, `list`, `radio`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FilterStyle {
    /// `name`, `tag`, `label` or `resource`.
    #[serde(rename = "type")]
    pub kind: String,
    pub style: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// Harbor's `RegistryInfo` (`GET /registries/{id}/info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RegistryInfo {
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
    pub supported_resource_filters: Vec<FilterStyle>,
    pub supported_triggers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_copy_by_chunk: Option<bool>,
}

/// Harbor's `RegistryEndpoint`: one choice of a fixed endpoint list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RegistryEndpoint {
    pub key: String,
    pub value: String,
}

/// Harbor's `RegistryProviderEndpointPattern`: `EndpointPatternTypeStandard` (any URL),
/// `EndpointPatternTypeFix` or `EndpointPatternTypeList` (choose from `endpoints`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RegistryProviderEndpointPattern {
    pub endpoint_type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<RegistryEndpoint>,
}

/// Harbor's `RegistryProviderCredentialPattern` (`AccessKeyTypeStandard` /
/// `AccessSecretTypePass`: a user name and a password field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RegistryProviderCredentialPattern {
    pub access_key_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub access_key_data: String,
    pub access_secret_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub access_secret_data: String,
}

/// Harbor's `RegistryProviderInfo`: how the endpoint form asks for a type's URL and credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RegistryProviderInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_pattern: Option<RegistryProviderEndpointPattern>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_pattern: Option<RegistryProviderCredentialPattern>,
}

/// `GET /replication/adapterinfos`: type name → provider info.
pub type RegistryProviderInfos = BTreeMap<String, RegistryProviderInfo>;

//! Tag immutability rules (`/projects/{p}/immutabletagrules`), Harbor's `ImmutableRule`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One selector of a rule: `kind` `doublestar`; `decoration` `matches`/`excludes` for tags,
/// `repoMatches`/`repoExcludes` for repositories; `pattern` a doublestar pattern (`*`, `?`,
/// `**`, `{a,b}`, `[…]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImmutableSelector {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub decoration: String,
    #[serde(default)]
    pub pattern: String,
    /// Unused by immutability rules (Harbor's retention selectors' extras).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub extras: String,
}

/// Harbor's `ImmutableRule`: the request body of create and update, and a listed rule. Fields
/// a client may leave out take Harbor's defaults (`action` `immutable`, `template`
/// `immutable_template`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImmutableRule {
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
    pub params: Value,
    /// Exactly one tag selector.
    #[serde(default)]
    pub tag_selectors: Vec<ImmutableSelector>,
    /// `{"repository": [one selector]}`.
    #[serde(default)]
    pub scope_selectors: BTreeMap<String, Vec<ImmutableSelector>>,
}

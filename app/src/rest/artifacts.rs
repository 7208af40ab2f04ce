//! Repositories, artifacts and tags, and the one rule for "is this an index".

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The OCI image index's media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The Docker manifest list's media type.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Whether a manifest media type is an image index (OCI index or Docker manifest list). The
/// one place this rule is written: the registry's manifest parser, the REST API and the portal
/// all call it.
pub fn is_index(media_type: &str) -> bool {
    matches!(media_type, OCI_INDEX | DOCKER_LIST)
}

/// Harbor's `Repository`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Repository {
    pub id: i64,
    pub project_id: i64,
    /// Full name, `<project>/<repository>`.
    pub name: String,
    pub description: String,
    pub artifact_count: i64,
    pub pull_count: i64,
    pub creation_time: String,
    pub update_time: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RepositoryUpdate {
    pub description: String,
}

/// Harbor's `Tag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Tag {
    pub id: i64,
    pub repository_id: i64,
    pub artifact_id: i64,
    pub name: String,
    pub push_time: String,
    /// Harbor's zero time `0001-01-01T00:00:00.000Z` when never pulled.
    pub pull_time: String,
    pub immutable: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TagReq {
    pub name: String,
}

/// A child of an index (Harbor's `Reference`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Reference {
    pub parent_id: i64,
    pub child_id: Option<i64>,
    pub child_digest: String,
    /// The index entry's `platform` (`os`, `architecture`, `variant`, …).
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub platform: Option<Value>,
}

impl Reference {
    /// `os/architecture[/variant]`, or `None` without a platform.
    pub fn platform_name(&self) -> Option<String> {
        let p = self.platform.as_ref()?;
        let parts: Vec<&str> =
            ["os", "architecture", "variant"].iter().filter_map(|k| p[*k].as_str()).collect();
        (!parts.is_empty()).then(|| parts.join("/"))
    }
}

/// A signature, SBOM or other artifact whose `subject` is this one (Harbor's `Accessory`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Accessory {
    pub id: i64,
    pub artifact_id: i64,
    pub subject_artifact_id: i64,
    pub subject_artifact_digest: String,
    pub digest: String,
    pub size: i64,
    /// `signature.cosign`, `signature.notation`, `harbor.sbom`, or the artifact type.
    #[serde(rename = "type")]
    pub kind: String,
    pub artifact_type: String,
    pub creation_time: String,
}

/// Harbor's `Artifact`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Artifact {
    pub id: i64,
    /// `IMAGE`, `CHART`, `CNAB` or `UNKNOWN`.
    #[serde(rename = "type")]
    pub kind: String,
    pub media_type: String,
    pub manifest_media_type: String,
    pub artifact_type: String,
    pub project_id: i64,
    pub repository_id: i64,
    pub repository_name: String,
    pub digest: String,
    /// Manifest, config and layers (children of an index count in their own entries).
    pub size: i64,
    pub push_time: String,
    /// Harbor's zero time `0001-01-01T00:00:00.000Z` when never pulled.
    pub pull_time: String,
    pub pull_count: i64,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub annotations: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    pub references: Vec<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accessories: Option<Vec<Accessory>>,
    /// The artifact's labels (with `with_label=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<crate::rest::labels::Label>>,
    /// An image's `architecture`, `os`, `config`, `created` and `author` (from its config blob).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub extra_attrs: Option<Value>,
    /// Harbor's `AdditionLinks`: `build_history` of an image (relative links).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub addition_links: Option<Value>,
}

impl Artifact {
    /// Whether this is an image index (see [`is_index`]).
    pub fn is_index(&self) -> bool {
        is_index(&self.media_type)
    }

    /// An index's platforms (`linux/amd64`, `linux/arm64/v8`), sorted, from its references.
    pub fn platforms(&self) -> Vec<String> {
        let mut list: Vec<String> = self.references.iter().filter_map(Reference::platform_name).collect();
        list.sort();
        list.dedup();
        list
    }

    /// The tag names (none when listed without tags).
    pub fn tag_names(&self) -> Vec<String> {
        self.tags.iter().flatten().map(|t| t.name.clone()).collect()
    }
}

//! What the registry needs to know about a manifest: its kind, the blobs and manifests it
//! references, its subject and artifact type. Validation is strict enough that a stored
//! manifest never points at content the registry does not have (non-distributable layers
//! excepted), and lenient about fields it does not use.

use serde::Deserialize;
use serde_json::Value;

use super::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub use app::rest::artifacts::{is_index, DOCKER_LIST, OCI_INDEX};
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Largest manifest accepted (the OCI spec's recommended limit).
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// `platform` of an index entry, as sent.
    pub platform: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Image manifest or artifact manifest: config + layers.
    Image,
    /// Index or manifest list: child manifests.
    Index,
}

#[derive(Debug, Clone)]
pub struct Parsed {
    pub media_type: String,
    pub kind: Kind,
    /// Config and layers that must exist in the repository.
    pub blobs: Vec<Descriptor>,
    /// Layers that need not be in the registry (non-distributable / foreign).
    pub external_blobs: Vec<Descriptor>,
    /// Child manifests (indexes) that must exist in the repository.
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    /// `artifactType`, else the config media type for artifacts; empty for plain images.
    pub artifact_type: String,
    pub annotations: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<i64>,
    platform: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<serde_json::Map<String, Value>>,
}

fn descriptor(d: RawDescriptor, what: &str) -> Result<Descriptor, String> {
    let media_type =
        d.media_type.filter(|m| !m.is_empty()).ok_or(format!("{what}: mediaType is required"))?;
    let digest = d
        .digest
        .ok_or(format!("{what}: digest is required"))?
        .parse::<Digest>()
        .map_err(|e| format!("{what}: {e}"))?;
    let size = d.size.ok_or(format!("{what}: size is required"))?;
    if size < 0 {
        return Err(format!("{what}: size must not be negative"));
    }
    Ok(Descriptor { media_type, digest, size: size as u64, platform: d.platform.filter(Value::is_object) })
}

fn non_distributable(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.oci.image.layer.nondistributable.")
        || media_type == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
}

/// `config.mediaType` of a stored image manifest (`None` for anything else).
pub fn config_media_type(body: &[u8]) -> Option<String> {
    let raw: Raw = serde_json::from_slice(body).ok()?;
    raw.config?.media_type.filter(|m| !m.is_empty())
}

/// Parses and validates a manifest body sent with `Content-Type: content_type`.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Parsed, String> {
    let raw: Raw = serde_json::from_slice(body).map_err(|e| format!("manifest is not valid JSON: {e}"))?;
    if raw.schema_version != Some(2) {
        return Err("schemaVersion must be 2 (schema 1 manifests are not supported)".into());
    }
    let declared = raw.media_type.clone();
    let content_type = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_string());
    // The body's mediaType, when present, must agree with Content-Type.
    let media_type = match (declared, content_type.filter(|c| !c.is_empty() && c != "application/json")) {
        (Some(d), Some(c)) if d != c => {
            return Err(format!("mediaType {d:?} does not match Content-Type {c:?}"));
        }
        (Some(d), _) => d,
        (None, Some(c)) => c,
        // No declared type: infer as OCI does.
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_string(),
        (None, None) => OCI_MANIFEST.to_string(),
    };
    let kind = match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => Kind::Image,
        m if is_index(m) => Kind::Index,
        other => return Err(format!("unsupported manifest media type {other:?}")),
    };
    let subject = raw.subject.map(|s| descriptor(s, "subject")).transpose()?;
    let mut parsed = Parsed {
        media_type,
        kind: kind.clone(),
        blobs: vec![],
        external_blobs: vec![],
        manifests: vec![],
        subject,
        artifact_type: raw.artifact_type.clone().unwrap_or_default(),
        annotations: raw.annotations.unwrap_or_default(),
    };
    match kind {
        Kind::Image => {
            if raw.manifests.is_some() {
                return Err("an image manifest must not have manifests".into());
            }
            let config = descriptor(raw.config.ok_or("config is required")?, "config")?;
            if parsed.artifact_type.is_empty()
                && config.media_type != "application/vnd.oci.image.config.v1+json"
                && config.media_type != "application/vnd.docker.container.image.v1+json"
            {
                // An artifact without artifactType: the config media type names it.
                parsed.artifact_type = config.media_type.clone();
            }
            parsed.blobs.push(config);
            let layers = raw.layers.ok_or("layers is required")?;
            for (i, l) in layers.into_iter().enumerate() {
                let d = descriptor(l, &format!("layers[{i}]"))?;
                if non_distributable(&d.media_type) {
                    parsed.external_blobs.push(d);
                } else {
                    parsed.blobs.push(d);
                }
            }
            if parsed.artifact_type == OCI_EMPTY {
                parsed.artifact_type.clear();
            }
        }
        Kind::Index => {
            if raw.config.is_some() || raw.layers.is_some() {
                return Err("an index must not have config or layers".into());
            }
            for (i, m) in raw.manifests.ok_or("manifests is required")?.into_iter().enumerate() {
                parsed.manifests.push(descriptor(m, &format!("manifests[{i}]"))?);
            }
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    #[test]
    fn image_and_artifact() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":10}},
                      {{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","digest":"{}","size":5,"urls":["https://x"]}}]}}"#,
            d(1),
            d(2),
            d(3)
        );
        let p = parse(Some(OCI_MANIFEST), body.as_bytes()).unwrap();
        assert_eq!(p.kind, Kind::Image);
        assert_eq!(p.blobs.len(), 2);
        assert_eq!(p.external_blobs.len(), 1);
        assert_eq!(p.artifact_type, "");

        let art = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example.sbom","config":{{"mediaType":"{OCI_EMPTY}","digest":"{}","size":2}},
            "layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":300}},"annotations":{{"a":"b"}}}}"#,
            d(4),
            d(5)
        );
        let p = parse(Some(OCI_MANIFEST), art.as_bytes()).unwrap();
        assert_eq!(p.artifact_type, "application/vnd.example.sbom");
        assert_eq!(p.subject.unwrap().digest.to_string(), d(5));
        assert_eq!(p.annotations["a"], "b");
    }

    #[test]
    fn index() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[{{"mediaType":"{DOCKER_MANIFEST}","digest":"{}","size":7,"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#,
            d(9)
        );
        let p = parse(Some(DOCKER_LIST), body.as_bytes()).unwrap();
        assert_eq!(p.kind, Kind::Index);
        assert_eq!(p.manifests.len(), 1);
    }

    #[test]
    fn invalid() {
        let cases = [
            "not json",
            r#"{"schemaVersion":1}"#,
            r#"{"schemaVersion":2,"mediaType":"text/plain"}"#,
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#,
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"x","digest":"sha256:zz","size":1},"layers":[]}"#,
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"x","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":-1},"layers":[]}"#,
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#,
        ];
        for c in cases {
            assert!(parse(None, c.as_bytes()).is_err(), "{c}");
        }
        // Content-Type and body disagree.
        let body = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[]}}"#);
        assert!(parse(Some(OCI_MANIFEST), body.as_bytes()).is_err());
        assert!(parse(Some(OCI_INDEX), body.as_bytes()).is_ok());
        assert!(parse(None, body.as_bytes()).is_ok());
    }
}

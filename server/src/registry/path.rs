//! The `/v2/…` path grammar. axum wildcards must be the last segment, and repository names
//! contain slashes, so every `/v2/{*rest}` request is parsed here into a `Route`. Pure and
//! table-tested.

use super::digest::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t),
            Reference::Digest(d) => write!(f, "{d}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags { name: String },
    /// `/v2/<name>/manifests/<reference>`
    Manifest { name: String, reference: Reference },
    /// `/v2/<name>/blobs/<digest>`
    Blob { name: String, digest: Digest },
    /// `/v2/<name>/blobs/uploads/`
    UploadStart { name: String },
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload { name: String, id: String },
    /// `/v2/<name>/referrers/<digest>`
    Referrers { name: String, digest: Digest },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("invalid repository name {0:?}")]
    NameInvalid(String),
    #[error("invalid tag {0:?}")]
    TagInvalid(String),
    #[error("{0}")]
    DigestInvalid(String),
    #[error("invalid upload id")]
    UploadInvalid,
    #[error("no such endpoint")]
    NotFound,
}

/// Longest repository name (distribution's limit).
pub const MAX_NAME_LEN: usize = 255;

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Repository name per the OCI grammar, at most 255 characters.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.split('/').all(valid_component)
}

/// Tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
}

fn name(n: &str) -> Result<String, PathError> {
    if valid_name(n) {
        Ok(n.to_string())
    } else {
        Err(PathError::NameInvalid(n.chars().take(300).collect()))
    }
}

fn digest(d: &str) -> Result<Digest, PathError> {
    d.parse().map_err(|e: super::digest::DigestError| PathError::DigestInvalid(e.to_string()))
}

/// Parses the part after `/v2/`.
pub fn parse(rest: &str) -> Result<Route, PathError> {
    if rest.is_empty() {
        return Ok(Route::Base);
    }
    if rest == "_catalog" {
        return Ok(Route::Catalog);
    }
    if let Some(n) = rest.strip_suffix("/tags/list") {
        return Ok(Route::Tags { name: name(n)? });
    }
    if let Some(n) = rest.strip_suffix("/blobs/uploads/").or_else(|| rest.strip_suffix("/blobs/uploads")) {
        return Ok(Route::UploadStart { name: name(n)? });
    }
    if let Some((n, id)) = rest.rsplit_once("/blobs/uploads/") {
        let valid =
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(PathError::UploadInvalid);
        }
        return Ok(Route::Upload { name: name(n)?, id: id.to_string() });
    }
    if let Some((n, r)) = rest.rsplit_once("/manifests/") {
        let name = name(n)?;
        let reference = if r.contains(':') {
            Reference::Digest(digest(r)?)
        } else if valid_tag(r) {
            Reference::Tag(r.to_string())
        } else {
            return Err(PathError::TagInvalid(r.chars().take(200).collect()));
        };
        return Ok(Route::Manifest { name, reference });
    }
    if let Some((n, d)) = rest.rsplit_once("/blobs/") {
        return Ok(Route::Blob { name: name(n)?, digest: digest(d)? });
    }
    if let Some((n, d)) = rest.rsplit_once("/referrers/") {
        return Ok(Route::Referrers { name: name(n)?, digest: digest(d)? });
    }
    Err(PathError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn routes() {
        let d: Digest = D.parse().unwrap();
        let cases: Vec<(String, Route)> = vec![
            ("".into(), Route::Base),
            ("_catalog".into(), Route::Catalog),
            ("library/ubuntu/tags/list".into(), Route::Tags { name: "library/ubuntu".into() }),
            (
                "a/b/c/manifests/v1.0".into(),
                Route::Manifest { name: "a/b/c".into(), reference: Reference::Tag("v1.0".into()) },
            ),
            (
                format!("lib/x/manifests/{D}"),
                Route::Manifest { name: "lib/x".into(), reference: Reference::Digest(d.clone()) },
            ),
            (format!("lib/x/blobs/{D}"), Route::Blob { name: "lib/x".into(), digest: d.clone() }),
            ("lib/x/blobs/uploads/".into(), Route::UploadStart { name: "lib/x".into() }),
            ("lib/x/blobs/uploads".into(), Route::UploadStart { name: "lib/x".into() }),
            (
                "lib/x/blobs/uploads/0f1e2d3c-aaaa".into(),
                Route::Upload { name: "lib/x".into(), id: "0f1e2d3c-aaaa".into() },
            ),
            (format!("lib/x/referrers/{D}"), Route::Referrers { name: "lib/x".into(), digest: d.clone() }),
            // A repository may itself be called "manifests" or "blobs".
            (
                "lib/manifests/manifests/latest".into(),
                Route::Manifest { name: "lib/manifests".into(), reference: Reference::Tag("latest".into()) },
            ),
            ("lib/tags/tags/list".into(), Route::Tags { name: "lib/tags".into() }),
        ];
        for (path, want) in cases {
            assert_eq!(parse(&path), Ok(want), "{path}");
        }
    }

    #[test]
    fn rejects() {
        assert!(matches!(parse("Lib/X/tags/list"), Err(PathError::NameInvalid(_))));
        assert!(matches!(parse("lib//x/tags/list"), Err(PathError::NameInvalid(_))));
        assert!(matches!(parse("../x/tags/list"), Err(PathError::NameInvalid(_))));
        assert!(matches!(parse("lib/x/manifests/bad tag"), Err(PathError::TagInvalid(_))));
        assert!(matches!(parse("lib/x/manifests/.hidden"), Err(PathError::TagInvalid(_))));
        assert!(matches!(parse("lib/x/blobs/sha256:zz"), Err(PathError::DigestInvalid(_))));
        assert!(matches!(parse("lib/x/blobs/uploads/../../etc"), Err(PathError::UploadInvalid)));
        assert!(matches!(parse("lib/x/whatever"), Err(PathError::NotFound)));
        let long = format!("a/{}", "b".repeat(254));
        assert!(matches!(parse(&format!("{long}/tags/list")), Err(PathError::NameInvalid(_))));
        let tag = "t".repeat(129);
        assert!(matches!(parse(&format!("a/b/manifests/{tag}")), Err(PathError::TagInvalid(_))));
    }

    #[test]
    fn name_grammar() {
        for ok in ["a/b", "library/ubuntu", "a.b/c_d/e__f/g-h/i---j", "0/9", "x"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "A/b", "a/", "/a", "a/-b", "a/b-", "a/b._c", "a/b___c", "a/b..c", "a b", "a/ü"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_tag("latest") && valid_tag("_x") && valid_tag("v1.2.3-rc_1"));
        assert!(!valid_tag("-x") && !valid_tag(".x") && !valid_tag("a/b") && !valid_tag(""));
    }
}

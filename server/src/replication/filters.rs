//! A policy's filters and destination names, with Harbor's semantics
//! (goharbor/harbor `src/pkg/reg/filter`, `src/pkg/reg/model/policy.go`,
//! `src/controller/replication/flow/stage.go`):
//!
//! - `name` (repository) and `tag` take a **doublestar pattern** (`*` and `?` stay within a path
//!   component, `**` spans components, `{a,b}` alternatives, `[…]` classes); an empty pattern
//!   matches everything. Only `tag` and `label` take a `decoration` (`matches`, the default,
//!   or `excludes`).
//! - The tag filter keeps the artifact with only its matching tags; an untagged artifact is
//!   matched against the empty string (so `**` keeps it and `v*` drops it).
//! - `label` keeps an artifact carrying *every* listed label (by name; or, `excludes`, any
//!   other one). Push-based runs read this registry's labels (`crate::labels::names_of`); a
//!   pull-based source's artifacts count as unlabelled (the adapters do not list labels), so
//!   there a `matches` label filter keeps nothing and an `excludes` one keeps everything.
//! - `resource`: `image` keeps images (and indexes of images), `artifact` everything.
//! - The destination repository is `dest_repository` (Harbor's `replaceNamespace`).
//!
//! For local resources the patterns also give **SQL prefilters** (`Pattern::like_prefix`):
//! the literal text before a pattern's first wildcard, so the database returns only candidate
//! rows and the exact glob check runs on those (`execution::local_resources`).

use globset::{GlobBuilder, GlobMatcher};
use serde_json::Value;

pub use app::rest::replication::ReplicationFilter;

/// A compiled doublestar pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub text: String,
    matcher: Option<GlobMatcher>,
}

impl Pattern {
    pub fn new(text: &str) -> Result<Pattern, String> {
        if text.is_empty() {
            return Ok(Pattern { text: String::new(), matcher: None });
        }
        let glob = GlobBuilder::new(text)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("invalid pattern {text:?}: {}", e.kind()))?;
        Ok(Pattern { text: text.to_string(), matcher: Some(glob.compile_matcher()) })
    }

    pub fn is_match(&self, s: &str) -> bool {
        match &self.matcher {
            None => true,
            Some(m) => m.is_match(s),
        }
    }

    /// The literal text every match starts with (before the first wildcard, class,
    /// alternative or escape); empty when the pattern starts with one.
    pub fn like_prefix(&self) -> &str {
        let end = self.text.find(['*', '?', '[', '{', '\\']).unwrap_or(self.text.len());
        &self.text[..end]
    }

    /// True when the pattern has no wildcard at all (it names one thing).
    pub fn is_literal(&self) -> bool {
        !self.text.is_empty() && self.like_prefix().len() == self.text.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoration {
    Matches,
    Excludes,
}

/// A policy's filters, validated and compiled.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub names: Vec<Pattern>,
    pub tags: Vec<(Pattern, Decoration)>,
    pub labels: Vec<(Vec<String>, Decoration)>,
    /// `image` or `artifact`.
    pub resource: Option<String>,
}

impl Filters {
    /// Validates Harbor's filter array (the messages are the 400's).
    pub fn parse(filters: &[ReplicationFilter]) -> Result<Filters, String> {
        let mut out = Filters::default();
        for f in filters {
            let decoration = match f.decoration.as_str() {
                "" | "matches" => Decoration::Matches,
                "excludes" => Decoration::Excludes,
                other => return Err(format!("invalid filter decoration {other:?}: use matches or excludes")),
            };
            match f.kind.as_str() {
                "name" | "tag" | "resource" => {
                    let Value::String(v) = &f.value else {
                        return Err(format!("the value of a {} filter must be a string", f.kind));
                    };
                    if f.kind != "tag" && !f.decoration.is_empty() {
                        return Err("only tag and label filters take a decoration".into());
                    }
                    match f.kind.as_str() {
                        "name" => out.names.push(Pattern::new(v)?),
                        "tag" => out.tags.push((Pattern::new(v)?, decoration)),
                        _ => {
                            if v != "image" && v != "artifact" {
                                return Err(format!("invalid resource filter {v:?}: use image or artifact"));
                            }
                            out.resource = Some(v.clone());
                        }
                    }
                }
                "label" => {
                    let labels = match &f.value {
                        Value::Array(items) => {
                            items.iter().map(|i| i.as_str().map(str::to_string)).collect::<Option<Vec<_>>>()
                        }
                        _ => None,
                    }
                    .ok_or("the value of a label filter must be an array of strings")?;
                    out.labels.push((labels, decoration));
                }
                other => {
                    return Err(format!("invalid filter type {other:?}: use name, tag, label or resource"))
                }
            }
        }
        Ok(out)
    }

    /// Whether the repository (full name) passes the name filters.
    pub fn repository_matches(&self, repo: &str) -> bool {
        self.names.iter().all(|p| p.is_match(repo))
    }

    /// The tags of an artifact that the tag filters keep; `None` drops the artifact. An
    /// untagged artifact (no tags) is matched as the empty string and keeps no tags.
    pub fn filter_tags(&self, tags: &[String]) -> Option<Vec<String>> {
        let mut tags = tags.to_vec();
        for (p, d) in &self.tags {
            if p.text.is_empty() {
                continue;
            }
            if tags.is_empty() {
                let m = p.is_match("");
                if m != (*d == Decoration::Matches) {
                    return None;
                }
                continue;
            }
            tags.retain(|t| p.is_match(t) == (*d == Decoration::Matches));
            if tags.is_empty() {
                return None;
            }
        }
        Some(tags)
    }

    /// Whether an artifact with these labels passes the label filters.
    pub fn labels_match(&self, labels: &[String]) -> bool {
        self.labels.iter().all(|(want, d)| {
            let all = want.iter().all(|w| labels.contains(w));
            want.is_empty() || all == (*d == Decoration::Matches)
        })
    }

    /// Whether an artifact of Harbor's `type` (`IMAGE`, `CHART`, …) passes the resource filter.
    pub fn resource_matches(&self, kind: &str) -> bool {
        match self.resource.as_deref() {
            Some("image") => kind == "IMAGE",
            _ => true,
        }
    }

    /// Whether a `label` filter keeps nothing of artifacts without labels (a pull-based
    /// source's, a deleted artifact's).
    pub fn excludes_everything(&self) -> bool {
        self.labels.iter().any(|(want, d)| !want.is_empty() && *d == Decoration::Matches)
    }
}

/// The destination repository of `repo` under `namespace` with Harbor's flattening:
/// `replace_count` < 0 keeps only the last component (`a/b/c` → `n/c`); 0 keeps everything
/// (`n/a/b/c`); k replaces the first k components (`1`: `n/b/c`); more components than the
/// source has (before its last) is an error. An empty namespace keeps `repo` as it is.
pub fn dest_repository(repo: &str, namespace: &str, replace_count: i64) -> Result<String, String> {
    if namespace.is_empty() {
        return Ok(repo.to_string());
    }
    let parts: Vec<&str> = repo.split('/').collect();
    let n = parts.len();
    let prefix = if replace_count < 0 {
        namespace.to_string()
    } else if replace_count as usize > n - 1 {
        return Err(format!(
            "the source repository {repo:?} has only {} path components before its name, but the \
             destination namespace flattening level is {replace_count}",
            n - 1
        ));
    } else {
        let kept = &parts[replace_count as usize..n - 1];
        if kept.is_empty() {
            namespace.to_string()
        } else {
            format!("{namespace}/{}", kept.join("/"))
        }
    };
    Ok(format!("{prefix}/{}", parts[n - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(kind: &str, value: Value, decoration: &str) -> ReplicationFilter {
        ReplicationFilter { kind: kind.into(), value, decoration: decoration.into() }
    }

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn doublestar_patterns_as_harbor() {
        let cases = [
            ("library/**", "library/nginx", true),
            ("library/**", "library/a/b", true),
            ("library/*", "library/a/b", false),
            ("library/*", "library/nginx", true),
            ("**", "a/b/c", true),
            ("*", "a/b", false),
            ("{library,dev}/*", "dev/app", true),
            ("{library,dev}/*", "prod/app", false),
            ("v1.?", "v1.2", true),
            ("v1.?", "v1.10", false),
            ("v[0-9]*", "v3-rc", true),
            ("v[0-9]*", "latest", false),
            ("", "anything/at/all", true),
            ("a/**/z", "a/z", true),
            ("a/**/z", "a/b/c/z", true),
        ];
        for (p, s, want) in cases {
            assert_eq!(Pattern::new(p).unwrap().is_match(s), want, "{p} ~ {s}");
        }
        assert!(Pattern::new("[").is_err());
        assert!(Pattern::new("{a,b").is_err());
    }

    #[test]
    fn sql_prefixes() {
        assert_eq!(Pattern::new("library/**").unwrap().like_prefix(), "library/");
        assert_eq!(Pattern::new("{a,b}/x").unwrap().like_prefix(), "");
        assert_eq!(Pattern::new("p1/app").unwrap().like_prefix(), "p1/app");
        assert!(Pattern::new("p1/app").unwrap().is_literal());
        assert!(!Pattern::new("p1/ap?").unwrap().is_literal());
        assert!(!Pattern::new("").unwrap().is_literal());
    }

    #[test]
    fn tag_filters_include_and_exclude() {
        let fl = Filters::parse(&[f("tag", json!("v1.*"), "matches")]).unwrap();
        assert_eq!(fl.filter_tags(&tags(&["v1.0", "v2.0", "v1.1"])), Some(tags(&["v1.0", "v1.1"])));
        assert_eq!(fl.filter_tags(&tags(&["latest"])), None);
        assert_eq!(fl.filter_tags(&[]), None, "untagged is matched as the empty string");

        let ex = Filters::parse(&[f("tag", json!("*-rc*"), "excludes")]).unwrap();
        assert_eq!(ex.filter_tags(&tags(&["1.0", "1.1-rc1"])), Some(tags(&["1.0"])));
        assert_eq!(ex.filter_tags(&tags(&["2.0-rc2"])), None);
        assert_eq!(ex.filter_tags(&[]), Some(vec![]), "untagged passes an exclusion");

        let all = Filters::parse(&[f("tag", json!("**"), "")]).unwrap();
        assert_eq!(all.filter_tags(&[]), Some(vec![]));
        let none = Filters::parse(&[]).unwrap();
        assert_eq!(none.filter_tags(&tags(&["x"])), Some(tags(&["x"])));

        let both =
            Filters::parse(&[f("tag", json!("v*"), ""), f("tag", json!("*beta*"), "excludes")]).unwrap();
        assert_eq!(both.filter_tags(&tags(&["v1", "v2-beta", "x"])), Some(tags(&["v1"])));
    }

    #[test]
    fn names_labels_and_resources() {
        let fl = Filters::parse(&[
            f("name", json!("library/**"), ""),
            f("resource", json!("image"), ""),
            f("label", json!(["prod"]), "excludes"),
        ])
        .unwrap();
        assert!(fl.repository_matches("library/a/b"));
        assert!(!fl.repository_matches("dev/a"));
        assert!(fl.resource_matches("IMAGE") && !fl.resource_matches("CHART"));
        assert!(fl.labels_match(&[]) && !fl.labels_match(&tags(&["prod"])));
        assert!(!fl.excludes_everything());
        let m = Filters::parse(&[f("label", json!(["prod", "eu"]), "matches")]).unwrap();
        assert!(m.excludes_everything());
        assert!(m.labels_match(&tags(&["eu", "prod", "x"])) && !m.labels_match(&tags(&["prod"])));
    }

    #[test]
    fn invalid_filters_are_refused_with_a_reason() {
        let bad = [
            (f("color", json!("red"), ""), "invalid filter type"),
            (f("name", json!(["a"]), ""), "must be a string"),
            (f("name", json!("a/**"), "excludes"), "only tag and label"),
            (f("resource", json!("chart"), ""), "invalid resource filter"),
            (f("resource", json!("image"), "matches"), "only tag and label"),
            (f("label", json!("prod"), ""), "array of strings"),
            (f("label", json!([1]), ""), "array of strings"),
            (f("tag", json!("v1"), "maybe"), "invalid filter decoration"),
            (f("tag", json!("v[1"), ""), "invalid pattern"),
        ];
        for (filter, msg) in bad {
            let e = Filters::parse(std::slice::from_ref(&filter)).unwrap_err();
            assert!(e.contains(msg), "{filter:?}: {e}");
        }
    }

    /// Harbor's table (`flow/stage_test.go`, `TestReplaceNamespace`).
    #[test]
    fn flattening_as_harbor() {
        let ok = [
            ("c", "", 0, "c"),
            ("a/b/c", "", 2, "a/b/c"),
            ("c", "n", -1, "n/c"),
            ("b/c", "n", -1, "n/c"),
            ("a/b/c", "n", -1, "n/c"),
            ("a/b/c", "n", 0, "n/a/b/c"),
            ("a/b/c", "n", 1, "n/b/c"),
            ("a/b/c", "n", 2, "n/c"),
            ("a", "n", 0, "n/a"),
            ("a/b/c", "n/m", 1, "n/m/b/c"),
        ];
        for (repo, ns, count, want) in ok {
            assert_eq!(dest_repository(repo, ns, count).unwrap(), want, "{repo} {ns} {count}");
        }
        let e = dest_repository("a/b", "n", 2).unwrap_err();
        assert!(e.contains("flattening level is 2"), "{e}");
        assert_eq!(dest_repository("a/b/c/image", "n", 3).unwrap(), "n/image");
        assert!(dest_repository("a/b/c/image", "n", 4).is_err());
        assert!(dest_repository("a/b/c", "n", 3).is_err());
    }
}

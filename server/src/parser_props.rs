//! Property tests ("fuzzing" on stable Rust) of every parser that reads what a client sends:
//! the `/v2` path grammar, manifests, `Range` / `Content-Range`, the token service's `scope`
//! grammar, digests and the REST `q` / `sort` parameters. Each property feeds both arbitrary
//! input (any string or bytes) and input shaped like the grammar (near misses find the edge
//! cases), and asserts no panic plus what a successful parse promises.
//!
//! The number of cases per property is `PROPTEST_CASES` (default below); the README's test
//! command runs the default, a longer local run is `PROPTEST_CASES=200000 cargo test -p server
//! --lib parser_props`.

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::api::query::{parse_sort, Query};
use crate::db::query::{order_by, Col, Sql};
use crate::registry::digest::Digest;
use crate::registry::path::{self, Reference, Route};
use crate::registry::{manifest, parse_content_range, parse_range};
use crate::token::{parse_scopes, MAX_SCOPES};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Strings made of the grammar's own pieces, so that parsers see near misses, not just noise.
fn grammar_soup(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(pieces).prop_map(str::to_string),
            1 => "[a-z0-9]{1,8}",
            1 => any::<String>(),
        ],
        0..12,
    )
    .prop_map(|v| v.concat())
}

const PATH_PIECES: &[&str] = &[
    "/",
    "//",
    "_catalog",
    "tags/list",
    "/tags/list",
    "manifests/",
    "/manifests/",
    "blobs/",
    "/blobs/",
    "/blobs/uploads/",
    "/blobs/uploads",
    "/referrers/",
    "library",
    "a",
    "a.b",
    "a__b",
    "a--b",
    "-",
    "_",
    ".",
    "..",
    ":",
    "sha256:",
    "sha512:",
    "latest",
    "v1.0",
    "0123456789abcdef",
    "ABC",
    "%2F",
    "\u{202e}",
];

fn hex_of(len: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(&b"0123456789abcdef"[..]), len)
        .prop_map(|v| String::from_utf8(v).expect("ascii"))
}

fn digest_str() -> impl Strategy<Value = String> {
    prop_oneof![
        hex_of(64).prop_map(|h| format!("sha256:{h}")),
        hex_of(128).prop_map(|h| format!("sha512:{h}")),
    ]
}

fn repo_name() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9]{1,6}((\\.|_|__|-+)[a-z0-9]{1,4})?", 1..5).prop_map(|v| v.join("/"))
}

/// A JSON value of bounded depth with the keys a manifest has, in shapes that are often wrong.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        prop::sample::select(
            &[
                manifest::OCI_MANIFEST,
                manifest::OCI_INDEX,
                manifest::DOCKER_MANIFEST,
                manifest::DOCKER_LIST,
                manifest::OCI_EMPTY,
                "application/vnd.oci.image.layer.nondistributable.v1.tar",
                "",
            ][..]
        )
        .prop_map(Value::from),
        digest_str().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec(
                (
                    prop::sample::select(
                        &[
                            "schemaVersion",
                            "mediaType",
                            "artifactType",
                            "config",
                            "layers",
                            "manifests",
                            "subject",
                            "digest",
                            "size",
                            "platform",
                            "annotations",
                            "urls",
                            "other",
                        ][..]
                    ),
                    inner,
                ),
                0..8,
            )
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn v2_path_never_panics(rest in prop_oneof![any::<String>(), grammar_soup(PATH_PIECES)]) {
        if let Ok(route) = path::parse(&rest) {
            // What a parse promises: every name it hands out is a valid repository name.
            let name = match &route {
                Route::Base | Route::Catalog => None,
                Route::Tags { name } | Route::UploadStart { name } => Some(name),
                Route::Manifest { name, reference } => {
                    if let Reference::Tag(t) = reference {
                        prop_assert!(path::valid_tag(t));
                    }
                    Some(name)
                }
                Route::Blob { name, .. } | Route::Referrers { name, .. } => Some(name),
                Route::Upload { name, id } => {
                    prop_assert!(!id.is_empty() && id.len() <= 64);
                    Some(name)
                }
            };
            if let Some(n) = name {
                prop_assert!(path::valid_name(n), "accepted name {n:?}");
                prop_assert!(n.len() <= path::MAX_NAME_LEN);
            }
        }
    }

    #[test]
    fn v2_path_round_trips_valid_routes(name in repo_name(), d in digest_str(), tag in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}") {
        let digest: Digest = d.parse().unwrap();
        prop_assert_eq!(path::parse(&format!("{name}/tags/list")), Ok(Route::Tags { name: name.clone() }));
        prop_assert_eq!(
            path::parse(&format!("{name}/manifests/{tag}")),
            Ok(Route::Manifest { name: name.clone(), reference: Reference::Tag(tag.clone()) })
        );
        prop_assert_eq!(
            path::parse(&format!("{name}/manifests/{d}")),
            Ok(Route::Manifest { name: name.clone(), reference: Reference::Digest(digest.clone()) })
        );
        prop_assert_eq!(
            path::parse(&format!("{name}/blobs/{d}")),
            Ok(Route::Blob { name: name.clone(), digest: digest.clone() })
        );
        prop_assert_eq!(
            path::parse(&format!("{name}/referrers/{d}")),
            Ok(Route::Referrers { name: name.clone(), digest })
        );
        prop_assert_eq!(path::parse(&format!("{name}/blobs/uploads/")), Ok(Route::UploadStart { name }));
    }

    #[test]
    fn digest_parse_never_panics(s in prop_oneof![any::<String>(), grammar_soup(&["sha256", "sha512", ":", "0", "f", "A", "sha", "+", "."])]) {
        if let Ok(d) = s.parse::<Digest>() {
            prop_assert_eq!(d.to_string(), s);
            prop_assert_eq!(d.hex.len(), d.algorithm.hex_len());
        }
    }

    #[test]
    fn manifest_parse_never_panics_on_bytes(ct in prop::option::of(any::<String>()), body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = manifest::parse(ct.as_deref(), &body);
    }

    #[test]
    fn manifest_parse_never_panics_on_json(v in json_value(), ct in prop::option::of(prop::sample::select(&[
        manifest::OCI_MANIFEST, manifest::OCI_INDEX, manifest::DOCKER_MANIFEST, manifest::DOCKER_LIST, "text/plain",
    ][..]))) {
        let body = serde_json::to_vec(&v).unwrap();
        if let Ok(p) = manifest::parse(ct, &body) {
            // Everything a parsed manifest makes the registry look up is a valid digest.
            for d in p.blobs.iter().chain(&p.manifests).chain(&p.subject) {
                prop_assert_eq!(d.digest.hex.len(), d.digest.algorithm.hex_len());
            }
        }
    }

    #[test]
    fn manifest_parse_never_panics_on_near_manifests(
        layers in prop::collection::vec((digest_str(), any::<i64>(), json_value()), 0..4),
        subject in prop::option::of(digest_str()),
        schema in prop_oneof![Just(json!(2)), json_value()],
    ) {
        let descs: Vec<Value> = layers
            .iter()
            .map(|(d, size, platform)| json!({"mediaType": "application/octet-stream", "digest": d, "size": size, "platform": platform}))
            .collect();
        let mut image = json!({"schemaVersion": schema, "mediaType": manifest::OCI_MANIFEST,
            "config": descs.first().cloned().unwrap_or(Value::Null), "layers": descs.clone()});
        let mut index = json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": descs});
        if let Some(s) = subject {
            image["subject"] = json!({"mediaType": manifest::OCI_MANIFEST, "digest": s, "size": 1});
            index["subject"] = image["subject"].clone();
        }
        let _ = manifest::parse(Some(manifest::OCI_MANIFEST), &serde_json::to_vec(&image).unwrap());
        let _ = manifest::parse(Some(manifest::OCI_INDEX), &serde_json::to_vec(&index).unwrap());
        let _ = manifest::parse(None, &serde_json::to_vec(&image).unwrap());
    }

    #[test]
    fn range_never_panics_and_stays_inside(
        v in prop_oneof![any::<String>(), grammar_soup(&["bytes=", "bytes", "-", ",", "0", "1", "18446744073709551615", " ", "="])],
        size in prop_oneof![Just(0u64), Just(1u64), any::<u64>(), 0u64..1000],
    ) {
        if let Some(Ok((start, end))) = parse_range(&v, size) {
            prop_assert!(start < end && end <= size, "{v:?} of {size} gave {start}..{end}");
        }
    }

    #[test]
    fn content_range_never_panics(v in prop_oneof![any::<String>(), grammar_soup(&["bytes=", "bytes ", "-", "/", "*", "0", "9", "18446744073709551615", "18446744073709551616", " "])]) {
        let _ = parse_content_range(&v);
    }

    #[test]
    fn scopes_never_panic(values in prop::collection::vec(
        prop_oneof![any::<String>(), grammar_soup(&["repository", "registry", "(plugin)", ":", "catalog", "*", "pull", "push", ",", "delete", " ", "library/a", "host:5000/a"])],
        0..4,
    )) {
        if let Ok(scopes) = parse_scopes(values.iter().map(String::as_str)) {
            prop_assert!(scopes.len() <= MAX_SCOPES);
            for s in scopes {
                prop_assert!(!s.typ.is_empty() && !s.name.is_empty());
            }
        }
    }

    #[test]
    fn rest_query_and_sort_never_panic(
        q in prop_oneof![any::<String>(), grammar_soup(&["name", "=", "~", "[", "]", "{", "}", ",", " ", "a", "1", "2026-01-01T00:00:00Z", "-", "creation_time", "id"])],
        sort in prop_oneof![any::<String>(), grammar_soup(&["name", "-", ",", "creation_time", " ", "id", "x"])],
    ) {
        let keys: &[(&str, Col)] = &[("name", Col::Text("name")), ("id", Col::Int("id")), ("creation_time", Col::Time("creation_time"))];
        if let Ok(parsed) = Query::parse(&q) {
            let _ = Sql::new().filter(&parsed.terms, keys, &[]);
        }
        let sort_keys = [("name", "name"), ("creation_time", "creation_time")];
        let order = parse_sort(Some(&sort)).map_err(drop).and_then(|s| order_by(&s, &sort_keys, "name", "id").map_err(drop));
        if let Ok(order) = order {
            // What an accepted sort promises: a well-formed clause over known columns only
            // (`sort=,` once gave " ORDER BY , id", a 500 from the database).
            let body = order.strip_prefix(" ORDER BY ").expect("ORDER BY");
            for term in body.split(", ") {
                let col = term.strip_suffix(" DESC").unwrap_or(term);
                prop_assert!(["name", "creation_time", "id"].contains(&col), "{sort:?} gave {order:?}");
            }
            prop_assert!(body.split(", ").count() <= sort_keys.len() + 1);
        }
    }
}

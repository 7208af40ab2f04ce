//! Manifests through `/v2`: tags, deletes, validation, indexes, referrers and their paging,
//! `?tag=` and `?digest=` on pushes, the catalog and permissions, 405s in the OCI format, and
//! replicas seeing each other's changes.

use super::*;

all_backends!(manifests_tags_and_deletes, |app| {
    let auth = admin();
    let (d, body) = push_image(&app, "library/img", "v1", &[b"layer one", b"layer two"]).await;
    // GET/HEAD by tag and digest.
    for reference in ["v1", d.as_str()] {
        let path = format!("/v2/library/img/manifests/{reference}");
        let r = app.get_with(&path, &[("authorization", &auth)]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, body);
        assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
        let r = app.call(Method::HEAD, &path, &[("authorization", &auth)], vec![]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-length"), Some(body.len().to_string().as_str()));
        assert!(r.body.is_empty());
    }
    // Anonymous pull of the public project.
    assert_eq!(app.get("/v2/library/img/manifests/v1").await.status, StatusCode::OK);
    // Same manifest under a digest reference and a second tag.
    assert_eq!(put_manifest(&app, "library/img", &d, OCI_MANIFEST, &body).await.status, StatusCode::CREATED);
    assert_eq!(
        put_manifest(&app, "library/img", "latest", OCI_MANIFEST, &body).await.status,
        StatusCode::CREATED
    );
    // Tags list with pagination.
    for t in ["a1", "b2", "c3"] {
        put_manifest(&app, "library/img", t, OCI_MANIFEST, &body).await;
    }
    let r = app.get_with("/v2/library/img/tags/list", &[("authorization", &auth)]).await;
    assert_eq!(r.json(), json!({"name":"library/img","tags":["a1","b2","c3","latest","v1"]}));
    let r = app.get_with("/v2/library/img/tags/list?n=2", &[("authorization", &auth)]).await;
    assert_eq!(r.json()["tags"], json!(["a1", "b2"]));
    assert_eq!(r.header("link"), Some("</v2/library/img/tags/list?n=2&last=b2>; rel=\"next\""));
    let r = app.get_with("/v2/library/img/tags/list?n=2&last=b2", &[("authorization", &auth)]).await;
    assert_eq!(r.json()["tags"], json!(["c3", "latest"]));
    let r = app.get_with("/v2/library/img/tags/list?n=2&last=latest", &[("authorization", &auth)]).await;
    assert_eq!(r.json()["tags"], json!(["v1"]));
    assert!(r.header("link").is_none());
    let r = app.get_with("/v2/library/img/tags/list?n=-1", &[("authorization", &auth)]).await;
    assert_eq!(oci_code(&r), "PAGINATION_NUMBER_INVALID");
    let r = app.get_with("/v2/library/nope/tags/list", &[("authorization", &auth)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(oci_code(&r), "NAME_UNKNOWN");
    // Moving a tag.
    let (d2, _) = push_image(&app, "library/img", "v1", &[b"layer three"]).await;
    let r = app.get_with("/v2/library/img/manifests/v1", &[("authorization", &auth)]).await;
    assert_eq!(r.header("docker-content-digest"), Some(d2.as_str()));
    // Tag delete keeps the manifest.
    let r =
        app.call(Method::DELETE, "/v2/library/img/manifests/a1", &[("authorization", &auth)], vec![]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        app.get_with("/v2/library/img/manifests/a1", &[("authorization", &auth)]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get_with(&format!("/v2/library/img/manifests/{d}"), &[("authorization", &auth)]).await.status,
        StatusCode::OK
    );
    // Manifest delete by digest removes its tags.
    let r = app
        .call(Method::DELETE, &format!("/v2/library/img/manifests/{d}"), &[("authorization", &auth)], vec![])
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = app.get_with("/v2/library/img/manifests/latest", &[("authorization", &auth)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(oci_code(&r), "MANIFEST_UNKNOWN");
    let r = app
        .call(Method::DELETE, &format!("/v2/library/img/manifests/{d}"), &[("authorization", &auth)], vec![])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Blob delete unlinks it from the repository.
    let layer = sha256(b"layer three");
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/v2/library/img/blobs/{layer}"),
            &[("authorization", &auth)],
            vec![]
        )
        .await
        .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.get_with(&format!("/v2/library/img/blobs/{layer}"), &[("authorization", &auth)]).await.status,
        StatusCode::NOT_FOUND
    );
});

all_backends!(manifest_validation, |app| {
    let auth = admin();
    let missing = sha256(b"never pushed");
    let cfg = push_blob(&app, "library/v", b"{}").await;
    let m = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":cfg,"size":2},
        "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":missing,"size":12}]});
    let r = put_manifest(&app, "library/v", "t", OCI_MANIFEST, &serde_json::to_vec(&m).unwrap()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(oci_code(&r), "MANIFEST_BLOB_UNKNOWN");
    // Non-distributable layers need not be present.
    let m = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":cfg,"size":2},
        "layers":[{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","digest":missing,"size":12,"urls":["https://example.com/x"]}]});
    assert_eq!(
        put_manifest(&app, "library/v", "nd", OCI_MANIFEST, &serde_json::to_vec(&m).unwrap()).await.status,
        StatusCode::CREATED
    );
    // Size mismatch, bad JSON, bad media type, digest reference mismatch.
    let m = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":cfg,"size":3},"layers":[]});
    assert_eq!(
        oci_code(&put_manifest(&app, "library/v", "t", OCI_MANIFEST, &serde_json::to_vec(&m).unwrap()).await),
        "MANIFEST_INVALID"
    );
    assert_eq!(
        oci_code(&put_manifest(&app, "library/v", "t", OCI_MANIFEST, b"{nope").await),
        "MANIFEST_INVALID"
    );
    assert_eq!(
        oci_code(
            &put_manifest(
                &app,
                "library/v",
                "t",
                "text/plain",
                br#"{"schemaVersion":2,"mediaType":"text/plain"}"#
            )
            .await
        ),
        "MANIFEST_INVALID"
    );
    let good = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":cfg,"size":2},"layers":[]});
    let r =
        put_manifest(&app, "library/v", &missing, OCI_MANIFEST, &serde_json::to_vec(&good).unwrap()).await;
    assert_eq!(oci_code(&r), "DIGEST_INVALID");
    // Oversized.
    let big = vec![b' '; 4 * 1024 * 1024 + 1];
    let r = put_manifest(&app, "library/v", "big", OCI_MANIFEST, &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(oci_code(&r), "MANIFEST_INVALID");
    // Invalid names and tags.
    let r = app.get_with("/v2/Library/X/manifests/latest", &[("authorization", &auth)]).await;
    assert_eq!(oci_code(&r), "NAME_INVALID");
    let r = app.get_with("/v2/library/x/manifests/-bad", &[("authorization", &auth)]).await;
    assert_eq!(oci_code(&r), "TAG_INVALID");
    // A name without a project: 404 NAME_UNKNOWN (clients stop; a 400 made docker retry).
    let r = app.call(Method::POST, "/v2/single/blobs/uploads/", &[("authorization", &auth)], vec![]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(oci_code(&r), "NAME_UNKNOWN");
    assert!(r.json()["errors"][0]["message"].as_str().unwrap().contains("project \"single\" not found"));
    // Pushing into a project that does not exist.
    let r =
        app.call(Method::POST, "/v2/noproject/x/blobs/uploads/", &[("authorization", &auth)], vec![]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(oci_code(&r), "NAME_UNKNOWN");
    // Unknown endpoint and method.
    let r = app.get_with("/v2/library/x/whatever", &[("authorization", &auth)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r =
        app.call(Method::PATCH, "/v2/library/x/manifests/latest", &[("authorization", &auth)], vec![]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(oci_code(&r), "UNSUPPORTED");
});

all_backends!(indexes_and_referrers, |app| {
    let auth = admin();
    let (amd, amd_body) = push_image(
        &app,
        "library/multi",
        &sha256(b"x")[..0].to_string().replace("", "amd"),
        &[b"amd64 layer"],
    )
    .await;
    let (arm, arm_body) = push_image(&app, "library/multi", "arm", &[b"arm64 layer"]).await;
    let index = json!({"schemaVersion":2,"mediaType":OCI_INDEX,"manifests":[
        {"mediaType":OCI_MANIFEST,"digest":amd,"size":amd_body.len(),"platform":{"os":"linux","architecture":"amd64"}},
        {"mediaType":OCI_MANIFEST,"digest":arm,"size":arm_body.len(),"platform":{"os":"linux","architecture":"arm64"}}]});
    let ib = serde_json::to_vec(&index).unwrap();
    let r = put_manifest(&app, "library/multi", "latest", OCI_INDEX, &ib).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = app.get_with("/v2/library/multi/manifests/latest", &[("authorization", &auth)]).await;
    assert_eq!(r.header("content-type"), Some(OCI_INDEX));
    assert_eq!(r.body, ib);
    // An index whose child is missing.
    let bad = json!({"schemaVersion":2,"mediaType":OCI_INDEX,"manifests":[{"mediaType":OCI_MANIFEST,"digest":sha256(b"nope"),"size":4}]});
    assert_eq!(
        oci_code(
            &put_manifest(&app, "library/multi", "bad", OCI_INDEX, &serde_json::to_vec(&bad).unwrap()).await
        ),
        "MANIFEST_BLOB_UNKNOWN"
    );

    // Referrers: an SBOM and a signature attached to the amd64 image.
    let empty = push_blob(&app, "library/multi", b"{}").await;
    let mut referrers = vec![];
    for (kind, payload) in
        [("application/vnd.example.sbom", &b"sbom"[..]), ("application/vnd.example.sig", &b"sig"[..])]
    {
        let layer = push_blob(&app, "library/multi", payload).await;
        let art = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,"artifactType":kind,
            "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":empty,"size":2},
            "layers":[{"mediaType":"application/octet-stream","digest":layer,"size":payload.len()}],
            "subject":{"mediaType":OCI_MANIFEST,"digest":amd,"size":amd_body.len()},
            "annotations":{"org.example.kind":kind}});
        let body = serde_json::to_vec(&art).unwrap();
        let d = sha256(&body);
        let r = put_manifest(&app, "library/multi", &d, OCI_MANIFEST, &body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(r.header("oci-subject"), Some(amd.as_str()));
        referrers.push(d);
    }
    let r = app.get_with(&format!("/v2/library/multi/referrers/{amd}"), &[("authorization", &auth)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some(OCI_INDEX));
    let j = r.json();
    assert_eq!(j["mediaType"], OCI_INDEX);
    assert_eq!(j["manifests"].as_array().unwrap().len(), 2);
    assert!(j["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["annotations"]["org.example.kind"] == m["artifactType"]));
    assert!(r.header("oci-filters-applied").is_none());
    let r = app
        .get_with(
            &format!("/v2/library/multi/referrers/{amd}?artifactType=application/vnd.example.sig"),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    let j = r.json();
    assert_eq!(j["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(j["manifests"][0]["digest"], referrers[1].as_str());
    assert_eq!(j["manifests"][0]["artifactType"], "application/vnd.example.sig");
    // Unknown subject: an empty index, not an error.
    let r = app
        .get_with(&format!("/v2/library/multi/referrers/{}", sha256(b"unknown")), &[("authorization", &auth)])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["manifests"], json!([]));
});

all_backends!(catalog_and_permissions, |app| {
    push_image(&app, "library/one", "v1", &[b"1"]).await;
    push_image(&app, "library/two", "v1", &[b"2"]).await;
    let now = server::db::now_ms();
    sqlx::query("INSERT INTO projects (name, owner_id, public, created_at, updated_at) VALUES ('private', 1, 0, $1, $1)")
        .bind(now)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    push_image(&app, "private/three", "v1", &[b"3"]).await;
    let r = app.get_with("/v2/_catalog", &[("authorization", &admin())]).await;
    assert_eq!(r.json(), json!({"repositories":["library/one","library/two","private/three"]}));
    let r = app.get_with("/v2/_catalog?n=1&last=library/one", &[("authorization", &admin())]).await;
    assert_eq!(r.json(), json!({"repositories":["library/two"]}));
    assert_eq!(r.header("link"), Some("</v2/_catalog?n=1&last=library%2Ftwo>; rel=\"next\""));
    assert_eq!(app.get("/v2/_catalog").await.status, StatusCode::UNAUTHORIZED);

    // A non-admin user: reads public projects, cannot push to them or read private ones.
    crate::common::create_user(&app.state.db, "bob", "Bob1234567", false).await;
    let bob = basic("bob", "Bob1234567");
    let r = app.get_with("/v2/_catalog", &[("authorization", &bob)]).await;
    assert_eq!(r.json(), json!({"repositories":["library/one","library/two"]}));
    assert_eq!(
        app.get_with("/v2/library/one/manifests/v1", &[("authorization", &bob)]).await.status,
        StatusCode::OK
    );
    let r = app.get_with("/v2/private/three/manifests/v1", &[("authorization", &bob)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(oci_code(&r), "DENIED");
    let r =
        app.call(Method::POST, "/v2/library/one/blobs/uploads/", &[("authorization", &bob)], vec![]).await;
    assert_eq!(oci_code(&r), "DENIED");
    let r =
        app.call(Method::DELETE, "/v2/library/one/manifests/v1", &[("authorization", &bob)], vec![]).await;
    assert_eq!(oci_code(&r), "DENIED");
    // Anonymous: private projects ask for credentials, writes too.
    let r = app.get("/v2/private/three/manifests/v1").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").is_some());
    let r = app.call(Method::POST, "/v2/library/one/blobs/uploads/", &[], vec![]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Pull counting (written in batches).
    app.state.pulls.flush(&app.state.db).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT pull_count FROM repositories WHERE name = 'library/one'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
});

// Issue 18: methods the registry does not serve are 405 in the OCI error format, `/v2/` too.
all_backends!(unknown_methods_are_405_in_the_oci_format, |app| {
    for auth in [None, Some(admin())] {
        let headers: Vec<(&str, &str)> =
            auth.as_deref().map(|a| vec![("authorization", a)]).unwrap_or_default();
        for (method, path) in [
            ("TRACE", "/v2/"),
            ("TRACE", "/v2"),
            ("OPTIONS", "/v2/"),
            ("POST", "/v2/"),
            ("TRACE", "/v2/library/x/manifests/latest"),
        ] {
            let r = app.call(Method::from_bytes(method.as_bytes()).unwrap(), path, &headers, vec![]).await;
            if path.ends_with("latest") && auth.is_none() {
                continue; // the manifest route authenticates first; covered with credentials
            }
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {}", r.text());
            assert_eq!(oci_code(&r), "UNSUPPORTED", "{method} {path}");
        }
    }
    let r = app.call(Method::from_bytes(b"TRACE").unwrap(), "/v2/", &[], vec![]).await;
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
});

// Issue 18 (distribution-spec, "Pushing Manifests"): a push by digest may tag in the same
// request with `?tag=`; every accepted tag comes back in `OCI-Tag`.
all_backends!(a_push_by_digest_tags_with_the_tag_query_parameter, |app| {
    let auth = admin();
    let (_, body) = push_image(&app, "library/qt", "seed", &[b"qt layer"]).await;
    // The same config and layer, another manifest (annotations differ).
    let mut m: serde_json::Value = serde_json::from_slice(&body).unwrap();
    m["annotations"] = json!({"v": "2"});
    let body = serde_json::to_vec(&m).unwrap();
    let d = sha256(&body);
    let r = put_manifest(
        &app,
        "library/qt",
        &format!("{d}?tag=1.2.3&tag=1.2&tag=latest&tag=1.2"),
        OCI_MANIFEST,
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    let tags: Vec<&str> = r.headers.get_all("oci-tag").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(tags, ["1.2.3", "1.2", "latest"]);
    for t in ["1.2.3", "1.2", "latest"] {
        let r = app.get_with(&format!("/v2/library/qt/manifests/{t}"), &[("authorization", &auth)]).await;
        assert_eq!(r.header("docker-content-digest"), Some(d.as_str()), "{t}");
    }
    // A bad tag refuses the whole request: nothing is tagged.
    let r = put_manifest(&app, "library/qt", &format!("{d}?tag=ok&tag=-bad"), OCI_MANIFEST, &body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(oci_code(&r), "TAG_INVALID");
    assert_eq!(
        app.get_with("/v2/library/qt/manifests/ok", &[("authorization", &auth)]).await.status,
        StatusCode::NOT_FOUND
    );
    // Too many: 414.
    let many: String = (0..101).map(|i| format!("tag=t{i}&")).collect();
    let r = put_manifest(&app, "library/qt", &format!("{d}?{many}"), OCI_MANIFEST, &body).await;
    assert_eq!(r.status, StatusCode::URI_TOO_LONG);
    // Without tags: no OCI-Tag header.
    let r = put_manifest(&app, "library/qt", &d, OCI_MANIFEST, &body).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.header("oci-tag").is_none());
});

// Issue 18: a manifest pushed by tag keeps the digest algorithm the client asks for with
// `?digest=` (regclient's and olareg's form; the spec's open question, distribution-spec #494);
// without it, sha256. A body that does not match the named digest is refused.
all_backends!(a_push_by_tag_keeps_the_digest_algorithm_the_client_names, |app| {
    let auth = admin();
    let (_, body) = push_image(&app, "library/alg", "seed", &[b"alg layer"]).await;
    let mut m: serde_json::Value = serde_json::from_slice(&body).unwrap();
    m["annotations"] = json!({"alg": "sha512"});
    let body = serde_json::to_vec(&m).unwrap();
    let d512 =
        server::registry::digest::Digest::of(server::registry::digest::Algorithm::Sha512, &body).to_string();
    let r = put_manifest(&app, "library/alg", &format!("v512?digest={d512}"), OCI_MANIFEST, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("docker-content-digest"), Some(d512.as_str()));
    let r = app.get_with("/v2/library/alg/manifests/v512", &[("authorization", &auth)]).await;
    assert_eq!(r.header("docker-content-digest"), Some(d512.as_str()));
    assert_eq!(r.body, body);
    let r = app.get_with(&format!("/v2/library/alg/manifests/{d512}"), &[("authorization", &auth)]).await;
    assert_eq!(r.status, StatusCode::OK);
    // A digest the body does not have: refused, nothing tagged.
    let wrong = server::registry::digest::Digest::of(server::registry::digest::Algorithm::Sha512, b"other")
        .to_string();
    let r = put_manifest(&app, "library/alg", &format!("bad?digest={wrong}"), OCI_MANIFEST, &body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(oci_code(&r), "DIGEST_INVALID");
    let r = app
        .call(
            Method::PUT,
            "/v2/library/alg/manifests/bad?digest=md5:abc",
            &[("authorization", &auth), ("content-type", OCI_MANIFEST)],
            body.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(oci_code(&r), "DIGEST_INVALID");
    assert_eq!(
        app.get_with("/v2/library/alg/manifests/bad", &[("authorization", &auth)]).await.status,
        StatusCode::NOT_FOUND
    );
});

// Issue 18: the referrers list follows the spec's artifactType rule: an image manifest without
// `artifactType` is listed (and filtered) with its config's media type; an index without one
// has no `artifactType` field at all (not "").
all_backends!(referrers_artifact_type_falls_back_to_the_config_media_type, |app| {
    let auth = admin();
    let (subject, subject_body) = push_image(&app, "library/refs", "v1", &[b"refs layer"]).await;
    let cfg_type = "application/vnd.example.config.v1+json";
    let cfg = push_blob(&app, "library/refs", b"{\"x\":1}").await;
    let img = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,
        "config":{"mediaType":cfg_type,"digest":cfg,"size":7},"layers":[],
        "subject":{"mediaType":OCI_MANIFEST,"digest":subject,"size":subject_body.len()}});
    let img_body = serde_json::to_vec(&img).unwrap();
    let img_d = sha256(&img_body);
    assert_eq!(
        put_manifest(&app, "library/refs", &img_d, OCI_MANIFEST, &img_body).await.status,
        StatusCode::CREATED
    );
    // A plain image config (no artifactType) too: it is listed with the image config type.
    let (plain, _) = push_image(&app, "library/refs", "plain", &[b"plain layer"]).await;
    let plain_body =
        app.get_with(&format!("/v2/library/refs/manifests/{plain}"), &[("authorization", &auth)]).await.body;
    let mut pm: serde_json::Value = serde_json::from_slice(&plain_body).unwrap();
    pm["subject"] = json!({"mediaType":OCI_MANIFEST,"digest":subject,"size":subject_body.len()});
    let pm_body = serde_json::to_vec(&pm).unwrap();
    let pm_d = sha256(&pm_body);
    assert_eq!(
        put_manifest(&app, "library/refs", &pm_d, OCI_MANIFEST, &pm_body).await.status,
        StatusCode::CREATED
    );
    let idx = json!({"schemaVersion":2,"mediaType":OCI_INDEX,"manifests":[
        {"mediaType":OCI_MANIFEST,"digest":plain,"size":plain_body.len()}],
        "subject":{"mediaType":OCI_MANIFEST,"digest":subject,"size":subject_body.len()}});
    let idx_body = serde_json::to_vec(&idx).unwrap();
    let idx_d = sha256(&idx_body);
    assert_eq!(
        put_manifest(&app, "library/refs", &idx_d, OCI_INDEX, &idx_body).await.status,
        StatusCode::CREATED
    );

    let r = app.get_with(&format!("/v2/library/refs/referrers/{subject}"), &[("authorization", &auth)]).await;
    let j = r.json();
    let list = j["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 3, "{j}");
    let by = |d: &str| list.iter().find(|m| m["digest"] == d).unwrap().clone();
    assert_eq!(by(&img_d)["artifactType"], cfg_type);
    assert_eq!(by(&pm_d)["artifactType"], "application/vnd.oci.image.config.v1+json");
    assert!(by(&idx_d).get("artifactType").is_none(), "{j}");
    // The fallback type is what the filter matches.
    let r = app
        .get_with(
            &format!("/v2/library/refs/referrers/{subject}?artifactType={}", cfg_type.replace('+', "%2B")),
            &[("authorization", &auth)],
        )
        .await;
    let j = r.json();
    assert_eq!(j["manifests"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["manifests"][0]["digest"], img_d.as_str());
    assert_eq!(j["manifests"][0]["artifactType"], cfg_type);
});

// Issue 19 loose end: the referrers list is paged with a `Link` header (as tags/list), in
// digest order, the filter carried into the next page's link; following the links yields every
// referrer exactly once.
all_backends!(referrers_are_paged_with_link, |app| {
    let auth = admin();
    let (subject, subject_body) = push_image(&app, "library/paged", "v1", &[b"paged layer"]).await;
    let empty = push_blob(&app, "library/paged", b"{}").await;
    let mut sigs = vec![];
    let mut all = vec![];
    for i in 0..5 {
        let kind = if i % 2 == 0 { "application/vnd.example.sig" } else { "application/vnd.example.sbom" };
        let art = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,"artifactType":kind,
            "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":empty,"size":2},
            "layers":[],"annotations":{"n":i.to_string()},
            "subject":{"mediaType":OCI_MANIFEST,"digest":subject,"size":subject_body.len()}});
        let body = serde_json::to_vec(&art).unwrap();
        let d = sha256(&body);
        assert_eq!(
            put_manifest(&app, "library/paged", &d, OCI_MANIFEST, &body).await.status,
            StatusCode::CREATED
        );
        if i % 2 == 0 {
            sigs.push(d.clone());
        }
        all.push(d);
    }
    all.sort();
    sigs.sort();
    // Follows the links from `first`; returns the digests in order and the number of pages.
    let follow = |first: String| {
        let app = &app;
        let auth = auth.clone();
        async move {
            let (mut next, mut seen, mut pages) = (Some(first), vec![], 0);
            while let Some(url) = next.take() {
                let r = app.get_with(&url, &[("authorization", &auth)]).await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.text());
                assert_eq!(r.header("content-type"), Some(OCI_INDEX));
                let j = r.json();
                let page = j["manifests"].as_array().unwrap();
                assert!(page.len() <= 2, "{j}");
                seen.extend(page.iter().map(|m| m["digest"].as_str().unwrap().to_string()));
                pages += 1;
                next = r.header("link").map(|l| {
                    assert!(l.ends_with(">; rel=\"next\""), "{l}");
                    l.trim_start_matches('<').split('>').next().unwrap().to_string()
                });
            }
            (seen, pages)
        }
    };
    let (seen, pages) = follow(format!("/v2/library/paged/referrers/{subject}?n=2")).await;
    assert_eq!(seen, all);
    assert_eq!(pages, 3);
    let (seen, pages) =
        follow(format!("/v2/library/paged/referrers/{subject}?n=2&artifactType=application/vnd.example.sig"))
            .await;
    assert_eq!(seen, sigs, "the filter is kept in the links");
    assert_eq!(pages, 2);
    // Without n: everything on one page (the default page is far larger), no link.
    let r =
        app.get_with(&format!("/v2/library/paged/referrers/{subject}"), &[("authorization", &auth)]).await;
    assert_eq!(r.json()["manifests"].as_array().unwrap().len(), 5);
    assert!(r.header("link").is_none());
    // A bad n is the spec's error, not a 500.
    let r = app
        .get_with(&format!("/v2/library/paged/referrers/{subject}?n=x"), &[("authorization", &auth)])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
});

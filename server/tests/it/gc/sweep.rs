//! What a GC run deletes and keeps: shared layers, untagged indexes and referrers, children
//! and accessories of deleted artifacts, racing pushes, fresh blobs, abandoned uploads and
//! orphaned upload data.

use super::*;

all_backends!(dry_run_then_sweep_keeps_shared_layers, toml = NOW, |app| {
    let base = vec![7u8; 3000];
    let only_a = vec![1u8; 1000];
    let only_b = vec![2u8; 2000];
    let (da, ma) = push_image(&app, "library/a", "v1", &[&base, &only_a]).await;
    let (_, mb) = push_image(&app, "library/b", "v1", &[&base, &only_b]).await;
    // Nothing is garbage yet.
    assert_eq!(report(&gc(&app, false, false).await), (0, 0, 0, 0));

    // Logical delete: gone from /v2 at once, bytes still there.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v2/library/a/manifests/{da}"),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(pull(&app, "library/a", &da).await.status, StatusCode::NOT_FOUND);
    assert!(stored(&app, &sha256(&only_a)).await);

    // A dry run reports exactly what goes and deletes nothing.
    let dry = gc(&app, true, false).await;
    let expected = (1, 1, (only_a.len() + ma.len()) as u64, 0);
    assert_eq!(report(&dry), expected);
    assert_eq!(dry["deleted"], false);
    assert!(stored(&app, &sha256(&only_a)).await && stored(&app, &da).await);
    let log =
        app.get_with(&format!("/api/v2.0/system/gc/{}/log", dry["id"]), &[("authorization", &admin())]).await;
    assert_eq!(log.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(log.text().contains(&format!("would delete blob {}", sha256(&only_a))), "{}", log.text());
    assert!(log.text().contains(&format!("would delete manifest {da}")), "{}", log.text());

    // The real run deletes the same.
    let run = gc(&app, false, false).await;
    assert_eq!(report(&run), expected);
    assert_eq!(run["deleted"], true);
    assert!(!stored(&app, &sha256(&only_a)).await && !stored(&app, &da).await);
    assert_eq!(blob(&app, "library/a", &sha256(&only_a)).await.status, StatusCode::NOT_FOUND);
    // What b uses stays, bit-identical: the shared base layer and config are still there.
    let r = pull(&app, "library/b", "v1").await;
    assert_eq!(r.body, mb);
    assert_eq!(blob(&app, "library/b", &sha256(&base)).await.body, base);
    assert_eq!(blob(&app, "library/b", &sha256(&only_b)).await.body, only_b);
    // GC again: nothing more.
    assert_eq!(report(&gc(&app, false, false).await), (0, 0, 0, 0));
    // Pushing a again after GC works (the layer is uploaded anew, not "already exists").
    assert_eq!(blob(&app, "library/a", &sha256(&only_a)).await.status, StatusCode::NOT_FOUND);
    let (da2, ma2) = push_image(&app, "library/a", "v1", &[&base, &only_a]).await;
    assert_eq!((da2.as_str(), ma2.as_slice()), (da.as_str(), ma.as_slice()));
    assert_eq!(pull(&app, "library/a", "v1").await.body, ma);
    assert_eq!(blob(&app, "library/a", &sha256(&only_a)).await.body, only_a);
});

both_dbs!(untagged_indexes_and_referrers, toml = NOW, |app| {
    // An untagged image (its tag deleted), an index with two children, a signature of the index.
    let (untagged, _) = push_image(&app, "library/u", "tmp", &[b"x"]).await;
    let r =
        app.call(Method::DELETE, "/v2/library/u/manifests/tmp", &[("authorization", &admin())], vec![]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let (c1, _) = push_image(&app, "library/idx", "tmp1", &[b"amd64 layer"]).await;
    let (c2, _) = push_image(&app, "library/idx", "tmp2", &[b"arm64 layer"]).await;
    for t in ["tmp1", "tmp2"] {
        let r = app
            .call(
                Method::DELETE,
                &format!("/v2/library/idx/manifests/{t}"),
                &[("authorization", &admin())],
                vec![],
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": c1, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": OCI_MANIFEST, "digest": c2, "size": 1, "platform": {"os": "linux", "architecture": "arm64"}}]});
    let index = serde_json::to_vec(&index).unwrap();
    let di = sha256(&index);
    assert_eq!(put_manifest(&app, "library/idx", &di, OCI_INDEX, &index).await.status, StatusCode::CREATED);
    let empty = push_blob(&app, "library/idx", b"{}").await;
    let sig = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [], "subject": {"mediaType": OCI_INDEX, "digest": di, "size": index.len()}});
    let sig = serde_json::to_vec(&sig).unwrap();
    let ds = sha256(&sig);
    assert_eq!(put_manifest(&app, "library/idx", &ds, OCI_MANIFEST, &sig).await.status, StatusCode::CREATED);
    let (kept, _) = push_image(&app, "library/k", "v1", &[b"kept layer"]).await;

    // Without the option, referenced artifacts stay.
    assert_eq!(report(&gc(&app, false, false).await).3, 0);
    // Dry run with it: the untagged image, the index, its two children and the signature.
    let dry = gc(&app, true, true).await;
    assert_eq!(report(&dry).3, 5, "{dry}");
    assert_eq!(pull(&app, "library/idx", &di).await.status, StatusCode::OK);
    let run = gc(&app, false, true).await;
    assert_eq!(report(&run).3, 5, "{run}");
    assert_eq!(report(&run).1, 5, "five manifests freed: {run}");
    for (repo, d) in [
        ("library/u", &untagged),
        ("library/idx", &di),
        ("library/idx", &c1),
        ("library/idx", &c2),
        ("library/idx", &ds),
    ] {
        assert_eq!(pull(&app, repo, d).await.status, StatusCode::NOT_FOUND, "{repo}@{d}");
        assert!(!stored(&app, d).await, "{d} still stored");
    }
    assert_eq!(pull(&app, "library/k", "v1").await.status, StatusCode::OK);
    assert!(stored(&app, &kept).await);
});

both_dbs!(delete_frees_children_and_accessories, toml = NOW, |app| {
    let (c1, _) = push_image(&app, "library/m", "amd64", &[b"l1"]).await;
    let (c2, _) = push_image(&app, "library/m", "tmp", &[b"l2"]).await;
    let r =
        app.call(Method::DELETE, "/v2/library/m/manifests/tmp", &[("authorization", &admin())], vec![]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": c1, "size": 1}, {"mediaType": OCI_MANIFEST, "digest": c2, "size": 1}]}))
    .unwrap();
    let di = sha256(&index);
    assert_eq!(
        put_manifest(&app, "library/m", "latest", OCI_INDEX, &index).await.status,
        StatusCode::CREATED
    );
    let empty = push_blob(&app, "library/m", b"{}").await;
    let sbom = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [], "subject": {"mediaType": OCI_INDEX, "digest": di, "size": index.len()}}),
    )
    .unwrap();
    let dsbom = sha256(&sbom);
    assert_eq!(
        put_manifest(&app, "library/m", &dsbom, OCI_MANIFEST, &sbom).await.status,
        StatusCode::CREATED
    );
    // A child of the index cannot be deleted on its own (Harbor: 412), on either surface.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v2/library/m/manifests/{c2}"),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["code"], "DENIED");
    assert!(r.text().contains(&di), "{}", r.text());
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v2.0/projects/library/repositories/m/artifacts/{c1}"),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.text());
    assert_eq!(pull(&app, "library/m", "latest").await.status, StatusCode::OK);
    // Deleting the index: its SBOM goes, the untagged child is freed, the tagged one stays.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v2/library/m/manifests/{di}"),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(pull(&app, "library/m", &dsbom).await.status, StatusCode::NOT_FOUND);
    assert_eq!(pull(&app, "library/m", &c2).await.status, StatusCode::NOT_FOUND);
    assert_eq!(pull(&app, "library/m", "amd64").await.status, StatusCode::OK);
    let r = app.get_with(&format!("/v2/library/m/referrers/{di}"), &[("authorization", &admin())]).await;
    assert_eq!(r.json()["manifests"], json!([]));
    // The tagged child is listed on its own again.
    let r = app
        .get_with("/api/v2.0/projects/library/repositories/m/artifacts", &[("authorization", &admin())])
        .await;
    let list = r.json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["digest"], json!(c1));
    // Now that no index lists it, the tagged child can be deleted.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v2/library/m/manifests/{c1}"),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    // The audit log names each deleted artifact.
    app.state.audit.flush(&app.state.db).await.unwrap();
    let r = app
        .get_with("/api/v2.0/audit-logs?q=operation=delete&page_size=50", &[("authorization", &admin())])
        .await;
    let text = r.text();
    for d in [&di, &dsbom, &c2] {
        assert!(text.contains(d.as_str()), "audit lacks {d}: {text}");
    }
});

both_dbs!(racing_push_is_told_to_retry, toml = NOW, |app| {
    // A blob GC has marked (status 'deleting') is invisible and cannot be re-referenced.
    let data = b"being collected".to_vec();
    let d = push_blob(&app, "library/r", &data).await;
    sqlx::query("UPDATE blobs SET status = 'deleting' WHERE digest = $1")
        .bind(&d)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(blob(&app, "library/r", &d).await.status, StatusCode::NOT_FOUND);
    let r = app
        .call(
            Method::POST,
            &format!("/v2/library/r2/blobs/uploads/?mount={d}&from=library/r"),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "mount of a blob being deleted falls back to an upload");
    // Uploading the same content meanwhile: 503 with Retry-After, the session survives.
    let loc = start_upload(&app, "library/r").await;
    let r = close_upload(&app, &loc, &d, &[], &data).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["code"], "UNAVAILABLE");
    assert_eq!(r.header("retry-after"), Some("5"));
    // A manifest referencing it is refused.
    let config = push_blob(&app, "library/r", br#"{"os":"linux"}"#).await;
    let m = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 14},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": data.len()}]}))
    .unwrap();
    let r = put_manifest(&app, "library/r", "v1", OCI_MANIFEST, &m).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    // GC finishes the deletion; the client's retry of the same upload then succeeds.
    let run = gc(&app, false, false).await;
    assert!(report(&run).0 >= 1, "{run}");
    let r = app.get_with(&loc, &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "the upload session is still there");
    // (The config, unreferenced after the refused push, was collected too: push it again.)
    assert_eq!(push_blob(&app, "library/r", br#"{"os":"linux"}"#).await, config);
    let r = close_upload(&app, &loc, &d, &[("content-length", "0")], &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(blob(&app, "library/r", &d).await.body, data);
    assert_eq!(put_manifest(&app, "library/r", "v1", OCI_MANIFEST, &m).await.status, StatusCode::CREATED);
    assert_eq!(report(&gc(&app, false, false).await).0, 0);
    assert_eq!(blob(&app, "library/r", &d).await.body, data);
});

// With the default window (2 h) a freshly uploaded, unreferenced blob stays; an upload session
// older than `upload_max_age` goes with its data.
both_dbs!(window_protects_fresh_blobs_and_uploads_expire, |app| {
    let d = push_blob(&app, "library/w", b"not yet in a manifest").await;
    let loc = start_upload(&app, "library/w").await;
    let id = loc.rsplit('/').next().unwrap().to_string();
    let r = patch_upload(&app, &loc, &[("content-type", "application/octet-stream")], b"partial").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let key = format!("uploads/{id}/data");
    assert!(app.state.storage.stat(&key).await.unwrap().is_some());
    let run = gc(&app, false, false).await;
    assert_eq!(report(&run), (0, 0, 0, 0), "{run}");
    assert_eq!(run["result"]["uploads"], 0);
    assert_eq!(blob(&app, "library/w", &d).await.status, StatusCode::OK);
    // Abandoned: untouched for longer than upload_max_age (24 h).
    sqlx::query("UPDATE uploads SET updated_at = updated_at - 90000000 WHERE id = $1")
        .bind(&id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let run = gc(&app, false, false).await;
    assert_eq!(run["result"]["uploads"], 1, "{run}");
    assert!(app.state.storage.stat(&key).await.unwrap().is_none());
    let r = app.get_with(&loc, &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(blob(&app, "library/w", &d).await.status, StatusCode::OK);
});

// Upload data whose session row is gone (a crash between deleting the row and the data) is
// reclaimed once it is older than `upload_max_age`; younger data and data with a session stay;
// a dry run counts it without deleting. On every backend (S3 keeps uploads as part objects).
all_backends!(orphaned_upload_data_is_reclaimed, toml = &format!("{NOW}upload_max_age = \"4s\"\n"), |app| {
    async fn start(app: &TestApp, data: &[u8]) -> (String, String) {
        let loc = start_upload(app, "library/o").await;
        patch(app, &loc, data).await;
        (loc.rsplit('/').next().unwrap().to_string(), loc)
    }

    async fn patch(app: &TestApp, loc: &str, data: &[u8]) {
        let r = patch_upload(app, loc, &[("content-type", "application/octet-stream")], data).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    }

    async fn exists(app: &TestApp, id: &str) -> bool {
        app.state.storage.stat(&format!("uploads/{id}/data")).await.unwrap().is_some()
    }

    let (orphan, _) = start(&app, b"orphaned data").await;
    let (live, live_loc) = start(&app, b"live ").await;
    // The crash: the row is gone, the data stays.
    sqlx::query("DELETE FROM uploads WHERE id = $1").bind(&orphan).execute(&app.state.db.pool).await.unwrap();
    let run = gc(&app, false, false).await;
    assert_eq!(run["result"]["uploads"], 0, "younger than upload_max_age: {run}");
    assert!(exists(&app, &orphan).await);
    tokio::time::sleep(std::time::Duration::from_millis(5500)).await;
    // The live session goes on (its row and its data are fresh again).
    patch(&app, &live_loc, b"session").await;
    let run = gc(&app, true, false).await;
    assert_eq!(run["result"]["uploads"], 1, "{run}");
    assert_eq!(run["result"]["upload_bytes"], 13, "{run}");
    assert!(exists(&app, &orphan).await, "a dry run deletes nothing");
    let run = gc(&app, false, false).await;
    assert_eq!(run["result"]["uploads"], 1, "{run}");
    assert_eq!(run["result"]["upload_bytes"], 13, "{run}");
    assert!(!exists(&app, &orphan).await);
    assert!(app.state.storage.list("uploads/").await.unwrap().iter().all(|k| !k.contains(&orphan)));
    // The session with a row was left alone and completes.
    assert!(exists(&app, &live).await);
    let d = sha256(b"live session");
    let r = close_upload(&app, &live_loc, &d, &[], &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(blob(&app, "library/o", &d).await.body, b"live session");
    let run = gc(&app, false, false).await;
    assert_eq!(run["result"]["uploads"], 0, "{run}");
});

both_dbs!(an_immutable_accessory_tag_keeps_its_untagged_subject, toml = NOW, |app| {
    // An untagged image whose signature carries a tag an immutability rule protects: GC keeps
    // both (and finishes), until the rule goes.
    let (u, body) = push_image(&app, "library/u2", "tmp", &[b"u2 layer"]).await;
    let r = app
        .call(Method::DELETE, "/v2/library/u2/manifests/tmp", &[("authorization", &admin())], vec![])
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let empty = push_blob(&app, "library/u2", b"{}").await;
    let sig = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": u, "size": body.len()}}))
    .unwrap();
    let tag = format!("{}.sig", u.replace(':', "-"));
    assert_eq!(put_manifest(&app, "library/u2", &tag, OCI_MANIFEST, &sig).await.status, StatusCode::CREATED);
    let r = api(&app, Method::POST, "/api/v2.0/projects/library/immutabletagrules", json!({
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "*.sig"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}}))
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let rule = r.header("location").unwrap().to_string();
    let run = gc(&app, false, true).await;
    assert_eq!(report(&run).3, 0, "{run}");
    let log =
        app.get_with(&format!("/api/v2.0/system/gc/{}/log", run["id"]), &[("authorization", &admin())]).await;
    assert!(
        log.text().contains("kept artifact library/u2@") && log.text().contains("immutable"),
        "{}",
        log.text()
    );
    assert_eq!(pull(&app, "library/u2", &u).await.status, StatusCode::OK);
    assert_eq!(pull(&app, "library/u2", &tag).await.status, StatusCode::OK);
    let r = app.call(Method::DELETE, &rule, &[("authorization", &admin())], vec![]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let run = gc(&app, false, true).await;
    assert_eq!(report(&run).3, 2, "{run}");
    assert_eq!(pull(&app, "library/u2", &u).await.status, StatusCode::NOT_FOUND);
});

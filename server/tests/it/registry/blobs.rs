//! Blobs through `/v2`: the base endpoint and its challenge, reads and ranges, monolithic,
//! chunked, streamed, concurrent and mounted uploads, upload leases, failed and misplaced
//! chunks, and upload data going with its repository.

use super::*;

all_backends!(base_endpoint_and_auth_challenge, |app| {
    let r = app.get("/v2/").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(oci_code(&r), "UNAUTHORIZED");
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        r#"Bearer realm="http://127.0.0.1:8080/service/token",service="harbor-registry""#
    );
    assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));
    let r = app.get_with("/v2/", &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));
    assert_eq!(app.get_with("/v2", &[("authorization", &admin())]).await.status, StatusCode::OK);
    let r = app.get_with("/v2/", &[("authorization", &basic("admin", "wrong"))]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
});

all_backends!(monolithic_upload_and_blob_reads, |app| {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let d = sha256(&data);
    let r = app
        .call(
            Method::POST,
            &format!("/v2/library/a/blobs/uploads/?digest={d}"),
            &[("authorization", &admin())],
            data.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("location"), Some(format!("/v2/library/a/blobs/{d}").as_str()));
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));

    let path = format!("/v2/library/a/blobs/{d}");
    let r = app.call(Method::HEAD, &path, &[("authorization", &admin())], vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-length"), Some("100000"));
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert!(r.body.is_empty());
    let r = app.get_with(&path, &[("authorization", &admin())]).await;
    assert_eq!(r.body, data);
    // Ranges.
    let r = app.get_with(&path, &[("authorization", &admin()), ("range", "bytes=10-19")]).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.header("content-range"), Some("bytes 10-19/100000"));
    assert_eq!(r.body, data[10..20]);
    let r = app.get_with(&path, &[("authorization", &admin()), ("range", "bytes=99990-")]).await;
    assert_eq!(r.body, data[99_990..]);
    let r = app.get_with(&path, &[("authorization", &admin()), ("range", "bytes=100000-")]).await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.header("content-range"), Some("bytes */100000"));
    // Anonymous pull from the public project works; blobs are per repository.
    assert_eq!(app.get(&path).await.status, StatusCode::OK);
    let r = app.get_with(&format!("/v2/library/other/blobs/{d}"), &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(oci_code(&r), "BLOB_UNKNOWN");
    // Wrong digest for the content.
    let wrong = sha256(b"something else");
    let r = app
        .call(
            Method::POST,
            &format!("/v2/library/a/blobs/uploads/?digest={wrong}"),
            &[("authorization", &admin())],
            data.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(oci_code(&r), "DIGEST_INVALID");
});

all_backends!(post_then_put_and_sha512, |app| {
    let auth = admin();
    let r = app.call(Method::POST, "/v2/library/b/blobs/uploads/", &[("authorization", &auth)], vec![]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), Some("0-0"));
    let loc = r.header("location").unwrap().to_string();
    assert!(loc.starts_with("/v2/library/b/blobs/uploads/"));
    assert!(r.header("docker-upload-uuid").is_some());
    let data = b"sha512 content".to_vec();
    let d512 = format!("sha512:{}", hex(&Sha512::digest(&data)));
    let r = close_upload(&app, &loc, &d512, &[], &data).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = app.get_with(&format!("/v2/library/b/blobs/{d512}"), &[("authorization", &auth)]).await;
    assert_eq!(r.body, data);
    // An unsupported algorithm is refused clearly.
    let r = app.get_with("/v2/library/b/blobs/md5:abc", &[("authorization", &auth)]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(oci_code(&r), "DIGEST_INVALID");
    // Empty blob.
    let e = sha256(b"");
    let loc = start_upload(&app, "library/b").await;
    let r = close_upload(&app, &loc, &e, &[("content-length", "0")], &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(
        app.get_with(&format!("/v2/library/b/blobs/{e}"), &[("authorization", &auth)]).await.status,
        StatusCode::OK
    );
});

all_backends!(chunked_and_streamed_uploads, |app| {
    let auth = admin();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let d = sha256(&data);
    let loc = start_upload(&app, "library/c").await;
    let chunk = |a: usize, b: usize| data[a..b].to_vec();
    let r = patch_upload(
        &app,
        &loc,
        &[("content-range", "0-99999"), ("content-type", "application/octet-stream")],
        &chunk(0, 100_000),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.header("range"), Some("0-99999"));
    // Out of order → 416 with the current range.
    let r = patch_upload(&app, &loc, &[("content-range", "200000-299999")], &chunk(200_000, 300_000)).await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.header("range"), Some("0-99999"));
    assert_eq!(oci_code(&r), "RANGE_INVALID");
    // Status.
    let r = app.get_with(&loc, &[("authorization", &auth)]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("range"), Some("0-99999"));
    // The next chunk is accepted by another instance (replica) sharing DB and storage.
    let other = app.sibling().await;
    let r = patch_upload(&other, &loc, &[("content-range", "100000-199999")], &chunk(100_000, 200_000)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    // Streamed (no Content-Range) for the rest, then the final PUT without body.
    let r = patch_upload(&app, &loc, &[], &chunk(200_000, 300_000)).await;
    assert_eq!(r.header("range"), Some("0-299999"));
    let bad = sha256(b"x");
    let r = close_upload(&app, &loc, &bad, &[("content-length", "0")], &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(oci_code(&r), "DIGEST_INVALID");
    let r = close_upload(&other, &loc, &d, &[("content-length", "0")], &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(
        app.get_with(&format!("/v2/library/c/blobs/{d}"), &[("authorization", &auth)]).await.body,
        data
    );
    // The finished upload is gone.
    let r = app.get_with(&loc, &[("authorization", &auth)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(oci_code(&r), "BLOB_UPLOAD_UNKNOWN");
    // PUT without digest.
    let loc2 = start_upload(&app, "library/c").await;
    let r = app.call(Method::PUT, &loc2, &[("authorization", &auth)], vec![]).await;
    assert_eq!(oci_code(&r), "DIGEST_INVALID");
    // Cancel.
    let r = app.call(Method::DELETE, &loc2, &[("authorization", &auth)], vec![]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get_with(&loc2, &[("authorization", &auth)]).await.status, StatusCode::NOT_FOUND);
    // Another repository's upload id is unknown here.
    let r = app.call(Method::POST, "/v2/library/c/blobs/uploads/", &[("authorization", &auth)], vec![]).await;
    let id = r.header("docker-upload-uuid").unwrap().to_string();
    assert_eq!(
        app.get_with(&format!("/v2/library/zz/blobs/uploads/{id}"), &[("authorization", &auth)]).await.status,
        StatusCode::NOT_FOUND
    );
});

all_backends!(concurrent_pushes_of_the_same_blob, |app| {
    let data: Vec<u8> = (0..500_000u32).map(|i| (i % 241) as u8).collect();
    let d = sha256(&data);
    let mut tasks = vec![];
    for i in 0..4 {
        let router = app.router.clone();
        let (data, d) = (data.clone(), d.clone());
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let req = axum::http::Request::post(format!("/v2/library/r{i}/blobs/uploads/?digest={d}"))
                .header("authorization", admin())
                .body(axum::body::Body::from(data))
                .unwrap();
            router.oneshot(req).await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    for i in 0..4 {
        let r = app.get_with(&format!("/v2/library/r{i}/blobs/{d}"), &[("authorization", &admin())]).await;
        assert_eq!(r.body, data);
    }
});

all_backends!(cross_repository_mount, |app| {
    let auth = admin();
    let d = push_blob(&app, "library/src", b"shared layer").await;
    let r = app
        .call(
            Method::POST,
            &format!("/v2/library/dst/blobs/uploads/?mount={d}&from=library/src"),
            &[("authorization", &auth)],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("location"), Some(format!("/v2/library/dst/blobs/{d}").as_str()));
    assert_eq!(
        app.get_with(&format!("/v2/library/dst/blobs/{d}"), &[("authorization", &auth)]).await.body,
        b"shared layer"
    );
    // Source without the blob: an ordinary upload session instead.
    let r = app
        .call(
            Method::POST,
            &format!("/v2/library/dst2/blobs/uploads/?mount={d}&from=library/nothing"),
            &[("authorization", &auth)],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(r.header("location").unwrap().contains("/blobs/uploads/"));
});

// A request that died while writing (its replica was killed) holds the upload's lease until the
// lease runs out — not longer: the writing request renews it, a dead one cannot. Then the
// client resumes from the committed size, on any replica.
all_backends!(upload_held_by_a_dead_request_is_resumable_once_its_lease_expires, |app| {
    let auth = admin();
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 241) as u8).collect();
    let d = sha256(&data);
    let loc = start_upload(&app, "library/lease").await;
    let id = loc.rsplit('/').next().unwrap().to_string();
    let set_lease = |until: i64| {
        let pool = app.state.db.pool.clone();
        let id = id.clone();
        async move {
            sqlx::query("UPDATE uploads SET lease_until = $1 WHERE id = $2")
                .bind(until)
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    // Held by a (dead) request: refused, the committed size is unchanged.
    set_lease(now + 30_000).await;
    let r = patch_upload(&app, &loc, &[], &data).await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE, "{}", r.text());
    assert_eq!(oci_code(&r), "RANGE_INVALID");
    // Expired: another replica takes the upload over and finishes it.
    set_lease(now - 1).await;
    let other = app.sibling().await;
    let r = patch_upload(&other, &loc, &[], &data).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let r = close_upload(&other, &loc, &d, &[], &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(
        app.get_with(&format!("/v2/library/lease/blobs/{d}"), &[("authorization", &auth)]).await.body,
        data
    );
});

// HA: no replica serves from a stale copy. A tag moved, an artifact deleted, a blob swept by GC
// or a password changed through one replica is seen by the very next request to another one
// (goharbor/harbor#22571: stale cache after GC).
all_backends!(replicas_see_each_others_changes_at_once, |app| {
    let other = app.sibling().await;
    let auth = admin();
    let (d1, _) = push_image(&app, "library/ha", "v1", &[b"layer one"]).await;
    let (d2, _) = push_image(&app, "library/ha", "v2", &[b"layer two"]).await;
    async fn head(a: &crate::common::TestApp, path: String) -> crate::common::Resp {
        a.call(Method::HEAD, &path, &[("authorization", &admin())], vec![]).await
    }
    // Warm the other replica's view of v1.
    let r = head(&other, "/v2/library/ha/manifests/v1".into()).await;
    assert_eq!(r.header("docker-content-digest"), Some(d1.as_str()));
    // Move v1 to v2's manifest through `app`.
    let body = app
        .get_with(
            &format!("/v2/library/ha/manifests/{d2}"),
            &[("authorization", &auth), ("accept", OCI_MANIFEST)],
        )
        .await
        .body;
    assert_eq!(put_manifest(&app, "library/ha", "v1", OCI_MANIFEST, &body).await.status, StatusCode::CREATED);
    let r = head(&other, "/v2/library/ha/manifests/v1".into()).await;
    assert_eq!(r.header("docker-content-digest"), Some(d2.as_str()), "the other replica serves the old tag");
    // Delete d1 (now untagged) through `other`; `app` answers 404 at once.
    let r = other
        .call(Method::DELETE, &format!("/v2/library/ha/manifests/{d1}"), &[("authorization", &auth)], vec![])
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(head(&app, format!("/v2/library/ha/manifests/{d1}")).await.status, StatusCode::NOT_FOUND);
    // GC on `app` sweeps layer one; `other` no longer serves it.
    let layer = sha256(b"layer one");
    assert_eq!(head(&other, format!("/v2/library/ha/blobs/{layer}")).await.status, StatusCode::OK);
    let mut env = server::gc::Env {
        db: app.state.db.clone(),
        storage: app.state.storage.clone(),
        config: app.config.gc.clone(),
    };
    env.config.window = std::time::Duration::ZERO;
    let ctx = server::jobs::JobCtx::new(0, "t", "CLI", "{}");
    server::gc::run(&env, &server::gc::GcParams::default(), &ctx).await.expect("gc run");
    assert_eq!(head(&other, format!("/v2/library/ha/blobs/{layer}")).await.status, StatusCode::NOT_FOUND);
    // A password changed through `app` stops working on `other`, whose credential cache had it.
    crate::common::create_user(&app.state.db, "carol", "Carol12345", false).await;
    let old = crate::common::basic("carol", "Carol12345");
    assert_eq!(other.get_with("/v2/", &[("authorization", &old)]).await.status, StatusCode::OK);
    let id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'carol'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v2.0/users/{id}/password"),
            &[("authorization", &auth), ("content-type", "application/json")],
            r#"{"new_password":"Changed12345"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(other.get_with("/v2/", &[("authorization", &old)]).await.status, StatusCode::UNAUTHORIZED);
    let new = crate::common::basic("carol", "Changed12345");
    assert_eq!(other.get_with("/v2/", &[("authorization", &new)]).await.status, StatusCode::OK);
});

// Issue 18: a PATCH that declared 8 MiB, sent 3 MiB and disconnected, then a body-less closing
// PUT. The blob is exactly its committed bytes in storage (which REST readers and later pushes
// of the same digest use), not the committed bytes followed by the failed request's.
all_backends!(a_failed_patch_leaves_nothing_in_the_committed_blob, |app| {
    let auth = admin();
    let config: Vec<u8> =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let d = sha256(&config);
    let loc = start_upload(&app, "library/junk").await;
    let r = patch_upload(&app, &loc, &[], &config).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    // 3 MiB of an announced 8 MiB, then the client goes away.
    let junk = bytes::Bytes::from(vec![b'J'; 1024 * 1024]);
    let parts: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(junk.clone()),
        Ok(junk.clone()),
        Ok(junk),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away")),
    ];
    let req = axum::http::Request::patch(&loc)
        .header("authorization", &auth)
        .header("content-length", (8 * 1024 * 1024).to_string())
        .body(axum::body::Body::from_stream(futures::stream::iter(parts)))
        .unwrap();
    let r = app.send(req).await;
    assert!(r.status.is_client_error(), "{} {}", r.status, r.text());
    let r = app.get_with(&loc, &[("authorization", &auth)]).await;
    assert_eq!(r.header("range"), Some(format!("0-{}", config.len() - 1).as_str()));
    let r = close_upload(&app, &loc, &d, &[("content-length", "0")], &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let key = format!("blobs/sha256/{}/{}/data", &d[7..9], &d[7..]);
    assert_eq!(app.state.storage.stat(&key).await.unwrap(), Some(config.len() as u64));
    assert_eq!(app.state.storage.read_all(&key).await.unwrap(), config);
    assert_eq!(
        app.get_with(&format!("/v2/library/junk/blobs/{d}"), &[("authorization", &auth)]).await.body,
        config
    );
    // An object a fixed bug left padded is replaced by the next push of its digest, not reused.
    let other = b"another blob".to_vec();
    let od = sha256(&other);
    let okey = format!("blobs/sha256/{}/{}/data", &od[7..9], &od[7..]);
    let mut padded = other.clone();
    padded.extend_from_slice(&[b'J'; 4096]);
    app.state.storage.put(&okey, padded.into()).await.unwrap();
    push_blob(&app, "library/junk", &other).await;
    assert_eq!(app.state.storage.read_all(&okey).await.unwrap(), other);
});

// Issue 18: a closing PUT whose Content-Range does not start at the upload's offset is refused
// with 416 before a byte is appended; the upload stays as it was and can be finished.
all_backends!(a_closing_put_at_the_wrong_offset_is_416_and_appends_nothing, |app| {
    let auth = admin();
    let data: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
    let d = sha256(&data);
    let loc = start_upload(&app, "library/cr").await;
    let r = patch_upload(&app, &loc, &[("content-range", "0-99")], &data[..100]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let r = close_upload(&app, &loc, &d, &[("content-range", "50-149")], &data[50..150]).await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE, "{}", r.text());
    assert_eq!(oci_code(&r), "RANGE_INVALID");
    assert_eq!(r.header("range"), Some("0-99"));
    let r = app.get_with(&loc, &[("authorization", &auth)]).await;
    assert_eq!(r.header("range"), Some("0-99"));
    let r = close_upload(&app, &loc, &d, &[("content-range", "100-199")], &data[100..]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(
        app.get_with(&format!("/v2/library/cr/blobs/{d}"), &[("authorization", &auth)]).await.body,
        data
    );
});

// Issue 19 loose end: deleting a repository also deletes the data of its upload sessions (the
// rows went in the delete; nothing else could ever find the objects again).
all_backends!(deleting_a_repository_deletes_its_uploads_data, |app| {
    let auth = admin();
    push_image(&app, "library/up-del", "v1", &[b"up-del layer"]).await;
    let loc = start_upload(&app, "library/up-del").await;
    let id = loc.rsplit('/').next().unwrap().to_string();
    let r = patch_upload(&app, &loc, &[("content-range", "0-9")], b"0123456789").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let key = format!("uploads/{id}/data");
    assert_eq!(app.state.storage.stat(&key).await.unwrap(), Some(10));
    let r = app
        .call(
            Method::DELETE,
            "/api/v2.0/projects/library/repositories/up-del",
            &[("authorization", &auth)],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        app.state.storage.stat(&key).await.unwrap(),
        None,
        "the upload's data outlived its repository"
    );
    let r = patch_upload(&app, &loc, &[], b"more").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
});

//! Artifacts, tags and accessories through `/api/v2.0`, and copies of nested indexes.

use super::*;

both_dbs!(artifacts_tags_and_accessories, |app| {
    api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "p1"})).await;
    for (n, role) in [("dev", 2), ("guest", 3), ("maint", 4), ("outsider", 0)] {
        user(&app, n, "p1", role).await;
    }
    let amd = image(&app, "p1/app", "amd64", b"amd64-layer", "amd64").await;
    let arm = image(&app, "p1/app", "arm64", b"arm64-layer-longer", "arm64").await;
    let idx = json!({"schemaVersion":2,"mediaType":OCI_INDEX,"manifests":[
        {"mediaType":OCI_MANIFEST,"digest":amd,"size":1,"platform":{"os":"linux","architecture":"amd64"}},
        {"mediaType":OCI_MANIFEST,"digest":arm,"size":1,"platform":{"os":"linux","architecture":"arm64"}}]});
    // Sizes in an index entry are not checked against children here; only existence is.
    let index = manifest(&app, "p1/app", "multi", OCI_INDEX, &idx).await;
    let solo = image(&app, "p1/app", "v1", b"solo-layer", "amd64").await;
    let sig = signature(&app, "p1/app", &solo, 10).await;

    let base = "/api/v2.0/projects/p1/repositories/app/artifacts";
    let r = app.get_with(base, &[("authorization", &basic("guest", PW))]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-total-count"), Some("2"), "index children and the signature are not listed");
    let list = r.json();
    assert_eq!(digests(&list), [solo.clone(), index.clone()], "newest first");
    let idx_entry = &list[1];
    assert_eq!(idx_entry["type"], "IMAGE");
    assert_eq!(idx_entry["tags"][0]["name"], "multi");
    let refs = idx_entry["references"].as_array().unwrap();
    assert_eq!(refs.len(), 2);
    assert!(refs.iter().any(|x| x["child_digest"] == amd.as_str()
        && x["platform"]["architecture"] == "amd64"
        && x["child_id"].is_i64()));
    assert_eq!(list[0]["repository_name"], "p1/app");
    assert!(list[0].get("accessories").is_none());
    let with_acc = app
        .get_with(&format!("{base}?with_accessory=true&with_tag=false"), &[("authorization", &admin())])
        .await
        .json();
    assert!(with_acc[0].get("tags").is_none());
    assert_eq!(with_acc[0]["accessories"][0]["digest"], sig.as_str());
    assert_eq!(with_acc[0]["accessories"][0]["type"], "signature.cosign");
    assert_eq!(
        app.get_with(&format!("{base}?with_tag=false"), &[("authorization", &basic("outsider", PW))])
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // q and sort.
    for (q, expect) in [
        ("tags=v1", vec![solo.clone()]),
        ("tags=~mul", vec![index.clone()]),
        ("tags=nil", vec![]),
        ("tags=*", vec![solo.clone(), index.clone()]),
        (&*format!("digest={index}"), vec![index.clone()]),
        ("media_type=application/vnd.oci.image.index.v1+json", vec![index.clone()]),
        ("push_time=[2000-01-01 00:00:00~]", vec![solo.clone(), index.clone()]),
        ("push_time=[~2000-01-01 00:00:00]", vec![]),
    ] {
        let enc = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
        let r = app.get_with(&format!("{base}?q={enc}"), &[("authorization", &admin())]).await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text());
        assert_eq!(digests(&r.json()), expect, "{q}");
    }
    let by_size = app.get_with(&format!("{base}?sort=size"), &[("authorization", &admin())]).await.json();
    let sizes: Vec<i64> = by_size.as_array().unwrap().iter().map(|a| a["size"].as_i64().unwrap()).collect();
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
    for bad in [
        "?q=color%3Dred",
        "?sort=color",
        "?sort=,",
        "?sort=%2C%20%2C",
        "?sort=-",
        "?sort=size,-size",
        "?q=push_time%3D%5Bx~%5D",
        "?page=0",
        "?page_size=500",
        "?with_tag=maybe",
    ] {
        let r = app.get_with(&format!("{base}{bad}"), &[("authorization", &admin())]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.error_code(), "BAD_REQUEST");
    }
    // A thousand sort keys (within the URI limit): a 400, not a 500 from the database.
    let (many, names) = (vec!["size"; 1000].join(","), vec!["name"; 1000].join(","));
    for path in [format!("{base}?sort={many}"), format!("/api/v2.0/projects?sort={names}")] {
        let r = app.get_with(&path, &[("authorization", &admin())]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    }
    let r = app.get_with("/api/v2.0/repositories?sort=,", &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    // Beyond the URI limit: 414 in Harbor's error format, on every REST path.
    let huge = vec!["size"; 5000].join(",");
    for path in
        [format!("{base}?sort={huge}"), format!("/api/v2.0/nothing?x={huge}"), format!("/c/login?x={huge}")]
    {
        let r = app.get_with(&path, &[("authorization", &admin())]).await;
        assert_eq!(r.status, StatusCode::URI_TOO_LONG, "{}", r.text());
        assert_eq!(r.error_code(), "URI_TOO_LONG");
    }
    let paged = app.get_with(&format!("{base}?page=2&page_size=1"), &[("authorization", &admin())]).await;
    assert_eq!(digests(&paged.json()), std::slice::from_ref(&index));
    assert!(paged.header("link").unwrap().contains("rel=\"prev\""));

    // One artifact by tag or digest, with accessories by default.
    let one = app.get_with(&format!("{base}/v1"), &[("authorization", &basic("guest", PW))]).await.json();
    assert_eq!(one["digest"], solo.as_str());
    assert_eq!(one["accessories"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get_with(&format!("{base}/{index}"), &[("authorization", &admin())]).await.json()["tags"][0]
            ["name"],
        "multi"
    );
    assert_eq!(
        app.get_with(&format!("{base}/nope"), &[("authorization", &admin())]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get_with(&format!("{base}/sha256:xyz"), &[("authorization", &admin())]).await.status,
        StatusCode::BAD_REQUEST
    );
    let acc =
        app.get_with(&format!("{base}/{solo}/accessories"), &[("authorization", &basic("guest", PW))]).await;
    assert_eq!(acc.header("x-total-count"), Some("1"));

    // Tags: developers add, maintainers remove; guests neither.
    let tags = format!("{base}/{solo}/tags");
    assert_eq!(
        api(&app, Method::POST, &tags, &basic("guest", PW), json!({"name": "g"})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api(&app, Method::POST, &tags, &basic("dev", PW), json!({"name": "stable"})).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        api(&app, Method::POST, &tags, &basic("dev", PW), json!({"name": "stable"})).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        api(&app, Method::POST, &tags, &basic("dev", PW), json!({"name": "bad tag!"})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api(&app, Method::POST, &tags, &basic("dev", PW), json!({"nom": "x"})).await.status,
        StatusCode::BAD_REQUEST
    );
    let r = app
        .call(
            Method::POST,
            &tags,
            &[("authorization", &basic("dev", PW)), ("content-type", "application/json")],
            "{not json",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "BAD_REQUEST");
    assert_eq!(
        app.get_with("/v2/p1/app/manifests/stable", &[("authorization", &admin())]).await.status,
        StatusCode::OK
    );
    let listed = app
        .get_with(&format!("{tags}?q=name%3D~sta"), &[("authorization", &basic("guest", PW))])
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(delete(&app, &format!("{tags}/stable"), &basic("dev", PW)).await, StatusCode::FORBIDDEN);
    assert_eq!(delete(&app, &format!("{tags}/stable"), &basic("maint", PW)).await, StatusCode::OK);
    assert_eq!(delete(&app, &format!("{tags}/stable"), &basic("maint", PW)).await, StatusCode::NOT_FOUND);

    // Deleting the subject takes its signature; index children stay hidden until the index goes.
    assert_eq!(delete(&app, &format!("{base}/v1"), &basic("dev", PW)).await, StatusCode::FORBIDDEN);
    assert_eq!(delete(&app, &format!("{base}/v1"), &basic("maint", PW)).await, StatusCode::OK);
    assert_eq!(
        app.get_with(&format!("/v2/p1/app/manifests/{sig}"), &[("authorization", &admin())]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(delete(&app, &format!("{base}/multi"), &admin()).await, StatusCode::OK);
    let after = app.get_with(base, &[("authorization", &admin())]).await.json();
    let mut left = digests(&after);
    left.sort();
    let mut want = vec![amd.clone(), arm.clone()];
    want.sort();
    assert_eq!(left, want, "children are listed again once their index is gone");
    let deletes = app
        .get_with(
            "/api/v2.0/audit-logs?q=operation%3Ddelete%2Cresource_type%3Dartifact&page_size=50",
            &[("authorization", &admin())],
        )
        .await
        .json();
    assert_eq!(deletes.as_array().unwrap().len(), 3, "v1, its signature and the index");
});

// An index whose children share a child index, many times over at every level: a copy copies
// each manifest once (4^8 = 65 536 paths to the leaf; one copy each would take hours).
both_dbs!(copy_of_nested_indexes_copies_each_child_once, |app| {
    api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "nest"})).await;
    let mut child = image(&app, "nest/src", "leaf", b"leaf-layer", "amd64").await;
    let mut media = OCI_MANIFEST;
    for level in 0..8 {
        let entry = json!({"mediaType": media, "digest": child, "size": 1});
        let idx = json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [entry.clone(), entry.clone(), entry.clone(), entry]});
        child = manifest(&app, "nest/src", &format!("l{level}"), OCI_INDEX, &idx).await;
        media = OCI_INDEX;
    }
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        app.call(
            Method::POST,
            "/api/v2.0/projects/nest/repositories/dst/artifacts?from=nest%2Fsrc%3Al7",
            &[("authorization", &admin())],
            vec![],
        ),
    )
    .await
    .expect("the copy of a shared-child index tree must not explode");
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
    let m = app.get_with("/v2/nest/dst/manifests/l7", &[("authorization", &admin())]).await;
    assert_eq!(m.status, StatusCode::OK);
    let r = app.get_with("/v2/nest/dst/manifests/leaf", &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "only the tag named in from is copied");
    let leaf = app.get_with("/v2/nest/src/manifests/leaf", &[("authorization", &admin())]).await;
    let leaf_digest = sha256(&leaf.body);
    let r =
        app.get_with(&format!("/v2/nest/dst/manifests/{leaf_digest}"), &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::OK, "the shared leaf is copied");
});

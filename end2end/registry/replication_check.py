#!/usr/bin/env python3
"""Replication and proxy cache with real peers and real clients (called by replication.sh).

    replication_check.py --a URL --b URL --dist URL --dist-user U --dist-password P
                         --workdir DIR --mkimage PATH [--steps "push pull event deletion proxy"]

A and B are two Berth instances (admin / Harbor12345), DIST a CNCF distribution with htpasswd
Basic auth. Content is pushed with skopeo (the skopeo command line comes from the SKOPEO_CMD
environment variable, one argument per line, as replication.sh exports it); what arrives is
checked by digest with skopeo and the registries' own APIs.

    push      A → B (type harbor, push-based, manual): an image, a multi-arch index with its
              children, a signature and an SBOM referring to the image; a name filter and a
              tag exclude filter; re-running with nothing changed copies nothing.
    pull      DIST → B (type docker-registry, pull-based, manual) with flattening.
    event     A → B on push: a new tag pushed to A shows up on B without a manual start.
    deletion  A → B with replicate_deletion: a tag deleted on A disappears from B.
    proxy     a proxy-cache project on B in front of DIST: pulled with docker and podman, then
              pulled again with DIST stopped (served from the cache); a push into it is refused.
"""

import argparse
import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

ADMIN = ("admin", "Harbor12345")


def say(*a):
    print(*a, flush=True)


def fail(msg):
    say("FAIL:", msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


class Api:
    """Harbor's REST API (/api/v2.0) and the registry (/v2) of one server, with Basic auth."""

    def __init__(self, base, user, password):
        self.base = base.rstrip("/")
        self.host = self.base.split("://", 1)[1]
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def call(self, method, path, body=None, headers=None, expect=None):
        url = self.base + path
        data = None
        h = {"Authorization": self.auth}
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        req = urllib.request.Request(url, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, rh, payload = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, rh, payload = e.code, e.headers, e.read()
        if expect is not None and status not in (expect if isinstance(expect, tuple) else (expect,)):
            fail(f"{method} {url} answered {status}, expected {expect}: {payload[:500]!r}")
        return status, rh, payload

    def json(self, method, path, body=None, expect=200):
        _, _, payload = self.call(method, path, body, expect=expect)
        return json.loads(payload) if payload else None

    def create(self, path, body):
        """POST that answers 201 with a Location ending in the new id."""
        _, h, _ = self.call("POST", path, body, expect=201)
        loc = h.get("Location", "")
        check(loc, f"POST {path}: no Location header")
        return int(loc.rstrip("/").rsplit("/", 1)[1])

    def manifest_digest(self, repo, ref):
        status, h, _ = self.call(
            "HEAD",
            f"/v2/{repo}/manifests/{ref}",
            headers={
                "Accept": ",".join(
                    [
                        "application/vnd.oci.image.index.v1+json",
                        "application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.docker.distribution.manifest.list.v2+json",
                        "application/vnd.docker.distribution.manifest.v2+json",
                    ]
                )
            },
        )
        return h.get("Docker-Content-Digest") if status == 200 else None

    def referrers(self, repo, digest):
        _, _, payload = self.call("GET", f"/v2/{repo}/referrers/{digest}", expect=200)
        return sorted(m["digest"] for m in json.loads(payload).get("manifests", []))


def skopeo(*args, check_rc=True):
    cmd = os.environ["SKOPEO_CMD"].split("\n") + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check_rc and r.returncode != 0:
        fail(f"skopeo {' '.join(args)}: {r.stderr.strip()[-800:]}")
    return r


def push_layout(layout, tag, dest, creds):
    skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", creds,
           f"oci:{layout}:{tag}", f"docker://{dest}")


def inspect_digest(ref, creds):
    r = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", creds, f"docker://{ref}")
    import hashlib

    return "sha256:" + hashlib.sha256(r.stdout.encode()).hexdigest()


def mkimage(a, kind, out, *extra):
    r = subprocess.run([sys.executable, a.mkimage, kind, out, *extra], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"mkimage {kind}: {r.stderr}")
    return json.loads(r.stdout)


def push_referrer(api, repo, subject, artifact_type, payload):
    """Pushes an OCI artifact manifest with `subject` over /v2 (as oras does) and returns its digest."""
    import hashlib

    def put_blob(data):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        _, h, _ = api.call("POST", f"/v2/{repo}/blobs/uploads/", expect=202)
        loc = h["Location"]
        if loc.startswith("/"):
            loc = api.base + loc
        sep = "&" if "?" in loc else "?"
        req = urllib.request.Request(loc + f"{sep}digest={d}", data=data, method="PUT",
                                     headers={"Authorization": api.auth, "Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(req, timeout=60) as r:
            check(r.status == 201, f"blob PUT answered {r.status}")
        return d, len(data)

    cfg = b"{}"
    cd, cs = put_blob(cfg)
    ld, ls = put_blob(payload)
    m = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/octet-stream", "digest": ld, "size": ls}],
        "subject": {"mediaType": subject["mediaType"], "digest": subject["digest"], "size": subject["size"]},
    }
    body = json.dumps(m).encode()
    d = "sha256:" + hashlib.sha256(body).hexdigest()
    put_manifest_raw(api, repo, d, body, m["mediaType"])
    return d


def put_manifest_raw(api, repo, ref, body, media_type):
    req = urllib.request.Request(f"{api.base}/v2/{repo}/manifests/{ref}", data=body, method="PUT",
                                 headers={"Authorization": api.auth, "Content-Type": media_type})
    with urllib.request.urlopen(req, timeout=60) as r:
        check(r.status == 201, f"manifest PUT answered {r.status}")


def wait_execution(api, exec_id, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        e = api.json("GET", f"/api/v2.0/replication/executions/{exec_id}")
        if e["status"] not in ("Pending", "InProgress", "Running"):
            return e
        time.sleep(0.5)
    fail(f"execution {exec_id} did not finish in {timeout}s")


def tasks(api, exec_id):
    return api.json("GET", f"/api/v2.0/replication/executions/{exec_id}/tasks?page_size=100")


def run_policy(api, policy_id, expect_status="Succeed"):
    t0 = time.time()
    eid = api.create("/api/v2.0/replication/executions", {"policy_id": policy_id})
    e = wait_execution(api, eid)
    if e["status"] != expect_status:
        for t in tasks(api, eid):
            if t["status"] != "Succeed":
                _, _, log = api.call("GET", f"/api/v2.0/replication/executions/{eid}/tasks/{t['id']}/log")
                say(f"    task {t['id']} {t['src_resource']} → {t['dst_resource']}: {t['status']}\n{log.decode()[-1500:]}")
        fail(f"execution {eid} ended {e['status']} ({e.get('status_text', '')}), expected {expect_status}")
    return eid, e, time.time() - t0


def project(api, name, **extra):
    body = {"project_name": name, "metadata": {"public": "false"}}
    body.update(extra)
    status, _, payload = api.call("POST", "/api/v2.0/projects", body)
    check(status in (201, 409), f"create project {name}: {status} {payload[:300]!r}")


def registry(api, name, kind, url, user, password):
    return api.create(
        "/api/v2.0/registries",
        {
            "name": name,
            "type": kind,
            "url": url,
            "insecure": True,
            "credential": {"type": "basic", "access_key": user, "access_secret": password},
        },
    )


def step_push(a, A, B):
    say("==> push-based replication A → B (harbor adapter): image, index, referrers, filters")
    creds = "admin:Harbor12345"
    project(A, "src")
    w = a.workdir
    img = mkimage(a, "image", f"{w}/layouts/app", "--layers", "3", "--layer-size", "256K", "--tag", "1")
    idx = mkimage(a, "index", f"{w}/layouts/multi", "--platforms", "linux/amd64,linux/arm64", "--tag", "1")
    skip = mkimage(a, "image", f"{w}/layouts/skip", "--tag", "dev-1")
    push_layout(f"{w}/layouts/app", "1", f"{A.host}/src/app:1", creds)
    push_layout(f"{w}/layouts/multi", "1", f"{A.host}/src/multi:1", creds)
    push_layout(f"{w}/layouts/skip", "dev-1", f"{A.host}/src/app:dev-1", creds)
    subject = {"mediaType": img["mediaType"], "digest": img["digest"], "size": img["size"]}
    sig = push_referrer(A, "src/app", subject, "application/vnd.dev.cosign.artifact.sig.v1+json", b"signature")
    sbom = push_referrer(A, "src/app", subject, "application/spdx+json", b'{"spdxVersion":"SPDX-2.3"}')
    check(A.referrers("src/app", img["digest"]) == sorted([sig, sbom]), "referrers on A")

    rid = registry(A, "b", "harbor", B.base, *ADMIN)
    _, _, ping = A.call("POST", "/api/v2.0/registries/ping", {"id": rid})
    pid = A.create(
        "/api/v2.0/replication/policies",
        {
            "name": "to-b",
            "dest_registry": {"id": rid},
            "dest_namespace": "",
            "filters": [
                {"type": "name", "value": "src/**"},
                {"type": "tag", "value": "dev-*", "decoration": "excludes"},
            ],
            "trigger": {"type": "manual"},
            "override": True,
            "enabled": True,
        },
    )
    eid, e, secs = run_policy(A, pid)
    say(f"    first run: {e['succeed']} tasks succeeded in {secs:.1f}s")
    check(B.manifest_digest("src/app", "1") == img["digest"], "src/app:1 on B has the source digest")
    check(B.manifest_digest("src/multi", "1") == idx["digest"], "src/multi:1 on B has the source digest")
    for child in idx.get("children", idx.get("manifests", [])):
        check(B.manifest_digest("src/multi", child["digest"]) == child["digest"], f"index child {child['digest']} on B")
    check(B.manifest_digest("src/app", "dev-1") is None, "the excluded tag dev-1 was not replicated")
    check(B.referrers("src/app", img["digest"]) == sorted([sig, sbom]), "signature and SBOM replicated with their subject")
    check(inspect_digest(f"{B.host}/src/app:1", creds) == img["digest"], "skopeo reads the same digest from B")
    _, _, secs2 = run_policy(A, pid)
    say(f"    second run, nothing changed: {secs2:.1f}s")
    check(secs2 < 10, f"an unchanged re-run took {secs2:.1f}s (≥ 10 s)")
    return pid, rid, img


def step_pull(a, B, D):
    say("==> pull-based replication DIST → B (docker-registry adapter), flattened")
    creds = f"{a.dist_user}:{a.dist_password}"
    w = a.workdir
    img = mkimage(a, "image", f"{w}/layouts/up", "--tag", "3.1")
    push_layout(f"{w}/layouts/up", "3.1", f"{D.host}/team/tools/up:3.1", creds)
    project(B, "mirror")
    rid = registry(B, "dist", "docker-registry", D.base, a.dist_user, a.dist_password)
    pid = B.create(
        "/api/v2.0/replication/policies",
        {
            "name": "from-dist",
            "src_registry": {"id": rid},
            "dest_namespace": "mirror",
            "dest_namespace_replace_count": 2,
            "filters": [{"type": "name", "value": "team/**"}],
            "trigger": {"type": "manual"},
            "override": True,
            "enabled": True,
        },
    )
    run_policy(B, pid)
    check(B.manifest_digest("mirror/up", "3.1") == img["digest"], "mirror/up:3.1 (flattened) on B")
    return rid


def step_event(a, A, B, rid):
    say("==> event-based replication A → B: a push to A arrives on B")
    creds = "admin:Harbor12345"
    project(A, "live")
    A.create(
        "/api/v2.0/replication/policies",
        {
            "name": "live-to-b",
            "dest_registry": {"id": rid},
            "filters": [{"type": "name", "value": "live/**"}],
            "trigger": {"type": "event_based"},
            "replicate_deletion": True,
            "override": True,
            "enabled": True,
        },
    )
    img = mkimage(a, "image", f"{a.workdir}/layouts/live", "--tag", "7")
    push_layout(f"{a.workdir}/layouts/live", "7", f"{A.host}/live/svc:7", creds)
    deadline = time.time() + 60
    while time.time() < deadline and B.manifest_digest("live/svc", "7") != img["digest"]:
        time.sleep(0.5)
    check(B.manifest_digest("live/svc", "7") == img["digest"], "the pushed tag arrived on B within 60 s")
    return img


def step_deletion(a, A, B, img):
    say("==> deletion replication: a tag deleted on A disappears from B")
    A.call("DELETE", f"/v2/live/svc/manifests/{img['digest']}", expect=202)
    deadline = time.time() + 60
    while time.time() < deadline and B.manifest_digest("live/svc", "7") is not None:
        time.sleep(0.5)
    check(B.manifest_digest("live/svc", "7") is None, "the deletion reached B within 60 s")


def step_proxy(a, B, D, dist_rid):
    say("==> proxy cache on B in front of DIST: docker and podman pull, then DIST stopped")
    creds = f"{a.dist_user}:{a.dist_password}"
    w = a.workdir
    img = mkimage(a, "image", f"{w}/layouts/base", "--layers", "2", "--tag", "3")
    push_layout(f"{w}/layouts/base", "3", f"{D.host}/library/base:3", creds)
    B.call("POST", "/api/v2.0/projects", {"project_name": "hub", "registry_id": dist_rid,
                                          "metadata": {"public": "true"}}, expect=201)
    ref = f"{B.host}/hub/library/base:3"
    check(inspect_digest(ref, "admin:Harbor12345") == img["digest"], "skopeo through the proxy: the upstream digest")
    for name, cmd in a.pullers:
        r = subprocess.run(cmd(ref), capture_output=True, text=True)
        check(r.returncode == 0, f"{name} pull {ref}: {r.stderr[-800:]}")
        say(f"    {name} pull {ref}: ok")
    status = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "admin:Harbor12345",
                    f"oci:{w}/layouts/base:3", f"docker://{B.host}/hub/library/pushed:1", check_rc=False)
    check(status.returncode != 0, "a push into the proxy-cache project is refused")
    subprocess.run(a.stop_dist, shell=True, check=True)
    say("    upstream stopped")
    check(inspect_digest(ref, "admin:Harbor12345") == img["digest"], "the cached tag is served with the upstream down")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--dist", required=True)
    p.add_argument("--dist-user", required=True)
    p.add_argument("--dist-password", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--mkimage", required=True)
    p.add_argument("--stop-dist", dest="stop_dist", required=True, help="shell command that stops DIST")
    p.add_argument("--steps", default="push pull event deletion proxy")
    a = p.parse_args()
    a.pullers = []
    if os.environ.get("DOCKER_BIN") and os.environ.get("DOCKER_HOST"):
        a.pullers.append(("docker", lambda ref: [os.environ["DOCKER_BIN"], "pull", ref]))
    if os.environ.get("PODMAN_CMD"):
        a.pullers.append(("podman", lambda ref: os.environ["PODMAN_CMD"].split("\n") + ["pull", "--tls-verify=false", ref]))
    A = Api(a.a, *ADMIN)
    B = Api(a.b, *ADMIN)
    D = Api(a.dist, a.dist_user, a.dist_password)
    steps = a.steps.split()
    rid = img = dist_rid = None
    if "push" in steps:
        _, rid, _ = step_push(a, A, B)
    if "pull" in steps or "proxy" in steps:
        dist_rid = step_pull(a, B, D)
    if "event" in steps:
        rid = rid or registry(A, "b", "harbor", B.base, *ADMIN)
        img = step_event(a, A, B, rid)
    if "deletion" in steps and img:
        step_deletion(a, A, B, img)
    if "proxy" in steps:
        step_proxy(a, B, D, dist_rid)
    say("replication checks passed")


if __name__ == "__main__":
    main()

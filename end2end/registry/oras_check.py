#!/usr/bin/env python3
"""OCI artifact checks with the oras-py client (PyPI `oras`), run from clients.sh in its venv.

    oras_check.py push      COMMON --subject-repo REPO --subject-ref TAG --subject-digest D
    oras_check.py referrers COMMON
    oras_check.py delete    COMMON [--check-referrers]
    COMMON = --registry HOST:PORT --user U --password P --workdir DIR

push:      logs in (oras writes DIR/oras/auth.json, never ~/.docker), fetches the subject manifest
           and checks its digest, then pushes two artifacts that refer to it:
           A with oras' own `push` (chunked blob upload: POST, several PATCH with Content-Range,
             PUT ?digest=), a custom config media type and no artifactType, tag `sbom-v1`;
           B from an OCI layout written by mkimage.py (artifactType set, empty config
             application/vnd.oci.empty.v1+json), blobs through oras (monolithic POST + PUT),
             the manifest PUT by digest with its exact bytes (no tag).
           Both are read back (oras pull, GET by digest) and compared byte for byte.
           What it learnt goes to DIR/oras/state.json for the later steps.
referrers: GET /v2/<repo>/referrers/<subject> must answer an OCI index listing A and B with
           artifactType (A: its config mediaType, as the spec says), size and annotations;
           ?artifactType= must filter (OCI-Filters-Applied: artifactType); the manifest PUTs must
           have answered OCI-Subject; a digest nothing refers to gives an empty index (200).
delete:    DELETE the manifest of B by digest (202), then GET gives 404; with
           --check-referrers the referrers list no longer has B.

Auth: the backend is chosen from the /v2/ challenge (Basic -> oras "basic", Bearer -> "token"),
or forced with ORAS_AUTH_BACKEND. Every request goes through oras' session, so a token
registry is exercised the way oras-py really behaves (pull-only token first, re-ask on 403).
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import urllib.request
import urllib.error
from importlib import metadata

import oras.oci
import oras.provider

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SBOM_CONFIG_TYPE = "application/vnd.berth.e2e.sbom.config.v1+json"
SBOM_LAYER_TYPE = "application/vnd.berth.e2e.sbom.v1+json"
SIG_ARTIFACT_TYPE = "application/vnd.berth.e2e.signature.v1"
HERE = os.path.dirname(os.path.abspath(__file__))


class CheckFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def detect_backend(registry):
    forced = os.environ.get("ORAS_AUTH_BACKEND")
    if forced:
        return forced
    try:
        urllib.request.urlopen(f"http://{registry}/v2/", timeout=10)
        return "basic"  # anonymous access allowed; basic is harmless
    except urllib.error.HTTPError as e:
        challenge = e.headers.get("WWW-Authenticate", "")
        return "token" if challenge.lower().startswith("bearer") else "basic"


class Ctx:
    def __init__(self, a):
        self.registry, self.a = a.registry, a
        self.dir = os.path.join(a.workdir, "oras")
        os.makedirs(self.dir, exist_ok=True)
        self.state_path = os.path.join(self.dir, "state.json")
        self.authfile = os.path.join(self.dir, "auth.json")
        self.backend = detect_backend(a.registry)
        self.reg = oras.provider.Registry(hostname=a.registry, insecure=True, auth_backend=self.backend)
        self.reg.login(username=a.user, password=a.password, hostname=a.registry,
                       config_path=self.authfile)
        check(os.path.exists(self.authfile), "oras login did not write its auth file")
        print(f"oras {metadata.version('oras')} auth backend: {self.backend}")

    def url(self, path):
        return f"http://{self.registry}{path}"

    def req(self, method, path, headers=None, data=None):
        return self.reg.do_request(self.url(path), method, headers=dict(headers or {}), data=data)

    def load_state(self):
        with open(self.state_path) as f:
            return json.load(f)

    def save_state(self, state):
        with open(self.state_path, "w") as f:
            json.dump(state, f, indent=2)


def cmd_push(ctx, a):
    repo = a.subject_repo
    # No GET /v2/ first: with a token registry oras-py would keep that scope-less token for
    # every later request (it asks anew only after a 403), which is not how oras is used.
    # The subject: fetched with the exact bytes, so digest and size are the registry's.
    r = ctx.req("GET", f"/v2/{repo}/manifests/{a.subject_ref}", headers={"Accept": OCI_MANIFEST})
    check(r.status_code == 200, f"GET subject manifest {repo}:{a.subject_ref} answered {r.status_code}")
    subject_bytes = r.content
    check(sha256(subject_bytes) == a.subject_digest,
          f"subject manifest digest {sha256(subject_bytes)} != expected {a.subject_digest}")
    check(r.headers.get("Docker-Content-Digest") in (None, a.subject_digest),
          f"Docker-Content-Digest {r.headers.get('Docker-Content-Digest')} != {a.subject_digest}")
    subject_type = r.headers.get("Content-Type", "").split(";")[0]
    check(subject_type == OCI_MANIFEST, f"subject Content-Type {subject_type!r}, expected {OCI_MANIFEST}")
    subject = oras.oci.Subject(mediaType=subject_type, digest=a.subject_digest, size=len(subject_bytes))

    # Artifact A: oras' own push, chunked upload (3 PATCHes), custom config type, no artifactType.
    os.chdir(ctx.dir)
    payload = json.dumps({"spdxVersion": "SPDX-2.3", "name": "berth-e2e",
                          "packages": [{"name": f"pkg-{i}", "versionInfo": os.urandom(16).hex()}
                                       for i in range(4000)]}).encode()
    with open("sbom.json", "wb") as f:
        f.write(payload)
    with open("sbom-config.json", "w") as f:
        json.dump({"generator": "berth-e2e"}, f)
    target_a = f"{ctx.registry}/{repo}:sbom-v1"
    r = ctx.reg.push(target=target_a, files=[f"sbom.json:{SBOM_LAYER_TYPE}"],
                     manifest_config=f"sbom-config.json:{SBOM_CONFIG_TYPE}",
                     manifest_annotations={"berth.e2e": "oras-push"},
                     subject=subject, config_path=ctx.authfile,
                     do_chunked=True, chunk_size=max(len(payload) // 3 + 1, 1024), quiet=True)
    check(r.status_code == 201, f"oras push of A answered {r.status_code}: {r.text[:300]}")
    a_subject_header = r.headers.get("OCI-Subject")
    r = ctx.req("GET", f"/v2/{repo}/manifests/sbom-v1", headers={"Accept": OCI_MANIFEST})
    check(r.status_code == 200, f"GET {repo}:sbom-v1 answered {r.status_code}")
    a_bytes = r.content
    a_manifest = json.loads(a_bytes)
    a_digest = sha256(a_bytes)
    check(a_manifest.get("subject", {}).get("digest") == a.subject_digest, "A lost its subject field")
    check(r.headers.get("Docker-Content-Digest") in (None, a_digest), "A: Docker-Content-Digest mismatch")
    pulled = ctx.reg.pull(target=target_a, outdir=os.path.join(ctx.dir, "pulled"), config_path=ctx.authfile)
    check(len(pulled) == 1, f"oras pull of A gave {pulled}")
    with open(pulled[0], "rb") as f:
        check(f.read() == payload, "oras pull of A: payload differs")
    print(f"A {a_digest} pushed (oras push, chunked) and pulled back")

    # Artifact B: an OCI layout made by mkimage.py, artifactType + empty config, PUT by digest.
    layout = os.path.join(ctx.dir, "sig-layout")
    out = subprocess.run([sys.executable, os.path.join(HERE, "mkimage.py"), "artifact", layout,
                          "--tag", "sig", "--subject-digest", a.subject_digest,
                          "--subject-size", str(len(subject_bytes)),
                          "--subject-media-type", subject_type,
                          "--artifact-type", SIG_ARTIFACT_TYPE, "--payload-size", "8K"],
                         check=True, capture_output=True, text=True).stdout
    b_summary = json.loads(out)
    b_digest = b_summary["digest"]
    blob_path = lambda d: os.path.join(layout, "blobs", "sha256", d.split(":", 1)[1])
    with open(blob_path(b_digest), "rb") as f:
        b_bytes = f.read()
    b_manifest = json.loads(b_bytes)
    container = ctx.reg.get_container(f"{ctx.registry}/{repo}")
    for desc in [b_manifest["config"]] + b_manifest["layers"]:
        r = ctx.reg.upload_blob(blob_path(desc["digest"]), container, desc)
        check(r.status_code in (200, 201), f"upload of blob {desc['digest']} answered {r.status_code}")
    r = ctx.req("PUT", f"/v2/{repo}/manifests/{b_digest}", headers={"Content-Type": OCI_MANIFEST},
                data=b_bytes)
    check(r.status_code == 201, f"PUT B manifest by digest answered {r.status_code}: {r.text[:300]}")
    check(r.headers.get("Docker-Content-Digest") in (None, b_digest), "B: Docker-Content-Digest mismatch")
    b_subject_header = r.headers.get("OCI-Subject")
    r = ctx.req("GET", f"/v2/{repo}/manifests/{b_digest}", headers={"Accept": OCI_MANIFEST})
    check(r.status_code == 200 and r.content == b_bytes, f"GET B by digest: {r.status_code}, bytes differ?")
    layer = b_manifest["layers"][0]
    r = ctx.req("GET", f"/v2/{repo}/blobs/{layer['digest']}")
    with open(blob_path(layer["digest"]), "rb") as f:
        check(r.status_code == 200 and r.content == f.read(), "GET B payload blob differs")
    print(f"B {b_digest} pushed (by digest, artifactType {SIG_ARTIFACT_TYPE}) and read back")

    ctx.save_state({
        "repo": repo,
        "subject": {"digest": a.subject_digest, "size": len(subject_bytes), "mediaType": subject_type},
        "A": {"digest": a_digest, "size": len(a_bytes), "artifactType": SBOM_CONFIG_TYPE,
              "annotations": a_manifest.get("annotations"), "oci_subject_header": a_subject_header},
        "B": {"digest": b_digest, "size": len(b_bytes), "artifactType": SIG_ARTIFACT_TYPE,
              "annotations": b_manifest.get("annotations"), "oci_subject_header": b_subject_header},
    })


def get_referrers(ctx, st, digest, query=""):
    r = ctx.req("GET", f"/v2/{st['repo']}/referrers/{digest}{query}", headers={"Accept": OCI_INDEX})
    check(r.status_code == 200, f"GET referrers/{digest}{query} answered {r.status_code}: {r.text[:300]}")
    ctype = r.headers.get("Content-Type", "").split(";")[0]
    check(ctype == OCI_INDEX, f"referrers Content-Type {ctype!r}, expected {OCI_INDEX}")
    index = r.json()
    check(index.get("schemaVersion") == 2 and index.get("mediaType") == OCI_INDEX,
          f"referrers response is not an OCI index: {index}")
    check(isinstance(index.get("manifests"), list), "referrers index has no manifests list")
    return r, {m["digest"]: m for m in index["manifests"]}


def cmd_referrers(ctx, a):
    st = ctx.load_state()
    subj = st["subject"]["digest"]
    _, found = get_referrers(ctx, st, subj)
    for name in ("A", "B"):
        want = st[name]
        got = found.get(want["digest"])
        check(got is not None, f"referrers of {subj} lack {name} {want['digest']}: {list(found)}")
        check(got.get("mediaType") == OCI_MANIFEST, f"{name}: mediaType {got.get('mediaType')}")
        check(got.get("size") == want["size"], f"{name}: size {got.get('size')} != {want['size']}")
        check(got.get("artifactType") == want["artifactType"],
              f"{name}: artifactType {got.get('artifactType')!r} != {want['artifactType']!r}")
        check((got.get("annotations") or None) == (want["annotations"] or None),
              f"{name}: annotations {got.get('annotations')} != {want['annotations']}")
    print(f"referrers of {subj}: {len(found)} entries, A and B with artifactType/size/annotations")
    for name in ("A", "B"):
        check(st[name]["oci_subject_header"] == subj,
              f"manifest PUT of {name} answered OCI-Subject={st[name]['oci_subject_header']!r}, "
              f"expected {subj}")
    print("manifest PUTs with a subject answered OCI-Subject")

    r, found = get_referrers(ctx, st, subj, f"?artifactType={SIG_ARTIFACT_TYPE}")
    check(r.headers.get("OCI-Filters-Applied") == "artifactType",
          f"filtered referrers: OCI-Filters-Applied={r.headers.get('OCI-Filters-Applied')!r}")
    check(list(found) == [st["B"]["digest"]], f"filter by artifactType gave {list(found)}")
    print("referrers ?artifactType= filter applied")

    nobody = sha256(os.urandom(32))
    _, found = get_referrers(ctx, st, nobody)
    check(not found, f"referrers of an unknown digest listed {list(found)}")
    print("referrers of an unreferenced digest: empty index")


def cmd_delete(ctx, a):
    st = ctx.load_state()
    b = st["B"]["digest"]
    r = ctx.req("DELETE", f"/v2/{st['repo']}/manifests/{b}")
    check(r.status_code == 202, f"DELETE manifest {b} answered {r.status_code}: {r.text[:300]}")
    r = ctx.req("GET", f"/v2/{st['repo']}/manifests/{b}", headers={"Accept": OCI_MANIFEST})
    check(r.status_code == 404, f"GET deleted manifest answered {r.status_code}")
    print(f"B {b} deleted; GET answers 404")
    if a.check_referrers:
        _, found = get_referrers(ctx, st, st["subject"]["digest"])
        check(b not in found and st["A"]["digest"] in found,
              f"after deleting B the referrers are {list(found)}")
        print("referrers no longer list B")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cmd", choices=["push", "referrers", "delete"])
    p.add_argument("--registry", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--subject-repo", default="library/skopeo-oci")
    p.add_argument("--subject-ref", default="v1")
    p.add_argument("--subject-digest")
    p.add_argument("--check-referrers", action="store_true")
    a = p.parse_args()
    try:
        ctx = Ctx(a)
        {"push": cmd_push, "referrers": cmd_referrers, "delete": cmd_delete}[a.cmd](ctx, a)
    except CheckFailed as e:
        print(f"oras_check {a.cmd}: FAILED: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

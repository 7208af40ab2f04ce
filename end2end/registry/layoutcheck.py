#!/usr/bin/env python3
"""Checks on OCI image layouts for clients.sh (python3 stdlib only).

    layoutcheck.py ref LAYOUT TAG [FIELD]    digest (or mediaType/size) of the manifest tagged TAG
    layoutcheck.py config LAYOUT REF         config digest of the image manifest REF (tag or digest)
    layoutcheck.py same LAYOUT_A REF_A LAYOUT_B REF_B
        the two refs have the same digest and every blob they reach (index children, config,
        layers) is byte-identical in both layouts
    layoutcheck.py diffids LAYOUT REF        every layer, decompressed, hashes to the diff_id in
                                             the config (compression may differ, content may not)
    layoutcheck.py sha256 FILE               sha256:<hex> of a file ('-' = stdin)
    layoutcheck.py child LAYOUT REF ARCH     digest of the index child for linux/ARCH
REF is a tag in index.json or a sha256: digest.
"""

import gzip
import hashlib
import json
import os
import sys

INDEX_TYPES = {"application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json"}


def fail(msg):
    print(f"layoutcheck: {msg}", file=sys.stderr)
    sys.exit(1)


def blob_path(layout, digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(layout, "blobs", algo, hexd)


def read_blob(layout, digest):
    path = blob_path(layout, digest)
    if not os.path.exists(path):
        fail(f"{layout}: blob {digest} missing")
    with open(path, "rb") as f:
        data = f.read()
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        fail(f"{layout}: blob {digest} does not hash to its name")
    return data


def resolve(layout, ref):
    """Returns the descriptor of REF (tag or digest)."""
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    for m in index["manifests"]:
        if ref.startswith("sha256:") and m["digest"] == ref:
            return m
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref:
            return m
    if ref.startswith("sha256:"):
        data = read_blob(layout, ref)
        return {"digest": ref, "size": len(data), "mediaType": json.loads(data).get("mediaType")}
    fail(f"{layout}: no ref {ref} in index.json")


def walk(layout, digest):
    """Yields every digest reachable from DIGEST, DIGEST first."""
    yield digest
    doc = json.loads(read_blob(layout, digest))
    if doc.get("mediaType") in INDEX_TYPES or "manifests" in doc:
        for m in doc["manifests"]:
            yield from walk(layout, m["digest"])
    else:
        yield doc["config"]["digest"]
        for layer in doc.get("layers", []):
            yield layer["digest"]


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "ref":
        desc = resolve(args[0], args[1])
        print(desc[args[2] if len(args) > 2 else "digest"])
    elif cmd == "config":
        desc = resolve(args[0], args[1])
        print(json.loads(read_blob(args[0], desc["digest"]))["config"]["digest"])
    elif cmd == "child":
        desc = resolve(args[0], args[1])
        for m in json.loads(read_blob(args[0], desc["digest"]))["manifests"]:
            p = m.get("platform", {})
            if p.get("os") == "linux" and p.get("architecture") == args[2]:
                print(m["digest"])
                return
        fail(f"no linux/{args[2]} child in {args[1]}")
    elif cmd == "same":
        la, ra, lb, rb = args
        da, db = resolve(la, ra)["digest"], resolve(lb, rb)["digest"]
        if da != db:
            fail(f"{la}:{ra} is {da} but {lb}:{rb} is {db}")
        n = 0
        for d in walk(la, da):
            if read_blob(la, d) != read_blob(lb, d):
                fail(f"blob {d} differs between {la} and {lb}")
            n += 1
        print(f"{da}: {n} blobs identical")
    elif cmd == "diffids":
        layout, ref = args
        manifest = json.loads(read_blob(layout, resolve(layout, ref)["digest"]))
        config = json.loads(read_blob(layout, manifest["config"]["digest"]))
        diff_ids = config["rootfs"]["diff_ids"]
        if len(diff_ids) != len(manifest["layers"]):
            fail(f"{len(manifest['layers'])} layers but {len(diff_ids)} diff_ids")
        for layer, want in zip(manifest["layers"], diff_ids):
            data = read_blob(layout, layer["digest"])
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            got = "sha256:" + hashlib.sha256(data).hexdigest()
            if got != want:
                fail(f"layer {layer['digest']} decompresses to {got}, config says {want}")
        print(f"{len(diff_ids)} layers match their diff_ids")
    elif cmd == "sha256":
        f = sys.stdin.buffer if args[0] == "-" else open(args[0], "rb")
        print("sha256:" + hashlib.sha256(f.read()).hexdigest())
    else:
        fail(__doc__)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes OCI image layouts for registry tests, offline, with the standard library only.

    mkimage.py image    OUT [--layers N] [--layer-size SIZE] [--arch ARCH] [--tag TAG] [--seed S]
    mkimage.py index    OUT [--layers N] [--layer-size SIZE] [--platforms linux/amd64,linux/arm64] [--tag TAG]
    mkimage.py artifact OUT --subject-digest D --subject-size N [--subject-media-type M]
                            [--artifact-type T] [--file PATH | --payload-size SIZE] [--tag TAG]

OUT becomes an OCI image layout (oci-layout, index.json, blobs/sha256/...) whose index.json
names the top-level manifest (or index) with org.opencontainers.image.ref.name = TAG, so that
`skopeo copy oci:OUT:TAG ...` finds it. A layout may be written into repeatedly: blobs are
content addressed and index.json keeps every ref it had, the last write of a tag winning.

Layers are gzip tars holding one file of random bytes (/berth-e2e/layer-<i>.bin), so every run
produces new digests unless --seed is given. SIZE accepts K/M/G suffixes (binary).

A JSON summary goes to stdout: digest, size and mediaType of the top-level object, the config
digest, layer digests and diff_ids, and for an index the same for every child.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
REF_NAME = "org.opencontainers.image.ref.name"
CREATED = "2024-01-01T00:00:00Z"


def parse_size(text):
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    if text[-1:] in "KMG":
        text = text[:-1]
    return int(float(text) * mult)


class Layout:
    def __init__(self, root):
        self.root = root
        self.blobs = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.blobs, exist_ok=True)
        with open(os.path.join(root, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)

    def put(self, data, media_type):
        """Stores a blob and returns its descriptor."""
        digest = hashlib.sha256(data).hexdigest()
        path = os.path.join(self.blobs, digest)
        if not os.path.exists(path):
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}

    def put_json(self, obj, media_type):
        return self.put(json.dumps(obj, separators=(",", ":")).encode(), media_type)

    def tag(self, desc, tag):
        path = os.path.join(self.root, "index.json")
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        if os.path.exists(path):
            with open(path) as f:
                index = json.load(f)
        index["manifests"] = [
            m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) != tag
        ]
        entry = dict(desc)
        entry["annotations"] = {REF_NAME: tag}
        index["manifests"].append(entry)
        with open(path + ".tmp", "w") as f:
            json.dump(index, f, indent=2)
        os.replace(path + ".tmp", path)


def make_layer(rng, index, size):
    """Returns (gzip bytes, diff_id) of a tar with one random file."""
    payload = rng.randbytes(size)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo("berth-e2e")
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 1704067200
        tar.addfile(d)
        ti = tarfile.TarInfo(f"berth-e2e/layer-{index}.bin")
        ti.size, ti.mode, ti.mtime = size, 0o644, 1704067200
        tar.addfile(ti, io.BytesIO(payload))
    tar_bytes = raw.getvalue()
    diff_id = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    # Random data does not compress: level 1 keeps it cheap. mtime=0 keeps it reproducible.
    gz = gzip.compress(tar_bytes, compresslevel=1, mtime=0)
    return gz, diff_id


def write_image(layout, rng, layers, layer_size, os_name, arch, variant=None):
    layer_descs, diff_ids = [], []
    for i in range(layers):
        gz, diff_id = make_layer(rng, i, layer_size)
        layer_descs.append(layout.put(gz, OCI_LAYER_GZIP))
        diff_ids.append(diff_id)
    config = {
        "created": CREATED,
        "architecture": arch,
        "os": os_name,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/true"],
            "Labels": {"org.opencontainers.image.title": "berth-e2e"},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": CREATED, "created_by": f"mkimage.py layer {i}"} for i in range(layers)
        ],
    }
    if variant:
        config["variant"] = variant
    config_desc = layout.put_json(config, OCI_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_desc,
        "layers": layer_descs,
    }
    desc = layout.put_json(manifest, OCI_MANIFEST)
    summary = dict(desc)
    summary.update(
        config=config_desc["digest"],
        layers=[d["digest"] for d in layer_descs],
        diff_ids=diff_ids,
        platform={"os": os_name, "architecture": arch, **({"variant": variant} if variant else {})},
    )
    return desc, summary


def cmd_image(args, layout, rng):
    desc, summary = write_image(layout, rng, args.layers, args.layer_size, "linux", args.arch)
    layout.tag(desc, args.tag)
    return summary


def cmd_index(args, layout, rng):
    children, summaries = [], []
    for plat in args.platforms.split(","):
        parts = plat.split("/")
        os_name, arch = parts[0], parts[1]
        variant = parts[2] if len(parts) > 2 else ("v8" if arch == "arm64" else None)
        desc, summary = write_image(layout, rng, args.layers, args.layer_size, os_name, arch, variant)
        child = dict(desc)
        child["platform"] = summary["platform"]
        children.append(child)
        summaries.append(summary)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
    desc = layout.put_json(index, OCI_INDEX)
    layout.tag(desc, args.tag)
    summary = dict(desc)
    summary["children"] = summaries
    return summary


def cmd_artifact(args, layout, rng):
    if args.file:
        with open(args.file, "rb") as f:
            payload = f.read()
        title = os.path.basename(args.file)
    else:
        payload = rng.randbytes(args.payload_size)
        title = "payload.bin"
    layer = layout.put(payload, args.layer_media_type)
    layer["annotations"] = {"org.opencontainers.image.title": title}
    empty = layout.put(EMPTY_JSON, OCI_EMPTY)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": args.artifact_type,
        "config": empty,
        "layers": [layer],
        "subject": {
            "mediaType": args.subject_media_type,
            "digest": args.subject_digest,
            "size": args.subject_size,
        },
        "annotations": {"org.opencontainers.image.created": CREATED, "berth.e2e": "artifact"},
    }
    desc = layout.put_json(manifest, OCI_MANIFEST)
    layout.tag(desc, args.tag)
    summary = dict(desc)
    summary.update(
        artifactType=args.artifact_type,
        config=empty["digest"],
        layers=[layer["digest"]],
        annotations=manifest["annotations"],
    )
    return summary


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp):
        sp.add_argument("out", help="OCI layout directory (created if missing)")
        sp.add_argument("--tag", default="v1", help="ref name in index.json (default v1)")
        sp.add_argument("--seed", help="make the random data reproducible")

    im = sub.add_parser("image", help="one single-platform image")
    common(im)
    im.add_argument("--layers", type=int, default=2)
    im.add_argument("--layer-size", type=parse_size, default=parse_size("1M"))
    im.add_argument("--arch", default="amd64")

    ix = sub.add_parser("index", help="an image index with one image per platform")
    common(ix)
    ix.add_argument("--layers", type=int, default=1)
    ix.add_argument("--layer-size", type=parse_size, default=parse_size("1M"))
    ix.add_argument("--platforms", default="linux/amd64,linux/arm64")

    ar = sub.add_parser("artifact", help="an artifact manifest (empty config) with a subject")
    common(ar)
    ar.add_argument("--subject-digest", required=True)
    ar.add_argument("--subject-size", type=int, required=True)
    ar.add_argument("--subject-media-type", default=OCI_MANIFEST)
    ar.add_argument("--artifact-type", default="application/vnd.berth.e2e.signature.v1")
    ar.add_argument("--layer-media-type", default="application/vnd.berth.e2e.payload.v1")
    ar.add_argument("--file", help="payload file (default: random bytes)")
    ar.add_argument("--payload-size", type=parse_size, default=parse_size("4K"))

    args = p.parse_args()
    seed = args.seed if args.seed is not None else os.urandom(16)
    rng = random.Random(seed)
    layout = Layout(args.out)
    summary = {"image": cmd_image, "index": cmd_index, "artifact": cmd_artifact}[args.cmd](args, layout, rng)
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes a single-platform OCI image layout with LAYERS gzip-tar layers of random bytes,
streaming (end2end/registry/mkimage.py builds layers in memory with random.randbytes, which
stops at 256 MiB).

    mkimage-big.py OUT --layers N --layer-bytes BYTES [--tag TAG]

Every layer is a tar holding one file of os.urandom bytes, gzip level 1 (random data does not
compress, so the blob is a few hundred bytes larger than the payload). Every run gives new
digests. Prints a JSON summary: manifest digest/size, config digest, layer digests and sizes.
"""

import argparse
import hashlib
import json
import os
import tarfile
import zlib

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
CHUNK = 4 << 20
MTIME = 1704067200


def tar_header(name, size, dirtype=False):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = (0, 0o755, MTIME) if dirtype else (size, 0o644, MTIME)
    if dirtype:
        ti.type = tarfile.DIRTYPE
    return ti.tobuf(format=tarfile.PAX_FORMAT)


def write_layer(blobs, index, size):
    """Streams tar -> gzip -> file; returns (descriptor, diff_id)."""
    tmp = os.path.join(blobs, f".layer-{index}.tmp")
    tar_sha = hashlib.sha256()
    gz_sha = hashlib.sha256()
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip wrapper, mtime 0
    total = 0
    with open(tmp, "wb") as f:
        def feed(data):
            nonlocal total
            tar_sha.update(data)
            out = comp.compress(data)
            if out:
                gz_sha.update(out)
                f.write(out)
                total += len(out)

        feed(tar_header("berth-bench", 0, dirtype=True))
        feed(tar_header(f"berth-bench/layer-{index}.bin", size))
        left = size
        while left:
            n = min(CHUNK, left)
            feed(os.urandom(n))
            left -= n
        pad = (-size) % 512
        feed(b"\0" * pad + b"\0" * 1024)  # file padding + end-of-archive blocks
        out = comp.flush()
        gz_sha.update(out)
        f.write(out)
        total += len(out)
    digest = gz_sha.hexdigest()
    os.replace(tmp, os.path.join(blobs, digest))
    desc = {"mediaType": OCI_LAYER_GZIP, "digest": "sha256:" + digest, "size": total}
    return desc, "sha256:" + tar_sha.hexdigest()


def put(blobs, data, media_type):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--layer-bytes", type=int, required=True)
    ap.add_argument("--tag", default="v1")
    args = ap.parse_args()

    blobs = os.path.join(args.out, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    with open(os.path.join(args.out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    layers, diff_ids = [], []
    for i in range(args.layers):
        desc, diff_id = write_layer(blobs, i, args.layer_bytes)
        layers.append(desc)
        diff_ids.append(diff_id)
    config = {
        "created": "2024-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"} for i in range(args.layers)],
    }
    cdesc = put(blobs, json.dumps(config, separators=(",", ":")).encode(), OCI_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cdesc, "layers": layers}
    mdesc = put(blobs, json.dumps(manifest, separators=(",", ":")).encode(), OCI_MANIFEST)
    entry = dict(mdesc)
    entry["annotations"] = {"org.opencontainers.image.ref.name": args.tag}
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}, f)
    print(json.dumps({
        "digest": mdesc["digest"], "size": mdesc["size"], "config": cdesc["digest"],
        "layers": [d["digest"] for d in layers], "layer_sizes": [d["size"] for d in layers],
        "total_bytes": sum(d["size"] for d in layers) + cdesc["size"] + mdesc["size"],
    }))


if __name__ == "__main__":
    main()

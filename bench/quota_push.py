#!/usr/bin/env python3
"""Concurrent pushers for bench/quota.sh (python3 standard library only).

    quota_push.py push --base URL --project P [--pushers 16] [--images 20] [--layers 4]
                       [--layer-bytes 65536] [--seed S]
    quota_push.py report RESULTS.jsonl

push: PUSHERS threads, each with its own keep-alive HTTP/1.1 connection and HTTP Basic auth as
admin, push IMAGES images each into repository P/w<thread>: LAYERS layers of LAYER_BYTES
random bytes and a small config, each a monolithic `POST /v2/<repo>/blobs/uploads/?digest=`
(201), then the OCI image manifest `PUT /v2/<repo>/manifests/v<i>` (201). Nothing is shared
between images. A 412 with the OCI code DENIED (the quota) ends that pusher (as a client
gives up on a refused push); any other answer is a failure (exit 1). All threads start
together (a barrier). Prints one JSON object: wall seconds, bytes admitted (layers + config +
manifests of the requests answered 201), requests, refusals and the first refusal's message.

report: Markdown tables (medians of the alternating runs, the ratio, every sample) from the
JSON lines bench/quota.sh collected.
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


class Client:
    def __init__(self, base, user, password):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        h = {"Authorization": self.auth}
        h.update(headers or {})
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise


class Refused(Exception):
    pass


def push(args):
    n = args.pushers
    barrier = threading.Barrier(n)
    results = [None] * n
    errors = []

    def blob(c, repo, data):
        s, body = c.request("POST", f"/v2/{repo}/blobs/uploads/?digest={sha(data)}", body=data,
                            headers={"Content-Type": "application/octet-stream"})
        if s == 412:
            raise Refused(body)
        if s != 201:
            raise RuntimeError(f"blob POST {repo}: {s} {body[:300]!r}")

    def worker(t):
        c = Client(args.base, "admin", "Harbor12345")
        repo = f"{args.project}/w{t}"
        admitted, requests, refusal = 0, 0, None
        # The data first, so the timed part is the pushing only.
        images = []
        for i in range(args.images):
            layers = [os.urandom(args.layer_bytes) for _ in range(args.layers)]
            config = json.dumps({"architecture": "amd64", "os": "linux", "bench": [args.seed, t, i],
                                 "rootfs": {"type": "layers", "diff_ids": []}}).encode()
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
                "layers": [{"mediaType": OCI_LAYER, "digest": sha(l), "size": len(l)} for l in layers],
            }).encode()
            images.append((config, layers, manifest))
        barrier.wait()
        start = time.monotonic()
        try:
            for i, (config, layers, manifest) in enumerate(images):
                for data in [config] + layers:
                    blob(c, repo, data)
                    requests += 1
                    admitted += len(data)
                s, body = c.request("PUT", f"/v2/{repo}/manifests/v{i}", body=manifest,
                                    headers={"Content-Type": OCI_MANIFEST})
                requests += 1
                if s == 412:
                    raise Refused(body)
                if s != 201:
                    raise RuntimeError(f"manifest PUT {repo}: {s} {body[:300]!r}")
                admitted += len(manifest)
        except Refused as e:
            j = json.loads(e.args[0])
            if j["errors"][0]["code"] != "DENIED":
                errors.append(f"412 without DENIED: {j}")
            refusal = j["errors"][0]["message"]
        except Exception as e:  # noqa: BLE001 - reported, exit 1
            errors.append(f"pusher {t}: {e}")
        results[t] = (time.monotonic() - start, admitted, requests, refusal)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n)]
    wall = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        print("\n".join(errors), file=sys.stderr)
        sys.exit(1)
    refusals = [r[3] for r in results if r[3]]
    out = {
        "seconds": max(r[0] for r in results),
        "bytes": sum(r[1] for r in results),
        "requests": sum(r[2] for r in results),
        "refused": len(refusals),
        "refusal": refusals[0] if refusals else None,
        "process_seconds": time.monotonic() - wall,
    }
    print(json.dumps(out))


def report(args):
    rows = [json.loads(l) for l in open(args.results) if l.strip()]
    runs = [r for r in rows if r["kind"] == "run"]
    out = []
    by = {}
    for r in runs:
        by.setdefault((r["db"], r["mode"]), []).append(r)
    dbs = sorted({r["db"] for r in runs})
    out.append("| database | mode | runs | median MB/s | median requests/s | median s | samples (MB/s) |")
    out.append("| --- | --- | --- | --- | --- | --- | --- |")
    med = {}
    for db in dbs:
        for mode in ("quota", "none"):
            rs = by.get((db, mode), [])
            if not rs:
                continue
            mbs = [r["bytes"] / r["seconds"] / 1e6 for r in rs]
            rps = [r["requests"] / r["seconds"] for r in rs]
            med[(db, mode)] = statistics.median(rps)
            out.append(f"| {db} | {mode} | {len(rs)} | {statistics.median(mbs):.1f} | "
                       f"{statistics.median(rps):.0f} | {statistics.median(r['seconds'] for r in rs):.2f} | "
                       + ", ".join(f"{m:.1f}" for m in mbs) + " |")
    out.append("")
    for db in dbs:
        if (db, "quota") in med and (db, "none") in med:
            q, n = med[(db, "quota")], med[(db, "none")]
            cost = (1 - q / n) * 100
            verdict = "PASS" if cost < 10 else "FAIL"
            out.append(f"- {db}: with a quota {q:.0f} requests/s, without {n:.0f}: the quota costs "
                       f"{cost:.1f} % of throughput ({verdict}: < 10 %)")
    edges = [r for r in rows if r["kind"] == "edge"]
    if edges:
        out.append("")
        out.append("| database | limit | used after | over by | largest push (one image) | refused pushers | first refusal |")
        out.append("| --- | --- | --- | --- | --- | --- | --- |")
        for e in edges:
            out.append(f"| {e['db']} | {e['limit']} | {e['used']} | {max(0, e['used'] - e['limit'])} | "
                       f"{e['image_bytes']} | {e['refused']} | {e['refusal']} |")
    print("\n".join(out))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("push")
    a.add_argument("--base", required=True)
    a.add_argument("--project", required=True)
    a.add_argument("--pushers", type=int, default=16)
    a.add_argument("--images", type=int, default=20)
    a.add_argument("--layers", type=int, default=4)
    a.add_argument("--layer-bytes", type=int, default=65536)
    a.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("report")
    r.add_argument("results")
    args = p.parse_args()
    {"push": push, "report": report}[args.cmd](args)


if __name__ == "__main__":
    main()

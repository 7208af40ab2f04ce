#!/usr/bin/env python3
"""Replication benchmark driver (called by bench/replication.sh; read that file's header).

    replication_bench.py seed-small  --src URL --repo R --count N
    replication_bench.py berth       --src URL --dest URL --dest-user U --dest-password P
                                     --name NAME --filter PATTERN --pid PID --out JSON
    replication_bench.py skopeo-sync --src URL --dest URL --dest-creds U:P --yaml FILE --out JSON
    replication_bench.py report      WORKDIR

seed-small pushes N distinct small images (a 1 KiB random layer and a config each) to
SRC/R:t0000… over /v2 with Basic auth (admin / Harbor12345), several at a time.
berth creates a docker-registry endpoint for DEST on SRC, a push-based policy for PATTERN,
runs it, then runs it again with nothing changed; it samples the RSS of PID every 0.1 s.
skopeo-sync times `skopeo sync --src yaml` of the same set (the SKOPEO environment variable
holds the command line, one argument per line).
"""

import argparse
import base64
import concurrent.futures
import hashlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

AUTH = "Basic " + base64.b64encode(b"admin:Harbor12345").decode()


def req(method, url, data=None, headers=None, auth=AUTH):
    h = {"Authorization": auth} if auth else {}
    h.update(headers or {})
    r = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(r, timeout=600) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def must(status, want, what, body=b""):
    if status != want:
        sys.exit(f"{what}: {status} (expected {want}) {body[:300]!r}")


def push_blob(src, repo, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    s, h, b = req("POST", f"{src}/v2/{repo}/blobs/uploads/?digest={d}", data=data,
                  headers={"Content-Type": "application/octet-stream"})
    must(s, 201, "monolithic blob POST", b)
    return {"digest": d, "size": len(data)}


def seed_one(src, repo, i):
    layer = push_blob(src, repo, os.urandom(1024))
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
                      "config": {"Labels": {"n": str(i)}}}).encode()
    config = push_blob(src, repo, cfg)
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
         "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}]}
    s, _, b = req("PUT", f"{src}/v2/{repo}/manifests/t{i:04d}", data=json.dumps(m).encode(),
                  headers={"Content-Type": m["mediaType"]})
    must(s, 201, "manifest PUT", b)


def cmd_seed_small(a):
    req("POST", f"{a.src}/api/v2.0/projects", data=json.dumps({"project_name": a.repo.split("/")[0]}).encode(),
        headers={"Content-Type": "application/json"})
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: seed_one(a.src, a.repo, i), range(a.count)))


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.max_kib, self.stop = pid, 0, False

    def run(self):
        while not self.stop:
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            self.max_kib = max(self.max_kib, int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.1)


def api_json(method, url, body=None, want=200):
    s, h, b = req(method, url, data=json.dumps(body).encode() if body is not None else None,
                  headers={"Content-Type": "application/json"} if body is not None else None)
    must(s, want, f"{method} {url}", b)
    return h, (json.loads(b) if b and want == 200 else None)


def run_execution(src, policy_id):
    t0 = time.time()
    h, _ = api_json("POST", f"{src}/api/v2.0/replication/executions", {"policy_id": policy_id}, want=201)
    eid = h["Location"].rstrip("/").rsplit("/", 1)[1]
    while True:
        _, e = api_json("GET", f"{src}/api/v2.0/replication/executions/{eid}")
        if e["status"] not in ("Pending", "InProgress", "Running"):
            break
        time.sleep(0.1)
    secs = time.time() - t0
    if e["status"] != "Succeed":
        sys.exit(f"execution {eid} ended {e['status']}: {e.get('status_text')}")
    return secs, e


def cmd_berth(a):
    h, _ = api_json("POST", f"{a.src}/api/v2.0/registries",
                    {"name": a.name, "type": "docker-registry", "url": a.dest, "insecure": True,
                     "credential": {"type": "basic", "access_key": a.dest_user, "access_secret": a.dest_password}},
                    want=201)
    rid = int(h["Location"].rstrip("/").rsplit("/", 1)[1])
    h, _ = api_json("POST", f"{a.src}/api/v2.0/replication/policies",
                    {"name": a.name, "dest_registry": {"id": rid}, "filters": [{"type": "name", "value": a.filter}],
                     "trigger": {"type": "manual"}, "override": True, "enabled": True}, want=201)
    pid = int(h["Location"].rstrip("/").rsplit("/", 1)[1])
    sampler = RssSampler(a.pid)
    sampler.start()
    first, e = run_execution(a.src, pid)
    again, e2 = run_execution(a.src, pid)
    sampler.stop = True
    sampler.join()
    json.dump({"seconds": first, "rerun_seconds": again, "max_rss_mib": sampler.max_kib / 1024,
               "tasks": e.get("total"), "rerun_tasks": e2.get("total")}, open(a.out, "w"))


def cmd_skopeo_sync(a):
    cmd = os.environ["SKOPEO"].split("\n") + ["sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false",
                                               "--dest-creds", a.dest_creds, "--preserve-digests", "--all", a.yaml,
                                               a.dest.split("://", 1)[1]]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.time() - t0
    if r.returncode != 0:
        sys.exit(f"skopeo sync: {r.stderr[-1000:]}")
    json.dump({"seconds": secs}, open(a.out, "w"))


def cmd_report(a):
    rows = {}
    for f in sorted(os.listdir(a.workdir)):
        if f.endswith(".json") and f.startswith("r-"):
            _, case, tool, _rep = f[:-5].split("-", 3)
            rows.setdefault((case, tool), []).append(json.load(open(os.path.join(a.workdir, f))))
    print("| set | tool | runs | wall s (median) | samples | re-run unchanged s | max RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (case, tool), rs in sorted(rows.items()):
        secs = [r["seconds"] for r in rs]
        rerun = [r["rerun_seconds"] for r in rs if "rerun_seconds" in r]
        rss = [r["max_rss_mib"] for r in rs if "max_rss_mib" in r]
        print(f"| {case} | {tool} | {len(rs)} | {statistics.median(secs):.1f} | "
              f"{' '.join(f'{s:.1f}' for s in secs)} | "
              f"{(f'{statistics.median(rerun):.2f}' if rerun else '–')} | {(f'{max(rss):.0f}' if rss else '–')} |")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("seed-small")
    s.add_argument("--src", required=True)
    s.add_argument("--repo", required=True)
    s.add_argument("--count", type=int, default=1000)
    b = sub.add_parser("berth")
    for k in ("--src", "--dest", "--dest-user", "--dest-password", "--name", "--filter", "--out"):
        b.add_argument(k, required=True)
    b.add_argument("--pid", type=int, required=True)
    k = sub.add_parser("skopeo-sync")
    for x in ("--src", "--dest", "--dest-creds", "--yaml", "--out"):
        k.add_argument(x, required=True)
    r = sub.add_parser("report")
    r.add_argument("workdir")
    a = p.parse_args()
    {"seed-small": cmd_seed_small, "berth": cmd_berth, "skopeo-sync": cmd_skopeo_sync, "report": cmd_report}[
        a.cmd.replace("_", "-")](a)


if __name__ == "__main__":
    main()

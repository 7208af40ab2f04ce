#!/usr/bin/env python3
"""Helpers of bench/ha.sh (standard library only).

  seed BASE USER PASSWORD REPO BYTES OUT.json
      pushes, straight to one replica over http, an OCI image with one layer of BYTES random
      bytes (streamed from a temporary file, monolithic POST ?digest=) and tag v1; writes
      {"layer": digest, "size": n, "manifest": digest} to OUT.json.

  retry BASE CACERT USER PASSWORD PATH KILLED_AT_FILE OUT.json [--clients N] [--limit BYTES/s]
      N clients each download PATH through the load balancer (rate-limited so that the
      downloads are in flight when a replica is killed); a download that fails is retried at
      once, up to 20 times, until one completes with all bytes. After all are done, reads the kill
      time (epoch seconds) from KILLED_AT_FILE and writes per client: attempts, the failure
      times and the time from the kill to the first complete retry.

  kill-report PROBE.jsonl RETRY.json KILLED_AT
      prints what the clients saw around the kill; PROBE.jsonl is the output of
      `deploy/test/ha_tool.py probe` (one JSON line per request: kind, t0, t1, status).
"""
import base64
import hashlib
import json
import os
import socket
import ssl
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def auth(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def request(url, method="GET", data=None, headers=None, ctx=None, timeout=600):
    req = urllib.request.Request(url, method=method, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def post_blob(base, hdr, repo, data_or_file, size, digest):
    url = f"{base}/v2/{repo}/blobs/uploads/?digest={digest}"
    h = dict(hdr, **{"Content-Type": "application/octet-stream", "Content-Length": str(size)})
    status, _, body = request(url, "POST", data_or_file, h)
    if status != 201:
        sys.exit(f"POST {url}: {status} {body[:200]!r}")


def seed(base, user, password, repo, nbytes, out):
    hdr = {"Authorization": auth(user, password)}
    h = hashlib.sha256()
    with tempfile.TemporaryFile() as f:
        left = nbytes
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            h.update(chunk)
            f.write(chunk)
            left -= len(chunk)
        f.flush()
        f.seek(0)
        layer = "sha256:" + h.hexdigest()
        post_blob(base, hdr, repo, f, nbytes, layer)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [layer]}}).encode()
    cdig = "sha256:" + hashlib.sha256(config).hexdigest()
    post_blob(base, hdr, repo, config, len(config), cdig)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": nbytes}],
    }).encode()
    status, _, body = request(f"{base}/v2/{repo}/manifests/v1", "PUT", manifest,
                              dict(hdr, **{"Content-Type": OCI_MANIFEST}))
    if status != 201:
        sys.exit(f"PUT manifest: {status} {body[:200]!r}")
    with open(out, "w") as f:
        json.dump({"layer": layer, "size": nbytes, "manifest": "sha256:" + hashlib.sha256(manifest).hexdigest()}, f)


def download(url, hdr, ctx, limit):
    """(bytes received, time the response headers arrived), or raises. Reads at most `limit`
    bytes/s (0: no limit)."""
    req = urllib.request.Request(url, headers=hdr)
    got = 0
    t0 = time.time()
    with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
        answered = time.time()
        want = int(r.headers["Content-Length"])
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            got += len(chunk)
            if limit:
                ahead = got / limit - (time.time() - t0)
                if ahead > 0:
                    time.sleep(ahead)
    if got != want:
        raise IOError(f"short body: {got} of {want} bytes")
    return got, answered


def retry(base, cacert, user, password, path, killed_file, out, clients=6, limit=0):
    ctx = ssl.create_default_context(cafile=cacert)
    hdr = {"Authorization": auth(user, password)}
    results = [None] * clients

    def client(i):
        fails = []
        for attempt in range(1, 21):
            try:
                _, answered = download(base + path, hdr, ctx, limit)
                results[i] = {"attempts": attempt, "failures": fails, "done": time.time(), "answered": answered}
                return
            except (OSError, urllib.error.URLError, socket.timeout) as e:
                fails.append({"t": time.time(), "error": str(e)[:120]})
        results[i] = {"attempts": 20, "failures": fails, "done": None, "answered": None}

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    killed = float(open(killed_file).read())
    for r in results:
        r["kill_to_success_s"] = (r["done"] - killed) if r["failures"] and r["done"] else None
        r["kill_to_answer_s"] = (r["answered"] - killed) if r["failures"] and r["done"] else None
    with open(out, "w") as f:
        json.dump({"killed_at": killed, "clients": results}, f)


def kill_report(probe_file, retry_file, killed):
    killed = float(killed)
    rows = [json.loads(l) for l in open(probe_file)]
    bad = [r for r in rows if r["status"] != 200]
    around = [r for r in rows if killed - 1 <= r["t0"] <= killed + 5]
    print(f"probe (manifest GET, REST, token): {len(rows)} requests ({len(around)} in the 6 s around the kill), "
          f"{len(bad)} not 200: {sorted(set(r['status'] for r in bad))}")
    if bad:
        last = max(r["t1"] for r in bad)
        ok_after = min((r["t1"] for r in rows if r["status"] == 200 and r["t0"] >= last), default=None)
        print(f"  last failure {last - killed:.2f} s after the kill; next success {ok_after - killed:.2f} s after it"
              if ok_after else "  no success after the last failure")
    r = json.load(open(retry_file))
    failed = [c for c in r["clients"] if c["failures"]]
    print(f"downloads in flight: {len(r['clients'])} clients, {len(failed)} had a download cut by the kill")
    for c in failed:
        ts = ", ".join(f"{x['t'] - killed:+.2f} s ({x['error'][:60]})" for x in c["failures"])
        print(f"  failed at {ts}; its retry answered {c['kill_to_answer_s']:.2f} s after the kill "
              f"(by another replica) and completed {c['kill_to_success_s']:.2f} s after it" if c["done"]
              else f"  failed at {ts}; never completed")
    if failed:
        worst = max(c["kill_to_success_s"] or 1e9 for c in failed)
        print(f"KILL_TO_RETRY_ANSWER_MAX {max(c['kill_to_answer_s'] or 1e9 for c in failed):.2f}")
        print(f"KILL_TO_RETRY_COMPLETE_MAX {worst:.2f} (the retry is a whole rate-limited download)")
        # Time from the kill until the cut download was noticed, and its retry's own duration.
        first_fail = min(x["t"] for c in failed for x in c["failures"])
        print(f"KILL_TO_FIRST_FAILURE {first_fail - killed:.2f}")
    all_done = all(c["done"] for c in r["clients"])
    sys.exit(0 if all_done and not [x for x in bad if x["t0"] > killed + 10] else 1)


def main():
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    cmd, args = a[0], a[1:]
    opts = {}
    while len(args) >= 2 and args[-2].startswith("--"):
        opts[args[-2][2:]] = args[-1]
        args = args[:-2]
    if cmd == "seed":
        base, user, password, repo, nbytes, out = args
        seed(base, user, password, repo, int(nbytes), out)
    elif cmd == "retry":
        retry(*args, clients=int(opts.get("clients", 6)), limit=int(opts.get("limit", 0)))
    elif cmd == "kill-report":
        kill_report(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

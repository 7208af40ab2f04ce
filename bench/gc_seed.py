#!/usr/bin/env python3
"""Seeding, deleting, checking and reporting for bench/gc.sh (python3 standard library only).

    gc_seed.py seed   --base URL --state FILE --artifacts N [--repos 100] [--threads 8]
    gc_seed.py delete --state FILE --base URL [--keep-every 10] [--threads 8]
    gc_seed.py verify --state FILE --base URL [--deleted-sample 200]
    gc_seed.py dbstats --db berth.db [--job ID]
    gc_seed.py timed OUT.json -- COMMAND ARGS…
    gc_seed.py report RESULTS.jsonl

seed: artifact i (0 ≤ i < N) lives in repository library/bench-(i mod REPOS) under tag v<i>;
it is 1 config blob (a small JSON document) + 9 layer blobs of 64–512 random bytes, each
pushed with a monolithic `POST /v2/<repo>/blobs/uploads/?digest=…` (201 expected), then its
OCI image manifest with `PUT /v2/<repo>/manifests/v<i>` (201 expected): 10 blobs and 1
manifest per artifact, nothing shared. THREADS threads, each with its own keep-alive
connection and HTTP Basic auth as admin. Every artifact is written to the state file (JSON
lines: repository, tag, manifest digest, blob digests and sizes).

delete: every artifact whose index is not a multiple of KEEP_EVERY is deleted with
`DELETE /v2/<repo>/manifests/<digest>` (202 expected): that removes the artifact and its tag;
its blobs and manifest stay in storage until GC. The state file gets a `deleted` flag.

verify: every surviving artifact: manifest GET by tag is 200 and its body hashes to the pushed
digest; one of its blobs (rotating over config and layers) GETs 200 with the right bytes.
A sample of deleted artifacts: manifest GET by digest and blob GET answer 404. Any other
answer is a failure (exit 1): GC must never destroy live data.

dbstats: row counts read from the SQLite database (read-only; the server may run), as JSON.

timed: runs a command, writes its wall time, CPU time and peak RSS (of the child) as JSON.

Every subcommand prints one JSON object on stdout; progress goes to stderr.
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import queue
import random
import resource
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYERS = 9


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


class Failure(Exception):
    pass


class Client:
    """One keep-alive HTTP/1.1 connection with Basic auth; reconnects (once per request) when
    the server closed an idle connection."""

    def __init__(self, base, user, password):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        h = {"Authorization": self.auth}
        if headers:
            h.update(headers)
        if body is not None:
            h["Content-Length"] = str(len(body))
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, data, r
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady) as e:
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise Failure(f"{method} {path}: connection failed twice: {e!r}")
        raise AssertionError("unreachable")


def run_threads(n_threads, items, work, what):
    """Runs work(client_index, item) for every item on n_threads threads; the first failure
    stops everything and is raised. Logs progress every 10 %."""
    q = queue.Queue()
    for it in items:
        q.put(it)
    total = q.qsize()
    done = [0]
    errors = []
    lock = threading.Lock()
    step = max(1, total // 10)

    def worker(k):
        while not errors:
            try:
                it = q.get_nowait()
            except queue.Empty:
                return
            try:
                work(k, it)
            except Exception as e:  # noqa: BLE001 - reported and fatal
                with lock:
                    errors.append(e)
                return
            with lock:
                done[0] += 1
                if done[0] % step == 0:
                    log(f"{what}: {done[0]}/{total}")

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return done[0]


def load_state(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def save_state(path, arts):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for a in arts:
            f.write(json.dumps(a, separators=(",", ":")) + "\n")
    os.replace(tmp, path)


def expect(status, want, what, data=b""):
    if status not in want:
        raise Failure(f"{what}: HTTP {status} (expected {'/'.join(map(str, want))}): {data[:300]!r}")


# ------------------------------------------------------------------ seed


def cmd_seed(a):
    clients = [Client(a.base, a.user, a.password) for _ in range(a.threads)]
    arts = [None] * a.artifacts
    counters = {"blob_posts": 0, "manifest_puts": 0, "bytes": 0}
    clock = threading.Lock()

    def push(k, i):
        c = clients[k]
        rnd = random.Random(f"{a.seed}-{i}")  # sizes reproducible; contents from os.urandom
        repo = f"{a.project}/bench-{i % a.repos}"
        cfg = json.dumps({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Labels": {"bench": os.urandom(16).hex(), "artifact": str(i)}},
        }).encode()
        blobs = [(cfg, OCI_CONFIG)] + [(os.urandom(rnd.randint(64, 512)), OCI_LAYER) for _ in range(LAYERS)]
        descs = []
        nbytes = 0
        for data, mt in blobs:
            d = sha(data)
            st, body, _ = c.request("POST", f"/v2/{repo}/blobs/uploads/?digest={d}", body=data,
                                    headers={"Content-Type": "application/octet-stream"})
            expect(st, (201,), f"POST blob {d} to {repo}", body)
            descs.append({"mediaType": mt, "digest": d, "size": len(data)})
            nbytes += len(data)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": descs[0], "layers": descs[1:],
        }, separators=(",", ":")).encode()
        md = sha(manifest)
        tag = f"v{i}"
        st, body, r = c.request("PUT", f"/v2/{repo}/manifests/{tag}", body=manifest,
                                headers={"Content-Type": OCI_MANIFEST})
        expect(st, (201,), f"PUT manifest {repo}:{tag}", body)
        got = r.getheader("Docker-Content-Digest")
        if got != md:
            raise Failure(f"PUT manifest {repo}:{tag}: Docker-Content-Digest {got}, expected {md}")
        arts[i] = {"i": i, "repo": repo, "tag": tag, "digest": md, "manifest_size": len(manifest),
                   "blobs": [[x["digest"], x["size"]] for x in descs], "deleted": False}
        with clock:
            counters["blob_posts"] += len(descs)
            counters["manifest_puts"] += 1
            counters["bytes"] += nbytes + len(manifest)

    t0 = time.perf_counter()
    run_threads(a.threads, range(a.artifacts), push, "seed")
    secs = time.perf_counter() - t0
    save_state(a.state, arts)
    reqs = counters["blob_posts"] + counters["manifest_puts"]
    print(json.dumps({"artifacts": a.artifacts, "repos": min(a.repos, a.artifacts), "threads": a.threads,
                      "seconds": round(secs, 2), "requests": reqs, "requests_per_s": round(reqs / secs, 1),
                      **counters}))


# ------------------------------------------------------------------ delete


def cmd_delete(a):
    arts = load_state(a.state)
    clients = [Client(a.base, a.user, a.password) for _ in range(a.threads)]
    victims = [x for x in arts if x["i"] % a.keep_every != 0 and not x["deleted"]]

    def delete(k, art):
        st, body, _ = clients[k].request("DELETE", f"/v2/{art['repo']}/manifests/{art['digest']}")
        expect(st, (202,), f"DELETE {art['repo']}@{art['digest']}", body)
        art["deleted"] = True

    t0 = time.perf_counter()
    try:
        run_threads(a.threads, victims, delete, "delete")
    finally:
        save_state(a.state, arts)
    secs = time.perf_counter() - t0
    kept = sum(1 for x in arts if not x["deleted"])
    print(json.dumps({"deleted": len(victims), "kept": kept, "seconds": round(secs, 2),
                      "garbage_blobs": len(victims) * (LAYERS + 1), "garbage_manifests": len(victims),
                      "garbage_bytes": sum(sum(s for _, s in x["blobs"]) + x["manifest_size"] for x in victims)}))


# ------------------------------------------------------------------ verify


def cmd_verify(a):
    arts = load_state(a.state)
    live = [x for x in arts if not x["deleted"]]
    dead = [x for x in arts if x["deleted"]]
    rnd = random.Random(a.seed)
    sample = rnd.sample(dead, min(a.deleted_sample, len(dead)))
    clients = [Client(a.base, a.user, a.password) for _ in range(a.threads)]
    failures = []
    flock = threading.Lock()

    def fail(msg):
        with flock:
            failures.append(msg)

    def check_live(k, art):
        c = clients[k]
        st, body, _ = c.request("GET", f"/v2/{art['repo']}/manifests/{art['tag']}", headers={"Accept": OCI_MANIFEST})
        if st != 200:
            return fail(f"live {art['repo']}:{art['tag']}: manifest GET {st} {body[:200]!r}")
        if sha(body) != art["digest"]:
            return fail(f"live {art['repo']}:{art['tag']}: manifest body hashes to {sha(body)}, pushed {art['digest']}")
        d, size = art["blobs"][art["i"] // a.keep_every % len(art["blobs"])]
        st, body, _ = c.request("GET", f"/v2/{art['repo']}/blobs/{d}")
        if st != 200 or len(body) != size or sha(body) != d:
            return fail(f"live {art['repo']}@{d}: blob GET {st}, {len(body)} bytes of {size}, hash {sha(body)}")

    def check_dead(k, art):
        c = clients[k]
        st, body, _ = c.request("GET", f"/v2/{art['repo']}/manifests/{art['digest']}", headers={"Accept": OCI_MANIFEST})
        if st != 404:
            fail(f"deleted {art['repo']}@{art['digest']}: manifest GET {st} (expected 404)")
        d, _ = art["blobs"][art["i"] % len(art["blobs"])]
        st, body, _ = c.request("GET", f"/v2/{art['repo']}/blobs/{d}")
        if st != 404:
            fail(f"deleted {art['repo']}@{d}: blob GET {st} (expected 404)")

    t0 = time.perf_counter()
    run_threads(a.threads, live, check_live, "verify live")
    if not a.live_only:
        run_threads(a.threads, sample, check_dead, "verify deleted")
    out = {"live_checked": len(live), "deleted_checked": 0 if a.live_only else len(sample),
           "failures": len(failures), "seconds": round(time.perf_counter() - t0, 2)}
    print(json.dumps(out))
    if failures:
        for f in failures[:20]:
            log("VERIFY FAILED: " + f)
        sys.exit(1)


# ------------------------------------------------------------------ dbstats, timed


def cmd_dbstats(a):
    db = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True, timeout=30)
    one = lambda sql, *p: db.execute(sql, p).fetchone()[0]  # noqa: E731
    out = {
        "artifacts": one("SELECT COUNT(*) FROM artifacts"),
        "tags": one("SELECT COUNT(*) FROM tags"),
        "repositories": one("SELECT COUNT(*) FROM repositories"),
        "blob_rows": one("SELECT COUNT(*) FROM blobs"),
        "blobs": one("SELECT COUNT(*) FROM blobs WHERE kind <> 'manifest'"),
        "manifests": one("SELECT COUNT(*) FROM blobs WHERE kind = 'manifest'"),
        "deleting": one("SELECT COUNT(*) FROM blobs WHERE status = 'deleting'"),
        "blob_bytes": one("SELECT COALESCE(SUM(size), 0) FROM blobs"),
        "artifact_blobs": one("SELECT COUNT(*) FROM artifact_blobs"),
        "repository_blobs": one("SELECT COUNT(*) FROM repository_blobs"),
        "uploads": one("SELECT COUNT(*) FROM uploads"),
    }
    for job in a.job or []:
        # Phases from the job log's time stamps (ms): started -> "marked:" -> "finished".
        text = "".join(r[0] for r in db.execute("SELECT text FROM job_logs WHERE job_id = ? ORDER BY seq", (job,)))
        stamps = {}
        for line in text.splitlines():
            ts, _, msg = line.partition(" ")
            for key, prefix in (("started", "garbage collection started"), ("marked", "marked:"),
                                ("finished", "garbage collection finished")):
                if msg.startswith(prefix) and key not in stamps:
                    stamps[key] = time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + int(ts[20:23]) / 1000
        j = {"log_bytes": len(text.encode()), "log_lines": text.count("\n")}
        if len(stamps) == 3:
            j["mark_s"] = round(stamps["marked"] - stamps["started"], 3)
            j["sweep_s"] = round(stamps["finished"] - stamps["marked"], 3)
        out[f"job_{job}"] = j
    db.close()
    for f in (a.db, a.db + "-wal"):
        out["db_bytes" if f == a.db else "wal_bytes"] = os.path.getsize(f) if os.path.exists(f) else 0
    print(json.dumps(out))


def cmd_timed(a):
    cmd = a.command[1:] if a.command and a.command[0] == "--" else a.command
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE)
    secs = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(a.out, "w") as f:
        json.dump({"wall_s": round(secs, 3), "user_s": round(ru.ru_utime, 2), "sys_s": round(ru.ru_stime, 2),
                   "maxrss_mib": round(ru.ru_maxrss / 1024, 1), "rc": p.returncode}, f)
    sys.stdout.buffer.write(p.stdout)
    sys.exit(p.returncode)


# ------------------------------------------------------------------ report


def fmt_s(x):
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def cmd_report(a):
    rows = [json.loads(line) for line in open(a.results) if line.strip()]
    print("| storage | artifacts | blob rows in DB (blobs + manifests) | deleted blobs + manifests | bytes freed "
          "| seeding s (req/s) | dry-run s | GC s (wall) | GC `duration_ms` | deleted objects/s | GC CPU s | GC peak RSS MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        g = r["gc"]
        deleted = g["report"]["blobs"] + g["report"]["manifests"]
        print(f"| {r['storage']} | {r['artifacts']:,} | {r['before']['blob_rows']:,} "
              f"({r['before']['blobs']:,} + {r['before']['manifests']:,}) | {deleted:,} "
              f"({g['report']['blobs']:,} + {g['report']['manifests']:,}) | {g['report']['bytes']:,} "
              f"| {fmt_s(r['seed']['seconds'])} ({r['seed']['requests_per_s']:.0f}) "
              f"| {fmt_s(r['dry']['time']['wall_s'])} | {fmt_s(g['time']['wall_s'])} "
              f"| {g['report']['duration_ms']:,} | {deleted / g['time']['wall_s']:,.0f} "
              f"| {g['time']['user_s'] + g['time']['sys_s']:.1f} | {g['time']['maxrss_mib']:.0f} |")
    print()
    print("Growth against the smallest size of the same storage (time ratio ÷ object ratio: 1.0 is linear; "
          "exponent k in time ∝ objects^k):")
    print()
    print("| storage | artifacts | objects ratio | GC time ratio | ratio ÷ objects ratio | exponent k "
          "| dry-run time ratio | dry-run exponent |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    import math
    for storage in dict.fromkeys(r["storage"] for r in rows):
        rs = sorted((r for r in rows if r["storage"] == storage), key=lambda r: r["before"]["blob_rows"])
        b = rs[0]
        for r in rs[1:]:
            objs = r["before"]["blob_rows"] / b["before"]["blob_rows"]
            tr = r["gc"]["time"]["wall_s"] / b["gc"]["time"]["wall_s"]
            dr = r["dry"]["time"]["wall_s"] / b["dry"]["time"]["wall_s"]
            print(f"| {storage} | {b['artifacts']:,} → {r['artifacts']:,} | {objs:.2f} | {tr:.2f} | {tr / objs:.2f} "
                  f"| {math.log(tr) / math.log(objs):.2f} | {dr:.2f} | {math.log(dr) / math.log(objs):.2f} |")
    print()
    print("Details per run (seconds unless noted). Mark = job log from `started` to `marked:` (loading the reference "
          "graph from the database and planning); sweep = from `marked:` to `finished` (per batch of 500: re-check "
          "and flag `deleting`, delete the objects, delete the rows). CPU: of the `berth gc` process, of the running "
          "server and of Garage during the GC run.")
    print()
    print("| storage | artifacts | delete s (req/s) | dry run: mark s / CPU s / RSS MiB | GC: mark s / sweep s "
          "| GC CPU s: gc / server / Garage | second GC s (deleted) | verify s (live / deleted checked) | GC job log KiB "
          "| storage objects before → after | server log lines warn/error | compilers running (GC start/end) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        d, g, g2 = r["dry"], r["gc"], r["gc2"]
        dp, gp = d.get("phases", {}), g.get("phases", {})
        gt = g["time"]
        print(f"| {r['storage']} | {r['artifacts']:,} | {fmt_s(r['delete']['seconds'])} "
              f"({r['delete']['deleted'] / max(r['delete']['seconds'], 1e-9):.0f}) "
              f"| {dp.get('mark_s', float('nan')):.2f} / {d['time']['user_s'] + d['time']['sys_s']:.1f} / "
              f"{d['time']['maxrss_mib']:.0f} "
              f"| {gp.get('mark_s', float('nan')):.2f} / {fmt_s(gp.get('sweep_s', float('nan')))} "
              f"| {gt['user_s'] + gt['sys_s']:.1f} / {gt.get('server_cpu_s', 0):.1f} / {gt.get('garage_cpu_s', 0):.1f} "
              f"| {fmt_s(g2['time']['wall_s'])} ({g2['report']['blobs'] + g2['report']['manifests']}) "
              f"| {fmt_s(r['verify']['seconds'])} ({r['verify']['live_checked']:,} / {r['verify']['deleted_checked']}) "
              f"| {gp.get('log_bytes', 0) / 1024:,.0f} | {r.get('storage_objects_after', '?')} "
              f"| {r.get('server_log_problems', '?')} | {r.get('compilers', '?')} |")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--base", required=True)
        p.add_argument("--state", required=True)
        p.add_argument("--user", default="admin")
        p.add_argument("--password", default="Harbor12345")
        p.add_argument("--threads", type=int, default=int(os.environ.get("THREADS", 8)))
        p.add_argument("--keep-every", type=int, default=10)
        p.add_argument("--seed", type=int, default=42)

    p = sub.add_parser("seed")
    common(p)
    p.add_argument("--artifacts", type=int, required=True)
    p.add_argument("--repos", type=int, default=100)
    p.add_argument("--project", default="library")
    p = sub.add_parser("delete")
    common(p)
    p = sub.add_parser("verify")
    common(p)
    p.add_argument("--deleted-sample", type=int, default=200)
    p.add_argument("--live-only", action="store_true")
    p = sub.add_parser("dbstats")
    p.add_argument("--db", required=True)
    p.add_argument("--job", type=int, action="append", help="also the phases and log size of this GC job")
    p = sub.add_parser("timed")
    p.add_argument("out")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p = sub.add_parser("report")
    p.add_argument("results")
    a = ap.parse_args()
    try:
        {"seed": cmd_seed, "delete": cmd_delete, "verify": cmd_verify, "dbstats": cmd_dbstats,
         "timed": cmd_timed, "report": cmd_report}[a.cmd](a)
    except Failure as e:
        log(f"FAILED: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()

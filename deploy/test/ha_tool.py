#!/usr/bin/env python3
"""Helpers of deploy/test/ha.sh (standard library only). Replica logs are berth's JSON logs
(BERTH_LOG__FORMAT=json, BERTH_LOG__LEVEL=info,tower_http=debug): one "started processing
request" line (debug) and one "finished processing request" line (info) per request, both
carrying the request's span (method, path, request_id).

    ha_tool.py mkbig OUT --bytes N [--tag T]
        OCI layout with one uncompressed tar layer of N random bytes (fast: ~5 s for 512 MiB).
    ha_tool.py which --logs R1 R2 R3 --ids FILE
        Which replica served each request id (x-request-id); fails unless every id was served
        by exactly one replica; prints the count per replica.
    ha_tool.py uploads --logs R1 R2 R3 --repo NAME [--since EPOCH]
        Replicas that served the requests (POST/PATCH/PUT) of each blob upload of NAME; fails
        unless at least one upload session was served by more than one replica.
    ha_tool.py victim --logs R1 R2 R3 --ports P1 P2 P3 --path-contains S --min-bytes N
                      [--offsets FILE] [--max-wait S] [--timeout S]
        Waits for a PATCH whose path contains S to start on some replica, then until that
        replica's TCP connections received N more bytes (or --max-wait), checks that the PATCH
        is still running and prints "INDEX UPLOAD_ID REQUEST_ID BYTES SECONDS".
    ha_tool.py finished --log R --request-id ID      exit 0 if that request finished
    ha_tool.py probe --base URL --cacert CA --creds U:P --repo NAME --tag T --out FILE
                     --stop FILE [--threads N]
        Requests in a loop on the three surfaces (OCI manifest GET, REST users/current, token
        GET) until FILE exists; one JSON line per request.
    ha_tool.py direct --base http://127.0.0.1:PORT --creds U:P --repo NAME --tag T [--max-seconds S]
        One request per surface straight to a replica while the database is down: each must be
        a 503 in that surface's JSON error format within S seconds.
    ha_tool.py outage --probe FILE --marks FILE [--hang S]
        Judges the probe log against the marks (lines "NAME EPOCH"): only 200 or a 503 in the
        surface's JSON error format, nothing slower than --hang, recovery after each "up" mark.
        Prints a report; exit 1 on a violation.
    ha_tool.py audit --base URL --cacert CA --creds U:P --expect FILE [--report FILE]
        Fetches every audit row and checks the expectations (lines "OP USER RESOURCE COUNT
        [DETAIL]", COUNT = N or MIN-MAX); rows with success=false are errors unless expected.
    ha_tool.py logs FILES... [--since EPOCH] [--grep S] [--tail N]
        Compact view of replica logs (time, replica, level, message, method, path, status).
"""

import argparse
import base64
import collections
import datetime
import hashlib
import http.client
import json
import os
import random
import re
import ssl
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse

# ----------------------------------------------------------------------------- logs


def parse_ts(s):
    # 2026-11-22T11:03:15.335943Z
    s = s.rstrip("Z")
    if "." in s:
        head, frac = s.split(".", 1)
        s = head + "." + frac[:6]
        fmt = "%Y-%m-%dT%H:%M:%S.%f"
    else:
        fmt = "%Y-%m-%dT%H:%M:%S"
    return datetime.datetime.strptime(s, fmt).replace(tzinfo=datetime.timezone.utc).timestamp()


def read_log(path, offset=0):
    """Yields JSON records of a replica log from byte offset."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            for raw in f:
                line = raw.decode(errors="replace").strip()
                if not line.startswith("{"):
                    continue
                try:
                    j = json.loads(line)
                except ValueError:
                    continue
                yield j
    except FileNotFoundError:
        return


def span(j):
    return j.get("span") or {}


def requests_of(path, offset=0):
    """request_id -> dict(method, path, start, end, status) for one log."""
    reqs = {}
    for j in read_log(path, offset):
        s = span(j)
        rid = s.get("request_id")
        if not rid:
            continue
        r = reqs.setdefault(rid, {"method": s.get("method"), "path": s.get("path"), "start": None, "end": None, "status": None})
        msg = j.get("message")
        if msg == "started processing request":
            r["start"] = parse_ts(j["timestamp"])
        elif msg == "finished processing request":
            r["end"] = parse_ts(j["timestamp"])
            r["status"] = j.get("status")
    return reqs


def cmd_which(a):
    ids = [l.strip() for l in open(a.ids) if l.strip()]
    where = collections.defaultdict(list)
    for i, log in enumerate(a.logs, 1):
        for rid in requests_of(log):
            where[rid].append(i)
    counts = collections.Counter()
    bad = []
    for rid in ids:
        w = where.get(rid, [])
        if len(w) != 1:
            bad.append(f"{rid}: served by {w or 'no replica'}")
        else:
            counts[w[0]] += 1
    print("requests per replica: " + ", ".join(f"r{i}={counts[i]}" for i in range(1, len(a.logs) + 1)))
    if bad:
        print("ERROR: request ids not found exactly once in the replica logs:\n  " + "\n  ".join(bad))
        return 1
    missing = [i for i in range(1, len(a.logs) + 1) if counts[i] == 0]
    if missing:
        print(f"ERROR: replicas {missing} served none of the {len(ids)} requests")
        return 1
    return 0


UPLOAD_RE = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<id>[^/]*)$")


def cmd_uploads(a):
    sessions = collections.defaultdict(list)  # id -> [(start, replica, method, status)]
    posts = collections.Counter()
    for i, log in enumerate(a.logs, 1):
        for rid, r in requests_of(log).items():
            m = UPLOAD_RE.match(r["path"] or "")
            if not m or m.group("name") != a.repo:
                continue
            if (r["start"] or r["end"] or 0) < a.since:
                continue
            if m.group("id") == "":
                posts[i] += 1
            else:
                sessions[m.group("id")].append((r["start"] or 0, i, r["method"], r["status"]))
    spread = 0
    for uid, reqs in sorted(sessions.items(), key=lambda kv: min(x[0] for x in kv[1])):
        reqs.sort()
        replicas = sorted({x[1] for x in reqs})
        if len(replicas) > 1:
            spread += 1
        print(f"  upload {uid[:8]}: " + ", ".join(f"{m} r{i} {s}" for _, i, m, s in reqs))
    print(f"  upload starts (POST) per replica: " + ", ".join(f"r{i}={posts[i]}" for i in range(1, len(a.logs) + 1)))
    print(f"  {spread} of {len(sessions)} upload sessions were served by more than one replica")
    if not sessions:
        print(f"ERROR: no upload session of {a.repo} in the replica logs")
        return 1
    if spread == 0:
        print("ERROR: every upload session stayed on one replica; round robin did not spread them")
        return 1
    return 0


def tcp_bytes_received(port):
    """Bytes received by the sockets of a local listening port (established connections)."""
    out = subprocess.run(
        ["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
        capture_output=True, text=True, check=False,
    ).stdout
    return sum(int(x) for x in re.findall(r"bytes_received:(\d+)", out))


def cmd_victim(a):
    offsets = [0] * len(a.logs)
    if a.offsets:
        offsets = [int(x) for x in open(a.offsets).read().split()]
    deadline = time.time() + a.timeout
    found = None
    while time.time() < deadline and not found:
        if a.while_pid and not os.path.exists(f"/proc/{a.while_pid}"):
            print(f"ERROR: process {a.while_pid} (the client) exited before its PATCH started", file=sys.stderr)
            return 1
        for i, log in enumerate(a.logs):
            for rid, r in requests_of(log, offsets[i]).items():
                if r["method"] == "PATCH" and a.path_contains in (r["path"] or "") and r["start"] and not r["end"]:
                    found = (i, rid, r)
                    break
            if found:
                break
        if not found:
            time.sleep(0.05)
    if not found:
        print("ERROR: no PATCH started within the timeout", file=sys.stderr)
        return 1
    i, rid, r = found
    port = a.ports[i]
    b0 = tcp_bytes_received(port)
    t0 = time.time()
    while time.time() - t0 < a.max_wait:
        if tcp_bytes_received(port) - b0 >= a.min_bytes:
            break
        time.sleep(0.02)
    got = tcp_bytes_received(port) - b0
    if requests_of(a.logs[i], offsets[i]).get(rid, {}).get("end"):
        print("ERROR: the PATCH finished before the kill point", file=sys.stderr)
        return 1
    uid = (r["path"] or "").rsplit("/", 1)[-1]
    print(i + 1, uid, rid, got, f"{time.time() - t0:.2f}")
    return 0


def cmd_finished(a):
    r = requests_of(a.log).get(a.request_id)
    return 0 if r and r["end"] else 1


def cmd_logs(a):
    rows = []
    for f in a.files:
        name = os.path.basename(os.path.dirname(f)) if os.path.basename(f) == "berth.log" else os.path.basename(f)
        for j in read_log(f):
            try:
                t = parse_ts(j["timestamp"])
            except (KeyError, ValueError):
                continue
            if t < a.since:
                continue
            if j.get("message") == "started processing request" and not a.all:
                continue
            s = span(j)
            extra = {k: v for k, v in j.items() if k not in ("timestamp", "level", "message", "span", "spans")}
            line = f"{j['timestamp'][11:23]} {name} {j.get('level', ''):5} {j.get('message', '')} {s.get('method', '')} {s.get('path', '')[:90]} {json.dumps(extra) if extra else ''}"
            if a.grep and a.grep not in line:
                continue
            rows.append((t, line))
    rows.sort()
    for _, line in rows[-a.tail:] if a.tail else rows:
        print(line)
    return 0


# ----------------------------------------------------------------------------- images


def cmd_mkbig(a):
    blobs = os.path.join(a.out, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    with open(os.path.join(a.out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    ti = tarfile.TarInfo("berth-ha/big.bin")
    ti.size, ti.mode, ti.mtime = a.bytes, 0o644, 1704067200
    header = ti.tobuf(format=tarfile.PAX_FORMAT)
    trailer = b"\0" * ((-a.bytes) % 512) + b"\0" * 1024
    sha = hashlib.sha256()
    tmp = os.path.join(blobs, ".layer.tmp")
    rng = random.Random(os.urandom(16))
    total = 0
    with open(tmp, "wb") as f:
        for chunk in (header,):
            sha.update(chunk)
            f.write(chunk)
            total += len(chunk)
        left = a.bytes
        while left:
            n = min(4 << 20, left)
            b = rng.randbytes(n)
            sha.update(b)
            f.write(b)
            total += n
            left -= n
        sha.update(trailer)
        f.write(trailer)
        total += len(trailer)
    digest = "sha256:" + sha.hexdigest()
    os.replace(tmp, os.path.join(blobs, sha.hexdigest()))

    def put(obj, media_type):
        data = json.dumps(obj, separators=(",", ":")).encode()
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, d), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": "sha256:" + d, "size": len(data)}

    config = put({
        "created": "2024-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": [digest]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "ha_tool.py mkbig"}],
    }, "application/vnd.oci.image.config.v1+json")
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": total}
    manifest = put({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config, "layers": [layer]}, "application/vnd.oci.image.manifest.v1+json")
    entry = dict(manifest)
    entry["annotations"] = {"org.opencontainers.image.ref.name": a.tag}
    with open(os.path.join(a.out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [entry]}, f)
    print(json.dumps({"digest": manifest["digest"], "layer": digest, "layer_size": total, "config": config["digest"]}))
    return 0


# ----------------------------------------------------------------------------- probe


ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])


def targets_of(repo, tag):
    scope = urllib.parse.quote(f"repository:{repo}:pull")
    return [
        ("oci", f"/v2/{repo}/manifests/{tag}", {"Accept": ACCEPT}),
        ("rest", "/api/v2.0/users/current", {}),
        ("token", f"/service/token?service=harbor-registry&scope={scope}", {}),
    ]


def connect(base, cacert, timeout):
    u = urllib.parse.urlsplit(base)
    if u.scheme == "https":
        return http.client.HTTPSConnection(u.hostname, u.port, context=ssl.create_default_context(cafile=cacert), timeout=timeout)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)


def one_request(conn, kind, path, hdrs, creds):
    """Returns (record, connection still usable)."""
    h = dict(hdrs)
    h["Authorization"] = "Basic " + base64.b64encode(creds.encode()).decode()
    t0 = time.time()
    rec = {"kind": kind, "t0": t0}
    usable = True
    try:
        conn.request("GET", path, headers=h)
        r = conn.getresponse()
        body = r.read()
        rec.update(status=r.status, ct=r.getheader("content-type") or "", rid=r.getheader("x-request-id") or "")
        if r.status != 200:
            rec["body"] = body[:300].decode(errors="replace")
            try:
                rec["code"] = json.loads(body)["errors"][0]["code"]
            except (ValueError, KeyError, IndexError, TypeError):
                rec["code"] = None
        elif kind == "oci":
            rec["digest"] = "sha256:" + hashlib.sha256(body).hexdigest()
        if (r.getheader("connection") or "").lower() == "close":
            usable = False
    except Exception as e:  # noqa: BLE001 - every failure is recorded
        rec.update(status=0, err=repr(e))
        usable = False
    rec["t1"] = time.time()
    return rec, usable


def cmd_probe(a):
    targets = targets_of(a.repo, a.tag)
    out = open(a.out, "w")
    lock = threading.Lock()

    def worker(k):
        conn = None
        n = k
        while not os.path.exists(a.stop):
            kind, path, hdrs = targets[n % len(targets)]
            n += 1
            if conn is None:
                conn = connect(a.base, a.cacert, a.timeout)
            rec, usable = one_request(conn, kind, path, hdrs, a.creds)
            if not usable:
                conn.close()
                conn = None
            with lock:
                out.write(json.dumps(rec) + "\n")
                out.flush()
            time.sleep(a.pause)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 0


def cmd_direct(a):
    """One request per surface straight to a replica (no load balancer): each must be a 503 in
    that surface's JSON error format within --max-seconds."""
    bad = 0
    for kind, path, hdrs in targets_of(a.repo, a.tag):
        conn = connect(a.base, None, 60)
        rec, _ = one_request(conn, kind, path, hdrs, a.creds)
        conn.close()
        lat = rec["t1"] - rec["t0"]
        ok = (rec["status"] == 503 and rec.get("ct", "").startswith("application/json")
              and rec.get("code") == EXPECTED_503_CODE[kind] and lat <= a.max_seconds)
        bad += not ok
        print(f"{'ok ' if ok else 'BAD'} {kind:5} {rec['status']} in {lat:.2f}s: {rec.get('body', rec.get('err', ''))[:160]}")
    return 1 if bad else 0


LB_MESSAGE = "no berth replica could answer"  # deploy/nginx/berth.conf's @…_unavailable bodies
EXPECTED_503_CODE = {"oci": "UNAVAILABLE", "rest": "SERVICE_UNAVAILABLE", "token": "UNAVAILABLE"}


def cmd_outage(a):
    recs = [json.loads(l) for l in open(a.probe) if l.strip()]
    marks = []
    for line in open(a.marks):
        if line.strip():
            name, t = line.split()
            marks.append((name, float(t)))
    m = dict(marks)
    if not recs:
        print("ERROR: the probe recorded nothing")
        return 1
    t_start = min(r["t0"] for r in recs)
    rel = lambda t: t - t_start  # noqa: E731
    errors = []
    by_status = collections.Counter()
    for r in recs:
        r["lat"] = r["t1"] - r["t0"]
        by_status[(r["kind"], r["status"])] += 1
        where = f"{r['kind']} request at +{rel(r['t0']):.2f}s ({r['lat']:.2f}s)"
        if r["lat"] > a.hang:
            errors.append(f"{where}: took longer than {a.hang}s")
        if r["status"] == 200:
            continue
        if r["status"] != 503:
            errors.append(f"{where}: status {r['status']} {r.get('err', '')} {r.get('body', '')[:200]}")
            continue
        if not r.get("ct", "").startswith("application/json") or r.get("code") != EXPECTED_503_CODE[r["kind"]]:
            errors.append(f"{where}: 503 not in the surface's error format: {r.get('ct')} {r.get('body', '')[:200]}")
    # 503s are only acceptable while the database is (or just was) away.
    windows = []
    for name, t in marks:
        if name.endswith("_down"):
            up = m.get(name[: -len("_down")] + "_up")
            if up:
                windows.append((name[: -len("_down")], t, up))
    report = []
    report.append(f"probe: {len(recs)} requests, {a.threads_hint} threads; " +
                  ", ".join(f"{k} {s}: {n}" for (k, s), n in sorted(by_status.items())))
    for name, down, up in windows:
        # This window's aftermath ends where the next outage begins.
        nxt = min((d for _, d, _ in windows if d > up), default=float("inf"))
        during = [r for r in recs if r["t1"] >= down and r["t0"] <= up]
        after = [r for r in recs if up <= r["t0"] < nxt]
        first_ok = min((r["t1"] for r in after if r["status"] == 200), default=None)
        # A request that began after the database was back and still failed.
        late_fail = [r for r in after if r["status"] != 200]
        slowest = max((r["lat"] for r in recs if r["t1"] >= down and r["t0"] < min(nxt, up + 30)), default=0)
        n503 = sum(1 for r in during if r["status"] == 503)
        lb503 = sum(1 for r in during if r["status"] == 503 and LB_MESSAGE in r.get("body", ""))
        line = (f"{name}: database down {up - down:.1f}s; {len(during)} requests overlapped it, {n503} got 503 "
                f"({n503 - lb503} from a replica, {lb503} from nginx with no replica left to try); "
                f"slowest request {slowest:.2f}s; ")
        if first_ok is None:
            errors.append(f"{name}: no successful request after the database came back")
            line += "NO RECOVERY"
        else:
            line += f"first success {first_ok - up:.2f}s after the database was back"
            if late_fail:
                last = max(r["t1"] for r in late_fail)
                line += f", {len(late_fail)} requests started after it still failed (last ended {last - up:.2f}s after)"
            else:
                line += ", every request started after it succeeded"
        report.append(line)
        print(f"RECOVERY {name} {0 if first_ok is None else first_ok - up:.2f} "
              f"{0 if not late_fail else max(r['t1'] for r in late_fail) - up:.2f}")
    # Failures outside every window (plus a grace for requests in flight) are errors.
    for r in recs:
        if r["status"] == 200:
            continue
        ok = any(r["t1"] >= down - 1 and r["t0"] <= up + a.grace for _, down, up in windows)
        if not ok:
            errors.append(f"{r['kind']} request at +{rel(r['t0']):.2f}s failed outside the outage windows: {r['status']} {r.get('body', '')[:150]}")
    for l in report:
        print(l)
    if errors:
        print("ERRORS:")
        for e in errors[:40]:
            print("  " + e)
        return 1
    return 0


# ----------------------------------------------------------------------------- audit


def cmd_audit(a):
    u = urllib.parse.urlsplit(a.base)
    ctx = ssl.create_default_context(cafile=a.cacert)
    auth = "Basic " + base64.b64encode(a.creds.encode()).decode()
    rows = []
    page = 1
    while True:
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=30)
        conn.request("GET", f"/api/v2.0/audit-logs?page={page}&page_size=100", headers={"Authorization": auth})
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            print(f"ERROR: audit-logs page {page}: {r.status} {body[:300]!r}")
            return 1
        items = json.loads(body)
        rows.extend(items)
        if len(items) < 100:
            break
        page += 1
    if a.report:
        with open(a.report, "w") as f:
            json.dump(rows, f, indent=1)
    errors = []
    lines = []
    expected_failed = set()
    for line in open(a.expect):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        op, user, resource, count = parts[:4]
        detail = " ".join(parts[4:]) or None
        lo, _, hi = count.partition("-")
        lo, hi = int(lo), int(hi or lo)
        got = [x for x in rows if x["operation"] == op and x["username"] == user and x["resource"] == resource
               and (detail is None or x["detail"] == detail)]
        if op == "login" and detail and detail.startswith("failed"):
            expected_failed.add((user,))
        n = len(got)
        ok = lo <= n <= hi
        want = f"{lo}" if lo == hi else f"{lo}..{hi}"
        lines.append(f"  {'ok ' if ok else 'BAD'} {op:6} {user:10} {resource:42} {('[' + detail + ']') if detail else '':16} got {n}, want {want}")
        if not ok:
            errors.append(f"{op} {user} {resource} {detail or ''}: {n} rows, expected {want}")
            for x in got:
                errors.append(f"    row {x['id']} {x['op_time']} {x['client_ip']} {x['detail']}")
    for x in rows:
        if not x["success"] and (x["username"],) not in expected_failed:
            errors.append(f"unexpected failed row: {x}")
    summary = collections.Counter((x["operation"], x["username"]) for x in rows)
    print(f"  {len(rows)} audit rows: " + ", ".join(f"{op}/{u}={n}" for (op, u), n in sorted(summary.items())))
    for l in lines:
        print(l)
    if errors:
        print("ERRORS:")
        for e in errors:
            print("  " + e)
        return 1
    return 0


# ----------------------------------------------------------------------------- main


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("mkbig")
    s.add_argument("out")
    s.add_argument("--bytes", type=int, required=True)
    s.add_argument("--tag", default="v1")

    s = sub.add_parser("which")
    s.add_argument("--logs", nargs="+", required=True)
    s.add_argument("--ids", required=True)

    s = sub.add_parser("uploads")
    s.add_argument("--logs", nargs="+", required=True)
    s.add_argument("--repo", required=True)
    s.add_argument("--since", type=float, default=0)

    s = sub.add_parser("victim")
    s.add_argument("--logs", nargs="+", required=True)
    s.add_argument("--ports", nargs="+", required=True)
    s.add_argument("--offsets")
    s.add_argument("--path-contains", required=True)
    s.add_argument("--min-bytes", type=int, required=True)
    s.add_argument("--max-wait", type=float, default=4)
    s.add_argument("--timeout", type=float, default=90)
    s.add_argument("--while-pid", type=int, help="give up when this process exits")

    s = sub.add_parser("finished")
    s.add_argument("--log", required=True)
    s.add_argument("--request-id", required=True)

    s = sub.add_parser("probe")
    s.add_argument("--base", required=True)
    s.add_argument("--cacert", required=True)
    s.add_argument("--creds", required=True)
    s.add_argument("--repo", required=True)
    s.add_argument("--tag", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--stop", required=True)
    s.add_argument("--threads", type=int, default=4)
    s.add_argument("--pause", type=float, default=0.05)
    s.add_argument("--timeout", type=float, default=60)

    s = sub.add_parser("direct")
    s.add_argument("--base", required=True)
    s.add_argument("--creds", required=True)
    s.add_argument("--repo", required=True)
    s.add_argument("--tag", required=True)
    s.add_argument("--max-seconds", type=float, default=8)

    s = sub.add_parser("outage")
    s.add_argument("--probe", required=True)
    s.add_argument("--marks", required=True)
    s.add_argument("--hang", type=float, default=20)
    s.add_argument("--grace", type=float, default=10)
    s.add_argument("--threads-hint", default="?")

    s = sub.add_parser("audit")
    s.add_argument("--base", required=True)
    s.add_argument("--cacert", required=True)
    s.add_argument("--creds", required=True)
    s.add_argument("--expect", required=True)
    s.add_argument("--report")

    s = sub.add_parser("logs")
    s.add_argument("files", nargs="+")
    s.add_argument("--since", type=float, default=0)
    s.add_argument("--grep")
    s.add_argument("--tail", type=int, default=0)
    s.add_argument("--all", action="store_true", help="also the 'started processing request' lines")

    a = p.parse_args()
    return globals()["cmd_" + a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())

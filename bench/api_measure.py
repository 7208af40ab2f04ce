#!/usr/bin/env python3
"""Latency of berth's REST list endpoints, for bench/api.sh.

    api_measure.py measure --base http://127.0.0.1:PORT --db sqlite --workdir W
    api_measure.py report W

measure: for each endpoint, one checked request (status 200, a JSON body that is not empty; a
list endpoint must return a full page, since every page asked for exists in the data set), then
WARMUP untimed requests, then REQUESTS timed ones, one after the other on one keep-alive
connection (http.client), each timed with time.perf_counter from sending the request to having
read the whole body. An endpoint stops early after MAX_SECONDS of timed requests (then it has
fewer samples, shown as n). Endpoints that do not answer 200 are recorded as missing or broken
and skipped. Writes W/raw.tsv lines (db, endpoint, key, value) and W/samples/DB-ENDPOINT.txt
(one latency in ms per line, in order).

report: prints the Markdown results (W/header.md first, if present): per endpoint and database
n, p50, p99 (nearest rank), max, the X-Total-Count the server reported, and PASS/FAIL against
the target p99 < TARGET_MS; then the seeding table. Exit status 0 whatever the targets say.
"""

import argparse
import base64
import http.client
import json
import math
import os
import sys
import time
from collections import defaultdict
from urllib.parse import urlencode, urlparse

TARGET_MS = 50.0

# (key, label, path, expected: "page" = a JSON array of page_size items, "object" = a JSON
# object with at least one non-empty list, e.g. search's {"project": [...], "repository": [...]})
ENDPOINTS = [
    ("projects", "list projects, page 1", "/api/v2.0/projects?page=1&page_size=15", "page"),
    ("project_repos", "list repositories of `big` (10k), page 1",
     "/api/v2.0/projects/big/repositories?page=1&page_size=15", "page"),
    ("all_repos", "list all repositories, page 1", "/api/v2.0/repositories?page=1&page_size=15", "page"),
    ("artifacts_p1", "list artifacts with tags (100k), page 1",
     "/api/v2.0/projects/big/repositories/repo-00000/artifacts?with_tag=true&page=1&page_size=15", "page"),
    ("artifacts_deep", "list artifacts with tags (100k), page 6000",
     "/api/v2.0/projects/big/repositories/repo-00000/artifacts?with_tag=true&page=6000&page_size=15", "page"),
    ("search", "search `repo-0999`", "/api/v2.0/search?q=repo-0999", "object"),
    ("audit_p1", "audit log (1M), page 1", "/api/v2.0/audit-logs?page=1&page_size=15", "page"),
    ("audit_deep", "audit log (1M), page 1000", "/api/v2.0/audit-logs?page=1000&page_size=15", "page"),
    ("audit_pull", "audit log (1M), `q=operation=pull`, page 1",
     "/api/v2.0/audit-logs?q=operation%3Dpull&page=1&page_size=15", "page"),
    # Portal pages, server-rendered (SsrMode::Async: the whole HTML once every resource has
    # resolved), with the session cookie of a portal sign-in instead of Basic auth. The
    # expectation "html:MARKER" wants a 200 text/html answer containing MARKER and a full page
    # of PAGE_SIZE table rows after it.
    ("portal_projects", "portal: projects page", "/harbor/projects", "html:project-table"),
    ("portal_repos", "portal: repositories of `big` (10k)", "/harbor/projects/big/repositories",
     "html:repo-table"),
    ("portal_artifacts", "portal: artifacts of `big/repo-00000` (100k)",
     "/harbor/projects/big/repositories/repo-00000", "html:artifact-table"),
    ("portal_logs", "portal: audit log (1M)", "/harbor/logs", "html:log-table"),
]
PAGE_SIZE = 15
COMPILERS = {"rustc", "cargo", "cc1", "cc1plus", "ld", "ld.lld", "mold"}


def compilers():
    """How many compiler/linker processes run on the machine now (they share our CPUs)."""
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    n += f.read().strip() in COMPILERS
            except OSError:
                pass
    return n


def wait_idle(limit, what):
    """Waits up to `limit` seconds until no compiler runs."""
    deadline = time.monotonic() + limit
    while limit > 0 and compilers() and time.monotonic() < deadline:
        print(f"  {what}: {compilers()} compiler processes running; waiting", file=sys.stderr)
        time.sleep(5)


class Client:
    def __init__(self, base, user, password):
        u = urlparse(base)
        self.host, self.port = u.hostname, u.port or 80
        if self.host not in ("127.0.0.1", "localhost"):
            sys.exit("api_measure: only 127.0.0.1 may be measured")
        self.headers = {
            "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
            "Accept": "application/json",
        }
        self.conn = None
        self.reconnects = 0

    def sign_in(self, user, password):
        """Signs in the way the portal's JavaScript-free form does and keeps the session cookie
        (then used instead of Basic auth)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        body = urlencode({"username": user, "password": password, "redirect_url": "/harbor/projects"})
        conn.request("POST", "/portal/fn/login", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin"})
        r = conn.getresponse()
        r.read()
        conn.close()
        cookies = [c.split(";", 1)[0] for c in r.headers.get_all("Set-Cookie") or []]
        if r.status not in (200, 302, 303) or not cookies:
            raise RuntimeError(f"portal sign-in: HTTP {r.status}, cookies {cookies}")
        self.headers = {"Cookie": "; ".join(cookies), "Accept": "text/html"}

    def get(self, path):
        """(status, headers, body bytes, seconds)"""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                self.conn.connect()
                self.reconnects += 1
            try:
                t0 = time.perf_counter()
                self.conn.request("GET", path, headers=self.headers)
                r = self.conn.getresponse()
                body = r.read()
                dt = time.perf_counter() - t0
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            if r.will_close:
                self.conn.close()
                self.conn = None
            return r.status, r.headers, body, dt
        raise RuntimeError("unreachable")


def check(status, headers, body, expect):
    """None if the answer is usable, else why not."""
    if status == 404:
        return "missing (404)"
    if status != 200:
        return f"HTTP {status}: {body[:200].decode(errors='replace')}"
    if expect.startswith("html:"):
        marker = expect[5:]
        if not (headers.get("Content-Type") or "").startswith("text/html"):
            return f"expected text/html, got {headers.get('Content-Type')}"
        text = body.decode(errors="replace")
        at = text.find(f'data-testid="{marker}"')
        if at < 0:
            return f"no {marker} in the page: {text[:300]!r}"
        rows = text[at:].count("<tr") - 1  # less the header row
        if rows < PAGE_SIZE:
            return f"expected {PAGE_SIZE} rows in {marker}, found {rows}"
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return f"body is not JSON: {body[:200]!r}"
    if expect == "page":
        if not isinstance(doc, list):
            return f"expected a JSON array, got {type(doc).__name__}"
        if len(doc) != PAGE_SIZE:
            return f"expected a full page of {PAGE_SIZE} items, got {len(doc)}"
    elif not isinstance(doc, dict) or not any(isinstance(v, list) and v for v in doc.values()):
        return f"expected a JSON object with a non-empty list of hits, got {body[:200]!r}"
    return None


def measure(a):
    api = Client(a.base, a.user, a.password)
    portal = Client(a.base, a.user, a.password)
    os.makedirs(f"{a.workdir}/samples", exist_ok=True)
    raw = open(f"{a.workdir}/raw.tsv", "a")

    def rec(ep, k, v):
        raw.write(f"{a.db}\t{ep}\t{k}\t{v}\n")
        raw.flush()

    only = set(a.only.split(",")) if a.only else None
    for key, label, path, expect in ENDPOINTS:
        if only and key not in only:
            continue
        if expect.startswith("html:"):
            if "Cookie" not in portal.headers:
                try:
                    portal.sign_in(a.user, a.password)
                except Exception as e:  # noqa: BLE001 - reported, not fatal
                    rec(key, "status", f"portal sign-in failed: {e}")
                    print(f"  {a.db} {key}: portal sign-in failed: {e}", file=sys.stderr)
                    continue
        c = portal if expect.startswith("html:") else api
        try:
            status, headers, body, dt = c.get(path)
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            rec(key, "status", f"request failed: {e}")
            print(f"  {a.db} {key}: request failed: {e}", file=sys.stderr)
            continue
        why = check(status, headers, body, expect)
        if why:
            rec(key, "status", why.replace("\t", " ").replace("\n", " "))
            print(f"  {a.db} {key}: {why[:300]}  ({path})", file=sys.stderr)
            continue
        rec(key, "status", "ok")
        rec(key, "first_ms", f"{dt * 1e3:.3f}")
        rec(key, "bytes", len(body))
        if headers.get("X-Total-Count") is not None:
            rec(key, "total", headers["X-Total-Count"])
        wait_idle(a.wait_idle, f"{a.db} {key}")
        for _ in range(a.warmup):
            c.get(path)
        busy_start = compilers()
        samples = []
        bad = 0
        start = time.perf_counter()
        while len(samples) < a.requests:
            status, _h, body, dt = c.get(path)
            if status != 200:
                bad += 1
            samples.append(dt * 1e3)
            if time.perf_counter() - start > a.max_seconds:
                break
        rec(key, "compilers", f"{busy_start}/{compilers()}")
        with open(f"{a.workdir}/samples/{a.db}-{key}.txt", "w") as f:
            f.write("".join(f"{s:.3f}\n" for s in samples))
        if bad:
            rec(key, "non200", bad)
        s = sorted(samples)
        print(f"  {a.db} {key}: n={len(s)} p50={pct(s, 50):.2f} ms p99={pct(s, 99):.2f} ms max={s[-1]:.2f} ms"
              + (f" ({bad} non-200)" if bad else ""), file=sys.stderr)
    rec("-", "reconnects", api.reconnects + portal.reconnects)
    raw.close()


def pct(sorted_samples, p):
    """Nearest-rank percentile."""
    n = len(sorted_samples)
    return sorted_samples[max(0, math.ceil(p / 100 * n) - 1)]


def report(a):
    w = a.workdir
    meta = defaultdict(dict)  # db -> key -> value  (endpoint "-")
    ep_meta = defaultdict(dict)  # (db, ep) -> key -> value
    if os.path.exists(f"{w}/raw.tsv"):
        for line in open(f"{w}/raw.tsv"):
            db, ep, k, v = line.rstrip("\n").split("\t", 3)
            if ep == "-":
                meta[db][k] = v
            else:
                ep_meta[(db, ep)][k] = v
    dbs = [d for d in ("sqlite", "postgres") if d in meta or any(k[0] == d for k in ep_meta)]
    out = []
    if os.path.exists(f"{w}/header.md"):
        out.append(open(f"{w}/header.md").read().rstrip("\n"))
        out.append("")
    out.append(f"### Latency (1 connection, sequential requests; target p99 < {TARGET_MS:.0f} ms)")
    out.append("")
    out.append("| endpoint | DB | n | p50 ms | p99 ms | max ms | X-Total-Count | compilers running | target | result |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    problems = []
    passed = judged = 0
    any_short = False
    for key, label, path, _e in ENDPOINTS:
        for db in dbs:
            m = ep_meta.get((db, key))
            if m is None:
                continue
            status = m.get("status", "not run")
            q = path.split("/api/v2.0", 1)[-1]
            name = f"{label}<br>`{q}`"
            if status != "ok":
                problems.append(f"- {db}: `GET {path}`: {status}")
                tag = "**MISSING**" if status.startswith("missing") else "**ERROR**"
                out.append(f"| {name} | {db} | | | | | | | p99 < {TARGET_MS:.0f} ms | {tag} |")
                continue
            s = sorted(float(x) for x in open(f"{w}/samples/{db}-{key}.txt"))
            p50, p99 = pct(s, 50), pct(s, 99)
            ok = p99 < TARGET_MS and "non200" not in m
            judged += 1
            passed += ok
            if "non200" in m:
                problems.append(f"- {db}: `GET {path}`: {m['non200']} timed requests did not answer 200")
            short = len(s) < 200
            any_short = any_short or short
            out.append(f"| {name} | {db} | {len(s)}{'*' if short else ''} | {p50:.2f} | {p99:.2f} | {s[-1]:.2f} | {m.get('total', '')} "
                       f"| {m.get('compilers', '')} | p99 < {TARGET_MS:.0f} ms | {'**PASS**' if ok else '**FAIL**'} |")
    out.append("")
    out.append("compilers running: compiler/linker processes (rustc, cargo, cc1, ld) on the machine when the "
               "timed requests of that row started/ended; they compete with client, server and database for "
               "the CPUs.")
    out.append("")
    if any_short:
        out.append("\\* fewer than 200 timed requests (REQUESTS below 200, or MAX_SECONDS reached first).")
        out.append("")
    out.append(f"{passed} of {judged} measured endpoint/database pairs meet the target"
               + (f"; {len(problems)} problem(s):" if problems else "."))
    out.extend(problems)
    out.append("")
    out.append("### Seeding")
    out.append("")
    out.append("| DB | seed (rows + commit) | finish (VACUUM + ANALYZE / WAL checkpoint) | total | database size "
               "| projects | repositories | artifacts | tags | audit rows | users | members |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for db in dbs:
        m = meta[db]
        if "seed_total_s" not in m:
            continue
        rows_s = float(m["seed_rows_s"]) + float(m["seed_commit_s"])
        size = m.get("db_bytes")
        size = f"{int(size) / 2**20:.0f} MiB" if size else ""
        out.append(f"| {db} | {rows_s:.1f} s | {float(m['seed_finish_s']):.1f} s | {float(m['seed_total_s']):.1f} s "
                   f"| {size} | {m.get('count_projects', '')} | {m.get('count_repositories', '')} "
                   f"| {m.get('count_artifacts', '')} | {m.get('count_tags', '')} | {m.get('count_audit_log', '')} "
                   f"| {m.get('count_users', '')} | {m.get('count_project_members', '')} |")
    out.append("")
    print("\n".join(out))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--base", required=True)
    m.add_argument("--db", required=True)
    m.add_argument("--workdir", required=True)
    m.add_argument("--user", default="admin")
    m.add_argument("--password", default="Harbor12345")
    m.add_argument("--requests", type=int, default=int(os.environ.get("REQUESTS", 500)))
    m.add_argument("--warmup", type=int, default=int(os.environ.get("WARMUP", 20)))
    m.add_argument("--max-seconds", type=float, default=float(os.environ.get("MAX_SECONDS", 60)))
    m.add_argument("--wait-idle", type=float, default=float(os.environ.get("WAIT_IDLE", 0)),
                   help="before each endpoint, wait up to this many seconds for no compiler to run")
    m.add_argument("--only", default=os.environ.get("ONLY", ""), help="comma-separated endpoint keys")
    r = sub.add_parser("report")
    r.add_argument("workdir")
    a = ap.parse_args()
    measure(a) if a.cmd == "measure" else report(a)


if __name__ == "__main__":
    main()

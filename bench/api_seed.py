#!/usr/bin/env python3
"""Seeds berth's database with the data set of bench/api.sh, directly (the server is stopped and
has created its schema already).

    api_seed.py sqlite:///abs/path/berth.db
    api_seed.py postgres://user@127.0.0.1:PORT/berth_bench --psql /usr/lib/postgresql/15/bin/psql

Data set (defaults; every count can be changed for smoke tests):
  - USERS users `user-01`… (password: the admin's, i.e. Harbor12345), not admins;
  - project `big` (public) with REPOS repositories `big/repo-00000`…; `big/repo-00000` holds
    ARTIFACTS artifacts (distinct sha256 digests, OCI image manifests, sizes, increasing
    pushed_at), each with one tag `v000001`…; every other `big/` repository holds 0 or 1
    artifact (odd numbers have one, tagged `latest`);
  - PROJECTS more projects `proj-000`… (every third public), each with 5 repositories
    `proj-NNN/app-K` of one tagged artifact; every project has its owner as project admin and
    1–3 other members;
  - AUDIT_ROWS audit rows over the last 90 days, ids in time order, a mix of pull (62 %), create
    (20 %), login (12 %), delete (4 %) and update (2 %) by ~30 principals (users, admin,
    robots) on those resources, 2 % failed;
  - blobs, artifact_blobs, repository_blobs stay empty (listing does not read them).

SQLite: python's sqlite3, one transaction, executemany. Postgres: one `psql` session fed on
stdin, one transaction of COPY … FROM STDIN (committed synchronously), sequences moved past
the new ids, then VACUUM and ANALYZE (what autovacuum does shortly after a bulk load). SQLite
gets no ANALYZE (the server never runs one) unless --sqlite-analyze is given.

Prints `key=value` lines on stdout: seconds for each phase and the row counts read back.
"""

import argparse
import hashlib
import os
import random
import subprocess
import sys
import time

MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
DAY_MS = 86_400_000


def sha(s):
    return "sha256:" + hashlib.sha256(s.encode()).hexdigest()


# ------------------------------------------------------------------ sinks


class SqliteSink:
    def __init__(self, url):
        import sqlite3

        # sqlite:///abs -> /abs ; sqlite://rel -> rel ; sqlite:rel -> rel
        path = url[len("sqlite://"):] if url.startswith("sqlite://") else url[len("sqlite:"):]
        path = path.split("?", 1)[0]
        if not os.path.exists(path):
            sys.exit(f"api_seed: {path} does not exist (start berth once to create the schema)")
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("PRAGMA cache_size = -262144")  # 256 MiB while seeding
        self.db.execute("BEGIN")

    def scalar(self, sql):
        return self.db.execute(sql).fetchone()[0]

    def copy(self, table, cols, rows):
        q = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        self.db.executemany(q, rows)

    def commit(self):
        self.db.execute("COMMIT")

    def finish(self, analyze):
        if analyze:
            self.db.execute("ANALYZE")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()


def copy_escape(v):
    if v is None:
        return "\\N"
    if isinstance(v, str):
        if "\\" in v or "\t" in v or "\n" in v or "\r" in v:
            v = v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        return v
    return str(v)


class PostgresSink:
    def __init__(self, url, psql):
        self.url = url
        self.psql = psql
        self.proc = subprocess.Popen(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, bufsize=1 << 20,
        )
        self.out = self.proc.stdin
        # synchronous_commit on (scripts/services.sh turns it off server-wide): a VACUUM right
        # after an asynchronous commit marks no page all-visible (the commit is not flushed, hint
        # bits cannot be set yet), and every index-only scan would then visit the heap.
        self.out.write("SET synchronous_commit = on;\nBEGIN;\n")

    def scalar(self, sql):
        r = subprocess.run([self.psql, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", self.url, "-c", sql],
                           check=True, capture_output=True, text=True)
        return r.stdout.strip()

    def copy(self, table, cols, rows):
        w = self.out.write
        w(f"COPY {table} ({', '.join(cols)}) FROM STDIN;\n")
        buf = []
        for r in rows:
            buf.append("\t".join(map(copy_escape, r)))
            if len(buf) >= 10_000:
                w("\n".join(buf) + "\n")
                buf.clear()
        if buf:
            w("\n".join(buf) + "\n")
        w("\\.\n")

    def commit(self):
        for t in ("users", "projects", "project_members", "repositories", "artifacts", "tags", "audit_log"):
            self.out.write(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}));\n")
        self.out.write("COMMIT;\n")
        self.out.close()
        if self.proc.wait() != 0:
            sys.exit("api_seed: psql failed")

    def finish(self, analyze):
        # VACUUM, then ANALYZE: what autovacuum does shortly after a bulk load. (On PostgreSQL 15
        # a database-wide `VACUUM ANALYZE` here left pg_class.relallvisible at 0.)
        subprocess.run([self.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url, "-c", "VACUUM", "-c", "ANALYZE"],
                       check=True)


# ------------------------------------------------------------------ data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--psql", default="psql")
    ap.add_argument("--repos", type=int, default=int(os.environ.get("REPOS", 10_000)))
    ap.add_argument("--artifacts", type=int, default=int(os.environ.get("ARTIFACTS", 100_000)))
    ap.add_argument("--projects", type=int, default=int(os.environ.get("PROJECTS", 200)))
    ap.add_argument("--audit-rows", type=int, default=int(os.environ.get("AUDIT_ROWS", 1_000_000)))
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--sqlite-analyze", action="store_true")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    t_start = time.perf_counter()

    if a.url.startswith("sqlite:"):
        sink = SqliteSink(a.url)
    elif a.url.startswith(("postgres://", "postgresql://")):
        sink = PostgresSink(a.url, a.psql)
    else:
        sys.exit(f"api_seed: unsupported database URL {a.url}")

    if int(sink.scalar("SELECT COUNT(*) FROM projects WHERE name = 'big'")) != 0:
        sys.exit("api_seed: project 'big' exists already: this database is seeded")
    admin_hash = sink.scalar("SELECT password_hash FROM users WHERE username = 'admin'")
    if not admin_hash:
        sys.exit("api_seed: no admin user (start berth once to create the schema and the admin)")
    nid = {t: int(sink.scalar(f"SELECT COALESCE(MAX(id), 0) FROM {t}")) + 1
           for t in ("users", "projects", "project_members", "repositories", "artifacts", "tags", "audit_log")}
    admin_id = int(sink.scalar("SELECT id FROM users WHERE username = 'admin'"))

    now = int(time.time() * 1000)
    t0 = now - 90 * DAY_MS  # the data set's history starts 90 days ago

    # users
    users = []  # (id, name)
    rows = []
    for i in range(1, a.users + 1):
        uid, name = nid["users"] + i - 1, f"user-{i:02d}"
        users.append((uid, name))
        created = t0 + rnd.randrange(0, DAY_MS)
        rows.append((uid, name, f"{name}@example.test", f"User {i}", "", admin_hash, 0, created, created, created, 0))
    sink.copy("users", ("id", "username", "email", "realname", "comment", "password_hash", "sysadmin",
                        "password_changed_at", "created_at", "updated_at", "deleted"), rows)
    owners = [(admin_id, "admin")] + users

    # projects: big, then proj-000…
    projects = []  # (id, name, public, owner_id)
    pid = nid["projects"]
    projects.append((pid, "big", 1, admin_id))
    for i in range(a.projects):
        projects.append((pid + 1 + i, f"proj-{i:03d}", 1 if i % 3 == 0 else 0, rnd.choice(owners)[0]))
    sink.copy("projects", ("id", "name", "public", "owner_id", "created_at", "updated_at"),
              ((p, n, pub, o, t0 + k * 60_000, t0 + k * 60_000) for k, (p, n, pub, o) in enumerate(projects)))

    # members: the owner as project admin, plus 1–3 other users
    rows = []
    mid = nid["project_members"]
    for p, _n, _pub, owner in projects:
        chosen = {owner}
        rows.append((mid, p, owner, 1, t0, t0))
        mid += 1
        for uid, _ in rnd.sample(users, min(len(users), rnd.randint(1, 3))):
            if uid in chosen:
                continue
            chosen.add(uid)
            rows.append((mid, p, uid, rnd.choice((2, 3, 4, 5)), t0, t0))
            mid += 1
    sink.copy("project_members", ("id", "project_id", "user_id", "role", "created_at", "updated_at"), rows)
    n_members = len(rows)

    # repositories
    repos = []  # (id, project_id, name)
    rid = nid["repositories"]
    big_id = projects[0][0]
    for i in range(a.repos):
        repos.append((rid, big_id, f"big/repo-{i:05d}"))
        rid += 1
    for p, n, _pub, _o in projects[1:]:
        for k in range(5):
            repos.append((rid, p, f"{n}/app-{k}"))
            rid += 1
    sink.copy("repositories", ("id", "project_id", "name", "description", "pull_count", "created_at", "updated_at"),
              ((r, p, n, "", rnd.randrange(0, 5000), t0 + k * 1000, now - rnd.randrange(0, 30 * DAY_MS))
               for k, (r, p, n) in enumerate(repos)))

    # artifacts and tags: big/repo-00000 gets ARTIFACTS, odd big/ repos and every proj- repo one
    arts = []  # (id, repository_id, repo name, digest, tag, pushed_at)
    aid = nid["artifacts"]
    step = max(1, (80 * DAY_MS) // max(1, a.artifacts))
    r0 = repos[0]
    for i in range(1, a.artifacts + 1):
        arts.append((aid, r0[0], r0[2], sha(f"{r0[2]}#{i}"), f"v{i:06d}", t0 + 5 * DAY_MS + i * step))
        aid += 1
    for r, _p, n in repos[1:]:
        if n.startswith("big/") and int(n[-5:]) % 2 == 0:
            continue
        arts.append((aid, r, n, sha(f"{n}#1"), "latest", t0 + rnd.randrange(0, 89 * DAY_MS)))
        aid += 1
    sink.copy("artifacts", ("id", "repository_id", "digest", "media_type", "artifact_type", "manifest_size", "size",
                            "subject", "annotations", "pushed_at", "pulled_at", "pull_count"),
              ((i, r, d, MEDIA_TYPE, "", 400 + (i % 1600), 10_000_000 + (i * 7919) % 900_000_000, None, "{}", t,
                t + (i % 1000) * 60_000 if i % 3 else 0, i % 3 * (i % 17))
               for i, r, _n, d, _tag, t in arts))
    tid = nid["tags"]
    sink.copy("tags", ("id", "repository_id", "artifact_id", "name", "pushed_at"),
              ((tid + k, r, i, tag, t) for k, (i, r, _n, _d, tag, t) in enumerate(arts)))

    # audit log
    t_audit = time.perf_counter()
    n = a.audit_rows
    principals = ["admin"] + [u for _, u in users] + [f"robot$proj-{i:03d}+ci" for i in range(min(8, a.projects))] + ["robot$big+ci"]
    weights = [3] + [1] * len(users) + [4] * min(8, a.projects) + [10]
    ops = ["pull", "create", "login", "delete", "update"]
    op_w = [62, 20, 12, 4, 2]
    proj_of_repo = {r: p for r, p, _n in repos}
    ops_col = rnd.choices(ops, op_w, k=n)
    who_col = rnd.choices(principals, weights, k=n)
    # Pulls and pushes concentrate on a few hot artifacts (the last ones of big/repo-00000 and the
    # proj- apps); the rest spread over everything.
    hot = arts[-200:] + arts[max(0, a.artifacts - 300):a.artifacts]
    art_col = [rnd.choice(hot) if rnd.random() < 0.7 else rnd.choice(arts) for _ in range(n)] if arts else []
    ip_col = [f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}" for _ in range(64)]
    span = now - t0 - 60_000

    def audit_rows():
        for k in range(n):
            op = ops_col[k]
            who = who_col[k]
            t = t0 + (k * span) // n + rnd.randrange(0, max(1, span // n))
            ok = 0 if rnd.random() < 0.02 else 1
            ip = ip_col[k % 64]
            if op == "login":
                yield (nid["audit_log"] + k, t, who, "user", who, op, ok, ip, None, "")
                continue
            _i, r, rn, d, tag, _t = art_col[k]
            p = proj_of_repo[r]
            if op == "pull":
                res = f"{rn}@{d}" if k % 5 == 0 else f"{rn}:{tag}"
                yield (nid["audit_log"] + k, t, who, "artifact", res, op, ok, ip, p, "")
            elif op == "create":
                kind = k % 10
                if kind < 7:
                    yield (nid["audit_log"] + k, t, who, "artifact", f"{rn}:{tag}", op, ok, ip, p, "")
                elif kind < 9:
                    yield (nid["audit_log"] + k, t, who, "tag", f"{rn}:{tag}", op, ok, ip, p, "")
                else:
                    yield (nid["audit_log"] + k, t, who, "member", f"{rn.split('/')[0]}:{rnd.choice(users)[1]}",
                           op, ok, ip, p, "role 2")
            elif op == "delete":
                if k % 4 == 0:
                    yield (nid["audit_log"] + k, t, who, "repository", rn, op, ok, ip, p, "")
                else:
                    yield (nid["audit_log"] + k, t, who, "tag", f"{rn}:{tag}", op, ok, ip, p, "")
            else:
                yield (nid["audit_log"] + k, t, who, "project", rn.split("/")[0], op, ok, ip, p,
                       "metadata.public")

    sink.copy("audit_log", ("id", "op_time", "username", "resource_type", "resource", "operation", "success",
                            "client_ip", "project_id", "detail"), audit_rows())
    t_commit = time.perf_counter()
    sink.commit()
    t_finish = time.perf_counter()
    sink.finish(a.sqlite_analyze)
    t_end = time.perf_counter()

    print(f"seed_rows_s={t_commit - t_start:.2f}")
    print(f"seed_audit_generate_s={t_commit - t_audit:.2f}")
    print(f"seed_commit_s={t_finish - t_commit:.2f}")
    print(f"seed_finish_s={t_end - t_finish:.2f}")
    print(f"seed_total_s={t_end - t_start:.2f}")
    print(f"members={n_members}")
    counts = {}
    for t in ("users", "projects", "repositories", "artifacts", "tags", "audit_log", "project_members"):
        counts[t] = sink.scalar(f"SELECT COUNT(*) FROM {t}") if isinstance(sink, PostgresSink) else None
    if isinstance(sink, SqliteSink):
        import sqlite3
        db = sqlite3.connect(sink.path)
        for t in counts:
            counts[t] = db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        db.close()
    for t, c in counts.items():
        print(f"count_{t}={c}")


if __name__ == "__main__":
    main()

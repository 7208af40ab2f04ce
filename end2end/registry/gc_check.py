#!/usr/bin/env python3
"""The load and the checks of gc-online.sh (python3 stdlib only).

    gc_check.py load   --registry HOST:PORT --images DIR --ledger FILE --gc-cmd CMD --tmp DIR
                       [--duration S] [--seed N] -- SKOPEO...
    gc_check.py verify --registry HOST:PORT --images DIR --ledger FILE --data DIR --tmp DIR
                       [--window S] [--final-gc-json FILE] -- SKOPEO...

SKOPEO is the skopeo command line (with its isolation: env, --policy, --registries-conf).
CMD runs `berth gc` with the server's working directory and environment.

load: for --duration seconds, two pushers (repositories library/gc1+gc2 and library/gc3+gc4)
push the layouts of --images under new tags and the rotating tag `latest` (re-pushes: shared
layers), delete tags, artifacts (by digest) and one repository each, and push single-use images
(mkimage.py) that they delete soon after, by tag or by digest. Just after such an image's blobs
become old enough to be swept (a window after its push), it is pushed again, or a new image
with one more 1 MiB layer on top of it, while a GC is started (the CLI) at the same moment: the
sweep may then fall between the client's check of the old blobs and its manifest PUT. A
puller pulls what the ledger says exists and checks digest and content; a GC loop runs GC every
0.5-1.5 s through REST (delete_untagged true/false) and the CLI (with and without
--delete-untagged), and checks that a second trigger while one is pending is refused. A push
that fails with a retryable error (MANIFEST_BLOB_UNKNOWN / BLOB_UNKNOWN / 503 UNAVAILABLE: a
push racing GC) is retried, 3 times at most; each retry must overlap a GC run. A pull of a tag
nobody changed meanwhile must succeed with the ledger's digest (one that raced a change of its
tag may fail). The ledger (what must exist, what must not) and the counters go to --ledger.

verify (after the loops stopped, > window, and a final GC): every ledger tag pulls with its
digest and content, deleted tags / artifacts / repositories answer 404, storage and database
agree (no unreferenced blob older than the window, no 'deleting' row, no row without its
file, every file hashes to its name and has the row's size), every GC run succeeded, none
overlapped another, and some bytes were freed. Prints a summary. Exit 1 on any failure.
"""

import argparse
import base64
import concurrent.futures
import datetime
import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

USER, PASSWORD = "admin", "Harbor12345"
INDEX_TYPES = {"application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json"}
MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json"])
# A push racing GC is told to retry (design of the GC): blob/manifest unknown at manifest PUT,
# or 503 UNAVAILABLE while GC is deleting that very blob.
RETRYABLE = re.compile(r"MANIFEST_BLOB_UNKNOWN|manifest blob unknown|BLOB_UNKNOWN|blob unknown|"
                       r"MANIFEST_UNKNOWN|manifest unknown|being garbage collected|UNAVAILABLE|"
                       r"unavailable|\b503\b", re.I)
MAX_RETRIES = 3
T0 = time.time()
MKIMAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mkimage.py")
sys.path.insert(0, os.path.dirname(MKIMAGE))
sys.dont_write_bytecode = True  # no __pycache__ next to mkimage.py
import mkimage  # noqa: E402 (next to this file)


def now_ms():
    return int(time.time() * 1000)


def log(msg):
    print(f"    [{time.time() - T0:6.1f}s] {msg}", flush=True)


class Failure(Exception):
    pass


# ------------------------------------------------------------------ HTTP

class Http:
    def __init__(self, registry):
        self.base = f"http://{registry}"
        self.auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    def req(self, method, path, body=None, headers=None):
        """Returns (status, headers, body bytes); never raises on HTTP errors."""
        h = {"Authorization": self.auth}
        h.update(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        r = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(r, timeout=60) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()


# ------------------------------------------------------------------ images and layouts

def read_json(path):
    with open(path) as f:
        return json.load(f)


class Image:
    def __init__(self, name, layout):
        self.name, self.layout = name, layout
        ref = read_json(os.path.join(layout, "index.json"))["manifests"][0]
        self.digest, self.media_type, self.size = ref["digest"], ref["mediaType"], ref["size"]
        self.is_index = self.media_type in INDEX_TYPES
        self.blobs = reachable(layout, self.digest)
        self.bytes = sum(os.path.getsize(blob_file(layout, d)) for d in self.blobs)


def load_images(d):
    return {n: Image(n, os.path.join(d, n)) for n in sorted(os.listdir(d))
            if os.path.isfile(os.path.join(d, n, "index.json"))}


def blob_file(layout, digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(layout, "blobs", algo, hexd)


def reachable(layout, digest):
    """Every blob reachable from the manifest or index DIGEST, each verified against its digest
    (raises Failure on a missing or corrupt blob)."""
    out, work = [], [digest]
    while work:
        d = work.pop()
        if d in out:
            continue
        path = blob_file(layout, d)
        if not os.path.exists(path):
            raise Failure(f"{layout}: blob {d} missing")
        with open(path, "rb") as f:
            data = f.read()
        if "sha256:" + hashlib.sha256(data).hexdigest() != d:
            raise Failure(f"{layout}: blob {d} does not hash to its name")
        out.append(d)
        if d == digest or len(data) < 1 << 20:
            try:
                doc = json.loads(data)
            except ValueError:
                continue
            if not isinstance(doc, dict):
                continue
            if "manifests" in doc:
                work += [m["digest"] for m in doc["manifests"]]
            elif "layers" in doc:
                work += [doc["config"]["digest"]] + [l["digest"] for l in doc["layers"]]
    return out


# ------------------------------------------------------------------ skopeo

class Skopeo:
    def __init__(self, cmd, registry, tmp):
        self.cmd, self.registry, self.tmp = cmd, registry, tmp
        self.seq = 0
        self.lock = threading.Lock()

    def _tmp(self, what):
        with self.lock:
            self.seq += 1
            return os.path.join(self.tmp, f"{what}-{self.seq}")

    def run(self, args, timeout=120):
        t = time.time()
        try:
            p = subprocess.run(self.cmd + args, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return 124, f"timeout after {timeout} s: skopeo {' '.join(args)}", t, time.time()
        return p.returncode, (p.stdout + p.stderr).strip(), t, time.time()

    def push(self, image, ref):
        """One attempt: (ok, pushed digest or error text, start, end)."""
        df = self._tmp("digest")
        rc, out, t0, t1 = self.run(["copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
                                    "--dest-creds", f"{USER}:{PASSWORD}", "--digestfile", df,
                                    f"oci:{image.layout}:v1", f"docker://{self.registry}/{ref}"])
        if rc != 0:
            return False, out, t0, t1
        with open(df) as f:
            d = f.read().strip()
        os.remove(df)
        return True, d, t0, t1

    def pull(self, ref):
        """(ok, digest of the pulled top-level manifest or error text). The pulled layout is
        verified (every reachable blob present and hashing to its digest) and removed."""
        dest = self._tmp("pull")
        try:
            rc, out, _, _ = self.run(["copy", "--all", "--preserve-digests", "--src-tls-verify=false",
                                      "--src-creds", f"{USER}:{PASSWORD}",
                                      f"docker://{self.registry}/{ref}", f"oci:{dest}:x"])
            if rc != 0:
                return False, out
            d = read_json(os.path.join(dest, "index.json"))["manifests"][0]["digest"]
            reachable(dest, d)
            return True, d
        finally:
            shutil.rmtree(dest, ignore_errors=True)


# ------------------------------------------------------------------ the ledger

class Ledger:
    """What exists (tags), what must not (deleted tags / digests / repositories), and which
    tags are being changed right now (flux) with a generation counter per tag, so that the
    puller can tell a pull that raced a change (tolerated) from one that did not (must work)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tags = {}            # (repo, tag) -> {"digest", "image"}
        self.gen = {}             # (repo, tag) -> int, bumped before and after every change
        self.flux = set()         # (repo, tag) being changed
        self.history = {}         # (repo, tag) -> set of digests it ever named
        self.repo_digests = {}    # repo -> set of top-level digests pushed since (re)creation
        self.deleted_tags = set()
        self.deleted_digests = set()
        self.deleted_repos = set()

    def begin(self, keys):
        with self.lock:
            for k in keys:
                self.gen[k] = self.gen.get(k, 0) + 1
                self.flux.add(k)

    def end(self, keys):
        with self.lock:
            for k in keys:
                self.gen[k] = self.gen.get(k, 0) + 1
                self.flux.discard(k)

    def pushed(self, repo, tag, image):
        with self.lock:
            self.tags[(repo, tag)] = {"digest": image.digest, "image": image.name}
            self.history.setdefault((repo, tag), set()).add(image.digest)
            self.repo_digests.setdefault(repo, set()).add(image.digest)
            self.deleted_tags.discard((repo, tag))
            self.deleted_digests.discard((repo, image.digest))
            self.deleted_repos.discard(repo)

    def tag_deleted(self, repo, tag):
        with self.lock:
            del self.tags[(repo, tag)]
            self.deleted_tags.add((repo, tag))

    def digest_deleted(self, repo, digest):
        with self.lock:
            for k in [k for k, v in self.tags.items() if k[0] == repo and v["digest"] == digest]:
                del self.tags[k]
                self.deleted_tags.add(k)
            self.deleted_digests.add((repo, digest))
            self.repo_digests.get(repo, set()).discard(digest)

    def repo_deleted(self, repo):
        with self.lock:
            for k in [k for k in self.tags if k[0] == repo]:
                del self.tags[k]
                self.deleted_tags.add(k)
            for d in self.repo_digests.pop(repo, set()):
                self.deleted_digests.add((repo, d))
            self.deleted_repos.add(repo)

    def keys_in(self, repo, digest=None):
        with self.lock:
            return [k for k, v in self.tags.items() if k[0] == repo and (digest is None or v["digest"] == digest)]

    def to_json(self):
        with self.lock:
            return {
                "tags": [{"repo": r, "tag": t, **v} for (r, t), v in sorted(self.tags.items())],
                "deleted_tags": sorted([r, t] for r, t in self.deleted_tags),
                "deleted_digests": sorted([r, d] for r, d in self.deleted_digests),
                "deleted_repos": sorted(self.deleted_repos),
            }


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = {}
        self.retries = []   # {"op", "ref", "reason", "t0", "t1"}
        self.gc_runs = []   # {"via", "id", "delete_untagged", "status", "bytes"}

    def inc(self, k, n=1):
        with self.lock:
            self.c[k] = self.c.get(k, 0) + n


# ------------------------------------------------------------------ load

class Load:
    def __init__(self, a):
        self.a = a
        self.http = Http(a.registry)
        self.sk = Skopeo(a.skopeo, a.registry, a.tmp)
        self.images = load_images(a.images)
        self.regular = list(self.images.values())
        self.ledger = Ledger()
        self.stats = Stats()
        self.stop = threading.Event()
        self.failures = []
        self.flock = threading.Lock()

    def fail(self, msg):
        with self.flock:
            self.failures.append(msg)
        log("FAIL: " + msg)
        self.stop.set()

    # -------------------------------------------------- pushers

    def push(self, image, repo, tag):
        ref = f"{repo}:{tag}"
        key = (repo, tag)
        self.ledger.begin([key])
        try:
            for attempt in range(MAX_RETRIES + 1):
                ok, out, t0, t1 = self.sk.push(image, ref)
                if ok:
                    if out != image.digest:
                        raise Failure(f"push {image.name} -> {ref}: digestfile says {out}, layout {image.digest}")
                    self.ledger.pushed(repo, tag, image)
                    self.stats.inc("pushes")
                    self.stats.inc("pushed_bytes", image.bytes)
                    return
                last = out.splitlines()[-1] if out else "(no output)"
                if not RETRYABLE.search(out) or attempt == MAX_RETRIES:
                    raise Failure(f"push {image.name} -> {ref} failed (attempt {attempt + 1}, "
                                  f"{'not retryable' if attempt < MAX_RETRIES else 'retries exhausted'}):\n{out}")
                with self.stats.lock:
                    self.stats.retries.append({"op": "push", "ref": ref, "image": image.name,
                                               "reason": last, "t0": t0, "t1": t1})
                self.stats.inc("retries")
                log(f"retry {attempt + 1} push {image.name} -> {ref}: {last}")
        finally:
            self.ledger.end([key])

    def delete_tag(self, repo, tag):
        key = (repo, tag)
        self.ledger.begin([key])
        try:
            st, _, body = self.http.req("DELETE", f"/v2/{repo}/manifests/{tag}")
            if st not in (200, 202):
                raise Failure(f"DELETE /v2/{repo}/manifests/{tag}: {st} {body[:300]!r}")
            self.ledger.tag_deleted(repo, tag)
            self.stats.inc("deletes_tag")
        finally:
            self.ledger.end([key])

    def delete_digest(self, repo, digest):
        keys = self.ledger.keys_in(repo, digest)
        self.ledger.begin(keys)
        try:
            st, _, body = self.http.req("DELETE", f"/v2/{repo}/manifests/{digest}")
            if st not in (200, 202):
                raise Failure(f"DELETE /v2/{repo}/manifests/{digest}: {st} {body[:300]!r}")
            self.ledger.digest_deleted(repo, digest)
            self.stats.inc("deletes_artifact")
        finally:
            self.ledger.end(keys)

    def delete_repo(self, repo):
        keys = self.ledger.keys_in(repo)
        self.ledger.begin(keys)
        try:
            name = repo.split("/", 1)[1]
            st, _, body = self.http.req("DELETE", f"/api/v2.0/projects/library/repositories/{name}")
            if st != 200:
                raise Failure(f"DELETE repository {repo}: {st} {body[:300]!r}")
            self.ledger.repo_deleted(repo)
            self.stats.inc("deletes_repo")
        finally:
            self.ledger.end(keys)

    def new_image(self, rng, pid, n):
        """A fresh single-use image (one small random layer), written by mkimage.py."""
        name = f"x{pid}-{n}"
        out = os.path.join(self.a.tmp, "fresh", name)
        size = rng.choice([32, 64, 96]) * 1024
        p = subprocess.run([sys.executable, MKIMAGE, "image", out, "--tag", "v1", "--layers", "1",
                            "--layer-size", str(size), "--seed", f"{self.a.seed}-{name}"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise Failure(f"mkimage.py {name}: {p.stderr}")
        img = Image(name, out)
        with self.stats.lock:
            self.images[name] = img
        self.stats.inc("fresh_images")
        return img

    def derive_image(self, rng, base, name, size):
        """A new image: BASE's layers plus one new random layer of SIZE bytes on top. Pushed
        while BASE's blobs are unreferenced and old enough to be swept, its upload of the new
        layer leaves time for a GC to sweep the base layers between the client's check of them
        and its manifest PUT."""
        out = os.path.join(self.a.tmp, "fresh", name)
        lay = mkimage.Layout(out)
        man = read_json(blob_file(base.layout, base.digest))
        cfg = read_json(blob_file(base.layout, man["config"]["digest"]))
        layers = []
        for l in man["layers"]:
            with open(blob_file(base.layout, l["digest"]), "rb") as f:
                layers.append(lay.put(f.read(), l["mediaType"]))
        diff_ids = list(cfg["rootfs"]["diff_ids"])
        gz, diff_id = mkimage.make_layer(rng, len(layers), size)
        layers.append(lay.put(gz, mkimage.OCI_LAYER_GZIP))
        diff_ids.append(diff_id)
        cfg["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
        cfg["history"] = cfg.get("history", []) + [{"created": mkimage.CREATED, "created_by": f"gc_check.py {name}"}]
        cdesc = lay.put_json(cfg, mkimage.OCI_CONFIG)
        mdesc = lay.put_json({"schemaVersion": 2, "mediaType": mkimage.OCI_MANIFEST, "config": cdesc,
                              "layers": layers}, mkimage.OCI_MANIFEST)
        lay.tag(mdesc, "v1")
        img = Image(name, out)
        with self.stats.lock:
            self.images[name] = img
        self.stats.inc("derived_images")
        return img

    def pusher(self, pid, repos, repo_delete_at):
        rng = random.Random(f"{self.a.seed}-{pid}")
        pending = []    # (repo, tag, image, pushed at) of single-use images, deleted soon after
        graveyard = []  # (pushed at, image, repo) of deleted single-use images: pushed again
                        # (or a new image on top of them) just when GC may sweep their blobs
        i = 0
        deadline = T0 + self.a.duration
        w = self.a.window
        try:
            while not self.stop.is_set() and time.time() < deadline:
                i += 1
                if repo_delete_at and time.time() - T0 >= repo_delete_at[0][0]:
                    _, repo = repo_delete_at.pop(0)
                    log(f"pusher {pid}: delete repository {repo}")
                    self.delete_repo(repo)
                    pending = [p for p in pending if p[0] != repo]
                    continue
                repo = rng.choice(repos)
                live = self.ledger.keys_in(repo)
                r = rng.random()
                now = time.time()
                # Blobs last used a window ago are unreferenced and just old enough to be swept.
                ripe = [g for g in graveyard if w + 0.05 < now - g[0] < w + 1.5]
                graveyard = [g for g in graveyard if now - g[0] < w + 1.5]
                if ripe:
                    graveyard.remove(ripe[0])
                    img, grepo = ripe[0][1], ripe[0][2]
                    if rng.random() < 0.6:
                        repo = grepo   # the client finds the blobs there (HEAD 200) and skips them
                    if rng.random() < 0.6 and len(read_json(blob_file(img.layout, img.digest))["layers"]) < 3:
                        img = self.derive_image(rng, img, f"{img.name}+{pid}-{i}", 1 << 20)
                    else:
                        self.stats.inc("repushes_of_deleted")
                    # A GC started with the push, so that its sweep may fall between the client's
                    # check of the old blobs and its manifest PUT.
                    kick = threading.Thread(target=self.kick_gc, args=(rng.uniform(0, 0.1), rng.random() < 0.5))
                    kick.start()
                    tag = f"tmp{pid}-{i}"
                    try:
                        self.push(img, repo, tag)
                    finally:
                        kick.join()
                    pending.append((repo, tag, img, time.time()))
                elif pending and (r < 0.25 or len(pending) > 2):
                    prepo, ptag, pimg, pushed = pending.pop(0)
                    if (prepo, ptag) not in self.ledger.tags:
                        continue
                    if rng.random() < 0.5:
                        self.delete_tag(prepo, ptag)            # untagged: delete_untagged GC
                    else:
                        self.delete_digest(prepo, pimg.digest)  # artifact gone: plain GC
                    graveyard.append((pushed, pimg, prepo))
                elif r < 0.40:
                    img = self.new_image(rng, pid, i)
                    tag = f"tmp{pid}-{i}"
                    self.push(img, repo, tag)
                    pending.append((repo, tag, img, time.time()))
                elif len(live) > 8 or r > 0.93:
                    if not live:
                        continue
                    k = rng.choice(sorted(live))
                    if rng.random() < 0.6:
                        self.delete_tag(*k)
                    else:
                        self.delete_digest(k[0], self.ledger.tags[k]["digest"])
                elif r < 0.62:
                    self.push(rng.choice(self.regular), repo, "latest")     # overwrite (rotating)
                else:
                    self.push(rng.choice(self.regular), repo, f"t{pid}-{i}")
                self.save()
                self.stop.wait(self.a.pace)
        except Failure as e:
            self.fail(f"pusher {pid}: {e}")
        except Exception as e:  # noqa: BLE001 (a bug in the test itself: report it as a failure)
            self.fail(f"pusher {pid}: unexpected {type(e).__name__}: {e}")

    # -------------------------------------------------- puller

    def puller(self):
        rng = random.Random(f"{self.a.seed}-pull")
        try:
            while not self.stop.is_set():
                with self.ledger.lock:
                    keys = sorted(k for k in self.ledger.tags if k not in self.ledger.flux)
                    if not keys:
                        key = None
                    else:
                        key = rng.choice(keys)
                        want, gen = self.ledger.tags[key]["digest"], self.ledger.gen.get(key, 0)
                if key is None:
                    time.sleep(0.2)
                    continue
                ref = f"{key[0]}:{key[1]}"
                ok, out = self.sk.pull(ref)
                with self.ledger.lock:
                    changed = self.ledger.gen.get(key, 0) != gen or key in self.ledger.flux
                    history = set(self.ledger.history.get(key, ()))
                if ok and (out == want or (changed and out in history)):
                    self.stats.inc("pulls")
                elif ok:
                    raise Failure(f"pull {ref}: got {out}, ledger says {want}"
                                  f"{' (tag changed meanwhile)' if changed else ''}")
                elif changed:
                    self.stats.inc("pulls_raced")
                    log(f"pull {ref} raced a change of the tag (tolerated): {out.splitlines()[-1]}")
                else:
                    raise Failure(f"pull {ref} (expected {want}, tag unchanged during the pull) failed:\n{out}")
        except Failure as e:
            self.fail(f"puller: {e}")
        except Exception as e:  # noqa: BLE001
            self.fail(f"puller: unexpected {type(e).__name__}: {e}")

    # -------------------------------------------------- GC loop

    def cli_gc(self, delete_untagged):
        args = [self.a.gc_cmd, "--json"] + (["--delete-untagged"] if delete_untagged else [])
        p = subprocess.run(args, capture_output=True, text=True, timeout=300)
        if p.returncode != 0 and "already pending or running" in p.stderr:
            return None
        try:
            rep = json.loads(p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise Failure(f"berth gc exited {p.returncode}:\n{p.stdout}{p.stderr}")
        if p.returncode != 0 or rep.get("status") != "success":
            raise Failure(f"berth gc exited {p.returncode}: {p.stdout}{p.stderr}")
        return rep

    def rest_gc(self, delete_untagged):
        body = {"schedule": {"type": "Manual"},
                "parameters": {"dry_run": False, "delete_untagged": delete_untagged}}
        st, h, b = self.http.req("POST", "/api/v2.0/system/gc/schedule", body)
        if st == 409:
            return None
        if st != 201:
            raise Failure(f"POST /api/v2.0/system/gc/schedule: {st} {b[:300]!r}")
        return h["Location"]

    def wait_gc(self, loc):
        deadline = time.time() + 120
        while time.time() < deadline:
            st, _, b = self.http.req("GET", loc)
            if st != 200:
                raise Failure(f"GET {loc}: {st} {b[:300]!r}")
            j = json.loads(b)
            if j["job_status"] not in ("Pending", "Running"):
                return j
            time.sleep(0.25)
        raise Failure(f"GC {loc} did not finish within 120 s")

    def record_gc(self, via, gid, delete_untagged, status, result):
        with self.stats.lock:
            self.stats.gc_runs.append({"via": via, "id": gid, "delete_untagged": delete_untagged,
                                       "status": status, "bytes": (result or {}).get("bytes", 0)})
        self.stats.inc("gc_runs")
        self.stats.inc("gc_bytes", (result or {}).get("bytes", 0) or 0)
        if self.a.verbose:
            log(f"gc {gid} via {via} (delete_untagged={str(delete_untagged).lower()}): {status}, "
                f"{(result or {}).get('bytes', 0)} bytes, {(result or {}).get('blobs', 0)} blobs, "
                f"{(result or {}).get('manifests', 0)} manifests, {(result or {}).get('artifacts', 0)} artifacts")
        if status.lower() != "success":
            raise Failure(f"GC {gid} via {via} ended {status}: {result}")

    def kick_gc(self, delay, delete_untagged):
        time.sleep(delay)
        try:
            rep = self.cli_gc(delete_untagged)
            if rep is None:
                self.stats.inc("gc_busy")
            else:
                self.stats.inc("gc_kicked")
                self.record_gc("cli", rep["id"], delete_untagged, rep["status"], rep["report"])
        except Failure as e:
            self.fail(f"gc started with a push: {e}")

    def gc_loop(self):
        modes = [("rest", True), ("cli", False), ("rest", False), ("cli", True)]
        rng = random.Random(f"{self.a.seed}-gc")
        n = 0
        deadline = T0 + self.a.duration
        try:
            time.sleep(3)
            while not self.stop.is_set() and time.time() < deadline:
                via, du = modes[n % len(modes)]
                n += 1
                if via == "rest":
                    loc = self.rest_gc(du)
                    if loc is None:
                        self.stats.inc("gc_busy")
                        log("REST GC refused (409: one is pending or running)")
                    else:
                        # A second trigger while this one is pending/running must be refused
                        # (unless it already finished: then it is a run of its own).
                        loc2 = self.rest_gc(False)
                        if loc2 is None:
                            self.stats.inc("gc_refused_as_expected")
                        else:
                            self.stats.inc("gc_second_trigger_ran")
                            j = self.wait_gc(loc2)
                            self.record_gc("rest", j["id"], False, j["job_status"], j["result"])
                        rep = self.cli_gc(False)
                        if rep is None:
                            self.stats.inc("gc_refused_as_expected")
                        else:
                            self.stats.inc("gc_second_trigger_ran")
                            self.record_gc("cli", rep["id"], False, rep["status"], rep["report"])
                        j = self.wait_gc(loc)
                        self.record_gc("rest", j["id"], du, j["job_status"], j["result"])
                else:
                    rep = self.cli_gc(du)
                    if rep is None:
                        self.stats.inc("gc_busy")
                        log("CLI GC refused (one is pending or running)")
                    else:
                        self.record_gc("cli", rep["id"], du, rep["status"], rep["report"])
                self.stop.wait(rng.uniform(0.5, 1.5))
        except Failure as e:
            self.fail(f"gc loop: {e}")
        except Exception as e:  # noqa: BLE001
            self.fail(f"gc loop: unexpected {type(e).__name__}: {e}")

    # -------------------------------------------------- run

    def save(self):
        doc = self.ledger.to_json()
        with self.stats.lock:
            doc["stats"] = dict(self.stats.c)
            doc["retries"] = list(self.stats.retries)
            doc["gc_runs"] = list(self.stats.gc_runs)
        doc["t0"] = T0
        with self.stats.lock:
            images = dict(self.images)
        doc["images"] = {n: {"digest": i.digest, "bytes": i.bytes, "index": i.is_index}
                         for n, i in images.items()}
        with self.flock:
            tmp = self.a.ledger + ".tmp"
            with open(tmp, "w") as f:
                json.dump(doc, f, indent=1)
            os.replace(tmp, self.a.ledger)

    def run(self):
        log(f"load: {self.a.duration} s, seed {self.a.seed}; images: " + ", ".join(
            f"{n}{' (index)' if i.is_index else ''} {i.bytes // 1024} KiB" for n, i in self.images.items()))
        d = self.a.duration
        threads = [
            threading.Thread(target=self.pusher, args=(1, ["library/gc1", "library/gc2"], [(d * 0.4, "library/gc2")])),
            threading.Thread(target=self.pusher, args=(2, ["library/gc3", "library/gc4"], [(d * 0.6, "library/gc4")])),
            threading.Thread(target=self.puller),
            threading.Thread(target=self.gc_loop),
        ]
        for t in threads:
            t.start()
        last = time.time()
        while any(t.is_alive() for t in threads[:2] + threads[3:]):
            time.sleep(0.2)
            if time.time() - last >= 10 and not self.stop.is_set():
                last = time.time()
                c = dict(self.stats.c)
                log(f"{c.get('pushes', 0)} pushes, {c.get('pulls', 0)} pulls, "
                    f"{c.get('deletes_tag', 0) + c.get('deletes_artifact', 0) + c.get('deletes_repo', 0)} deletes, "
                    f"{c.get('gc_runs', 0)} GC runs ({c.get('gc_bytes', 0)} bytes freed), {c.get('retries', 0)} retries")
        # The puller runs until the pushers and the GC loop are done.
        for t in threads[:2] + threads[3:]:
            t.join()
        self.stop.set()
        threads[2].join()
        self.save()
        c = self.stats.c
        log(f"load done: {c.get('pushes', 0)} pushes, {c.get('pulls', 0)} pulls "
            f"(+{c.get('pulls_raced', 0)} raced a tag change), "
            f"{c.get('deletes_tag', 0)} tag / {c.get('deletes_artifact', 0)} artifact / "
            f"{c.get('deletes_repo', 0)} repository deletes, {c.get('gc_runs', 0)} GC runs, "
            f"{c.get('retries', 0)} retries")
        if self.failures:
            print("load FAILED:\n" + "\n".join(self.failures), file=sys.stderr)
            return 1
        return 0


# ------------------------------------------------------------------ verify

def parse_time(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def verify(a):
    http = Http(a.registry)
    sk = Skopeo(a.skopeo, a.registry, a.tmp)
    led = read_json(a.ledger)
    problems = []

    def problem(msg):
        problems.append(msg)
        print(f"    FAIL: {msg}", flush=True)

    # (i) everything the ledger says exists pulls with its digest and content.
    tags = led["tags"]

    def pull(e):
        ref = f"{e['repo']}:{e['tag']}"
        ok, out = sk.pull(ref)
        if not ok:
            return f"pull {ref} (expected {e['digest']}, image {e['image']}) failed:\n{out}"
        if out != e["digest"]:
            return f"pull {ref}: got {out}, ledger says {e['digest']} (image {e['image']})"
        return None

    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        for e, err in zip(tags, ex.map(pull, tags)):
            if err:
                problem(err)
    log(f"(i) {len(tags)} ledger tags pulled: digests equal, every blob hashes to its digest"
        + ("" if not problems else f" -- {len(problems)} failed"))

    # (ii) deleted tags, artifacts and repositories answer 404.
    n404 = 0
    for what, items in (("tag", led["deleted_tags"]), ("digest", led["deleted_digests"])):
        for repo, ref in items:
            st, _, b = http.req("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST_ACCEPT})
            n404 += 1
            if st != 404:
                problem(f"deleted {what} {repo}:{ref} answers {st}, not 404: {b[:200]!r}")
    live_repos = {e["repo"] for e in tags}
    for repo in led["deleted_repos"]:
        if repo in live_repos:
            continue
        st, _, b = http.req("GET", f"/v2/{repo}/tags/list")
        n404 += 1
        if st != 404:
            problem(f"deleted repository {repo}: tags/list answers {st}, not 404: {b[:200]!r}")
    log(f"(ii) {n404} deleted tags / artifacts / repositories checked for 404")

    # (iii) storage and database agree.
    window_ms = int(a.window * 1000)
    db = sqlite3.connect(f"file:{os.path.join(a.data, 'berth.db')}?mode=ro", uri=True, timeout=30)
    rows = {r[0]: r[1:] for r in db.execute("SELECT digest, size, status, last_used, kind FROM blobs")}
    referenced = {r[0] for r in db.execute("SELECT digest FROM artifacts UNION SELECT digest FROM artifact_blobs")}
    n_art = db.execute("SELECT COUNT(*) FROM artifacts").fetchone()[0]
    db.close()
    cutoff = now_ms() - window_ms
    root = os.path.join(a.data, "storage", "blobs")
    files = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root).split(os.sep)
            if len(rel) != 4 or rel[3] != "data" or rel[1] != rel[2][:2]:
                problem(f"unexpected file in blob storage: {p}")
                continue
            files[f"{rel[0]}:{rel[2]}"] = p
    stored = 0
    for d, p in sorted(files.items()):
        row = rows.get(d)
        if row is None:
            problem(f"blob file without a database row: {p}")
            continue
        size, status, last_used, kind = row
        if status != "none":
            problem(f"{kind} {d}: status {status!r} after the final GC")
        if d not in referenced and last_used < cutoff:
            problem(f"{kind} {d} ({size} bytes) unreferenced and unused for "
                    f"{(now_ms() - last_used) / 1000:.1f} s (> window {a.window} s), still stored")
        with open(p, "rb") as f:
            data = f.read()
        stored += len(data)
        if "sha256:" + hashlib.sha256(data).hexdigest() != d:
            problem(f"{p} does not hash to {d}")
        if len(data) != size:
            problem(f"{d}: file has {len(data)} bytes, the row says {size}")
    for d, (size, status, _, kind) in sorted(rows.items()):
        if d not in files:
            problem(f"{kind} row {d} (status {status}) has no file in storage")
        if status == "deleting":
            problem(f"{kind} row {d} still 'deleting'")
    for d in sorted(referenced):
        if d not in rows:
            problem(f"{d} referenced by an artifact has no blobs row")
    uploads = os.path.join(a.data, "storage", "uploads")
    n_up = len(os.listdir(uploads)) if os.path.isdir(uploads) else 0
    log(f"(iii) storage: {len(files)} blob files ({stored} bytes), {len(rows)} blob rows, {n_art} artifacts, "
        f"{len(referenced)} referenced digests; {n_up} upload sessions left in storage/uploads")

    # (iv) every GC run succeeded, none overlapped another, something was freed.
    runs = []
    for page in range(1, 100):
        st, _, b = http.req("GET", f"/api/v2.0/system/gc?page_size=100&page={page}")
        if st != 200:
            problem(f"GET /api/v2.0/system/gc?page={page}: {st} {b[:200]!r}")
            break
        if not json.loads(b):
            break
        runs += json.loads(b)
    freed = 0
    kinds = {}
    for r in runs:
        res = r.get("result") or {}
        freed += res.get("bytes", 0) or 0
        kinds[r["job_kind"]] = kinds.get(r["job_kind"], 0) + 1
        if r["job_status"] != "Success":
            problem(f"GC {r['id']} ({r['job_kind']}, {r['job_parameters']}): {r['job_status']} {r.get('error')!r}")
        if res.get("errors"):
            problem(f"GC {r['id']}: {res['errors']} deletion errors")
    # No two runs at once. A run's start is the first line of its log: start_time is taken just
    # before the INSERT of the job row, which may then wait for SQLite's write lock (held by the
    # end of the previous run), so it can precede the previous end_time by a few ms.
    spans = []
    for r in runs:
        if not (r.get("start_time") and r.get("end_time")):
            problem(f"GC {r['id']}: no start_time/end_time ({r['job_status']})")
            continue
        st, _, b = http.req("GET", f"/api/v2.0/system/gc/{r['id']}/log")
        first = b.decode(errors="replace").split(" ", 1)[0] if st == 200 else ""
        try:
            began = parse_time(first)
        except ValueError:
            problem(f"GC {r['id']}: log {st} does not start with a timestamp: {b[:100]!r}")
            continue
        spans.append((began, parse_time(r["end_time"]), r["id"], parse_time(r["start_time"])))
    spans.sort()
    early = 0
    for (s1, e1, i1, _), (s2, e2, i2, started2) in zip(spans, spans[1:]):
        if s2 < e1:
            problem(f"GC runs {i1} and {i2} overlapped: {i2} logged its start {e1 - s2:.3f} s before {i1} ended")
        elif started2 < e1:
            early += 1
    if early:
        print(f"    note: {early} runs have a start_time before the end_time of the previous run "
              f"(their job row waited for the write lock; their logs start after it)")
    recorded = len(led.get("gc_runs", [])) + (1 if a.final_gc_json else 0)
    if len(runs) != recorded:
        problem(f"the GC history lists {len(runs)} runs, the test started {recorded}")
    if freed <= 0:
        problem("no GC run freed anything (sum of result.bytes = 0)")
    log(f"(iv) {len(runs)} GC runs ({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))}), "
        f"all Success, none overlapping; {freed} bytes freed in total")

    # Retries must have raced a GC run (that is the only reason the design gives for them).
    t0 = led.get("t0", T0)
    for r in led.get("retries", []):
        if not any(s - 0.25 <= r["t1"] and r["t0"] <= e + 0.25 for s, e, _, _ in spans):
            problem(f"retry of {r['op']} {r['ref']} at +{r['t0'] - t0:.1f}s overlapped no GC run: {r['reason']}")

    s = led.get("stats", {})
    reasons = {}
    for r in led.get("retries", []):
        why = r["reason"].rstrip('"').split(": ")
        key = re.sub(r"sha256:[0-9a-f]{64}", "sha256:…", ": ".join(why[-2:]))[:100]
        reasons[key] = reasons.get(key, 0) + 1
    print("")
    print("summary:")
    print(f"  pushes      {s.get('pushes', 0)} ({s.get('pushed_bytes', 0) // 1024} KiB of images, mostly already there)")
    print(f"  pulls       {s.get('pulls', 0)} during the load (+{s.get('pulls_raced', 0)} that raced a tag change), "
          f"{len(tags)} in the final check")
    print(f"  deletes     {s.get('deletes_tag', 0)} tags, {s.get('deletes_artifact', 0)} artifacts, "
          f"{s.get('deletes_repo', 0)} repositories")
    print(f"  GC runs     {len(runs)} ({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))}); "
          f"{s.get('gc_busy', 0)} triggers found one running, "
          f"{s.get('gc_refused_as_expected', 0)} second triggers refused as expected")
    print(f"  races       {s.get('repushes_of_deleted', 0)} deleted images pushed again and "
          f"{s.get('derived_images', 0)} built on deleted ones, just as their blobs became collectable, "
          f"each with a GC started at the same moment ({s.get('gc_kicked', 0)} ran)")
    print(f"  freed       {freed} bytes")
    print(f"  retries     {s.get('retries', 0)}" + "".join(f"\n                {n} × {k}" for k, n in sorted(reasons.items())))
    print(f"  final state {len(tags)} tags, {n_art} artifacts, {len(files)} blobs ({stored} bytes) in storage")
    if problems:
        print(f"\nverify FAILED: {len(problems)} problems", file=sys.stderr)
        return 1
    return 0


# ------------------------------------------------------------------ main

def main():
    argv = sys.argv[1:]
    skopeo = []
    if "--" in argv:
        i = argv.index("--")
        argv, skopeo = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("load", "verify"):
        sp = sub.add_parser(name)
        sp.add_argument("--registry", required=True)
        sp.add_argument("--images", required=True)
        sp.add_argument("--ledger", required=True)
        sp.add_argument("--tmp", required=True)
    lp = sub.choices["load"]
    lp.add_argument("--gc-cmd", required=True)
    lp.add_argument("--duration", type=float, default=60)
    lp.add_argument("--seed", default=str(random.randrange(1 << 30)))
    lp.add_argument("--window", type=float, default=5, help="gc.window of the server (s)")
    lp.add_argument("--verbose", action="store_true", help="one line per GC run")
    lp.add_argument("--pace", type=float, default=0.05, help="pause of a pusher between operations (s)")
    vp = sub.choices["verify"]
    vp.add_argument("--data", required=True, help="the server's data directory (berth.db, storage/)")
    vp.add_argument("--window", type=float, default=5)
    vp.add_argument("--final-gc-json", help="JSON line of the final `berth gc --json`")
    a = p.parse_args(argv)
    a.skopeo = skopeo or ["skopeo"]
    os.makedirs(a.tmp, exist_ok=True)
    if a.cmd == "load":
        return Load(a).run()
    return verify(a)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Garbage collection at scale: wall time of `berth gc` on ~10k/30k/100k blobs, on filesystem
# storage and on S3 (Garage), and how it grows with the number of blobs.
#
#   bench/gc.sh                 fs 1k/3k/10k and S3 500/1.5k artifacts (~25 min on 2 vCPUs); Markdown
#                               report on stdout (progress on stderr), written to bench/GC-RESULTS.md
#
# Environment:
#   GC_SIZES="1000 3000 10000"  artifacts per run (each = 10 blobs + 1 manifest)
#   GC_BACKENDS="fs s3"         storages: fs (local directory) and/or s3 (Garage, scripts/services.sh)
#   GC_S3_SIZES="500 1500"      sizes on S3. Seeding through Garage (sqlite metadata, as
#                               scripts/services.sh runs it) is slow and slows down as it fills:
#                               ~50 pushes/s at 1k artifacts, ~30/s at 3k (1000 3000: ~27 min
#                               for S3 alone; 10000 would take hours)
#   GC_WORKERS=16               storage deletions in flight (BERTH_GC__WORKERS)
#   KEEP_EVERY=10               artifacts i with i % KEEP_EVERY == 0 survive (10 %), the rest are deleted
#   THREADS=8                   client threads for seeding, deleting and verifying
#   BERTH_BIN                   default $CARGO_TARGET_DIR/release/berth (never built here)
#   CARGO_TARGET_DIR            default ~/.cache/berth/target
#   RESULTS=FILE                where the report goes (default bench/GC-RESULTS.md for the default
#                               sizes and backends; otherwise only stdout)
#   KEEP=1                      keep the work directory (databases, storage, logs, state files)
#
# For each storage and size, a fresh berth (release binary copied at the start, SQLite, its own
# working directory, BERTH_LOG__LEVEL=warn, BERTH_GC__WINDOW=0s so that everything unreferenced
# is collectable at once) and, for s3, a fresh single-node Garage:
#   1. seed N artifacts through the registry API (bench/gc_seed.py seed: monolithic blob POSTs
#      and manifest PUTs, 8 threads, repositories library/bench-0..99), timed;
#   2. delete 90 % of them with DELETE /v2/<repo>/manifests/<digest> (the artifact and its tag
#      go; blobs and manifest stay until GC), timed;
#   3. `berth gc --dry-run --json`, then `berth gc --json`, run from the server's working
#      directory with the server's environment while the server keeps running; wall time,
#      CPU time and peak RSS of the gc process, and the report's duration_ms;
#   4. checks: both runs succeeded with 0 errors, the dry run predicted exactly what the real run
#      deleted, which is exactly the deleted artifacts' 10 blobs + 1 manifest each; no blob row is
#      left `deleting`; a second GC deletes nothing; storage holds exactly the survivors' objects
#      (fs: files under storage/blobs; s3: the bucket's object count from the garage CLI);
#      every surviving artifact still pulls (manifest by tag + one blob, bytes hashed) and a
#      sample of deleted ones answers 404. Any failure ends the run with exit 1.
# Every process started here is stopped by PID on exit; the work directory is removed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" # log, die, alive, stop_berth
repo_root=$(cd "$here/.." && pwd)
GC_SIZES=${GC_SIZES:-1000 3000 10000}
GC_BACKENDS=${GC_BACKENDS:-fs s3}
GC_S3_SIZES=${GC_S3_SIZES:-500 1500}
GC_WORKERS=${GC_WORKERS:-16}
KEEP_EVERY=${KEEP_EVERY:-10}
export THREADS=${THREADS:-8}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/berth/target}
BERTH_BIN=${BERTH_BIN:-$CARGO_TARGET_DIR/release/berth}
export PYTHONDONTWRITEBYTECODE=1
SEED="python3 $here/gc_seed.py"


for b in $GC_BACKENDS; do
  case "$b" in fs | s3) ;; *) die "GC_BACKENDS: fs and/or s3 (got $b)" ;; esac
done
[ -x "$BERTH_BIN" ] || die "no berth binary at $BERTH_BIN (cargo build --release -p server --bin berth)"
"$BERTH_BIN" gc --help >/dev/null 2>&1 || die "$BERTH_BIN has no 'gc' subcommand: rebuild it"
for t in python3 curl; do command -v "$t" >/dev/null || die "$t is needed"; done

# ------------------------------------------------------------------ one run at a time

exec 9>/tmp/berth-gc-bench.lock
if ! flock -n 9; then
  log "another bench/gc.sh is running; waiting for it (up to 40 min)"
  flock -w 2400 9 || die "the other bench/gc.sh run did not finish in 40 min"
fi

# ------------------------------------------------------------------ work dir, cleanup

W=$(mktemp -d /tmp/berth-gc-bench.XXXXXX)
BERTH_PID=""
SVC_DIR=""
RUN_DIR=""
cleanup() {
  local rc=$?
  set +e
  stop_berth
  stop_garage
  if [ $rc -ne 0 ] && [ -n "$RUN_DIR" ]; then
    log "logs:"
    tail -n 20 "$RUN_DIR/berth.log" >&2 2>/dev/null
  fi
  if [ "${KEEP:-}" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One binary for the whole run, even if it is rebuilt meanwhile.
bin_time=$(date -u -r "$BERTH_BIN" '+%Y-%m-%d %H:%M:%S UTC')
# A binary older than the server's sources measures other code than `git rev-parse HEAD` says.
src_newest=$(find "$repo_root/server/src" "$repo_root/migrations" "$repo_root/Cargo.lock" -type f -newer "$BERTH_BIN" 2>/dev/null | head -1)
head_time=$(git -C "$repo_root" log -1 --format=%ct 2>/dev/null || echo 0)
STALE=""
if [ -n "$src_newest" ] || [ "$head_time" -gt "$(date -r "$BERTH_BIN" +%s)" ]; then
  STALE=" — **older than the sources** (${src_newest:+${src_newest#"$repo_root"/} is newer; }HEAD committed $(date -u -d "@$head_time" '+%H:%M:%S UTC')): the numbers are those of an earlier build"
  log "warning: $BERTH_BIN is older than the sources; rebuild it to measure the current code"
fi
cp "$BERTH_BIN" "$W/berth"
RUN_BIN=$W/berth

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
: >"$W/results.jsonl"
busy_sample() { pgrep -c -x 'rustc|cc1|cc1plus|ld|ld.lld|mold|cargo' 2>/dev/null || true; }

# ------------------------------------------------------------------ berth and garage

# The environment of the server and of `berth gc` (same cwd, same variables): BENV=(NAME=VALUE…)
BENV=()
set_env() {
  local storage=$1
  BENV=(BERTH_LISTEN="127.0.0.1:$BERTH_PORT" BERTH_EXTERNAL_URL="http://127.0.0.1:$BERTH_PORT"
    BERTH_LOG__LEVEL=warn BERTH_GC__WINDOW=0s BERTH_GC__WORKERS="$GC_WORKERS")
  if [ "$storage" = s3 ]; then
    BENV+=(BERTH_STORAGE__KIND=s3 BERTH_STORAGE__S3__ENDPOINT="$TEST_BERTH_S3_ENDPOINT"
      BERTH_STORAGE__S3__REGION="$TEST_BERTH_S3_REGION" BERTH_STORAGE__S3__BUCKET="$TEST_BERTH_S3_BUCKET"
      BERTH_STORAGE__S3__ACCESS_KEY_ID="$TEST_BERTH_S3_ACCESS_KEY"
      BERTH_STORAGE__S3__SECRET_ACCESS_KEY="$TEST_BERTH_S3_SECRET_KEY")
  fi
}

# berth_env CMD…: runs CMD in $RUN_DIR with exactly the BERTH_* variables of BENV.
UNSET_BERTH=()
for v in $(compgen -e); do [[ $v == BERTH_* ]] && UNSET_BERTH+=(-u "$v"); done
berth_env() {
  (cd "$RUN_DIR" && exec env "${UNSET_BERTH[@]}" "${BENV[@]}" "$@")
}

start_berth() {
  local i
  # The subshell execs env, which execs berth: $! is berth's PID.
  (cd "$RUN_DIR" && exec env "${UNSET_BERTH[@]}" "${BENV[@]}" "$RUN_BIN" >>"$RUN_DIR/berth.log" 2>&1 </dev/null) &
  BERTH_PID=$!
  for ((i = 0; i < 600; i++)); do
    alive "$BERTH_PID" || die "berth exited at start: $(tail -n 5 "$RUN_DIR/berth.log")"
    [ "$(curl -fsS "http://127.0.0.1:$BERTH_PORT/api/v2.0/ping" 2>/dev/null)" = Pong ] && return 0
    sleep 0.1
  done
  die "berth did not answer Pong in 60 s"
}

GARAGE_PID=""
start_garage() {
  SVC_DIR=$RUN_DIR/svc
  mkdir -p "$SVC_DIR"
  eval "$("$repo_root/scripts/services.sh" start garage "$SVC_DIR")"
  GARAGE_PID=$(cat "$SVC_DIR/garage/garage.pid")
}

stop_garage() {
  local i
  if [ -n "$SVC_DIR" ]; then
    "$repo_root/scripts/services.sh" stop "$SVC_DIR"
    for ((i = 0; i < 100; i++)); do alive "$GARAGE_PID" || break; sleep 0.1; done
    alive "$GARAGE_PID" && kill -KILL "$GARAGE_PID" 2>/dev/null
  fi
  SVC_DIR=""
  GARAGE_PID=""
}

garage_cli() {
  local bin
  bin=$(command -v garage || echo "$HOME/.cargo/bin/garage")
  "$bin" -c "$SVC_DIR/garage/garage.toml" "$@"
}

# Objects in storage: fs: files under storage/blobs; s3: the bucket's object count (garage CLI).
storage_objects() {
  if [ "$1" = fs ]; then
    find "$RUN_DIR/data/storage/blobs" -type f 2>/dev/null | wc -l
  else
    garage_cli bucket info berth 2>/dev/null | awk -F: '/^ *Objects/ { gsub(/ /, "", $2); print $2; exit }'
  fi
}

# utime + stime of a process in clock ticks (0 when there is none).
cpu_ticks() {
  if alive "${1:-}"; then sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; else echo 0; fi
}
TICKS=$(getconf CLK_TCK)

# settled_objects STORAGE EXPECTED: the object count, once it equals EXPECTED (Garage updates its
# bucket counters asynchronously) or after 30 s.
settled_objects() {
  local i c
  for ((i = 0; i < 60; i++)); do
    c=$(storage_objects "$1")
    [ "$c" = "$2" ] && break
    sleep 0.5
  done
  echo "${c:-?}"
}

jget() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); [d := d[k] for k in sys.argv[2:]]; print(d)' "$@"; }

# ------------------------------------------------------------------ one run

# timed_gc NAME ARGS…: `berth gc --json ARGS` under gc_seed.py timed; writes NAME.json
# ({"time":…, "id", "status", "report"}) and fails unless it succeeded with 0 errors.
timed_gc() {
  local name=$1 rc=0 s0 g0 s1 g1
  shift
  s0=$(cpu_ticks "$BERTH_PID")
  g0=$(cpu_ticks "$GARAGE_PID")
  berth_env python3 "$here/gc_seed.py" timed "$RUN_DIR/$name.time.json" -- "$RUN_BIN" gc --json "$@" \
    >"$RUN_DIR/$name.out" 2>"$RUN_DIR/$name.err" || rc=$?
  s1=$(cpu_ticks "$BERTH_PID")
  g1=$(cpu_ticks "$GARAGE_PID")
  echo "{\"server_cpu_s\": $(((s1 - s0) * 100 / TICKS))e-2, \"garage_cpu_s\": $(((g1 - g0) * 100 / TICKS))e-2}" >"$RUN_DIR/$name.cpu.json"
  if [ $rc -ne 0 ]; then
    cat "$RUN_DIR/$name.out" "$RUN_DIR/$name.err" >&2
    die "berth gc $* exited with $rc"
  fi
  python3 - "$RUN_DIR/$name.out" "$RUN_DIR/$name.time.json" "$RUN_DIR/$name.json" "$RUN_DIR/$name.cpu.json" <<'EOF' || die "berth gc $*: bad result (see above)"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip().startswith("{")]
if len(lines) != 1:
    sys.exit(f"expected one JSON line from berth gc, got: {open(sys.argv[1]).read()[:500]}")
r = json.loads(lines[0])
r["time"] = json.load(open(sys.argv[2]))
r["time"].update(json.load(open(sys.argv[4])))
json.dump(r, open(sys.argv[3], "w"))
if r["status"] != "success" or r["report"]["errors"] != 0 or r["report"].get("stopped"):
    sys.exit(f"berth gc: status {r['status']}, report {r['report']}, error {r.get('error')!r}")
EOF
}

run_one() {
  local storage=$1 n=$2 base busy0 busy1
  RUN_DIR=$W/$storage-$n
  mkdir -p "$RUN_DIR"
  BERTH_PORT=$(free_port)
  if [ "$storage" = s3 ]; then start_garage; fi
  set_env "$storage"
  start_berth
  base=http://127.0.0.1:$BERTH_PORT
  local st=$RUN_DIR/state.jsonl

  log "$storage/$n: seeding $n artifacts ($((n * 10)) blobs + $n manifests) on $base with $THREADS threads"
  $SEED seed --base "$base" --state "$st" --artifacts "$n" --keep-every "$KEEP_EVERY" >"$RUN_DIR/seed.json" ||
    die "seeding failed"
  log "$storage/$n: seeded: $(cat "$RUN_DIR/seed.json")"
  $SEED delete --base "$base" --state "$st" --keep-every "$KEEP_EVERY" >"$RUN_DIR/delete.json" || die "deleting failed"
  log "$storage/$n: deleted: $(cat "$RUN_DIR/delete.json")"
  $SEED dbstats --db "$RUN_DIR/data/berth.db" >"$RUN_DIR/before.json"
  log "$storage/$n: database before GC: $(cat "$RUN_DIR/before.json")"
  local objects_before
  objects_before=$(settled_objects "$storage" "$(jget "$RUN_DIR/before.json" blob_rows)")

  busy0=$(busy_sample)
  log "$storage/$n: berth gc --dry-run"
  timed_gc dry --dry-run
  log "$storage/$n: dry run: $(cat "$RUN_DIR/dry.json")"
  log "$storage/$n: berth gc"
  timed_gc gc
  busy1=$(busy_sample)
  log "$storage/$n: gc: $(cat "$RUN_DIR/gc.json")"
  timed_gc gc2
  log "$storage/$n: second gc: $(cat "$RUN_DIR/gc2.json")"
  $SEED dbstats --db "$RUN_DIR/data/berth.db" --job "$(jget "$RUN_DIR/dry.json" id)" \
    --job "$(jget "$RUN_DIR/gc.json" id)" >"$RUN_DIR/after.json"
  log "$storage/$n: database after GC: $(cat "$RUN_DIR/after.json")"

  local objects_after
  objects_after=$(settled_objects "$storage" "$(jget "$RUN_DIR/after.json" blob_rows)")
  $SEED verify --base "$base" --state "$st" --keep-every "$KEEP_EVERY" >"$RUN_DIR/verify.json" ||
    die "$storage/$n: surviving artifacts do not pull after GC, or deleted ones still do"
  log "$storage/$n: verified: $(cat "$RUN_DIR/verify.json")"

  # Counts: what was predicted, deleted, left.
  python3 - "$RUN_DIR" "$objects_before" "$objects_after" "$storage" <<'EOF' || die "$storage/$n: GC counts are wrong (see above)"
import json, os, sys
d, ob, oa, storage = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
j = lambda n: json.load(open(os.path.join(d, n + ".json")))
dl, be, af, dry, gc, gc2 = j("delete"), j("before"), j("after"), j("dry"), j("gc"), j("gc2")
bad = []
want_b, want_m = dl["garbage_blobs"], dl["garbage_manifests"]
for name, r in (("dry run", dry["report"]), ("gc", gc["report"])):
    if (r["blobs"], r["manifests"], r["bytes"]) != (want_b, want_m, dl["garbage_bytes"]):
        bad.append(f"{name}: {r['blobs']} blobs, {r['manifests']} manifests, {r['bytes']} bytes; "
                   f"expected {want_b}, {want_m}, {dl['garbage_bytes']}")
if gc2["report"]["blobs"] + gc2["report"]["manifests"] != 0:
    bad.append(f"second gc deleted {gc2['report']}")
if af["blob_rows"] != be["blob_rows"] - want_b - want_m or af["deleting"] != 0:
    bad.append(f"blob rows {be['blob_rows']} -> {af['blob_rows']} ({af['deleting']} deleting), expected -{want_b + want_m}")
kept = dl["kept"]
if af["artifacts"] != kept or af["blob_rows"] != kept * 11:
    bad.append(f"after GC: {af['artifacts']} artifacts, {af['blob_rows']} blob rows; expected {kept}, {kept * 11}")
# Storage holds exactly one object per blob row: before, and after (only the survivors).
if ob != str(be["blob_rows"]) or oa != str(af["blob_rows"]):
    bad.append(f"objects in {storage} storage: {ob} -> {oa}; blob rows {be['blob_rows']} -> {af['blob_rows']}")
for b in bad:
    print("CHECK FAILED:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
  local problems warns errors
  warns=$(grep -c ' WARN' "$RUN_DIR/berth.log" || true)
  errors=$(grep -c ' ERROR' "$RUN_DIR/berth.log" || true)
  problems="$warns/$errors"
  [ "$problems" = 0/0 ] || log "$storage/$n: server log has $warns warn and $errors error lines, e.g.: $(grep -E ' (WARN|ERROR)' "$RUN_DIR/berth.log" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200 | sort -k2 | uniq -f1 -c | head -5)"
  python3 - "$RUN_DIR" "$storage" "$n" "$objects_before -> $objects_after" "$problems" "$busy0/$busy1" >>"$W/results.jsonl" <<'EOF'
import json, os, sys
d = sys.argv[1]
j = lambda n: json.load(open(os.path.join(d, n + ".json")))
after = j("after")
for k in ("dry", "gc"):
    r = j(k)
    jid = f"job_{r['id']}"
    r["phases"] = after.pop(jid, {})
    json.dump(r, open(os.path.join(d, k + ".json"), "w"))
print(json.dumps({"storage": sys.argv[2], "artifacts": int(sys.argv[3]), "seed": j("seed"), "delete": j("delete"),
                  "before": j("before"), "after": after, "dry": j("dry"), "gc": j("gc"), "gc2": j("gc2"),
                  "verify": j("verify"), "storage_objects_after": sys.argv[4],
                  "server_log_problems": sys.argv[5], "compilers": sys.argv[6]}))
EOF
  log "$storage/$n: GC $(jget "$RUN_DIR/gc.json" time wall_s) s wall (dry run $(jget "$RUN_DIR/dry.json" time wall_s) s); storage objects $objects_before -> $objects_after"
  stop_berth
  stop_garage
  if [ "${KEEP:-}" != 1 ]; then
    rm -rf "$RUN_DIR/data/storage" "$RUN_DIR/svc"
  fi
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)
for storage in $GC_BACKENDS; do
  sizes=$GC_SIZES
  [ "$storage" = s3 ] && sizes=$GC_S3_SIZES
  for n in $sizes; do run_one "$storage" "$n"; done
done
RUN_DIR=""

# ------------------------------------------------------------------ report

rev=$(git -C "$repo_root" rev-parse --short HEAD)
dirty=$(git -C "$repo_root" status --porcelain -- server migrations Cargo.toml Cargo.lock | wc -l)
cmd="bench/gc.sh"
for v in GC_SIZES GC_BACKENDS GC_S3_SIZES GC_WORKERS KEEP_EVERY THREADS; do
  case "$v=${!v}" in
    "GC_SIZES=1000 3000 10000" | "GC_BACKENDS=fs s3" | GC_WORKERS=16 | KEEP_EVERY=10 | THREADS=8) ;;
    "GC_S3_SIZES=500 1500") ;;
    *) cmd="$v=\"${!v}\" $cmd" ;;
  esac
done
garage_version=$("$(command -v garage || echo "$HOME/.cargo/bin/garage")" --version 2>/dev/null | head -1 || true)
{
  echo "## Run of $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $(nproc) vCPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 2^20 }' /proc/meminfo) RAM, $(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -sr); /tmp on $(df -T /tmp | awk 'NR == 2 { print $2 }')"
  echo "- berth: git $rev$([ "$dirty" -gt 0 ] && echo " + $dirty uncommitted server/migrations/Cargo files") ($BERTH_BIN, release, built $bin_time$STALE), SQLite, BERTH_LOG__LEVEL=warn, BERTH_GC__WINDOW=0s, BERTH_GC__WORKERS=$GC_WORKERS"
  [[ " $GC_BACKENDS " == *" s3 "* ]] && echo "- S3: ${garage_version:-garage} single node on 127.0.0.1 (scripts/services.sh, sqlite metadata), a fresh one per size"
  echo "- data: N artifacts in library/bench-0..99, each 1 config + 9 layers of 64–512 random bytes + 1 OCI manifest, pushed through /v2 ($THREADS threads); every artifact but each ${KEEP_EVERY}th deleted by digest (DELETE /v2/…/manifests/<digest>), then \`berth gc --dry-run --json\` and \`berth gc --json\` from the server's directory and environment, server running"
  echo "- load average (1/5/15 min) at start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg); wall time of the whole run $(($(date +%s) - T_START)) s"
  echo "- command: \`$cmd\`"
  echo
  python3 "$here/gc_seed.py" report "$W/results.jsonl"
} >"$W/report.md"
cat "$W/report.md"
if [ -n "${RESULTS:-}" ]; then
  out=$RESULTS
elif [ "$cmd" = bench/gc.sh ]; then
  out=$here/GC-RESULTS.md
else
  out=""
  log "non-default sizes/backends: report not written to bench/GC-RESULTS.md (set RESULTS=FILE)"
fi
if [ -n "$out" ]; then
  { echo "# Garbage collection at scale (bench/gc.sh)"; echo; cat "$W/report.md"; } >"$out"
  log "report written to $out"
fi
cp "$W/results.jsonl" /tmp/berth-gc-bench-last.jsonl # raw numbers of the last run
log "done"

#!/usr/bin/env bash
# The cost of project storage quotas (server/src/quota.rs): 16 concurrent pushers into one
# project with a quota versus without, in one run, and pushers at the edge of a quota.
#
#   bench/quota.sh                 builds berth (release, `cargo build --release -p server` into
#                                  $CARGO_TARGET_DIR), runs everything, writes bench/QUOTA-RESULTS.md
#   SKIP_BUILD=1 REPS=1 IMAGES=3 QUOTA_DBS=sqlite bench/quota.sh     smoke run (~1 min)
#
# Environment:
#   SKIP_BUILD=1      use the existing binary        BERTH_BIN   default $CARGO_TARGET_DIR/release/berth
#   CARGO_TARGET_DIR  default ~/.cache/berth/target  REPS        alternations quota/none per database (3)
#   QUOTA_DBS         "sqlite postgres" (default)    PUSHERS     concurrent pushers (16)
#   IMAGES            images per pusher (20)         LAYERS      layers per image (4)
#   LAYER_BYTES       bytes per layer (65536)        KEEP=1      keep the work directory
#   RESULTS=FILE      the report (default bench/QUOTA-RESULTS.md; "-" for stdout only)
#
# What is measured, per database (SQLite file; PostgreSQL 15 started here by
# scripts/services.sh on 127.0.0.1, a new database for every run):
#   1. Throughput. REPS alternations of two runs, the order swapped every time, each on a freshly
#      started berth (release, filesystem storage, BERTH_LOG__LEVEL=warn, its own empty working
#      directory and database): the admin creates project `bench` with `storage_limit` 1 PiB
#      ("quota": every push is charged AND checked against the limit) or -1 ("none": unlimited,
#      no check); then bench/quota_push.py runs PUSHERS threads, each pushing IMAGES images of
#      LAYERS random layers + config (monolithic blob POSTs) + manifest PUT into bench/w<i>,
#      all starting together. Requests/s and MB/s from the slowest pusher's wall time; medians.
#      The quota must cost < 10 % of throughput (issue 22).
#   2. The edge. One more run per database with the limit set to half of what the pushers send:
#      pushers stop at their first 412; the report gives the limit, the usage afterwards (from
#      GET /api/v2.0/quotas), by how much it is over (bounded by the pushes in flight: at most
#      PUSHERS - 1 images) and the first refusal's message. Fails (exit 1) beyond the bound.
# Every process started here is stopped by PID on exit (PostgreSQL by scripts/services.sh
# stop); the work directory is removed unless KEEP=1.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" # log, die, alive, stop_berth, prepare_berth, free_port
repo_root=$(cd "$here/.." && pwd)
REPS=${REPS:-3}
QUOTA_DBS=${QUOTA_DBS:-sqlite postgres}
PUSHERS=${PUSHERS:-16}
IMAGES=${IMAGES:-20}
LAYERS=${LAYERS:-4}
LAYER_BYTES=${LAYER_BYTES:-65536}
RESULTS=${RESULTS:-$here/QUOTA-RESULTS.md}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/berth/target}
BERTH_BIN=${BERTH_BIN:-$CARGO_TARGET_DIR/release/berth}
export PYTHONDONTWRITEBYTECODE=1
DRIVER="python3 $here/quota_push.py"
AUTH=admin:Harbor12345
PIB=$((1 << 50))

for d in $QUOTA_DBS; do
  case "$d" in sqlite | postgres) ;; *) die "QUOTA_DBS: sqlite and/or postgres (got $d)" ;; esac
done

W=$(mktemp -d /tmp/berth-quota-bench.XXXXXX)
BERTH_PID=""
PG_UP=""
cleanup() {
  local rc=$?
  set +e
  stop_berth
  [ -n "$PG_UP" ] && "$repo_root/scripts/services.sh" stop "$W/svc" >/dev/null 2>&1
  if [ "${KEEP:-0}" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
  exit $rc
}
trap cleanup EXIT INT TERM

prepare_berth "$W"

PORT=$(free_port)
BASE=http://127.0.0.1:$PORT

if [[ " $QUOTA_DBS " == *" postgres "* ]]; then
  # PostgreSQL runs as its own user: it must be able to reach its directory.
  mkdir -p "$W/svc" && chmod 755 "$W" "$W/svc"
  log "starting PostgreSQL"
  PG_UP=1
  pg_env=$("$repo_root/scripts/services.sh" start postgres "$W/svc") || die "PostgreSQL did not start"
  eval "$pg_env"
  PG_URL=${TEST_BERTH_POSTGRES_URL:?PostgreSQL did not start}
fi

UNSET_BERTH=()
for v in $(compgen -e); do [[ $v == BERTH_* ]] && UNSET_BERTH+=(-u "$v"); done
RUN=0
# start_berth DB: a fresh working directory (and database) and a fresh process.
start_berth() {
  local db=$1 i url
  RUN=$((RUN + 1))
  local dir=$W/run$RUN
  mkdir -p "$dir"
  if [ "$db" = postgres ]; then
    psql -q "$PG_URL" -c "CREATE DATABASE quota_bench_$RUN" >/dev/null
    url=${PG_URL%/*}/quota_bench_$RUN
  else
    url=sqlite://$dir/berth.db
  fi
  (cd "$dir" && exec env "${UNSET_BERTH[@]}" BERTH_LISTEN="127.0.0.1:$PORT" BERTH_EXTERNAL_URL="$BASE" \
    BERTH_LOG__LEVEL=warn BERTH_DATABASE__URL="$url" BERTH_STORAGE__PATH="$dir/storage" \
    "$W/berth" >>"$dir/berth.log" 2>&1 </dev/null) &
  BERTH_PID=$!
  for ((i = 0; i < 600; i++)); do
    alive "$BERTH_PID" || die "berth exited at start: $(tail -n 5 "$dir/berth.log")"
    [ "$(curl -fsS "$BASE/api/v2.0/ping" 2>/dev/null)" = Pong ] && return 0
    sleep 0.1
  done
  die "berth did not answer Pong in 60 s"
}

create_project() { # LIMIT
  local code
  code=$(curl -sS -o "$W/create.out" -w '%{http_code}' -u "$AUTH" -H 'content-type: application/json' \
    -d "{\"project_name\":\"bench\",\"storage_limit\":$1}" "$BASE/api/v2.0/projects")
  [ "$code" = 201 ] || die "creating the project: $code $(cat "$W/create.out")"
}

used_of_bench() {
  curl -fsS -u "$AUTH" "$BASE/api/v2.0/projects/bench/summary" | python3 -c 'import json,sys; print(json.load(sys.stdin)["quota"]["used"]["storage"])'
}

: >"$W/results.jsonl"
push_args=(--base "$BASE" --project bench --pushers "$PUSHERS" --images "$IMAGES" --layers "$LAYERS" --layer-bytes "$LAYER_BYTES")

for db in $QUOTA_DBS; do
  for ((rep = 1; rep <= REPS; rep++)); do
    if ((rep % 2)); then order="quota none"; else order="none quota"; fi
    for mode in $order; do
      start_berth "$db"
      if [ "$mode" = quota ]; then create_project "$PIB"; else create_project -1; fi
      sync
      log "$db rep $rep: $mode"
      out=$($DRIVER push "${push_args[@]}" --seed "$RUN") || die "pushers failed ($db $mode)"
      [ "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["refused"])' "$out")" = 0 ] ||
        die "a push was refused without a limit in reach: $out"
      used=$(used_of_bench)
      python3 - "$out" "$db" "$mode" "$used" >>"$W/results.jsonl" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); r.update(kind="run", db=sys.argv[2], mode=sys.argv[3], used=int(sys.argv[4]))
print(json.dumps(r))
PY
      log "  $(tail -n 1 "$W/results.jsonl")"
      stop_berth
    done
  done
  # The edge: a limit of half what the pushers send.
  image_bytes=$((LAYERS * LAYER_BYTES + 1200))
  total=$((PUSHERS * IMAGES * image_bytes))
  limit=$((total / 2))
  start_berth "$db"
  create_project "$limit"
  log "$db edge: limit $limit of ~$total bytes"
  out=$($DRIVER push "${push_args[@]}" --seed "$RUN") || die "pushers failed ($db edge)"
  used=$(used_of_bench)
  python3 - "$out" "$db" "$limit" "$used" "$image_bytes" "$PUSHERS" >>"$W/results.jsonl" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
limit, used, image, pushers = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
r.update(kind="edge", db=sys.argv[2], limit=limit, used=used, image_bytes=image)
if r["refused"] == 0:
    sys.exit("the edge run was never refused")
if used > limit + (pushers - 1) * image:
    sys.exit(f"over the limit by more than the pushes in flight: used {used}, limit {limit}")
print(json.dumps(r))
PY
  log "  $(tail -n 1 "$W/results.jsonl")"
  stop_berth
done

{
  echo "# Quota benchmark (bench/quota.sh)"
  echo
  echo "- $(date -u +%Y-%m-%dT%H:%MZ), berth git $(cd "$repo_root" && git rev-parse --short HEAD), binary $BERTH_BIN, filesystem storage, BERTH_LOG__LEVEL=warn"
  echo "- $PUSHERS concurrent pushers x $IMAGES images x ($LAYERS layers of $LAYER_BYTES random bytes + config + manifest), monolithic blob POSTs, HTTP Basic; REPS=$REPS alternations, fresh process and store per run"
  echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), shared with other work"
  echo '- "quota": limit 1 PiB (every blob charged and checked); "none": limit -1 (charged into the ledger, never checked). The pushers (python3, same machine) share the 2 cores with the server, so these are end-to-end figures, not the server'\''s ceiling; differences under ~5 % are within the spread of the samples.'
  echo
  $DRIVER report "$W/results.jsonl"
  echo
  echo "Raw results (JSON lines):"
  echo
  echo '```'
  cat "$W/results.jsonl"
  echo '```'
} >"$W/report.md"
cat "$W/report.md"
if [ "$RESULTS" != - ]; then cp "$W/report.md" "$RESULTS"; log "wrote $RESULTS"; fi

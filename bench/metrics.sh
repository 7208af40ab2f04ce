#!/usr/bin/env bash
# What Prometheus metrics and webhooks cost (server/src/metrics.rs, server/src/webhook): push
# throughput and manifest GET rate with both on versus off, in one run, alternating, on SQLite.
#
#   bench/metrics.sh              builds berth (release), runs, writes bench/METRICS-RESULTS.md
#   SKIP_BUILD=1 REPS=1 WRK_DURATION=3s IMAGES=3 RESULTS=- bench/metrics.sh     smoke (~1 min)
#
# Environment:
#   SKIP_BUILD=1   use the existing binary        BERTH_BIN   default $CARGO_TARGET_DIR/release/berth
#   REPS           alternations (3)               PUSHERS / IMAGES   pushers and images each (8 / 40)
#   LAYER_BYTES    size of each of the 4 layers (65536: small images, the most events per byte)
#   MODES          the configurations compared, in this order on odd alternations ("off on pulls")
#   WRK_DURATION   manifest GET load (10s)        KEEP=1      keep the work directory
#   RESULTS=FILE   the report (default bench/METRICS-RESULTS.md; "-" for stdout only)
#
# Each run: a freshly started berth (release, SQLite, filesystem storage, BERTH_LOG__LEVEL=warn, an
# empty working directory). `off`: metrics and webhooks off. `on`: metrics on (`metric.enabled`, on
# the main listener, scraped once a second by a curl loop as Prometheus would) and a webhook policy
# on project `bench` for every event type but pulls (a CI's), delivering to webhook_receiver.py on
# 127.0.0.1. `pulls`: the same policy also subscribed to PULL_ARTIFACT (every manifest GET is a
# delivery: the worst case). `metrics`: metrics on, no webhook policy (to tell the two apart). 1. bench/quota_push.py pushes PUSHERS x IMAGES
# images (4 random 64 KiB layers + config + manifest, monolithic blob POSTs, HTTP Basic) into
# project `bench`: requests/s from the slowest pusher. 2. wrk -t2 -c32 GETs one pushed manifest by
# tag with a bearer token (2 s warm-up first): requests/s and p99. Medians over REPS; the issue's
# target: the cost of `on` < 5 %. The webhook executions each run made and delivered are recorded.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" # log, die, alive, stop_berth, prepare_berth, free_port
repo_root=$(cd "$here/.." && pwd)
REPS=${REPS:-3}
PUSHERS=${PUSHERS:-8}
IMAGES=${IMAGES:-40}
LAYER_BYTES=${LAYER_BYTES:-65536}
WRK_DURATION=${WRK_DURATION:-10s}
RESULTS=${RESULTS:-$here/METRICS-RESULTS.md}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/berth/target}
BERTH_BIN=${BERTH_BIN:-$CARGO_TARGET_DIR/release/berth}
export PYTHONDONTWRITEBYTECODE=1
AUTH=admin:Harbor12345

W=$(mktemp -d /tmp/berth-metrics-bench.XXXXXX)
BERTH_PID="" SCRAPER="" RECEIVER=""
MODES=${MODES:-off on pulls}
cleanup() {
  local rc=$?
  set +e
  [ -n "$SCRAPER" ] && kill "$SCRAPER" 2>/dev/null
  [ -n "$RECEIVER" ] && kill "$RECEIVER" 2>/dev/null
  stop_berth
  if [ "${KEEP:-0}" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
  exit $rc
}
trap cleanup EXIT INT TERM

prepare_berth "$W"
PORT=$(free_port) HOOK_PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
python3 "$repo_root/end2end/registry/webhook_receiver.py" "$HOOK_PORT" /dev/null "$W/never" &
RECEIVER=$!
UNSET_BERTH=()
for v in $(compgen -e); do [[ $v == BERTH_* ]] && UNSET_BERTH+=(-u "$v"); done

RUN=0
start_berth() { # off|on|pulls
  local i dir
  RUN=$((RUN + 1))
  dir=$W/run$RUN
  mkdir -p "$dir"
  (cd "$dir" && exec env "${UNSET_BERTH[@]}" BERTH_LISTEN="127.0.0.1:$PORT" BERTH_EXTERNAL_URL="$BASE" \
    BERTH_LOG__LEVEL=warn BERTH_DATABASE__URL="sqlite://$dir/berth.db" BERTH_STORAGE__PATH="$dir/storage" \
    BERTH_METRIC__ENABLED=$([ "$1" = off ] && echo false || echo true) "$W/berth" >>"$dir/berth.log" 2>&1 </dev/null) &
  BERTH_PID=$!
  for ((i = 0; i < 600; i++)); do
    alive "$BERTH_PID" || die "berth exited at start: $(tail -n 5 "$dir/berth.log")"
    [ "$(curl -fsS "$BASE/api/v2.0/ping" 2>/dev/null)" = Pong ] && break
    sleep 0.1
  done
  if [ "$1" != off ]; then
    (while sleep 1; do curl -fsS -o /dev/null "$BASE/metrics" || true; done) &
    SCRAPER=$!
  fi
}
# The berth process's CPU time so far (user + system, in clock ticks): the cost per request
# counts only the server, not the clients, the scraper or the receiver on the same cores.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$BERTH_PID/stat"; }
stop_run() {
  [ -n "$SCRAPER" ] && kill "$SCRAPER" 2>/dev/null && wait "$SCRAPER" 2>/dev/null || true
  SCRAPER=""
  stop_berth
}

: >"$W/results.jsonl"
for ((rep = 1; rep <= REPS; rep++)); do
  if ((rep % 2)); then order=$MODES; else order=$(echo "$MODES" | tr ' ' '\n' | tac | xargs); fi
  for mode in $order; do
    start_berth "$mode"
    curl -fsS -u "$AUTH" -H 'content-type: application/json' -d '{"project_name":"bench","metadata":{"public":"false"}}' \
      "$BASE/api/v2.0/projects" >/dev/null
    events='"PUSH_ARTIFACT","DELETE_ARTIFACT","QUOTA_EXCEED","QUOTA_WARNING","REPLICATION","TAG_RETENTION"'
    [ "$mode" = pulls ] && events="$events,\"PULL_ARTIFACT\""
    [ "$mode" = off ] || [ "$mode" = metrics ] || curl -fsS -u "$AUTH" -H 'content-type: application/json' "$BASE/api/v2.0/projects/bench/webhook/policies" \
      -d "{\"name\":\"ci\",\"event_types\":[$events],\"targets\":[{\"type\":\"http\",\"address\":\"http://127.0.0.1:$HOOK_PORT/hook\"}]}"
    sync
    cpu0=$(cpu_ticks)
    push=$(python3 "$here/quota_push.py" push --base "$BASE" --project bench --pushers "$PUSHERS" --images "$IMAGES" \
      --layers 4 --layer-bytes "$LAYER_BYTES" --seed "$RUN") || die "pushers failed ($mode)"
    tok=$(curl -fsS -u "$AUTH" "$BASE/service/token?service=harbor-registry&scope=repository:bench/w0:pull" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    tag=$(curl -fsS -H "Authorization: Bearer $tok" "$BASE/v2/bench/w0/tags/list" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tags"][0])')
    url=$BASE/v2/bench/w0/manifests/$tag
    args=(-t2 -c32 -H "Authorization: Bearer $tok" -H "Accept: application/vnd.oci.image.manifest.v1+json")
    cpu1=$(cpu_ticks)
    wrk "${args[@]}" -d2s "$url" >/dev/null
    cpu2=$(cpu_ticks)
    wrk "${args[@]}" -d"$WRK_DURATION" --latency "$url" >"$W/wrk.txt"
    cpu3=$(cpu_ticks)
    hooks=0 delivered=0
    if [ "$mode" = on ] || [ "$mode" = pulls ]; then
      sleep 1
      total() { curl -fsS -o /dev/null -D - -u "$AUTH" "$BASE/api/v2.0/projects/bench/webhook/policies/1/executions?page_size=1$1" |
        tr -d '\r' | sed -n 's/^[Xx]-[Tt]otal-[Cc]ount: //p'; }
      hooks=$(total "") delivered=$(total "&q=status%3DSuccess")
    fi
    python3 - "$push" "$mode" "$W/wrk.txt" "$hooks" "$delivered" "$((cpu1 - cpu0))" "$((cpu3 - cpu2))" "$(getconf CLK_TCK)" \
      >>"$W/results.jsonl" <<'PY'
import json, re, sys
p = json.loads(sys.argv[1]); w = open(sys.argv[3]).read()
tick_ms = 1000 / int(sys.argv[8])
rps = float(re.search(r"Requests/sec:\s*([\d.]+)", w).group(1))
gets = int(re.search(r"(\d+) requests in", w).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)", w)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", w)
print(json.dumps(dict(mode=sys.argv[2], push_rps=round(p["requests"] / p["seconds"], 1), get_rps=rps, get_p99_ms=p99,
                      get_errors=int(non2xx.group(1)) if non2xx else 0, webhook_events=int(sys.argv[4] or 0),
                      delivered_1s_after=int(sys.argv[5] or 0),
                      push_cpu_ms=round(int(sys.argv[6]) * tick_ms / p["requests"], 3),
                      get_cpu_us=round(int(sys.argv[7]) * tick_ms * 1000 / gets, 1))))
PY
    log "$mode: $(tail -n 1 "$W/results.jsonl")"
    stop_run
  done
done

{
  echo "# Metrics and webhooks benchmark (bench/metrics.sh)"
  echo
  echo "- $(date -u +%Y-%m-%dT%H:%MZ), berth git $(cd "$repo_root" && git rev-parse --short HEAD), release build, SQLite, BERTH_LOG__LEVEL=warn"
  echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), shared with other work; clients on the same cores"
  echo "- $PUSHERS pushers x $IMAGES images (4 layers of $LAYER_BYTES bytes); wrk -t2 -c32 -d$WRK_DURATION manifest GET by tag with a bearer token; metrics scraped every second while on; modes: $MODES (see the script's header)"
  echo
  python3 - "$W/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| mode | push req/s | manifest GET req/s | GET p99 ms | server CPU ms per push request | server CPU µs per GET | samples |")
print("|---|---|---|---|---|---|---|")
med = {}
keys = ("push_rps", "get_rps", "get_p99_ms", "push_cpu_ms", "get_cpu_us")
for mode in [m for m in ("off", "metrics", "on", "pulls") if any(r["mode"] == m for r in rows)]:
    rs = [r for r in rows if r["mode"] == mode]
    med[mode] = {k: statistics.median(r[k] for r in rs) for k in keys}
    m = med[mode]
    print(f"| {mode} | {m['push_rps']:.0f} | {m['get_rps']:.0f} | {m['get_p99_ms']:.2f} | {m['push_cpu_ms']:.3f} | {m['get_cpu_us']:.1f} | {len(rs)} |")
print()
print("Medians. Cost against `off` (negative: cheaper or faster, i.e. noise):")
print()
for mode in [m for m in med if m != "off"]:
    slower = lambda k: 100 * (1 - med[mode][k] / med["off"][k])
    dearer = lambda k: 100 * (med[mode][k] / med["off"][k] - 1)
    print(f"- `{mode}`: push rate {slower('push_rps'):+.1f} %, manifest GET rate {slower('get_rps'):+.1f} %; "
          f"server CPU per push request {dearer('push_cpu_ms'):+.1f} %, per GET {dearer('get_cpu_us'):+.1f} %.")
PY
  echo
  echo '```'
  cat "$W/results.jsonl"
  echo '```'
} >"$W/report.md"
cat "$W/report.md"
if [ "$RESULTS" != - ]; then cp "$W/report.md" "$RESULTS"; log "wrote $RESULTS"; fi

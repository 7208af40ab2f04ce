#!/usr/bin/env bash
# HA benchmark: the same cluster as deploy/test/ha.sh (PostgreSQL, Redis, one shared directory,
# nginx with TLS rendered from deploy/nginx/berth.conf), measured with 1 and with 3 replicas
# behind nginx, then the cost of a replica's death.
#
#   bench/ha.sh        builds berth (release), runs (~3 min), prints a Markdown report on stdout
#                      (progress on stderr); results and their reading live in bench/HA-RESULTS.md
#
# Environment: SKIP_BUILD=1 (use BERTH_BIN as is), BERTH_BIN (default
# $CARGO_TARGET_DIR/release/berth), BLOB_MIB (size of the pulled blob, 256), PULL_CLIENTS (4),
# WRK_DURATION (10s), KEEP=1 (keep the work directory), OUT=FILE (also write the report there).
#
# Measured, for upstream = 1 replica and upstream = 3 replicas (all 3 always running):
#   1. aggregate pull throughput: PULL_CLIENTS concurrent curl GETs of a BLOB_MIB blob through
#      nginx (TLS), median of 3 rounds: total bytes / wall time.
#   2. manifest GET rate by tag: wrk -t2 -c32 with Basic auth through nginx (TLS), after a 2 s
#      warm-up: requests/s and p99.
#   3. (3 replicas) kill -9 of one replica while 6 clients download the blob (rate-limited to
#      ~4 s per download, so they are in flight) and 4 threads loop over a manifest GET, a REST
#      call and a token request (deploy/test/ha_tool.py probe, as in the HA test): which
#      requests failed, and the time from the kill to the first complete retry of a download cut
#      by it (each client retries at once).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" # log, die, alive, stop_berth
ROOT=$(cd "$here/.." && pwd)
. "$ROOT/scripts/lib.sh" # ensure_apt, CARGO_TARGET_DIR
BERTH_BIN=${BERTH_BIN:-$CARGO_TARGET_DIR/release/berth}
BLOB_MIB=${BLOB_MIB:-256}
PULL_CLIENTS=${PULL_CLIENTS:-4}
WRK_DURATION=${WRK_DURATION:-10s}
ADMIN_USER=admin
ADMIN_PASS=Harbor12345
M=(python3 "$here/ha_measure.py")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
now() { date +%s.%N; }

ensure_apt nginx openssl wrk curl postgresql redis-server python3
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building berth (release)"
  (cd "$ROOT" && cargo build -q --release -p server >&2)
fi
[ -x "$BERTH_BIN" ] || die "no berth binary at $BERTH_BIN"

W=$(mktemp -d /tmp/berth-ha-bench.XXXXXX)
chmod 755 "$W"
cleanup() {
  set +e
  for f in "$W"/r?/pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null; done
  for d in "$W"/nginx-*; do [ -d "$d" ] && "$ROOT/deploy/test/nginx.sh" stop "$d"; done
  "$ROOT/scripts/services.sh" stop "$W/svc" >/dev/null 2>&1
  if [ "${KEEP:-0}" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
cp "$BERTH_BIN" "$W/berth"

eval "$("$ROOT/scripts/services.sh" start postgres "$W/svc")"
eval "$("$ROOT/scripts/services.sh" start redis "$W/svc")"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=berth-ha-bench" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$W/tls.key" -out "$W/tls.crt" >/dev/null 2>&1
CA=$W/tls.crt
LB_PORT=$(free_port)
LB=https://127.0.0.1:$LB_PORT
declare -A RPORT=()
for i in 1 2 3; do RPORT[$i]=$(free_port); done

start_replica() { # I
  local i=$1 d=$W/r$1
  mkdir -p "$d"
  (
    cd "$d"
    # Only the variables below configure the replica (BERTH_BIN of the caller would be read as
    # a config key and refused).
    for v in $(compgen -e | grep '^BERTH_' || true); do unset "$v"; done
    export BERTH_LISTEN=127.0.0.1:${RPORT[$i]} BERTH_EXTERNAL_URL=$LB BERTH_TRUSTED_PROXIES='["127.0.0.1"]'
    export BERTH_DATABASE__URL=$TEST_BERTH_POSTGRES_URL BERTH_REDIS__URL=$TEST_BERTH_REDIS_URL
    export BERTH_STORAGE__KIND=filesystem BERTH_STORAGE__PATH=$W/storage BERTH_LOG__LEVEL=warn
    export BERTH_LOG__FORMAT=json BERTH_PORTAL__SITE_ROOT=$W/site
    exec "$W/berth" --config "$ROOT/deploy/berth-ha.example.toml" serve >>"$d/berth.log" 2>&1
  ) &
  echo $! >"$d/pid"
  disown $!
}
healthy() { # I
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${RPORT[$1]}/api/v2.0/health")" = 200 ] && return 0
    sleep 0.1
  done
  die "replica r$1 not healthy: $(tail -3 "$W/r$1/berth.log")"
}
mkdir -p "$W/site/pkg" "$W/storage"
for i in 1 2 3; do start_replica "$i"; done
for i in 1 2 3; do healthy "$i"; done
log "3 replicas up on ${RPORT[*]}"

log "seeding library/ha-bench:v1 (one $BLOB_MIB MiB layer) through r1"
"${M[@]}" seed "http://127.0.0.1:${RPORT[1]}" "$ADMIN_USER" "$ADMIN_PASS" library/ha-bench $((BLOB_MIB << 20)) "$W/seed.json"
LAYER=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layer"])' "$W/seed.json")
BLOB_PATH=/v2/library/ha-bench/blobs/$LAYER
MANIFEST_PATH=/v2/library/ha-bench/manifests/v1
AUTH="Authorization: Basic $(printf '%s:%s' "$ADMIN_USER" "$ADMIN_PASS" | base64)"

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

declare -A RES=()
measure() { # N (replicas in the upstream)
  local n=$1 d ups=() i round t0 t1 total mbps=()
  d=$W/nginx-$n
  for i in $(seq "$n"); do ups+=("127.0.0.1:${RPORT[$i]}"); done
  "$ROOT/deploy/test/nginx.sh" start "$d" "127.0.0.1:$LB_PORT" "$CA" "$W/tls.key" "${ups[@]}"
  curl -sf --cacert "$CA" -o /dev/null -H "$AUTH" "$LB$MANIFEST_PATH" || die "no manifest through nginx ($n)"
  for round in 1 2 3; do
    t0=$(now)
    for i in $(seq "$PULL_CLIENTS"); do
      curl -sf --cacert "$CA" -H "$AUTH" -o /dev/null -w '%{size_download}\n' "$LB$BLOB_PATH" >"$W/pull-$n-$round-$i" &
    done
    wait
    t1=$(now)
    total=$(cat "$W"/pull-"$n"-"$round"-* | awk '{ s += $1 } END { print s }')
    [ "$total" = $((PULL_CLIENTS * (BLOB_MIB << 20))) ] || die "pull round $round with $n replicas got $total bytes"
    mbps+=("$(awk -v b="$total" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.0f", b / 1e6 / (c - a) }')")
  done
  RES[pull_$n]=$(printf '%s\n' "${mbps[@]}" | median)
  RES[pull_samples_$n]="${mbps[*]}"
  log "$n replica(s): aggregate pull ${RES[pull_$n]} MB/s (${mbps[*]})"
  wrk -t2 -c32 -d2s -H "$AUTH" -H "Accept: application/vnd.oci.image.manifest.v1+json" "$LB$MANIFEST_PATH" >/dev/null
  wrk -t2 -c32 -d"$WRK_DURATION" --latency -H "$AUTH" -H "Accept: application/vnd.oci.image.manifest.v1+json" \
    "$LB$MANIFEST_PATH" >"$W/wrk-$n.txt"
  grep -q "Non-2xx" "$W/wrk-$n.txt" && die "wrk saw non-2xx answers with $n replicas: $(cat "$W/wrk-$n.txt")"
  RES[rps_$n]=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' "$W/wrk-$n.txt")
  RES[p99_$n]=$(awk '$1 == "99%" { print $2 }' "$W/wrk-$n.txt")
  log "$n replica(s): manifest GET ${RES[rps_$n]} req/s, p99 ${RES[p99_$n]}"
  # Which replicas answered (nginx's access log names the upstream of every request).
  RES[spread_$n]=$(grep -o 'upstream=[0-9.:]*' "$d/access.log" | sort | uniq -c | awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $1 }')
  "$ROOT/deploy/test/nginx.sh" stop "$d"
}

measure 1
measure 3

log "kill -9 of r2 while 6 downloads and 4 probe loops (manifest, REST, token) run through nginx (3 replicas)"
d=$W/nginx-kill
"$ROOT/deploy/test/nginx.sh" start "$d" "127.0.0.1:$LB_PORT" "$CA" "$W/tls.key" \
  "127.0.0.1:${RPORT[1]}" "127.0.0.1:${RPORT[2]}" "127.0.0.1:${RPORT[3]}"
rm -f "$W/stop" "$W/killed_at"
# The HA test's probe: 4 threads over a manifest GET, a REST call and a token request.
python3 "$ROOT/deploy/test/ha_tool.py" probe --base "$LB" --cacert "$CA" --creds "$ADMIN_USER:$ADMIN_PASS" \
  --repo library/ha-bench --tag v1 --out "$W/probe.jsonl" --stop "$W/stop" --threads 4 &
probe_pid=$!
# ~4 s per download: all six are in flight when r2 dies 1.5 s in.
"${M[@]}" retry "$LB" "$CA" "$ADMIN_USER" "$ADMIN_PASS" "$BLOB_PATH" "$W/killed_at" "$W/retry.json" \
  --clients 6 --limit $(((BLOB_MIB << 20) / 4)) &
retry_pid=$!
sleep 1.5
kill -KILL "$(cat "$W/r2/pid")"
now >"$W/killed_at"
wait "$retry_pid" || die "the download clients failed"
sleep 2
touch "$W/stop"
wait "$probe_pid"
kill_report=$("${M[@]}" kill-report "$W/probe.jsonl" "$W/retry.json" "$(cat "$W/killed_at")") \
  || die "clients did not recover after the kill: $kill_report"
log "$kill_report"
"$ROOT/deploy/test/nginx.sh" stop "$d"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
report() {
  echo "### Run of $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $(nproc) vCPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(. /etc/os-release && echo "$PRETTY_NAME"); load average at start: $LOAD_START; wall time $(($(date +%s) - T_START)) s"
  echo "- berth: git $(git -C "$ROOT" rev-parse --short HEAD) ($BERTH_BIN, release), 3 replicas on PostgreSQL $(psql -qAt "$TEST_BERTH_POSTGRES_URL" -c 'SHOW server_version' 2>/dev/null), Redis, one shared directory; $(nginx -v 2>&1 | sed 's/.*: //') from deploy/nginx/berth.conf (TLS, 2 workers); everything on these $(nproc) cores"
  echo "- command: \`bench/ha.sh\` (BLOB_MIB=$BLOB_MIB, PULL_CLIENTS=$PULL_CLIENTS, WRK_DURATION=$WRK_DURATION)"
  echo
  echo "| metric | 1 replica | 3 replicas | 3 / 1 |"
  echo "| --- | ---: | ---: | ---: |"
  echo "| aggregate pull, $PULL_CLIENTS × $BLOB_MIB MiB blob GETs through nginx TLS (median of 3) | ${RES[pull_1]} MB/s | ${RES[pull_3]} MB/s | $(ratio "${RES[pull_3]}" "${RES[pull_1]}") |"
  echo "| … samples | ${RES[pull_samples_1]} | ${RES[pull_samples_3]} | |"
  echo "| manifest GET by tag, wrk -c32 through nginx TLS, $WRK_DURATION | ${RES[rps_1]} req/s | ${RES[rps_3]} req/s | $(ratio "${RES[rps_3]}" "${RES[rps_1]}") |"
  echo "| manifest GET p99 | ${RES[p99_1]} | ${RES[p99_3]} | |"
  echo "| requests per replica (nginx access log) | ${RES[spread_1]} | ${RES[spread_3]} | |"
  echo
  echo "kill -9 of one of 3 replicas:"
  echo
  echo '```'
  printf '%s\n' "$kill_report"
  echo '```'
}
report | tee ${OUT:+"$OUT"}

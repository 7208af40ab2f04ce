#!/usr/bin/env bash
# Prometheus metrics with a real Prometheus: starts berth (BERTH_BIN) with `metric.enabled` on a
# port of its own and Prometheus (Debian's package, installed when missing) scraping it every
# second, both on free 127.0.0.1 ports with their own directories; skopeo pushes m1/app:v1; then
# Prometheus' query API must show the push (`berth_http_requests_total` for registry PUTs 201,
# `berth_registry_bytes_received_total`), Harbor's exporter names for the project
# (`harbor_project_repo_total`, `harbor_project_quota_usage_byte`) and the target up. Checks the
# main listener does not serve the metrics path when a port is set. Stops both by PID.
#   end2end/registry/metrics.sh BERTH_BIN
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
if ! command -v prometheus >/dev/null; then
  echo "metrics.sh: installing prometheus (Debian package)" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >&2
fi
work=$(mktemp -d /tmp/bmetrics.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
port=$(free_port) mport=$(free_port) pport=$(free_port)
cleanup() {
  for p in berth prometheus; do
    [ -f "$work/$p.pid" ] && kill "$(cat "$work/$p.pid")" 2>/dev/null || true
  done
  if [ "${KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
mkdir -p "$work/server" "$work/prom"
(cd "$work/server" && BERTH_LISTEN=127.0.0.1:$port BERTH_EXTERNAL_URL=http://127.0.0.1:$port BERTH_LOG__LEVEL=warn \
  BERTH_METRIC__ENABLED=true BERTH_METRIC__PORT=$mport exec "$bin" >"$work/berth.log" 2>&1) &
echo $! >"$work/berth.pid"
for _ in $(seq 150); do
  curl -fsS "http://127.0.0.1:$port/api/v2.0/ping" >/dev/null 2>&1 && break
  sleep 0.2
done
cat >"$work/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: berth
    static_configs:
      - targets: ["127.0.0.1:$mport"]
EOF
prometheus --config.file="$work/prom/prometheus.yml" --storage.tsdb.path="$work/prom/data" \
  --web.listen-address="127.0.0.1:$pport" >"$work/prometheus.log" 2>&1 &
echo $! >"$work/prometheus.pid"
R=127.0.0.1:$port A=admin:${BERTH_ADMIN_PASSWORD:-Harbor12345}
failed=0
ok() { printf 'ok   %s\n' "$*"; }
bad() { printf 'FAIL %s\n' "$*"; failed=1; }
# query EXPR → the first sample's value, or empty
query() {
  curl -fsS --get "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null || true
}
# wait_for EXPR: up to 30 s for a non-empty, non-zero, numeric answer
wait_for() {
  local v
  for _ in $(seq 60); do
    v=$(query "$1")
    if [ -n "$v" ] && [ "$v" != 0 ] && [ "$v" != NaN ]; then echo "$v"; return 0; fi
    sleep 0.5
  done
  return 1
}

code=$(curl -s -o /dev/null -w '%{http_code}' "http://$R/metrics")
[ "$code" = 404 ] && ok "the main listener does not serve /metrics when metric.port is set" || bad "main listener /metrics: $code"
curl -fsS -u "$A" -H 'content-type: application/json' -X POST "http://$R/api/v2.0/projects" -d '{"project_name":"m1"}' >/dev/null
python3 "$here/mkimage.py" image "$work/img" --layers 1 --layer-size 64K --tag v1 >/dev/null
skopeo --override-os linux copy --quiet --dest-tls-verify=false --dest-creds "$A" "oci:$work/img:v1" "docker://$R/m1/app:v1" &&
  ok "skopeo pushed m1/app:v1" || bad "skopeo push"
if v=$(wait_for 'up{job="berth"}'); then ok "Prometheus scrapes berth (up = $v)"; else bad "the target is not up: $(tail -3 "$work/prometheus.log")"; fi
if v=$(wait_for 'sum(berth_http_requests_total{surface="registry",method="PUT",status="201"})'); then
  ok "registry PUTs answered 201: $v"
else bad "no registry PUT in Prometheus"; fi
if v=$(wait_for 'berth_registry_bytes_received_total'); then
  [ "${v%.*}" -ge 65536 ] && ok "bytes received: $v" || bad "bytes received $v < the 64 KiB layer"
else bad "no bytes received in Prometheus"; fi
if v=$(wait_for 'harbor_project_repo_total{project_name="m1"}'); then ok "harbor_project_repo_total{m1} = $v"; else bad "no harbor_project_repo_total for m1"; fi
if v=$(wait_for 'harbor_project_quota_usage_byte{project_name="m1"}'); then
  [ "${v%.*}" -ge 65536 ] && ok "harbor_project_quota_usage_byte{m1} = $v" || bad "quota usage $v < the 64 KiB layer"
else bad "no harbor_project_quota_usage_byte for m1"; fi
if v=$(wait_for 'histogram_quantile(0.99, sum by (le) (berth_http_request_duration_seconds_bucket{surface="registry"}))'); then
  ok "registry p99 latency since start, from the histogram: ${v}s"
else bad "no registry latency histogram"; fi
[ $failed -eq 0 ] || { echo "--- berth log"; tail -20 "$work/berth.log"; echo "--- prometheus log"; tail -20 "$work/prometheus.log"; exit 1; }
echo "all metrics checks passed"

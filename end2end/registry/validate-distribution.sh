#!/usr/bin/env bash
# Validates the client harness against the reference registry (distribution 2.8, htpasswd):
# starts distribution.sh on a free port, runs clients.sh with SKIP_REFERRERS=1 (distribution
# has no referrers API), stops the registry by PID whatever happens.
#   end2end/registry/validate-distribution.sh [WORKDIR]     (default /tmp/berth-e2e-registry)
# TRACE=1 puts traceproxy.py between the clients and the registry and prints, at the end, the
# HTTP requests each step made (also kept in WORKDIR/trace.txt and trace.jsonl).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${1:-/tmp/berth-e2e-registry}
SRV=$WORK-server
USER_=e2e-user
PASS_=e2e-$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

PROXY_PID=""
cleanup() {
  [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
  "$HERE/distribution.sh" stop "$SRV"
}
trap cleanup EXIT

rm -rf "$SRV"
port=$(free_port)
"$HERE/distribution.sh" start "$SRV" "$port" "$USER_" "$PASS_"
target=127.0.0.1:$port
if [ "${TRACE:-0}" = 1 ]; then
  pport=$(free_port)
  python3 "$HERE/traceproxy.py" proxy "$pport" "$port" "$SRV/trace.bin" >"$SRV/traceproxy.log" 2>&1 &
  PROXY_PID=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$pport/v2/" && break
    sleep 0.1
  done
  target=127.0.0.1:$pport
fi

rc=0
STEPS="skopeo podman docker oras oras-delete" SKIP_REFERRERS=1 "$HERE/clients.sh" "$target" "$USER_" "$PASS_" "$WORK" || rc=$?

if [ "${TRACE:-0}" = 1 ]; then
  python3 "$HERE/traceproxy.py" report "$SRV/trace.bin" --steps "$WORK/steps.tsv" \
    --jsonl "$WORK/trace.jsonl" >"$WORK/trace.txt" || true
  echo "request trace: $WORK/trace.txt ($(grep -c ' c[0-9]' "$WORK/trace.txt" || true) requests)"
fi
echo "distribution log: $SRV/registry.log"
exit $rc

#!/usr/bin/env bash
# Runs the permission-matrix test (rbac.sh: token service, RBAC, robots, audit log, with skopeo,
# podman and docker) against a freshly started berth on a free 127.0.0.1 port with its own empty
# data directory, then stops it by PID.   end2end/registry/run-rbac.sh <path to berth binary>
# On failure the last 60 lines of the server log are printed and the run directory is kept
# (its path is printed); on success it is removed. BERTH_LOG__LEVEL defaults to warn.
# PRINCIPALS, CLIENTS, CELL_TIMEOUT, AUDIT_WAIT are passed on to rbac.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || { echo "usage: $0 <path to berth binary>" >&2; exit 2; }
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -x "$bin" ] || { echo "run-rbac.sh: $bin is not an executable" >&2; exit 2; }
# Short: podman refuses a runroot (WORKDIR/podman/runroot) longer than 50 characters.
work=$(mktemp -d /tmp/brr.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
pid=""
stop_server() {
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  pid=""
}
rc=1
cleanup() {
  stop_server
  if [ $rc -eq 0 ]; then rm -rf "$work"; else echo "run-rbac.sh: kept $work (server log: $work/berth.log)" >&2; fi
}
trap cleanup EXIT
server_log() { echo "--- last lines of the server log ($work/berth.log)"; tail -n 60 "$work/berth.log"; }

mkdir -p "$work/server"
( cd "$work/server" && BERTH_LISTEN=127.0.0.1:$port BERTH_EXTERNAL_URL=http://127.0.0.1:$port \
    BERTH_LOG__LEVEL=${BERTH_LOG__LEVEL:-warn} exec "$bin" >"$work/berth.log" 2>&1 ) &
pid=$!
up=""
for _ in $(seq 150); do
  kill -0 "$pid" 2>/dev/null || break
  if curl -fsS "http://127.0.0.1:$port/api/v2.0/ping" >/dev/null 2>&1; then up=1; break; fi
  sleep 0.2
done
if [ -z "$up" ]; then
  echo "run-rbac.sh: berth did not answer on http://127.0.0.1:$port/api/v2.0/ping" >&2
  server_log
  exit 1
fi
if "$here/rbac.sh" "127.0.0.1:$port" "$work/c"; then
  rc=0
else
  server_log
  exit 1
fi

#!/usr/bin/env bash
# Runs the real-client registry tests (clients.sh: skopeo, podman, docker, oras, referrers)
# against a freshly started berth on a free 127.0.0.1 port with its own empty data directory,
# then stops it by PID.   end2end/registry/run-berth.sh <path to berth binary> [<path to berth-pull>]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1
[ -n "${2:-}" ] && export PULL_CLIENT=$2
# Short: podman refuses a runroot (WORKDIR/podman/runroot) longer than 50 characters.
work=$(mktemp -d /tmp/bre.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
cleanup() {
  [ -f "$work/berth.pid" ] && kill "$(cat "$work/berth.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/server"
( cd "$work/server" && BERTH_LISTEN=127.0.0.1:$port BERTH_EXTERNAL_URL=http://127.0.0.1:$port \
    BERTH_LOG__LEVEL=warn exec "$bin" >"$work/berth.log" 2>&1 ) &
echo $! >"$work/berth.pid"
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/api/v2.0/ping" >/dev/null 2>&1 && break
  sleep 0.2
done
"$here/clients.sh" "127.0.0.1:$port" admin Harbor12345 "$work/c" \
  || { echo "--- server log"; tail -50 "$work/berth.log"; exit 1; }

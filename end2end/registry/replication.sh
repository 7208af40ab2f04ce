#!/usr/bin/env bash
# Replication and proxy cache against real peers with real clients: two fresh Berth instances
# (A and B, SQLite, each on a free 127.0.0.1 port), a CNCF distribution with htpasswd Basic auth
# (scripts/services.sh start distribution), skopeo, podman and docker (a private dockerd).
# The checks are in replication_check.py (its docstring lists them).
#   end2end/registry/replication.sh <path to berth binary> [steps...]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
bin=$1
shift
STEPS=${*:-push pull event deletion proxy}
WORKDIR=$(mktemp -d /tmp/brp.XXXXXX)
. "$HERE/lib-clients.sh"
e2e_workdir replication
e2e_isolate
echo "{}" >"$REGISTRY_AUTH_FILE"   # podman wants the file to exist (no logins: the proxy project is public)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

pids=()
cleanup() {
  # start_berth runs in $(…), a subshell: its pids come back through a file, not the array.
  [ -f "$WORKDIR/berth.pids" ] && while read -r p; do pids+=("$p"); done <"$WORKDIR/berth.pids"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  "$ROOT/scripts/services.sh" stop "$WORKDIR/dist" >/dev/null 2>&1 || true
  [ -d "$WORKDIR/dockerd" ] && "$ROOT/scripts/dockerd.sh" stop "$WORKDIR/dockerd" >/dev/null 2>&1 || true
  if [ "${KEEP:-}" != 1 ]; then rm -rf "$WORKDIR"; else echo "kept $WORKDIR"; fi
}
trap cleanup EXIT

start_berth() { # NAME → prints the URL
  local name=$1 port
  port=$(free_port)
  mkdir -p "$WORKDIR/$name"
  ( cd "$WORKDIR/$name" && BERTH_LISTEN=127.0.0.1:$port BERTH_EXTERNAL_URL=http://127.0.0.1:$port \
      BERTH_LOG__LEVEL=info exec "$bin" >"$WORKDIR/logs/berth-$name.log" 2>&1 ) &
  echo $! >>"$WORKDIR/berth.pids"
  for _ in $(seq 150); do
    curl -fsS "http://127.0.0.1:$port/api/v2.0/ping" >/dev/null 2>&1 && break
    sleep 0.2
  done
  echo "http://127.0.0.1:$port"
}

A=$(start_berth a)
B=$(start_berth b)
mkdir -p "$WORKDIR/dist"
eval "$("$ROOT/scripts/services.sh" start distribution "$WORKDIR/dist")"
if [[ " $STEPS " == *" proxy "* ]]; then
  eval "$("$ROOT/scripts/dockerd.sh" start "$WORKDIR/dockerd" 2>>"$WORKDIR/logs/dockerd.log")"
  export DOCKER_BIN DOCKER_HOST
fi
SKOPEO_CMD=$(printf '%s\n' "${SKOPEO[@]}")
PODMAN_CMD=$(printf '%s\n' "${PODMAN[@]}")
export SKOPEO_CMD PODMAN_CMD
echo "A=$A B=$B distribution=$TEST_DISTRIBUTION_URL steps: $STEPS"
python3 "$HERE/replication_check.py" --a "$A" --b "$B" --dist "$TEST_DISTRIBUTION_URL" \
  --dist-user "$TEST_DISTRIBUTION_USER" --dist-password "$TEST_DISTRIBUTION_PASSWORD" \
  --workdir "$WORKDIR" --mkimage "$HERE/mkimage.py" --steps "$STEPS" \
  --stop-dist "'$ROOT/scripts/services.sh' stop '$WORKDIR/dist'" || {
  for n in a b; do echo "--- berth $n log (tail)"; tail -40 "$WORKDIR/logs/berth-$n.log"; done
  exit 1
}
e2e_guard_changed && { echo "replication: a client wrote outside WORKDIR" >&2; exit 1; }
echo "replication and proxy cache: all checks passed"

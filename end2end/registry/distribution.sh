#!/usr/bin/env bash
# Runs Debian's docker-registry (CNCF distribution 2.8) as a reference registry on 127.0.0.1:
# the validation target of clients.sh and the peer for benchmarks.
#   end2end/registry/distribution.sh start DIR PORT USER PASS   prints `export REGISTRY=127.0.0.1:PORT`
#   end2end/registry/distribution.sh stop DIR                   stops it by PID, waits for exit
# Under DIR: config.yml, htpasswd (bcrypt), data/ (filesystem storage), registry.log (app log +
# Apache-style access log lines), registry.pid. Deletes are enabled; auth is htpasswd = HTTP Basic.
# Options (environment), used by the benchmark (bench/registry.sh):
#   DIST_BCRYPT_COST=N   bcrypt cost of the htpasswd entry (default: htpasswd's own)
#   DIST_QUIET=1         log level warn and no access log (default: info + access log)
#   DIST_NOAUTH=1        no authentication (then /v2/ answers 200, USER and PASS are ignored)
#   DIST_DATA=DIR        storage root (default DIR/data; lets a second instance serve the same data)
# Distribution reads every REGISTRY_* environment variable as configuration (REGISTRY_AUTH_FILE,
# set for podman, would break it), so the server starts with all of them removed.
set -euo pipefail

usage() { echo "usage: $0 start DIR PORT USER PASS | stop DIR" >&2; exit 2; }

. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/lib.sh"

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

stop() {
  local dir=$1 pid i
  pid=$(cat "$dir/registry.pid" 2>/dev/null || true)
  if alive "$pid"; then
    kill -TERM "$pid"
    for ((i = 0; i < 200; i++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      echo "distribution.sh: registry $pid did not stop in 20 s, killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$dir/registry.pid"
}

start() {
  [ $# -eq 4 ] || usage
  local dir=$1 port=$2 user=$3 pass=$4 pid
  ensure_apt docker-registry apache2-utils curl
  mkdir -p "$dir/data"
  dir=$(cd "$dir" && pwd)
  pid=$(cat "$dir/registry.pid" 2>/dev/null || true)
  if alive "$pid"; then
    echo "distribution.sh: a registry already runs for $dir (pid $pid)" >&2
    exit 1
  fi
  local cost=() level=info quiet=false auth expect=401
  [ -n "${DIST_BCRYPT_COST:-}" ] && cost=(-C "$DIST_BCRYPT_COST")
  [ "${DIST_QUIET:-}" = 1 ] && level=warn quiet=true
  htpasswd -Bbc "${cost[@]}" "$dir/htpasswd" "$user" "$pass" 2>/dev/null
  auth="auth:
  htpasswd:
    realm: berth-e2e
    path: $dir/htpasswd"
  if [ "${DIST_NOAUTH:-}" = 1 ]; then auth="" expect=200; fi
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: $level
  formatter: text
  accesslog:
    disabled: $quiet
storage:
  filesystem:
    rootdirectory: ${DIST_DATA:-$dir/data}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: $(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
  headers:
    X-Content-Type-Options: [nosniff]
$auth
EOF
  local unset_args=() v
  for v in $(compgen -e); do
    [[ $v == REGISTRY_* ]] && unset_args+=(-u "$v")
  done
  setsid env "${unset_args[@]}" docker-registry serve "$dir/config.yml" \
    >"$dir/registry.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/registry.pid"

  local i code=""
  for ((i = 0; i < 300; i++)); do # up to 30 s
    alive "$pid" || break
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" || true)
    [ "$code" = "$expect" ] && break
    sleep 0.1
  done
  if [ "$code" != "$expect" ]; then
    echo "distribution.sh: registry did not answer $expect on http://127.0.0.1:$port/v2/ (got '$code'); log:" >&2
    tail -n 30 "$dir/registry.log" >&2 || true
    stop "$dir"
    exit 1
  fi
  echo "export REGISTRY=127.0.0.1:$port"
}

[ $# -ge 2 ] || usage
case $1 in
  start) shift; start "$@" ;;
  stop) stop "$2" ;;
  *) usage ;;
esac

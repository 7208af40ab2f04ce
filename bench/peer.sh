#!/usr/bin/env bash
# The benchmark peer: Debian's docker-registry (CNCF distribution 2.8) on 127.0.0.1, configured
# like end2end/registry/distribution.sh (filesystem storage, in-memory blob-descriptor cache,
# htpasswd = HTTP Basic auth, deletes enabled) with two differences that make the comparison
# with berth fair:
#   - the bcrypt cost of the htpasswd entry is explicit: BCRYPT_COST (default 5, Apache's
#     htpasswd default and the lowest common setting). distribution verifies the bcrypt hash on
#     every request (no credential cache); berth caches a verified password for 60 s.
#   - logging as quiet as berth's BERTH_LOG__LEVEL=warn: log level warn, access log disabled.
# PEER_NOAUTH=1 starts it without auth (the benchmark's "no credentials" manifest row) and
# PEER_ROOT=DIR points its storage at another instance's data directory.
#
#   bench/peer.sh start DIR PORT USER PASS    starts it, waits for 401 (200 without auth) on /v2/; pid in DIR/registry.pid
#   bench/peer.sh stop DIR                    stops it by PID (TERM, then KILL after 20 s)
# The server process is docker-registry itself (no wrapper process), so DIR/registry.pid can be
# used for /proc/PID/stat and /proc/PID/status.
set -euo pipefail

BCRYPT_COST=${BCRYPT_COST:-5}

usage() { echo "usage: $0 start DIR PORT USER PASS | stop DIR" >&2; exit 2; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

stop() {
  local dir=$1 pid i
  pid=$(cat "$dir/registry.pid" 2>/dev/null || true)
  if alive "$pid"; then
    kill -TERM "$pid"
    for ((i = 0; i < 200; i++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      echo "peer.sh: registry $pid did not stop in 20 s, killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$dir/registry.pid"
}

start() {
  [ $# -eq 4 ] || usage
  local dir=$1 port=$2 user=$3 pass=$4 pid
  command -v docker-registry >/dev/null && command -v htpasswd >/dev/null || {
    echo "peer.sh: needs docker-registry and htpasswd (apt-get install docker-registry apache2-utils)" >&2
    exit 1
  }
  mkdir -p "$dir/data"
  dir=$(cd "$dir" && pwd)
  pid=$(cat "$dir/registry.pid" 2>/dev/null || true)
  if alive "$pid"; then
    echo "peer.sh: a registry already runs for $dir (pid $pid)" >&2
    exit 1
  fi
  htpasswd -Bbc -C "$BCRYPT_COST" "$dir/htpasswd" "$user" "$pass" 2>/dev/null
  local auth="auth:
  htpasswd:
    realm: berth-bench
    path: $dir/htpasswd" expect=401
  if [ "${PEER_NOAUTH:-}" = 1 ]; then auth="" expect=200; fi
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${PEER_ROOT:-$dir/data}
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
  # distribution reads every REGISTRY_* variable as configuration: start it without them.
  local unset_args=() v
  for v in $(compgen -e); do
    [[ $v == REGISTRY_* ]] && unset_args+=(-u "$v")
  done
  env "${unset_args[@]}" docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null &
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
    echo "peer.sh: registry did not answer $expect on http://127.0.0.1:$port/v2/ (got '$code'); log:" >&2
    tail -n 30 "$dir/registry.log" >&2 || true
    stop "$dir"
    exit 1
  fi
}

[ $# -ge 2 ] || usage
case $1 in
  start) shift; start "$@" ;;
  stop) stop "$2" ;;
  *) usage ;;
esac

#!/usr/bin/env bash
# Starts and stops a private Docker engine for client tests; it never runs containers.
#   scripts/dockerd.sh start DIR [extra dockerd flags...]   prints `export DOCKER_HOST=unix://DIR/docker.sock`
#   scripts/dockerd.sh stop DIR                             stops it by PID and waits for it to exit
# Everything it owns lives under DIR: data root (vfs storage), exec root, PID file, socket, log and
# an empty daemon.json (so /etc/docker/daemon.json is not read). It uses no iptables and no bridge,
# so it touches neither the host network nor a system dockerd or its socket. Known leak: dockerd
# writes /etc/docker/key.json whatever its data root is.
# Loopback registries (127.0.0.0/8, localhost) count as insecure (plain http) automatically; pass
# `--insecure-registry HOST:PORT` as an extra flag for any other name.
set -euo pipefail

usage() { echo "usage: $0 start DIR [dockerd flags...] | stop DIR" >&2; exit 2; }

ensure_docker() {
  if ! dpkg-query -W -f='${Status}' docker.io 2>/dev/null | grep -q "install ok installed"; then
    echo "dockerd.sh: installing docker.io" >&2
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends docker.io >&2
  fi
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# dockerd writes DIR/docker.pid itself; DIR/launch.pid is the PID we started (the same process),
# kept so that a dockerd that dies before writing its own file can still be found.
pid_of() {
  local dir=$1 f
  for f in "$dir/docker.pid" "$dir/launch.pid"; do
    if [ -s "$f" ]; then cat "$f"; return 0; fi
  done
  return 0
}

wait_exit() { # PID TIMEOUT_SECONDS
  local pid=$1 i
  for ((i = 0; i < $2 * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  return 1
}

stop() {
  local dir pid cpid
  dir=$(cd "$1" 2>/dev/null && pwd) || { echo "dockerd.sh: no such directory $1" >&2; return 0; }
  pid=$(pid_of "$dir")
  # dockerd supervises its own containerd; remember it in case it outlives dockerd.
  cpid=$(cat "$dir/exec/containerd/containerd.pid" 2>/dev/null || true)
  if alive "$pid"; then
    kill -TERM "$pid"
    if ! wait_exit "$pid" 30; then
      echo "dockerd.sh: dockerd $pid did not stop in 30 s, killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      wait_exit "$pid" 10 || true
    fi
  fi
  if alive "$cpid" && [ "$(cat "/proc/$cpid/comm" 2>/dev/null)" = containerd ]; then
    kill -TERM "$cpid"
    wait_exit "$cpid" 15 || kill -KILL "$cpid" 2>/dev/null || true
  fi
  rm -f "$dir/launch.pid" "$dir/docker.pid" "$dir/docker.sock"
}

start() {
  local dir=$1; shift
  ensure_docker
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local sock=$dir/docker.sock pid
  # A unix socket path must fit in sun_path (108 bytes); containerd's lives deeper under exec/.
  if [ ${#dir} -gt 60 ]; then
    echo "dockerd.sh: DIR path too long for unix sockets (${#dir} > 60 chars): $dir" >&2
    exit 1
  fi
  pid=$(pid_of "$dir")
  if alive "$pid"; then
    echo "dockerd.sh: a dockerd already runs for $dir (pid $pid)" >&2
    exit 1
  fi
  mkdir -p "$dir/data" "$dir/exec" "$dir/cli-config"
  echo '{}' >"$dir/daemon.json"
  rm -f "$sock" "$dir/docker.pid"

  setsid dockerd \
    --config-file "$dir/daemon.json" \
    --data-root "$dir/data" \
    --exec-root "$dir/exec" \
    --pidfile "$dir/docker.pid" \
    -H "unix://$sock" \
    --storage-driver vfs \
    --iptables=false --ip6tables=false --ip-masq=false --bridge=none \
    "$@" >"$dir/dockerd.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/launch.pid"

  local i ok=""
  for ((i = 0; i < 600; i++)); do # up to 60 s
    if ! alive "$pid"; then break; fi
    if [ -S "$sock" ] && DOCKER_CONFIG="$dir/cli-config" docker -H "unix://$sock" info >/dev/null 2>&1; then
      ok=1
      break
    fi
    sleep 0.1
  done
  if [ -z "$ok" ]; then
    echo "dockerd.sh: dockerd did not answer on $sock; last log lines:" >&2
    tail -n 30 "$dir/dockerd.log" >&2 || true
    stop "$dir"
    exit 1
  fi
  echo "export DOCKER_HOST=unix://$sock"
}

[ $# -ge 2 ] || usage
case $1 in
  start) shift; start "$@" ;;
  stop) stop "$2" ;;
  *) usage ;;
esac

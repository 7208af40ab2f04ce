#!/usr/bin/env bash
# A private nginx in front of berth replicas, configured from deploy/nginx/berth.conf itself: only
# the lines marked "# @…" are rewritten (replicas, listen address, server name, logs, certificate),
# so what the HA test and the HA benchmark exercise is the documented configuration.
#
#   deploy/test/nginx.sh start DIR LISTEN CERT KEY REPLICA...   render DIR/berth.conf and
#                                                                DIR/nginx.conf, nginx -t, start
#   deploy/test/nginx.sh stop DIR                                stop it (by PID), wait for exit
#
# LISTEN is host:port (TLS), REPLICA host:port. Logs: DIR/access.log (berth_lb format: which
# replica answered what) and DIR/error.log. Exits non-zero with the reason on stderr.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

render() { # OUT LISTEN CERT KEY DIR REPLICAS
  awk -v replicas="$6" -v listen="$2" -v alog="$5/access.log" -v elog="$5/error.log" \
    -v cert="$3" -v key="$4" '
    /# @replica$/ { if (!done) { n = split(replicas, a, " "); for (i = 1; i <= n; i++) { l = $0; sub(/server +[^ ;]+/, "server " a[i], l); print l } done = 1 } next }
    /# @listen$/ { sub(/listen +[^ ;]+/, "listen " listen) }
    /# @server_name$/ { sub(/server_name +[^;]+/, "server_name 127.0.0.1") }
    /# @access_log$/ { sub(/access_log +[^ ;]+/, "access_log " alog) }
    /# @error_log$/ { sub(/error_log +[^ ;]+/, "error_log " elog) }
    /# @cert$/ { sub(/ssl_certificate +[^;]+/, "ssl_certificate " cert) }
    /# @key$/ { sub(/ssl_certificate_key +[^;]+/, "ssl_certificate_key " key) }
    { print }' "$ROOT/deploy/nginx/berth.conf" >"$1"
  if grep -v '^ *#' "$1" | grep -E '10\.0\.0\.1[0-9]|/etc/nginx/tls|/var/log/nginx|registry\.example\.com' >&2; then
    echo "rendering deploy/nginx/berth.conf left example values (a marker is missing?)" >&2
    exit 1
  fi
}

start() { # DIR LISTEN CERT KEY REPLICA...
  local dir=$1 listen=$2 cert=$3 key=$4
  shift 4
  [ $# -gt 0 ] || { echo "no replica given" >&2; exit 2; }
  mkdir -p "$dir/tmp"
  dir=$(cd "$dir" && pwd)
  render "$dir/berth.conf" "$listen" "$cert" "$key" "$dir" "$*"
  cat >"$dir/nginx.conf" <<EOF
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log notice;
events { worker_connections 1024; }
http {
  default_type application/octet-stream;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  include $dir/berth.conf;
}
EOF
  if ! nginx -t -q -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" >"$dir/test.log" 2>&1; then
    cat "$dir/test.log" >&2
    echo "nginx -t refused the rendered configuration" >&2
    exit 1
  fi
  nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" || { echo "nginx did not start (see $dir/error.log)" >&2; exit 1; }
  for _ in $(seq 50); do [ -s "$dir/nginx.pid" ] && return 0; sleep 0.1; done
  echo "nginx wrote no PID file (see $dir/error.log)" >&2
  exit 1
}

stop() { # DIR
  local f=$1/nginx.pid pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  kill -QUIT "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$f"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop "$2" ;;
  *) echo "usage: $0 start DIR LISTEN CERT KEY REPLICA... | stop DIR" >&2; exit 2 ;;
esac

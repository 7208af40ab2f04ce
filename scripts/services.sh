#!/usr/bin/env bash
# Starts and stops the servers tests need, on 127.0.0.1 only, from this project's own scripts.
#   scripts/services.sh start postgres|redis DIR   prints `export VAR=…` lines to eval
#   scripts/services.sh stop DIR                   stops everything started under DIR (by PID)
# Each server keeps its data, log and PID file under DIR.
set -euo pipefail

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pg_bin() {
  local v
  v=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
  [ -n "$v" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
  echo "/usr/lib/postgresql/$v/bin"
}

# Runs a command as the unprivileged postgres user when we are root (initdb refuses root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  local dir=$1/postgres bin port
  bin=$(pg_bin)
  port=$(free_port)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null
  echo "$port" >"$dir/port"
  echo "export TEST_BERTH_POSTGRES_URL=postgres://postgres@127.0.0.1:$port/postgres"
}

start_redis() {
  local dir=$1/redis port
  port=$(free_port)
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save "" --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  for _ in $(seq 50); do
    redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "export TEST_BERTH_REDIS_URL=redis://127.0.0.1:$port/0"
}

stop_all() {
  local dir=$1
  if [ -f "$dir/postgres/data/postmaster.pid" ]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$dir/postgres/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -f "$dir/redis/redis.pid" ]; then
    kill "$(cat "$dir/redis/redis.pid")" 2>/dev/null || true
  fi
  for pidfile in "$dir"/*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
}

case "${1:-}" in
  start)
    case "${2:-}" in
      postgres) start_postgres "$3" ;;
      redis) start_redis "$3" ;;
      *) echo "usage: $0 start postgres|redis DIR" >&2; exit 2 ;;
    esac ;;
  stop) stop_all "$2" ;;
  *) echo "usage: $0 start postgres|redis DIR | stop DIR" >&2; exit 2 ;;
esac

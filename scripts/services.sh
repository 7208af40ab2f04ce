#!/usr/bin/env bash
# Starts and stops the servers tests need, on 127.0.0.1 only, from this project's own scripts.
#   scripts/services.sh start postgres|redis|garage DIR   prints `export VAR=…` lines to eval
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

# Garage (a real S3-compatible server, from crates.io), single node, one bucket and key.
garage_bin() {
  if command -v garage >/dev/null 2>&1; then command -v garage
  elif [ -x "$HOME/.cargo/bin/garage" ]; then echo "$HOME/.cargo/bin/garage"
  else
    echo "installing garage from crates.io (about 20 minutes on 2 cores, once)" >&2
    cargo install garage --locked --version 2.5.0 >&2
    echo "$HOME/.cargo/bin/garage"
  fi
}

start_garage() {
  local dir=$1/garage bin s3_port rpc_port key secret
  bin=$(garage_bin)
  s3_port=$(free_port)
  rpc_port=$(free_port)
  mkdir -p "$dir/meta" "$dir/data"
  key="GK$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
  secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  cat >"$dir/garage.toml" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(python3 -c 'import secrets; print(secrets.token_hex(32))')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
EOF
  GARAGE_DEFAULT_ACCESS_KEY=$key GARAGE_DEFAULT_SECRET_KEY=$secret GARAGE_DEFAULT_BUCKET=berth \
    RUST_LOG=warn "$bin" -c "$dir/garage.toml" server --single-node --default-bucket \
    >"$dir/garage.log" 2>&1 &
  echo $! >"$dir/garage.pid"
  for _ in $(seq 100); do
    # Any HTTP answer (403 without credentials) means the S3 API is up.
    curl -s -o /dev/null "http://127.0.0.1:$s3_port/" && break
    sleep 0.1
  done
  curl -s -o /dev/null "http://127.0.0.1:$s3_port/" || { cat "$dir/garage.log" >&2; exit 1; }
  echo "export TEST_BERTH_S3_ENDPOINT=http://127.0.0.1:$s3_port TEST_BERTH_S3_REGION=garage TEST_BERTH_S3_BUCKET=berth TEST_BERTH_S3_ACCESS_KEY=$key TEST_BERTH_S3_SECRET_KEY=$secret"
}

stop_all() {
  local dir=$1
  if [ -f "$dir/postgres/data/postmaster.pid" ]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$dir/postgres/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -f "$dir/redis/redis.pid" ]; then
    kill "$(cat "$dir/redis/redis.pid")" 2>/dev/null || true
  fi
  for pidfile in "$dir"/*.pid "$dir"/garage/garage.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
}

case "${1:-}" in
  start)
    case "${2:-}" in
      postgres) start_postgres "$3" ;;
      redis) start_redis "$3" ;;
      garage) start_garage "$3" ;;
      *) echo "usage: $0 start postgres|redis|garage DIR" >&2; exit 2 ;;
    esac ;;
  stop) stop_all "$2" ;;
  *) echo "usage: $0 start postgres|redis DIR | stop DIR" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Starts and stops the servers tests need, on 127.0.0.1 only, from this project's own scripts.
#   scripts/services.sh start postgres|redis|garage|garage3 DIR   prints `export VAR=…` lines to eval
#   scripts/services.sh start distribution|distribution-token DIR   CNCF distribution 2.8 with htpasswd
#                                                  Basic auth / with token auth (scripts/token-server.py)
#   scripts/services.sh start slapd DIR            OpenLDAP with LDAPS, StartTLS and scripts/ldap/seed.ldif
#   scripts/services.sh start oidc DIR             the test OpenID Connect provider (scripts/oidc-provider,
#                                                  npm `oidc-provider`); prints TEST_BERTH_OIDC_* lines
#   scripts/services.sh stop DIR                   stops everything started under DIR (by PID)
#   scripts/services.sh restart postgres|redis DIR [PAUSE]   shutdown (Redis: saving its data), PAUSE
#                                                  seconds down (default 0), start again on the same port
#   scripts/services.sh garage3-node stop|start DIR N   stops (SIGKILL) / starts node N (1-3) of garage3
# Each server keeps its data, log and PID file under DIR.
# garage3 is a 3-node Garage cluster (replication_factor 3, one zone) on 127.0.0.1: it keeps
# serving reads and writes with one node down (quorum 2). TEST_BERTH_S3_ENDPOINT is node 1;
# TEST_BERTH_S3_ENDPOINTS lists the S3 endpoints of nodes 1-3 (space-separated).
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

pg_options() { # DIR PORT
  echo "-c listen_addresses=127.0.0.1 -p $2 -k $1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
}

start_postgres() {
  local dir=$1/postgres bin port
  bin=$(pg_bin)
  port=$(free_port)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
  pg_options "$dir" "$port" >"$dir/options"
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(cat "$dir/options")" start >/dev/null
  echo "$port" >"$dir/port"
  echo "export TEST_BERTH_POSTGRES_URL=postgres://postgres@127.0.0.1:$port/postgres"
}

# Fast shutdown (open sessions are terminated, as in a real restart), PAUSE seconds with the
# server down, then a start with the same data directory, port and options. pg_ctl's own
# `restart` would reuse postmaster.opts too, but starts the server without a log file.
restart_postgres() {
  local dir=$1/postgres pause=${2:-0} bin
  bin=$(pg_bin)
  [ -f "$dir/port" ] || { echo "no PostgreSQL started under $1" >&2; exit 1; }
  [ -f "$dir/options" ] || pg_options "$dir" "$(cat "$dir/port")" >"$dir/options"
  as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
  sleep "$pause"
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(cat "$dir/options")" start >/dev/null
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
  echo "$port" >"$dir/port"
  echo "export TEST_BERTH_REDIS_URL=redis://127.0.0.1:$port/0"
}

# Redis as a production setup runs it (with persistence): SHUTDOWN SAVE writes its data to
# DIR/redis/dump.rdb, PAUSE seconds down, then a start on the same port that loads it back.
restart_redis() {
  local dir=$1/redis pause=${2:-0} port pid
  [ -f "$dir/port" ] || { echo "no Redis started under $1" >&2; exit 1; }
  port=$(cat "$dir/port")
  pid=$(cat "$dir/redis.pid")
  redis-cli -h 127.0.0.1 -p "$port" shutdown save >/dev/null 2>&1 || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  sleep "$pause"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save "" --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  for _ in $(seq 50); do
    redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "Redis did not come back on $port" >&2; exit 1
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

# Garage, 3 nodes on 127.0.0.1 with replication_factor 3 (every object on every node; reads and
# writes need 2 of 3), one bucket and one key. Node N lives in DIR/garage3/nodeN with its own
# run.sh (used again by `garage3-node start`).
start_garage3() {
  local dir=$1/garage3 bin key secret rpc_secret i d s3 rpc ids=() endpoints=() id
  bin=$(garage_bin)
  key="GK$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
  secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  rpc_secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  for i in 1 2 3; do
    d=$dir/node$i
    s3=$(free_port)
    rpc=$(free_port)
    mkdir -p "$d/meta" "$d/data"
    cat >"$d/garage.toml" <<EOF
metadata_dir = "$d/meta"
data_dir = "$d/data"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$rpc_secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"
EOF
    cat >"$d/run.sh" <<EOF
#!/bin/sh
RUST_LOG=warn "$bin" -c "$d/garage.toml" server >>"$d/garage.log" 2>&1 &
echo \$! >"$d/garage.pid"
EOF
    chmod +x "$d/run.sh"
    "$d/run.sh"
    echo "$s3" >"$d/s3_port"
    endpoints+=("http://127.0.0.1:$s3")
  done
  for i in 1 2 3; do
    d=$dir/node$i
    id=""
    for _ in $(seq 100); do
      id=$("$bin" -c "$d/garage.toml" node id -q 2>/dev/null) && [ -n "$id" ] && break
      sleep 0.1
    done
    [ -n "$id" ] || { echo "garage node $i did not start:" >&2; cat "$d/garage.log" >&2; exit 1; }
    ids+=("$id")
  done
  local g=("$bin" -c "$dir/node1/garage.toml")
  for i in 1 2; do "${g[@]}" node connect "${ids[$i]}" >/dev/null; done
  # Roles need every node known to node 1; connections settle within a second or so.
  local ok=""
  for _ in $(seq 100); do
    if "${g[@]}" layout assign -z dc1 -c 1G "${ids[0]%%@*}" "${ids[1]%%@*}" "${ids[2]%%@*}" >"$dir/layout.log" 2>&1; then
      ok=1; break
    fi
    sleep 0.1
  done
  [ -n "$ok" ] || { echo "garage layout assign failed:" >&2; cat "$dir/layout.log" >&2; exit 1; }
  "${g[@]}" layout apply --version 1 >>"$dir/layout.log" 2>&1
  "${g[@]}" key import -n berth --yes "$key" "$secret" >/dev/null
  "${g[@]}" bucket create berth >/dev/null
  "${g[@]}" bucket allow --read --write --owner berth --key "$key" >/dev/null
  # Ready when every node answers S3 requests signed with the key (a list of the bucket).
  for i in 1 2 3; do
    ok=""
    for _ in $(seq 100); do
      if python3 - "${endpoints[$((i - 1))]}" "$key" "$secret" <<'PY' 2>/dev/null; then ok=1; break; fi
import sys, hashlib, hmac, datetime, urllib.request
ep, key, secret = sys.argv[1:4]
now = datetime.datetime.now(datetime.timezone.utc)
amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
host = ep.split("://", 1)[1]
empty = hashlib.sha256(b"").hexdigest()
canon = f"GET\n/berth\nlist-type=2\nhost:{host}\nx-amz-content-sha256:{empty}\nx-amz-date:{amz}\n\nhost;x-amz-content-sha256;x-amz-date\n{empty}"
scope = f"{day}/garage/s3/aws4_request"
sts = f"AWS4-HMAC-SHA256\n{amz}\n{scope}\n" + hashlib.sha256(canon.encode()).hexdigest()
k = ("AWS4" + secret).encode()
for part in (day, "garage", "s3", "aws4_request"):
    k = hmac.new(k, part.encode(), hashlib.sha256).digest()
sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
req = urllib.request.Request(f"{ep}/berth?list-type=2", headers={
    "x-amz-date": amz, "x-amz-content-sha256": empty,
    "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}"})
urllib.request.urlopen(req, timeout=2).read()
PY
      sleep 0.2
    done
    [ -n "$ok" ] || { echo "garage node $i does not serve the bucket:" >&2; tail -20 "$dir/node$i/garage.log" >&2; exit 1; }
  done
  echo "export TEST_BERTH_S3_ENDPOINT=${endpoints[0]} TEST_BERTH_S3_ENDPOINTS='${endpoints[*]}' TEST_BERTH_S3_REGION=garage TEST_BERTH_S3_BUCKET=berth TEST_BERTH_S3_ACCESS_KEY=$key TEST_BERTH_S3_SECRET_KEY=$secret"
}

garage3_node() { # stop|start DIR N
  local d=$2/garage3/node$3
  [ -f "$d/run.sh" ] || { echo "no garage3 node $3 under $2" >&2; exit 1; }
  case $1 in
    stop)
      if [ -f "$d/garage.pid" ]; then
        local pid
        pid=$(cat "$d/garage.pid")
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$d/garage.pid"
      fi ;;
    start)
      "$d/run.sh"
      local port
      port=$(cat "$d/s3_port")
      for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0
        sleep 0.1
      done
      echo "garage3 node $3 did not come back" >&2; tail -20 "$d/garage.log" >&2; exit 1 ;;
    *) echo "usage: $0 garage3-node stop|start DIR N" >&2; exit 2 ;;
  esac
}

# CNCF distribution 2.8 (Debian's docker-registry) on 127.0.0.1: filesystem storage under D/data,
# deletes enabled, configuration D/config.yml. Every REGISTRY_* variable of the caller is unset
# first: distribution reads them all as configuration (podman's REGISTRY_AUTH_FILE breaks it).
run_distribution() { # D PORT
  local d=$1 port=$2 code=""
  command -v docker-registry >/dev/null || { echo "docker-registry is not installed (apt-get install docker-registry)" >&2; exit 1; }
  (
    for v in $(compgen -e); do
      case $v in REGISTRY_*) unset "$v" ;; esac
    done
    exec docker-registry serve "$d/config.yml" >"$d/registry.log" 2>&1
  ) &
  echo $! >"$d/registry.pid"
  for _ in $(seq 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" || true)
    [ "$code" = 401 ] && return 0
    sleep 0.1
  done
  echo "distribution did not start on $port (last answer: $code):" >&2; tail -20 "$d/registry.log" >&2; exit 1
}

distribution_config() { # D PORT, then the auth section on stdin
  cat <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $1/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$2
  secret: $(python3 -c 'import secrets; print(secrets.token_hex(16))')
EOF
  cat
}

# distribution with htpasswd (bcrypt) Basic authentication, one user.
start_distribution() {
  local dir=$1/distribution port user=berth password
  command -v htpasswd >/dev/null || { echo "htpasswd is not installed (apt-get install apache2-utils)" >&2; exit 1; }
  port=$(free_port)
  password=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  mkdir -p "$dir/data"
  htpasswd -Bbn "$user" "$password" >"$dir/htpasswd"
  distribution_config "$dir" "$port" >"$dir/config.yml" <<EOF
auth:
  htpasswd:
    realm: berth-test
    path: $dir/htpasswd
EOF
  run_distribution "$dir" "$port"
  echo "export TEST_DISTRIBUTION_URL=http://127.0.0.1:$port TEST_DISTRIBUTION_USER=$user TEST_DISTRIBUTION_PASSWORD=$password"
}

# distribution with token authentication: scripts/token-server.py issues ES256 tokens for one
# user (realm http://127.0.0.1:TOKEN_PORT/token); distribution trusts its certificate.
start_distribution_token() {
  local dir=$1/distribution-token port tport user=berth password code=""
  port=$(free_port)
  tport=$(free_port)
  password=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  mkdir -p "$dir/data"
  python3 "$(dirname "$0")/token-server.py" keygen "$dir"
  python3 "$(dirname "$0")/token-server.py" serve "$dir" "$tport" "$user" "$password" \
    berth-test-registry berth-test-token-issuer >"$dir/token-server.log" 2>&1 &
  echo $! >"$dir/token-server.pid"
  for _ in $(seq 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$tport/stats" || true)
    [ "$code" = 200 ] && break
    sleep 0.1
  done
  [ "$code" = 200 ] || { echo "the token server did not start:" >&2; cat "$dir/token-server.log" >&2; exit 1; }
  distribution_config "$dir" "$port" >"$dir/config.yml" <<EOF
auth:
  token:
    realm: http://127.0.0.1:$tport/token
    service: berth-test-registry
    issuer: berth-test-token-issuer
    rootcertbundle: $dir/token.crt
EOF
  run_distribution "$dir" "$port"
  echo "export TEST_DISTRIBUTION_TOKEN_URL=http://127.0.0.1:$port TEST_DISTRIBUTION_TOKEN_USER=$user TEST_DISTRIBUTION_TOKEN_PASSWORD=$password"
}

# OpenLDAP (Debian's slapd) on 127.0.0.1: ldap:// (StartTLS offered) and ldaps:// on two free
# ports, a throwaway CA and server certificate (openssl) for 127.0.0.1/localhost, the memberof
# overlay, and the directory of scripts/ldap/seed.ldif (slapadd; its groupOfNames entries are
# added through the running server so the overlay writes the members' memberOf). The read-only
# search account reads everything but passwords; users read only their own entry. The rootdn
# (TEST_BERTH_LDAP_ADMIN_DN, random password) is for tests that change the directory.
slapd_bin() {
  if ! command -v slapd >/dev/null 2>&1 && [ ! -x /usr/sbin/slapd ]; then
    echo "installing slapd and ldap-utils (apt)" >&2
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    # No system directory is configured, so the package starts no system slapd.
    echo "slapd slapd/no_configuration boolean true" | $sudo debconf-set-selections
    $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends slapd ldap-utils >/dev/null
  fi
  command -v slapd 2>/dev/null || echo /usr/sbin/slapd
}

start_slapd() {
  local dir=$1/slapd bin port sport admin_pw seed base=dc=berth,dc=test
  bin=$(slapd_bin)
  seed=$(cd "$(dirname "$0")" && pwd)/ldap/seed.ldif
  port=$(free_port)
  sport=$(free_port)
  admin_pw=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  mkdir -p "$dir/data"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=berth test LDAP CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" >/dev/null 2>&1
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
    -extfile "$dir/server.ext" -out "$dir/server.crt" >/dev/null 2>&1
  cat >"$dir/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile $dir/slapd.pid
argsfile $dir/slapd.args
TLSCACertificateFile $dir/ca.crt
TLSCertificateFile $dir/server.crt
TLSCertificateKeyFile $dir/server.key

database mdb
suffix "$base"
rootdn "cn=admin,$base"
rootpw $admin_pw
directory $dir/data
index objectClass,uid,cn,member,memberUid eq
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
access to attrs=userPassword
  by anonymous auth
  by * none
access to *
  by dn.exact="cn=search,$base" read
  by self read
  by * none
EOF
  awk -v RS= -v ORS='\n\n' '!/objectClass: groupOfNames/' "$seed" >"$dir/seed-entries.ldif"
  awk -v RS= -v ORS='\n\n' '/objectClass: groupOfNames/' "$seed" >"$dir/seed-groups.ldif"
  "${bin%slapd}slapadd" -f "$dir/slapd.conf" -l "$dir/seed-entries.ldif" >"$dir/slapadd.log" 2>&1 \
    || { cat "$dir/slapadd.log" >&2; exit 1; }
  "$bin" -f "$dir/slapd.conf" -h "ldap://127.0.0.1:$port/ ldaps://127.0.0.1:$sport/" >"$dir/slapd.log" 2>&1 \
    || { cat "$dir/slapd.log" >&2; exit 1; }
  local ok=""
  for _ in $(seq 100); do
    ldapsearch -x -LLL -H "ldap://127.0.0.1:$port" -D "cn=admin,$base" -w "$admin_pw" -b "$base" -s base dn \
      >/dev/null 2>&1 && { ok=1; break; }
    sleep 0.1
  done
  [ -n "$ok" ] || { echo "slapd did not start on $port:" >&2; cat "$dir/slapd.log" >&2; exit 1; }
  ldapadd -x -H "ldap://127.0.0.1:$port" -D "cn=admin,$base" -w "$admin_pw" -f "$dir/seed-groups.ldif" \
    >"$dir/ldapadd.log" 2>&1 || { cat "$dir/ldapadd.log" >&2; exit 1; }
  echo "$port $sport" >"$dir/ports"
  echo "export TEST_BERTH_LDAP_URL=ldap://127.0.0.1:$port TEST_BERTH_LDAPS_URL=ldaps://127.0.0.1:$sport TEST_BERTH_LDAP_CA=$dir/ca.crt TEST_BERTH_LDAP_BASE_DN=$base TEST_BERTH_LDAP_SEARCH_DN=cn=search,$base TEST_BERTH_LDAP_SEARCH_PASSWORD=search-Pass-1 TEST_BERTH_LDAP_ADMIN_DN=cn=admin,$base TEST_BERTH_LDAP_ADMIN_PASSWORD=$admin_pw"
}

# The test OpenID Connect provider (scripts/oidc-provider/provider.js): issuer
# http://127.0.0.1:PORT, one confidential client whose redirect URI
# http://127.0.0.1/c/oidc/callback matches on any loopback port. Its npm packages are installed
# once per package-lock.json into ~/.cache/berth (the script runs from a copy beside them).
start_oidc() {
  local dir=$1/oidc src cache port secret
  src=$(cd "$(dirname "$0")/oidc-provider" && pwd)
  command -v node >/dev/null || { echo "node is not installed (apt-get install nodejs npm)" >&2; exit 1; }
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/berth/oidc-provider-$(sha256sum "$src/package-lock.json" | cut -c1-16)
  if [ ! -d "$cache/node_modules/oidc-provider" ]; then
    mkdir -p "$cache"
    cp "$src/package.json" "$src/package-lock.json" "$cache/"
    (cd "$cache" && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
  cp "$src/provider.js" "$cache/provider.js"
  port=$(free_port)
  secret=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  mkdir -p "$dir"
  OIDC_CLIENT_ID=berth OIDC_CLIENT_SECRET=$secret OIDC_REDIRECT_URIS=http://127.0.0.1/c/oidc/callback \
    node "$cache/provider.js" "$port" >"$dir/provider.log" 2>&1 &
  echo $! >"$dir/provider.pid"
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/.well-known/openid-configuration" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/.well-known/openid-configuration" >/dev/null \
    || { echo "the OIDC provider did not start on $port:" >&2; tail -20 "$dir/provider.log" >&2; exit 1; }
  echo "$port" >"$dir/port"
  echo "export TEST_BERTH_OIDC_ISSUER=http://127.0.0.1:$port"
  echo "export TEST_BERTH_OIDC_CLIENT_ID=berth"
  echo "export TEST_BERTH_OIDC_CLIENT_SECRET=$secret"
}

stop_all() {
  local dir=$1
  if [ -f "$dir/postgres/data/postmaster.pid" ]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$dir/postgres/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -f "$dir/redis/redis.pid" ]; then
    kill "$(cat "$dir/redis/redis.pid")" 2>/dev/null || true
  fi
  for pidfile in "$dir"/*.pid "$dir"/garage/garage.pid "$dir"/garage3/node*/garage.pid \
    "$dir"/distribution/*.pid "$dir"/distribution-token/*.pid "$dir"/slapd/slapd.pid "$dir"/oidc/provider.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
}

case "${1:-}" in
  start)
    case "${2:-}" in
      postgres) start_postgres "$3" ;;
      redis) start_redis "$3" ;;
      garage) start_garage "$3" ;;
      garage3) start_garage3 "$3" ;;
      distribution) start_distribution "$3" ;;
      distribution-token) start_distribution_token "$3" ;;
      slapd) start_slapd "$3" ;;
      oidc) start_oidc "$3" ;;
      *) echo "usage: $0 start postgres|redis|garage|garage3|distribution|distribution-token|slapd|oidc DIR" >&2; exit 2 ;;
    esac ;;
  restart)
    case "${2:-}" in
      postgres) restart_postgres "$3" "${4:-0}" ;;
      redis) restart_redis "$3" "${4:-0}" ;;
      *) echo "usage: $0 restart postgres|redis DIR [PAUSE_SECONDS]" >&2; exit 2 ;;
    esac ;;
  garage3-node) garage3_node "${2:-}" "${3:-}" "${4:-}" ;;
  stop) stop_all "$2" ;;
  *) echo "usage: $0 start postgres|redis|garage|garage3|distribution|distribution-token|slapd|oidc DIR | restart postgres|redis DIR [PAUSE] | garage3-node stop|start DIR N | stop DIR" >&2; exit 2 ;;
esac

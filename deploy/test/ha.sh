#!/usr/bin/env bash
# High-availability test: 3 berth replicas sharing one PostgreSQL, one Redis and one storage,
# behind nginx rendered from deploy/nginx/berth.conf (TLS, round robin), with failures injected.
#
#   deploy/test/ha.sh
#
# Environment:
#   BERTH_BIN    the berth binary (default ~/.cache/berth/target/debug/berth). It is copied into
#                the work directory first, so a rebuild during the run changes nothing.
#   HA_BACKENDS  storage scenarios to run, in order (default "fs s3"):
#                  fs  one directory shared by the replicas (what a CephFS/NFS mount gives them)
#                  s3  a 3-node Garage cluster (replication_factor 3) with node 3 down
#   HA_BIG_MIB   size of the layer that is being pushed when a replica is killed (default 512)
#   HA_OUTAGE_S  length of the long database outage in step d (default 20)
#   HA_REPL_KIB  bandwidth limit (KiB/s) of the replication policy of step p (default 32768: the
#                copy of the big layer lasts ~16 s, so the kill lands mid-way)
#   HA_KEEP=1    keep the work directory after a success (it is always kept after a failure)
#
# Steps (fs: a b c p w d r e; s3: a b c p e, with one Garage node stopped before b and restarted after c):
#   a  portal: POST /c/login through nginx, then 20 GET /api/v2.0/users/current with the cookie:
#      all 200, served by all 3 replicas (x-request-id of each response found in one replica's
#      log); a CSRF-checked write with that session (creates project `ha`); the token realm
#      follows X-Forwarded-Host (trusted_proxies).
#   b  docker login + push of a 4-layer image + a second tag (cross-repo mount) + delete of it +
#      pull back after rmi: image ID and manifest digest identical; upload sessions (POST,
#      PATCH, PUT) served by more than one replica.
#   c  skopeo push of a HA_BIG_MIB single-layer image; the replica whose log shows the PATCH
#      started, once its sockets received 1/4 of the layer, gets kill -9; the push fails
#      cleanly, a second push succeeds, the killed replica is restarted and gets traffic
#      again, the image pulled back is byte-identical.
#   p  replication (deploy/test/ha_replication.sh): a push-based policy copies ha/big:v1 of step c
#      to a CNCF distribution (htpasswd Basic auth) at HA_REPL_KIB; the replica running the task
#      (its job's worker pid) gets kill -9 once 1/4 of the layer is sent; the job is taken back
#      after its heartbeat went stale and finished by another replica: the execution ends
#      Succeed with one task (its job ran twice), the destination's manifest digest is the
#      source's and its layer, pulled back, is byte-identical; the killed replica is restarted.
#   w  webhooks (deploy/test/ha_webhook.sh): the replica delivering a push event gets kill -9 while
#      the receiver holds the request; another replica delivers it again with the same event id.
#   d  PostgreSQL restarted (a quick restart, then HA_OUTAGE_S s down) while 4 threads loop over an OCI
#      manifest GET, a REST call and a token request: only 200 or 503 in the surface's JSON
#      error format, nothing slower than 20 s, recovery without restarting berth (measured).
#   r  Redis restarted (saving its data, 12 s down) while the portal session of step a is used in a
#      loop: only 200 or 503 in the REST error format, the same session works again afterwards.
#   e  audit log: each push (create), delete and explicit login (portal, docker login) exactly
#      once, each pull exactly once (the probe's successful manifest GETs included).
# Everything listens on 127.0.0.1 and lives in one mktemp directory (/tmp/ha.XXXXXX); every
# process is stopped by PID on exit. Needs root (private dockerd; initdb runs as postgres).
# Output: one line per check, a timing summary; on failure the relevant log lines and the
# work directory (kept) are printed.
set -Eeuo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/scripts/lib.sh"  # ensure_apt (installs what is missing, once); step() is redefined below
BERTH_SRC=${BERTH_BIN:-$HOME/.cache/berth/target/debug/berth}
BACKENDS=${HA_BACKENDS:-fs s3}
BIG_MIB=${HA_BIG_MIB:-512}
# The long database outage of step d: longer than nginx's retries of a 503 can hide
# (proxy_next_upstream_tries 3 x database.acquire_timeout 5 s).
OUTAGE_S=${HA_OUTAGE_S:-20}
TOOL=(python3 "$HERE/ha_tool.py")
PASS_USERS="HaTest-Passw0rd"   # password of the test users ha-docker, ha-skopeo, ha-probe
ADMIN=admin:Harbor12345
T_START=$(date +%s.%N)

W=$(mktemp -d /tmp/ha.XXXXXX)
chmod 755 "$W"  # PostgreSQL runs as the postgres user, nginx workers as nobody
SUCCESS=""
CURRENT=setup
PHASE=""
declare -a TIMINGS=()
declare -a RESULTS=()

say() { printf '%s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

STEP_T0=$T_START
step() { # NAME DESCRIPTION
  CURRENT="${PHASE:+$PHASE/}$1"
  STEP_T0=$(now)
  say ""
  say "==> [$CURRENT] $2"
}
step_done() {
  TIMINGS+=("$(printf '%-22s %6s s' "$CURRENT" "$(since "$STEP_T0")")")
  say "    ok [$CURRENT] $(since "$STEP_T0") s"
}
check() { say "    ✓ $*"; }
note() { say "    · $*"; RESULTS+=("$CURRENT: $*"); }

# Relevant logs for a failure: the last lines of each replica (compact), nginx's error log.
dump_logs() {
  local p=${P:-}
  [ -n "$p" ] && [ -d "$p" ] || return 0
  say "--- last replica log lines (compact, all replicas merged):" >&2
  "${TOOL[@]}" logs "$p"/r*/berth.log --tail 60 >&2 2>/dev/null || true
  if [ -f "$p/nginx/error.log" ]; then
    say "--- nginx error log (last 15 lines):" >&2
    grep -v 'closed keepalive connection' "$p/nginx/error.log" | tail -n 15 >&2 || true
  fi
}
fail() {
  say "" >&2
  say "FAIL [$CURRENT]: $*" >&2
  dump_logs
  exit 1
}
on_err() { say "    error: line $1: $2" >&2; }

# ------------------------------------------------------------------------------ cleanup

stop_pid() { # PIDFILE [SIGNAL] — stops a process we started, waits for it
  local f=$1 sig=${2:-TERM} pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -"$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

cleanup() {
  local rc=$?
  set +e
  trap - ERR
  for f in "$W"/*/r*/pid "$W"/*/probe.pid "$W"/*/rprobe.pid "$W"/*/skopeo.pid "$W"/*/poll?.pid "$W"/*/hook/pid; do [ -f "$f" ] && stop_pid "$f" KILL; done
  for f in "$W"/*/nginx/nginx.pid; do [ -f "$f" ] && stop_pid "$f" QUIT; done
  [ -d "$W/dockerd" ] && "$ROOT/scripts/dockerd.sh" stop "$W/dockerd" >/dev/null 2>&1
  [ -d "$W/svc" ] && "$ROOT/scripts/services.sh" stop "$W/svc" >/dev/null 2>&1
  for d in "$W"/*/dist; do [ -d "$d" ] && "$ROOT/scripts/services.sh" stop "$d" >/dev/null 2>&1; done
  if declare -F e2e_guard_changed >/dev/null && e2e_guard_changed; then
    say "warning: a client wrote outside the work directory (see above)" >&2
  fi
  if [ $rc -eq 0 ] && [ -n "$SUCCESS" ]; then
    if [ "${HA_KEEP:-0}" = 1 ]; then say "work directory kept: $W"; else rm -rf "$W"; fi
  else
    say "" >&2
    say "ha.sh: FAILED in [$CURRENT] after $(since "$T_START") s; work directory kept: $W" >&2
    say "  replica logs: $W/<backend>/r<N>/berth.log (ha_tool.py logs FILE... for a compact view)" >&2
    say "  nginx: $W/<backend>/nginx/{access,error}.log; clients: $W/clients/logs" >&2
  fi
  exit $rc
}
trap cleanup EXIT
trap 'on_err $LINENO "$BASH_COMMAND"' ERR

# ------------------------------------------------------------------------------ setup

step setup "binary, PostgreSQL, Redis, TLS certificate, dockerd, test images (work dir $W)"
[ -x "$BERTH_SRC" ] || fail "no berth binary at $BERTH_SRC (CARGO_TARGET_DIR=\$HOME/.cache/berth/target cargo build -p server)"
mkdir -p "$W/bin"
cp "$BERTH_SRC" "$W/bin/berth"
SITE_SRC="$(dirname "$BERTH_SRC")/../site"
if [ -d "$SITE_SRC/pkg" ]; then cp -r "$SITE_SRC" "$W/site"; else mkdir -p "$W/site/pkg"; fi
BERTH=$W/bin/berth
say "    berth: $BERTH_SRC ($("$BERTH" --version 2>/dev/null || echo '?'))"
ensure_apt nginx openssl skopeo docker.io postgresql redis-server iproute2 curl python3 docker-registry apache2-utils
for t in nginx openssl skopeo docker dockerd psql redis-server ss curl docker-registry htpasswd; do
  command -v "$t" >/dev/null || fail "missing tool: $t"
done

eval "$("$ROOT/scripts/services.sh" start postgres "$W/svc")"
eval "$("$ROOT/scripts/services.sh" start redis "$W/svc")"
PG_URL=$TEST_BERTH_POSTGRES_URL
REDIS_URL=${TEST_BERTH_REDIS_URL%/0}
check "PostgreSQL $PG_URL, Redis $REDIS_URL"

# A self-signed certificate for 127.0.0.1 that is its own CA: curl, python and skopeo verify it.
mkdir -p "$W/ca"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=berth-ha-test" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -keyout "$W/ca/tls.key" -out "$W/ca/tls.crt" >/dev/null 2>&1 || fail "openssl could not make a certificate"
# skopeo's --*-cert-dir: *.crt are CAs (a *.key there would be taken for a client key).
mkdir -p "$W/certs.d"
cp "$W/ca/tls.crt" "$W/certs.d/ca.crt"
CA=$W/ca/tls.crt

# Client isolation (skopeo, docker CLI config) shared with end2end/registry.
WORKDIR=$W/clients
. "$ROOT/end2end/registry/lib-clients.sh"
e2e_workdir ha.sh
e2e_isolate
docker() { "$DOCKER_BIN" "$@"; }
"$ROOT/scripts/dockerd.sh" start "$W/dockerd" >"$W/dockerd.env" 2>"$W/dockerd.err" \
  || { cat "$W/dockerd.err" >&2; fail "dockerd did not start"; }
. "$W/dockerd.env"

mkdir -p "$W/img"
python3 "$ROOT/end2end/registry/mkimage.py" image "$W/img/small" --layers 4 --layer-size 4M --tag v1 >"$W/img/small.json"
SMALL_CFG=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["config"])' "$W/img/small.json")
skopeo_ copy "oci:$W/img/small:v1" "docker-archive:$W/img/small.tar:ha-src/app:v1" >"$W/clients/logs/setup.log" 2>&1 \
  || fail "skopeo could not write the docker archive"
"${TOOL[@]}" mkbig "$W/img/big" --bytes $((BIG_MIB * 1024 * 1024)) >"$W/img/big.json"
BIG_DIGEST=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["digest"])' "$W/img/big.json")
BIG_LAYER=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layer"])' "$W/img/big.json")
check "images: 4 x 4 MiB layers (config $SMALL_CFG), 1 x $BIG_MIB MiB layer (manifest $BIG_DIGEST)"
step_done

# ------------------------------------------------------------------------------ cluster

# nginx from deploy/nginx/berth.conf (deploy/test/nginx.sh rewrites only its "# @…" lines).
start_nginx() {
  local upstreams=() i
  for i in 1 2 3; do upstreams+=("127.0.0.1:${RPORT[$i]}"); done
  "$HERE/nginx.sh" start "$P/nginx" "127.0.0.1:$LB_PORT" "$CA" "$W/ca/tls.key" "${upstreams[@]}" \
    || fail "nginx did not start with the rendered configuration"
}

# Replica I of the current phase, on RPORT[I], with deploy/berth-ha.example.toml as its config
# file and BERTH_* variables for what differs on this machine. Appends to its log.
start_replica() { # I
  local i=$1 d=$P/r$1
  mkdir -p "$d"
  (
    cd "$d"
    # Only the variables below configure the replica (BERTH_BIN of the caller would be read as
    # a config key and refused).
    for v in $(compgen -e | grep '^BERTH_' || true); do unset "$v"; done
    export BERTH_LISTEN=127.0.0.1:${RPORT[$i]}
    export BERTH_EXTERNAL_URL=https://127.0.0.1:$LB_PORT
    export BERTH_TRUSTED_PROXIES='["127.0.0.1"]'
    export BERTH_DATABASE__URL=$DB_URL
    export BERTH_REDIS__URL=$REDIS_DB_URL
    export BERTH_LOG__FORMAT=json
    export BERTH_LOG__LEVEL=info,tower_http=debug
    export BERTH_PORTAL__SITE_ROOT=$W/site
    if [ "$BACKEND" = s3 ]; then
      export BERTH_STORAGE__KIND=s3
      export BERTH_STORAGE__S3__ENDPOINT=${S3_ENDPOINT_OF[$i]}
      export BERTH_STORAGE__S3__REGION=$TEST_BERTH_S3_REGION
      export BERTH_STORAGE__S3__BUCKET=$TEST_BERTH_S3_BUCKET
      export BERTH_STORAGE__S3__ACCESS_KEY_ID=$TEST_BERTH_S3_ACCESS_KEY
      export BERTH_STORAGE__S3__SECRET_ACCESS_KEY=$TEST_BERTH_S3_SECRET_KEY
    else
      export BERTH_STORAGE__KIND=filesystem
      export BERTH_STORAGE__PATH=$P/storage
    fi
    exec "$BERTH" --config "$ROOT/deploy/berth-ha.example.toml" serve >>"$d/berth.log" 2>&1
  ) &
  echo $! >"$d/pid"
  disown $!  # stopped by PID; no job-control noise when it is killed
}

wait_healthy() { # I [TIMEOUT_S]
  local i=$1 n=$((${2:-60} * 10))
  for _ in $(seq "$n"); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' -m 5 "http://127.0.0.1:${RPORT[$i]}/api/v2.0/health")" = 200 ]; then
      return 0
    fi
    kill -0 "$(cat "$P/r$i/pid")" 2>/dev/null || fail "replica r$i exited: $(tail -n 5 "$P/r$i/berth.log")"
    sleep 0.1
  done
  fail "replica r$i is not healthy: $(curl -s -m 5 "http://127.0.0.1:${RPORT[$i]}/api/v2.0/health")"
}

# Restarts killed replica I; nginx must send it traffic again (after fail_timeout).
rejoin_replica() { # I
  local i=$1 t0 n
  t0=$(now)
  start_replica "$i"
  wait_healthy "$i"
  n=$(grep -c '"finished processing request"' "$P/r$i/berth.log" || true)
  for _ in $(seq 60); do
    lb -o /dev/null "$LB/api/v2.0/ping" || true
    [ "$(grep -c '"finished processing request"' "$P/r$i/berth.log" || true)" -gt "$n" ] && break
    sleep 0.25
  done
  [ "$(grep -c '"finished processing request"' "$P/r$i/berth.log" || true)" -gt "$n" ] \
    || fail "nginx sends no traffic to the restarted replica r$i"
  check "r$i restarted, healthy and back in nginx's rotation $(since "$t0") s later"
}

replica_logs() { local i; for i in 1 2 3; do printf '%s ' "$P/r$i/berth.log"; done; }

# curl through the load balancer, verifying the certificate.
lb() { curl -sS --cacert "$CA" "$@"; }

api_admin() { # METHOD PATH [JSON] -> prints status
  local m=$1 path=$2 body=${3:-}
  if [ -n "$body" ]; then
    lb -o "$P/last.json" -w '%{http_code}' -u "$ADMIN" -X "$m" -H 'Content-Type: application/json' \
      --data "$body" "$LB$path"
  else
    lb -o "$P/last.json" -w '%{http_code}' -u "$ADMIN" -X "$m" "$LB$path"
  fi
}

expect() { printf '%s\n' "$*" >>"$P/expect.tsv"; }

# Fails if a replica answered any request with a 5xx other than 503.
no_5xx() {
  local bad
  bad=$(cat $(replica_logs) | grep '"finished processing request"' | grep -E '"status":5(0[0-24-9]|[1-9][0-9])' || true)
  [ -z "$bad" ] || { printf '%s\n' "$bad" | head -n 10 >&2; fail "a replica answered with a 5xx other than 503"; }
  if grep -q '"handler panicked"' $(replica_logs); then fail "a handler panicked"; fi
}

# ------------------------------------------------------------------------------ steps

step_a() {
  step a "portal session through nginx: login, 20 requests on 3 replicas, CSRF write, realm"
  local code csrf i ids=$P/a-ids.txt status user
  code=$(lb -o /dev/null -D "$P/a-login.h" -c "$P/cookies" -w '%{http_code}' -X POST \
    --data-urlencode principal=admin --data-urlencode password=Harbor12345 "$LB/c/login")
  [ "$code" = 200 ] || fail "POST /c/login: $code"
  csrf=$(grep -i '^x-harbor-csrf-token:' "$P/a-login.h" | cut -d' ' -f2 | tr -d '\r')
  [ -n "$csrf" ] || fail "no X-Harbor-CSRF-Token after login"
  grep -q $'\tsid\t' "$P/cookies" || fail "no sid cookie after login"
  grep -qi '^set-cookie: sid=.*; Secure' "$P/a-login.h" || fail "the session cookie is not Secure behind https"
  expect "login admin admin 1 portal"
  : >"$ids"
  for i in $(seq 20); do
    status=$(lb -D "$P/a.h" -o "$P/a.json" -b "$P/cookies" -w '%{http_code}' "$LB/api/v2.0/users/current")
    user=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("username"))' "$P/a.json" 2>/dev/null || echo "?")
    [ "$status" = 200 ] && [ "$user" = admin ] || fail "request $i with the session cookie: $status $(head -c 300 "$P/a.json")"
    grep -i '^x-request-id:' "$P/a.h" | cut -d' ' -f2 | tr -d '\r' >>"$ids"
  done
  check "20 x GET /api/v2.0/users/current with the cookie: 200, user admin"
  sleep 0.3
  "${TOOL[@]}" which --logs $(replica_logs) --ids "$ids" | sed 's/^/    /' \
    || fail "the 20 session requests were not served by all 3 replicas"
  check "every response's x-request-id is in exactly one replica log; all 3 replicas served the session"
  # A cookie-authenticated write needs the CSRF token bound to the session (Redis).
  code=$(lb -o "$P/a-project.json" -b "$P/cookies" -w '%{http_code}' -X POST -H "X-Harbor-CSRF-Token: $csrf" \
    -H 'Content-Type: application/json' --data '{"project_name":"ha","metadata":{"public":"false"}}' "$LB/api/v2.0/projects")
  [ "$code" = 201 ] || fail "POST /api/v2.0/projects with session + CSRF: $code $(cat "$P/a-project.json")"
  code=$(lb -o /dev/null -b "$P/cookies" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data '{"project_name":"ha-nocsrf"}' "$LB/api/v2.0/projects")
  [ "$code" = 403 ] || [ "$code" = 401 ] || fail "a cookie write without the CSRF token got $code"
  check "project ha created with the session + CSRF token; without the token: $code"
  # The token realm comes from X-Forwarded-Proto/-Host (nginx is a trusted proxy).
  local realm
  realm=$(lb -o /dev/null -D - -H "Host: localhost:$LB_PORT" "$LB/v2/" | grep -i '^www-authenticate:' | tr -d '\r')
  [[ "$realm" == *"realm=\"https://localhost:$LB_PORT/service/token\""* ]] \
    || fail "token realm does not follow X-Forwarded-Host: $realm"
  check "token realm follows the forwarded host: https://localhost:$LB_PORT/service/token"
  # Users for the clients, members of ha.
  for user in ha-docker ha-skopeo ha-probe; do
    code=$(api_admin POST /api/v2.0/users "{\"username\":\"$user\",\"password\":\"$PASS_USERS\",\"email\":\"$user@example.com\",\"realname\":\"$user\"}")
    [ "$code" = 201 ] || fail "create user $user: $code $(cat "$P/last.json")"
    code=$(api_admin POST /api/v2.0/projects/ha/members "{\"role_id\":1,\"member_user\":{\"username\":\"$user\"}}")
    [ "$code" = 201 ] || fail "add $user to ha: $code $(cat "$P/last.json")"
  done
  check "users ha-docker, ha-skopeo, ha-probe: project admins of ha"
  step_done
}

step_b() {
  step b "docker: login, push (4 layers), mount, delete, pull back — through nginx with TLS"
  local log=$W/clients/logs/docker-$BACKEND.log host=127.0.0.1:$LB_PORT t0 dig dig2 id code got
  t0=$(now)
  docker load -i "$W/img/small.tar" >>"$log" 2>&1 || fail "docker load failed (see $log)"
  docker login -u ha-docker --password-stdin "$host" <<<"$PASS_USERS" >>"$log" 2>&1 || fail "docker login failed (see $log)"
  check "docker login $host (TLS via nginx; docker treats loopback registries as insecure, so it does not verify the certificate)"
  # docker keeps no refresh token (none is issued, as Harbor): it sends its password to the
  # token service for each new scope, and each replica's credential cache records one login.
  expect "login ha-docker ha-docker 1-3 token service"
  docker tag ha-src/app:v1 "$host/ha/docker-img:v1"
  docker push "$host/ha/docker-img:v1" >>"$log" 2>&1 || fail "docker push failed (see $log)"
  dig=$(grep -o 'v1: digest: sha256:[0-9a-f]*' "$log" | tail -1 | awk '{print $3}')
  [ -n "$dig" ] || fail "no digest in the docker push output"
  check "docker push ha/docker-img:v1 → $dig"
  expect "create ha-docker ha/docker-img:v1 1"
  say "    upload sessions of ha/docker-img (replica of each request):"
  "${TOOL[@]}" uploads --logs $(replica_logs) --repo ha/docker-img --since "$t0" | sed 's/^/  /' \
    || fail "docker's uploads did not spread over replicas"
  check "upload sessions continued on other replicas than the one that started them"
  docker tag ha-src/app:v1 "$host/ha/del-me:v1"
  docker push "$host/ha/del-me:v1" >>"$log" 2>&1 || fail "docker push of ha/del-me failed (see $log)"
  dig2=$(grep -o 'v1: digest: sha256:[0-9a-f]*' "$log" | tail -1 | awk '{print $3}')
  [ "$dig2" = "$dig" ] || fail "second tag pushed as $dig2, expected $dig"
  expect "create ha-docker ha/del-me:v1 1"
  code=$(lb -o "$P/b-del.json" -w '%{http_code}' -u "ha-docker:$PASS_USERS" -X DELETE "$LB/v2/ha/del-me/manifests/$dig")
  [ "$code" = 202 ] || fail "DELETE /v2/ha/del-me/manifests/$dig: $code $(cat "$P/b-del.json")"
  code=$(lb -o /dev/null -w '%{http_code}' -u "ha-docker:$PASS_USERS" "$LB/v2/ha/del-me/manifests/v1")
  [ "$code" = 404 ] || fail "ha/del-me:v1 still answers $code after the delete"
  expect "delete ha-docker ha/del-me@$dig 1"
  check "ha/del-me pushed (layers mounted) and deleted by digest (DELETE /v2, Basic)"
  docker rmi "$host/ha/docker-img:v1" "$host/ha/del-me:v1" ha-src/app:v1 >>"$log" 2>&1 || fail "docker rmi failed"
  if docker image inspect "$SMALL_CFG" >/dev/null 2>&1; then fail "image still present after rmi"; fi
  docker pull "$host/ha/docker-img:v1" >>"$log" 2>&1 || fail "docker pull failed (see $log)"
  # dockerd 20.10 resolves the tag with HEAD, then GETs the manifest by digest: one pull row.
  expect "pull ha-docker ha/docker-img@$dig 1"
  id=$(docker image inspect --format '{{.Id}}' "$host/ha/docker-img:v1")
  [ "$id" = "$SMALL_CFG" ] || fail "pulled image ID $id, expected $SMALL_CFG"
  docker image inspect --format '{{join .RepoDigests ","}}' "$host/ha/docker-img:v1" | grep -q "@$dig" \
    || fail "pulled image has no RepoDigest @$dig"
  got=$(lb -u "ha-docker:$PASS_USERS" -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "$LB/v2/ha/docker-img/manifests/v1" | sha256sum | awk '{print "sha256:"$1}')
  [ "$got" = "$dig" ] || fail "manifest bytes of ha/docker-img:v1 hash to $got, expected $dig"
  expect "pull ha-docker ha/docker-img:v1 1"
  check "docker pull after rmi: image ID = config digest, RepoDigest and manifest bytes = $dig (layers verified by docker against diff_ids)"
  docker rmi "$host/ha/docker-img:v1" >>"$log" 2>&1 || true
  DOCKER_DIGEST=$dig
  step_done
}

step_c() {
  step c "kill -9 the replica receiving a $BIG_MIB MiB upload; second push; pull back byte-identical"
  local log=$W/clients/logs/skopeo-big-$BACKEND.log host=127.0.0.1:$LB_PORT v idx uid rid bytes secs rc i offs=""
  local dest=(--dest-creds "ha-skopeo:$PASS_USERS" --dest-cert-dir "$W/certs.d")
  rm -rf "$W/clients/skopeo-data"  # skopeo's blob-info cache: no mount attempts from an earlier scenario
  for i in 1 2 3; do offs+="$(stat -c %s "$P/r$i/berth.log") "; done
  echo "$offs" >"$P/c-offsets"
  ( exec "${SKOPEO[@]}" copy --preserve-digests "${dest[@]}" "oci:$W/img/big:v1" "docker://$host/ha/big:v1" >"$log" 2>&1 ) &
  echo $! >"$P/skopeo.pid"
  v=$("${TOOL[@]}" victim --logs $(replica_logs) --ports "${RPORT[1]}" "${RPORT[2]}" "${RPORT[3]}" \
    --offsets "$P/c-offsets" --path-contains /v2/ha/big/blobs/uploads/ \
    --min-bytes $((BIG_MIB * 1024 * 1024 / 4)) --max-wait 8 --timeout 90 --while-pid "$(cat "$P/skopeo.pid")") \
    || { stop_pid "$P/skopeo.pid" KILL; fail "could not catch the big PATCH in progress (skopeo: $(tail -3 "$log"))"; }
  read -r idx uid rid bytes secs <<<"$v"
  kill -KILL "$(cat "$P/r$idx/pid")"
  KILLED_AT=$(now)
  note "killed r$idx (pid $(cat "$P/r$idx/pid")) with SIGKILL: its log showed 'started processing request' for PATCH …/uploads/$uid (request $rid) and no 'finished'; its sockets had received $((bytes / 1048576)) MiB in the ${secs}s since"
  rc=0
  wait "$(cat "$P/skopeo.pid")" || rc=$?
  rm -f "$P/skopeo.pid"
  rm -f "$P/r$idx/pid"
  if [ $rc -eq 0 ]; then
    note "skopeo's first push succeeded anyway (it retried by itself)"
  else
    note "first push failed as expected: $(grep -o 'level=fatal msg=.*' "$log" | head -c 200)"
    grep -q "uploads/$uid" "$P/nginx/error.log" || fail "nginx's error log does not mention the killed PATCH"
    check "nginx: $(grep "uploads/$uid" "$P/nginx/error.log" | head -1 | sed -E 's/.*\[error\] [0-9#]+: \*[0-9]+ //; s/, client:.*//')"
    grep -q "\"PATCH /v2/ha/big/blobs/uploads/$uid HTTP/1.1\" 503 .*ustatus=502" "$P/nginx/access.log" \
      || say "    (access log line: $(grep "PATCH /v2/ha/big/blobs/uploads/$uid" "$P/nginx/access.log" | head -1))"
    if "${TOOL[@]}" finished --log "$P/r$idx/berth.log" --request-id "$rid"; then
      fail "the killed replica logged the PATCH as finished"
    fi
    # The dead request's upload session: its committed size did not move; is it resumable?
    local st pa
    st=$(lb -o /dev/null -D - -u "ha-skopeo:$PASS_USERS" "$LB/v2/ha/big/blobs/uploads/$uid" | tr -d '\r' \
      | awk 'NR==1 {s=$2} tolower($1)=="range:" {r=$2} END {print s, "Range:", r}')
    pa=$(printf x | lb -o "$P/c-resume.json" -w '%{http_code}' -u "ha-skopeo:$PASS_USERS" -X PATCH \
      -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-0' --data-binary @- \
      "$LB/v2/ha/big/blobs/uploads/$uid")
    note "the killed PATCH's upload session: GET status → $st; resuming it at once with a PATCH at offset 0 → $pa $(head -c 160 "$P/c-resume.json")"
    [ "$pa" = 416 ] || fail "the dead request's upload lease did not hold off another writer (PATCH → $pa)"
    DEAD_UPLOAD=$uid
    if [ "$BACKEND" = fs ]; then
      check "partial upload left in shared storage: $(stat -c %s "$P/storage/uploads/$uid/data" 2>/dev/null || echo '?') bytes (GC removes it after gc.upload_max_age)"
    fi
    local t1=$(now)
    "${SKOPEO[@]}" copy --preserve-digests "${dest[@]}" --digestfile "$P/c-digest" \
      "oci:$W/img/big:v1" "docker://$host/ha/big:v1" >>"$log" 2>&1 || fail "the second push failed (see $log)"
    [ "$(cat "$P/c-digest")" = "$BIG_DIGEST" ] || fail "second push wrote $(cat "$P/c-digest"), expected $BIG_DIGEST"
    check "second push (2 replicas up) succeeded in $(since "$t1") s: $BIG_DIGEST"
  fi
  expect "create ha-skopeo ha/big:v1 1"
  rejoin_replica "$idx"
  local t3=$(now)
  rm -rf "$W/img/big-back"
  "${SKOPEO[@]}" copy --preserve-digests --src-creds "ha-skopeo:$PASS_USERS" --src-cert-dir "$W/certs.d" \
    "docker://$host/ha/big:v1" "oci:$W/img/big-back:v1" >>"$log" 2>&1 || fail "pulling ha/big:v1 back failed (see $log)"
  expect "pull ha-skopeo ha/big:v1 1"
  local back
  back=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$W/img/big-back/index.json")
  [ "$back" = "$BIG_DIGEST" ] || fail "pulled manifest $back, expected $BIG_DIGEST"
  cmp -s "$W/img/big/blobs/sha256/${BIG_LAYER#sha256:}" "$W/img/big-back/blobs/sha256/${BIG_LAYER#sha256:}" \
    || fail "the pulled $BIG_MIB MiB layer differs from the pushed one"
  check "pulled back in $(since "$t3") s: manifest $back, layer byte-identical (cmp)"
  rm -rf "$W/img/big-back"
  if [ -n "${DEAD_UPLOAD:-}" ]; then
    # The killed request's lease is no longer renewed: once it runs out (30 s), the upload can
    # be resumed from its committed size on any replica and finished.
    local code="" waited
    for _ in $(seq 90); do
      code=$(lb -o "$P/c-resume.json" -w '%{http_code}' -u "ha-skopeo:$PASS_USERS" -X PATCH \
        -H 'Content-Type: application/octet-stream' -H 'Content-Length: 0' "$LB/v2/ha/big/blobs/uploads/$DEAD_UPLOAD")
      [ "$code" = 202 ] && break
      [ "$code" = 416 ] || fail "probing the dead upload: $code $(cat "$P/c-resume.json")"
      sleep 0.5
    done
    [ "$code" = 202 ] || fail "the dead request's upload never became resumable"
    waited=$(awk -v a="$KILLED_AT" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')
    code=$(lb -o "$P/c-resume.json" -w '%{http_code}' -u "ha-skopeo:$PASS_USERS" -X PATCH \
      -H 'Content-Type: application/octet-stream' -T "$W/img/big/blobs/sha256/${BIG_LAYER#sha256:}" \
      "$LB/v2/ha/big/blobs/uploads/$DEAD_UPLOAD")
    [ "$code" = 202 ] || fail "resuming the dead upload: $code $(cat "$P/c-resume.json")"
    code=$(lb -o "$P/c-resume.json" -w '%{http_code}' -u "ha-skopeo:$PASS_USERS" -X PUT -H 'Content-Length: 0' \
      "$LB/v2/ha/big/blobs/uploads/$DEAD_UPLOAD?digest=$BIG_LAYER")
    [ "$code" = 201 ] || fail "finishing the resumed upload: $code $(cat "$P/c-resume.json")"
    note "the killed request's upload session became resumable ${waited} s after the kill (lease expiry) and was finished on another replica (PATCH $BIG_MIB MiB + PUT → 201)"
    DEAD_UPLOAD=""
  fi
  step_done
}

step_d() {
  step d "PostgreSQL restarted under a probe loop (OCI manifest GET, REST, token; 4 threads)"
  local marks=$P/d-marks.txt probe=$P/d-probe.jsonl i pids_before="" report
  for i in 1 2 3; do pids_before+="$(cat "$P/r$i/pid") "; done
  : >"$marks"
  rm -f "$P/d-stop"
  "${TOOL[@]}" probe --base "$LB" --cacert "$CA" --creds "ha-probe:$PASS_USERS" --repo ha/docker-img --tag v1 \
    --out "$probe" --stop "$P/d-stop" --threads 4 &
  echo $! >"$P/probe.pid"
  sleep 2
  echo "quick_down $(now)" >>"$marks"
  "$ROOT/scripts/services.sh" restart postgres "$W/svc" 0
  echo "quick_up $(now)" >>"$marks"
  sleep 4
  echo "long_down $(now)" >>"$marks"
  # Per-replica readiness, polled directly from the moment the database goes away.
  local pollers=()
  for i in 1 2 3; do
    ( end=$((SECONDS + 60))
      while [ $SECONDS -lt $end ] && [ "$(curl -s -o /dev/null -w '%{http_code}' -m 10 "http://127.0.0.1:${RPORT[$i]}/api/v2.0/health")" != 503 ]; do sleep 0.1; done
      while [ $SECONDS -lt $end ] && [ "$(curl -s -o /dev/null -w '%{http_code}' -m 10 "http://127.0.0.1:${RPORT[$i]}/api/v2.0/health")" != 200 ]; do sleep 0.1; done
      [ $SECONDS -lt $end ] && now >"$P/d-ready-r$i" ) &
    pollers+=($!)
    echo $! >"$P/poll$i.pid"
  done
  # Straight to r1, bypassing nginx, once the database has been gone for a while: berth's own
  # answer on each surface must be a 503 in that surface's JSON format.
  ( sleep 4
    "${TOOL[@]}" direct --base "http://127.0.0.1:${RPORT[1]}" --creds "ha-probe:$PASS_USERS" --repo ha/docker-img \
      --tag v1 --max-seconds 8 >"$P/d-direct.txt" 2>&1
    echo $? >"$P/d-direct.rc" ) &
  pollers+=($!)
  "$ROOT/scripts/services.sh" restart postgres "$W/svc" "$OUTAGE_S"
  local up
  up=$(now)
  echo "long_up $up" >>"$marks"
  sleep 8
  touch "$P/d-stop"
  wait "$(cat "$P/probe.pid")" || true
  rm -f "$P/probe.pid"
  for i in 1 2 3; do
    for _ in $(seq 100); do [ -s "$P/d-ready-r$i" ] && break; sleep 0.1; done
    [ -s "$P/d-ready-r$i" ] || fail "replica r$i did not report healthy after the database came back"
  done
  wait "${pollers[@]}" 2>/dev/null || true
  rm -f "$P"/poll?.pid
  [ "$(cat "$P/d-direct.rc" 2>/dev/null)" = 0 ] \
    || { sed 's/^/    /' "$P/d-direct.txt"; fail "a replica's own answer during the outage was not a clean 503"; }
  say "    straight to r1 while the database was down (no nginx):"
  sed 's/^/      /' "$P/d-direct.txt"
  report=$("${TOOL[@]}" outage --probe "$probe" --marks "$marks" --hang 20 --threads-hint 4) \
    || { printf '%s\n' "$report" | sed 's/^/    /'; fail "requests during the database restarts did not fail cleanly"; }
  printf '%s\n' "$report" | grep -v '^RECOVERY' | sed 's/^/    /'
  say "    nginx access log: $(grep -c 'ustatus=[^ ]*503' "$P/nginx/access.log" || true) requests got a 503 from a replica (retried on the next one while one was left), $(grep -c '" 503 .* upstream=berth ' "$P/nginx/access.log" || true) were answered by nginx itself (all replicas marked failed)"
  local rec
  rec=$(printf '%s\n' "$report" | awk '/^RECOVERY long/ {print $3}')
  note "$OUTAGE_S s database outage: first successful request through nginx $rec s after PostgreSQL was back"
  for i in 1 2 3; do
    note "r$i readiness (GET /api/v2.0/health) back to 200 $(awk -v a="$up" -v b="$(cat "$P/d-ready-r$i")" 'BEGIN{printf "%.2f", b-a}') s after PostgreSQL was back"
  done
  local pids_after=""
  for i in 1 2 3; do
    kill -0 "$(cat "$P/r$i/pid")" 2>/dev/null || fail "replica r$i died during the database restart"
    pids_after+="$(cat "$P/r$i/pid") "
  done
  [ "$pids_before" = "$pids_after" ] || fail "replica PIDs changed: $pids_before → $pids_after"
  check "no replica was restarted (PIDs $pids_after)"
  local n
  n=$(python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if (lambda r: r["kind"]=="oci" and r["status"]==200)(json.loads(l))))' "$probe")
  expect "pull ha-probe ha/docker-img:v1 $n"
  expect "login ha-probe ha-probe 1-3 token service"
  check "$n successful manifest GETs by ha-probe (each must be one pull row)"
  step_done
}

step_r() {
  step r "Redis restarted (12 s down) under portal requests with the session of step a"
  local out=$P/r-probe.jsonl report up
  rm -f "$P/r-stop"
  python3 - "$LB" "$CA" "$P/cookies" "$out" "$P/r-stop" <<'PY' &
import json, ssl, sys, time, urllib.request, urllib.error, os
base, ca, cookies, out, stop = sys.argv[1:6]
sid = next(l.split("\t")[6].strip() for l in open(cookies) if "\tsid\t" in l)
ctx = ssl.create_default_context(cafile=ca)
with open(out, "w") as f:
    while not os.path.exists(stop):
        t0 = time.time()
        req = urllib.request.Request(base + "/api/v2.0/users/current", headers={"Cookie": "sid=" + sid})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
                status, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        except Exception as e:
            status, body = 0, str(e).encode()
        f.write(json.dumps({"t0": t0, "t1": time.time(), "status": status, "body": body[:300].decode("utf-8", "replace")}) + "\n")
        f.flush()
        time.sleep(0.05)
PY
  echo $! >"$P/rprobe.pid"
  sleep 2
  local down sid direct code secs
  down=$(now)
  # Straight to r1 (no nginx to retry elsewhere), well inside the outage: berth's own answer.
  sid=$(awk '$6 == "sid" { print $7 }' "$P/cookies")
  ( sleep 3
    curl -s -m 30 -o "$P/r-direct.json" -w '%{http_code} %{time_total}' -H "Cookie: sid=$sid" \
      "http://127.0.0.1:${RPORT[1]}/api/v2.0/users/current" >"$P/r-direct.txt" ) &
  direct=$!
  "$ROOT/scripts/services.sh" restart redis "$W/svc" 12
  wait "$direct" || true
  read -r code secs <"$P/r-direct.txt" || true
  [ "${code:-}" = 503 ] && grep -q '"SERVICE_UNAVAILABLE"' "$P/r-direct.json" \
    && awk -v s="$secs" 'BEGIN { exit !(s < 8) }' \
    || fail "r1's own answer during the Redis outage: ${code:-none} after ${secs:-?} s: $(cat "$P/r-direct.json" 2>/dev/null)"
  check "straight to r1 during the outage: 503 SERVICE_UNAVAILABLE after ${secs} s"
  up=$(now)
  sleep 6
  touch "$P/r-stop"
  wait "$(cat "$P/rprobe.pid")" || true
  rm -f "$P/rprobe.pid"
  report=$(python3 - "$out" "$down" "$up" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
down, up = float(sys.argv[2]), float(sys.argv[3])
bad = [r for r in rows if r["status"] not in (200, 503)]
bad += [r for r in rows if r["status"] == 503 and '"code":"SERVICE_UNAVAILABLE"' not in r["body"].replace(" ", "")]
during = [r for r in rows if r["t1"] > down and r["t0"] < up]
n503 = sum(1 for r in rows if r["status"] == 503)
after = [r for r in rows if r["t0"] > up]
first = next((r for r in after if r["status"] == 200), None)
tail = after[-10:]
print(f"{len(rows)} requests: {sum(1 for r in rows if r['status'] == 200)} x 200, {n503} x 503; {len(during)} overlapped the outage ({up - down:.1f} s); slowest {max(r['t1'] - r['t0'] for r in rows):.2f} s")
if first:
    print(f"RECOVERY {first['t1'] - up:.2f}")
# nginx retries a 503 on the next replica (3 tries of ~5 s each): a request may come back 200
# once Redis is back, or nginx answers its own JSON 503; none may hang longer than that.
slowest = max(r["t1"] - r["t0"] for r in rows)
ok = not bad and slowest < 20 and first is not None and tail and all(r["status"] == 200 and '"username":"admin"' in r["body"].replace(" ", "") for r in tail)
for r in bad[:5]:
    print("BAD", r["status"], r["body"][:200])
if slowest >= 20:
    print(f"BAD: a request took {slowest:.1f} s")
sys.exit(0 if ok else 1)
PY
) || { printf '%s\n' "$report" | sed 's/^/    /'; fail "requests during the Redis restart did not fail cleanly or the session did not come back"; }
  printf '%s\n' "$report" | grep -v '^RECOVERY' | sed 's/^/    /'
  note "Redis restart (12 s down): only 200 or 503 (REST JSON); the session of step a works again $(printf '%s\n' "$report" | awk '/^RECOVERY/ {print $2}') s after Redis was back, no replica restarted"
  step_done
}

step_e() {
  step e "audit log: pushes, deletes, logins and pulls exactly once"
  sleep 1.5  # every replica's writer flushes within 0.5 s
  expect "login ha-skopeo ha-skopeo 1-3 token service"
  "${TOOL[@]}" audit --base "$LB" --cacert "$CA" --creds "$ADMIN" --expect "$P/expect.tsv" \
    --report "$P/audit.json" >"$P/e-audit.txt" || { sed 's/^/  /' "$P/e-audit.txt"; fail "audit log mismatch (rows in $P/audit.json)"; }
  sed 's/^/  /' "$P/e-audit.txt"
  local n
  for u in ha-skopeo ha-probe; do
    n=$(python3 -c 'import json,sys; print(sum(1 for r in json.load(open(sys.argv[1])) if r["operation"]=="login" and r["username"]==sys.argv[2]))' "$P/audit.json" "$u")
    [ "$n" -gt 1 ] && note "$u: $n token-service login rows (login dedup is per replica: one per replica per 10 min)"
  done
  no_5xx
  check "no replica answered a 5xx other than 503, no panic"
  step_done
}

. "$HERE/ha_replication.sh"  # step_p
. "$HERE/ha_webhook.sh"      # step_w

# ------------------------------------------------------------------------------ scenarios

run_backend() { # fs | s3
  BACKEND=$1
  PHASE=$BACKEND
  P=$W/$BACKEND
  mkdir -p "$P"
  : >"$P/expect.tsv"
  step cluster "3 replicas ($BACKEND storage) + nginx"
  LB_PORT=$(free_port)
  LB=https://127.0.0.1:$LB_PORT
  declare -g -A RPORT=()
  for i in 1 2 3; do RPORT[$i]=$(free_port); done
  psql -q "$PG_URL" -c "CREATE DATABASE berth_$BACKEND" >/dev/null || fail "could not create database berth_$BACKEND"
  DB_URL=${PG_URL%/postgres}/berth_$BACKEND
  if [ "$BACKEND" = s3 ]; then
    REDIS_DB_URL=$REDIS_URL/2
    eval "$("$ROOT/scripts/services.sh" start garage3 "$W/svc")"
    read -r -a G <<<"$TEST_BERTH_S3_ENDPOINTS"
    # Replicas talk to nodes 1 and 2; node 3 is the one that will be stopped.
    declare -g -A S3_ENDPOINT_OF=([1]=${G[0]} [2]=${G[1]} [3]=${G[0]})
    check "Garage: 3 nodes (replication_factor 3): ${G[*]}"
  else
    REDIS_DB_URL=$REDIS_URL/1
    mkdir -p "$P/storage"
  fi
  # All three start at once: concurrent migrations and first-start key generation must converge.
  for i in 1 2 3; do start_replica "$i"; done
  for i in 1 2 3; do wait_healthy "$i" 90; done
  start_nginx
  local code
  code=$(lb -o /dev/null -w '%{http_code}' "$LB/api/v2.0/health") || true
  [ "$code" = 200 ] || fail "nginx does not answer health: $code"
  check "replicas on ${RPORT[1]}, ${RPORT[2]}, ${RPORT[3]} healthy; nginx https://127.0.0.1:$LB_PORT (deploy/nginx/berth.conf rendered)"
  local keys
  keys=$(psql -qAt "$DB_URL" -c "SELECT count(*) FROM secrets" 2>/dev/null || echo '?')
  check "shared secrets rows after 3 concurrent first starts: $keys"
  step_done

  step_a
  if [ "$BACKEND" = s3 ]; then
    "$ROOT/scripts/services.sh" garage3-node stop "$W/svc" 3
    note "Garage node 3 stopped (SIGKILL) before b and c: writes and reads need 2 of 3 nodes"
  fi
  step_b
  step_c
  if [ "$BACKEND" = s3 ]; then
    "$ROOT/scripts/services.sh" garage3-node start "$W/svc" 3
    for i in 1 2 3; do wait_healthy "$i" 30; done
    check "Garage node 3 started again; replicas healthy"
  fi
  step_p
  if [ "$BACKEND" = fs ]; then step_w; step_d; step_r; fi
  step_e

  step shutdown "SIGTERM to the replicas (graceful), nginx stopped"
  for i in 1 2 3; do stop_pid "$P/r$i/pid" TERM; done
  for i in 1 2 3; do
    grep -q '"message":"stopped"' "$P/r$i/berth.log" || fail "r$i did not log a clean stop"
  done
  stop_pid "$P/nginx/nginx.pid" QUIT
  step_done
  PHASE=""
}

for b in $BACKENDS; do
  case $b in
    fs | s3) run_backend "$b" ;;
    *) fail "unknown backend $b (HA_BACKENDS: fs, s3)" ;;
  esac
done

CURRENT=summary
say ""
say "==> summary ($(since "$T_START") s)"
for t in "${TIMINGS[@]}"; do say "    $t"; done
say ""
for r in "${RESULTS[@]}"; do say "    $r"; done
SUCCESS=1
say ""
say "ha.sh: PASSED ($BACKENDS) in $(since "$T_START") s"

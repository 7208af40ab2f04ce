#!/usr/bin/env bash
# berth's registry against CNCF distribution 2.8 (Debian's docker-registry), side by side on
# 127.0.0.1, both on filesystem storage under one temporary directory, both with HTTP Basic auth.
#
#   bench/registry.sh                 builds berth (release), runs everything (~5.5 min), prints a
#                                     Markdown report on stdout (progress on stderr)
#
# Environment:
#   SKIP_BUILD=1       use the existing binary         BERTH_BIN   default $CARGO_TARGET_DIR/release/berth
#   CARGO_TARGET_DIR   default ~/.cache/berth/target   REPS        repetitions of push/pull (5)
#   BLOB_GETS          repetitions of the blob GET (5) WRK_DURATION  manifest load duration (10s)
#   BCRYPT_COST        the peer's htpasswd cost (5)    KEEP=1      keep the work directory
#   OUT=FILE           also write the report to FILE
#
# What is measured, per registry (see bench/README.md):
#   1. skopeo push (oci: layout -> docker://) and pull (docker:// -> fresh dir:) of a 512 MiB
#      one-layer image and of a 64 MiB three-layer image of random bytes: a new image, a new
#      repository and a new skopeo blob-info cache for every measurement; median of REPS.
#      The same pulls again with bench/pull (berth-pull: token/Basic auth, manifest digest checked,
#      blobs streamed to files while SHA-NI hashes them, up to 6 at once), after one untimed pull:
#      skopeo pulls no faster from nginx serving the files statically than from either registry, so
#      the pull targets are judged with berth-pull, which is not the bottleneck. Both pulls also
#      from nginx (static files, sendfile): the clients' ceilings.
#   2. curl GET of the 512 MiB blob (speed_download), median of BLOB_GETS.
#   3. wrk -t2 -c32 manifest GETs by tag with Basic auth, after one checked request and a 2 s
#      warm-up: requests/s and p99 latency. For information also without credentials (berth:
#      anonymous pull from the public project; distribution: a second instance, auth off).
#   4. server CPU (utime+stime from /proc/PID/stat) per GiB during each timed 512 MiB push.
#   5. a freshly started server process takes one more 512 MiB push while VmRSS is sampled every
#      50 ms: peak VmRSS, and VmHWM after the push.
#   6. (information) a freshly started server gets 32 concurrent clients with Basic credentials
#      for 3 s (wrk on the manifest): VmHWM and the worst latency.
# Every process started here is stopped by PID on exit; the work directory is removed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" # log, die, alive, stop_berth
repo_root=$(cd "$here/.." && pwd)
REPS=${REPS:-5}
BLOB_GETS=${BLOB_GETS:-5}
WRK_DURATION=${WRK_DURATION:-10s}
WRK_THREADS=2
WRK_CONNS=32
BIG_BYTES=$((512 << 20))
SMALL_LAYERS=3
SMALL_LAYER_BYTES=$(((64 << 20) / 3))
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/berth/target}
BERTH_BIN=${BERTH_BIN:-$CARGO_TARGET_DIR/release/berth}
PULL_BIN=${PULL_BIN:-$CARGO_TARGET_DIR/release/berth-pull}
RUSER=admin
RPASS=Harbor12345
AUTH_B64=$(printf '%s:%s' "$RUSER" "$RPASS" | base64)
OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json


# ------------------------------------------------------------------ tools

missing=()
for p in skopeo:skopeo wrk:wrk docker-registry:docker-registry htpasswd:apache2-utils curl:curl python3:python3 nginx:nginx; do
  command -v "${p%%:*}" >/dev/null || missing+=("${p#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# ------------------------------------------------------------------ work dir, cleanup

W=$(mktemp -d /tmp/berth-bench.XXXXXX)
BERTH_PID=""
SAMPLER_PID=""
STATIC_PID=""
cleanup() {
  local rc=$?
  set +e
  alive "$SAMPLER_PID" && kill "$SAMPLER_PID" 2>/dev/null
  alive "$STATIC_PID" && { kill "$STATIC_PID" 2>/dev/null; wait "$STATIC_PID" 2>/dev/null; }
  stop_berth
  [ -d "$W/peer" ] && "$here/../end2end/registry/distribution.sh" stop "$W/peer"
  [ -d "$W/peer-noauth" ] && "$here/../end2end/registry/distribution.sh" stop "$W/peer-noauth"
  if [ "${KEEP:-}" = 1 ] || [ $rc -ne 0 ]; then
    [ $rc -ne 0 ] && { log "logs:"; tail -n 20 "$W/berth.log" "$W/peer/registry.log" >&2 2>/dev/null; }
    if [ "${KEEP:-}" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
  else
    rm -rf "$W"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
BERTH_PORT=$(free_port)
PEER_PORT=$(free_port)
while [ "$PEER_PORT" = "$BERTH_PORT" ]; do PEER_PORT=$(free_port); done
PEER_NOAUTH_PORT=$(free_port)
while [ "$PEER_NOAUTH_PORT" = "$BERTH_PORT" ] || [ "$PEER_NOAUTH_PORT" = "$PEER_PORT" ]; do PEER_NOAUTH_PORT=$(free_port); done
STATIC_PORT=$(free_port)
while [[ " $BERTH_PORT $PEER_PORT $PEER_NOAUTH_PORT " == *" $STATIC_PORT "* ]]; do STATIC_PORT=$(free_port); done
mkdir -p "$W/berth" "$W/peer" "$W/img" "$W/pull" "$W/cache"
: >"$W/raw.tsv"

# skopeo: own policy and registries.conf, no auth file, and a blob-info cache per call
# (_CONTAINERS_ROOTLESS_UID moves it from /var/lib/containers/cache to $XDG_DATA_HOME).
echo '{"default": [{"type": "insecureAcceptAnything"}]}' >"$W/policy.json"
echo 'unqualified-search-registries = []' >"$W/registries.conf"
export REGISTRY_AUTH_FILE=$W/auth.json
sk() {
  local cache=$1
  shift
  mkdir -p "$cache/tmp"
  env _CONTAINERS_ROOTLESS_UID=65534 XDG_DATA_HOME="$cache/data" XDG_CONFIG_HOME="$cache/config" \
    TMPDIR="$cache/tmp" skopeo --policy "$W/policy.json" --registries-conf "$W/registries.conf" "$@"
}

# ------------------------------------------------------------------ servers

start_berth() {
  local v unset_args=()
  for v in $(compgen -e); do [[ $v == BERTH_* ]] && unset_args+=(-u "$v"); done
  (cd "$W/berth" && exec env "${unset_args[@]}" BERTH_LISTEN="127.0.0.1:$BERTH_PORT" \
    BERTH_EXTERNAL_URL="http://127.0.0.1:$BERTH_PORT" BERTH_LOG__LEVEL=warn \
    "$BERTH_BIN" >>"$W/berth.log" 2>&1 </dev/null) &
  BERTH_PID=$!
  local i
  for ((i = 0; i < 300; i++)); do
    alive "$BERTH_PID" || die "berth exited at start"
    [ "$(curl -fsS "http://127.0.0.1:$BERTH_PORT/api/v2.0/ping" 2>/dev/null)" = Pong ] && return 0
    sleep 0.1
  done
  die "berth did not answer Pong in 30 s"
}

# The peer is end2end/registry/distribution.sh, as quiet as berth (warn, no access log) and with
# an explicit bcrypt cost.
DIST=$here/../end2end/registry/distribution.sh
start_peer() {
  DIST_BCRYPT_COST=${BCRYPT_COST:-5} DIST_QUIET=1 "$DIST" start "$W/peer" "$PEER_PORT" "$RUSER" "$RPASS" >/dev/null
}
stop_peer() { "$DIST" stop "$W/peer"; }

pid_of() { if [ "$1" = berth ]; then echo "$BERTH_PID"; else cat "$W/peer/registry.pid"; fi; }
port_of() {
  case $1 in berth) echo "$BERTH_PORT" ;; peer) echo "$PEER_PORT" ;; static) echo "$STATIC_PORT" ;; esac
}

# The client's ceiling for pulls: nginx serving the generated images as static files (sendfile,
# no auth, one worker) at the /v2 paths skopeo asks for — the least work any server can do. A
# registry pulling as fast as this is limited by the client, not by itself.
start_static() {
  local d img name f
  d=$W/static
  mkdir -p "$d/www"
  for img in "$W"/img/big-*/; do
    img=${img%/}
    name=$(basename "$img")
    [ "$name" = big-rss ] && continue
    mkdir -p "$d/www/v2/library/$name/manifests" "$d/www/v2/library/$name/blobs"
    for f in "$img"/blobs/sha256/*; do ln "$f" "$d/www/v2/library/$name/blobs/sha256:$(basename "$f")"; done
    cp "$img/blobs/sha256/$(json_field "$img.json" digest | cut -d: -f2)" "$d/www/v2/library/$name/manifests/v1"
  done
  # As root, nginx's workers would run as nobody, who cannot enter the mktemp -d (0700) directory.
  local user=""
  [ "$(id -u)" = 0 ] && user="user root;"
  mkdir -p "$d/tmp"
  cat >"$d/nginx.conf" <<NGINX
daemon off;
$user
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  sendfile on;
  tcp_nopush on;
  types { }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$STATIC_PORT;
    root $d/www;
    location = /v2/ { default_type application/json; return 200 '{}'; }
    location ~ /manifests/ { default_type $OCI_MANIFEST; }
  }
}
NGINX
  nginx -e "$d/error.log" -c "$d/nginx.conf" -p "$d" >"$d/stderr.log" 2>&1 &
  STATIC_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$STATIC_PORT/v2/")" = 200 ] && return 0
    alive "$STATIC_PID" || { cat "$d/stderr.log" "$d/error.log" >&2; die "nginx exited at start"; }
    sleep 0.1
  done
  die "nginx did not answer in 10 s"
}

# utime and stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12, $13 }'; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
TICKS=$(getconf CLK_TCK)

# Samples VmRSS (KiB) of PID every 50 ms until STOPFILE exists; writes the maximum to OUT.
sample_rss() {
  local pid=$1 stop=$2 out=$3 max=0 k v u
  while [ ! -e "$stop" ]; do
    if [ -r "/proc/$pid/status" ]; then
      while read -r k v u; do
        if [ "$k" = VmRSS: ]; then [ "$v" -gt "$max" ] && max=$v; break; fi
      done <"/proc/$pid/status"
    fi
    sleep 0.05
  done
  echo "$max" >"$out"
}

record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$W/raw.tsv"; }
now() { date +%s.%N; }
calc() { python3 -c "print($1)"; }
json_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

# ------------------------------------------------------------------ measurements

# push REG KIND REP [PHASE]: pushes image $W/img/KIND-REP to library/KIND-REP[-PHASE]; records
# time, MB/s, and for big images CPU-s/GiB and peak VmRSS.
push() {
  local reg=$1 kind=$2 rep=$3 phase=${4:-timed}
  local img=$W/img/$kind-$rep name=library/$kind-$rep pid port cache t0 t1 u0 s0 u1 s1 bytes stop
  [ "$phase" = timed ] || name=$name-$phase
  pid=$(pid_of "$reg")
  port=$(port_of "$reg")
  cache=$W/cache/push-$reg-$kind-$rep-$phase
  bytes=$(json_field "$img.json" total_bytes)
  stop=$W/cache/stop-$reg-$kind-$rep-$phase
  rm -f "$stop"
  sample_rss "$pid" "$stop" "$W/cache/rss-$reg-$kind-$rep-$phase" &
  SAMPLER_PID=$!
  sync # no dirty pages of an earlier measurement are written back during this one
  read -r u0 s0 < <(cpu_ticks "$pid")
  t0=$(now)
  sk "$cache" copy --preserve-digests --dest-tls-verify=false --dest-creds "$RUSER:$RPASS" \
    --digestfile "$cache/digest" "oci:$img:v1" "docker://127.0.0.1:$port/$name:v1" \
    >"$cache.log" 2>&1 || { cat "$cache.log" >&2; die "push of $name to $reg"; }
  t1=$(now)
  read -r u1 s1 < <(cpu_ticks "$pid")
  touch "$stop"
  wait "$SAMPLER_PID"
  SAMPLER_PID=""
  [ "$(cat "$cache/digest")" = "$(json_field "$img.json" digest)" ] || die "$reg: pushed digest differs"
  [ -s "$cache/data/containers/cache/blob-info-cache-v1.boltdb" ] ||
    die "skopeo's blob-info cache is not in $cache (it would skip blobs in later runs)"
  local secs mbps cpu cpu_user cpu_sys rss gib
  secs=$(calc "$t1 - $t0")
  mbps=$(calc "$bytes / 1e6 / ($t1 - $t0)")
  gib=$(calc "$bytes / 2**30")
  cpu=$(calc "($u1 + $s1 - $u0 - $s0) / $TICKS / $gib")
  cpu_user=$(calc "($u1 - $u0) / $TICKS / $gib")
  cpu_sys=$(calc "($s1 - $s0) / $TICKS / $gib")
  rss=$(calc "$(cat "$W/cache/rss-$reg-$kind-$rep-$phase") / 1024")
  if [ "$phase" = timed ]; then
    record "$reg" "push_${kind}_s" "$secs"
    record "$reg" "push_${kind}_mbps" "$mbps"
    if [ "$kind" = big ]; then
      record "$reg" cpu_s_per_gib "$cpu"
      record "$reg" cpu_user_s_per_gib "$cpu_user"
      record "$reg" cpu_sys_s_per_gib "$cpu_sys"
      record "$reg" rss_peak_timed_pushes_mib "$rss"
    fi
  else
    record "$reg" rss_peak_mib "$rss"
    record "$reg" hwm_mib "$(calc "$(status_kib "$pid" VmHWM) / 1024")"
    record "$reg" cpu_s_per_gib_fresh_process "$cpu"
  fi
  log "$reg push $name: ${secs} s, ${mbps} MB/s, CPU ${cpu} s/GiB, peak RSS ${rss} MiB"
}

# pull_once CLIENT REG PORT NAME DEST LOG: one pull of NAME:v1 into the dir: layout DEST.
#   skopeo      copy docker:// -> dir: with a new blob-info cache (LOG's directory name)
#   berth-pull  bench/pull: token or Basic auth, manifest by tag with its digest checked, blobs
#               streamed to files while hashed (SHA-NI) and verified, up to 6 at once
pull_once() {
  local client=$1 reg=$2 port=$3 name=$4 dest=$5 log=$6
  if [ "$client" = skopeo ]; then
    local creds=(--src-creds "$RUSER:$RPASS")
    [ "$reg" = static ] && creds=()
    sk "${log%.log}" copy --preserve-digests --src-tls-verify=false "${creds[@]}" \
      "docker://127.0.0.1:$port/$name:v1" "dir:$dest" >"$log" 2>&1
  else
    local creds=(--creds "$RUSER:$RPASS")
    [ "$reg" = static ] && creds=()
    "$PULL_BIN" "${creds[@]}" "http://127.0.0.1:$port" "$name" v1 "$dest" >"$log" 2>&1
  fi || { cat "$log" >&2; die "$client pull of $name from $reg"; }
}

# pull CLIENT REG KIND REP: pulls library/KIND-REP with CLIENT (skopeo or berth-pull) into a fresh
# dir: layout, timed; checks the manifest digest and the size. Metrics: pull_* for skopeo,
# fastpull_* for berth-pull (the client the pull targets are judged with).
pull() {
  local client=$1 reg=$2 kind=$3 rep=$4
  local img=$W/img/$kind-$rep name=library/$kind-$rep pid port dest log t0 t1 u0 s0 u1 s1 bytes prefix cpu_metric
  pid=$STATIC_PID
  [ "$reg" = static ] || pid=$(pid_of "$reg")
  port=$(port_of "$reg")
  dest=$W/pull/$client-$reg-$kind-$rep
  log=$W/cache/pull-$client-$reg-$kind-$rep.log
  bytes=$(json_field "$img.json" total_bytes)
  if [ "$client" = skopeo ]; then
    prefix=pull cpu_metric=cpu_s_per_gib_pulled
  else
    prefix=fastpull cpu_metric=cpu_s_per_gib_fastpulled
    # One untimed pull first. This VM's balloon has free page reporting on: the 512 MiB the
    # previous command wrote and deleted went back to the host, and the first process to allocate
    # that much again pays the host's page faults (the first pull after a skopeo pull took 2-3 x as
    # long as the next one, from either registry and from nginx). The timed pull then measures the
    # servers. (skopeo is client-bound either way; its pulls stay as they were measured before.)
    pull_once "$client" "$reg" "$port" "$name" "$dest" "$log"
    rm -rf "$dest"
  fi
  sync # no dirty pages of an earlier measurement are written back during this one
  read -r u0 s0 < <(cpu_ticks "$pid")
  t0=$(now)
  pull_once "$client" "$reg" "$port" "$name" "$dest" "$log"
  t1=$(now)
  read -r u1 s1 < <(cpu_ticks "$pid")
  [ "sha256:$(sha256sum "$dest/manifest.json" | cut -d' ' -f1)" = "$(json_field "$img.json" digest)" ] ||
    die "$reg: pulled manifest differs"
  [ "$(du -sb "$dest" | cut -f1)" -ge "$bytes" ] || die "$reg: pulled layout is short"
  rm -rf "$dest"
  record "$reg" "${prefix}_${kind}_s" "$(calc "$t1 - $t0")"
  record "$reg" "${prefix}_${kind}_mbps" "$(calc "$bytes / 1e6 / ($t1 - $t0)")"
  [ "$kind" = big ] && [ "$reg" != static ] && record "$reg" "$cpu_metric" "$(calc "($u1 + $s1 - $u0 - $s0) / $TICKS / ($bytes / 2**30)")"
  log "$reg pull $name with $client: $(calc "round($t1 - $t0, 3)") s"
}

blob_get() {
  local reg=$1 port digest size out code got speed
  port=$(port_of "$reg")
  digest=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['layers'][0])" "$W/img/big-1.json")
  size=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['layer_sizes'][0])" "$W/img/big-1.json")
  out=$(curl -s -o /dev/null -u "$RUSER:$RPASS" -w '%{http_code} %{size_download} %{speed_download}' \
    "http://127.0.0.1:$port/v2/library/big-1/blobs/$digest")
  read -r code got speed <<<"$out"
  [ "$code" = 200 ] && [ "$got" = "$size" ] || die "$reg: blob GET answered $code with $got of $size bytes"
  record "$reg" blob_get_mbps "$(calc "$speed / 1e6")"
  log "$reg blob GET: $(calc "round($speed / 1e6, 1)") MB/s"
}

# manifest_load REG [anon|token]: one checked GET, a 2 s warm-up, then wrk. With "anon": no
# Authorization header (berth: the public project; the peer: a second instance without auth on
# the same storage). With "token" (berth only): a bearer token from /service/token, as docker
# and podman send after login.
manifest_load() {
  local reg=$1 mode=${2:-auth} port url code tag=$1 hdr=() tok
  port=$(port_of "$reg")
  if [ "$mode" = anon ]; then
    tag=$reg-anon
    [ "$reg" = peer ] && port=$PEER_NOAUTH_PORT
  elif [ "$mode" = token ]; then
    tag=$reg-token
    tok=$(curl -fsS -H "Authorization: Basic $AUTH_B64" \
      "http://127.0.0.1:$port/service/token?service=harbor-registry&scope=repository:library/small-1:pull" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
    hdr=(-H "Authorization: Bearer $tok")
  else
    hdr=(-H "Authorization: Basic $AUTH_B64")
  fi
  url=http://127.0.0.1:$port/v2/library/small-1/manifests/v1
  code=$(curl -s -o "$W/manifest-$tag.json" -D "$W/manifest-$tag.headers" -w '%{http_code}' \
    "${hdr[@]}" -H "Accept: $OCI_MANIFEST" "$url")
  if [ "$code" != 200 ]; then
    cat "$W/manifest-$tag.headers" "$W/manifest-$tag.json" >&2
    die "$tag: GET $url answered $code"
  fi
  [ "sha256:$(sha256sum "$W/manifest-$tag.json" | cut -d' ' -f1)" = "$(json_field "$W/img/small-1.json" digest)" ] ||
    die "$tag: GET $url returned other bytes than pushed"
  local args=(-t"$WRK_THREADS" -c"$WRK_CONNS" "${hdr[@]}" -H "Accept: $OCI_MANIFEST")
  wrk "${args[@]}" -d2s "$url" >/dev/null # warm-up (connections, caches, berth's credential cache)
  wrk "${args[@]}" -d"$WRK_DURATION" --latency "$url" >"$W/wrk-$tag.txt"
  log "$tag manifest GET: $(grep Requests/sec "$W/wrk-$tag.txt")"
}

# burst REG: on a freshly started server, 32 clients with Basic credentials at once (3 s of
# wrk on the manifest), then VmHWM: what a cold credential cache costs under concurrency.
burst() {
  local reg=$1 pid port
  pid=$(pid_of "$reg")
  port=$(port_of "$reg")
  wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d3s --latency -H "Authorization: Basic $AUTH_B64" \
    -H "Accept: $OCI_MANIFEST" "http://127.0.0.1:$port/v2/library/small-1/manifests/v1" >"$W/wrk-$reg-burst.txt"
  record "$reg" burst_hwm_mib "$(calc "$(status_kib "$pid" VmHWM) / 1024")"
  log "$reg after a 32-client burst on a fresh process: VmHWM $(status_kib "$pid" VmHWM) KiB"
}

# ------------------------------------------------------------------ run

if [ "${SKIP_BUILD:-}" != 1 ]; then
  log "building berth (release) in $CARGO_TARGET_DIR"
  (cd "$repo_root" && cargo build --release -p server -p berth-pull >&2)
fi
[ -x "$BERTH_BIN" ] || die "no berth binary at $BERTH_BIN"
[ -x "$PULL_BIN" ] || die "no berth-pull binary at $PULL_BIN (cargo build --release -p berth-pull)"

log "generating images in $W/img ($REPS × 512 MiB + $REPS × 3 × $SMALL_LAYER_BYTES bytes + 1 × 512 MiB)"
gen() { python3 "$here/mkimage-big.py" "$W/img/$1" --layers "$2" --layer-bytes "$3" >"$W/img/$1.json"; }
for ((rep = 1; rep <= REPS; rep++)); do # two at a time
  gen "big-$rep" 1 "$BIG_BYTES" &
  bg=$!
  if [ "$rep" = 1 ]; then gen big-rss 1 "$BIG_BYTES"; fi
  gen "small-$rep" "$SMALL_LAYERS" "$SMALL_LAYER_BYTES"
  wait "$bg" || die "image generation"
done

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "starting berth on 127.0.0.1:$BERTH_PORT and distribution on 127.0.0.1:$PEER_PORT"
start_berth
start_peer
start_static
for reg in berth peer; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -u "$RUSER:$RPASS" "http://127.0.0.1:$(port_of $reg)/v2/")
  [ "$code" = 200 ] || die "$reg: authenticated GET /v2/ answered $code"
done

for ((rep = 1; rep <= REPS; rep++)); do
  # Alternate which registry goes first, so that neither always runs on a warmer page cache.
  if [ $((rep % 2)) = 1 ]; then order="berth peer"; else order="peer berth"; fi
  for reg in $order; do
    push "$reg" big "$rep"
    pull skopeo "$reg" big "$rep"
    push "$reg" small "$rep"
    pull skopeo "$reg" small "$rep"
    pull berth-pull "$reg" big "$rep"
    pull berth-pull "$reg" small "$rep"
  done
  pull skopeo static big "$rep"
  pull berth-pull static big "$rep"
done

for ((i = 1; i <= BLOB_GETS; i++)); do
  blob_get berth
  blob_get peer
done

manifest_load berth
manifest_load peer
manifest_load berth anon
manifest_load berth token
DIST_NOAUTH=1 DIST_QUIET=1 DIST_DATA="$W/peer/data" "$DIST" start "$W/peer-noauth" "$PEER_NOAUTH_PORT" - - >/dev/null
manifest_load peer anon
"$DIST" stop "$W/peer-noauth"

log "fresh server processes for the RSS measurement"
stop_berth
start_berth
stop_peer
start_peer
push berth big rss fresh
push peer big rss fresh

log "fresh server processes for the concurrent-login burst"
stop_berth
start_berth
burst berth
stop_peer
start_peer
burst peer

# ------------------------------------------------------------------ report

rev=$(git -C "$repo_root" rev-parse --short HEAD)
dirty=$(git -C "$repo_root" status --porcelain --untracked-files=no -- server Cargo.toml Cargo.lock | wc -l)
{
  echo "reps=$REPS"
  echo "blob_gets=$BLOB_GETS"
  echo "wrk_conns=$WRK_CONNS"
  echo "wrk_duration=$WRK_DURATION"
} >"$W/meta.txt"

report() {
  echo "## Run of $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 2^20 }' /proc/meminfo) RAM, $(uname -sr)"
  echo "- berth: git $rev$([ "$dirty" -gt 0 ] && echo " + $dirty uncommitted server/Cargo files") ($BERTH_BIN, release), SQLite + filesystem storage, BERTH_LOG__LEVEL=warn"
  echo "- peer: docker-registry $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null) (distribution $(docker-registry --version 2>/dev/null | awk '{ print $3 }')), filesystem storage, htpasswd bcrypt cost ${BCRYPT_COST:-5}, log level warn, access log off"
  echo "- clients: $(skopeo --version), $(wrk --version 2>&1 | head -1 | awk '{ print $1, $2 }'), $(curl --version | head -1 | awk '{ print $1, $2 }')"
  echo "- load average (1/5/15 min) when the servers started: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- command: \`bench/registry.sh\` (REPS=$REPS BLOB_GETS=$BLOB_GETS WRK_DURATION=$WRK_DURATION)"
  echo
  python3 "$here/report.py" "$W"
}
report >"$W/report.md"
cat "$W/report.md"
[ -n "${OUT:-}" ] && cp "$W/report.md" "$OUT"
log "done"

#!/usr/bin/env bash
# Enterprise identity with real clients: berth in LDAP mode against OpenLDAP slapd, then in OIDC
# mode against the oidc-provider test server, both started by scripts/services.sh on 127.0.0.1.
#   end2end/registry/identity.sh <path to berth binary> [ldap] [oidc]     (default: both)
# Every berth is fresh (SQLite, its own directory, a free port) and stopped by PID on exit,
# like the services (scripts/services.sh stop) and the private dockerd. KEEP=1 keeps WORKDIR.
#
# ldap: docker/podman/skopeo with a directory user's password; an LDAP group (/usergroups) made
#   developer of a private project gives its member push, a non-member is denied; ldapmodify
#   removes the member from the group and, after auth.directory_cache (2 s here), the next token
#   lacks push (docker/skopeo push refused) while pull still works through a direct guest role;
#   a wrong password and LDAP filter injections fail; the lockout holds for directory users;
#   with slapd stopped the local admin still logs in and a directory user gets a clear refusal.
# oidc: the browser-less login through the provider's form (identity_oidc.py) onboards the
#   user, its CLI secret is read and set (PUT /users/{id}/cli_secret), docker login with the
#   CLI secret, push/pull through an OIDC group; the provider password is refused; after the
#   provider revokes the user's grants the CLI secret stops working once berth's refresh fails.
# Every check compares exit codes and outputs; a failed check prints `FAIL`, the script goes on
# where it can and exits 1 at the end. Logs: WORKDIR/logs.
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
[ $# -ge 1 ] || { sed -n '2,20p' "$0" >&2; exit 2; }
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -x "$BIN" ] || { echo "identity.sh: $BIN is not an executable" >&2; exit 2; }
shift
STEPS=${*:-ldap oidc}
for s in $STEPS; do [[ " ldap oidc " == *" $s "* ]] || { echo "identity.sh: unknown step $s" >&2; exit 2; }; done
ADMIN_PASS=Harbor12345
CACHE_S=2        # auth.directory_cache of every berth here
MAX_FAILED=3     # auth.max_failed_logins
CELL_TIMEOUT=${CELL_TIMEOUT:-120}
T0=$(date +%s)

# shellcheck source=../../scripts/lib.sh
. "$ROOT/scripts/lib.sh" # ensure_apt
# shellcheck source=lib-clients.sh
. "$HERE/lib-clients.sh"
WORKDIR=$(mktemp -d /tmp/bid.XXXXXX)
e2e_workdir identity.sh
e2e_isolate
echo '{"auths":{}}' >"$REGISTRY_AUTH_FILE"
mkdir -p "$WORKDIR"/{docker,podman-auth}
LOG=$WORKDIR/logs/identity.log

PIDS=() DOCKERD_DIR="" FAILURES=() NCHECKS=0 SECRETS=("$ADMIN_PASS")
cleanup() {
  local rc=$? p
  trap - ERR
  set +e
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
  done
  [ -z "$DOCKERD_DIR" ] || "$ROOT/scripts/dockerd.sh" stop "$DOCKERD_DIR" >/dev/null 2>&1
  for d in "$WORKDIR"/svc-*; do [ -d "$d" ] && "$ROOT/scripts/services.sh" stop "$d" >/dev/null 2>&1; done
  if [ $rc -ne 0 ] || [ "${KEEP:-}" = 1 ]; then echo "identity.sh: kept $WORKDIR (logs in $WORKDIR/logs)" >&2
  else rm -rf "$WORKDIR"; fi
  exit $rc
}
trap cleanup EXIT
trap 'echo "    error: line $LINENO: $BASH_COMMAND" >&2' ERR

# ------------------------------------------------------------------ output and checks
say() { printf '%s\n' "$*"; }
mask() {
  local s="$*" x
  s=${s//"${SKOPEO[*]}"/skopeo}; s=${s//"${PODMAN[*]}"/podman}
  for x in "${SECRETS[@]}"; do [ ${#x} -lt 4 ] || s=${s//"$x"/***}; done
  printf '%s' "$s"
}
die() { say "FAIL (setup): $(mask "$*")" >&2; exit 1; }
ok() { NCHECKS=$((NCHECKS + 1)); say "ok   $(mask "$*")"; }
bad() { NCHECKS=$((NCHECKS + 1)); say "FAIL $(mask "$*")"; FAILURES+=("$(mask "$*")"); }
# check DESCRIPTION GOT WANT
check() { if [ "$2" = "$3" ]; then ok "$1 ($2)"; else bad "$1: got '$2', expected '$3'"; fi; }
tail_out() { tail -n "${2:-5}" "$1" | while IFS= read -r l; do say "     | $(mask "$l" | cut -c1-200)"; done; }

# run CMD...: runs a client with a timeout (stdin: RUN_INPUT), output in OUT; returns its status.
OUT=$WORKDIR/tmp/out RUN_INPUT=""
run() {
  local rc=0
  printf '\n$ %s\n' "$(mask "$*")" >>"$LOG"
  if declare -F "$1" >/dev/null; then # dk and ldap_admin bound their commands themselves
    "$@" >"$OUT" 2>&1 <<<"$RUN_INPUT" || rc=$?
  else
    timeout -k 5 "$CELL_TIMEOUT" "$@" >"$OUT" 2>&1 <<<"$RUN_INPUT" || rc=$?
  fi
  RUN_INPUT=""
  mask "$(cat "$OUT")" >>"$LOG"; printf '\n(exit %s)\n' "$rc" >>"$LOG"
  return $rc
}
AUTH_RE='unauthori[sz]ed|denied|forbidden|authentication required|insufficient[_ ]scope|(status|code)[: ]*40[13]|\b40[13] (Unauthorized|Forbidden)|incorrect username or password'
# allowed DESCRIPTION CMD...: the client must succeed
allowed() {
  local d=$1; shift
  if run "$@"; then ok "$d -> allowed"; return 0; fi
  bad "$d -> failed, expected allowed"; tail_out "$OUT"; return 1
}
# denied DESCRIPTION CMD...: the client must fail for want of a right (not 404/500/timeout);
# the outcome is a check (status 0 either way)
denied() {
  local d=$1; shift
  if run "$@"; then bad "$d -> allowed, expected denied"; return 0; fi
  if grep -Eqi "$AUTH_RE" "$OUT"; then ok "$d -> denied"; return 0; fi
  bad "$d -> failed, but not for want of a right"; tail_out "$OUT"
}

# ------------------------------------------------------------------ berth and its REST API
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
R="" API="" REALM="" SERVICE=""
# start_berth NAME: a fresh berth; sets R, API, REALM, SERVICE
start_berth() {
  local name=$1 port v unset_args=() hdrs
  for v in $(compgen -e); do [[ $v == BERTH_* ]] && unset_args+=(-u "$v"); done
  port=$(free_port)
  mkdir -p "$WORKDIR/$name"
  (cd "$WORKDIR/$name" && exec env "${unset_args[@]}" BERTH_LISTEN=127.0.0.1:$port \
    BERTH_EXTERNAL_URL=http://127.0.0.1:$port BERTH_LOG__LEVEL=${BERTH_LOG__LEVEL:-info} \
    BERTH_AUTH__DIRECTORY_CACHE=${CACHE_S}s BERTH_AUTH__MAX_FAILED_LOGINS=$MAX_FAILED \
    BERTH_AUTH__LOCKOUT=10m "$BIN" >"$WORKDIR/logs/berth-$name.log" 2>&1 </dev/null) &
  PIDS+=($!)
  for _ in $(seq 150); do
    curl -fsS "http://127.0.0.1:$port/api/v2.0/ping" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fsS "http://127.0.0.1:$port/api/v2.0/ping" >/dev/null 2>&1 || { tail -20 "$WORKDIR/logs/berth-$name.log"; die "berth $name did not start"; }
  R=127.0.0.1:$port API=http://$R/api/v2.0
  hdrs=$(curl -sS -D - -o /dev/null "http://$R/v2/" | grep -i '^www-authenticate:' | tr -d '\r')
  REALM=$(sed -n 's/.*realm="\([^"]*\)".*/\1/p' <<<"$hdrs")
  SERVICE=$(sed -n 's/.*service="\([^"]*\)".*/\1/p' <<<"$hdrs")
  [ -n "$REALM" ] && [ -n "$SERVICE" ] || die "no Bearer challenge on http://$R/v2/: $hdrs"
  say "    berth $name on $R (auth.directory_cache ${CACHE_S}s, max_failed_logins $MAX_FAILED)"
}

API_STATUS="" API_BODY="" API_LOCATION=""
# api METHOD PATH [JSON]: as admin (Basic)
api() {
  local m=$1 p=$2 d=${3:-} args
  args=(-sS -X "$m" -u "admin:$ADMIN_PASS" -H 'Accept: application/json' -D "$WORKDIR/tmp/h" -o "$WORKDIR/tmp/b" -w '%{http_code}')
  [ -z "$d" ] || args+=(-H 'Content-Type: application/json' --data-binary "$d")
  : >"$WORKDIR/tmp/b"
  API_STATUS=$(curl "${args[@]}" "$API$p" 2>>"$LOG") || API_STATUS=000
  API_BODY=$(cat "$WORKDIR/tmp/b")
  API_LOCATION=$( (grep -i '^location:' "$WORKDIR/tmp/h" || true) | tail -n 1 | cut -d' ' -f2- | tr -d '\r')
  printf '\n> %s %s %s\n< %s %s %s\n' "$m" "$p" "$(mask "$d" | head -c 600)" "$API_STATUS" "$API_LOCATION" "$(mask "$API_BODY" | head -c 600)" >>"$LOG"
}
api_ok() { local want=$1; shift; api "$@"; [ "$API_STATUS" = "$want" ] || die "$1 $2 answered $API_STATUS, expected $want: $(head -c 400 <<<"$API_BODY")"; }

# token USER PASS SCOPE: TOKEN_STATUS and TOKEN_ACTIONS (the granted actions, comma-separated)
TOKEN_STATUS="" TOKEN_ACTIONS="" TOKEN_BODY=""
token() {
  TOKEN_STATUS=$(curl -sS -G -o "$WORKDIR/tmp/tok" -w '%{http_code}' -u "$1:$2" --data-urlencode "service=$SERVICE" \
    --data-urlencode "scope=$3" "$REALM" 2>>"$LOG") || TOKEN_STATUS=000
  TOKEN_BODY=$(head -c 300 "$WORKDIR/tmp/tok")
  TOKEN_ACTIONS=$(python3 - "$WORKDIR/tmp/tok" <<'PY' 2>/dev/null || echo "-"
import base64, json, sys
t = json.load(open(sys.argv[1])).get("token", "")
p = t.split(".")[1]
claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
print(",".join(sorted(a for x in claims.get("access", []) for a in x.get("actions", []))) or "none")
PY
  )
  printf '\ntoken %s scope=%s -> %s actions=%s\n' "$1" "$3" "$TOKEN_STATUS" "$TOKEN_ACTIONS" >>"$LOG"
}

MANIFEST_ACCEPT="application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json"
# manifest_digest REPO REF: the digest as admin sees it; empty when 404
manifest_digest() {
  local tok code
  tok=$(curl -sS -G -u "admin:$ADMIN_PASS" --data-urlencode "service=$SERVICE" --data-urlencode "scope=repository:$1:pull" \
    "$REALM" | jq -r '.token // empty') || true
  code=$(curl -sS -o "$WORKDIR/tmp/m" -w '%{http_code}' -H "Authorization: Bearer $tok" -H "Accept: $MANIFEST_ACCEPT" \
    "http://$R/v2/$1/manifests/$2") || code=000
  case $code in
    200) echo "sha256:$(sha256sum "$WORKDIR/tmp/m" | cut -d' ' -f1)" ;;
    404) echo "" ;;
    *) echo "error-$code" ;;
  esac
}

# ------------------------------------------------------------------ images and clients
IMGS=$WORKDIR/layouts/imgs
MK=(python3 "$HERE/mkimage.py") LC=(python3 "$HERE/layoutcheck.py")
mkimg() { "${MK[@]}" image "$IMGS" --layers 1 --layer-size 4K --tag "$1" >/dev/null || die "mkimage.py $1"; "${LC[@]}" ref "$IMGS" "$1"; }
# docker_load TAG: the layout's TAG as docker image e2e/TAG:v1
docker_load() {
  run "${SKOPEO[@]}" copy "oci:$IMGS:$1" "docker-archive:$WORKDIR/tmp/$1.tar:e2e/$1:v1" || { tail_out "$OUT"; die "docker-archive of $1"; }
  run "$DOCKER_BIN" load -i "$WORKDIR/tmp/$1.tar" || { tail_out "$OUT"; die "docker load $1"; }
  rm -f "$WORKDIR/tmp/$1.tar"
}
start_dockerd() {
  [ -z "$DOCKERD_DIR" ] || return 0
  DOCKERD_DIR=$WORKDIR/dockerd
  eval "$("$ROOT/scripts/dockerd.sh" start "$DOCKERD_DIR" 2>>"$WORKDIR/logs/dockerd.log")" || die "dockerd did not start"
  [ -x "$DOCKER_BIN" ] || die "no docker CLI"
}
# dk WHO ARGS...: the docker CLI with WHO's own config directory (logins), under a timeout
dk() { local cfg=$WORKDIR/docker/$1; shift; mkdir -p "$cfg"; timeout -k 5 "$CELL_TIMEOUT" "$DOCKER_BIN" --config "$cfg" "$@"; }
# pushed_digest: the digest docker printed for the last push
pushed_digest() { (grep -o 'digest: sha256:[0-9a-f]*' "$OUT" || true) | tail -n 1 | awk '{print $2}'; }
# docker_push_pull WHO USER REPO TAG: docker push e2e/TAG as USER's login to REPO:v1, admin sees
# the digest docker printed, rmi, pull back: RepoDigests has it. (docker load re-encodes the
# layout's image, so the digest to expect is the one docker pushed, not the layout's.)
docker_push_pull() {
  local who=$1 repo=$3 tag=$4 want="" got
  dk "$who" tag "e2e/$tag:v1" "$R/$repo:v1"
  if allowed "$2 docker push $repo:v1" dk "$who" push "$R/$repo:v1"; then
    want=$(pushed_digest)
    check "$2 docker push $repo:v1: a digest is printed" "$([[ $want =~ ^sha256:[0-9a-f]{64}$ ]] && echo yes)" yes
    check "$repo:v1 as admin sees it" "$(manifest_digest "$repo" v1)" "$want"
  fi
  dk "$who" rmi "$R/$repo:v1" >/dev/null 2>&1 || true
  if allowed "$2 docker pull $repo:v1" dk "$who" pull "$R/$repo:v1"; then
    got=$(dk "$who" image inspect --format '{{join .RepoDigests ","}}' "$R/$repo:v1" 2>&1 || true)
    check "$2 docker pull $repo:v1: RepoDigests" "$got" "$R/$repo@$want"
  fi
}
docker_login() { RUN_INPUT=$3; run dk "$1" login -u "$2" --password-stdin "$R"; }

say "==> identity.sh: steps $STEPS; workdir $WORKDIR"
ensure_apt skopeo podman docker.io curl jq slapd ldap-utils python3-requests

# shellcheck source=identity-ldap.sh
[[ " $STEPS " != *" ldap "* ]] || . "$HERE/identity-ldap.sh"
# shellcheck source=identity-oidc.sh
[[ " $STEPS " != *" oidc "* ]] || . "$HERE/identity-oidc.sh"

if e2e_guard_changed; then bad "isolation: a client wrote outside WORKDIR"; fi
say ""
say "identity.sh: $NCHECKS checks, ${#FAILURES[@]} failure(s), $(($(date +%s) - T0)) s"
if [ ${#FAILURES[@]} -gt 0 ]; then
  for l in "${FAILURES[@]}"; do say "  FAIL $l"; done
  for f in "$WORKDIR"/logs/berth-*.log; do say "--- $(basename "$f") (tail)"; tail -n 25 "$f"; done
  exit 1
fi
say "identity.sh: all checks passed"

#!/usr/bin/env bash
# Permission matrix of berth's token service and RBAC, driven with real clients (skopeo, the
# docker CLI through a private dockerd, podman), then audit-log rows.
#   end2end/registry/rbac.sh REGISTRY WORKDIR
#     REGISTRY  127.0.0.1:PORT of a berth whose admin password is Harbor12345 (BERTH_ADMIN_PASSWORD)
#     WORKDIR   all state of the run, at most 35 characters; empty, absent, or an earlier
#               WORKDIR of an end2end/registry script (then wiped)
# The server must be fresh (users, projects p1 and pub, robot "ci" are created) unless
# RBAC_SUFFIX=-x is set: it is appended to every user, project and robot name.
# Environment: PRINCIPALS="admin sysad2 ..." and CLIENTS="skopeo docker podman" restrict the
#   matrix (audit checks whose cells did not run are skipped); CELL_TIMEOUT (s, default 120)
#   bounds each client command; AUDIT_WAIT (s, default 5) how long an audit row may take.
# Output: one `ok   <principal> <client> <op> <project/repo> -> allowed|denied` line per cell,
# `FAIL ...` lines with the client's last output, audit checks, a summary table. Exit 1 if
# any cell or check is wrong. Logs: WORKDIR/logs (one per principal, api.log, setup.log).
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail

usage() { sed -n '2,15p' "$0" >&2; exit 2; }
[ $# -eq 2 ] || usage
REGISTRY=$1 WORKDIR=$2
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
[[ $REGISTRY =~ ^127\.0\.0\.1:[0-9]+$ ]] || { echo "rbac.sh: REGISTRY must be 127.0.0.1:PORT, not '$REGISTRY'" >&2; exit 2; }
R=$REGISTRY
API=http://$R/api/v2.0
ADMIN_USER="admin"
ADMIN_PASS=${BERTH_ADMIN_PASSWORD:-Harbor12345}
SFX=${RBAC_SUFFIX:-}
[[ $SFX =~ ^[a-z0-9-]*$ ]] || { echo "rbac.sh: RBAC_SUFFIX may hold only a-z, 0-9 and '-'" >&2; exit 2; }
CELL_TIMEOUT=${CELL_TIMEOUT:-120}
AUDIT_WAIT=${AUDIT_WAIT:-5}
ALL_PRINCIPALS="admin sysad2 projectAdmin maintainer developer guest limitedGuest outsider anonymous robot sysRobot"
PRINCIPALS=${PRINCIPALS:-$ALL_PRINCIPALS}
CLIENTS=${CLIENTS:-skopeo docker podman}
T_START=$(date +%s)

# shellcheck source=../../scripts/lib.sh
. "$ROOT/scripts/lib.sh" # ensure_apt
# shellcheck source=lib-clients.sh
. "$HERE/lib-clients.sh" # e2e_workdir, e2e_isolate, SKOPEO, PODMAN, DOCKER_BIN

# ------------------------------------------------------------------ output helpers

PHASE=setup
DOCKERD_DIR=""
SKOPEO=() PODMAN=()
SECRETS=("$ADMIN_PASS")
say() { printf '%s\n' "$*"; }
mask() { # hides every known password and secret, shortens the skopeo/podman wrappers
  local s="$*" x
  if [ ${#SKOPEO[@]} -gt 0 ]; then s=${s//"${SKOPEO[*]}"/skopeo}; fi
  if [ ${#PODMAN[@]} -gt 0 ]; then s=${s//"${PODMAN[*]}"/podman}; fi
  for x in "${SECRETS[@]}"; do
    if [ ${#x} -ge 4 ]; then s=${s//"$x"/***}; fi
  done
  printf '%s' "$s"
}
fail() { # a broken setup: the matrix cannot be trusted, stop here
  say "FAIL [$PHASE]: $*" >&2
  exit 1
}
in_list() { [[ " $2 " == *" $1 "* ]]; }
has_client() { in_list "$1" "$CLIENTS"; }
has_principal() { in_list "$1" "$PRINCIPALS"; }

# runlog LOG CMD...: appends the (masked) command and its output to LOG, keeps the output alone
# in LAST_OUT; the command runs under `timeout CELL_TIMEOUT` with stdin from RUN_INPUT (a
# password for --password-stdin) or /dev/null. Returns the command's status.
LAST_OUT=""
RUN_INPUT=""
runlog() {
  local log=$1 rc=0
  shift
  LAST_OUT=$WORKDIR/tmp/last.out
  printf '\n$ %s\n' "$(mask "$*")" >>"$log"
  if [ -n "$RUN_INPUT" ]; then
    timeout -k 5 "$CELL_TIMEOUT" "$@" >"$LAST_OUT" 2>&1 <<<"$RUN_INPUT" || rc=$?
  else
    timeout -k 5 "$CELL_TIMEOUT" "$@" >"$LAST_OUT" 2>&1 </dev/null || rc=$?
  fi
  RUN_INPUT=""
  if [ $rc -eq 124 ]; then echo "(timed out after $CELL_TIMEOUT s)" >>"$LAST_OUT"; fi
  cat "$LAST_OUT" >>"$log"
  [ $rc -eq 0 ] && echo "(exit 0)" >>"$log" || echo "(exit $rc)" >>"$log"
  return $rc
}
show_tail() { # FILE [N]: the last lines of a client's output, masked and indented
  tail -n "${2:-6}" "$1" 2>/dev/null | while IFS= read -r line; do say "     | $(mask "$line" | cut -c1-240)"; done
}
# setup_run CMD...: a setup command that must succeed (log: logs/setup.log)
setup_run() {
  local log=$WORKDIR/logs/setup.log
  say "    \$ $(mask "$*")"
  runlog "$log" "$@" || { show_tail "$LAST_OUT" 15 >&2; fail "command failed: $(mask "$*")"; }
}

# ------------------------------------------------------------------ cells

# RESULT[principal|client|op|pkey] = Y N (as expected) or Y! N! E! (wrong); pkey is p1, pub or -.
declare -A RESULT
NCELLS=0
FAILURES=()
GOT="" NOTE=""
word() { case $1 in Y) echo allowed ;; N) echo denied ;; *) echo error ;; esac; }
# record PRINCIPAL CLIENT OP TARGET PKEY EXPECT: prints the cell from GOT/NOTE
record() {
  local p=$1 client=$2 op=$3 target=$4 pkey=$5 exp=$6 line
  NCELLS=$((NCELLS + 1))
  if [ "$GOT" = "$exp" ]; then
    RESULT["$p|$client|$op|$pkey"]=$GOT
    say "ok   $p $client $op $target -> $(word "$GOT")"
  else
    RESULT["$p|$client|$op|$pkey"]="$GOT!"
    line="FAIL $p $client $op $target -> $(word "$GOT"), expected $(word "$exp")${NOTE:+ ($NOTE)}"
    say "$(mask "$line")"
    FAILURES+=("$(mask "$line")")
    [ -z "$LAST_OUT" ] || show_tail "$LAST_OUT"
  fi
  GOT="" NOTE=""
}
# A failed client command counts as "denied" only when it failed for want of a right: the
# client reports 401/403 (unauthorized, denied, authentication required...). A 404, a 500, a
# timeout or a broken connection is an error.
AUTH_RE='unauthori[sz]ed|denied|forbidden|authentication required|insufficient[_ ]scope|(status|code)[: ]*40[13]|\b40[13] (Unauthorized|Forbidden)'
judge_failure() {
  if grep -Eqi "$AUTH_RE" "$LAST_OUT"; then
    GOT=N
  else
    GOT=E
    NOTE="failed, but not for want of a right: $(grep -v '^(timed out' "$LAST_OUT" | tail -n 1 | cut -c1-160)"
    if grep -q '^(timed out' "$LAST_OUT"; then NOTE="timed out after $CELL_TIMEOUT s"; fi
  fi
}

# ------------------------------------------------------------------ registry checks as admin

REALM="" SERVICE=""
MANIFEST_ACCEPT="application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.list.v2+json"
# manifest_digest REPO REF: the digest (sha256 of the bytes) of the manifest REPO:REF as the
# admin sees it with a token from the token service; empty when 404. Status 2 on anything else.
manifest_digest() {
  local repo=$1 ref=$2 tok code
  tok=$(curl -sS -G -u "$ADMIN_USER:$ADMIN_PASS" --data-urlencode "service=$SERVICE" \
    --data-urlencode "scope=repository:$repo:pull" "$REALM" 2>>"$WORKDIR/logs/admin-check.log" \
    | jq -r '.token // .access_token // empty' 2>/dev/null) || true
  if [ -z "$tok" ]; then
    echo "admin token for repository:$repo:pull: none" >>"$WORKDIR/logs/admin-check.log"
    return 2
  fi
  code=$(curl -sS -o "$WORKDIR/tmp/manifest.body" -w '%{http_code}' -H "Authorization: Bearer $tok" \
    -H "Accept: $MANIFEST_ACCEPT" "http://$R/v2/$repo/manifests/$ref" 2>>"$WORKDIR/logs/admin-check.log") || code=000
  echo "admin GET /v2/$repo/manifests/$ref -> $code" >>"$WORKDIR/logs/admin-check.log"
  case $code in
    200) echo "sha256:$(sha256sum "$WORKDIR/tmp/manifest.body" | cut -d' ' -f1)" ;;
    404) echo "" ;;
    *) return 2 ;;
  esac
}

# ------------------------------------------------------------------ admin API

API_STATUS="" API_BODY="" API_LOCATION=""
# api METHOD PATH [JSON [curl args...]]: Basic auth as admin; sets API_STATUS, API_BODY, API_LOCATION
api() {
  local method=$1 path=$2 data=${3:-} hdr=$WORKDIR/tmp/api.hdr body=$WORKDIR/tmp/api.body
  shift 2
  if [ $# -gt 0 ]; then shift; fi
  local args=(-sS -X "$method" -u "$ADMIN_USER:$ADMIN_PASS" -H 'Accept: application/json'
    -D "$hdr" -o "$body" -w '%{http_code}')
  if [ -n "$data" ]; then args+=(-H 'Content-Type: application/json' --data-binary "$data"); fi
  : >"$body"
  API_STATUS=$(curl "${args[@]}" "$@" "$API$path" 2>>"$WORKDIR/logs/api.log") || API_STATUS=000
  API_BODY=$(cat "$body")
  API_LOCATION=$( (grep -i '^location:' "$hdr" || true) | tail -n 1 | cut -d' ' -f2- | tr -d '\r')
  {
    printf '\n> %s %s %s\n' "$method" "$path" "$(mask "$data")"
    printf '< %s %s %s\n' "$API_STATUS" "$API_LOCATION" \
      "$(mask "$API_BODY" | sed -E 's/("secret" *: *")[^"]*"/\1***"/g' | head -c 2000)"
  } >>"$WORKDIR/logs/api.log"
}
# api_ok WANT METHOD PATH [JSON [curl args...]]: api, and the run stops unless the status is WANT
api_ok() {
  local want=$1
  shift
  api "$@"
  local hint=""
  if [ "$API_STATUS" = 409 ]; then hint=" (not a fresh server? RBAC_SUFFIX=-2 makes new names)"; fi
  [ "$API_STATUS" = "$want" ] \
    || fail "$1 /api/v2.0$2 answered $API_STATUS, expected $want$hint: $(mask "$API_BODY" | sed -E 's/("secret" *: *")[^"]*"/\1***"/g' | head -c 400)"
}

# ------------------------------------------------------------------ principals

# EXP_P1: pull push delete on the private project; EXP_PUB: pull push on the public one.
declare -A USER_OF PASS_OF ROLE_OF EXP_P1 EXP_PUB
USER_PW="Rbac$(od -An -tx1 -N5 /dev/urandom | tr -d ' \n')x9"
SECRETS+=("$USER_PW")
P1=p1$SFX PUB=pub$SFX
declare -A PROJ=([p1]=$P1 [pub]=$PUB)
USER_OF=([admin]=$ADMIN_USER [sysad2]=sysad2$SFX [projectAdmin]=projadmin$SFX [maintainer]=maintainer$SFX
  [developer]=developer$SFX [guest]=guest$SFX [limitedGuest]=limitedguest$SFX [outsider]=outsider$SFX
  [anonymous]="" [robot]="" [sysRobot]="")
for p in sysad2 projectAdmin maintainer developer guest limitedGuest outsider; do PASS_OF[$p]=$USER_PW; done
PASS_OF[admin]=$ADMIN_PASS
PASS_OF[anonymous]=""
ROLE_OF=([projectAdmin]=1 [developer]=2 [guest]=3 [maintainer]=4 [limitedGuest]=5)
EXP_P1=([admin]=YYY [sysad2]=YYY [projectAdmin]=YYY [maintainer]=YYY [developer]=YYN [guest]=YNN
  [limitedGuest]=YNN [outsider]=NNN [anonymous]=NNN [robot]=YYN [sysRobot]=YYY)
for p in $ALL_PRINCIPALS; do EXP_PUB[$p]=YN; done
EXP_PUB[admin]=YY
EXP_PUB[sysad2]=YY
for p in $PRINCIPALS; do
  in_list "$p" "$ALL_PRINCIPALS" || { echo "rbac.sh: unknown principal '$p' (known: $ALL_PRINCIPALS)" >&2; exit 2; }
done
for c in $CLIENTS; do
  in_list "$c" "skopeo docker podman" || { echo "rbac.sh: unknown client '$c'" >&2; exit 2; }
done

expect_of() { # PRINCIPAL PKEY OP -> Y|N
  local e
  if [ "$2" = p1 ]; then e=${EXP_P1[$1]}; else e=${EXP_PUB[$1]}; fi
  case $3 in pull) echo "${e:0:1}" ;; push) echo "${e:1:1}" ;; delete) echo "${e:2:1}" ;; esac
}
lc() { echo "${1,,}"; }

# ------------------------------------------------------------------ workdir, isolation, exit

e2e_workdir rbac.sh
e2e_isolate
mkdir -p "$WORKDIR"/{pulled,docker,podman-auth}
echo '{"auths":{}}' >"$REGISTRY_AUTH_FILE" # podman insists on it existing; every login has its own file
on_exit() {
  local rc=$?
  set +e
  if [ -n "$DOCKERD_DIR" ]; then
    "$ROOT/scripts/dockerd.sh" stop "$DOCKERD_DIR" >/dev/null 2>&1 \
      || say "warning: could not stop dockerd in $DOCKERD_DIR" >&2
  fi
  if [ $rc -ne 0 ]; then say "rbac.sh: exit $rc (phase $PHASE); logs: $WORKDIR/logs" >&2; fi
  exit $rc
}
on_err() { say "    error: line $1: $(mask "$2")" >&2; }
trap on_exit EXIT
trap 'on_err $LINENO "$BASH_COMMAND"' ERR
PY=python3
MK=("$PY" "$HERE/mkimage.py")
LC=("$PY" "$HERE/layoutcheck.py")
IMGS=$WORKDIR/layouts/imgs # one OCI layout, one tag per image

# ------------------------------------------------------------------ setup: tools, registry

say "==> setup: tools, registry $R, principals: $PRINCIPALS; clients: $CLIENTS"
ensure_apt skopeo podman docker.io curl jq
hdrs=$(curl -sS -D - -o /dev/null "http://$R/v2/") || fail "registry $R does not answer on http://$R/v2/"
code=$(printf '%s' "$hdrs" | head -n 1 | awk '{print $2}')
[ "$code" = 401 ] || fail "anonymous GET /v2/ answered $code, expected 401"
challenge=$(printf '%s' "$hdrs" | grep -i '^www-authenticate:' | cut -d' ' -f2- | tr -d '\r' || true)
say "    /v2/ challenge: $challenge"
[[ $challenge == Bearer\ * ]] || fail "/v2/ challenge is not Bearer: '$challenge'"
REALM=$(sed -n 's/.*realm="\([^"]*\)".*/\1/p' <<<"$challenge")
SERVICE=$(sed -n 's/.*service="\([^"]*\)".*/\1/p' <<<"$challenge")
[[ $REALM =~ ^http://127\.0\.0\.1(:[0-9]+)?/ ]] || fail "token realm '$REALM' is not on http://127.0.0.1"
[ -n "$SERVICE" ] || fail "no service in the /v2/ challenge"

# ------------------------------------------------------------------ setup: users, projects, robots

PHASE=api
say "==> setup: users, projects $P1 (private) and $PUB (public), members, robots"
declare -A USER_ID
for p in sysad2 projectAdmin maintainer developer guest limitedGuest outsider; do
  u=${USER_OF[$p]}
  body=$(jq -nc --arg u "$u" --arg pw "$USER_PW" \
    '{username:$u,password:$pw,email:($u+"@rbac.example.test"),realname:$u,comment:"rbac.sh"}')
  api_ok 201 POST /users "$body"
  USER_ID[$p]=${API_LOCATION##*/}
  [[ ${USER_ID[$p]} =~ ^[0-9]+$ ]] || fail "POST /users for $u: no user id in Location '$API_LOCATION'"
done
say "    users: $(for p in sysad2 projectAdmin maintainer developer guest limitedGuest outsider; do printf '%s(%s) ' "${USER_OF[$p]}" "${USER_ID[$p]}"; done)"
api_ok 200 PUT "/users/${USER_ID[sysad2]}/sysadmin" '{"sysadmin_flag":true}'
say "    ${USER_OF[sysad2]} is a system admin"
api_ok 201 POST /projects "$(jq -nc --arg n "$P1" '{project_name:$n,metadata:{public:"false"}}')"
api_ok 201 POST /projects "$(jq -nc --arg n "$PUB" '{project_name:$n,metadata:{public:"true"}}')"
for p in projectAdmin developer guest maintainer limitedGuest; do
  api_ok 201 POST "/projects/$P1/members" \
    "$(jq -nc --arg u "${USER_OF[$p]}" --argjson r "${ROLE_OF[$p]}" '{role_id:$r,member_user:{username:$u}}')" \
    -H 'X-Is-Resource-Name: true'
done
say "    members of $P1: $(for p in projectAdmin maintainer developer guest limitedGuest; do printf '%s=role %s ' "${USER_OF[$p]}" "${ROLE_OF[$p]}"; done)"
ROBOT_EXPECTED_NAME="robot\$$P1+ci"
api_ok 201 POST /robots "$(jq -nc --arg ns "$P1" '{name:"ci",description:"rbac.sh project robot",
  duration:-1,level:"project",permissions:[{kind:"project",namespace:$ns,
  access:[{resource:"repository",action:"pull"},{resource:"repository",action:"push"}]}]}')"
USER_OF[robot]=$(jq -r '.name // empty' <<<"$API_BODY")
PASS_OF[robot]=$(jq -r '.secret // empty' <<<"$API_BODY")
SECRETS+=("${PASS_OF[robot]}")
{ [ -n "${USER_OF[robot]}" ] && [ -n "${PASS_OF[robot]}" ]; } \
  || fail "POST /robots: no name or secret in the answer"
api_ok 201 POST /robots "$(jq -nc --arg n "sysci$SFX" --arg ns "$P1" '{name:$n,description:"rbac.sh system robot",
  duration:-1,level:"system",permissions:[{kind:"project",namespace:$ns,
  access:[{resource:"repository",action:"pull"},{resource:"repository",action:"push"},
          {resource:"artifact",action:"delete"}]}]}')"
USER_OF[sysRobot]=$(jq -r '.name // empty' <<<"$API_BODY")
PASS_OF[sysRobot]=$(jq -r '.secret // empty' <<<"$API_BODY")
SECRETS+=("${PASS_OF[sysRobot]}")
{ [ -n "${USER_OF[sysRobot]}" ] && [ -n "${PASS_OF[sysRobot]}" ]; } \
  || fail "POST /robots (system): no name or secret in the answer"
say "    robots: ${USER_OF[robot]} (project $P1: pull, push), ${USER_OF[sysRobot]} (system, $P1: pull, push, artifact delete)"
NAME_CHECK=""
if [ "${USER_OF[robot]}" != "$ROBOT_EXPECTED_NAME" ]; then
  NAME_CHECK="FAIL project robot name: got '${USER_OF[robot]}', expected '$ROBOT_EXPECTED_NAME'"
  say "$NAME_CHECK"
  FAILURES+=("$NAME_CHECK")
fi

# ------------------------------------------------------------------ setup: images

PHASE=images
say "==> setup: test images (OCI layout $IMGS, one 4 KiB layer each)"
mkimg() { "${MK[@]}" image "$IMGS" --layers 1 --layer-size 4K --tag "$1" >/dev/null || fail "mkimage.py $1"; }
# Images pushed by a push cell: tag <principal>-<client>-<pkey>, each with its own layer, so
# that no cell can lean on blobs another one uploaded.
push_tag() { echo "$(lc "$1")-$2-$3"; }
for k in fixture-p1 fixture-pub del; do mkimg "$k"; done
for p in $PRINCIPALS; do
  for c in $CLIENTS; do
    if [ "$c" != skopeo ] && [ "$p" = anonymous ]; then continue; fi
    for k in p1 pub; do mkimg "$(push_tag "$p" "$c" "$k")"; done
  done
done
DEL_DIGEST=$("${LC[@]}" ref "$IMGS" del)
declare -A FIXTURE
for k in p1 pub; do
  FIXTURE[$k]=$("${LC[@]}" ref "$IMGS" "fixture-$k")
  setup_run "${SKOPEO[@]}" copy --preserve-digests --dest-tls-verify=false \
    --dest-creds "$ADMIN_USER:$ADMIN_PASS" "oci:$IMGS:fixture-$k" "docker://$R/${PROJ[$k]}/fixture:v1"
  now=$(manifest_digest "${PROJ[$k]}/fixture" v1) || fail "admin cannot read ${PROJ[$k]}/fixture:v1 back"
  [ "$now" = "${FIXTURE[$k]}" ] || fail "${PROJ[$k]}/fixture:v1 is '$now', expected ${FIXTURE[$k]}"
  say "    ${PROJ[$k]}/fixture:v1 = ${FIXTURE[$k]} (pushed by admin)"
done

if has_client docker; then
  PHASE=docker-setup
  DOCKERD_DIR=$WORKDIR/dockerd
  say "    \$ scripts/dockerd.sh start $DOCKERD_DIR --insecure-registry $R"
  dockerd_env=$("$ROOT/scripts/dockerd.sh" start "$DOCKERD_DIR" --insecure-registry "$R" 2>>"$WORKDIR/logs/setup.log") \
    || fail "dockerd did not start (see $WORKDIR/logs/setup.log, $DOCKERD_DIR/dockerd.log)"
  eval "$dockerd_env"
  [ -x "$DOCKER_BIN" ] || fail "no docker CLI"
  mkdir -p "$WORKDIR/docker/setup"
  for p in $PRINCIPALS; do
    [ "$p" = anonymous ] && continue
    for k in p1 pub; do
      t=$(push_tag "$p" docker "$k")
      runlog "$WORKDIR/logs/setup.log" "${SKOPEO[@]}" copy "oci:$IMGS:$t" "docker-archive:$WORKDIR/tmp/$t.tar:rbac/$t:v1" \
        || { show_tail "$LAST_OUT"; fail "docker-archive of $t"; }
      runlog "$WORKDIR/logs/setup.log" "$DOCKER_BIN" --config "$WORKDIR/docker/setup" load -i "$WORKDIR/tmp/$t.tar" \
        || { show_tail "$LAST_OUT"; fail "docker load of $t"; }
      rm -f "$WORKDIR/tmp/$t.tar"
    done
  done
  say "    docker images loaded: $("$DOCKER_BIN" --config "$WORKDIR/docker/setup" images -q 'rbac/*' | wc -l)"
fi

declare -A PODMAN_ID
if has_client podman; then
  PHASE=podman-setup
  for p in $PRINCIPALS; do
    [ "$p" = anonymous ] && continue
    for k in p1 pub; do
      t=$(push_tag "$p" podman "$k")
      # Through a docker-archive: `podman pull oci:DIR` names the image after DIR, which is
      # refused when DIR has capitals (mktemp's).
      runlog "$WORKDIR/logs/setup.log" "${SKOPEO[@]}" copy "oci:$IMGS:$t" "docker-archive:$WORKDIR/tmp/$t.tar:rbac/$t:v1" \
        || { show_tail "$LAST_OUT"; fail "docker-archive of $t"; }
      runlog "$WORKDIR/logs/setup.log" "${PODMAN[@]}" pull -q "docker-archive:$WORKDIR/tmp/$t.tar" \
        || { show_tail "$LAST_OUT"; fail "podman pull docker-archive:$t"; }
      rm -f "$WORKDIR/tmp/$t.tar"
      PODMAN_ID[$t]=$(tail -n 1 "$LAST_OUT")
      [[ ${PODMAN_ID[$t]} =~ ^[0-9a-f]{64}$ ]] || fail "podman pull -q docker-archive:$t printed '${PODMAN_ID[$t]}', not an image ID"
    done
  done
  say "    podman images in storage: ${#PODMAN_ID[@]}"
  for p in $PRINCIPALS; do echo '{"auths":{}}' >"$WORKDIR/podman-auth/$(lc "$p").json"; done
fi

# ------------------------------------------------------------------ cell implementations

# creds PREFIX PRINCIPAL: CREDS=(--PREFIXcreds USER:PASS) or (--PREFIXno-creds) for skopeo
CREDS=()
creds() {
  if [ "$2" = anonymous ]; then CREDS=("--${1}no-creds"); else CREDS=("--${1}creds" "${USER_OF[$2]}:${PASS_OF[$2]}"); fi
}
plog() { echo "$WORKDIR/logs/$(lc "$1").log"; }

# after_push REPO WANT_DIGEST CLIENT_OK(0|1): GOT/NOTE from the client's status and what the
# registry holds afterwards (as admin): allowed = client succeeded and REPO:v1 is WANT_DIGEST;
# denied = client failed for want of a right and REPO:v1 does not exist.
after_push() {
  local repo=$1 want=$2 ok=$3 now
  if ! now=$(manifest_digest "$repo" v1); then
    GOT=E NOTE="admin could not read $repo:v1 back (see logs/admin-check.log)"
  elif [ "$ok" = 1 ]; then
    if [ -z "$want" ]; then GOT=E NOTE="client succeeded but printed no digest"
    elif [ "$now" = "$want" ]; then GOT=Y
    else GOT=E NOTE="client succeeded, registry has '${now:-nothing}' at $repo:v1, pushed $want"; fi
  elif [ -n "$now" ]; then
    GOT=E NOTE="client failed but $repo:v1 exists ($now)"
  else
    judge_failure
  fi
}

cell_skopeo_pull() { # PRINCIPAL PKEY
  local p=$1 k=$2 target=${PROJ[$2]}/fixture:v1 dest
  dest=$WORKDIR/pulled/skopeo-$(lc "$p")-$k
  creds src- "$p"
  if runlog "$(plog "$p")" "${SKOPEO[@]}" copy --preserve-digests --src-tls-verify=false "${CREDS[@]}" \
    "docker://$R/$target" "oci:$dest:v1"; then
    local got
    got=$("${LC[@]}" ref "$dest" v1 2>/dev/null || echo none)
    if [ "$got" = "${FIXTURE[$k]}" ]; then GOT=Y; else GOT=E NOTE="pulled $got, expected ${FIXTURE[$k]}"; fi
  else
    judge_failure
  fi
  record "$p" skopeo pull "$target" "$k" "$(expect_of "$p" "$k" pull)"
}

cell_skopeo_push() { # PRINCIPAL PKEY
  local p=$1 k=$2 t repo ok=0
  t=$(push_tag "$p" skopeo "$k")
  repo=${PROJ[$k]}/push-$(lc "$p")-skopeo
  creds dest- "$p"
  runlog "$(plog "$p")" "${SKOPEO[@]}" copy --preserve-digests --dest-tls-verify=false "${CREDS[@]}" \
    "oci:$IMGS:$t" "docker://$R/$repo:v1" && ok=1
  after_push "$repo" "$("${LC[@]}" ref "$IMGS" "$t")" "$ok"
  record "$p" skopeo push "$repo:v1" "$k" "$(expect_of "$p" "$k" push)"
}

cell_skopeo_delete() { # PRINCIPAL PKEY
  local p=$1 k=$2 repo ok=0 tag_now dig_now
  repo=${PROJ[$k]}/del-$(lc "$p")
  # The tag must exist before, so that "denied" means denied.
  if [ "$(manifest_digest "$repo" v1 || echo error)" != "$DEL_DIGEST" ]; then
    runlog "$WORKDIR/logs/setup.log" "${SKOPEO[@]}" copy --preserve-digests --dest-tls-verify=false \
      --dest-creds "$ADMIN_USER:$ADMIN_PASS" "oci:$IMGS:del" "docker://$R/$repo:v1" \
      || { show_tail "$LAST_OUT"; fail "admin could not push $repo:v1 before the delete cell"; }
    [ "$(manifest_digest "$repo" v1 || echo error)" = "$DEL_DIGEST" ] || fail "$repo:v1 is not $DEL_DIGEST after admin's push"
  fi
  creds "" "$p"
  runlog "$(plog "$p")" "${SKOPEO[@]}" delete --tls-verify=false "${CREDS[@]}" "docker://$R/$repo:v1" && ok=1
  if ! tag_now=$(manifest_digest "$repo" v1) || ! dig_now=$(manifest_digest "$repo" "$DEL_DIGEST"); then
    GOT=E NOTE="admin could not read $repo back (see logs/admin-check.log)"
  elif [ $ok = 1 ]; then
    if [ -z "$tag_now$dig_now" ]; then GOT=Y
    else GOT=E NOTE="client succeeded but $repo still has the manifest (by tag: ${tag_now:-gone}, by digest: ${dig_now:-gone})"; fi
  elif [ "$tag_now" != "$DEL_DIGEST" ] || [ "$dig_now" != "$DEL_DIGEST" ]; then
    GOT=E NOTE="client failed but the manifest changed (by tag: ${tag_now:-gone}, by digest: ${dig_now:-gone})"
  else
    judge_failure
  fi
  record "$p" skopeo delete "$repo:v1" "$k" "$(expect_of "$p" "$k" delete)"
}

# login cells (docker, podman): every principal with a password must be able to log in.
cell_login() { # PRINCIPAL CLIENT
  local p=$1 c=$2
  local cmd
  if [ "$c" = docker ]; then
    cmd=("$DOCKER_BIN" --config "$WORKDIR/docker/$(lc "$p")" login -u "${USER_OF[$p]}" --password-stdin "$R")
  else
    cmd=("${PODMAN[@]}" login --tls-verify=false --authfile "$WORKDIR/podman-auth/$(lc "$p").json"
      -u "${USER_OF[$p]}" --password-stdin "$R")
  fi
  RUN_INPUT=${PASS_OF[$p]}
  if runlog "$(plog "$p")" "${cmd[@]}"; then GOT=Y; else judge_failure; fi
  record "$p" "$c" login - - Y
}

cell_docker_pull() { # PRINCIPAL PKEY
  local p=$1 k=$2 target=${PROJ[$2]}/fixture:v1 cfg digests
  cfg=$WORKDIR/docker/$(lc "$p")
  if runlog "$(plog "$p")" "$DOCKER_BIN" --config "$cfg" pull "$R/$target"; then
    digests=$("$DOCKER_BIN" --config "$cfg" image inspect --format '{{join .RepoDigests ","}}' "$R/$target" 2>&1 || true)
    if [[ ",$digests," == *",$R/${PROJ[$k]}/fixture@${FIXTURE[$k]},"* ]]; then GOT=Y
    else GOT=E NOTE="pulled, but RepoDigests are '$digests', expected ${FIXTURE[$k]}"; fi
  else
    judge_failure
  fi
  record "$p" docker pull "$target" "$k" "$(expect_of "$p" "$k" pull)"
  # Remove it, so that the next principal's pull fetches the blobs again.
  if [ "${RESULT["$p|docker|pull|$k"]:0:1}" != N ]; then
    "$DOCKER_BIN" --config "$cfg" rmi "$R/$target" >>"$(plog "$p")" 2>&1 || true
  fi
}

cell_docker_push() { # PRINCIPAL PKEY
  local p=$1 k=$2 t repo cfg ok=0 pushed
  t=$(push_tag "$p" docker "$k")
  repo=${PROJ[$k]}/push-$(lc "$p")-docker
  cfg=$WORKDIR/docker/$(lc "$p")
  runlog "$(plog "$p")" "$DOCKER_BIN" --config "$cfg" tag "rbac/$t:v1" "$R/$repo:v1" || fail "docker tag rbac/$t:v1"
  runlog "$(plog "$p")" "$DOCKER_BIN" --config "$cfg" push "$R/$repo:v1" && ok=1
  pushed=$( (grep -o 'v1: digest: sha256:[0-9a-f]*' "$LAST_OUT" || true) | tail -n 1 | awk '{print $3}')
  after_push "$repo" "$pushed" "$ok"
  local retries
  retries=$(grep -c 'Retrying in' "$LAST_OUT" || true)
  record "$p" docker push "$repo:v1" "$k" "$(expect_of "$p" "$k" push)"
  # dockerd 20.10 retries a blob upload refused with 403 (5 attempts, ~50 s), not one refused
  # with 401 (error="insufficient_scope"), which is what distribution and Harbor answer.
  if [ "$retries" -gt 0 ]; then
    say "     note: dockerd retried the upload ($retries countdown lines): did the registry answer 403 instead of 401?"
  fi
  "$DOCKER_BIN" --config "$cfg" rmi "$R/$repo:v1" >/dev/null 2>&1 || true
}

cell_podman_pull() { # PRINCIPAL PKEY
  local p=$1 k=$2 target=${PROJ[$2]}/fixture:v1 auth got
  auth=$WORKDIR/podman-auth/$(lc "$p").json
  if runlog "$(plog "$p")" "${PODMAN[@]}" pull --tls-verify=false --authfile "$auth" "$R/$target"; then
    got=$("${PODMAN[@]}" image inspect --format '{{.Digest}}' "$R/$target" 2>&1 || true)
    if [ "$got" = "${FIXTURE[$k]}" ]; then GOT=Y; else GOT=E NOTE="pulled, but the image digest is '$got', expected ${FIXTURE[$k]}"; fi
  else
    judge_failure
  fi
  record "$p" podman pull "$target" "$k" "$(expect_of "$p" "$k" pull)"
  if [ "${RESULT["$p|podman|pull|$k"]:0:1}" != N ]; then
    "${PODMAN[@]}" rmi -f "$R/$target" >>"$(plog "$p")" 2>&1 || true
  fi
}

cell_podman_push() { # PRINCIPAL PKEY
  local p=$1 k=$2 t repo auth ok=0 pushed=""
  t=$(push_tag "$p" podman "$k")
  repo=${PROJ[$k]}/push-$(lc "$p")-podman
  auth=$WORKDIR/podman-auth/$(lc "$p").json
  rm -f "$WORKDIR/tmp/podman.digest"
  runlog "$(plog "$p")" "${PODMAN[@]}" push --tls-verify=false --authfile "$auth" \
    --digestfile "$WORKDIR/tmp/podman.digest" "${PODMAN_ID[$t]}" "$R/$repo:v1" && ok=1
  if [ $ok = 1 ]; then pushed=$(cat "$WORKDIR/tmp/podman.digest" 2>/dev/null || true); fi
  after_push "$repo" "$pushed" "$ok"
  record "$p" podman push "$repo:v1" "$k" "$(expect_of "$p" "$k" push)"
}

# ------------------------------------------------------------------ the matrix

if has_client docker && has_principal developer; then
  PHASE=docker-wrong-password
  say ""
  say "==> docker login with a wrong password (developer)"
  mkdir -p "$WORKDIR/docker/wrong-password"
  RUN_INPUT="Wrong-${USER_PW}"
  if runlog "$(plog developer)" "$DOCKER_BIN" --config "$WORKDIR/docker/wrong-password" \
    login -u "${USER_OF[developer]}" --password-stdin "$R"; then
    GOT=Y
  else
    judge_failure
  fi
  record developer docker login-wrong-password - - N
  WRONG_LOGIN_DONE=1
fi

PHASE=matrix
for p in $PRINCIPALS; do
  say ""
  say "==> $p (${USER_OF[$p]:-no credentials}); expected $P1 pull/push/delete ${EXP_P1[$p]}, $PUB pull/push ${EXP_PUB[$p]}"
  : >>"$(plog "$p")"
  if has_client skopeo; then
    cell_skopeo_pull "$p" p1
    cell_skopeo_push "$p" p1
    cell_skopeo_delete "$p" p1
    cell_skopeo_pull "$p" pub
    cell_skopeo_push "$p" pub
  fi
  if has_client docker; then
    mkdir -p "$WORKDIR/docker/$(lc "$p")"
    [ "$p" = anonymous ] || cell_login "$p" docker
    cell_docker_pull "$p" p1
    [ "$p" = anonymous ] || cell_docker_push "$p" p1
    cell_docker_pull "$p" pub
    [ "$p" = anonymous ] || cell_docker_push "$p" pub
    if [ "$p" != anonymous ]; then
      runlog "$(plog "$p")" "$DOCKER_BIN" --config "$WORKDIR/docker/$(lc "$p")" logout "$R" \
        || say "     warning: docker logout failed for $p"
    fi
  fi
  if has_client podman; then
    [ "$p" = anonymous ] || cell_login "$p" podman
    cell_podman_pull "$p" p1
    [ "$p" = anonymous ] || cell_podman_push "$p" p1
    cell_podman_pull "$p" pub
    [ "$p" = anonymous ] || cell_podman_push "$p" pub
    if [ "$p" != anonymous ]; then
      runlog "$(plog "$p")" "${PODMAN[@]}" logout --authfile "$WORKDIR/podman-auth/$(lc "$p").json" "$R" \
        || say "     warning: podman logout failed for $p"
    fi
  fi
done

# ------------------------------------------------------------------ audit log

PHASE=audit
say ""
say "==> audit log (rows may take up to $AUDIT_WAIT s to appear)"
AUDIT_OK=0
uri() { jq -rn --arg v "$1" '$v|@uri'; }
# audit_check DESCRIPTION Q JQ_CONDITION: some row of GET /audit-logs?q=Q satisfies the condition
audit_check() {
  local what=$1 q=$2 cond=$3 deadline line rows=""
  deadline=$(($(date +%s) + AUDIT_WAIT))
  while :; do
    api GET "/audit-logs?page=1&page_size=100&q=$(uri "$q")"
    if [ "$API_STATUS" = 200 ] && rows=$(jq -c "[.[] | select($cond)]" <<<"$API_BODY" 2>/dev/null) \
      && [ "$rows" != "[]" ]; then
      say "ok   audit $what: $(jq -c '.[0] | {username, operation, resource_type, resource, success}' <<<"$rows")"
      AUDIT_OK=$((AUDIT_OK + 1))
      return 0
    fi
    [ "$(date +%s)" -lt "$deadline" ] || break
    sleep 0.5
  done
  line="FAIL audit $what: no row for q=$q matching $cond (last answer: $API_STATUS $(head -c 300 <<<"$API_BODY"))"
  say "$(mask "$line")"
  FAILURES+=("$(mask "$line")")
}
ran_any() { # PRINCIPAL OP PKEY: some client ran that cell with the expected result "allowed"
  local c
  for c in skopeo docker podman; do
    [ "${RESULT["$1|$c|$2|$3"]:-}" = Y ] && return 0
  done
  return 1
}
skip_audit() { say "skip audit $1 (the cell it needs did not run or failed)"; }
if ran_any developer push p1; then
  audit_check "create (push) by developer" "operation=create,username=${USER_OF[developer]}" \
    ".resource_type == \"artifact\" and ((.resource // \"\") | startswith(\"$P1/push-developer-\"))"
else skip_audit "create by developer"; fi
if ran_any guest pull p1; then
  audit_check "pull by guest" "operation=pull,username=${USER_OF[guest]}" \
    "((.resource // \"\") | startswith(\"$P1/fixture\"))"
else skip_audit "pull by guest"; fi
if ran_any maintainer delete p1; then
  audit_check "delete by maintainer" "operation=delete,username=${USER_OF[maintainer]}" \
    "((.resource // \"\") | startswith(\"$P1/del-maintainer\"))"
else skip_audit "delete by maintainer"; fi
if ran_any robot push p1; then
  audit_check "create (push) by the project robot ${USER_OF[robot]}" "operation=create,username=${USER_OF[robot]}" \
    ".username == $(jq -n --arg r "${USER_OF[robot]}" '$r') and ((.resource // \"\") | startswith(\"$P1/push-robot-\"))"
else skip_audit "create by the project robot"; fi
if [ "${WRONG_LOGIN_DONE:-0}" = 1 ]; then
  audit_check "failed login by developer" "operation=login,username=${USER_OF[developer]}" \
    ".success == false and .resource_type == \"user\""
else skip_audit "failed login"; fi

# ------------------------------------------------------------------ isolation, summary

PHASE=summary
if e2e_guard_changed; then
  FAILURES+=("FAIL isolation: a client wrote outside WORKDIR")
  say "FAIL isolation: a client wrote outside WORKDIR"
fi

say ""
say "summary: Y allowed, N denied, E error; '!' = not what the matrix expects; '.' = not run"
say "         s skopeo, d docker, p podman; pl pull, ps push, dl delete, li login"
COLS=(skopeo/pull/p1 skopeo/push/p1 skopeo/delete/p1 docker/pull/p1 docker/push/p1 podman/pull/p1 podman/push/p1
  skopeo/pull/pub skopeo/push/pub docker/pull/pub docker/push/pub podman/pull/pub podman/push/pub
  docker/login/- podman/login/-)
abbr() { # client/op/pkey -> s:pl
  local c=${1%%/*} rest=${1#*/} o
  o=${rest%%/*}
  case $o in pull) o="pl" ;; push) o="ps" ;; delete) o="dl" ;; login) o="li" ;; esac
  echo "${c:0:1}:$o"
}
printf '%-14s| %-34s| %-29s| %s\n' "" "$P1 (private)" "$PUB (public)" "login"
hdr=$(printf '%-14s|' principal)
for i in "${!COLS[@]}"; do
  case $i in 7 | 13) hdr+="|" ;; esac
  hdr+=$(printf ' %-4s' "$(abbr "${COLS[$i]}")")
done
say "$hdr"
for p in $PRINCIPALS; do
  row=$(printf '%-14s|' "$p")
  for i in "${!COLS[@]}"; do
    case $i in 7 | 13) row+="|" ;; esac
    col=${COLS[$i]}
    row+=$(printf ' %-4s' "${RESULT["$p|${col//\//|}"]:-.}")
  done
  say "$row"
done
say ""
say "rbac.sh: $NCELLS cells, $AUDIT_OK audit checks passed, ${#FAILURES[@]} failure(s), $(($(date +%s) - T_START)) s"
if [ ${#FAILURES[@]} -gt 0 ]; then
  for line in "${FAILURES[@]}"; do say "  $line"; done
  exit 1
fi
say "rbac.sh: the permission matrix holds against $R"

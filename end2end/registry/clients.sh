#!/usr/bin/env bash
# Drives real OCI clients (skopeo, podman, docker, oras-py) against a registry over plain http
# and checks what comes back, byte for byte where the clients allow it.
#   end2end/registry/clients.sh REGISTRY USER PASS WORKDIR
#     REGISTRY  host:port, e.g. 127.0.0.1:5000 (loopback: docker treats it as insecure)
#     WORKDIR   all state of the run (layouts, client configs, podman storage, dockerd, logs);
#               it must be empty, absent, or a WORKDIR of an earlier run (it is wiped then)
# Environment:
#   STEPS="skopeo podman docker refusals oras referrers oras-delete"   the steps to run, in this order;
#       podman, oras need skopeo (they use its image), referrers needs oras; refusals (Berth's
#       messages for refused pushes and locked accounts) runs inside docker.
#   SKIP_REFERRERS=1   drop the referrers step (distribution 2.8 has no referrers API)
#   ORAS_AUTH_BACKEND  force oras-py's auth backend (default: from the /v2/ challenge)
#   BERTH_E2E_CACHE    where the oras venv is kept (default ~/.cache/berth)
#   PULL_CLIENT         path of bench/pull's berth-pull: the skopeo step also pulls with it
# Output: one `==> [step]` line per step, the commands it runs (password masked), `ok` lines
# with timings; logs under WORKDIR/logs, step times (epoch) in WORKDIR/steps.tsv.
# Nothing is written to /var/lib/containers, ~/.docker or ~/.config/containers: see README.md.
set -Eeuo pipefail

usage() { sed -n '2,16p' "$0" >&2; exit 2; }
[ $# -eq 4 ] || usage
REGISTRY=$1 RUSER=$2 RPASS=$3 WORKDIR=$4
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ORAS_VERSION=0.2.43
CACHE=${BERTH_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}
STEPS=${STEPS:-skopeo podman docker refusals oras referrers oras-delete}
if [ "${SKIP_REFERRERS:-0}" = 1 ]; then
  STEPS=$(echo " $STEPS " | sed 's/ referrers / /')
fi
T_START=$(date +%s.%N)

# ------------------------------------------------------------------ helpers

CURRENT=setup
STEP_T0=$T_START
DOCKERD_DIR=""

# ensure_apt (idempotent apt installs) is shared with the README commands.
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/lib.sh"

say() { printf '%s\n' "$*"; }
fail() {
  say "FAIL [$CURRENT]: $*" >&2
  exit 1
}
mask() { # hides the password in what is shown (unless it is too short to be told apart)
  local s="$*"
  if [ ${#RPASS} -ge 4 ]; then printf '%s' "${s//"$RPASS"/***}"; else printf '%s' "$s"; fi
}

step() { # NAME DESCRIPTION
  CURRENT=$1
  STEP_T0=$(date +%s.%N)
  say ""
  say "==> [$1] $2"
}
step_ok() {
  local t1
  t1=$(date +%s.%N)
  printf '%s\t%s\t%s\n' "$CURRENT" "$STEP_T0" "$t1" >>"$WORKDIR/steps.tsv"
  say "    ok [$CURRENT] $(awk -v a="$STEP_T0" -v b="$t1" 'BEGIN{printf "%.1f s", b-a}')"
}

# run CMD...: shows the command, sends its output to the step log; on failure shows the
# log's tail and fails the step.
run() {
  local log=$WORKDIR/logs/$CURRENT.log
  say "    \$ $(mask "$*")"
  printf '\n$ %s\n' "$(mask "$*")" >>"$log"
  if ! "$@" >>"$log" 2>&1; then
    say "    --- last lines of $log:" >&2
    tail -n 25 "$log" | while IFS= read -r line; do say "    | $(mask "$line")"; done >&2
    fail "command failed: $(mask "$*")"
  fi
}
# out CMD...: like run, but prints the command's stdout (for capture); stderr goes to the log.
out() {
  local log=$WORKDIR/logs/$CURRENT.log
  printf '\n$ %s   (captured)\n' "$(mask "$*")" >>"$log"
  "$@" 2>>"$log" || fail "command failed: $(mask "$*") (see $log)"
}
expect_eq() { # WHAT GOT WANT
  [ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
  say "    ✓ $1 = $3"
}


has_step() { [[ " $STEPS " == *" $1 "* ]]; }

on_exit() {
  local rc=$?
  set +e
  if [ -n "$DOCKERD_DIR" ]; then
    "$ROOT/scripts/dockerd.sh" stop "$DOCKERD_DIR" >/dev/null 2>&1 \
      || say "warning: could not stop dockerd in $DOCKERD_DIR" >&2
  fi
  if [ $rc -ne 0 ]; then
    printf '%s\t%s\t%s\n' "$CURRENT" "$STEP_T0" "$(date +%s.%N)" >>"$WORKDIR/steps.tsv" 2>/dev/null
    say "" >&2
    say "clients.sh: FAILED in step '$CURRENT' (exit $rc); logs: $WORKDIR/logs" >&2
  fi
  exit $rc
}
on_err() { say "    error: line $1: $(mask "$2")" >&2; }

# ------------------------------------------------------------------ workdir and isolation

# WORKDIR preparation, client configuration files and the skopeo_/podman_ wrappers are shared
# with rbac.sh.
. "$HERE/lib-clients.sh"
e2e_workdir clients.sh
: >"$WORKDIR/steps.tsv"
trap on_exit EXIT
trap 'on_err $LINENO "$BASH_COMMAND"' ERR
e2e_isolate
docker() { "$DOCKER_BIN" "$@"; }
PY=python3
MK=("$PY" "$HERE/mkimage.py")
LC=("$PY" "$HERE/layoutcheck.py")
SKOPEO_DEST=(--dest-tls-verify=false --dest-creds "$RUSER:$RPASS")
SKOPEO_SRC=(--src-tls-verify=false --src-creds "$RUSER:$RPASS")
R=$REGISTRY

# ------------------------------------------------------------------ setup

step setup "tools, oras venv, registry ping ($R), steps: $(echo $STEPS)"
ensure_apt skopeo podman docker.io curl
if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then ensure_apt python3-venv; fi
VENV=$CACHE/oras-$ORAS_VERSION
if ! "$VENV/bin/python" -c "import importlib.metadata as m, oras.provider; assert m.version('oras') == '$ORAS_VERSION'" 2>/dev/null; then
  say "    creating $VENV with oras==$ORAS_VERSION (PyPI)"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  run "$PY" -m venv "$VENV"
  run "$VENV/bin/pip" install -q --disable-pip-version-check "oras==$ORAS_VERSION"
fi
{
  skopeo --version
  podman --version
  docker --version
  echo "dockerd: $(dockerd --version)"
  echo "oras-py $ORAS_VERSION ($VENV)"
} | sed 's/^/    /'
hdrs=$(curl -sS -D - -o /dev/null "http://$R/v2/") || fail "registry $R does not answer on http://$R/v2/"
code=$(printf '%s' "$hdrs" | head -1 | awk '{print $2}')
expect_eq "anonymous GET /v2/ status" "$code" 401
challenge=$(printf '%s' "$hdrs" | grep -i '^www-authenticate:' | cut -d' ' -f2- | tr -d '\r' || true)
[ -n "$challenge" ] || fail "401 on /v2/ without a WWW-Authenticate header"
say "    challenge: $challenge"
printf '%s' "$hdrs" | grep -qi '^docker-distribution-api-version: registry/2.0' \
  || say "    note: no Docker-Distribution-API-Version: registry/2.0 header on /v2/"
for s in podman oras; do
  if has_step $s && ! has_step skopeo; then fail "step $s needs step skopeo (STEPS=$STEPS)"; fi
done
if has_step referrers && ! has_step oras; then fail "step referrers needs step oras"; fi
if has_step refusals && ! has_step docker; then fail "step refusals needs step docker"; fi
step_ok

# ------------------------------------------------------------------ skopeo

if has_step skopeo; then
  step skopeo "skopeo: OCI layout, docker-archive and multi-arch index, pushed and pulled back"
  A=$WORKDIR/layouts/a
  out "${MK[@]}" image "$A" --layers 3 --layer-size 2M --tag v1 >"$A.json"
  DIG_A=$("${LC[@]}" ref "$A" v1)
  CFG_A=$("${LC[@]}" config "$A" v1)
  echo "DIG_A=$DIG_A CFG_A=$CFG_A" >"$WORKDIR/state.env"

  run skopeo_ copy --preserve-digests "${SKOPEO_DEST[@]}" --digestfile "$WORKDIR/skopeo-a.digest" \
    "oci:$A:v1" "docker://$R/library/skopeo-oci:v1"
  expect_eq "pushed manifest digest" "$(cat "$WORKDIR/skopeo-a.digest")" "$DIG_A"
  run skopeo_ copy --preserve-digests "${SKOPEO_SRC[@]}" \
    "docker://$R/library/skopeo-oci:v1" "oci:$WORKDIR/layouts/a-back:v1"
  run "${LC[@]}" same "$A" v1 "$WORKDIR/layouts/a-back" v1
  say "    ✓ pulled manifest, config and 3 layers byte-identical"
  raw=$(out skopeo_ inspect --raw --tls-verify=false --creds "$RUSER:$RPASS" \
    "docker://$R/library/skopeo-oci@$DIG_A" | "${LC[@]}" sha256 -)
  expect_eq "manifest fetched by digest hashes to" "$raw" "$DIG_A"
  tags=$(out skopeo_ list-tags --tls-verify=false --creds "$RUSER:$RPASS" "docker://$R/library/skopeo-oci" \
    | "$PY" -c 'import json,sys; print("v1" if "v1" in json.load(sys.stdin)["Tags"] else "no v1")')
  expect_eq "tags of library/skopeo-oci include" "$tags" "v1"
  if [ -n "${PULL_CLIENT:-}" ]; then
    # bench/pull, the benchmark's pull client: the same image through the token/Basic flow,
    # every blob byte-identical to the layout's, and a wrong password refused.
    run "$PULL_CLIENT" --creds "$RUSER:$RPASS" "http://$R" library/skopeo-oci v1 "$WORKDIR/berth-pull-a"
    expect_eq "berth-pull manifest digest" "sha256:$(sha256sum "$WORKDIR/berth-pull-a/manifest.json" | cut -d' ' -f1)" "$DIG_A"
    n=0
    for f in "$WORKDIR"/berth-pull-a/*; do
      b=$(basename "$f")
      case $b in manifest.json | version) continue ;; esac
      cmp -s "$f" "$A/blobs/sha256/$b" || fail "berth-pull: blob $b differs from the layout's"
      n=$((n + 1))
    done
    expect_eq "berth-pull blobs (config + 3 layers)" "$n" 4
    if "$PULL_CLIENT" --creds "$RUSER:wrong-$RPASS" "http://$R" library/skopeo-oci v1 "$WORKDIR/berth-pull-x" \
      >"$WORKDIR/logs/berth-pull-wrong.log" 2>&1; then
      fail "berth-pull with a wrong password succeeded"
    fi
    say "    ✓ berth-pull (bench client): 4 blobs byte-identical, wrong password refused"
  fi

  # docker-archive: uncompressed layers, a Docker v2s2 manifest, same config.
  run skopeo_ copy "oci:$A:v1" "docker-archive:$WORKDIR/a.tar:library/skopeo-archive:v1"
  run skopeo_ copy "${SKOPEO_DEST[@]}" --digestfile "$WORKDIR/skopeo-archive.digest" \
    "docker-archive:$WORKDIR/a.tar" "docker://$R/library/skopeo-archive:v1"
  run skopeo_ copy --preserve-digests "${SKOPEO_SRC[@]}" \
    "docker://$R/library/skopeo-archive:v1" "oci:$WORKDIR/layouts/archive-back:v1"
  expect_eq "docker-archive push: manifest digest read back" \
    "$("${LC[@]}" ref "$WORKDIR/layouts/archive-back" v1)" "$(cat "$WORKDIR/skopeo-archive.digest")"
  expect_eq "docker-archive push: manifest mediaType" \
    "$("${LC[@]}" ref "$WORKDIR/layouts/archive-back" v1 mediaType)" \
    "application/vnd.docker.distribution.manifest.v2+json"
  expect_eq "docker-archive push: config digest" "$("${LC[@]}" config "$WORKDIR/layouts/archive-back" v1)" "$CFG_A"
  run "${LC[@]}" diffids "$WORKDIR/layouts/archive-back" v1
  say "    ✓ layers decompress to the config's diff_ids"

  # Multi-arch index, --all: children by digest, then the index by tag.
  IX=$WORKDIR/layouts/index
  out "${MK[@]}" index "$IX" --layers 1 --layer-size 1M --tag v1 >"$IX.json"
  DIG_IX=$("${LC[@]}" ref "$IX" v1)
  run skopeo_ copy --all --preserve-digests "${SKOPEO_DEST[@]}" --digestfile "$WORKDIR/skopeo-index.digest" \
    "oci:$IX:v1" "docker://$R/library/skopeo-index:v1"
  expect_eq "pushed index digest" "$(cat "$WORKDIR/skopeo-index.digest")" "$DIG_IX"
  for arch in amd64 arm64; do
    child=$("${LC[@]}" child "$IX" v1 "$arch")
    run skopeo_ copy --preserve-digests "${SKOPEO_SRC[@]}" \
      "docker://$R/library/skopeo-index@$child" "oci:$WORKDIR/layouts/index-$arch:c"
    run "${LC[@]}" same "$IX" "$child" "$WORKDIR/layouts/index-$arch" c
    say "    ✓ linux/$arch child $child pulled by digest, byte-identical"
  done
  run skopeo_ copy --all --preserve-digests "${SKOPEO_SRC[@]}" \
    "docker://$R/library/skopeo-index:v1" "oci:$WORKDIR/layouts/index-back:v1"
  run "${LC[@]}" same "$IX" v1 "$WORKDIR/layouts/index-back" v1
  say "    ✓ whole index pulled back (--all), byte-identical"
  [ -f "$WORKDIR/skopeo-data/containers/cache/blob-info-cache-v1.boltdb" ] \
    || fail "skopeo's blob-info cache is not in $WORKDIR/skopeo-data (isolation trick failed)"
  step_ok
fi
[ -f "$WORKDIR/state.env" ] && . "$WORKDIR/state.env"

# ------------------------------------------------------------------ podman

if has_step podman; then
  step podman "podman: login, pull the skopeo image, push a copy, pull it back"
  if "${PODMAN[@]}" login --tls-verify=false --authfile "$WORKDIR/auth-bad.json" \
    -u "$RUSER" -p "wrong-$RPASS" "$R" >>"$WORKDIR/logs/podman.log" 2>&1; then
    fail "podman login with a wrong password succeeded"
  fi
  say "    ✓ podman login with a wrong password is refused"
  run "${PODMAN[@]}" login --tls-verify=false -u "$RUSER" -p "$RPASS" "$R"
  [ -s "$REGISTRY_AUTH_FILE" ] || fail "podman login did not write $REGISTRY_AUTH_FILE"
  run "${PODMAN[@]}" pull --tls-verify=false "$R/library/skopeo-oci:v1"
  ID1=$(out "${PODMAN[@]}" image inspect --format '{{.Id}}' "$R/library/skopeo-oci:v1")
  expect_eq "podman image ID (= config digest)" "sha256:$ID1" "$CFG_A"
  expect_eq "podman image digest" "$(out "${PODMAN[@]}" image inspect --format '{{.Digest}}' "$R/library/skopeo-oci:v1")" "$DIG_A"
  run "${PODMAN[@]}" tag "$R/library/skopeo-oci:v1" "$R/library/podman-copy:v1"
  run "${PODMAN[@]}" push --tls-verify=false --digestfile "$WORKDIR/podman.digest" "$R/library/podman-copy:v1"
  DIG_P=$(cat "$WORKDIR/podman.digest")
  say "    podman pushed $DIG_P ($([ "$DIG_P" = "$DIG_A" ] && echo "same manifest as skopeo's" || echo "re-encoded manifest"))"
  run "${PODMAN[@]}" rmi -f "$ID1"
  if "${PODMAN[@]}" image exists "$ID1"; then fail "image $ID1 still present after rmi"; fi
  run "${PODMAN[@]}" pull --tls-verify=false "$R/library/podman-copy:v1"
  expect_eq "podman image ID after pull of the copy" \
    "$(out "${PODMAN[@]}" image inspect --format '{{.Id}}' "$R/library/podman-copy:v1")" "$ID1"
  expect_eq "podman image digest after pull of the copy" \
    "$(out "${PODMAN[@]}" image inspect --format '{{.Digest}}' "$R/library/podman-copy:v1")" "$DIG_P"
  run "${PODMAN[@]}" pull --tls-verify=false "$R/library/podman-copy@$DIG_P"
  say "    ✓ pulled by digest too"
  run "${PODMAN[@]}" logout "$R"
  [ -f "$WORKDIR/podman/data/containers/cache/blob-info-cache-v1.boltdb" ] \
    || fail "podman's blob-info cache is not in $WORKDIR/podman/data (isolation trick failed)"
  step_ok
fi

# ------------------------------------------------------------------ refusals
# What a user sees when the registry says no (issue 18, items 13-15). Runs inside the docker
# step (it needs dockerd and docker's login): every refusal must stop the client at once (dockerd
# retries a bare 401 for ~50 s) and print why, and docker's login must leave the shared auth file
# usable by podman and skopeo.
refusals_with_docker() {
  local t0 took log=$WORKDIR/logs/refusals.log cfg=$DOCKER_CONFIG/config.json api="http://$R/api/v2.0"
  say "    -- refusals (identity token, anonymous push, push without a project, locked account)"
  # 14: docker keeps a returned refresh token as an "identitytoken"; podman/skopeo/buildah then
  # refuse to log in with that file ("auth file contains an Identity token"). Harbor sends none.
  if grep -qi identitytoken "$cfg"; then
    fail "docker login stored an identity token in $cfg: podman and skopeo refuse to log in with that file"
  fi
  run podman_ login --tls-verify=false --authfile "$cfg" -u "$RUSER" -p "$RPASS" "$R"
  run skopeo_ login --tls-verify=false --authfile "$cfg" -u "$RUSER" -p "$RPASS" "$R"
  say "    ✓ podman and skopeo log in with the auth file docker login wrote"
  # 13: a push to a project that does not exist stops at once and names the project.
  run docker tag "$R/library/docker-img:v1" "$R/no-such-project/img:v1"
  t0=$(date +%s)
  if docker push "$R/no-such-project/img:v1" >"$log" 2>&1; then fail "push into a missing project succeeded"; fi
  took=$(($(date +%s) - t0))
  sed 's/^/      /' "$log" | tail -2
  grep -q "no-such-project" <(grep -iv "refers to repository" "$log") \
    || fail "the refusal of a push into a missing project does not name the project (see $log)"
  [ "$took" -lt 15 ] || fail "docker took ${took}s to give up a push into a missing project (retries)"
  say "    ✓ push into a missing project refused in ${took}s with a message naming it"
  run docker rmi "$R/no-such-project/img:v1"
  # 13: an anonymous push (forgot docker login) stops at once with Harbor's message.
  run docker logout "$R"
  t0=$(date +%s)
  if docker push "$R/library/docker-img:v1" >"$log" 2>&1; then fail "anonymous push succeeded"; fi
  took=$(($(date +%s) - t0))
  sed 's/^/      /' "$log" | tail -2
  grep -qi "unauthorized to access repository: library/docker-img, action: push" "$log" \
    || fail "anonymous push: docker does not print why (see $log)"
  [ "$took" -lt 15 ] || fail "docker took ${took}s to give up an anonymous push (retries)"
  say "    ✓ anonymous push refused in ${took}s: $(grep -io 'unauthorized to access repository[^"]*' "$log" | head -1)"
  # 15: a locked account is told so by every client, not a bare "too many requests".
  curl -fsS -u "$RUSER:$RPASS" -H 'Content-Type: application/json' -X POST "$api/users" \
    -d '{"username":"locked-e2e","email":"locked-e2e@example.com","realname":"Locked","password":"Locked-e2e-1"}' \
    >>"$log" || fail "could not create user locked-e2e"
  for _ in 1 2 3 4 5 6; do
    curl -s -o /dev/null -u "locked-e2e:wrong-password" "http://$R/service/token?service=x&account=locked-e2e" || true
  done
  # podman login prints its own "invalid username/password" for any 401 (containers/common
  # keeps the registry's message for its debug log); a pull or push prints the message.
  echo '{"auths":{}}' >"$WORKDIR/auth-locked.json"
  if "${PODMAN[@]}" login --tls-verify=false --authfile "$WORKDIR/auth-locked.json" -u locked-e2e -p Locked-e2e-1 "$R" >"$log" 2>&1; then
    fail "podman login of a locked account succeeded"
  fi
  if "${PODMAN[@]}" pull --tls-verify=false --authfile "$WORKDIR/auth-locked.json" --creds locked-e2e:Locked-e2e-1 "$R/library/docker-img:v1" >"$log" 2>&1; then
    fail "podman pull with the credentials of a locked account succeeded"
  fi
  sed 's/^/      /' "$log" | tail -1
  grep -qi "locked" "$log" || fail "podman does not say the account is locked (see $log)"
  if docker login -u locked-e2e --password-stdin "$R" <<<"Locked-e2e-1" >"$log" 2>&1; then
    fail "docker login of a locked account succeeded"
  fi
  sed 's/^/      /' "$log" | tail -1
  grep -qi "locked" "$log" || fail "docker does not say the account is locked (see $log)"
  say "    ✓ podman and docker print that the account is locked"
  docker login -u "$RUSER" --password-stdin "$R" <<<"$RPASS" >>"$log" 2>&1 || fail "docker login failed again"
}

# ------------------------------------------------------------------ docker

if has_step docker; then
  step docker "docker: load, login, push (+ cross-repo mount), rmi, pull"
  D=$WORKDIR/layouts/d
  out "${MK[@]}" image "$D" --layers 2 --layer-size 2M --tag v1 >"$D.json"
  CFG_D=$("${LC[@]}" config "$D" v1)
  run skopeo_ copy "oci:$D:v1" "docker-archive:$WORKDIR/d.tar:berth-e2e/docker-img:v1"
  DOCKERD_DIR=$WORKDIR/dockerd
  [ -x "$DOCKER_BIN" ] || fail "no docker CLI"
  say "    \$ scripts/dockerd.sh start $DOCKERD_DIR --insecure-registry $R"
  dockerd_env=$("$ROOT/scripts/dockerd.sh" start "$DOCKERD_DIR" --insecure-registry "$R" 2>>"$WORKDIR/logs/docker.log") \
    || fail "dockerd did not start (see $WORKDIR/logs/docker.log, $DOCKERD_DIR/dockerd.log)"
  eval "$dockerd_env"
  run docker load -i "$WORKDIR/d.tar"
  IDL=$(out docker image inspect --format '{{.Id}}' berth-e2e/docker-img:v1)
  expect_eq "docker image ID after load (= config digest)" "$IDL" "$CFG_D"
  if docker login -u "$RUSER" --password-stdin "$R" <<<"wrong-$RPASS" >>"$WORKDIR/logs/docker.log" 2>&1; then
    fail "docker login with a wrong password succeeded"
  fi
  say "    ✓ docker login with a wrong password is refused"
  say "    \$ docker login -u $RUSER --password-stdin $R"
  docker login -u "$RUSER" --password-stdin "$R" <<<"$RPASS" >>"$WORKDIR/logs/docker.log" 2>&1 \
    || fail "docker login failed (see $WORKDIR/logs/docker.log)"
  run docker tag berth-e2e/docker-img:v1 "$R/library/docker-img:v1"
  run docker push "$R/library/docker-img:v1"
  DIG_D=$(grep -o 'v1: digest: sha256:[0-9a-f]*' "$WORKDIR/logs/docker.log" | tail -1 | awk '{print $3}')
  [ -n "$DIG_D" ] || fail "no digest in docker push output"
  say "    docker pushed $DIG_D"
  run docker tag berth-e2e/docker-img:v1 "$R/library/docker-mount:v1"
  run docker push "$R/library/docker-mount:v1"
  DIG_M=$(grep -o 'v1: digest: sha256:[0-9a-f]*' "$WORKDIR/logs/docker.log" | tail -1 | awk '{print $3}')
  expect_eq "same manifest pushed to a second repository" "$DIG_M" "$DIG_D"
  mounted=$(sed -n '/docker push .*docker-mount/,$p' "$WORKDIR/logs/docker.log" | grep -c 'Mounted from' || true)
  say "    layers mounted from library/docker-img on the second push: $mounted"
  run docker rmi "$R/library/docker-img:v1" "$R/library/docker-mount:v1" berth-e2e/docker-img:v1
  if docker image inspect "$IDL" >/dev/null 2>&1; then fail "image $IDL still present after rmi"; fi
  run docker pull "$R/library/docker-img:v1"
  expect_eq "docker image ID after pull" "$(out docker image inspect --format '{{.Id}}' "$R/library/docker-img:v1")" "$IDL"
  expect_eq "docker RepoDigests after pull" \
    "$(out docker image inspect --format '{{join .RepoDigests ","}}' "$R/library/docker-img:v1")" \
    "$R/library/docker-img@$DIG_D"
  run docker pull "$R/library/docker-mount@$DIG_D"
  say "    ✓ pulled by digest from the mounted repository"
  if [ -n "${DIG_A:-}" ]; then
    run docker pull "$R/library/skopeo-oci:v1"
    expect_eq "docker pull of skopeo's OCI image: ID" \
      "$(out docker image inspect --format '{{.Id}}' "$R/library/skopeo-oci:v1")" "$CFG_A"
    case $(uname -m) in aarch64 | arm64) arch=arm64 ;; *) arch=amd64 ;; esac
    child=$("${LC[@]}" child "$WORKDIR/layouts/index" v1 "$arch")
    run docker pull "$R/library/skopeo-index:v1"
    expect_eq "docker pull of skopeo's index picks linux/$arch: ID" \
      "$(out docker image inspect --format '{{.Id}}' "$R/library/skopeo-index:v1")" \
      "$("${LC[@]}" config "$WORKDIR/layouts/index" "$child")"
  fi
  if has_step refusals; then refusals_with_docker; fi
  run docker logout "$R"
  say "    \$ scripts/dockerd.sh stop $DOCKERD_DIR"
  "$ROOT/scripts/dockerd.sh" stop "$DOCKERD_DIR" || fail "could not stop dockerd"
  DOCKERD_DIR=""
  unset DOCKER_HOST
  step_ok
fi

# ------------------------------------------------------------------ oras

ORAS=("$VENV/bin/python" "$HERE/oras_check.py" --registry "$R" --user "$RUSER" --password "$RPASS" --workdir "$WORKDIR")
if has_step oras; then
  step oras "oras-py: push two artifacts whose subject is skopeo's manifest, pull them back"
  run "${ORAS[@]}" push --subject-repo library/skopeo-oci --subject-ref v1 --subject-digest "$DIG_A"
  grep -E '^(A|B|oras) ' "$WORKDIR/logs/oras.log" | sed 's/^/    /' || true
  step_ok
fi

if has_step referrers; then
  step referrers "referrers API: GET /v2/<name>/referrers/<digest>, artifactType filter"
  run "${ORAS[@]}" referrers
  grep '^referrers' "$WORKDIR/logs/referrers.log" | sed 's/^/    /' || true
  step_ok
fi

if has_step oras-delete && has_step oras; then
  step oras-delete "delete an artifact manifest by digest"
  flag=()
  has_step referrers && flag=(--check-referrers)
  run "${ORAS[@]}" delete "${flag[@]}"
  grep -E '^(B|referrers) ' "$WORKDIR/logs/oras-delete.log" | sed 's/^/    /' || true
  step_ok
fi

# ------------------------------------------------------------------ isolation

CURRENT=isolation
if e2e_guard_changed; then fail "a client wrote outside WORKDIR"; fi
say ""
say "clients.sh: all steps passed ($(echo $STEPS)) against $R in $(awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f s", b-a}')"

#!/usr/bin/env bash
# Project policies with real clients, beyond quota.sh and immutable.sh (skopeo, podman):
#   - tag retention: skopeo pushes p1/app:v1…v5 and an untagged image; v1 is immutable; the
#     policy keeps the 2 most recently pushed v* tags. A dry run reports 3 deletions (log table
#     with DEL rows) and deletes nothing (skopeo list-tags unchanged); the run deletes them:
#     list-tags shows v1 v4 v5, skopeo inspect of v2 fails, the untagged image is gone;
#   - docker (a private dockerd from scripts/dockerd.sh): a push into a project over its quota is
#     refused and docker prints berth's "quota exceeded" message; another image pushed to an
#     immutable tag is refused and docker prints "configured as immutable"; the same image pushed
#     again is accepted.
# Starts berth (BERTH_BIN) on a free 127.0.0.1 port with an empty data directory and stops it,
# and dockerd, by PID. Client state stays in WORKDIR (lib-clients.sh). KEEP=1 keeps WORKDIR.
#   end2end/registry/policies.sh BERTH_BIN
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$here/../.." && pwd) # used by lib-clients.sh
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
WORKDIR=/tmp/bpol.$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')
. "$here/lib-clients.sh"
e2e_workdir policies.sh
e2e_isolate
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
DOCKERD_DIR=""
cleanup() {
  [ -f "$WORKDIR/berth.pid" ] && kill "$(cat "$WORKDIR/berth.pid")" 2>/dev/null || true
  [ -z "$DOCKERD_DIR" ] || "$ROOT/scripts/dockerd.sh" stop "$DOCKERD_DIR" >/dev/null 2>&1 || true
  if [ "${KEEP:-}" = 1 ]; then echo "kept $WORKDIR" >&2; else rm -rf "$WORKDIR"; fi
}
trap cleanup EXIT
mkdir -p "$WORKDIR/server"
(cd "$WORKDIR/server" && BERTH_LISTEN=127.0.0.1:$port BERTH_EXTERNAL_URL=http://127.0.0.1:$port \
  BERTH_LOG__LEVEL=warn exec "$bin" >"$WORKDIR/berth.log" 2>&1) &
echo $! >"$WORKDIR/berth.pid"
for _ in $(seq 150); do
  curl -fsS "http://127.0.0.1:$port/api/v2.0/ping" >/dev/null 2>&1 && break
  sleep 0.2
done
R=127.0.0.1:$port PASS=${BERTH_ADMIN_PASSWORD:-Harbor12345}
A=admin:$PASS API=http://$R/api/v2.0
failed=0
ok() { printf 'ok   %s\n' "$*"; }
bad() { printf 'FAIL %s\n' "$*"; failed=1; }
api() { curl -fsS -u "$A" -H 'content-type: application/json' "$@"; }
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
mk() { python3 "$here/mkimage.py" image "$WORKDIR/layouts/$1" --layers 1 --layer-size 32K --tag v1 >/dev/null; }
sk_push() { # LAYOUT REF
  timeout -k 5 120 "${SKOPEO[@]}" copy --quiet --dest-tls-verify=false --dest-creds "$A" "oci:$WORKDIR/layouts/$1:v1" "docker://$R/$2" 2>&1
}
tags() { "${SKOPEO[@]}" list-tags --tls-verify=false --creds "$A" "docker://$R/p1/app" | jq_ '" ".join(sorted(d["Tags"]))'; }
count() { curl -fsS -o /dev/null -D - -u "$A" "$API/projects/p1/repositories/app/artifacts?page_size=1" | tr -d '\r' | sed -n 's/^[Xx]-[Tt]otal-[Cc]ount: //p'; }

# ------------------------------------------------------------------ retention (skopeo)
api -X POST "$API/projects" -d '{"project_name":"p1"}' >/dev/null
PID=$(api "$API/projects/p1" | jq_ 'd["project_id"]')
for i in 1 2 3 4 5 6; do mk "img$i"; done
for i in 1 2 3 4 5; do sk_push "img$i" "p1/app:v$i" >/dev/null || bad "skopeo push p1/app:v$i"; done
sk_push img6 "p1/app:tmp" >/dev/null || bad "skopeo push p1/app:tmp"
api -X DELETE "$API/projects/p1/repositories/app/artifacts/tmp/tags/tmp" >/dev/null
[ "$(tags)" = "v1 v2 v3 v4 v5" ] && [ "$(count)" = 6 ] && ok "skopeo pushed v1…v5 and an untagged image" || bad "setup: $(tags), $(count) artifacts"
api -X POST "$API/projects/p1/immutabletagrules" \
  -d '{"tag_selectors":[{"kind":"doublestar","decoration":"matches","pattern":"v1"}],"scope_selectors":{"repository":[{"kind":"doublestar","decoration":"repoMatches","pattern":"**"}]}}' >/dev/null
loc=$(curl -fsS -o /dev/null -D - -u "$A" -H 'content-type: application/json' -X POST "$API/retentions" \
  -d "{\"algorithm\":\"or\",\"rules\":[{\"action\":\"retain\",\"template\":\"latestPushedK\",\"params\":{\"latestPushedK\":2},\"tag_selectors\":[{\"kind\":\"doublestar\",\"decoration\":\"matches\",\"pattern\":\"v*\",\"extras\":\"{\\\"untagged\\\":false}\"}],\"scope_selectors\":{\"repository\":[{\"kind\":\"doublestar\",\"decoration\":\"repoMatches\",\"pattern\":\"**\"}]}}],\"trigger\":{\"kind\":\"Schedule\",\"settings\":{\"cron\":\"\"}},\"scope\":{\"level\":\"project\",\"ref\":$PID}}" |
  tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
RID=${loc##*/}
[ -n "$RID" ] && ok "retention policy $RID created" || bad "no retention policy created"
run_retention() { # DRY → execution id, once it ended
  local l eid s
  l=$(curl -fsS -o /dev/null -D - -u "$A" -H 'content-type: application/json' -X POST "$API/retentions/$RID/executions" -d "{\"dry_run\":$1}" |
    tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  eid=${l##*/}
  for _ in $(seq 150); do
    s=$(api "$API/retentions/$RID/executions" | jq_ "next(e['status'] for e in d if e['id'] == $eid)")
    case "$s" in Success | Error | Stopped) break ;; esac
    sleep 0.2
  done
  echo "$eid $s"
}
read -r eid status < <(run_retention true)
task=$(api "$API/retentions/$RID/executions/$eid/tasks" | jq_ 'd[0]["id"], d[0]["total"], d[0]["retained"]' | tr '\n' ' ')
read -r tid total retained <<<"$task"
log=$(api "$API/retentions/$RID/executions/$eid/tasks/$tid")
dels=$(grep -c ' DEL$' <<<"$log" || true)
if [ "$status" = Success ] && [ "$total/$retained/$dels" = 6/3/3 ] && [ "$(tags)" = "v1 v2 v3 v4 v5" ] && [ "$(count)" = 6 ]; then
  ok "dry run: 6 artifacts, 3 retained, 3 DEL rows in the log, nothing deleted"
else
  bad "dry run: status $status, total $total, retained $retained, $dels DEL rows, tags $(tags), $(count) artifacts"
  echo "$log" | sed 's/^/     /'
fi
grep -q "immutable" <<<"$log" && ok "the log says v1 is kept as immutable" || bad "the log does not mention the immutable v1"
read -r eid status < <(run_retention false)
if [ "$status" = Success ] && [ "$(tags)" = "v1 v4 v5" ] && [ "$(count)" = 3 ]; then
  ok "run: skopeo list-tags shows v1 v4 v5, the untagged image is gone"
else
  bad "run: status $status, tags $(tags), $(count) artifacts"
fi
if out=$("${SKOPEO[@]}" inspect --tls-verify=false --creds "$A" "docker://$R/p1/app:v2" 2>&1); then bad "v2 still pulls"
else ok "skopeo inspect p1/app:v2 fails: $(tail -c 120 <<<"$out")"; fi

# ------------------------------------------------------------------ docker: quota and immutability
DOCKERD_DIR=$WORKDIR/dockerd
eval "$("$ROOT/scripts/dockerd.sh" start "$DOCKERD_DIR" 2>>"$WORKDIR/logs/dockerd.log")" || { bad "dockerd did not start"; exit 1; }
dk() { timeout -k 5 120 "$DOCKER_BIN" "$@"; }
dk login -u admin --password-stdin "$R" <<<"$PASS" >/dev/null 2>&1 || bad "docker login"
for i in a b; do
  mk "d$i"
  timeout -k 5 120 "${SKOPEO[@]}" copy --quiet "oci:$WORKDIR/layouts/d$i:v1" "docker-archive:$WORKDIR/tmp/d$i.tar:e2e/d$i:v1"
  dk load -i "$WORKDIR/tmp/d$i.tar" >/dev/null || bad "docker load d$i"
done
api -X POST "$API/projects" -d '{"project_name":"q1","storage_limit":1024}' >/dev/null
dk tag e2e/da:v1 "$R/q1/app:v1"
if out=$(dk push "$R/q1/app:v1" 2>&1); then bad "docker pushed 32 KiB into a 1 KiB quota"
elif grep -q "quota exceeded" <<<"$out"; then ok "docker push over the quota refused: $(grep -o 'quota exceeded[^"]*' <<<"$out" | head -1)"
else bad "docker push over the quota refused without the quota's message: $out"; fi
api -X POST "$API/projects" -d '{"project_name":"i1"}' >/dev/null
api -X POST "$API/projects/i1/immutabletagrules" \
  -d '{"tag_selectors":[{"kind":"doublestar","decoration":"matches","pattern":"v*"}],"scope_selectors":{"repository":[{"kind":"doublestar","decoration":"repoMatches","pattern":"**"}]}}' >/dev/null
dk tag e2e/da:v1 "$R/i1/app:v1"
dk push "$R/i1/app:v1" >/dev/null 2>&1 && ok "docker pushes i1/app:v1" || bad "docker push i1/app:v1"
if dk push "$R/i1/app:v1" >/dev/null 2>&1; then ok "docker pushes the same image to the immutable v1 again"; else bad "the same image refused"; fi
dk tag e2e/db:v1 "$R/i1/app:v1"
if out=$(dk push "$R/i1/app:v1" 2>&1); then bad "docker overwrote the immutable i1/app:v1"
elif grep -q "configured as immutable" <<<"$out"; then ok "docker push of another image to v1 refused: $(grep -o 'the tag[^"]*immutable[^"]*' <<<"$out" | head -1)"
else bad "refused without the immutability message: $out"; fi
if e2e_guard_changed; then bad "a client wrote outside WORKDIR"; fi

[ $failed -eq 0 ] || { echo "--- server log"; tail -30 "$WORKDIR/berth.log"; exit 1; }
echo "all policy checks passed"

#!/usr/bin/env bash
# Project storage quotas with real clients: starts berth (BERTH_BIN) on a free 127.0.0.1 port with
# an empty data directory (SQLite, gc.window 1 s), creates project q1 with a 1 MiB storage limit
# and checks what users see:
#   - skopeo pushes 256 KiB images until one is refused; skopeo and podman both print berth's
#     "quota exceeded: project q1 storage limit 1.0 MiB, used …" message; the quota's `used` never
#     passes `hard`;
#   - six skopeo pushes at once at the edge of the limit: some are refused, `used` stays within
#     the limit (SQLite decides each charge in turn) and covers every pushed artifact;
#   - deleting the repository frees nothing until GC; after GC the bytes are given back and a
#     push that was refused now fits.
# Stops berth by PID.
#   end2end/registry/quota.sh BERTH_BIN
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
# Lower case only: podman names an image pulled from an OCI layout after its path.
work=/tmp/bquota.$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')
mkdir -m 700 "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
cleanup() {
  [ -f "$work/berth.pid" ] && kill "$(cat "$work/berth.pid")" 2>/dev/null || true
  if [ "${KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
mkdir -p "$work/server"
( cd "$work/server" && BERTH_LISTEN=127.0.0.1:$port BERTH_EXTERNAL_URL=http://127.0.0.1:$port \
    BERTH_LOG__LEVEL=${BERTH_LOG__LEVEL:-warn} BERTH_GC__WINDOW=1s exec "$bin" >"$work/berth.log" 2>&1 ) &
echo $! >"$work/berth.pid"
for _ in $(seq 150); do
  curl -fsS "http://127.0.0.1:$port/api/v2.0/ping" >/dev/null 2>&1 && break
  sleep 0.2
done
R=127.0.0.1:$port PASS=${BERTH_ADMIN_PASSWORD:-Harbor12345}
A=admin:$PASS API=http://$R/api/v2.0
SK=(skopeo --override-os linux)
LIMIT=$((1024 * 1024))
failed=0
ok() { printf 'ok   %s\n' "$*"; }
bad() { printf 'FAIL %s\n' "$*"; failed=1; }
api() { curl -fsS -u "$A" -H 'content-type: application/json' "$@"; }
mk() { python3 "$here/mkimage.py" image "$work/$1" --layers 1 --layer-size 256K --tag v1 >/dev/null; }
push() { # LAYOUT REPO
  timeout -k 5 120 "${SK[@]}" copy --quiet --dest-tls-verify=false --dest-creds "$A" "oci:$work/$1:v1" "docker://$R/q1/$2:v1" 2>&1
}
quota_json() { api "$API/quotas?reference=project&reference_id=$PID"; }
used() { quota_json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["used"]["storage"])'; }
# The bytes the project's artifacts take, each blob once (manifest + config + layers).
artifact_bytes() {
  api "$API/projects/q1/repositories?page_size=100" | python3 -c 'import json,sys; [print(r["name"].split("/",1)[1]) for r in json.load(sys.stdin)]' |
    while read -r repo; do
      api "$API/projects/q1/repositories/$repo/artifacts?page_size=100" | python3 -c '
import json, sys
for a in json.load(sys.stdin):
    print(a["digest"], a["size"])'
    done | sort -u | awk '{s += $2} END {print s + 0}'
}

api -X POST "$API/projects" -d "{\"project_name\":\"q1\",\"storage_limit\":$LIMIT}" >/dev/null
PID=$(api "$API/projects/q1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["project_id"])')
hard=$(quota_json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["hard"]["storage"])')
[ "$hard" = "$LIMIT" ] && ok "project q1 created with a 1 MiB quota" || bad "quota hard is $hard, expected $LIMIT"

# -------------------------------------------------------------- push until refused
refused="" n=0
for i in $(seq 1 8); do
  mk "img$i"
  if out=$(push "img$i" "app$i"); then n=$i; else refused=$out; break; fi
done
if [ -z "$refused" ]; then bad "8 pushes of 256 KiB fitted in a 1 MiB quota"
elif [[ $refused == *"quota exceeded: project q1 storage limit 1.0 MiB, used"* ]]; then
  ok "skopeo push #$((n + 1)) refused after $n: ${refused##*unknown: }"
else bad "skopeo refused without the quota message: $refused"; fi
u=$(used)
[ "$u" -le "$LIMIT" ] && ok "used $u <= hard $LIMIT" || bad "used $u > hard $LIMIT"

# podman sees the same message.
if command -v podman >/dev/null; then
  mk podimg
  pod=(podman --root "$work/podman/root" --runroot "$work/podman/run" --storage-driver vfs)
  "${pod[@]}" pull "oci:$work/podimg:v1" >"$work/podman-pull.log" 2>&1 || true
  img=$(tail -n 1 "$work/podman-pull.log")
  if ! [[ $img =~ ^[0-9a-f]{64}$ ]]; then bad "podman could not load the test image: $(tail -n 3 "$work/podman-pull.log")"
  elif out=$("${pod[@]}" push --tls-verify=false --creds "$A" "$img" "docker://$R/q1/podman:v1" 2>&1); then
    bad "podman pushed past the quota"
  elif [[ $out == *"quota exceeded: project q1"* ]]; then ok "podman push refused: $(grep -o 'quota exceeded[^"]*' <<<"$out" | head -1)"
  else bad "podman refused without the quota message: $out"; fi
fi

# -------------------------------------------------------------- concurrent pushes at the edge
u=$(used)
api -X PUT "$API/quotas/$(quota_json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')" \
  -d "{\"hard\":{\"storage\":$((u + 3 * 270 * 1024))}}" >/dev/null
edge=$((u + 3 * 270 * 1024))
for i in $(seq 1 6); do mk "edge$i"; done
pids=()
for i in $(seq 1 6); do (set +e; push "edge$i" "edge$i" >"$work/edge$i.out" 2>&1; echo $? >"$work/edge$i.rc") & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || true; done
okc=0 refc=0
for i in $(seq 1 6); do
  if [ "$(cat "$work/edge$i.rc")" = 0 ]; then okc=$((okc + 1))
  elif grep -q "quota exceeded" "$work/edge$i.out"; then refc=$((refc + 1))
  else bad "edge push $i failed otherwise: $(cat "$work/edge$i.out")"; fi
done
u=$(used) b=$(artifact_bytes)
[ "$refc" -ge 1 ] && [ "$okc" -ge 1 ] && ok "6 concurrent pushes at the edge: $okc accepted, $refc refused with the quota message" \
  || bad "6 concurrent pushes at the edge: $okc accepted, $refc refused"
[ "$u" -le "$edge" ] && ok "used $u <= hard $edge after the concurrent pushes" || bad "used $u > hard $edge"
# Every pushed artifact is counted; blobs of refused pushes that were uploaded before the refusal
# (a config) stay charged until GC, as in Harbor.
[ "$u" -ge "$b" ] && ok "used $u covers the $b bytes the project's artifacts take" || bad "used $u < artifacts' $b"

# -------------------------------------------------------------- delete, GC gives back
before=$(used)
api -X DELETE "$API/projects/q1/repositories/app1" >/dev/null
[ "$(used)" = "$before" ] && ok "a deleted repository's bytes stay charged until GC" || bad "usage changed before GC"
sleep 1.5 # past gc.window
loc=$(curl -fsS -u "$A" -H 'content-type: application/json' -D - -o /dev/null -X POST "$API/system/gc/schedule" \
  -d '{"schedule":{"type":"Manual"},"parameters":{"dry_run":false}}' | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
status=""
for _ in $(seq 150); do
  status=$(curl -fsS -u "$A" "http://$R$loc" | python3 -c 'import json,sys; print(json.load(sys.stdin)["job_status"])')
  [ "$status" = Success ] && break
  sleep 0.2
done
after=$(used)
[ "$status" = Success ] && [ "$after" -lt "$before" ] && ok "GC gave back $((before - after)) bytes ($before -> $after)" \
  || bad "GC ($status): used $before -> $after"
mk again
if out=$(push again again); then ok "a push that did not fit before fits after GC"; else bad "push after GC refused: $out"; fi

[ $failed -eq 0 ] || { echo "--- server log"; tail -30 "$work/berth.log"; exit 1; }
echo "all quota checks passed"

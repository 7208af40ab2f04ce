#!/usr/bin/env bash
# Tag immutability with a real client: starts berth (BERTH_BIN) on a free 127.0.0.1 port with
# an empty data directory, pushes p1/app:v1 with skopeo, adds an immutability rule (repository
# **, tag v*), then checks what the user sees: the same image pushed again is accepted; another
# image pushed to v1, `skopeo delete` of v1 and the REST repository delete are refused with
# "configured as immutable"; v1 still names the first image. Stops berth by PID.
#   end2end/registry/immutable.sh BERTH_BIN
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1
work=$(mktemp -d /tmp/bim.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
cleanup() {
  [ -f "$work/berth.pid" ] && kill "$(cat "$work/berth.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/server"
( cd "$work/server" && BERTH_LISTEN=127.0.0.1:$port BERTH_EXTERNAL_URL=http://127.0.0.1:$port \
    BERTH_LOG__LEVEL=warn exec "$bin" >"$work/berth.log" 2>&1 ) &
echo $! >"$work/berth.pid"
for _ in $(seq 150); do
  curl -fsS "http://127.0.0.1:$port/api/v2.0/ping" >/dev/null 2>&1 && break
  sleep 0.2
done
R=127.0.0.1:$port A=admin:${BERTH_ADMIN_PASSWORD:-Harbor12345}
SK=(skopeo --override-os linux)
failed=0
ok() { printf 'ok   %s\n' "$*"; }
bad() { printf 'FAIL %s\n' "$*"; failed=1; }
python3 "$here/mkimage.py" image "$work/img1" --tag v1 >/dev/null
python3 "$here/mkimage.py" image "$work/img2" --tag v1 >/dev/null
push() { "${SK[@]}" copy --quiet --dest-tls-verify=false --dest-creds "$A" --preserve-digests "oci:$work/$1:v1" "docker://$R/p1/app:v1" 2>&1; }
digest() { curl -fsS -u "$A" "http://$R/api/v2.0/projects/p1/repositories/app/artifacts/v1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])'; }
curl -fsS -u "$A" -H 'content-type: application/json' -X POST "http://$R/api/v2.0/projects" -d '{"project_name":"p1"}' >/dev/null
push img1 >/dev/null && ok "skopeo pushes p1/app:v1"
first=$(digest)
curl -fsS -u "$A" -H 'content-type: application/json' -X POST "http://$R/api/v2.0/projects/p1/immutabletagrules" \
  -d '{"tag_selectors":[{"kind":"doublestar","decoration":"matches","pattern":"v*"}],"scope_selectors":{"repository":[{"kind":"doublestar","decoration":"repoMatches","pattern":"**"}]}}' >/dev/null
if out=$(push img1); then ok "the same image pushed again to v1 is accepted"; else bad "same image refused: $out"; fi
if out=$(push img2); then bad "another image overwrote the immutable v1"
elif [[ $out == *"configured as immutable"* ]]; then ok "another image to v1 refused: ${out##*msg=}"
else bad "refused without the immutability message: $out"; fi
if out=$("${SK[@]}" delete --tls-verify=false --creds "$A" "docker://$R/p1/app:v1" 2>&1); then bad "skopeo deleted the immutable v1"
elif [[ $out == *"configured as immutable"* && $out == *"412"* ]]; then ok "skopeo delete of v1 refused (412)"
else bad "delete refused without the immutability message: $out"; fi
out=$(curl -sS -u "$A" -X DELETE -w ' %{http_code}' "http://$R/api/v2.0/projects/p1/repositories/app")
if [[ $out == *PRECONDITION*412 ]]; then ok "REST repository delete refused: $out"; else bad "REST repository delete: $out"; fi
if [ "$(digest)" = "$first" ]; then ok "v1 still names $first"; else bad "v1 moved"; fi
[ $failed -eq 0 ] || { echo "--- server log"; tail -30 "$work/berth.log"; exit 1; }
echo "all immutability checks passed"

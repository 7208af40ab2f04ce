#!/usr/bin/env bash
# Online garbage collection under load: pushes and pulls with skopeo in a loop while GC runs
# again and again (REST and `berth gc`), then checks that every image that should exist pulls
# bit-identical and that storage holds no unreferenced blob older than the GC window.
#   end2end/registry/gc-online.sh <path to berth binary>
# Environment: GC_DURATION (s of load, default 60), GC_SEED (the pushers' and puller's random
# choices; printed, default random), GC_KEEP=1 (keep the work directory, printed at the end).
#
# 1. berth on a free 127.0.0.1 port, empty data directory (SQLite + filesystem storage), a
#    copy of the binary (a rebuild cannot change it mid-run), gc.window = 5 s.
# 2. mkimage.py: images a, b, c sharing base layers, d, e (arm64), an index ix (amd64/v2,
#    arm64) whose amd64 child shares the base layer (~4 MiB).
# 3. gc_check.py load: two pushers (library/gc1+gc2, library/gc3+gc4: new tags, the rotating
#    tag `latest`, re-pushes, tag / artifact deletes, one repository deleted each, single-use
#    images deleted soon after their push and pushed again - or built upon - just when GC may
#    sweep them, with a `berth gc` started at the same moment), a puller checking digests and
#    content, a GC loop (every 0.5-1.5 s: REST delete_untagged true/false, CLI with and without
#    --delete-untagged; second triggers must be refused). Pushes that race GC may be retried
#    (counted; 3 at most; each must overlap a GC run).
# 4. quiet for more than the window, a final `berth gc` (no --delete-untagged), then
#    gc_check.py verify: ledger tags pull with their digests, deleted things answer 404,
#    storage = database (nothing unreferenced older than the window, no 'deleting' rows, no
#    row without its file), all GC runs Success and not overlapping, bytes freed > 0.
# Takes ~75 s with the default 60 s of load.
set -euo pipefail

usage() { sed -n '2,24p' "$0" >&2; exit 2; }
[ $# -eq 1 ] || usage
here=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$here/../.." && pwd) # used by lib-clients.sh
export ROOT
bin=$1
DURATION=${GC_DURATION:-60}
SEED=${GC_SEED:-$RANDOM$RANDOM}
WINDOW=5
T_START=$(date +%s.%N)
elapsed() { awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f s", b-a}'; }
say() { printf '%s\n' "$*"; }

# Short: podman/skopeo client dirs live under it (lib-clients.sh wants WORKDIR <= 35 chars).
work=$(mktemp -d /tmp/bgc.XXXXXX)
server_pid=""
on_exit() {
  local rc=$?
  set +e
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  if [ $rc -ne 0 ]; then
    say "" >&2
    say "gc-online.sh: FAILED (exit $rc) after $(elapsed); seed $SEED (GC_SEED=$SEED to repeat the choices)" >&2
    if [ -f "$work/berth.log" ]; then
      say "--- server log (last 60 lines of $(wc -l <"$work/berth.log"))" >&2
      tail -n 60 "$work/berth.log" | sed 's/\x1b\[[0-9;]*m//g' >&2
    fi
  fi
  if [ "${GC_KEEP:-0}" = 1 ]; then
    say "work directory kept: $work" >&2
  else
    rm -rf "$work"
  fi
  exit $rc
}
trap on_exit EXIT

# The binary may be in the middle of a rebuild: wait for it, then run a private copy.
for _ in $(seq 120); do [ -x "$bin" ] && break; sleep 1; done
[ -x "$bin" ] || { say "gc-online.sh: no executable $bin" >&2; exit 2; }
cp "$bin" "$work/berth"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
R=127.0.0.1:$port
BENV=("BERTH_LISTEN=$R" "BERTH_EXTERNAL_URL=http://$R" BERTH_LOG__LEVEL=warn "BERTH_GC__WINDOW=${WINDOW}s")
mkdir -p "$work/server"
( cd "$work/server" && exec env "${BENV[@]}" "$work/berth" >"$work/berth.log" 2>&1 ) &
server_pid=$!
# `berth gc` with the server's working directory and environment (same database and storage).
{
  printf '#!/bin/sh\ncd %q || exit 1\nexec env' "$work/server"
  printf ' %q' "${BENV[@]}" "$work/berth" gc
  printf ' "$@"\n'
} >"$work/berth-gc"
chmod +x "$work/berth-gc"
for _ in $(seq 150); do
  curl -fsS "http://$R/api/v2.0/ping" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { say "berth exited at startup" >&2; exit 1; }
  sleep 0.2
done
curl -fsS "http://$R/api/v2.0/ping" >/dev/null || { say "berth does not answer on $R" >&2; exit 1; }
say "==> berth $("$work/berth" --version 2>/dev/null | awk '{print $2}') on $R (pid $server_pid, data $work/server/data, gc.window ${WINDOW}s)"

# skopeo kept inside the work directory (its blob-info cache, temporary files, policy).
WORKDIR=$work/c
# shellcheck source=end2end/registry/lib-clients.sh
. "$here/lib-clients.sh"
e2e_workdir gc-online.sh
e2e_isolate
command -v skopeo >/dev/null || { say "skopeo is not installed (apt-get install skopeo)" >&2; exit 2; }

say "==> images (mkimage.py)"
IMG=$work/img
MK=(python3 "$here/mkimage.py")
mk() { # NAME KIND ARGS...
  local name=$1 kind=$2
  shift 2
  "${MK[@]}" "$kind" "$IMG/$name" --tag v1 "$@" >"$IMG/$name.json"
}
mkdir -p "$IMG"
base_seed=base-$SEED
mk a image --seed "$base_seed" --layers 2 --layer-size 384K      # a, b, c and ix's amd64 child
mk b image --seed "$base_seed" --layers 3 --layer-size 384K      # share layer 0 (a and b: 0, 1)
mk c image --seed "$base_seed" --layers 1 --layer-size 384K
mk d image --layers 2 --layer-size 256K
mk e image --layers 1 --layer-size 512K --arch arm64
# Multi-arch; amd64/v2, not amd64: its child would otherwise be byte for byte image c (same
# layer, same config), and deleting c by digest would take the index's child with it.
mk ix index --seed "$base_seed" --layers 1 --layer-size 384K --platforms linux/amd64/v2,linux/arm64
say "    $(find "$IMG" -mindepth 1 -maxdepth 1 -type d | wc -l) layouts, $(du -sk "$IMG" | cut -f1) KiB"

say "==> load for ${DURATION} s: 2 pushers, 1 puller, GC every 0.5-1.5 s (REST and CLI) and with racing pushes"
PY=(python3 "$here/gc_check.py")
COMMON=(--registry "$R" --images "$IMG" --ledger "$work/ledger.json" --tmp "$WORKDIR/tmp/gc")
"${PY[@]}" load "${COMMON[@]}" --gc-cmd "$work/berth-gc" --duration "$DURATION" --seed "$SEED" --window "$WINDOW" \
  -- "${SKOPEO[@]}"
kill -0 "$server_pid" 2>/dev/null || { say "berth is no longer running" >&2; exit 1; }

say "==> quiet for $((WINDOW + 2)) s (> gc.window), then a final berth gc (no --delete-untagged)"
sleep $((WINDOW + 2))
if ! "$work/berth-gc" --json >"$work/final-gc.json" 2>"$work/final-gc.err"; then
  cat "$work/final-gc.json" "$work/final-gc.err" >&2
  say "final berth gc failed" >&2
  exit 1
fi
say "    $(tail -1 "$work/final-gc.json")"

say "==> verify"
"${PY[@]}" verify "${COMMON[@]}" --data "$work/server/data" --window "$WINDOW" \
  --final-gc-json "$work/final-gc.json" -- "${SKOPEO[@]}"

# The server must still be up, without panics; its warnings are shown.
kill -0 "$server_pid" 2>/dev/null || { say "berth is no longer running" >&2; exit 1; }
if grep -q 'panicked' "$work/berth.log"; then
  grep -n -A5 'panicked' "$work/berth.log" | head -40 >&2
  say "berth panicked (see above)" >&2
  exit 1
fi
nwarn=$(grep -c -E 'WARN|ERROR' "$work/berth.log" || true)
if [ "$nwarn" -gt 0 ]; then
  say "  server log: $nwarn WARN/ERROR lines, first ones:"
  sed 's/\x1b\[[0-9;]*m//g' "$work/berth.log" | grep -E 'WARN|ERROR' | head -5 | cut -c1-300 | sed 's/^/    /'
fi
if e2e_guard_changed; then say "a client wrote outside the work directory" >&2; exit 1; fi
say ""
say "gc-online.sh: passed in $(elapsed) (seed $SEED)"

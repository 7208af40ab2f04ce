#!/usr/bin/env bash
# Replication benchmark: berth's push-based replication against `skopeo sync` of the same set,
# from one berth (release build, SQLite + filesystem) to a fresh CNCF distribution (Debian's
# docker-registry, htpasswd Basic auth) per measurement, on this machine, in one run.
#
#   bench/replication.sh                   # release build, then the sets below, REPS=3 alternations
#   SKIP_BUILD=1 REPS=1 BIG_MIB=64 SMALL=50 bench/replication.sh    # smoke test
#
# Sets: `big` = one image with one BIG_MIB (1024) MiB layer of random bytes; `small` = SMALL
# (1000) distinct small images (a 1 KiB layer and a config each) as tags of one repository.
# Each measurement: a fresh distribution; berth = POST a docker-registry endpoint and a
# push-based policy, start an execution, wait for Succeed (wall time), then start it again with
# nothing changed (the re-run time); the berth process's RSS is sampled every 0.1 s throughout.
# skopeo = `skopeo sync --src yaml --preserve-digests --all` of the same images. The tools take
# turns going first (GUIDE.md: compare alternately, medians of >= 3).
# Output: a Markdown table on stdout (and in $OUT when set). Everything lives in one
# mktemp -d /tmp/berth-rbench.XXXXXX directory, removed at the end (KEEP=1 keeps it).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
REPS=${REPS:-3}
BIG_MIB=${BIG_MIB:-1024}
SMALL=${SMALL:-1000}
: "${CARGO_TARGET_DIR:=$HOME/.cache/berth/target}"
export CARGO_TARGET_DIR
if [ "${SKIP_BUILD:-}" != 1 ]; then
  log "building berth (release)"
  (cd "$ROOT" && cargo build -q --release -p server)
fi
BIN=$CARGO_TARGET_DIR/release/berth
W=$(mktemp -d /tmp/berth-rbench.XXXXXX)
BERTH_PID=""
cleanup() {
  stop_berth
  for d in "$W"/d-*; do [ -d "$d" ] && "$ROOT/scripts/services.sh" stop "$d" >/dev/null 2>&1; done
  if [ "${KEEP:-}" != 1 ]; then rm -rf "$W"; else log "kept $W"; fi
}
trap cleanup EXIT
export _CONTAINERS_ROOTLESS_UID=65534 XDG_DATA_HOME=$W/skopeo-data XDG_CONFIG_HOME=$W/skopeo-config
echo '{"default": [{"type": "insecureAcceptAnything"}]}' >"$W/policy.json"
SKOPEO=$(printf '%s\n' skopeo --policy "$W/policy.json")
export SKOPEO

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
SRC=http://127.0.0.1:$port
mkdir -p "$W/a"
( cd "$W/a" && BERTH_LISTEN=127.0.0.1:$port BERTH_EXTERNAL_URL=$SRC BERTH_LOG__LEVEL=warn exec "$BIN" >"$W/berth.log" 2>&1 ) &
BERTH_PID=$!
for _ in $(seq 150); do curl -fsS "$SRC/api/v2.0/ping" >/dev/null 2>&1 && break; sleep 0.2; done

log "seeding: big/one:1 (${BIG_MIB} MiB layer), small/app (${SMALL} images)"
curl -fsS -u admin:Harbor12345 -H 'Content-Type: application/json' -d '{"project_name":"big"}' "$SRC/api/v2.0/projects" >/dev/null
python3 "$ROOT/bench/mkimage-big.py" "$W/big" --layers 1 --layer-bytes $((BIG_MIB << 20)) --tag 1 >/dev/null
$SKOPEO copy -q --preserve-digests --dest-tls-verify=false --dest-creds admin:Harbor12345 "oci:$W/big:1" "docker://127.0.0.1:$port/big/one:1"
rm -rf "$W/big"
python3 "$ROOT/bench/replication_bench.py" seed-small --src "$SRC" --repo small/app --count "$SMALL"
for set in big small; do
  {
    echo "127.0.0.1:$port:"
    echo "  tls-verify: false"
    echo "  credentials: {username: admin, password: Harbor12345}"
    echo "  images:"
    if [ $set = big ]; then echo '    big/one: ["1"]'; else echo '    small/app: []'; fi
  } >"$W/$set.yaml"
done

measure() { # SET TOOL REP
  local set=$1 tool=$2 rep=$3 d=$W/d-$1-$2-$3
  mkdir -p "$d"
  eval "$("$ROOT/scripts/services.sh" start distribution "$d")"
  sync
  log "$set / $tool / rep $rep"
  if [ "$tool" = berth ]; then
    python3 "$ROOT/bench/replication_bench.py" berth --src "$SRC" --dest "$TEST_DISTRIBUTION_URL" \
      --dest-user "$TEST_DISTRIBUTION_USER" --dest-password "$TEST_DISTRIBUTION_PASSWORD" \
      --name "$set-$rep" --filter "$set/**" --pid "$BERTH_PID" --out "$W/r-$set-$tool-$rep.json"
  else
    python3 "$ROOT/bench/replication_bench.py" skopeo-sync --src "$SRC" --dest "$TEST_DISTRIBUTION_URL" \
      --dest-creds "$TEST_DISTRIBUTION_USER:$TEST_DISTRIBUTION_PASSWORD" --yaml "$W/$set.yaml" \
      --out "$W/r-$set-$tool-$rep.json"
  fi
  "$ROOT/scripts/services.sh" stop "$d" >/dev/null
  rm -rf "$d"
}
for rep in $(seq "$REPS"); do
  for set in big small; do
    if [ $((rep % 2)) = 1 ]; then order="berth skopeo"; else order="skopeo berth"; fi
    for tool in $order; do measure $set $tool "$rep"; done
  done
done
{
  echo "## Replication: berth vs skopeo sync ($(date -u +%F), $(nproc) cores, BIG_MIB=$BIG_MIB, SMALL=$SMALL, REPS=$REPS)"
  echo
  python3 "$ROOT/bench/replication_bench.py" report "$W"
} | tee "${OUT:-/dev/null}"

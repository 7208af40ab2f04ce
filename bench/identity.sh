#!/usr/bin/env bash
# The token service's rate for a database user against an LDAP user, with the default
# auth.directory_cache (cached verification and groups) and with auth.directory_cache = 0
# (every token asks the directory: search, bind, group search).
#
#   bench/identity.sh            ~6 min; Markdown report on stdout (progress on stderr), written to
#                                bench/IDENTITY-RESULTS.md when run with the defaults
#
# Environment:
#   BERTH_BIN   default $CARGO_TARGET_DIR/release/berth (never built here)
#   ROUNDS      alternations (3)            DURATION  timed wrk run per cell (10s)
#   WARMUP      untimed wrk run first (3s)  CONNS     wrk connections (8)   THREADS  wrk threads (1)
#   LDAP_URL_KIND  ldaps (default) or ldap: which of slapd's listeners berth talks to
#   RESULTS=FILE   where the report goes (default bench/IDENTITY-RESULTS.md with the defaults)
#   KEEP=1      keep the work directory
#
# One slapd (scripts/services.sh start slapd, seed scripts/ldap/seed.ldif) and one SQLite data
# directory. Setup (first berth): ldap_auth over LDAPS with the test CA, project `bench`
# (private), the LDAP group `developers` (alice, bob) a developer through /usergroups; the database
# user is `admin` (in ldap_auth only the admin is a local account, as in Harbor; its password is
# checked by argon2 and cached like any local user's); alice logs in once (onboarding). Then ROUNDS times, the two
# configurations in alternating order, each on a fresh berth process on the same data:
#   cached   default auth.directory_cache (5 s): db user, then LDAP user alice (order alternates)
#   nocache  BERTH_AUTH__DIRECTORY_CACHE=0s:     db user, then alice
# Per cell: a checked request (200, a token granting exactly pull,push), WARMUP of wrk, then
# `wrk -t THREADS -c CONNS -d DURATION` on
#   GET /service/token?service=<svc>&scope=repository:bench/app:pull,push  (Authorization: Basic)
# requests/s, p50/p99 latency, non-2xx and socket errors (bench/identity_measure.lua), and the CPU
# time of berth and slapd during the timed run (/proc/PID/stat). Medians over the rounds.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" # log, die, alive, stop_berth
repo_root=$(cd "$here/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/berth/target}
BERTH_BIN=${BERTH_BIN:-$CARGO_TARGET_DIR/release/berth}
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10s} WARMUP=${WARMUP:-3s} CONNS=${CONNS:-8} THREADS=${THREADS:-1}
LDAP_URL_KIND=${LDAP_URL_KIND:-ldaps}
ADMIN_PASS=Harbor12345
LDAP_USER=alice LDAP_PASS=alice-Pass-1
SCOPE=repository:bench/app:pull,push

[ -x "$BERTH_BIN" ] || die "no berth binary at $BERTH_BIN (cargo build --release -p server --bin berth)"
for t in python3 curl jq wrk; do command -v "$t" >/dev/null || die "$t is needed (apt-get install $t)"; done
case $LDAP_URL_KIND in ldaps | ldap) ;; *) die "LDAP_URL_KIND must be ldaps or ldap" ;; esac

exec 9>/tmp/berth-identity-bench.lock
flock -n 9 || { log "another bench/identity.sh is running; waiting"; flock -w 1800 9 || die "the other run did not finish"; }

W=$(mktemp -d /tmp/berth-id-bench.XXXXXX)
BERTH_PID=""
cleanup() {
  local rc=$?
  set +e
  stop_berth
  "$repo_root/scripts/services.sh" stop "$W/svc" >/dev/null 2>&1
  [ $rc -eq 0 ] || { log "logs:"; tail -n 20 "$W"/berth-*.log >&2 2>/dev/null; }
  if [ "${KEEP:-}" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bin_time=$(date -u -r "$BERTH_BIN" '+%Y-%m-%d %H:%M:%S UTC')
cp "$BERTH_BIN" "$W/berth"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

mkdir -p "$W/svc" "$W/data/storage"
eval "$("$repo_root/scripts/services.sh" start slapd "$W/svc")"
SLAPD_PID=$(cat "$W/svc/slapd/slapd.pid")
if [ "$LDAP_URL_KIND" = ldaps ]; then LDAP_URL=$TEST_BERTH_LDAPS_URL; else LDAP_URL=$TEST_BERTH_LDAP_URL; fi
LB=$TEST_BERTH_LDAP_BASE_DN

# start_berth CONFIG: a fresh process on the shared data directory
start_berth() {
  local cfg=$1 v unset_args=() extra=() i
  for v in $(compgen -e); do [[ $v == BERTH_* ]] && unset_args+=(-u "$v"); done
  [ "$cfg" = nocache ] && extra=(BERTH_AUTH__DIRECTORY_CACHE=0s)
  BERTH_PORT=$(free_port)
  (cd "$W/data" && exec env "${unset_args[@]}" BERTH_LISTEN="127.0.0.1:$BERTH_PORT" \
    BERTH_EXTERNAL_URL="http://127.0.0.1:$BERTH_PORT" BERTH_STORAGE__PATH="$W/data/storage" \
    BERTH_LOG__LEVEL=warn "${extra[@]}" "$W/berth" >>"$W/berth-$cfg.log" 2>&1 </dev/null) &
  BERTH_PID=$!
  for ((i = 0; i < 300; i++)); do
    alive "$BERTH_PID" || die "berth ($cfg) exited at start: $(tail -n 5 "$W/berth-$cfg.log")"
    curl -fsS "http://127.0.0.1:$BERTH_PORT/api/v2.0/ping" >/dev/null 2>&1 && break
    sleep 0.1
  done
  B=http://127.0.0.1:$BERTH_PORT
  local ch
  ch=$(curl -sS -D - -o /dev/null "$B/v2/" | grep -i '^www-authenticate:' | tr -d '\r')
  REALM=$(sed -n 's/.*realm="\([^"]*\)".*/\1/p' <<<"$ch")
  SERVICE=$(sed -n 's/.*service="\([^"]*\)".*/\1/p' <<<"$ch")
  [ -n "$REALM" ] && [ -n "$SERVICE" ] || die "no Bearer challenge from $B/v2/"
}
api() { # METHOD PATH [JSON] (admin); prints the status, body in $W/body
  local args=(-sS -X "$1" -u "admin:$ADMIN_PASS" -o "$W/body" -D "$W/hdr" -w '%{http_code}')
  [ -z "${3:-}" ] || args+=(-H 'Content-Type: application/json' --data-binary "$3")
  curl "${args[@]}" "$B/api/v2.0$2"
}
want() { local s; s=$(api "${@:2}"); [ "$s" = "$1" ] || die "$2 $3 answered $s, expected $1: $(head -c 300 "$W/body")"; }
# token_actions USER PASS: "STATUS ACTIONS" of one token request
token_actions() {
  local s
  s=$(curl -sS -G -o "$W/tok" -w '%{http_code}' -u "$1:$2" --data-urlencode "service=$SERVICE" \
    --data-urlencode "scope=$SCOPE" "$REALM")
  echo "$s $(python3 -c '
import base64, json, sys
t = json.load(open(sys.argv[1])).get("token", "")
p = t.split(".")[1]
c = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
print(",".join(sorted(a for x in c.get("access", []) for a in x.get("actions", []))) or "none")' "$W/tok" 2>/dev/null || echo -)"
}

# ------------------------------------------------------------------ setup
log "setup: slapd ($LDAP_URL), berth in ldap_auth, project bench, group developers"
start_berth cached
want 200 PUT /configurations "$(jq -nc --arg url "$LDAP_URL" --arg sdn "$TEST_BERTH_LDAP_SEARCH_DN" \
  --arg spw "$TEST_BERTH_LDAP_SEARCH_PASSWORD" --arg base "ou=people,$LB" --arg gbase "ou=groups,$LB" \
  --rawfile ca "$TEST_BERTH_LDAP_CA" \
  '{auth_mode:"ldap_auth", ldap_url:$url, ldap_search_dn:$sdn, ldap_search_password:$spw, ldap_base_dn:$base,
    ldap_filter:"(objectClass=inetOrgPerson)", ldap_uid:"uid", ldap_scope:2, ldap_verify_cert:true, ldap_ca_cert:$ca,
    ldap_group_base_dn:$gbase, ldap_group_search_filter:"(objectClass=groupOfNames)",
    ldap_group_attribute_name:"cn", ldap_group_search_scope:2}')"
want 201 POST /projects '{"project_name":"bench","metadata":{"public":"false"}}'
want 201 POST /usergroups "$(jq -nc --arg dn "cn=developers,ou=groups,$LB" '{group_name:"developers",group_type:1,ldap_group_dn:$dn}')"
gid=$(grep -i '^location:' "$W/hdr" | tr -d '\r' | sed 's#.*/##')
want 201 POST /projects/bench/members "$(jq -nc --argjson g "$gid" '{role_id:2,member_group:{id:$g}}')"
stop_berth

declare -A USER_OF=([db]=admin [ldap]=$LDAP_USER) PASS_OF=([db]=$ADMIN_PASS [ldap]=$LDAP_PASS)
: >"$W/raw.jsonl"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
measure() { # CONFIG PRINCIPAL ROUND
  local cfg=$1 p=$2 round=$3 got b0 b1 s0 s1 auth
  got=$(token_actions "${USER_OF[$p]}" "${PASS_OF[$p]}")
  [ "$got" = "200 pull,push" ] || die "$cfg/$p: the checked token request answered '$got', expected '200 pull,push'"
  auth="Authorization: Basic $(printf '%s:%s' "${USER_OF[$p]}" "${PASS_OF[$p]}" | base64 -w0)"
  local url="$REALM?service=$(jq -rn --arg v "$SERVICE" '$v|@uri')&scope=$(jq -rn --arg v "$SCOPE" '$v|@uri')"
  wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" -H "$auth" "$url" >/dev/null
  b0=$(cpu_ticks "$BERTH_PID") s0=$(cpu_ticks "$SLAPD_PID")
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -H "$auth" -s "$here/identity_measure.lua" "$url" >"$W/wrk.out" \
    || die "$cfg/$p: wrk failed: $(tail -3 "$W/wrk.out")"
  b1=$(cpu_ticks "$BERTH_PID") s1=$(cpu_ticks "$SLAPD_PID")
  python3 "$here/identity_measure.py" record "$W/wrk.out" --config "$cfg" --principal "$p" --round "$round" \
    --berth-ticks $((b1 - b0)) --slapd-ticks $((s1 - s0)) --clk-tck "$(getconf CLK_TCK)" \
    --compilers "$(pgrep -c -x 'rustc|cc1|cc1plus|ld|cargo' 2>/dev/null || true)" >>"$W/raw.jsonl"
  log "  round $round $cfg $p: $(tail -n 1 "$W/raw.jsonl" | jq -r '"\(.rps) req/s, p99 \(.p99_ms) ms, errors \(.non2xx + .socket_errors)"')"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then cfgs=(cached nocache) ps=(db ldap); else cfgs=(nocache cached) ps=(ldap db); fi
  for cfg in "${cfgs[@]}"; do
    start_berth "$cfg"
    for p in "${ps[@]}"; do measure "$cfg" "$p" "$r"; done
    stop_berth
  done
done

# ------------------------------------------------------------------ report
rev=$(git -C "$repo_root" rev-parse --short HEAD)
cmd="bench/identity.sh"
for v in ROUNDS DURATION WARMUP CONNS THREADS LDAP_URL_KIND; do
  case "$v=${!v}" in ROUNDS=3 | DURATION=10s | WARMUP=3s | CONNS=8 | THREADS=1 | LDAP_URL_KIND=ldaps) ;; *) cmd="$v=${!v} $cmd" ;; esac
done
{
  echo "## Run of $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -sr); wrk, berth and slapd share the CPUs"
  echo "- berth: git $rev ($BERTH_BIN, built $bin_time), SQLite, BERTH_LOG__LEVEL=warn; slapd $(dpkg-query -W -f='${Version}' slapd 2>/dev/null) (mdb, memberof overlay) over $LDAP_URL_KIND:// with certificate verification"
  echo "- request: \`GET /service/token?service=$SERVICE&scope=$SCOPE\` with Basic auth; \`wrk -t$THREADS -c$CONNS -d$DURATION\` after a $WARMUP warm-up; $ROUNDS rounds, configurations alternating, each on a fresh berth process"
  echo "- load average at start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg); wall time $(($(date +%s) - T_START)) s"
  echo "- command: \`$cmd\`"
  echo
} >"$W/report.md"
python3 "$here/identity_measure.py" report "$W/raw.jsonl" >>"$W/report.md"
cat "$W/report.md"
out=${RESULTS:-}
[ -n "$out" ] || [ "$cmd" != bench/identity.sh ] || out=$here/IDENTITY-RESULTS.md
if [ -n "$out" ]; then
  { echo "# Token service rate: database vs LDAP users (bench/identity.sh)"; echo; cat "$W/report.md"; } >"$out"
  log "report written to $out"
fi
cp "$W/raw.jsonl" /tmp/berth-identity-bench-last.jsonl
log "done"

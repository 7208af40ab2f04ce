#!/usr/bin/env bash
# Latency of berth's REST list endpoints at scale, on SQLite and on PostgreSQL.
#
#   bench/api.sh                 seeds each database, measures, prints a Markdown report on stdout
#                                (progress on stderr) and writes it to bench/API-RESULTS.md
#
# Environment:
#   DB=sqlite|postgres|both   (both)            BERTH_BIN  default $CARGO_TARGET_DIR/release/berth
#   CARGO_TARGET_DIR          ~/.cache/berth/target   (the binary is never built here)
#   REQUESTS   timed requests per endpoint (500)     WARMUP  untimed requests first (20)
#   MAX_SECONDS  stop an endpoint's timed requests after this long (60)
#   ONLY=key,key  measure only these endpoints (keys in bench/api_measure.py)
#   REPOS ARTIFACTS PROJECTS AUDIT_ROWS  data set size (10000 100000 200 1000000): smaller
#              values are for smoke tests; the report then goes to the work directory only
#   RESULTS=FILE  where the report goes (default bench/API-RESULTS.md at full size)
#   WAIT_IDLE=SECONDS  before measuring each database and each endpoint, wait up to this long
#              until no compiler (rustc, cargo, cc1, ld) runs on the machine (0: do not wait)
#   KEEP=1     keep the work directory (databases, logs, samples; Postgres is stopped anyway)
#
# For each database: a fresh berth (release binary, its own work directory, BERTH_LOG__LEVEL=warn)
# creates the schema and stops; bench/api_seed.py fills the database directly (timed); berth
# starts again and bench/api_measure.py times each endpoint with Basic auth as admin (portal pages:
# the session cookie of a portal sign-in) over one
# keep-alive connection: p50/p99 of REQUESTS sequential requests after a checked first request
# and WARMUP untimed ones. Endpoints that do not answer 200 with a full JSON page are reported
# as MISSING/ERROR (the run goes on). Postgres comes from scripts/services.sh in the work
# directory; every process started here is stopped by PID on exit and the directory removed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" # log, die, alive, stop_berth
repo_root=$(cd "$here/.." && pwd)
DB=${DB:-both}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/berth/target}
BERTH_BIN=${BERTH_BIN:-$CARGO_TARGET_DIR/release/berth}
export REQUESTS=${REQUESTS:-500} WARMUP=${WARMUP:-20} MAX_SECONDS=${MAX_SECONDS:-60} ONLY=${ONLY:-}
export WAIT_IDLE=${WAIT_IDLE:-0}
export REPOS=${REPOS:-10000} ARTIFACTS=${ARTIFACTS:-100000} PROJECTS=${PROJECTS:-200} AUDIT_ROWS=${AUDIT_ROWS:-1000000}
export PYTHONDONTWRITEBYTECODE=1
RUSER="admin"
RPASS=Harbor12345


case "$DB" in
  sqlite) DBS=(sqlite) ;;
  postgres) DBS=(postgres) ;;
  both) DBS=(sqlite postgres) ;;
  *) die "DB must be sqlite, postgres or both (got $DB)" ;;
esac
full_size=0
[ "$REPOS/$ARTIFACTS/$PROJECTS/$AUDIT_ROWS" = 10000/100000/200/1000000 ] && full_size=1
[ "$ARTIFACTS" -ge 90000 ] || log "warning: ARTIFACTS < 90000: the deep artifacts page (6000) will be empty"
[ "$AUDIT_ROWS" -ge 15000 ] || log "warning: AUDIT_ROWS < 15000: the deep audit page (1000) will be empty"

[ -x "$BERTH_BIN" ] || die "no berth binary at $BERTH_BIN (cargo build --release -p server)"
for t in python3 curl; do command -v "$t" >/dev/null || die "$t is needed"; done
PSQL=""
if [[ " ${DBS[*]} " == *" postgres "* ]]; then
  v=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
  [ -n "$v" ] || die "PostgreSQL is not installed (apt-get install postgresql)"
  PSQL=/usr/lib/postgresql/$v/bin/psql
fi

# ------------------------------------------------------------------ one run at a time

# Two runs at once (2 CPUs) would measure each other: wait for the other one to finish.
exec 9>/tmp/berth-api-bench.lock
if ! flock -n 9; then
  log "another bench/api.sh is running; waiting for it (up to 30 min)"
  flock -w 1800 9 || die "the other bench/api.sh run did not finish in 30 min"
fi

# ------------------------------------------------------------------ work dir, cleanup

W=$(mktemp -d /tmp/berth-api-bench.XXXXXX)
chmod 755 "$W" # the postgres user must reach $W/svc/postgres
BERTH_PID=""
PG_STARTED=0
cleanup() {
  local rc=$?
  set +e
  stop_berth
  if [ "$PG_STARTED" = 1 ]; then
    local pm
    pm=$(head -1 "$W/svc/postgres/data/postmaster.pid" 2>/dev/null)
    "$repo_root/scripts/services.sh" stop "$W/svc"
    if alive "$pm"; then sleep 1; alive "$pm" && kill -TERM "$pm" 2>/dev/null; fi
  fi
  if [ $rc -ne 0 ]; then
    log "logs:"
    tail -n 20 "$W"/berth-*.log >&2 2>/dev/null
  fi
  if [ "${KEEP:-}" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One binary for the whole run, even if it is rebuilt meanwhile.
bin_time=$(date -u -r "$BERTH_BIN" '+%Y-%m-%d %H:%M:%S UTC')
cp "$BERTH_BIN" "$W/berth"
RUN_BIN=$W/berth

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
: >"$W/raw.tsv"
record() { printf '%s\t-\t%s\t%s\n' "$1" "$2" "$3" >>"$W/raw.tsv"; }

# ------------------------------------------------------------------ berth

# start_berth DBNAME URL: berth on a free port with its own working directory and storage.
start_berth() {
  local name=$1 url=$2 v unset_args=() i
  for v in $(compgen -e); do [[ $v == BERTH_* ]] && unset_args+=(-u "$v"); done
  BERTH_PORT=$(free_port)
  mkdir -p "$W/berth-$name/storage"
  (cd "$W/berth-$name" && exec env "${unset_args[@]}" BERTH_LISTEN="127.0.0.1:$BERTH_PORT" \
    BERTH_EXTERNAL_URL="http://127.0.0.1:$BERTH_PORT" BERTH_DATABASE__URL="$url" \
    BERTH_STORAGE__PATH="$W/berth-$name/storage" BERTH_LOG__LEVEL=warn \
    "$RUN_BIN" >>"$W/berth-$name.log" 2>&1 </dev/null) &
  BERTH_PID=$!
  for ((i = 0; i < 600; i++)); do
    alive "$BERTH_PID" || die "berth ($name) exited at start: $(tail -n 5 "$W/berth-$name.log")"
    [ "$(curl -fsS "http://127.0.0.1:$BERTH_PORT/api/v2.0/ping" 2>/dev/null)" = Pong ] && return 0
    sleep 0.1
  done
  die "berth ($name) did not answer Pong in 60 s (slow migrations on a seeded database? berth-$name.log)"
}

# ------------------------------------------------------------------ one database

# Compilers running on the machine while we measure (the numbers are end-to-end on shared CPUs).
busy_sample() { pgrep -c -x 'rustc|cc1|cc1plus|ld|ld.lld|mold|cargo' 2>/dev/null || true; }

# With WAIT_IDLE=SECONDS, waits up to that long for no compiler to be running before measuring.
wait_idle() {
  local deadline=$(($(date +%s) + ${WAIT_IDLE:-0})) n
  while n=$(busy_sample) && [ "${n:-0}" -gt 0 ] && [ "$(date +%s)" -lt "$deadline" ]; do
    log "$1: $n compiler processes running; waiting (WAIT_IDLE=$WAIT_IDLE)"
    sleep 10
  done
}

# Share of audit_log's pages marked all-visible (index-only scans need it).
pg_visible() {
  "$PSQL" -X -At -d "$1" -c "SELECT relallvisible || '/' || relpages FROM pg_class WHERE relname = 'audit_log'"
}

run_db() {
  local name=$1 url t0 t1 line
  case "$name" in
    sqlite)
      url="sqlite://$W/sqlite/berth.db"
      mkdir -p "$W/sqlite"
      ;;
    postgres)
      mkdir -p "$W/svc"
      PG_STARTED=1
      eval "$("$repo_root/scripts/services.sh" start postgres "$W/svc")"
      "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$TEST_BERTH_POSTGRES_URL" -c 'CREATE DATABASE berth_bench'
      url=${TEST_BERTH_POSTGRES_URL%/*}/berth_bench
      record postgres pg_version "$("$PSQL" -X -At -d "$url" -c 'SHOW server_version')"
      ;;
  esac
  log "$name: creating the schema ($url)"
  start_berth "$name" "$url"
  stop_berth
  log "$name: seeding $REPOS repositories, $ARTIFACTS artifacts, $PROJECTS projects, $AUDIT_ROWS audit rows"
  t0=$(date +%s.%N)
  python3 "$here/api_seed.py" "$url" --psql "${PSQL:-psql}" >"$W/seed-$name.txt" ||
    die "$name: seeding failed"
  t1=$(date +%s.%N)
  while IFS= read -r line; do record "$name" "${line%%=*}" "${line#*=}"; done <"$W/seed-$name.txt"
  record "$name" seed_wall_s "$(python3 -c "print(round($t1 - $t0, 2))")"
  if [ "$name" = sqlite ]; then
    record sqlite db_bytes "$(du -cb "$W/sqlite"/berth.db* | tail -1 | cut -f1)"
  else
    record postgres db_bytes "$("$PSQL" -X -At -d "$url" -c "SELECT pg_database_size('berth_bench')")"
    record postgres audit_visible_after_seed "$(pg_visible "$url")"
  fi
  log "$name: seeded in $(grep seed_total_s "$W/seed-$name.txt" | cut -d= -f2) s ($(tr '\n' ' ' <"$W/seed-$name.txt"))"

  wait_idle "$name"
  start_berth "$name" "$url"
  log "$name: measuring on 127.0.0.1:$BERTH_PORT (REQUESTS=$REQUESTS WARMUP=$WARMUP MAX_SECONDS=$MAX_SECONDS)"
  local busy_before busy_after
  busy_before=$(busy_sample)
  python3 "$here/api_measure.py" measure --base "http://127.0.0.1:$BERTH_PORT" --db "$name" \
    --workdir "$W" --user "$RUSER" --password "$RPASS"
  busy_after=$(busy_sample)
  record "$name" compilers_seen "$busy_before/$busy_after"
  [ "$name" = postgres ] && record postgres audit_visible_after_measuring "$(pg_visible "$url")"
  record "$name" server_vmhwm_kib "$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$BERTH_PID/status")"
  stop_berth
  if [ "$name" = postgres ]; then
    "$repo_root/scripts/services.sh" stop "$W/svc"
    PG_STARTED=0
  fi
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)
for name in "${DBS[@]}"; do run_db "$name"; done

# ------------------------------------------------------------------ report

rev=$(git -C "$repo_root" rev-parse --short HEAD)
dirty=$(git -C "$repo_root" status --porcelain --untracked-files=no -- server app migrations Cargo.toml Cargo.lock | wc -l)
cmd="bench/api.sh"
for v in DB REQUESTS WARMUP MAX_SECONDS ONLY WAIT_IDLE REPOS ARTIFACTS PROJECTS AUDIT_ROWS; do
  case "$v=${!v}" in
    DB=both | REQUESTS=500 | WARMUP=20 | MAX_SECONDS=60 | ONLY= | WAIT_IDLE= | WAIT_IDLE=0 | REPOS=10000 | ARTIFACTS=100000 | PROJECTS=200 | AUDIT_ROWS=1000000) ;;
    *) cmd="$v=${!v} $cmd" ;;
  esac
done
compilers() { awk -F'\t' -v d="$1" '$1 == d && $3 == "compilers_seen" { print $4 }' "$W/raw.tsv"; }
{
  echo "## Run of $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 2^20 }' /proc/meminfo) RAM, $(uname -sr)"
  echo "- berth: git $rev$([ "$dirty" -gt 0 ] && echo " + $dirty uncommitted server/app/migrations/Cargo files") ($BERTH_BIN, release, built $bin_time, copied at the start of the run), BERTH_LOG__LEVEL=warn, default pool (10 connections)"
  for name in "${DBS[@]}"; do
    if [ "$name" = sqlite ]; then
      echo "- sqlite: a file in /tmp (WAL, as berth opens it), no ANALYZE (berth never runs one); compiler processes running at start/end of the measurements: $(compilers sqlite)"
    else
      echo "- postgres: $(awk -F'\t' '$1 == "postgres" && $3 == "pg_version" { print $4 }' "$W/raw.tsv") from scripts/services.sh (fsync off, default shared_buffers), database \`berth_bench\`, VACUUM and ANALYZE after seeding (audit_log pages all-visible: $(awk -F'\t' '$1 == "postgres" && $3 == "audit_visible_after_seed" { print $4 }' "$W/raw.tsv")); compiler processes at start/end of the measurements: $(compilers postgres)"
    fi
  done
  echo "- data set: project \`big\` with $REPOS repositories, $ARTIFACTS artifacts (1 tag each) in \`big/repo-00000\`, $PROJECTS more projects (5 repositories each), $AUDIT_ROWS audit rows over 90 days (bench/api_seed.py)"
  echo "- method: python http.client, 1 keep-alive connection, Basic auth as admin (portal pages: session cookie of one form sign-in), a checked first request, $WARMUP untimed, then $REQUESTS timed sequential requests (at most ${MAX_SECONDS} s) per endpoint; time from sending the request to having read the body; nearest-rank percentiles"
  echo "- load average (1/5/15 min) at start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg); wall time $(($(date +%s) - T_START)) s"
  echo "- command: \`$cmd\`"
} >"$W/header.md"
python3 "$here/api_measure.py" report "$W" >"$W/report.md"
cat "$W/report.md"
if [ -n "${RESULTS:-}" ]; then
  out=$RESULTS
elif [ "$full_size" = 1 ] && [ -z "$ONLY" ]; then
  out=$here/API-RESULTS.md
else
  out=""
  log "reduced data set or ONLY: report not written to bench/API-RESULTS.md (set RESULTS=FILE)"
fi
if [ -n "$out" ]; then
  { echo "# REST API latency at scale (bench/api.sh)"; echo; cat "$W/report.md"; } >"$out"
  log "report written to $out"
fi
missing=$(grep -c -E '\*\*(MISSING|ERROR)\*\*' "$W/report.md" || true)
[ "$missing" = 0 ] || log "$missing endpoint/database pair(s) did not answer as expected (see the report)"
log "done"

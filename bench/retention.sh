#!/usr/bin/env bash
# Tag retention at scale (server/src/retention): one repository of 100k artifacts, a dry run
# that evaluates every one of them, then a real run that deletes some, on SQLite and PostgreSQL.
#
#   bench/retention.sh            builds berth (release) into $CARGO_TARGET_DIR, runs, writes
#                                 bench/RETENTION-RESULTS.md
#   SKIP_BUILD=1 ARTIFACTS=5000 DELETE=500 RETENTION_DBS=sqlite bench/retention.sh   smoke (~1 min)
#
# Environment:
#   SKIP_BUILD=1        use the existing binary       BERTH_BIN  default $CARGO_TARGET_DIR/release/berth
#   ARTIFACTS           artifacts in the repository (100000)
#   KEEP_DRY            latestPushedK of the dry run (10000: 90 % would be deleted)
#   DELETE              artifacts the real run deletes (5000: latestPushedK ARTIFACTS-DELETE)
#   RETENTION_DBS       "sqlite postgres" (default)   KEEP=1   keep the work directory
#   RESULTS=FILE        the report (default bench/RETENTION-RESULTS.md; "-" for stdout only)
#
# Per database: berth creates its schema and stops; bench/api_seed.py fills it directly
# (project `big`, repository big/repo-00000 with ARTIFACTS tagged artifacts of increasing
# pushed_at, one more repository with one artifact; no audit rows); berth starts again (release,
# BERTH_LOG__LEVEL=warn); the admin creates the project's retention policy (repositories
# `repo-00000`, tags `**`, latestPushedK) through the REST API and triggers runs with
# POST /retentions/{id}/executions, polling the execution until it ends. Reported: the run's
# duration as the server records it (execution start → end, so the queue pick-up is included),
# the task's total / retained, and the wall time from the trigger to the end seen by the poller
# (0.2 s polling). The issue's target: a retention over 100k artifacts evaluated in seconds.
# Every process started here is stopped by PID on exit; the work directory is removed unless KEEP=1.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" # log, die, alive, stop_berth, prepare_berth, free_port
repo_root=$(cd "$here/.." && pwd)
ARTIFACTS=${ARTIFACTS:-100000}
KEEP_DRY=${KEEP_DRY:-10000}
DELETE=${DELETE:-5000}
RETENTION_DBS=${RETENTION_DBS:-sqlite postgres}
RESULTS=${RESULTS:-$here/RETENTION-RESULTS.md}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/berth/target}
BERTH_BIN=${BERTH_BIN:-$CARGO_TARGET_DIR/release/berth}
export PYTHONDONTWRITEBYTECODE=1
AUTH=admin:Harbor12345
PSQL=${PSQL:-psql}

W=$(mktemp -d /tmp/berth-retention-bench.XXXXXX)
BERTH_PID=""
PG_UP=""
cleanup() {
  local rc=$?
  set +e
  stop_berth
  [ -n "$PG_UP" ] && "$repo_root/scripts/services.sh" stop "$W/svc" >/dev/null 2>&1
  if [ "${KEEP:-0}" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
  exit $rc
}
trap cleanup EXIT INT TERM

prepare_berth "$W"
PORT=$(free_port)
BASE=http://127.0.0.1:$PORT

start_berth() { # NAME URL
  local v unset_args=() i
  for v in $(compgen -e); do [[ $v == BERTH_* ]] && unset_args+=(-u "$v"); done
  mkdir -p "$W/$1/storage"
  (cd "$W/$1" && exec env "${unset_args[@]}" BERTH_LISTEN="127.0.0.1:$PORT" BERTH_EXTERNAL_URL="$BASE" \
    BERTH_DATABASE__URL="$2" BERTH_STORAGE__PATH="$W/$1/storage" BERTH_LOG__LEVEL=warn \
    "$W/berth" >>"$W/$1/berth.log" 2>&1 </dev/null) &
  BERTH_PID=$!
  for ((i = 0; i < 600; i++)); do
    alive "$BERTH_PID" || die "berth ($1) exited at start: $(tail -n 5 "$W/$1/berth.log")"
    [ "$(curl -fsS "$BASE/api/v2.0/ping" 2>/dev/null)" = Pong ] && return 0
    sleep 0.1
  done
  die "berth ($1) did not answer Pong in 60 s"
}

api() { # METHOD PATH [BODY] → body on stdout; fails on HTTP >= 400
  curl -fsS -u "$AUTH" -X "$1" -H 'content-type: application/json' ${3:+-d "$3"} "$BASE/api/v2.0$2"
}

# run_policy NAME POLICY_ID KEEP DRY → one JSON line
run_policy() {
  local name=$1 id=$2 keep=$3 dry=$4 pid loc eid t0 t1 status
  pid=$(api GET /projects/big | python3 -c 'import json,sys; print(json.load(sys.stdin)["project_id"])')
  api PUT "/retentions/$id" "{\"algorithm\":\"or\",\"rules\":[{\"action\":\"retain\",\"template\":\"latestPushedK\",\"params\":{\"latestPushedK\":$keep},\"tag_selectors\":[{\"kind\":\"doublestar\",\"decoration\":\"matches\",\"pattern\":\"**\"}],\"scope_selectors\":{\"repository\":[{\"kind\":\"doublestar\",\"decoration\":\"repoMatches\",\"pattern\":\"repo-00000\"}]}}],\"trigger\":{\"kind\":\"Schedule\",\"settings\":{\"cron\":\"\"}},\"scope\":{\"level\":\"project\",\"ref\":$pid}}" >/dev/null
  t0=$(date +%s.%N)
  loc=$(curl -fsS -o /dev/null -D - -u "$AUTH" -H 'content-type: application/json' -d "{\"dry_run\":$dry}" \
    "$BASE/api/v2.0/retentions/$id/executions" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  eid=${loc##*/}
  while :; do
    status=$(api GET "/retentions/$id/executions?page_size=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["status"])')
    case "$status" in Success | Error | Stopped) break ;; esac
    sleep 0.2
  done
  t1=$(date +%s.%N)
  api GET "/retentions/$id/executions?page_size=1" >"$W/exec.json"
  api GET "/retentions/$id/executions/$eid/tasks" >"$W/tasks.json"
  python3 - "$name" "$dry" "$keep" "$t0" "$t1" "$W/exec.json" "$W/tasks.json" <<'PY'
import json, sys
from datetime import datetime
name, dry, keep, t0, t1 = sys.argv[1], sys.argv[2] == "true", int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
e = json.load(open(sys.argv[6]))[0]
tasks = json.load(open(sys.argv[7]))
ts = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
t = next(t for t in tasks if t["repository"] == "big/repo-00000")
print(json.dumps(dict(db=name, dry_run=dry, keep=keep, status=e["status"], run_s=round(ts(e["end_time"]) - ts(e["start_time"]), 2),
    wall_s=round(t1 - t0, 2), total=t["total"], retained=t["retained"], deleted=t["total"] - t["retained"])))
PY
}

: >"$W/results.jsonl"
for db in $RETENTION_DBS; do
  case "$db" in
    sqlite) url="sqlite://$W/sqlite/berth.db"; mkdir -p "$W/sqlite" ;;
    postgres)
      mkdir -p "$W/svc" && chmod 755 "$W" "$W/svc"
      PG_UP=1
      eval "$("$repo_root/scripts/services.sh" start postgres "$W/svc")"
      "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$TEST_BERTH_POSTGRES_URL" -c 'CREATE DATABASE retention_bench'
      url=${TEST_BERTH_POSTGRES_URL%/*}/retention_bench
      ;;
    *) die "RETENTION_DBS: sqlite and/or postgres (got $db)" ;;
  esac
  start_berth "$db" "$url"
  stop_berth
  log "$db: seeding $ARTIFACTS artifacts"
  REPOS=2 PROJECTS=1 AUDIT_ROWS=0 python3 "$here/api_seed.py" "$url" --psql "$PSQL" --artifacts "$ARTIFACTS" >"$W/seed-$db.txt" ||
    die "$db: seeding failed"
  start_berth "$db" "$url"
  pid=$(api GET /projects/big | python3 -c 'import json,sys; print(json.load(sys.stdin)["project_id"])')
  loc=$(curl -fsS -o /dev/null -D - -u "$AUTH" -H 'content-type: application/json' \
    -d "{\"algorithm\":\"or\",\"rules\":[],\"scope\":{\"level\":\"project\",\"ref\":$pid}}" \
    "$BASE/api/v2.0/retentions" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  id=${loc##*/}
  log "$db: dry run (latestPushedK $KEEP_DRY of $ARTIFACTS)"
  run_policy "$db" "$id" "$KEEP_DRY" true | tee -a "$W/results.jsonl" >&2
  log "$db: run deleting $DELETE"
  run_policy "$db" "$id" "$((ARTIFACTS - DELETE))" false | tee -a "$W/results.jsonl" >&2
  left=$(curl -fsS -o /dev/null -D - -u "$AUTH" "$BASE/api/v2.0/projects/big/repositories/repo-00000/artifacts?page_size=1" |
    tr -d '\r' | sed -n 's/^[Xx]-[Tt]otal-[Cc]ount: //p')
  [ "$left" = "$((ARTIFACTS - DELETE))" ] || die "$db: $left artifacts left, expected $((ARTIFACTS - DELETE))"
  stop_berth
done

{
  echo "# Retention benchmark (bench/retention.sh)"
  echo
  echo "- $(date -u +%Y-%m-%dT%H:%MZ), berth git $(cd "$repo_root" && git rev-parse --short HEAD), release build, BERTH_LOG__LEVEL=warn"
  echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), shared with other work"
  echo "- one repository of $ARTIFACTS tagged artifacts (seeded directly), rule latestPushedK on tags \`**\`; run_s: the execution's start → end as recorded by the server; wall_s: trigger → end seen by a 0.2 s poller"
  echo
  echo "| database | dry run | latestPushedK | status | run (s) | wall (s) | total | retained | deleted (or would be) |"
  echo "|---|---|---|---|---|---|---|---|---|"
  python3 - "$W/results.jsonl" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    cells = [r[k] for k in ("db", "dry_run", "keep", "status", "run_s", "wall_s", "total", "retained", "deleted")]
    print("| " + " | ".join(str(c) for c in cells) + " |")
PY
  echo
  echo '```'
  cat "$W/results.jsonl"
  echo '```'
} >"$W/report.md"
cat "$W/report.md"
if [ "$RESULTS" != - ]; then cp "$W/report.md" "$RESULTS"; log "wrote $RESULTS"; fi

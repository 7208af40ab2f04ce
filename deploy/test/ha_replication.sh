# Step p of deploy/test/ha.sh (sourced by it; uses its helpers and variables): a push-based
# replication of the HA_BIG_MIB image of step c (ha/big:v1) to a CNCF distribution, with a
# kill -9 of the replica running the task while the layer streams.
#
#   - distribution (scripts/services.sh, htpasswd Basic auth) under $P/dist; an endpoint
#     (docker-registry) and a manual policy (name filter ha/big, speed HA_REPL_KIB KiB/s so the
#     copy lasts long enough to be caught mid-way) created through nginx as admin;
#   - the replica running the task is the one whose pid is in the task job's `worker`
#     (host:pid:id); it gets SIGKILL once the job's heartbeat reports 1/4 of the layer sent;
#   - checks: the execution ends Succeed (after the stale-heartbeat requeue, jobs::STALE_MS);
#     one task row and one task job; that job ran twice (attempts 2), the second time on a
#     surviving replica; the destination's manifest hashes to the source digest and its layer,
#     pulled back with Basic auth, is byte-identical (cmp) and hashes to the layer digest; the
#     task log ends with the copy; one `create` audit row by `replication` (checked in step e).
#   - the killed replica is restarted and rejoins nginx's rotation; distribution is stopped.
# A failure prints the task log (API), the task job's row and distribution's log.

REPL_KIB=${HA_REPL_KIB:-32768}

# POST through nginx as admin; prints the id at the end of the Location header.
api_create() { # PATH JSON
  local code
  code=$(lb -o "$P/last.json" -D "$P/last.h" -w '%{http_code}' -u "$ADMIN" -X POST \
    -H 'Content-Type: application/json' --data "$2" "$LB$1")
  [ "$code" = 201 ] || fail "POST $1: $code $(cat "$P/last.json")"
  grep -i '^location:' "$P/last.h" | tr -d '\r' | awk '{print $2}' | sed 's#.*/##'
}

jfield() { # FILE KEY (top-level key of a JSON object, or of the first element of an array)
  python3 -c 'import json,sys
v = json.load(open(sys.argv[1]))
v = v[0] if isinstance(v, list) and v else v
print(v.get(sys.argv[2], "") if isinstance(v, dict) else "")' "$1" "$2"
}

# The task job of execution $1: "job_id|worker|attempts|status|bytes" (one line per task job).
p_jobs() {
  psql -qAt "$DB_URL" -c "SELECT j.id, j.worker, j.attempts, j.status, j.progress FROM replication_tasks t \
    JOIN jobs j ON j.id = t.job_id WHERE t.execution_id = $1 ORDER BY j.id" \
    | sed -E 's/\|[^|]*"bytes":([0-9]+)[^|]*$/|\1/; s/\|\{\}$/|0/'
}

step_p() {
  step p "replicate the $BIG_MIB MiB image to CNCF distribution; kill -9 the replica running the task"
  local dd=$P/dist durl duser dpass reg pol exe task="" job row victim="" vpid t0 t_kill bytes up i
  local quarter=$((BIG_MIB * 1024 * 1024 / 4))
  p_fail() {
    say "--- task job rows (id|worker|attempts|status|bytes):" >&2
    p_jobs "${exe:-0}" >&2 || true
    if [ -z "$task" ] && [ -n "${exe:-}" ] \
      && [ "$(api_admin GET "/api/v2.0/replication/executions/$exe/tasks")" = 200 ]; then
      task=$(jfield "$P/last.json" id)
    fi
    if [ -n "$task" ]; then
      say "--- task $task log (GET …/executions/$exe/tasks/$task/log):" >&2
      lb -u "$ADMIN" "$LB/api/v2.0/replication/executions/$exe/tasks/$task/log" >&2 || true
    fi
    say "--- distribution log (last 10 lines):" >&2
    tail -n 10 "$dd/distribution/registry.log" 2>/dev/null | cut -c1-300 >&2 || true
    fail "$@"
  }
  eval "$("$ROOT/scripts/services.sh" start distribution "$dd")"
  durl=$TEST_DISTRIBUTION_URL duser=$TEST_DISTRIBUTION_USER dpass=$TEST_DISTRIBUTION_PASSWORD
  reg=$(api_create /api/v2.0/registries "{\"name\":\"ha-dist\",\"type\":\"docker-registry\",\"url\":\"$durl\",\
\"insecure\":true,\"credential\":{\"type\":\"basic\",\"access_key\":\"$duser\",\"access_secret\":\"$dpass\"}}")
  pol=$(api_create /api/v2.0/replication/policies "{\"name\":\"ha-big\",\"dest_registry\":{\"id\":$reg},\
\"filters\":[{\"type\":\"name\",\"value\":\"ha/big\"}],\"trigger\":{\"type\":\"manual\"},\"override\":true,\
\"enabled\":true,\"speed\":$REPL_KIB}")
  check "distribution $durl (htpasswd Basic auth); endpoint $reg, policy $pol (ha/big → ha-dist, $REPL_KIB KiB/s)"
  t0=$(now)
  exe=$(api_create /api/v2.0/replication/executions "{\"policy_id\":$pol}")
  # Wait for the task's job to be running with a quarter of the layer sent (its heartbeat
  # writes the progress every 3 s).
  for _ in $(seq 600); do
    row=$(p_jobs "$exe" | head -n 1)
    IFS='|' read -r job _ _ _ bytes <<<"$row"
    case $row in
      *'|running|'*) [ "${bytes:-0}" -ge "$quarter" ] && break ;;
      *'|success|'* | *'|error|'* | *'|stopped|'*)
        p_fail "the task job ended before the kill point ($row); lower HA_REPL_KIB" ;;
    esac
    sleep 0.2
  done
  [[ $row == *'|running|'* ]] && [ "${bytes:-0}" -ge "$quarter" ] \
    || p_fail "no task job reached 1/4 of the layer within 120 s (last: ${row:-none})"
  vpid=$(cut -d'|' -f2 <<<"$row" | cut -d: -f2)
  for i in 1 2 3; do [ "$(cat "$P/r$i/pid" 2>/dev/null)" = "$vpid" ] && victim=$i; done
  [ -n "$victim" ] || p_fail "the task job's worker ($row) is none of the replicas"
  up=$(du -sb "$dd/distribution/data/docker/registry/v2/repositories/ha/big/_uploads" 2>/dev/null | cut -f1)
  kill -KILL "$vpid"
  t_kill=$(now)
  rm -f "$P/r$victim/pid"
  note "killed r$victim (pid $vpid, running task job $job) with SIGKILL $(awk -v a="$t0" -v b="$t_kill" 'BEGIN{printf "%.1f", b-a}') s into the run: its heartbeat reported $((bytes / 1048576)) MiB of $BIG_MIB sent; distribution's upload directory held $(( ${up:-0} / 1048576 )) MiB"
  # The survivors take the job back once its heartbeat is stale, and the run ends.
  local status="" t_claim="" worker attempts
  for _ in $(seq 300); do
    row=$(p_jobs "$exe" | head -n 1)
    IFS='|' read -r _ worker attempts _ _ <<<"$row"
    if [ -z "$t_claim" ] && [ "${attempts:-0}" -ge 2 ] && [ -n "$worker" ]; then t_claim=$(now); fi
    [ "$(api_admin GET "/api/v2.0/replication/executions/$exe")" = 200 ] && status=$(jfield "$P/last.json" status)
    case $status in Succeed | Failed | Stopped) break ;; esac
    sleep 0.5
  done
  local ended t_end
  t_end=$(now)
  ended=$(awk -v a="$t_kill" -v b="$t_end" 'BEGIN{printf "%.1f", b-a}')
  [ "$status" = Succeed ] || p_fail "execution $exe is ${status:-unknown} ${ended} s after the kill: $(cat "$P/last.json")"
  [ "$(jfield "$P/last.json" total)/$(jfield "$P/last.json" succeed)" = 1/1 ] \
    || p_fail "execution $exe counts: $(cat "$P/last.json")"
  check "execution $exe Succeed ${ended} s after the kill (1 task, 1 succeeded)"
  # No duplicate: one task row, one task job; that job ran twice, the second time elsewhere.
  [ "$(api_admin GET "/api/v2.0/replication/executions/$exe/tasks")" = 200 ] || p_fail "tasks: $(cat "$P/last.json")"
  task=$(jfield "$P/last.json" id)
  local n njobs dst
  n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$P/last.json")
  dst=$(jfield "$P/last.json" dst_resource)
  njobs=$(psql -qAt "$DB_URL" -c "SELECT count(*) FROM jobs WHERE kind = 'replication_task'")
  [ "$n" = 1 ] && [ "$(jfield "$P/last.json" status)" = Succeed ] && [ "$njobs" = 1 ] \
    && [ "$(psql -qAt "$DB_URL" -c "SELECT count(*) FROM replication_tasks WHERE execution_id = $exe")" = 1 ] \
    || p_fail "expected one Succeed task and one task job: API $n task(s) $(cat "$P/last.json"), $njobs task job(s)"
  IFS='|' read -r _ worker attempts status _ <<<"$(p_jobs "$exe" | head -n 1)"
  local wpid=${worker#*:}
  wpid=${wpid%%:*}
  [ "$status" = success ] && [ "$attempts" = 2 ] && [ "$wpid" != "$vpid" ] \
    || p_fail "task job $job: status $status, attempts $attempts, worker $worker (killed pid $vpid)"
  local by=""
  for i in 1 2 3; do [ "$(cat "$P/r$i/pid" 2>/dev/null)" = "$wpid" ] && by=r$i; done
  [ -n "$by" ] || p_fail "task job $job finished by $worker, which is no live replica"
  check "one task ($dst) and one task job: attempts 2, finished by $by (pid $wpid), not by the killed r$victim"
  note "task job taken back and claimed again $(awk -v a="$t_kill" -v b="${t_claim:-$t_kill}" 'BEGIN{printf "%.1f", b-a}') s after the kill (its heartbeat older than 30 s); the rerun took $(awk -v a="${t_claim:-$t_kill}" -v b="$t_end" 'BEGIN{printf "%.1f", b-a}') s from its claim to the Succeed seen by the poll"
  # The destination: manifest digest and layer bytes.
  local auth=(-u "$duser:$dpass") got
  got=$(curl -sS "${auth[@]}" -D "$P/p-manifest.h" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$durl/v2/ha/big/manifests/v1" | sha256sum | awk '{print "sha256:"$1}')
  [ "$got" = "$BIG_DIGEST" ] && grep -qi "^docker-content-digest: $BIG_DIGEST" "$P/p-manifest.h" \
    || p_fail "distribution's ha/big:v1 manifest hashes to $got, expected $BIG_DIGEST"
  local t3
  t3=$(now)
  curl -sS -f "${auth[@]}" -o "$P/p-layer" "$durl/v2/ha/big/blobs/$BIG_LAYER" || p_fail "GET the layer from distribution failed"
  got=$(sha256sum "$P/p-layer" | awk '{print "sha256:"$1}')
  [ "$got" = "$BIG_LAYER" ] && cmp -s "$P/p-layer" "$W/img/big/blobs/sha256/${BIG_LAYER#sha256:}" \
    || p_fail "distribution's layer hashes to $got (expected $BIG_LAYER) or differs from the pushed one"
  rm -f "$P/p-layer"
  check "distribution's ha/big:v1: manifest $BIG_DIGEST; $BIG_MIB MiB layer pulled back in $(since "$t3") s, sha256 = $BIG_LAYER, byte-identical (cmp)"
  lb -u "$ADMIN" -o "$P/p-task.log" "$LB/api/v2.0/replication/executions/$exe/tasks/$task/log"
  grep -q "copied .* → ha/big:v1" "$P/p-task.log" && [ "$(tail -n 1 "$P/p-task.log" | awk '{print $2}')" = done ] \
    || p_fail "the task log does not end with the copy"
  say "    task log (both runs):"
  sed 's/^/      /' "$P/p-task.log"
  expect "create replication $dst 1"
  # The killed run's upload session on distribution is orphaned (its URL died with the
  # process); distribution's upload purging removes such sessions (off in the test config).
  n=$(find "$dd/distribution/data/docker/registry/v2/repositories/ha/big/_uploads" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)
  up=$(du -sb "$dd/distribution/data/docker/registry/v2/repositories/ha/big/_uploads" 2>/dev/null | cut -f1)
  note "distribution keeps $n unfinished upload session(s) ($(( ${up:-0} / 1048576 )) MiB): the killed run's, orphaned"
  rejoin_replica "$victim"
  "$ROOT/scripts/services.sh" stop "$dd"
  rm -rf "$dd/distribution/data"
  step_done
}

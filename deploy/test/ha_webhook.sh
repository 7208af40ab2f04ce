# Step w of deploy/test/ha.sh (sourced by it; uses its helpers and variables): a webhook delivery
# whose replica is killed while the receiver holds the request.
#
#   - end2end/registry/webhook_receiver.py on a free port records requests and, while its DELAY
#     file exists, answers only after 60 s; a PUSH_ARTIFACT policy on project `ha` points at it;
#   - skopeo pushes ha/hook:v1 (the small image of step b) through nginx; once the receiver has
#     the first request, the replica running the delivery (its `webhook` job's worker pid) gets
#     kill -9 and the delay is lifted;
#   - checks: another replica takes the job back (stale heartbeat, jobs::STALE_MS) and delivers
#     again: the receiver has exactly two requests, with the same X-Berth-Event-Id (at least
#     once, deduplicated by the id); the execution ends Success; the job ran twice (attempts 2),
#     the second time on a surviving replica. The killed replica is restarted.

step_w() {
  step w "webhook delivery: kill -9 the replica holding the request; delivered again elsewhere"
  local hp rx=$P/hook pol t0 row job vpid victim="" worker status attempts wpid n ids t_kill
  mkdir -p "$rx"
  hp=$(free_port)
  echo 60 >"$rx/delay"
  python3 "$ROOT/end2end/registry/webhook_receiver.py" "$hp" "$rx/got.jsonl" "$rx/fail" "$rx/delay" >"$rx/out.log" 2>&1 &
  echo $! >"$rx/pid"
  pol=$(api_create /api/v2.0/projects/ha/webhook/policies "{\"name\":\"ha-hook\",\"event_types\":[\"PUSH_ARTIFACT\"],\
\"targets\":[{\"type\":\"http\",\"address\":\"http://127.0.0.1:$hp/hook\"}]}")
  t0=$(now)
  "${SKOPEO[@]}" copy --dest-creds "ha-skopeo:$PASS_USERS" --dest-cert-dir "$W/certs.d" "oci:$W/img/small:v1" \
    "docker://127.0.0.1:$LB_PORT/ha/hook:v1" >"$W/clients/logs/skopeo-hook-$BACKEND.log" 2>&1 || fail "skopeo push ha/hook:v1"
  expect "create ha-skopeo ha/hook:v1 1"
  for _ in $(seq 100); do [ -s "$rx/got.jsonl" ] && break; sleep 0.2; done
  [ -s "$rx/got.jsonl" ] || fail "the receiver got no delivery within 20 s of the push"
  row=$(psql -qAt "$DB_URL" -c "SELECT id, worker FROM jobs WHERE kind = 'webhook' AND status = 'running' ORDER BY id DESC LIMIT 1")
  job=${row%%|*}
  vpid=$(cut -d'|' -f2 <<<"$row" | cut -d: -f2)
  for i in 1 2 3; do [ "$(cat "$P/r$i/pid" 2>/dev/null)" = "$vpid" ] && victim=$i; done
  [ -n "$victim" ] || fail "the delivery job ($row) runs on none of the replicas"
  kill -KILL "$vpid"
  t_kill=$(now)
  rm -f "$P/r$victim/pid" "$rx/delay"
  note "killed r$victim (pid $vpid) holding delivery job $job, $(awk -v a="$t0" -v b="$t_kill" 'BEGIN{printf "%.1f", b-a}') s after the push began"
  status=""
  for _ in $(seq 300); do
    status=$(psql -qAt "$DB_URL" -c "SELECT status FROM jobs WHERE id = $job")
    [ "$status" = success ] && break
    sleep 0.25
  done
  row=$(psql -qAt "$DB_URL" -c "SELECT worker, attempts FROM jobs WHERE id = $job")
  worker=${row%%|*} attempts=${row##*|}
  wpid=$(cut -d: -f2 <<<"$worker")
  [ "$status" = success ] && [ "$attempts" = 2 ] && [ "$wpid" != "$vpid" ] \
    || fail "delivery job $job: status $status, attempts $attempts, worker $worker (killed pid $vpid)"
  check "delivery job $job taken back and finished by pid $wpid $(since "$t_kill") s after the kill (attempts 2)"
  n=$(wc -l <"$rx/got.jsonl")
  ids=$(python3 -c 'import json,sys; print(len({json.loads(l)["headers"]["x-berth-event-id"] for l in open(sys.argv[1])}))' "$rx/got.jsonl")
  [ "$n" = 2 ] && [ "$ids" = 1 ] || fail "the receiver got $n requests with $ids event ids: $(cat "$rx/got.jsonl")"
  [ "$(api_admin GET "/api/v2.0/projects/ha/webhook/policies/$pol/executions")" = 200 ] \
    && [ "$(jfield "$P/last.json" status)" = Success ] || fail "execution: $(cat "$P/last.json")"
  check "the receiver got the event twice with one X-Berth-Event-Id; the execution is Success"
  kill "$(cat "$rx/pid")" 2>/dev/null || true
  rejoin_replica "$victim"
  step_done
}

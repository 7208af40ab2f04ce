#!/usr/bin/env bash
# Events leaving the registry, with real servers on 127.0.0.1:
#   - audit forwarding: rsyslog (Debian's package, installed when missing; its own config, TCP
#     input) receives the audit events of a skopeo push as RFC 5424 messages;
#   - webhooks: a policy for p1 sends push, pull and delete events to webhook_receiver.py, which
#     is **down** for DOWN_SECS (30) while skopeo pushes three tags: once it is up, every event
#     arrives (retries with backoff), each with Harbor's payload and one event id; a pull and a
#     delete then arrive too; a CloudEvents policy with an auth header gets the push as
#     `harbor.artifact.pushed` with `Authorization`. The executions API lists them as Success.
# Starts berth (BERTH_BIN), rsyslogd and the receiver on free ports in their own directories and
# stops them by PID. KEEP=1 keeps the work directory.
#   end2end/registry/events.sh BERTH_BIN
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$here/../.." && pwd) # used by lib-clients.sh
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
DOWN_SECS=${DOWN_SECS:-30}
if ! command -v rsyslogd >/dev/null && [ ! -x /usr/sbin/rsyslogd ]; then
  echo "events.sh: installing rsyslog (Debian package)" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends rsyslog >&2
fi
RSYSLOGD=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)
WORKDIR=/tmp/bevents.$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')
. "$here/lib-clients.sh"
e2e_workdir events.sh
e2e_isolate
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
port=$(free_port) sport=$(free_port) wport=$(free_port)
cleanup() {
  for p in berth rsyslog receiver; do
    [ -f "$WORKDIR/$p.pid" ] && kill "$(cat "$WORKDIR/$p.pid")" 2>/dev/null || true
  done
  if [ "${KEEP:-}" = 1 ]; then echo "kept $WORKDIR" >&2; else rm -rf "$WORKDIR"; fi
}
trap cleanup EXIT
mkdir -p "$WORKDIR/server" "$WORKDIR/rsyslog"
cat >"$WORKDIR/rsyslog/rsyslog.conf" <<CONF
global(workDirectory="$WORKDIR/rsyslog")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="$sport")
*.* action(type="omfile" file="$WORKDIR/rsyslog/audit.log" template="RSYSLOG_SyslogProtocol23Format")
CONF
"$RSYSLOGD" -n -f "$WORKDIR/rsyslog/rsyslog.conf" -i "$WORKDIR/rsyslog/rsyslogd.pid" >"$WORKDIR/rsyslog.out" 2>&1 &
echo $! >"$WORKDIR/rsyslog.pid"
(cd "$WORKDIR/server" && BERTH_LISTEN=127.0.0.1:$port BERTH_EXTERNAL_URL=http://127.0.0.1:$port BERTH_LOG__LEVEL=warn \
  BERTH_WEBHOOK__RETRY_BACKOFF=1s exec "$bin" >"$WORKDIR/berth.log" 2>&1) &
echo $! >"$WORKDIR/berth.pid"
for _ in $(seq 150); do
  curl -fsS "http://127.0.0.1:$port/api/v2.0/ping" >/dev/null 2>&1 && break
  sleep 0.2
done
R=127.0.0.1:$port A=admin:${BERTH_ADMIN_PASSWORD:-Harbor12345} API=http://127.0.0.1:$port/api/v2.0
failed=0
ok() { printf 'ok   %s\n' "$*"; }
bad() { printf 'FAIL %s\n' "$*"; failed=1; }
api() { curl -fsS -u "$A" -H 'content-type: application/json' "$@"; }
got() { # PYTHON-EXPR over the list `g` of received requests → printed
  python3 -c "import json,sys; g=[json.loads(l) for l in open('$WORKDIR/received.jsonl')] if __import__('os').path.exists('$WORKDIR/received.jsonl') else []; print($1)"
}
wait_got() { # SECS PYTHON-CONDITION
  for _ in $(seq $(($1 * 5))); do [ "$(got "$2")" = True ] && return 0; sleep 0.2; done
  return 1
}

api -X POST "$API/projects" -d '{"project_name":"p1"}' >/dev/null
api -X PUT "$API/configurations" -d "{\"audit_log_forward_endpoint\":\"tcp://127.0.0.1:$sport\"}" >/dev/null
hook=http://127.0.0.1:$wport
api -X POST "$API/projects/p1/webhook/policies" -d "{\"name\":\"ci\",\"event_types\":[\"PUSH_ARTIFACT\",\"PULL_ARTIFACT\",\"DELETE_ARTIFACT\"],\"targets\":[{\"type\":\"http\",\"address\":\"$hook/default\",\"payload_format\":\"Default\"}]}" >/dev/null
api -X POST "$API/projects/p1/webhook/policies" -d "{\"name\":\"ce\",\"event_types\":[\"PUSH_ARTIFACT\"],\"targets\":[{\"type\":\"http\",\"address\":\"$hook/ce\",\"auth_header\":\"Bearer e2e-token\",\"payload_format\":\"CloudEvents\"}]}" >/dev/null
POLICY=$(api "$API/projects/p1/webhook/policies?q=name%3D~ci" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')

# The receiver is down while three tags are pushed.
for i in 1 2 3; do python3 "$here/mkimage.py" image "$WORKDIR/layouts/img$i" --layers 1 --layer-size 16K --tag v1 >/dev/null; done
down_from=$(date +%s)
for i in 1 2 3; do
  timeout -k 5 120 "${SKOPEO[@]}" copy --quiet --dest-tls-verify=false --dest-creds "$A" \
    "oci:$WORKDIR/layouts/img$i:v1" "docker://$R/p1/app:v$i" >/dev/null 2>&1 || bad "skopeo push p1/app:v$i"
done
sleep $((DOWN_SECS - ($(date +%s) - down_from)))
pending=$(api "$API/projects/p1/webhook/policies/$POLICY/executions" | python3 -c 'import json,sys; print(sorted({e["status"] for e in json.load(sys.stdin)}))')
[ "$pending" = "['Running']" ] && ok "after ${DOWN_SECS}s with the receiver down, the three deliveries are being retried" || bad "while down: $pending"
python3 "$here/webhook_receiver.py" "$wport" "$WORKDIR/received.jsonl" "$WORKDIR/fail" &
echo $! >"$WORKDIR/receiver.pid"
if wait_got 60 "sorted(x['body']['event_data']['resources'][0]['tag'] for x in g if x['path'] == '/default' and x['body']['type'] == 'PUSH_ARTIFACT') == ['v1', 'v2', 'v3']"; then
  ok "the receiver back up got the three pushes"
else
  bad "pushes after the outage: $(got "[x['body'].get('type') for x in g]")"
fi
[ "$(got "len({x['headers']['x-berth-event-id'] for x in g if x['path'] == '/default'}) == len([x for x in g if x['path'] == '/default'])")" = True ] &&
  ok "one delivery per event id" || bad "duplicate deliveries: $(got "[x['headers']['x-berth-event-id'] for x in g]")"
[ "$(got "next(x for x in g if x['path'] == '/default')['body']['event_data']['repository']['repo_full_name']")" = p1/app ] &&
  ok "Harbor's payload names the repository" || bad "payload: $(got "g[0]['body']")"
if wait_got 20 "any(x['path'] == '/ce' for x in g)"; then
  ce=$(got "[(x['headers']['content-type'], x['headers'].get('authorization'), x['body']['type'], x['body']['specversion']) for x in g if x['path'] == '/ce'][0]")
  [ "$ce" = "('application/cloudevents+json', 'Bearer e2e-token', 'harbor.artifact.pushed', '1.0')" ] &&
    ok "CloudEvents with the auth header" || bad "CloudEvents: $ce"
else
  bad "no CloudEvents delivery"
fi
# A pull and a delete.
"${SKOPEO[@]}" inspect --tls-verify=false --creds "$A" "docker://$R/p1/app:v2" >/dev/null 2>&1 || bad "skopeo inspect"
"${SKOPEO[@]}" delete --tls-verify=false --creds "$A" "docker://$R/p1/app:v3" >/dev/null 2>&1 || bad "skopeo delete"
if wait_got 30 "{'PULL_ARTIFACT', 'DELETE_ARTIFACT'} <= {x['body']['type'] for x in g if x['path'] == '/default'}"; then
  ok "the pull and the delete arrived"
else
  bad "pull/delete: $(got "[x['body']['type'] for x in g]")"
fi
st=$(api "$API/projects/p1/webhook/policies/$POLICY/executions?page_size=50" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d), sorted({e["status"] for e in d}))')
[ "${st#* }" = "['Success']" ] && ok "executions: $st" || bad "executions: $st"

# rsyslog got the audit events of the pushes.
for _ in $(seq 50); do grep -q 'p1/app:v3' "$WORKDIR/rsyslog/audit.log" 2>/dev/null && break; sleep 0.2; done
line=$(grep -m1 'p1/app:v1' "$WORKDIR/rsyslog/audit.log" || true)
case "$line" in
  "<"*">1 "*create*) ok "rsyslog received the push's audit event: ${line:0:160}" ;;
  *) bad "rsyslog: $(head -c 400 "$WORKDIR/rsyslog/audit.log" 2>/dev/null) $(cat "$WORKDIR/rsyslog.out")" ;;
esac
exit $failed

#!/usr/bin/env bash
# What one anonymous client can make berth store (issue 18, item 2): starts berth (SQLite,
# its own empty directory, a free 127.0.0.1 port), sends N failed logins with fresh
# NAME_LENGTH-character names, and prints how much the data directory grew and how many audit
# and login_failures rows were written. Stops berth by PID and removes the directory.
#   bench/hostile.sh BERTH_BIN [N=2000] [NAME_LENGTH=200]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1 n=${2:-2000} len=${3:-200}
w=$(mktemp -d /tmp/berth-hostile.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$w" && BERTH_LISTEN=127.0.0.1:$port BERTH_LOG__LEVEL=error exec "$bin" >log 2>&1) &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$w"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/api/v2.0/ping" >/dev/null && break; sleep 0.2; done
sleep 1
before=$(du -sb "$w/data" | cut -f1)
python3 "$here/hostile_fill.py" 127.0.0.1 "$port" "$n" "$len"
sleep 2 # the audit writer flushes within 0.5 s
after=$(du -sb "$w/data" | cut -f1)
rows=$(sqlite3 "$w/data/berth.db" "SELECT (SELECT COUNT(*) FROM audit_log) || ' audit rows, ' || (SELECT COUNT(*) FROM login_failures) || ' login_failures rows'")
echo "data directory grew by $((after - before)) bytes; $rows"

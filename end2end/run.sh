#!/usr/bin/env bash
# Runs the browser tests against a freshly started server (built binary + site), on a free
# 127.0.0.1 port with its own empty data directory; stops the server by PID afterwards. Specs that
# need a server of their own (oidc.spec.ts: auth_mode) start one from BERTH_E2E_BIN and BERTH_E2E_SITE.
#   end2end/run.sh <path to berth binary> <site root> [playwright test arguments, e.g. a spec file]
set -euo pipefail
cd "$(dirname "$0")"
bin=$1 site=$2
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
cleanup() {
  [ -f "$work/berth.pid" ] && kill "$(cat "$work/berth.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ ! -d node_modules/@playwright/test ] || [ ! -d node_modules/@axe-core/playwright ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi

( cd "$work" && BERTH_LISTEN=127.0.0.1:$port BERTH_EXTERNAL_URL=http://127.0.0.1:$port \
    BERTH_PORTAL__SITE_ROOT="$site" BERTH_LOG__LEVEL=warn BERTH_GC__WINDOW=0s exec "$bin" >"$work/berth.log" 2>&1 ) &
echo $! >"$work/berth.pid"
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/api/v2.0/ping" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/api/v2.0/ping" >/dev/null || { cat "$work/berth.log"; exit 1; }

# BERTH_E2E_BIN / BERTH_E2E_SITE: specs that need a server of their own (identity.spec.ts: an
# auth mode switch needs a server where only the admin exists) start one like this.
BERTH_E2E_URL=http://127.0.0.1:$port BERTH_E2E_BIN="$(realpath "$bin")" BERTH_E2E_SITE="$(realpath "$site")" npx playwright test "${@:3}" || { echo "--- server log"; cat "$work/berth.log"; exit 1; }

# Shared by the benchmark scripts (sourced): progress output, and stopping the berth they started.

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Stops the server in $BERTH_PID: SIGTERM, up to 20 s for a clean stop, then SIGKILL.
stop_berth() {
  local i
  if alive "$BERTH_PID"; then
    kill -TERM "$BERTH_PID"
    for ((i = 0; i < 200; i++)); do alive "$BERTH_PID" || break; sleep 0.1; done
    alive "$BERTH_PID" && kill -KILL "$BERTH_PID" 2>/dev/null
    wait "$BERTH_PID" 2>/dev/null || true
  fi
  BERTH_PID=""
}

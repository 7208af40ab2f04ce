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

# Builds berth (release) unless SKIP_BUILD=1 and copies $BERTH_BIN to DIR/berth.
# Needs repo_root, CARGO_TARGET_DIR and BERTH_BIN.
prepare_berth() {
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "building berth (release) into $CARGO_TARGET_DIR"
    (cd "$repo_root" && cargo build -q --release -p server) >&2
  fi
  [ -x "$BERTH_BIN" ] || die "no berth binary at $BERTH_BIN"
  cp "$BERTH_BIN" "$1/berth"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

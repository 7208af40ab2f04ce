# shellcheck shell=bash disable=SC2034  # (the variables set here are used by the callers)
# Sourced by clients.sh and rbac.sh: one WORKDIR per run, and skopeo, podman and the docker CLI
# kept inside it (nothing written to /var/lib/containers, ~/.docker, ~/.config/containers or
# ~/.local/share/containers; README.md explains each trick).
#
#   e2e_workdir NAME   prepares $WORKDIR: it must be empty, absent, or the WORKDIR of an earlier
#                      run (marked by .berth-e2e; wiped, a dockerd left in WORKDIR/dockerd is
#                      stopped first); makes it absolute, at most 35 characters (podman's runroot
#                      WORKDIR/podman/runroot must stay within 50), creates the usual sub-directories.
#                      NAME prefixes the error messages. Exits 2 on a refusal.
#   e2e_isolate        records the guarded places (GUARD_BEFORE), exports the clients' variables,
#                      writes registries.conf, policy.json, storage.conf and containers.conf
#                      under WORKDIR/containers and sets POLICY and the command arrays SKOPEO and
#                      PODMAN (usable after `timeout`), the functions skopeo_ and podman_, and
#                      DOCKER_BIN (the docker CLI: DOCKER_CLI, else /usr/bin/docker, else PATH).
#   e2e_guard_changed  true (and prints before/after on stderr) if something new appeared in
#                      a guarded place since e2e_isolate.
# Needs ROOT (the repository root) and WORKDIR set by the caller.

E2E_GUARDED=(/var/lib/containers "$HOME/.docker" "$HOME/.config/containers" "$HOME/.local/share/containers")

e2e_workdir() {
  local name=$1
  if [ -e "$WORKDIR" ] && [ -n "$(ls -A "$WORKDIR" 2>/dev/null)" ]; then
    [ -f "$WORKDIR/.berth-e2e" ] || {
      echo "$name: $WORKDIR is not empty and was not made by an end2end/registry script; refusing to wipe it" >&2
      exit 2
    }
    # A dockerd left behind by an interrupted run would keep files open.
    if [ -d "$WORKDIR/dockerd" ]; then
      "$ROOT/scripts/dockerd.sh" stop "$WORKDIR/dockerd" >/dev/null 2>&1 || true
    fi
    find "$WORKDIR" -mindepth 1 -delete
  fi
  mkdir -p "$WORKDIR"
  WORKDIR=$(cd "$WORKDIR" && pwd)
  if [ ${#WORKDIR} -gt 35 ]; then
    echo "$name: WORKDIR $WORKDIR is too long: podman refuses a runroot ($WORKDIR/podman/runroot) over 50 characters; use at most 35" >&2
    exit 2
  fi
  touch "$WORKDIR/.berth-e2e"
  mkdir -p "$WORKDIR"/{logs,layouts,tmp,containers,podman/{root,runroot,tmp,networks},docker-config}
}

e2e_guard_state() {
  local p
  for p in "${E2E_GUARDED[@]}"; do
    if [ -e "$p" ]; then
      echo "$p $(find "$p" -newer "$WORKDIR/.berth-e2e" 2>/dev/null | wc -l)"
    else
      echo "$p absent"
    fi
  done
}

e2e_guard_changed() {
  local after
  after=$(e2e_guard_state)
  [ "$GUARD_BEFORE" != "$after" ] || return 1
  printf 'before: %s\nafter:  %s\n' "$GUARD_BEFORE" "$after" >&2
  return 0
}

e2e_isolate() {
  GUARD_BEFORE=$(e2e_guard_state)
  export TMPDIR=$WORKDIR/tmp                                   # big temporary files of skopeo/podman
  export DOCKER_CONFIG=$WORKDIR/docker-config                  # docker CLI: config.json, logins
  export REGISTRY_AUTH_FILE=$WORKDIR/auth.json                 # podman/skopeo logins
  export CONTAINERS_REGISTRIES_CONF=$WORKDIR/containers/registries.conf
  export CONTAINERS_STORAGE_CONF=$WORKDIR/containers/storage.conf
  export CONTAINERS_CONF=$WORKDIR/containers/containers.conf
  unset DOCKER_HOST CONTAINER_HOST
  POLICY=$WORKDIR/containers/policy.json

  cat >"$CONTAINERS_REGISTRIES_CONF" <<EOF
# No mirrors, no search registries: every image name in the tests is fully qualified.
unqualified-search-registries = []
EOF
  cat >"$POLICY" <<'EOF'
{"default": [{"type": "insecureAcceptAnything"}]}
EOF
  cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "vfs"
graphroot = "$WORKDIR/podman/root"
runroot = "$WORKDIR/podman/runroot"
EOF
  cat >"$CONTAINERS_CONF" <<EOF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$WORKDIR/podman/events.log"
tmp_dir = "$WORKDIR/podman/tmp"
static_dir = "$WORKDIR/podman/root/libpod"
volume_path = "$WORKDIR/podman/root/volumes"

[network]
network_config_dir = "$WORKDIR/podman/networks"
EOF

  # skopeo has no flag for its blob-info cache, which as root lives in /var/lib/containers/cache
  # and remembers digests and blob locations across runs (it changes what skopeo sends). The
  # containers/image library takes _CONTAINERS_ROOTLESS_UID as the effective UID, so a non-zero
  # value moves the cache to $XDG_DATA_HOME/containers/cache, a fresh one inside WORKDIR.
  # (skopeo re-executes itself in a user namespace only for containers-storage:, unused here.)
  SKOPEO=(env _CONTAINERS_ROOTLESS_UID=65534 XDG_DATA_HOME="$WORKDIR/skopeo-data"
    XDG_CONFIG_HOME="$WORKDIR/skopeo-config"
    skopeo --policy "$POLICY" --registries-conf "$CONTAINERS_REGISTRIES_CONF")
  # podman: storage, run state, events, networks all under WORKDIR (flags repeat the config
  # files so that a stray /etc/containers/storage.conf cannot win). Podman 4.3 has the same
  # root-only blob-info cache in /var/lib/containers/cache; the same variable moves it. Podman
  # itself still runs as root: it takes itself for rootless only when
  # _CONTAINERS_USERNS_CONFIGURED is set or its euid is not 0.
  PODMAN=(env _CONTAINERS_ROOTLESS_UID=65534 XDG_DATA_HOME="$WORKDIR/podman/data"
    XDG_CONFIG_HOME="$WORKDIR/podman/config"
    podman --root "$WORKDIR/podman/root" --runroot "$WORKDIR/podman/runroot"
    --storage-driver vfs --cgroup-manager cgroupfs --events-backend file
    --tmpdir "$WORKDIR/podman/tmp" --network-config-dir "$WORKDIR/podman/networks")
  # The docker CLI from the docker.io package (a newer CLI elsewhere on PATH would work too:
  # push and pull are done by the engine, dockerd 20.10, whatever the CLI).
  DOCKER_BIN=${DOCKER_CLI:-$(command -v /usr/bin/docker || command -v docker || true)}
}

skopeo_() { "${SKOPEO[@]}" "$@"; }
podman_() { "${PODMAN[@]}" "$@"; }

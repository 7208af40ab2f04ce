# Shared by scripts/run and scripts/test: installs what the build needs, idempotently and
# quickly when everything is already there.

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/berth/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step() { printf '\n==> %s\n' "$*"; }

# apt packages, installed only when missing.
ensure_apt() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    printf '\n==> apt-get install %s\n' "${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    # Wait for another apt/dpkg run instead of failing on its lock.
    $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Node.js and npm: the machine may carry them outside apt (NodeSource); use apt only when absent.
ensure_node() {
  command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 || ensure_apt nodejs npm
}

ensure_rust() {
  command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup" >&2; exit 1; }
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
    || rustup target add wasm32-unknown-unknown
}

# Builds the wasm bundle and CSS into $CARGO_TARGET_DIR/site (see xtask).
build_site() {
  step "building the portal bundle (wasm + css)"
  cargo run -q -p xtask -- site
}

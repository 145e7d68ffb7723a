#!/usr/bin/env bash
# Builds every Tenure plugin (Rust, Python, JavaScript) into one folder:
#   target/plugins/<name>.wasm + <name>.toml   (override with PLUGIN_DIR)
#
# Rust: the standard wasm32-wasip2 target when installed or installable with
# rustup; otherwise the offline recipe (Debian's rustc-web + -Zbuild-std),
# whose std build is cached in target/wasm-fallback. `--force-fallback` forces it.
# Python: componentize-py (pinned) in target/tools/venv.
# JavaScript: componentize-js (pinned in plugins/js/package-lock.json).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=${PLUGIN_DIR:-$root/target/plugins}
tools=$root/target/tools
machine_cache=${TENURE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tenure}
COMPONENTIZE_PY_VERSION=0.25.1
RUSTC_WEB_VERSION=1.96.0+dfsg1-1~deb12u2
force_fallback=0
[ "${1:-}" = "--force-fallback" ] && force_fallback=1

log() { printf '[plugins] %s\n' "$*" >&2; }
die() { printf '[plugins] error: %s\n' "$*" >&2; exit 1; }
mkdir -p "$out" "$tools"

have_wasip2_std() {
  local libdir
  libdir=$(rustc --print target-libdir --target wasm32-wasip2 2>/dev/null) || return 1
  compgen -G "$libdir/libstd-*" >/dev/null
}

# Prepares the offline toolchain: extracts (never installs) Debian's rustc-web.
fallback_root() {
  if [ -n "${WASM_RUSTC_ROOT:-}" ]; then echo "$WASM_RUSTC_ROOT"; return; fi
  local dir=$machine_cache/rustc-web-$RUSTC_WEB_VERSION
  if [ ! -x "$dir/usr/bin/rustc" ]; then
    log "fetching Debian rustc-web $RUSTC_WEB_VERSION for the offline wasm32-wasip2 build"
    mkdir -p "$dir/debs"
    (cd "$dir/debs" && apt-get download "rustc-web=$RUSTC_WEB_VERSION" libstd-rust-web-1.96 \
        "libstd-rust-web-dev=$RUSTC_WEB_VERSION" "rust-web-src=$RUSTC_WEB_VERSION" libllvm22 wasi-libc >&2) \
      || die "cannot download rustc-web; run 'apt-get update' or set WASM_RUSTC_ROOT to an extracted rustc-web"
    for d in "$dir"/debs/*.deb; do dpkg -x "$d" "$dir" >&2; done
  fi
  echo "$dir"
}

build_rust() {
  cd "$here"
  if [ "$force_fallback" = 0 ] && { have_wasip2_std || { log "installing wasm32-wasip2 with rustup"; rustup target add wasm32-wasip2 >&2 && have_wasip2_std; }; }; then
    log "Rust plugins: standard wasm32-wasip2 target"
    cargo build --release --target wasm32-wasip2 --target-dir "$root/target/wasm" >&2
    rust_out=$root/target/wasm/wasm32-wasip2/release
  else
    local tw; tw=$(fallback_root)
    log "Rust plugins: offline fallback (rustc-web from $tw, -Zbuild-std, cached std)"
    local host_bin; host_bin="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"
    LD_LIBRARY_PATH="$tw/usr/lib/x86_64-linux-gnu:$tw/usr/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    PATH="$PATH:$host_bin" RUSTC="$tw/usr/bin/rustc" RUSTC_BOOTSTRAP=1 \
    CARGO_ENCODED_RUSTFLAGS="-L$tw/usr/lib/wasm32-wasi-Clink-arg=-zstack-size=131072" \
      cargo build --release -Zbuild-std=std,panic_abort --target wasm32-wasip2 \
        --target-dir "$machine_cache/wasm-fallback" >&2
    rust_out=$machine_cache/wasm-fallback/wasm32-wasip2/release
  fi
  local manifest dir name crate
  for manifest in "$here"/rules/plugin.toml "$here"/rules-basic/plugin.toml "$here"/source-json/plugin.toml "$here"/lever/plugin.toml "$here"/hr-feed/plugin.toml "$here"/sandbox/plugin.toml "$here"/directory/plugin.toml "$here"/scim/plugin.toml "$here"/google/plugin.toml "$here"/okta/plugin.toml "$here"/entra/plugin.toml "$here"/servicenow/plugin.toml "$here"/freshservice/plugin.toml "$here"/fixtures/*/plugin.toml; do
    dir=$(dirname "$manifest"); name=$(basename "$dir")
    crate=$(sed -n 's/^name = "\(.*\)"/\1/p' "$dir/Cargo.toml" | head -n1 | tr - _)
    cp "$rust_out/$crate.wasm" "$out/$name.wasm"
    cp "$manifest" "$out/$name.toml"
  done
}

build_python() {
  local venv=$tools/venv
  if ! "$venv/bin/componentize-py" --version 2>/dev/null | grep -q "$COMPONENTIZE_PY_VERSION"; then
    log "installing componentize-py $COMPONENTIZE_PY_VERSION"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "componentize-py==$COMPONENTIZE_PY_VERSION" >&2
  fi
  local dir name
  for dir in "$here"/python/*/; do
    name=$(basename "$dir")
    log "Python plugin $name"
    "$venv/bin/componentize-py" -d "$root/sdk/rust/wit/since_v0.1.0" -w rules-plugin componentize \
      -p "$dir" -p "$root/sdk/python" app -o "$out/$name.wasm" >&2
    cp "$dir/plugin.toml" "$out/$name.toml"
  done
}

build_js() {
  command -v node >/dev/null || die "node is required for the JavaScript plugins (apt-get install nodejs npm)"
  if [ ! -x "$here/js/node_modules/.bin/componentize-js" ]; then
    log "installing componentize-js (npm ci)"
    (cd "$here/js" && npm ci --no-audit --no-fund >&2)
  fi
  local dir name world
  for dir in "$here"/js/*/; do
    name=$(basename "$dir")
    [ "$name" = node_modules ] && continue
    world=$(sed -n 's/^kind = "\(.*\)"/\1/p' "$dir/plugin.toml")-plugin
    log "JavaScript plugin $name ($world)"
    # One module for componentize-js: the plugin (`<kind>.js`) and the SDK helpers it imports
    # (sdk/js/tenure.js), bundled by rolldown (installed with componentize-js).
    local bundle; bundle=$(mktemp -d)/$name.js
    "$here/js/node_modules/.bin/rolldown" "$dir/${world%-plugin}.js" --format esm --platform neutral \
      --external 'tenure:plugin/kv@0.1.0,tenure:plugin/log@0.1.0,tenure:plugin/http@0.1.0,tenure:plugin/clock@0.1.0,tenure:plugin/ldap@0.1.0,tenure:plugin/types@0.1.0' \
      --file "$bundle" >&2
    "$here/js/node_modules/.bin/componentize-js" --wit "$root/sdk/rust/wit/since_v0.1.0" --world-name "$world" \
      -d http fetch-event -o "$out/$name.wasm" "$bundle" >&2
    cp "$dir/plugin.toml" "$out/$name.toml"
  done
}

build_rust
build_python
build_js
log "built into $out: $(cd "$out" && ls ./*.wasm | xargs -n1 basename | tr '\n' ' ')"

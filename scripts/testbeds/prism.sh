#!/usr/bin/env bash
# Prism (Stoplight's OpenAPI mock and validator, from npm) for the cloud-API contract tests.
# The tests start it themselves, in proxy mode in front of each fake (tests/src/prism.rs).
#   prism.sh install   install (once) into target/tools/prism and prepare the Okta description and
#                      the Graph slice (target/tools/prism/{okta-management,graph-entra}.json);
#                      prints TENURE_PRISM=<binary>
#   prism.sh env       print the setting
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${TB_PRISM_DIR:-$(cd "$here/../.." && pwd)/target/tools/prism}
PRISM_VERSION=5.16.0
bin="$dir/node_modules/.bin/prism"
log() { printf '[prism] %s\n' "$*" >&2; }

install() {
  if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qx "$PRISM_VERSION"; then return; fi
  command -v npm >/dev/null || {
    log "installing node and npm"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >&2
  }
  log "installing @stoplight/prism-cli $PRISM_VERSION into $dir"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "@stoplight/prism-cli@$PRISM_VERSION" >&2
  "$bin" --version >/dev/null
}

# Okta's description needs one fix-up before Prism can load it (tests/specs/okta/prepare.js).
prepare_okta() {
  local spec="$here/../../tests/specs/okta/management-minimal.yaml" out="$dir/okta-management.json"
  if [ -s "$out" ] && [ "$out" -nt "$spec" ] && [ "$out" -nt "$here/../../tests/specs/okta/prepare.js" ]; then return; fi
  NODE_PATH="$dir/node_modules" node "$here/../../tests/specs/okta/prepare.js" "$spec" "$out.tmp" >&2
  mv "$out.tmp" "$out"
}

# Microsoft Graph's modules are too large for Prism whole: cut to the entra connector's operations.
prepare_graph() {
  local specs="$here/../../tests/specs/msgraph" out="$dir/graph-entra.json"
  if [ -s "$out" ] && [ "$out" -nt "$specs/slice.js" ] && [ "$out" -nt "$specs/Users.yml" ]; then return; fi
  NODE_PATH="$dir/node_modules" node "$specs/slice.js" "$specs" "$out.tmp" >&2
  mv "$out.tmp" "$out"
}

case "${1:-}" in
  install) install; prepare_okta; prepare_graph; echo "TENURE_PRISM=$bin" ;;
  env) echo "TENURE_PRISM=$bin" ;;
  *) echo "usage: $0 install|env" >&2; exit 2 ;;
esac

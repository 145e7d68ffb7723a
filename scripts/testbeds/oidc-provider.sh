#!/usr/bin/env bash
# A real OpenID provider for the sign-in tests: oidc-provider (OpenID Certified, from npm),
# pinned by tests/idp/package-lock.json and run by tests/idp/server.mjs. The tests start it
# themselves on a free port (tests/src/idp.rs).
#   oidc-provider.sh install   npm ci into tests/idp/node_modules (once per lockfile change)
set -euo pipefail
dir=$(cd "$(dirname "$0")/../../tests/idp" && pwd)
log() { printf '[oidc-provider] %s\n' "$*" >&2; }

install() {
  local stamp="$dir/node_modules/.tenure-lock"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$dir/package-lock.json"; then return; fi
  command -v npm >/dev/null || {
    log "installing node and npm"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >&2
  }
  log "installing oidc-provider from tests/idp/package-lock.json"
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2
  cp "$dir/package-lock.json" "$stamp"
}

case "${1:-}" in
  install) install ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac

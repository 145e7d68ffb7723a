#!/usr/bin/env bash
# The console's front end (console/): npm ci from its lockfile, a type check (TypeScript) and a
# bundle (esbuild) into console/dist, which the tenure binary embeds. dist/ is built here,
# never edited by hand.
#   console.sh build   install (when the lockfile changed) and build
set -euo pipefail
dir=$(cd "$(dirname "$0")/../console" && pwd)
log() { printf '[console] %s\n' "$*" >&2; }

install() {
  local stamp="$dir/node_modules/.tenure-lock"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$dir/package-lock.json"; then return; fi
  command -v npm >/dev/null || {
    log "installing node and npm"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >&2
  }
  log "installing the console's toolchain from console/package-lock.json"
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2
  cp "$dir/package-lock.json" "$stamp"
}

case "${1:-}" in
  build) install; (cd "$dir" && npm run --silent build >&2) ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac

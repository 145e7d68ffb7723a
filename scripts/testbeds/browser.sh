#!/usr/bin/env bash
# A headless browser for the console's tests: Debian's Chromium, driven by playwright-core
# (npm, pinned by tests/browser/package-lock.json; it downloads no browser of its own).
# The tests run tests/browser/console.mjs themselves.
#   browser.sh install   apt install chromium (when missing) and npm ci into tests/browser
set -euo pipefail
dir=$(cd "$(dirname "$0")/../../tests/browser" && pwd)
log() { printf '[browser] %s\n' "$*" >&2; }

install() {
  if ! command -v chromium >/dev/null; then
    log "installing chromium (Debian)"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >&2
  fi
  local stamp="$dir/node_modules/.tenure-lock"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$dir/package-lock.json"; then return; fi
  log "installing playwright-core from tests/browser/package-lock.json"
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2
  cp "$dir/package-lock.json" "$stamp"
}

case "${1:-}" in
  install) install ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac

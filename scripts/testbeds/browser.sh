#!/usr/bin/env bash
# A headless browser for the console's tests: Debian's Chromium, driven by playwright-core
# (npm, pinned by tests/browser/package-lock.json; it downloads no browser of its own).
# The tests run tests/browser/console.mjs themselves.
#   browser.sh install   apt install chromium (when missing) and npm ci into tests/browser
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
install() {
  if ! command -v chromium >/dev/null; then
    echo "[browser] installing chromium (Debian)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >&2
  fi
  "$here/../npm-ci.sh" "$(cd "$here/../../tests/browser" && pwd)"
}
case "${1:-}" in
  install) install ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Schemathesis (from PyPI) for the API contract test: it reads Tenure's OpenAPI description
# and sends generated requests to every route, checking for server errors and answers that
# break the description (tests/tests/integration/openapi.rs starts it against a test host).
#   schemathesis.sh install   install (once) into target/tools/schemathesis-venv; prints TENURE_SCHEMATHESIS=<st>
#   schemathesis.sh env       print the setting
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${TB_SCHEMATHESIS_VENV:-$(cd "$here/../.." && pwd)/target/tools/schemathesis-venv}
SCHEMATHESIS_VERSION=4.32.5
log() { printf '[schemathesis] %s\n' "$*" >&2; }

install() {
  if "$venv/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then return; fi
  python3 -c 'import venv, ensurepip' 2>/dev/null || {
    log "installing python3-venv"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >&2
  }
  log "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" >&2
  "$venv/bin/st" --version >/dev/null
}

case "${1:-}" in
  install) install; echo "TENURE_SCHEMATHESIS=$venv/bin/st" ;;
  env) echo "TENURE_SCHEMATHESIS=$venv/bin/st" ;;
  *) echo "usage: $0 install|env" >&2; exit 2 ;;
esac

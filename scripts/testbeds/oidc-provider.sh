#!/usr/bin/env bash
# A real OpenID provider for the sign-in tests: oidc-provider (OpenID Certified, from npm),
# pinned by tests/idp/package-lock.json and run by tests/idp/server.mjs. The tests start it
# themselves on a free port (tests/src/idp.rs).
#   oidc-provider.sh install   npm ci into tests/idp/node_modules (once per lockfile change)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
  install) "$here/../npm-ci.sh" "$(cd "$here/../../tests/idp" && pwd)" ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac

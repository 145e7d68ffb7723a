#!/usr/bin/env bash
# The console's front end (console/): npm ci from its lockfile, a type check (TypeScript) and a
# bundle (esbuild) into console/dist, which the tenure binary embeds. dist/ is built here,
# never edited by hand.
#   console.sh build   install (when the lockfile changed) and build
#   console.sh test    the front end's unit tests (condition builder, the shared YAML document)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(cd "$here/../console" && pwd)
case "${1:-}" in
  build) "$here/npm-ci.sh" "$dir"; (cd "$dir" && npm run --silent build >&2) ;;
  test) "$here/npm-ci.sh" "$dir"; (cd "$dir" && npm test >&2) ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Installs a folder's npm packages exactly as its package-lock.json pins them (npm ci), once per
# change of the lockfile; installs node and npm from Debian first when they are missing.
#   npm-ci.sh DIR
set -euo pipefail
dir=$1
stamp="$dir/node_modules/.tenure-lock"
if [ -f "$stamp" ] && cmp -s "$stamp" "$dir/package-lock.json"; then exit 0; fi
command -v npm >/dev/null || {
  echo "[npm] installing node and npm" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >&2
}
echo "[npm] installing $dir's packages from its lockfile" >&2
npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2
cp "$dir/package-lock.json" "$stamp"

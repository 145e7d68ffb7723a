#!/usr/bin/env bash
# Dependency policy (deny.toml): licences, banned and wildcard dependencies, and sources, with
# cargo-deny (pinned, built from crates.io into target/tools on first use, about 3.5 min here).
# Advisories need the RustSec database, which is fetched from GitHub: checked when it can be
# fetched, otherwise reported as not checked (CI here reaches the package registries only).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_DENY_VERSION=0.20.2
root=target/tools/cargo-deny
deny=$root/bin/cargo-deny
log() { printf '[deny] %s\n' "$*" >&2; }
if ! "$deny" --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
  log "installing cargo-deny $CARGO_DENY_VERSION"
  cargo install --quiet --locked cargo-deny --version "$CARGO_DENY_VERSION" --root "$root"
fi
# The host, and the plugins workspace (what ships inside the components).
for manifest in Cargo.toml plugins/Cargo.toml; do
  log "$manifest"
  "$deny" --manifest-path "$manifest" --config deny.toml check licenses bans sources
done
if timeout 60 "$deny" fetch db >/dev/null 2>&1; then
  "$deny" check advisories
  "$deny" --manifest-path plugins/Cargo.toml --config deny.toml check advisories
else
  log "advisories NOT checked: the RustSec advisory database (github.com/rustsec/advisory-db) is unreachable"
fi

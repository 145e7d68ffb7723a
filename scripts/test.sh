#!/usr/bin/env bash
# Installs what Tenure's tests need, builds every plugin, and runs all tests.
# Usage: scripts/test.sh            (from anywhere; safe to re-run)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '[test] %s\n' "$*" >&2; }

apt_updated=0
need_apt() {
  if [ "$apt_updated" = 0 ]; then apt-get update -qq >&2; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# The pinned Rust toolchain (rustup no longer installs it on first use).
scripts/toolchain.sh

# Toolchains the plugin build uses: node/npm (componentize-js), python3 with venv (componentize-py).
command -v node >/dev/null && command -v npm >/dev/null || { log "installing node and npm"; need_apt nodejs npm; }
python3 -c 'import venv, ensurepip' 2>/dev/null || { log "installing python3-venv"; need_apt python3-venv; }

# Real servers for the connector tests: OpenLDAP, a Samba AD domain controller,
# scim2-server and an SMTP server (aiosmtpd); PostgreSQL (Debian's packages) for the
# PostgreSQL store's conformance suite and the several-host tests. Each script installs what it needs when missing (apt, or a private
# Python venv) and is idempotent; they are started here, before the tests, so an
# install failure stops the run with its own message. All are stopped when the run ends.
trap 'scripts/testbeds/openldap.sh stop || true; scripts/testbeds/samba-ad.sh stop || true; scripts/testbeds/scim2-server.sh stop || true; scripts/testbeds/smtp.sh stop || true; scripts/testbeds/postgres.sh stop || true; TB_POSTGRES_DIR=/tmp/tenure-postgres-faults TB_POSTGRES_PORT=55433 scripts/testbeds/postgres.sh stop || true' EXIT
log "starting the test servers (OpenLDAP, Samba AD DC, scim2-server, SMTP, PostgreSQL)"
scripts/testbeds/openldap.sh start >/dev/null
scripts/testbeds/samba-ad.sh start >/dev/null
scripts/testbeds/scim2-server.sh start >/dev/null
scripts/testbeds/smtp.sh start >/dev/null
scripts/testbeds/postgres.sh start >/dev/null
# Prism checks the cloud connectors' traffic against the vendors' API descriptions; the
# tests start it themselves in front of each fake.
log "installing Prism (contract checks for the cloud API fakes)"
scripts/testbeds/prism.sh install >/dev/null
# Schemathesis sends generated requests to every route of the API's OpenAPI description.
log "installing Schemathesis (the API's contract test)"
scripts/testbeds/schemathesis.sh install >/dev/null
# A real OpenID provider (oidc-provider, npm) for people's sign-in; the test starts it.
log "installing oidc-provider (the OpenID sign-in test's provider)"
scripts/testbeds/oidc-provider.sh install
# A headless Chromium (Debian) driven by playwright-core (npm) for the console's tests.
log "installing Chromium and playwright-core (the console's browser test)"
scripts/testbeds/browser.sh install

log "building the console (npm: TypeScript check, esbuild bundle) into console/dist"
scripts/console.sh build
log "the console's unit tests (node's test runner)"
scripts/console.sh test

log "building plugins (Rust, Python, JavaScript) into target/plugins"
plugins/build.sh

log "unit tests of the plugins workspace (native): rule engines, sources, connectors"
(cd plugins && cargo test -q -p tenure-rules-basic-engine -p tenure-rules-engine -p lever -p hr-feed -p directory -p scim -p google -p okta -p entra -p servicenow -p freshservice)

# The crash test drives the real `tenure serve` binary.
log "building the tenure binary"
cargo build -q -p tenure

log "the example rule set's own test cases (tenure rules test)"
for f in examples/rules/company.yaml examples/demo/rules.yaml examples/demo/rules-v2.yaml examples/ad-scim/rules.yaml examples/cloud/rules.yaml examples/itsm/rules.yaml; do
  target/debug/tenure rules test "$f"
done

if cargo nextest --version >/dev/null 2>&1; then
  log "the SDK's documentation examples (nextest runs no doctests)"
  cargo test -q --doc -p tenure-sdk
  log "host workspace tests (nextest)"
  cargo nextest run --workspace --no-fail-fast
else
  log "host workspace tests (cargo test; install cargo-nextest for faster runs)"
  cargo test --workspace --no-fail-fast
fi

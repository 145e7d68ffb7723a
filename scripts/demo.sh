#!/usr/bin/env bash
# Builds the plugins and the host, then runs the sample events through the whole
# flow on a fresh embedded SQLite store: the HTTP API, the durable queue, the
# rules plugin (YAML rule set), the planner, the sandbox destination (a connector plugin that
# keeps accounts in the host's key-value store), preview, the audit log and KPIs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/toolchain.sh
plugins/build.sh
# The console's pages, embedded in the binary (tenure serve shows them at /console/).
scripts/console.sh build
cargo run -q -p tenure -- demo --config examples/demo/tenure.toml

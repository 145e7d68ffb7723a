#!/usr/bin/env bash
# Builds the plugins and the host, then runs sample people through the example
# rules plugin (Rust) and the sandbox connector (JavaScript), all in the host.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
plugins/build.sh
cargo run -q -p tenure -- demo --config examples/demo/tenure.toml

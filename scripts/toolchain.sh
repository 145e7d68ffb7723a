#!/usr/bin/env bash
# Installs the toolchain rust-toolchain.toml pins (with its components and the
# wasm32-wasip2 target) when it is missing. rustup 1.28 and later no longer do this
# on first use, so every entry point (CI, the demo, the tests) runs this first.
# Machines that cannot reach rustup: see docs/toolchain.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup run "$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)" rustc --version >/dev/null 2>&1 \
  || ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  printf '[toolchain] installing the pinned Rust toolchain (rust-toolchain.toml)\n' >&2
  rustup toolchain install >&2 || {
    printf '[toolchain] rustup could not install it; see docs/toolchain.md for machines without rustup access\n' >&2
    exit 1
  }
fi

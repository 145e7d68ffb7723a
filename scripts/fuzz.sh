#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ from its committed seed corpus.
# Usage: scripts/fuzz.sh [SECONDS] [RUNS]   (defaults: 60 s each, no run limit; FUZZ_JOBS=N
# targets at a time, one per core by default)
# A target stops at SECONDS or after RUNS executions, whichever comes first. Any crash,
# a hang over 1 s (-timeout=1) or more than 2 GiB resident (-rss_limit_mb) fails the run;
# the input is left in fuzz/artifacts/<target>/. New inputs go to fuzz/target/corpus/,
# never into the committed seeds. Builds on the pinned stable toolchain (RUSTC_BOOTSTRAP
# unlocks cargo-fuzz's flags; no sanitizer, so no nightly is needed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-60}
runs=${2:-0}
runs_arg=$([ "$runs" = 0 ] && echo -1 || echo "$runs")
log() { printf '[fuzz] %s\n' "$*" >&2; }
scripts/toolchain.sh
# libfuzzer-sys compiles libFuzzer (C++).
command -v c++ >/dev/null || { log "installing g++"; apt-get update -qq >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ >&2; }
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --locked --version 0.13.2 >&2
fi
export RUSTC_BOOTSTRAP=1
cd fuzz
log "building the fuzz targets (coverage-instrumented, release)"
cargo fuzz build -s none -O >&2
# Targets run side by side, one per core (FUZZ_JOBS overrides), each writing its own log.
jobs=${FUZZ_JOBS:-$(nproc)}
logs=target/fuzz-logs
mkdir -p "$logs"
run_target() {
  local target=$1 work="target/corpus/$1"
  mkdir -p "$work"
  cargo fuzz run -s none -O "$target" "$work" "corpus/$target" -- \
    -max_total_time="$seconds" -runs="$runs_arg" -timeout=1 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$logs/$target.log" 2>&1
}
targets=$(cargo fuzz list)
log "up to ${seconds}s$([ "$runs" != 0 ] && echo " or $runs runs") each, $jobs at a time: $(echo $targets)"
failed=()
running=()
for target in $targets; do
  run_target "$target" &
  running+=("$!:$target")
  if [ "${#running[@]}" -ge "$jobs" ]; then
    entry=${running[0]}; running=("${running[@]:1}")
    wait "${entry%%:*}" || failed+=("${entry#*:}")
  fi
done
for entry in "${running[@]}"; do wait "${entry%%:*}" || failed+=("${entry#*:}"); done
for target in "${failed[@]}"; do
  tail -40 "$logs/$target.log" >&2
  log "$target FAILED (input in fuzz/artifacts/$target/, log in fuzz/$logs/$target.log)"
done
[ "${#failed[@]}" = 0 ] || exit 1
for target in $targets; do
  out=$(cat "$logs/$target.log")
  execs=$(printf '%s\n' "$out" | sed -n 's/^stat::number_of_executed_units: *//p' | tail -1)
  peak=$(printf '%s\n' "$out" | sed -n 's/^stat::peak_rss_mb: *//p' | tail -1)
  secs=$(printf '%s\n' "$out" | sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' | tail -1)
  corpus=$(ls "target/corpus/$target" | wc -l)
  printf '%-16s %12s execs %6s s  corpus %6s  peak RSS %5s MB  crashes 0\n' \
    "$target" "$execs" "$secs" "$corpus" "$peak"
done

#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] [TARGET…]: runs each cargo-fuzz target (all of them by default) for SECONDS
# (default 20) with its seeds, one after another, and prints a line per target: executions and
# coverage from libFuzzer's last report. A crash or failed property stops with its artifact path.
# Needs the nightly toolchain and cargo-fuzz (installed here when missing).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-20}
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
cargo +nightly fuzz build
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  seeds=()
  [ -d "seeds/$target" ] && seeds=("seeds/$target")
  log=$(mktemp)
  if ! cargo +nightly fuzz run "$target" "corpus/$target" "${seeds[@]}" -- \
      -max_total_time="$seconds" -print_final_stats=1 > "$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz target $target FAILED (artifact in fuzz/artifacts/$target/)"
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  echo "fuzz $target: ${seconds}s, ${runs:-?} executions, coverage ${cov:-?} edges, no failure"
  rm -f "$log"
done

#!/usr/bin/env bash
# The test command of the README: everything the project checks, on a fresh machine of this kind.
# It installs nothing today beyond what cargo fetches (Rust toolchain with cargo and rustfmt/clippy
# preinstalled on the machine kind); later scripts that need k6, nginx or Chromium install them here.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== unit and integration tests"
cargo test --locked --all-targets

echo "== benches compile"
cargo bench --locked --no-run

echo "== fuzz targets compile"
cargo check --locked --manifest-path fuzz/Cargo.toml --bins

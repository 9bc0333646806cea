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
# Not --locked: fuzz/Cargo.lock follows the main crate's dependencies, which change more often
# than anyone remembers to refresh it; the main crate itself is built --locked above.
cargo check --manifest-path fuzz/Cargo.toml --bins

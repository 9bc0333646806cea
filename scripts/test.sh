#!/usr/bin/env bash
# The test command of the README: everything the project checks, on a fresh machine of this kind.
# Beyond what cargo fetches, tests/web/run.sh installs what the web tests need (Debian's chromium
# and a CJK font, httpx and openapi-spec-validator from PyPI, playwright-core from npm).
# tests/it/disk.rs mounts a tmpfs and an ext4 loop image: it needs root (as CI runs) and
# util-linux's mount and e2fsprogs, which the machine image has.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== unit and integration tests (and every criterion bench once, in test mode)"
# --all-targets includes benches/: each bench function runs once as a test, so they are built and
# exercised here (`cargo bench --no-run` on top added only an optimized build of the same code).
cargo test --locked --all-targets

echo "== web face: OpenAPI validation, the guide's examples, pages in headless Chromium"
./tests/web/run.sh

echo "== fuzz targets compile"
# Not --locked: fuzz/Cargo.lock follows the main crate's dependencies, which change more often
# than anyone remembers to refresh it; the main crate itself is built --locked above.
cargo check --manifest-path fuzz/Cargo.toml --bins

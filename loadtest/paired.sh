#!/usr/bin/env bash
# loadtest/paired.sh A_BIN B_BIN [ROUNDS] [ITEMS]: the engine scenario on two builds at the same
# time, for an A/B of the server's CPU per check on a shared, noisy machine.
#
# `run.sh engine` run in turn for two builds sees the VM change between runs (±30 % on a busy
# day), which hides any change under about 5 %. Here both servers run side by side against one
# mock, each with its own data dir and a job of ITEMS links (default 50 000), ROUNDS times
# (default 6): whatever else the machine does falls on both at once, and each round's ratio
# B / A of CPU per check cancels it. A server's place gives it an edge of about 1 % (measured
# A against A): half the rounds run with A's server started first, half with B's. The absolute
# figures are higher than alone (the two servers share the cores and caches); only the ratio is
# the result. Prints each round and the median.
set -euo pipefail
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: loadtest/paired.sh A_BIN B_BIN [ROUNDS] [ITEMS]"; exit 2; }
a_bin=$1
b_bin=$2
rounds=${3:-6}
items=${4:-50000}
providers=${PROVIDERS:-quark,uc,baidu,tianyi,pan123,pan115,aliyun,xunlei,cmcc,lanzou,pikpak,ctfile,weiyun,onedrive,guangya}
# shellcheck source=../scripts/procs.sh
. scripts/procs.sh
procs_init

start_mock "$a_bin" 0
# start_one BIN NAME → "pid port key" of a server on its own data dir, with run.sh's engine
# settings and a key without a rate limit.
start_one() {
  start_server "$1" PANLINK_DATA_DIR="$work/$2" PANLINK_CHECKER_CONCURRENCY=256 \
    PANLINK_CHECKER_RATE_PER_S=1000000 PANLINK_CHECKER_POOL_MAX_IDLE_PER_HOST=512 \
    PANLINK_JOBS_MAX_ITEMS=1000000 PANLINK_JOBS_MAX_BODY_BYTES=268435456 \
    PANLINK_JOBS_FREE_MAX_STORED_ITEMS=1000000000 PANLINK_STORAGE_MAP_SIZE_MB=16384
  local key key_id
  key=$(PANLINK_DATA_DIR="$work/$2" "$1" keys create --name "$2")
  key_id=$(PANLINK_DATA_DIR="$work/$2" "$1" keys list | awk 'NR==2{print $1}')
  curl -s -X PATCH "http://127.0.0.1:$port/admin/api/keys/$key_id" \
    -H "Authorization: Bearer $PROCS_ADMIN_TOKEN" -H 'Content-Type: application/json' \
    -d '{"rate_per_s": 1000000, "burst": 1000000}' > /dev/null
  echo "$server $port $key"
}
engine() { # PORT KEY PID TAG OUT
  timeout 900 python3 loadtest/engine.py --port "$1" --key "$2" --items "$items" --pid "$3" \
    --tag "$4" --mode throughput --providers "$providers" > "$5"
}
ratios=()
# session FIRST_BIN SECOND_BIN SWAPPED ROUNDS: the two servers started in this order, on fresh
# data dirs; each round's ratio B / A joins $ratios. A server's place (started first, launched
# first) gives it a small edge: the first session starts A first, the second B, and each round
# alternates which job is launched first.
session() {
  local first second
  read -r first_pid first_port first_key <<< "$(start_one "$1" "first$3")"
  read -r second_pid second_port second_key <<< "$(start_one "$2" "second$3")"
  # start_one ran in a subshell: its servers are not in this shell's list to stop on exit.
  pids+=("$first_pid" "$second_pid")
  for round in $(seq "$4"); do
    if [ $((round % 2)) = 1 ]; then
      engine "$first_port" "$first_key" "$first_pid" "f$3$round" "$work/first.json" & first=$!
      engine "$second_port" "$second_key" "$second_pid" "s$3$round" "$work/second.json" & second=$!
    else
      engine "$second_port" "$second_key" "$second_pid" "s$3$round" "$work/second.json" & second=$!
      engine "$first_port" "$first_key" "$first_pid" "f$3$round" "$work/first.json" & first=$!
    fi
    wait "$first" "$second"
    local a_json=$work/first.json b_json=$work/second.json
    [ "$3" = 0 ] || { a_json=$work/second.json; b_json=$work/first.json; }
    ratios+=("$(python3 - "$a_json" "$b_json" "$3" "$round" <<'PY'
import json, sys
a, b = (json.load(open(path)) for path in sys.argv[1:3])
for name, r in (("A", a), ("B", b)):
    assert r["gaps"] == 0 and r["duplicates"] == 0, (name, r)
ratio = b["server_cpu_us_per_check"] / a["server_cpu_us_per_check"]
first = "B" if sys.argv[3] == "1" else "A"
print(f'{first} started first, round {sys.argv[4]}: A {a["server_cpu_us_per_check"]} µs ({a["checks_per_s"]} checks/s), '
      f'B {b["server_cpu_us_per_check"]} µs ({b["checks_per_s"]} checks/s), B / A {ratio:.3f}', file=sys.stderr)
print(f"{ratio:.4f}")
PY
)")
  done
  kill "$first_pid" "$second_pid"
  wait "$first_pid" "$second_pid" 2>/dev/null || true
}
session "$a_bin" "$b_bin" 0 "$(( (rounds + 1) / 2 ))"
session "$b_bin" "$a_bin" 1 "$(( rounds / 2 ))"
python3 - "${ratios[@]}" <<'PY'
import statistics, sys
r = sorted(float(x) for x in sys.argv[1:])
print(f"\nCPU per check, B / A: median {statistics.median(r):.3f} over {len(r)} rounds (range {r[0]:.3f}–{r[-1]:.3f})")
PY

#!/usr/bin/env bash
# loadtest/shortlinks.sh SCENARIO: the short-link targets, measured with wrk (Debian's
# package; k6 tops out near 17 k req/s on this machine, wrk near 200 k).
#
#   redirect  100 000 links created through the batch API; then GET /{code} with a random code
#             per request (wrk, 64 connections, DURATION s after a warm-up over every code), against
#             panlink and against nginx answering `return 302` from a `map` of the same codes
#             (nginx.conf.tpl), in the same run, ROUNDS (3) rounds with the two servers in turn.
#             Each server is pinned to core 0 with one worker, wrk to core 1.
#             Prints requests/s, p50/p99 and server CPU per request (utime+stime from /proc over
#             the requests answered) and the panlink/nginx ratios. Targets: CPU per redirect
#             <= 1.0 x nginx's, requests/s >= 1.0 x nginx's, p99 < 1.5 ms at 64 connections.
#             FLOOR=1 adds a third server to every round: bare hyper as panlink builds it
#             (examples/redirect_floor.rs, the same codes from nginx's map), the floor of this
#             stack; the summary then also prints panlink/floor and floor/nginx.
#   rules     10 000 plain links and 10 000 links with 3 visitor rules (app, OS, language), GET
#             /{code} of one set or the other in interleaved rounds, with a desktop Chrome user
#             agent and Accept-Language that match none of the rules (so all three are evaluated,
#             the worst case). Prints CPU per request of each and the difference. Target: a link
#             with 3 rules costs at most 1 µs more CPU per redirect than a plain one. Pinned like
#             redirect.
#   analytics two servers of one build, click analytics on (the default) and off (counting only),
#             LINKS links each; GET /{code} as a browser (user agent, language, referrer) against
#             each in interleaved rounds (ROUNDS, default 4; the order flips every round). Target:
#             CPU per redirect with analytics within 10 % of
#             counting only, each server's CPU taken over the whole run (so that both pay for
#             every fold, COMPACT_MS apart, wherever it falls). Prints the heap growth per code after a pass over every code, and
#             after the counts are folded into storage (COMPACT_MS, default 20 000).
#   create    POST /api/v1/links from 64 connections for DURATION s (each answer follows its
#             commit); prints durable creates/s against the 20 000/s target, CPU per create and
#             the writer's batch sizes (mean, from /metrics). Nothing is pinned here: the target
#             is for "this machine", so the server runs as shipped (a worker per core, its LMDB
#             writer thread beside them) and wrk shares the two cores with it.
#
# SERVER_WRAP / WRK_WRAP (default "taskset -c 0" / "taskset -c 1" for redirect, empty for create)
# and WORKERS (server.worker_threads: 1 for redirect, 0 = one per core for create) override the
# placement for an experiment. PROFILE=FILE records the server's first panlink round with perf;
# (analytics: each server over every round, the counting-only one to FILE.off.) PERF_CALLGRAPH (default -g) sets perf's unwinding, e.g. "--call-graph fp" with a PANLINK_BIN
# built with RUSTFLAGS="-C force-frame-pointers=yes".
#
# Needs wrk and nginx (installed with apt-get when missing). DURATION defaults to 10.
set -euo pipefail
ulimit -n 65536 2>/dev/null || true
cd "$(dirname "$0")/.."
scenario=${1:-redirect}
duration=${DURATION:-10}
links=${LINKS:-100000}
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  (apt-get install -y "${need[@]}" >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y "${need[@]}" >/dev/null; })
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
# PANLINK_BIN: another build to measure (as in run.sh); default the release build, made here.
bin=${PANLINK_BIN:-target/release/panlink}
[ -n "${PANLINK_BIN:-}" ] || cargo build --release --quiet
# shellcheck source=../scripts/procs.sh
. scripts/procs.sh
procs_init

cpu_ticks() { # utime+stime of every given pid, in clock ticks
  local total=0
  for p in "$@"; do
    read -r -a f < "/proc/$p/stat"
    # fields after the ")" of the command name: utime is field 14, stime 15 (1-based)
    total=$((total + f[13] + f[14]))
  done
  echo "$total"
}
hz=$(getconf CLK_TCK)
# wrk_headers: -H options for every wrk run of a scenario.
wrk_headers=()

# wrk_run NAME PORT LUA -> prints "NAME rps p50_ms p99_ms requests non2xx3xx"
wrk_run() {
  local out
  out=$(${WRK_WRAP-taskset -c 1} wrk -t1 -c64 -d"${duration}s" --latency "${wrk_headers[@]}" -s "$3" "http://127.0.0.1:$2" 2>&1)
  echo "$out" > "$work/wrk-$1.txt"
  python3 - "$1" "$work/wrk-$1.txt" <<'PY'
import re, sys
name, path = sys.argv[1], sys.argv[2]
text = open(path).read()
def ms(label):
    m = re.search(r"^\s*%s\s+([\d.]+)(us|ms|s)\s*$" % label, text, re.M)
    if not m: return float("nan")
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
total = int(re.search(r"(\d+) requests in", text).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(name, rps, ms("50%"), ms("99%"), total, int(bad.group(1)) if bad else 0)
PY
}

# measured NAME PORT PID CODES_FILE -> wrk_run's line and the server's CPU ticks over the run
measured() {
  local before after line
  before=$(cpu_ticks "$3")
  line=$(CODES_FILE="$4" wrk_run "$1" "$2" loadtest/wrk/redirect.lua)
  after=$(cpu_ticks "$3")
  echo "$line $((after - before))"
}

# start_panlink_at DIR: a server on data dir DIR (EXTRA_ENV names it too, as
# PANLINK_DATA_DIR=DIR, when it is not $work/data) and an unlimited premium key of it in $key.
start_panlink_at() {
  # EXTRA_ENV: more PANLINK_… settings for an experiment, e.g. "PANLINK_LINKS_CLICK_FLUSH_MS=1000".
  # shellcheck disable=SC2086
  PROCS_WRAP="${SERVER_WRAP-taskset -c 0}" start_server "$bin" PANLINK_SERVER_WORKER_THREADS=${WORKERS:-1} ${EXTRA_ENV:-}
  key=$(PANLINK_DATA_DIR="$1" "$bin" keys create --name loadtest --plan premium)
  local id
  id=$(PANLINK_DATA_DIR="$1" "$bin" keys list | awk 'NR==2{print $1}')
  curl -s -X PATCH "http://127.0.0.1:$port/admin/api/keys/$id" \
    -H "Authorization: Bearer loadtest-admin-token-0000" -H 'Content-Type: application/json' \
    -d '{"rate_per_s": 1000000, "burst": 1000000}' > /dev/null
}

start_panlink() {
  start_panlink_at "$work/data"
}

case "$scenario" in
redirect)
  start_panlink
  echo "creating $links links through POST /api/v1/links/batch ..."
  python3 loadtest/create_links.py "$port" "$key" "$links" "$work/codes.txt" "$work/map.conf"
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' > "$work/nginx.port"
  sed -e "s|@WORK@|$work|g" -e "s|@PORT@|$(cat "$work/nginx.port")|g" loadtest/nginx.conf.tpl > "$work/nginx.conf"
  mkdir -p "$work/nginx"
  taskset -c 0 "$nginx_bin" -c "$work/nginx.conf" -p "$work/nginx" -g 'daemon off;' 2> "$work/nginx.err" &
  pids+=($!)
  for _ in $(seq 200); do [ -s "$work/nginx/nginx.pid" ] && break; sleep 0.05; done
  if [ ! -s "$work/nginx/nginx.pid" ]; then
    echo "nginx did not start:"; cat "$work/nginx.err" "$work/nginx/error.log" 2>/dev/null; exit 1
  fi
  nginx_port=$(cat "$work/nginx.port")
  targets=(panlink nginx)
  if [ "${FLOOR:-0}" = 1 ]; then
    cargo build --release --quiet --example redirect_floor
    floor_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    WORKERS=${WORKERS:-1} taskset -c 0 target/release/examples/redirect_floor "$floor_port" "$work/map.conf" 2> "$work/floor.err" &
    floor=$!
    pids+=("$floor")
    for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$floor_port/" && break; sleep 0.05; done
    targets+=(floor)
  fi
  nginx_master=$(cat "$work/nginx/nginx.pid")
  nginx_pids="$nginx_master $(pgrep -P "$nginx_master" | tr '\n' ' ')"
  first=$(head -1 "$work/codes.txt")
  curl -s -o /dev/null -w "panlink: %{http_code} -> %{redirect_url}\n" "http://127.0.0.1:$port/$first"
  curl -s -o /dev/null -w "nginx:   %{http_code} -> %{redirect_url}\n" "http://127.0.0.1:$nginx_port/$first"
  [ -z "${floor_port:-}" ] || curl -s -o /dev/null -w "floor:   %{http_code} -> %{redirect_url}\n" "http://127.0.0.1:$floor_port/$first"
  export CODES_FILE="$work/codes.txt"
  # Warm-up: every code in turn (at ~30 000 req/s, 5 s pass over all 100 000), so every server is
  # measured with every code in memory.
  for p in "$port" "$nginx_port" ${floor_port:-}; do
    taskset -c 1 wrk -t1 -c64 -d5s -s loadtest/wrk/redirect-warm.lua "http://127.0.0.1:$p" > /dev/null
  done
  # ROUNDS rounds, the two servers in turn within each (this shared VM's speed drifts by a third
  # within minutes: interleaving puts both under the same drift); medians are compared.
  results=()
  for round in $(seq "${ROUNDS:-3}"); do
    for target in "${targets[@]}"; do
      case $target in
        panlink) p=$port; watch=$server ;;
        nginx) p=$nginx_port; watch=$nginx_pids ;;
        floor) p=$floor_port; watch=$floor ;;
      esac
      if [ -n "${PROFILE:-}" ] && [ "$target" = panlink ] && [ "$round" = 1 ]; then
        perf record -e cpu-clock -F 1999 ${PERF_CALLGRAPH:--g} -p "$server" -o "$PROFILE" -- sleep "$duration" > /dev/null 2>&1 &
      fi
      before=$(cpu_ticks $watch)
      line=$(wrk_run "$target" "$p" loadtest/wrk/redirect.lua)
      after=$(cpu_ticks $watch)
      results+=("$line $((after - before))")
    done
  done
  python3 - "$hz" "${results[@]}" <<'PY'
import statistics, sys
hz = int(sys.argv[1])
runs = {}
for line in sys.argv[2:]:
    name, rps, p50, p99, total, bad, ticks = line.split()
    runs.setdefault(name, []).append(dict(rps=float(rps), p50=float(p50), p99=float(p99), total=int(total),
                                          bad=int(bad), cpu_us=int(ticks) / hz * 1e6 / max(1, int(total))))
print(f"\nGET /{{code}}, 100 000 codes, random per request, 64 connections, server on core 0, wrk on core 1;"
      f" {len(runs['panlink'])} interleaved rounds")
print(f"  {'server':8} {'round':>5} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>11} {'non-3xx':>8}")
for name, rounds in runs.items():
    for i, r in enumerate(rounds, 1):
        print(f"  {name:8} {i:5d} {r['rps']:10.0f} {r['p50']:8.3f} {r['p99']:8.3f} {r['cpu_us']:11.2f} {r['bad']:8d}")
med = {name: {k: statistics.median(r[k] for r in rounds) for k in ("rps", "p99", "cpu_us")}
       for name, rounds in runs.items()}
ratio = [p["cpu_us"] / n["cpu_us"] for p, n in zip(runs["panlink"], runs["nginx"])]
p, n = med["panlink"], med["nginx"]
print(f"\n  medians: panlink {p['rps']:.0f} req/s, {p['cpu_us']:.2f} µs/req, p99 {p['p99']:.2f} ms; "
      f"nginx {n['rps']:.0f} req/s, {n['cpu_us']:.2f} µs/req, p99 {n['p99']:.2f} ms")
print(f"  ratios panlink/nginx (medians): CPU per request {p['cpu_us'] / n['cpu_us']:.2f} (target <= 1.0), "
      f"requests/s {p['rps'] / n['rps']:.2f} (target >= 1.0), p99 {p['p99'] / n['p99']:.2f}; "
      f"per-round CPU ratios {', '.join(f'{r:.2f}' for r in ratio)}; panlink p99 {p['p99']:.2f} ms (target < 1.5)")
if "floor" in med:
    f = med["floor"]
    print(f"  floor (bare hyper): {f['rps']:.0f} req/s, {f['cpu_us']:.2f} µs/req, p99 {f['p99']:.2f} ms; "
          f"panlink/floor CPU {p['cpu_us'] / f['cpu_us']:.2f}, requests/s {p['rps'] / f['rps']:.2f}; "
          f"floor/nginx CPU {f['cpu_us'] / n['cpu_us']:.2f}, requests/s {f['rps'] / n['rps']:.2f}")
PY
  ;;
rules)
  start_panlink
  n=${RULE_LINKS:-10000}
  python3 - "$port" "$key" "$n" "$work" <<'PY'
import json, sys, http.client
port, key, total, work = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
rules = [{"if": {"app": ["wechat", "qq"]}, "action": "open_in_browser"},
         {"if": {"os": ["ios"]}, "url": "https://example.com/ios"},
         {"if": {"language": ["ja"]}, "url": "https://example.com/ja"}]
conn = http.client.HTTPConnection("127.0.0.1", port)
for name, extra in (("plain", {}), ("rules", {"rules": rules})):
    codes = []
    for start in range(0, total, 1000):
        items = [dict(url=f"https://example.com/target/{i}?ref=load", **extra)
                 for i in range(start, min(total, start + 1000))]
        conn.request("POST", "/api/v1/links/batch", json.dumps({"items": items}),
                     {"X-API-Key": key, "Content-Type": "application/json"})
        data = json.loads(conn.getresponse().read())["data"]
        assert data["failed"] == 0, data
        codes += [item["data"]["code"] for item in data["items"]]
    open(f"{work}/codes-{name}.txt", "w").write("\n".join(codes) + "\n")
PY
  wrk_headers=(-H "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
    -H "Accept-Language: zh-CN,zh;q=0.9,en;q=0.8")
  first=$(head -1 "$work/codes-rules.txt")
  curl -s -o /dev/null "${wrk_headers[@]}" -w "rules link: %{http_code} -> %{redirect_url}\n" "http://127.0.0.1:$port/$first"
  for set in plain rules; do
    CODES_FILE="$work/codes-$set.txt" taskset -c 1 wrk -t1 -c64 -d3s "${wrk_headers[@]}" -s loadtest/wrk/redirect-warm.lua "http://127.0.0.1:$port" > /dev/null
  done
  results=()
  for round in $(seq "${ROUNDS:-3}"); do
    for set in plain rules; do
      results+=("$(measured "$set" "$port" "$server" "$work/codes-$set.txt")")
    done
  done
  python3 - "$hz" "${results[@]}" <<'PY'
import statistics, sys
hz = int(sys.argv[1])
runs = {}
for line in sys.argv[2:]:
    name, rps, p50, p99, total, bad, ticks = line.split()
    runs.setdefault(name, []).append(dict(rps=float(rps), p99=float(p99), total=int(total), bad=int(bad),
                                          cpu_us=int(ticks) / hz * 1e6 / max(1, int(total))))
print("\nGET /{code}: plain links against links with 3 visitor rules (none matching), 64 connections,"
      f" server on core 0, wrk on core 1; {len(runs['plain'])} interleaved rounds")
print(f"  {'links':6} {'round':>5} {'req/s':>10} {'p99 ms':>8} {'CPU µs/req':>11} {'non-3xx':>8}")
for name, rounds in runs.items():
    for i, r in enumerate(rounds, 1):
        print(f"  {name:6} {i:5d} {r['rps']:10.0f} {r['p99']:8.3f} {r['cpu_us']:11.2f} {r['bad']:8d}")
diffs = [r["cpu_us"] - p["cpu_us"] for p, r in zip(runs["plain"], runs["rules"])]
plain = statistics.median(r["cpu_us"] for r in runs["plain"])
rules = statistics.median(r["cpu_us"] for r in runs["rules"])
print(f"\n  medians: plain {plain:.2f} µs/req, 3 rules {rules:.2f} µs/req; extra CPU per redirect "
      f"{rules - plain:+.2f} µs (target <= 1.00; per round {', '.join(f'{d:+.2f}' for d in diffs)})")
PY
  ;;
create)
  : "${SERVER_WRAP=}" "${WRK_WRAP=}" "${WORKERS:=0}"
  start_panlink
  export API_KEY="$key"
  metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
  sum0=$(metric panlink_lmdb_batch_ops_sum); count0=$(metric panlink_lmdb_batch_ops_count)
  if [ -n "${PROFILE:-}" ]; then
    perf record -e cpu-clock -F 1999 ${PERF_CALLGRAPH:--g} -p "$server" -o "$PROFILE" -- sleep "$((duration + 1))" > /dev/null 2>&1 &
  fi
  before=$(cpu_ticks "$server")
  line=$(wrk_run create "$port" loadtest/wrk/create.lua)
  after=$(cpu_ticks "$server")
  sum1=$(metric panlink_lmdb_batch_ops_sum); count1=$(metric panlink_lmdb_batch_ops_count)
  python3 - "$hz" "$line $((after - before))" "${sum0:-0}" "${count0:-0}" "${sum1:-0}" "${count1:-0}" <<'PY'
import sys
hz = int(sys.argv[1])
name, rps, p50, p99, total, bad, ticks = sys.argv[2].split()
s0, c0, s1, c1 = (float(x) for x in sys.argv[3:7])
ok = int(total) - int(bad)
print("\nPOST /api/v1/links, 64 connections (every 200 follows its LMDB commit; server and wrk unpinned)")
print(f"  creates/s {float(rps) * ok / max(1, int(total)):.0f} (ratio to the 20 000 target: {float(rps) * ok / max(1, int(total)) / 20000:.2f}), "
      f"p50 {float(p50):.2f} ms, p99 {float(p99):.2f} ms, non-2xx {bad}")
print(f"  server CPU per create {int(ticks) / hz * 1e6 / max(1, ok):.1f} µs; writer batches: "
      f"{c1 - c0:.0f} commits, mean {((s1 - s0) / max(1, c1 - c0)):.1f} operations per commit")
PY
  ;;
analytics)
  # Two servers of the same build, one counting every click's dimensions (links.analytics, the
  # default) and one counting clicks only, each with LINKS links; the same browser-like requests
  # (user agent, language, referrer: each click is a human one with every dimension) against
  # each in turn, ROUNDS rounds; then the heap after a pass over every code, before and after the
  # counts are folded into storage.
  # Both fold every COMPACT_MS: the two differ in the analytics setting only.
  EXTRA_ENV="PANLINK_LINKS_CLICK_COMPACT_MS=${COMPACT_MS:-20000} ${EXTRA_ENV:-}" start_panlink
  on_port=$port on_server=$server on_key=$key
  python3 loadtest/create_links.py "$on_port" "$on_key" "$links" "$work/codes-on.txt"
  mkdir -p "$work/plain"
  EXTRA_ENV="PANLINK_LINKS_ANALYTICS=false PANLINK_DATA_DIR=$work/plain PANLINK_LINKS_CLICK_COMPACT_MS=${COMPACT_MS:-20000} ${EXTRA_ENV:-}" start_panlink_at "$work/plain"
  off_port=$port off_server=$server off_key=$key
  python3 loadtest/create_links.py "$off_port" "$off_key" "$links" "$work/codes-off.txt"
  wrk_headers=(-H "User-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.40"
    -H "Accept-Language: zh-CN,zh;q=0.9,en;q=0.8" -H "Referer: https://weibo.com/u/1")
  heap() { curl -s "http://127.0.0.1:$1/metrics" | awk '$1 == "panlink_heap_allocated_bytes" {print $2}'; }
  heap0=$(heap "$on_port")
  for set in on off; do
    if [ "$set" = on ]; then p=$on_port; else p=$off_port; fi
    CODES_FILE="$work/codes-$set.txt" taskset -c 1 wrk -t1 -c64 -d5s "${wrk_headers[@]}" -s loadtest/wrk/redirect-warm.lua "http://127.0.0.1:$p" > /dev/null
  done
  sleep 1
  heap1=$(heap "$on_port")
  results=()
  # Each server's CPU over the whole measured span: the folds (every COMPACT_MS, idle or busy)
  # count whichever window they fall in, so this is the headline figure; the windows give rounds.
  span_on=$(cpu_ticks "$on_server") span_off=$(cpu_ticks "$off_server")
  if [ -n "${PROFILE:-}" ]; then
    # The analytics server over every round (its folds fall anywhere in them).
    perf record -e cpu-clock -F 1999 ${PERF_CALLGRAPH:--g} -p "$on_server" -o "$PROFILE" -- sleep "$((2 * ${ROUNDS:-4} * duration + 4))" > /dev/null 2>&1 &
    perf record -e cpu-clock -F 1999 ${PERF_CALLGRAPH:--g} -p "$off_server" -o "$PROFILE.off" -- sleep "$((2 * ${ROUNDS:-4} * duration + 4))" > /dev/null 2>&1 &
  fi
  for round in $(seq "${ROUNDS:-4}"); do
    # ABBA: the order flips every round, so the VM's drift within a round favours neither side.
    order="off on"
    [ $((round % 2)) -eq 0 ] && order="on off"
    for set in $order; do
      if [ "$set" = on ]; then p=$on_port; watch=$on_server; else p=$off_port; watch=$off_server; fi
      results+=("$(measured "$set" "$p" "$watch" "$work/codes-$set.txt")")
    done
  done
  sleep "$(( ${COMPACT_MS:-20000} / 1000 + 2 ))"
  span_on=$(( $(cpu_ticks "$on_server") - span_on )) span_off=$(( $(cpu_ticks "$off_server") - span_off ))
  heap2=$(heap "$on_port")
  stats=$(curl -s -H "X-API-Key: $on_key" "http://127.0.0.1:$on_port/api/v1/links/$(head -1 "$work/codes-on.txt")/stats?dims=os,app,language,referrer")
  python3 - "$hz" "$links" "${heap0:-0}" "${heap1:-0}" "${heap2:-0}" "$stats" "$span_on" "$span_off" "${results[@]}" <<'PY'
import json, statistics, sys
hz, links = int(sys.argv[1]), int(sys.argv[2])
heap0, heap1, heap2 = (float(x) for x in sys.argv[3:6])
stats = json.loads(sys.argv[6])["data"]
span = {"on": int(sys.argv[7]), "off": int(sys.argv[8])}
runs = {}
for line in sys.argv[9:]:
    name, rps, p50, p99, total, bad, ticks = line.split()
    runs.setdefault(name, []).append(dict(rps=float(rps), p99=float(p99), total=int(total), bad=int(bad),
                                          cpu_us=int(ticks) / hz * 1e6 / max(1, int(total))))
print(f"\nGET /{{code}} as a browser (user agent, language, referrer), {links} codes, 64 connections,"
      f" server on core 0, wrk on core 1; analytics off and on in {len(runs['on'])} interleaved rounds")
print(f"  {'analytics':9} {'round':>5} {'req/s':>10} {'p99 ms':>8} {'CPU µs/req':>11} {'non-3xx':>8}")
for name, rounds in runs.items():
    for i, r in enumerate(rounds, 1):
        print(f"  {name:9} {i:5d} {r['rps']:10.0f} {r['p99']:8.3f} {r['cpu_us']:11.2f} {r['bad']:8d}")
off = statistics.median(r["cpu_us"] for r in runs["off"])
on = statistics.median(r["cpu_us"] for r in runs["on"])
per_round = [o["cpu_us"] / f["cpu_us"] for f, o in zip(runs["off"], runs["on"])]
whole = {name: span[name] / hz * 1e6 / sum(r["total"] for r in rounds) for name, rounds in runs.items()}
print(f"\n  whole run (each server's CPU from the first round to its last fold, per request served):"
      f" counting only {whole['off']:.2f} µs/req, with analytics {whole['on']:.2f} µs/req:"
      f" ratio {whole['on'] / whole['off']:.3f} (target <= 1.10)")
print(f"  windows' medians: counting only {off:.2f} µs/req, with analytics {on:.2f} µs/req: ratio"
      f" {on / off:.3f} (per round {', '.join(f'{r:.3f}' for r in per_round)}; a fold falls in some"
      f" windows only)")
print(f"  heap (allocator's count): +{(heap1 - heap0) / links:.0f} bytes per code after a pass over all"
      f" {links} codes; {(heap2 - heap0) / links:+.0f} bytes per code after the counts were folded into storage")
print(f"  one link's dimensions: {json.dumps(stats['dimensions'], ensure_ascii=False)[:200]}")
PY
  ;;
*) echo "unknown scenario $scenario (redirect | rules | create | analytics)"; exit 2 ;;
esac

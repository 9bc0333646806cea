#!/usr/bin/env bash
# loadtest/run.sh SCENARIO [ITEMS]: starts what the scenario needs (release binary with a temp data
# dir, the mock upstream), runs it for a bounded time, stops everything, prints a summary.
#
# Scenarios:
# Every scenario's links are valid mock links of all nine providers in turn (PROVIDERS, a comma list,
# narrows them).
#
#   engine   mock answers at once; one job of ITEMS links (default 100000);
#            reports ingest time, checks/s end to end (submit → last result on SSE) and server CPU
#            per check. Targets: ingest < 1 s, >= 20000 checks/s.
#   latency  mock adds 50 ms per request, concurrency C=32 per provider, ITEMS links (default 60000);
#            throughput against the ideal (each provider at C/(requests per check × 50 ms), the
#            job as long as its slowest provider's share). Target: >= 95 % of ideal. The mock holds
#            each request the set latency to within a wake-up (src/mock/hold.rs); the summary
#            shows the mean hold it measured, so the ideal's premise can be read off the run.
#   urgent   mock adds 50 ms per request, C=32, a backlog of ITEMS links (default 100000); then
#            100 times: POST /jobs/{id}/urgent for one pending link and time until its result is
#            on SSE. Target: p99 within one upstream round trip (2 requests × 50 ms)
#            plus 50 ms = 150 ms.
#   fanout   one job of ITEMS links (default 1000; mock +LATENCY_MS, default 300 ms, C=1, so it
#            runs about 40 s) and SUBSCRIBERS SSE subscribers (default 10000) that connect while it
#            runs (all within about 10 s on a quiet machine; on a busy one the client is slower:
#            raise LATENCY_MS so that the job outlasts the connecting) and follow it live; every
#            subscriber must receive every event and `done`.
#            Prints the server's heap per subscriber (allocator's count, peak while all are
#            connected and the job runs; target <= 64 KiB).
#   memory   the mock never answers in time; one job of ITEMS links (default 100000) queued;
#            growth of the server's heap (allocator's count; target <= 256 bytes per pending link
#            at ITEMS=1000000) and of its anonymous RSS per pending link; LMDB's file-backed pages
#            are not counted. RSS is an upper bound: allocator slack from parsing the request.
#   cost     mock answers at once; for each provider alone, ITEMS links (default 20000): upstream
#            requests per check (from the mock's counters) and server CPU per check.
#   engine also reads the finished job's stream again from storage (replay); target ≥ 100 000
#            events/s; and exports its results as CSV (GET /jobs/{id}/results?format=csv) while
#            sampling the server's heap: the export streams from storage, so the heap must not
#            grow with the job (the growth is printed beside the CSV's size).
#   monitors-memory  the mock never answers in time; 10 monitors of ITEMS links each (default
#            100000: 1 000 000 monitored links); the schedule's heap per monitored link (target
#            <= 64 bytes) and the server's anonymous RSS growth per link.
#   monitors-lane  mock adds 50 ms per request, C=32; a normal job of ITEMS links (default 20000)
#            timed alone and beside a monitor of 100 000 due links, twice each, alternately.
#            Target: beside / alone <= 1.05.
#   k6-redirect | k6-create | k6-security | k6-jobs | k6-jobs-large | k6-urgent: the k6 scenarios
#            (loadtest/k6.sh), each failing on a breached threshold.
#   shortlinks-redirect | shortlinks-create: the wrk runs (loadtest/shortlinks.sh); redirect
#            against nginx as the reference in the same invocation, with the ratios.
set -euo pipefail
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cd "$(dirname "$0")/.."
scenario=${1:-engine}
items=${2:-}
case "$scenario" in
  k6-*) exec loadtest/k6.sh "${scenario#k6-}" ;;
  shortlinks-*) exec loadtest/shortlinks.sh "${scenario#shortlinks-}" ;;
esac
all_providers=quark,uc,baidu,tianyi,pan123,pan115,aliyun,xunlei,cmcc,lanzou,pikpak,ctfile,weiyun,onedrive,guangya
providers=${PROVIDERS:-$all_providers}
# PANLINK_BIN: another build of the server to measure (e.g. one with frame pointers, for perf);
# MOCK_BIN: another build for the mock (A/B runs: which side a change helps); SERVER_ENV: more
# settings for the server ("PANLINK_…=… …"). Defaults: the release build, made here, for both.
bin=${PANLINK_BIN:-target/release/panlink}
[ -n "${PANLINK_BIN:-}" ] || cargo build --release --quiet
# shellcheck source=../scripts/procs.sh
. scripts/procs.sh
procs_init

mode=throughput
case "$scenario" in
  engine)  latency=0;  concurrency=256; items=${items:-100000} ;;
  latency) latency=50; concurrency=32;  items=${items:-60000} ;;
  urgent)  latency=50; concurrency=32;  items=${items:-100000}; mode=urgent ;;
  fanout)  latency=${LATENCY_MS:-300}; concurrency=1; items=${items:-1000}; mode=fanout ;;
  memory)  latency=600000; concurrency=1; items=${items:-100000}; mode=memory ;;
  cost)    latency=0;  concurrency=256; items=${items:-20000};  mode=cost ;;
  monitors-memory) latency=600000; concurrency=4; items=${items:-100000}; mode=monitors-memory ;;
  monitors-lane)   latency=50; concurrency=32; items=${items:-20000}; mode=monitors-lane ;;
  *) echo "unknown scenario $scenario (engine | latency | urgent | fanout | memory | cost)"; exit 2 ;;
esac

start_mock "${MOCK_BIN:-$bin}" "$latency"
start_server "$bin" ${SERVER_ENV:-} PANLINK_CHECKER_CONCURRENCY="$concurrency" PANLINK_CHECKER_RATE_PER_S=1000000 \
  PANLINK_CHECKER_POOL_MAX_IDLE_PER_HOST=512 PANLINK_JOBS_MAX_ITEMS=1000000 PANLINK_JOBS_MAX_BODY_BYTES=268435456 \
  PANLINK_JOBS_FREE_MAX_STORED_ITEMS=1000000000 PANLINK_JOBS_MAX_STREAMS_PER_KEY=100000 \
  PANLINK_MONITORS_FREE_MAX_LINKS_PER_KEY=10000000 PANLINK_STORAGE_MAP_SIZE_MB=16384
key=$(PANLINK_DATA_DIR="$work/data" "$bin" keys create --name loadtest)
curl -s -X PATCH "http://127.0.0.1:$port/admin/api/keys/$(PANLINK_DATA_DIR="$work/data" "$bin" keys list | awk 'NR==2{print $1}')" \
  -H "Authorization: Bearer loadtest-admin-token-0000" -H 'Content-Type: application/json' \
  -d '{"rate_per_s": 1000000, "burst": 1000000}' > /dev/null

# The mock's own counters: requests by provider, TLS connections, mean time it held a request.
mock_stats() {
  curl -s --cacert "$work/ca.pem" --resolve "pan.baidu.com:${mock##*:}:127.0.0.1" "https://pan.baidu.com:${mock##*:}/__mock/stats"
}
case "$mode" in
  monitors-memory)
    result=$(timeout 1200 python3 loadtest/monitors.py --port "$port" --key "$key" --pid "$server" --mode memory --monitors 10 --per "$items")
    echo "$result"
    python3 - "$result" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f'\nmonitors-memory:\n  monitored links            {r["links"]}\n  created in                 {r["create_s"]} s'
      f'\n  schedule entries           {r["scheduled_entries"]}\n  schedule heap per link     {r["schedule_bytes_per_link"]} bytes (the heaps\' capacity)'
      f'\n  heap growth per link       {r["heap_bytes_per_link"]} bytes (allocator\'s count; target <= 64)'
      f'\n  RSS growth per link        {r["rss_bytes_per_link"]} bytes (pages the allocator keeps included)')
PY
    exit 0 ;;
  monitors-lane)
    result=$(timeout 1200 python3 loadtest/monitors.py --port "$port" --key "$key" --pid "$server" --mode lane --items "$items" --per 100000)
    echo "$result"
    python3 - "$result" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f'\nmonitors-lane:\n  job alone (s)               {r["alone_s"]}\n  job beside the monitor (s)  {r["beside_monitors_s"]}'
      f'\n  monitor checks meanwhile    {r["monitor_checks_recorded"]}\n  ratio beside / alone        {r["ratio"]} (target <= 1.05)')
PY
    exit 0 ;;
esac
if [ "$mode" = cost ]; then
  requests() { mock_stats | python3 -c "import json,sys; print(json.load(sys.stdin)['requests'].get('$1', 0))"; }
  printf '\ncost per check (%s links each, mock answering at once):\n' "$items"
  printf '  %-8s %10s %14s %10s\n' provider requests "CPU µs/check" checks/s
  for p in ${providers//,/ }; do
    before=$(requests "$p")
    one=$(timeout 600 python3 loadtest/engine.py --port "$port" --key "$key" --items "$items" --pid "$server" --tag "cost$p" --mode throughput --providers "$p")
    after=$(requests "$p")
    python3 - "$p" "$one" "$before" "$after" <<'PY'
import json, sys
p, r, before, after = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f'  {p:<8} {(after - before) / r["items"]:>10.2f} {r["server_cpu_us_per_check"]:>14} {r["checks_per_s"]:>10}')
PY
  done
  exit 0
fi

result=$(timeout 900 python3 loadtest/engine.py --port "$port" --key "$key" --items "$items" --pid "$server" --tag "$scenario" --mode "$mode" --providers "$providers" --subscribers "${SUBSCRIBERS:-10000}")
echo "$result"
# Where the time goes in storage: mean group-commit latency and batch size over the run.
curl -s "http://127.0.0.1:$port/metrics" | python3 -c '
import sys
m = {}
for line in sys.stdin:
    if line.startswith(("panlink_lmdb_commit_seconds_sum", "panlink_lmdb_commit_seconds_count", "panlink_lmdb_batch_ops_sum")):
        name, value = line.split()[0], float(line.split()[1])
        m[name] = value
count = m.get("panlink_lmdb_commit_seconds_count", 0)
if count:
    mean_ms = m.get("panlink_lmdb_commit_seconds_sum", 0) / count * 1000
    batch = m.get("panlink_lmdb_batch_ops_sum", 0) / count
    print("storage: %d commits, mean %.2f ms, mean batch %.1f operations" % (count, mean_ms, batch))
'
python3 - "$scenario" "$result" "$concurrency" "$latency" "$providers" "$(mock_stats)" <<'PY'
import json, sys
scenario, result, c, latency = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
providers = sys.argv[5].split(",")
mock = json.loads(sys.argv[6])
if scenario == "memory":
    print(f'\nmemory:\n  pending links  {result["items"]}\n  RSS growth     {result["rss_after_kib"] - result["rss_before_kib"]} KiB\n  per pending link  {result["bytes_per_pending_item"]} bytes of RSS (1 000 000 links ≈ {round(result["bytes_per_pending_item"] * 1e6 / 2**20)} MiB)')
    print(f'  per pending link  {result["settled_rss_bytes_per_pending_item"]} bytes of RSS 12 s later (the allocator has returned the request\'s pages)')
    print(f'  per pending link  {result["heap_bytes_per_pending_item"]} bytes of heap (allocator\'s count; target <= 256 at 1 000 000: ratio {result["heap_bytes_per_pending_item"] / 256:.2f})')
    sys.exit(0)
if scenario == "fanout":
    rows = [("links", result["items"]), ("subscribers", result["subscribers"]),
            ("subscribers that got every event and done", result["subscribers_complete"]),
            ("events delivered", result["events_delivered"]), ("time", f'{result["total_s"]} s'),
            ("events/s delivered", result["events_per_s"]),
            ("all subscribers connected after", f'{result["all_connected_s"]} s'),
            ("streams opened again (Last-Event-ID)", result["reconnects"]),
            ("subscriber errors", result["subscriber_errors"] or "none"),
            ("heap per subscriber (peak)", f'{result["heap_per_subscriber_kib"]} KiB ({result["heap_samples_live"]} samples while all followed the job live)'),
            ("heap ratio to target 64 KiB", round(result["heap_per_subscriber_kib"] / 64, 3)),
            ("ratio complete (target 1.0)", round(result["subscribers_complete"] / result["subscribers"], 3))]
    width = max(len(r[0]) for r in rows)
    print(f"\n{scenario}:")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    sys.exit(0)
if scenario == "urgent":
    rows = [("backlog links", result["items"]), ("hurries timed", result["tries"]),
            ("results streamed before the end", result["results_before_end"]),
            ("urgent → result p50", f'{result["urgent_p50_ms"]} ms'),
            ("urgent → result p99", f'{result["urgent_p99_ms"]} ms'),
            ("urgent → result max", f'{result["urgent_max_ms"]} ms'),
            ("p99 ratio to target 150 ms", round(result["urgent_p99_ms"] / 150, 2))]
    width = max(len(r[0]) for r in rows)
    print(f"\n{scenario}:")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    sys.exit(0)
rows = [("links", result["items"]), ("ingest (POST /jobs)", f'{result["ingest_s"]} s'),
        ("submit → last result", f'{result["total_s"]} s'), ("checks/s", result["checks_per_s"]),
        ("events / gaps / duplicates", f'{result["events"]} / {result["gaps"]} / {result["duplicates"]}'),
        ("server CPU per check", f'{result["server_cpu_us_per_check"]} µs')]
if scenario == "engine":
    rows.append(("ratio to target 20000 checks/s", round(result["checks_per_s"] / 20000, 2)))
    rows.append(("replay from storage", f'{result["replay_events"]} events, {result["replay_events_per_s"]} events/s'))
    rows.append(("replay ratio to target 100000 events/s", round(result["replay_events_per_s"] / 100000, 2)))
    rows.append(("export as CSV", f'{result["export_rows"]} rows, {result["export_mib"]} MiB in {result["export_s"]} s'))
    rows.append(("server heap growth during the export", f'{result["export_rss_growth_kib"]} KiB ({round(result["export_rss_growth_kib"] / 1024 / max(result["export_mib"], 0.1), 3)} of the CSV size)'))
    rows.append(("ingest ratio to target 1 s", round(result["ingest_s"] / 1.0, 2)))
else:
    # Each provider works in parallel at C checks per (requests per check × latency): quark and
    # uc ask token + detail, baidu shorturlinfo + list (its cookie warm-up happens once): 2
    # requests; the others 1 (xunlei's captcha token is fetched once and shared). The links are
    # shared out in turn: the job takes as long as its slowest provider's share.
    n = result["items"]
    per_check = {"quark": 2, "uc": 2, "baidu": 2}
    share = n / len(providers)
    ideal = n / max(share * per_check.get(p, 1) * latency / 1000 / c for p in providers)
    # What the mock really added (src/mock/hold.rs): the ideal assumes exactly `latency`.
    rows.append(("mock's mean hold per request", f'{mock["mean_hold_us"] / 1000:.2f} ms (set: {latency} ms)'))
    rows.append(("mock's TLS connections", mock["tls_connections"]))
    rows.append((f"ideal checks/s ({len(providers)} providers)", round(ideal)))
    rows.append(("ratio to ideal (target ≥ 0.95)", round(result["checks_per_s"] / ideal, 3)))
width = max(len(r[0]) for r in rows)
print(f"\n{scenario}:")
for name, value in rows:
    print(f"  {name:<{width}}  {value}")
PY

#!/usr/bin/env python3
"""Monitor load: the scheduler's memory per monitored link, and what the background lane costs a
normal job running beside it.

Standard library only. Talks to a running panlink (started by run.sh with the mock upstream).

  --mode memory  creates MONITORS monitors of PER links each (valid mock links of every provider
                 in turn), waits until the scheduler holds them all, and prints the schedule's heap
                 (from /metrics: entries and bytes) per link, and the growth of the server's
                 anonymous RSS per link (an upper bound: allocator slack from the creates is in it).
  --mode lane    times a normal job of ITEMS links alone and beside monitors whose links are all
                 due, alternately (alone, beside, alone, beside), and prints the ratio of the mean
                 times. Target: beside / alone <= 1.05.
Prints one JSON line.
"""
import argparse
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine import URL_SHAPES, rss_kib  # noqa: E402


def call(args, method, path, body=None, timeout=600):
    conn = http.client.HTTPConnection(args.host, args.port, timeout=timeout)
    headers = {"X-API-Key": args.key}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    text = resp.read()
    conn.close()
    if resp.status >= 300:
        raise SystemExit(f"{method} {path}: {resp.status} {text[:300]!r}")
    return json.loads(text) if text else None


def metrics(args):
    conn = http.client.HTTPConnection(args.host, args.port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    out = {}
    for line in text.splitlines():
        if line.startswith(("panlink_monitor_", "panlink_heap_allocated_bytes")):
            name, value = line.split()[0], float(line.split()[1])
            out[name] = value
    return out


def urls(count, salt):
    providers = list(URL_SHAPES)
    return [URL_SHAPES[providers[n % len(providers)]].format(id=f"ok{n:08d}{salt}")
            for n in range(count)]


def create_monitors(args, count, per, salt, interval=86400):
    ids = []
    for m in range(count):
        made = call(args, "POST", "/api/v1/monitors",
                    {"name": f"load {m}", "urls": urls(per, f"{salt}m{m}"), "interval_s": interval})
        ids.append(made["data"]["id"])
    return ids


def memory(args):
    before = rss_kib(args.pid)
    heap_before = metrics(args).get("panlink_heap_allocated_bytes", 0)
    started = time.monotonic()
    create_monitors(args, args.monitors, args.per, "mem")
    created_s = time.monotonic() - started
    total = args.monitors * args.per
    deadline = time.monotonic() + 600
    while True:
        m = metrics(args)
        held = m.get("panlink_monitor_scheduled_links", 0) + m.get("panlink_monitor_checks_in_flight", 0)
        if held >= total * 0.99 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    # The allocator hands freed pages back after its decay time (jemalloc: 10 s): what stays is
    # what the server holds.
    time.sleep(15)
    m = metrics(args)
    after = rss_kib(args.pid)
    entries = m.get("panlink_monitor_scheduled_links", 0)
    heap = m.get("panlink_monitor_schedule_bytes", 0)
    print(json.dumps({
        "links": total,
        "create_s": round(created_s, 1),
        "scheduled_entries": int(entries),
        "schedule_heap_bytes": int(heap),
        "schedule_bytes_per_link": round(heap / max(entries, 1), 1),
        "heap_growth_bytes": int(m.get("panlink_heap_allocated_bytes", 0) - heap_before),
        "heap_bytes_per_link": round((m.get("panlink_heap_allocated_bytes", 0) - heap_before) / total, 1),
        "rss_growth_kib": after - before,
        "rss_bytes_per_link": round((after - before) * 1024 / total, 1),
    }), flush=True)


def run_job(args, salt):
    """Submits a job of ITEMS fresh links; answers seconds from submit to its end."""
    started = time.monotonic()
    job = call(args, "POST", "/jobs", {"items": urls(args.items, f"job{salt}")})["job_id"]
    while True:
        status = call(args, "GET", f"/jobs/{job}")
        if status["status"] == "done":
            return time.monotonic() - started
        time.sleep(0.05)


def lane(args):
    monitors = create_monitors(args, 1, args.per, "lane")
    deadline = time.monotonic() + 60
    while metrics(args).get("panlink_monitor_checks_in_flight", 0) == 0:
        if time.monotonic() > deadline:
            raise SystemExit("the monitor's checks never started")
        time.sleep(0.2)

    def pause(paused):
        for monitor in monitors:
            call(args, "PATCH", f"/api/v1/monitors/{monitor}", {"paused": paused})
        # Checks already handed to the engine finish; wait for them to drain, or to fill again.
        limit = time.monotonic() + 60
        while time.monotonic() < limit:
            in_flight = metrics(args).get("panlink_monitor_checks_in_flight", 0)
            if (in_flight == 0) == paused:
                return
            time.sleep(0.1)

    alone, beside = [], []
    for n in range(args.rounds):
        pause(True)
        alone.append(run_job(args, f"a{n}"))
        pause(False)
        beside.append(run_job(args, f"b{n}"))
    checked = metrics(args).get("panlink_monitor_checks_recorded", 0)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    print(json.dumps({
        "job_items": args.items,
        "monitor_links": args.per,
        "alone_s": [round(x, 3) for x in alone],
        "beside_monitors_s": [round(x, 3) for x in beside],
        "monitor_checks_recorded": int(checked),
        "ratio": round(mean(beside) / mean(alone), 3),
    }), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--mode", choices=["memory", "lane"], required=True)
    ap.add_argument("--monitors", type=int, default=10)
    ap.add_argument("--per", type=int, default=100000)
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    memory(args) if args.mode == "memory" else lane(args)


if __name__ == "__main__":
    main()

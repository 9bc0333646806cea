#!/usr/bin/env python3
"""Checker engine load: submit one job of N links, consume its SSE stream, report throughput.

Standard library only. Talks to a running panlink (started by run.sh with the mock upstream).
Prints one JSON line with: ingest seconds (POST /jobs answer), seconds from submit to the last
result on SSE, checks/s, events received, duplicates/gaps found, and the server's CPU time per
check (utime+stime from /proc/<pid>/stat, before and after).
"""
import argparse
import http.client
import json
import os
import random
import re
import sys
import threading
import time


# One share URL shape per provider; `{id}` is a mock `ok…` id (the mock answers "valid").
URL_SHAPES = {
    "quark": "https://pan.quark.cn/s/{id}",
    "uc": "https://drive.uc.cn/s/{id}",
    "baidu": "https://pan.baidu.com/s/1{id}",
    "tianyi": "https://cloud.189.cn/t/{id}",
    "pan123": "https://www.123684.com/s/{id}",
    "pan115": "https://115.com/s/{id}",
    "aliyun": "https://www.alipan.com/s/{id}",
    "xunlei": "https://pan.xunlei.com/s/{id}",
    "cmcc": "https://caiyun.139.com/w/i/{id}",
    "lanzou": "https://wwi.lanzoux.com/{id}",
    "pikpak": "https://mypikpak.com/s/{id}",
    "ctfile": "https://url89.ctfile.com/f/55050874-1246660795-{id}",
    "weiyun": "https://share.weiyun.com/{id}",
    "onedrive": "https://1drv.ms/f/c/0dbf39bbc36d89/{id}",
    "guangya": "https://www.guangyapan.com/s/{id}",
}


def links(args, salt):
    """`args.items` distinct valid links, the providers of `args.providers` in turn (so neither
    the cache nor de-duplication helps)."""
    providers = args.providers.split(",")
    return [URL_SHAPES[providers[n % len(providers)]].format(id=f"ok{n:08d}{salt}{args.tag}")
            for n in range(args.items)]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--items", type=int, default=100000)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--tag", default="run")
    ap.add_argument("--mode", choices=["throughput", "urgent", "fanout", "memory"], default="throughput")
    ap.add_argument("--subscribers", type=int, default=10000)
    ap.add_argument("--tries", type=int, default=100)
    ap.add_argument("--providers", default=",".join(URL_SHAPES), help="comma-separated, in turn")
    args = ap.parse_args()
    if args.mode == "urgent":
        return urgent(args)
    if args.mode == "fanout":
        return fanout(args)
    if args.mode == "memory":
        return memory(args)

    items = links(args, "")
    body = json.dumps({"items": items})
    headers = {"X-API-Key": args.key, "Content-Type": "application/json"}

    cpu_before = cpu_seconds(args.pid)
    started = time.monotonic()
    conn = http.client.HTTPConnection(args.host, args.port, timeout=600)
    conn.request("POST", "/jobs", body=body, headers=headers)
    resp = conn.getresponse()
    created = json.loads(resp.read())
    ingest = time.monotonic() - started
    if resp.status != 201:
        print(json.dumps({"error": created}), flush=True)
        sys.exit(1)
    job = created["job_id"]

    stream = http.client.HTTPConnection(args.host, args.port, timeout=600)
    stream.request("GET", f"/jobs/{job}/events", headers={"X-API-Key": args.key})
    sresp = stream.getresponse()
    seen = set()
    last_id = 0
    gaps = 0
    duplicates = 0
    # Read in blocks and scanned with one regex, for the same reason as `replay`: the client must
    # not be what limits the figure. A line split between two blocks waits for the next one.
    ids = re.compile(rb"^id: (\d+)$", re.M)
    pending = b""
    done = False
    while not done:
        block = sresp.read1(65536)
        if not block:
            break
        data = pending + block
        cut = data.rfind(b"\n") + 1
        data, pending = data[:cut], data[cut:]
        for match in ids.finditer(data):
            event_id = int(match.group(1))
            if event_id in seen:
                duplicates += 1
            elif event_id != last_id + 1:
                gaps += 1
            seen.add(event_id)
            last_id = max(last_id, event_id)
        done = b"\nevent: done\n" in data or data.startswith(b"event: done\n")
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(args.pid) - cpu_before
    replay_s, replayed = replay(args, job)
    export_s, export_rows, export_bytes, export_rss = export_csv(args, job)
    print(json.dumps({
        "replay_events": replayed,
        "replay_events_per_s": round(replayed / replay_s),
        "export_rows": export_rows,
        "export_mib": round(export_bytes / 2**20, 1),
        "export_s": round(export_s, 3),
        "export_rss_growth_kib": export_rss,
        "items": args.items,
        "ingest_s": round(ingest, 3),
        "total_s": round(elapsed, 3),
        "checks_per_s": round(args.items / elapsed),
        "events": len(seen),
        "gaps": gaps,
        "duplicates": duplicates,
        "server_cpu_s": round(cpu, 2),
        "server_cpu_us_per_check": round(cpu / args.items * 1e6, 1),
    }), flush=True)


def replay(args, job):
    """Reads the finished job's whole stream again (served from LMDB): (seconds, events)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(args.host, args.port, timeout=600)
    conn.request("GET", f"/jobs/{job}/events", headers={"X-API-Key": args.key})
    resp = conn.getresponse()
    # Counted in 64 KiB blocks, not line by line: a Python readline per SSE line tops out near
    # the target itself, so the client, not the server, would be measured. Every `id: ` line
    # follows a newline (the stream opens with `retry:`); the 4 bytes carried over let a match
    # split between two blocks be found once.
    count = 0
    carry = b""
    while True:
        block = resp.read1(65536)
        if not block:
            break
        data = carry + block
        count += data.count(b"\nid: ")
        if b"\nevent: done" in data:
            break
        carry = data[-4:]
    return time.monotonic() - started, count


def export_csv(args, job):
    """Downloads the finished job's results as CSV while sampling the server's heap (RssAnon)
    every 20 ms: (seconds, data rows, bytes, peak RSS growth in KiB over the RSS before)."""
    before = rss_kib(args.pid)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(args.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    conn = http.client.HTTPConnection(args.host, args.port, timeout=600)
    conn.request("GET", f"/jobs/{job}/results?format=csv", headers={"X-API-Key": args.key})
    resp = conn.getresponse()
    size = 0
    lines = 0
    while True:
        block = resp.read1(65536)
        if not block:
            break
        size += len(block)
        # Rows end in CRLF; a block can end between the two, so count the LFs.
        lines += block.count(b"\n")
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    return elapsed, lines - 1, size, peak[0] - before


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def heap_bytes(args):
    """The server's heap as its allocator counts it (`panlink_heap_allocated_bytes`)."""
    conn = http.client.HTTPConnection(args.host, args.port, timeout=60)
    conn.request("GET", "/metrics")
    for line in conn.getresponse().read().decode().splitlines():
        if line.startswith("panlink_heap_allocated_bytes "):
            return float(line.split()[1])
    return float("nan")


def memory(args):
    """Heap and RSS growth per queued link, with a mock too slow for any check to finish."""
    headers = {"X-API-Key": args.key, "Content-Type": "application/json"}
    conn = http.client.HTTPConnection(args.host, args.port, timeout=600)
    # A small job first, so one-time allocations (pools, lanes) are not counted per link.
    conn.request("POST", "/jobs", body=json.dumps({"items": [f"https://pan.quark.cn/s/okwarm{args.tag}"]}), headers=headers)
    conn.getresponse().read()
    time.sleep(1)
    before = rss_kib(args.pid)
    heap_before = heap_bytes(args)
    items = links(args, "m")
    conn.request("POST", "/jobs", body=json.dumps({"items": items}), headers=headers)
    status = conn.getresponse().status
    time.sleep(2)
    after = rss_kib(args.pid)
    heap_after = heap_bytes(args)
    # The allocator returns the request's freed pages to the system after its decay time (10 s).
    time.sleep(12)
    settled = rss_kib(args.pid)
    print(json.dumps({
        "items": args.items,
        "status": status,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "bytes_per_pending_item": round((after - before) * 1024 / args.items, 1),
        "heap_bytes_per_pending_item": round((heap_after - heap_before) / args.items, 1),
        "settled_rss_bytes_per_pending_item": round((settled - before) * 1024 / args.items, 1),
    }), flush=True)


def fanout(args):
    """One job, many subscribers: every subscriber must receive every event, then `done`; and the
    server's heap per subscriber (its allocator's count, sampled while they are all connected)."""
    import asyncio
    import urllib.request

    items = links(args, "f")
    headers = {"X-API-Key": args.key, "Content-Type": "application/json"}

    def heap():
        with urllib.request.urlopen(f"http://{args.host}:{args.port}/metrics", timeout=30) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith("panlink_heap_allocated_bytes "):
                    return float(line.split()[1])
        return float("nan")

    async def run():
        loop = asyncio.get_running_loop()
        received = [0] * args.subscribers
        complete = [False] * args.subscribers
        attempts = [0] * args.subscribers
        connected = [0]
        conn = http.client.HTTPConnection(args.host, args.port, timeout=600)
        heap_before = await loop.run_in_executor(None, heap)
        started = time.monotonic()
        conn.request("POST", "/jobs", body=json.dumps({"items": items}), headers=headers)
        job = json.loads(conn.getresponse().read())["job_id"]
        request = f"GET /jobs/{job}/events HTTP/1.1\r\nHost: x\r\nX-API-Key: {args.key}\r\n\r\n".encode()

        async def subscriber(i):
            # Like a browser's EventSource: a stream that ends before `done` is opened again with
            # the last id seen as Last-Event-ID (the server replays what came after it). On a busy
            # machine this client can fall more than the server's first-byte deadline behind
            # between connecting and sending its request; the server then closes the connection.
            last_id = None
            while True:
                reader, writer = await asyncio.open_connection(args.host, args.port, limit=1 << 20)
                resume = b"" if last_id is None else b"Last-Event-ID: " + last_id + b"\r\n"
                writer.write(request[:-2] + resume + b"\r\n")
                await writer.drain()
                if attempts[i] == 0:
                    connected[0] += 1
                tail = b""
                while True:
                    block = await reader.read(65536)
                    if not block:
                        break
                    data = tail + block
                    # Counted per line start; a line cut between two blocks is finished by the next.
                    cut = data.rfind(b"\n") + 1
                    whole, tail = data[:cut], data[cut:]
                    received[i] += whole.count(b"\nid: ") + whole.startswith(b"id: ")
                    at = whole.rfind(b"\nid: ") + 1 or (0 if whole.startswith(b"id: ") else -1)
                    if at >= 0:
                        last_id = whole[at + 4:whole.index(b"\n", at)]
                    if b"\nevent: done\n" in whole or whole.startswith(b"event: done\n"):
                        complete[i] = True
                        break
                writer.close()
                if complete[i] or attempts[i] >= 3:
                    return
                attempts[i] += 1

        # Connections open a few hundred at a time (the listen backlog), all while the job runs.
        tasks = []
        for i in range(args.subscribers):
            tasks.append(asyncio.create_task(subscriber(i)))
            if i % 200 == 199:
                await asyncio.sleep(0.01)
        # The heap with every subscriber connected and following: its peak over the job.
        peak = heap_before
        all_connected_s = None
        samples = 0
        while not all(t.done() for t in tasks):
            if connected[0] == args.subscribers and all_connected_s is None:
                all_connected_s = time.monotonic() - started
            if connected[0] == args.subscribers and not any(complete):
                peak = max(peak, await loop.run_in_executor(None, heap))
                samples += 1
            await asyncio.sleep(0.2)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        errors = {}
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                name = f"{type(outcome).__name__}: {outcome}"[:80]
                errors[name] = errors.get(name, 0) + 1
        elapsed = time.monotonic() - started
        return {
            "items": args.items,
            "subscribers": args.subscribers,
            "subscribers_complete": sum(1 for i in range(args.subscribers)
                                        if complete[i] and received[i] == args.items),
            "events_delivered": sum(received),
            "total_s": round(elapsed, 2),
            "all_connected_s": round(all_connected_s or float("nan"), 2),
            "events_per_s": round(sum(received) / elapsed),
            "heap_per_subscriber_kib": round((peak - heap_before) / args.subscribers / 1024, 2),
            # Heap samples taken with every subscriber connected before the job's end (0: the
            # job ended first, and the figure means nothing).
            "heap_samples_live": samples,
            "subscriber_errors": errors,
            # Streams opened again after the server closed one before `done`.
            "reconnects": sum(attempts),
        }

    print(json.dumps(asyncio.run(run())), flush=True)


def urgent(args):
    """A backlog of N links, then `tries` hurries: time from POST /urgent to that URL's result."""
    items = links(args, "u")
    headers = {"X-API-Key": args.key, "Content-Type": "application/json"}
    conn = http.client.HTTPConnection(args.host, args.port, timeout=600)
    conn.request("POST", "/jobs", body=json.dumps({"items": items}), headers=headers)
    job = json.loads(conn.getresponse().read())["job_id"]
    arrived = {}
    seen = [0]
    lock = threading.Condition()

    def reader():
        stream = http.client.HTTPConnection(args.host, args.port, timeout=600)
        stream.request("GET", f"/jobs/{job}/events", headers={"X-API-Key": args.key})
        resp = stream.getresponse()
        while True:
            line = resp.readline()
            if not line or line.startswith(b"event: done"):
                return
            if line.startswith(b"data: "):
                url = json.loads(line[6:])["url"]
                with lock:
                    arrived[url] = time.monotonic()
                    seen[0] += 1
                    lock.notify_all()

    threading.Thread(target=reader, daemon=True).start()
    with lock:
        lock.wait_for(lambda: seen[0] >= 200, timeout=60)
    latencies = []
    backlog = 0
    candidates = list(range(args.items // 2, args.items))
    random.seed(7)
    random.shuffle(candidates)
    for index in candidates[: args.tries]:
        url = items[index]
        with lock:
            if url in arrived:
                continue
        t0 = time.monotonic()
        conn.request("POST", f"/jobs/{job}/urgent", body=json.dumps({"urls": [url]}), headers=headers)
        counts = json.loads(conn.getresponse().read())
        if counts.get("promoted") != 1:
            continue
        with lock:
            lock.wait_for(lambda: url in arrived, timeout=10)
            if url in arrived:
                latencies.append((arrived[url] - t0) * 1000)
        backlog = seen[0]
    conn.request("DELETE", f"/jobs/{job}", headers=headers)
    conn.getresponse().read()
    if not latencies:
        print(json.dumps({"error": "no urgent result observed"}), flush=True)
        sys.exit(1)
    latencies.sort()
    pick = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1)
    print(json.dumps({
        "items": args.items,
        "tries": len(latencies),
        "results_before_end": backlog,
        "urgent_p50_ms": pick(0.5),
        "urgent_p99_ms": pick(0.99),
        "urgent_max_ms": round(latencies[-1], 1),
    }), flush=True)


if __name__ == "__main__":
    main()

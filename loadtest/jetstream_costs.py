"""What JetStream costs on this machine, measured against a three-server cluster on loopback
(started by loadtest/jetstream.sh). Prints one line per figure; docs/cluster.md keeps them.

Each phase reads the three servers' CPU (utime + stime from /proc) before and after, so a figure
per operation is the cluster's whole CPU for it. The client is this one asyncio process on the
same two cores: its rates are a floor, the servers' CPU per operation is what the model uses.
"""

import argparse
import asyncio
import os
import sys
import time

import nats
from nats.js.api import KeyValueConfig, RetentionPolicy, StreamConfig
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError

HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / HZ


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def ready(urls):
    """Connections to each server once the cluster has a JetStream leader."""
    deadline = time.monotonic() + 30
    while True:
        try:
            conns = [await nats.connect(servers=[u], connect_timeout=2) for u in urls]
            js = conns[0].jetstream()
            kv = await js.create_key_value(KeyValueConfig(bucket="probe", replicas=3))
            await kv.put("probe", b"1")
            return conns
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def create_latency(conn, pids, replicas, n):
    js = conn.jetstream()
    kv = await js.create_key_value(KeyValueConfig(bucket=f"links_r{replicas}", replicas=replicas))
    value = b"x" * 300  # about a link record's size
    lat = []
    cpu0 = cpu_seconds(pids)
    for i in range(n):
        t = time.perf_counter()
        await kv.create(f"c{i}", value)
        lat.append((time.perf_counter() - t) * 1000)
    cpu = cpu_seconds(pids) - cpu0
    print(f"kv create R{replicas}, one at a time ({n}): p50 {pct(lat, 0.5):.2f} ms, "
          f"p99 {pct(lat, 0.99):.2f} ms; servers' CPU per create {cpu / n * 1e6:.0f} µs")


async def concurrent_creates(conn, pids, n, window):
    js = conn.jetstream()
    kv = await js.create_key_value(KeyValueConfig(bucket="links_conc", replicas=3))
    value = b"x" * 300
    cpu0, t0 = cpu_seconds(pids), time.perf_counter()
    for start in range(0, n, window):
        await asyncio.gather(*(kv.create(f"k{i}", value) for i in range(start, min(n, start + window))))
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds(pids) - cpu0
    print(f"kv create R3, {window} in flight ({n}): {n / elapsed:.0f} creates/s; "
          f"servers' CPU per create {cpu / n * 1e6:.0f} µs")


async def propagation(conns, n):
    """A put through server 1, seen by a watch through server 3."""
    kv_a = await conns[0].jetstream().create_key_value(KeyValueConfig(bucket="links_watch", replicas=3))
    kv_c = await conns[2].jetstream().key_value("links_watch")
    watcher = await kv_c.watchall()
    # The initial "no values" marker.
    await watcher.updates(timeout=5)
    sent = {}
    lat = []
    for i in range(n):
        key = f"w{i}"
        sent[key] = time.perf_counter()
        await kv_a.put(key, b"v")
        while True:
            entry = await watcher.updates(timeout=5)
            if entry is not None and entry.key == key:
                lat.append((time.perf_counter() - sent[key]) * 1000)
                break
    await watcher.stop()
    print(f"put through server 1 seen by a watch through server 3 ({n}): p50 {pct(lat, 0.5):.2f} ms, "
          f"p99 {pct(lat, 0.99):.2f} ms, max {max(lat):.2f} ms")


async def alias_race(conns, rounds, racers):
    kvs = [await c.jetstream().create_key_value(KeyValueConfig(bucket="aliases", replicas=3)) for c in conns]
    winners = []
    for r in range(rounds):
        async def claim(i):
            try:
                await kvs[i % 3].create(f"alias{r}", f"node{i % 3}".encode())
                return 1
            except KeyWrongLastSequenceError:
                return 0
            except KeyNotFoundError:
                # The create was refused; the client's follow-up read (is it a deleted key?)
                # went to a replica that had not applied the winner's create yet.
                return 0
            except APIError as err:  # "wrong last sequence" arrives as an API error too
                if "wrong last sequence" in str(err).lower():
                    return 0
                raise
        winners.append(sum(await asyncio.gather(*(claim(i) for i in range(racers)))))
    print(f"alias race: {racers} creates of one key across the three servers, {rounds} rounds: "
          f"winners per round {sorted(set(winners))} (want [1])")
    return set(winners) == {1}


async def points_race(conns, racers, points, cost):
    kvs = [await c.jetstream().create_key_value(KeyValueConfig(bucket="points", replicas=3)) for c in conns]
    await kvs[0].put("key1", str(points).encode())
    retries = 0

    async def spend(i):
        nonlocal retries
        kv = kvs[i % 3]
        while True:
            entry = await kv.get("key1")
            left = int(entry.value)
            if left < cost:
                return 0
            try:
                await kv.update("key1", str(left - cost).encode(), last=entry.revision)
                return 1
            except (KeyWrongLastSequenceError, APIError):
                retries += 1
    spent = sum(await asyncio.gather(*(spend(i) for i in range(racers))))
    left = int((await kvs[0].get("key1")).value)
    print(f"points race: {racers} spends of {cost} on {points} points across the three servers: "
          f"{spent} succeeded (want {points // cost}), {left} left, {retries} compare-and-set retries")
    return spent == points // cost and left == points - spent * cost


async def work_queue(conns, pids, n, window):
    js = conns[0].jetstream()
    await js.add_stream(StreamConfig(name="checks", subjects=["checks.>"], num_replicas=3,
                                     retention=RetentionPolicy.WORK_QUEUE))
    payload = b"x" * 120  # an item: job id, item id, provider, share id
    cpu0, t0 = cpu_seconds(pids), time.perf_counter()
    for start in range(0, n, window):
        await asyncio.gather(*(js.publish("checks.quark", payload, headers={"Nats-Msg-Id": f"item-{i}"})
                               for i in range(start, min(n, start + window))))
    pub_elapsed, pub_cpu = time.perf_counter() - t0, cpu_seconds(pids) - cpu0
    # A republish of the same ids inside the duplicate window stores nothing.
    dup = await js.publish("checks.quark", payload, headers={"Nats-Msg-Id": "item-0"})
    worker = await conns[1].jetstream().pull_subscribe("checks.>", durable="workers", stream="checks")
    cpu0, t0, got = cpu_seconds(pids), time.perf_counter(), 0
    while got < n:
        msgs = await worker.fetch(256, timeout=5)
        await asyncio.gather(*(m.ack_sync() for m in msgs))
        got += len(msgs)
    ack_elapsed, ack_cpu = time.perf_counter() - t0, cpu_seconds(pids) - cpu0
    info = await js.stream_info("checks")
    print(f"work queue R3, {n} items: publish {n / pub_elapsed:.0f}/s ({pub_cpu / n * 1e6:.0f} µs servers' CPU "
          f"each); fetch + ack {n / ack_elapsed:.0f}/s ({ack_cpu / n * 1e6:.0f} µs each); "
          f"duplicate publish stored: {not dup.duplicate}; left in the stream {info.state.messages}")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--urls", required=True)
    parser.add_argument("--pids", required=True)
    args = parser.parse_args()
    urls = args.urls.split(",")
    pids = [int(p) for p in args.pids.split()]
    conns = await ready(urls)
    await create_latency(conns[0], pids, 3, 2000)
    await create_latency(conns[0], pids, 1, 2000)
    await concurrent_creates(conns[0], pids, 20000, 64)
    await propagation(conns, 1000)
    races_hold = await alias_race(conns, 20, 50)
    races_hold &= await points_race(conns, 50, 100, 10)
    await work_queue(conns, pids, 20000, 256)
    for c in conns:
        await c.close()
    if not races_hold:
        print("a race had a wrong outcome: this server does not serialize compare-and-set writes")
    return races_hold


sys.exit(0 if asyncio.run(main()) else 1)

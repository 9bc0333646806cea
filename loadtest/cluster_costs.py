"""What cluster mode costs a link create and a check, through panlink (run by loadtest/cluster.sh).

Per round: CREATES links made one at a time on the single node, then on cluster node A, each
timed from request to answer over one keep-alive connection; then 500 more on A, each followed
by polling node C until it redirects (the time from A's answer to C's first 302). During A's
creates, the three nats-servers' message counters (/varz in_msgs + out_msgs) and CPU
(utime + stime) are read before and after. Then a job of CHECKS new links (four drives) on the
single node and one on cluster node A, each timed from its submission until GET /jobs/{id}
says done (polled every 20 ms), with the messages and the servers' CPU per check, and the
panlink processes' CPU per check. Medians over the rounds are printed last.
"""

import argparse
import http.client
import json
import os
import statistics
import time
import urllib.parse
import urllib.request

ADMIN = {"Authorization": "Bearer loadtest-admin-token-0000", "Content-Type": "application/json"}


class Conn:
    def __init__(self, base):
        url = urllib.parse.urlparse(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port)

    def call(self, method, path, headers=None, body=None):
        self.conn.request(method, path, body=body, headers=headers or {})
        answer = self.conn.getresponse()
        return answer.status, answer.read()


def make_key(base):
    body = json.dumps({"name": "cluster-costs", "plan": "premium", "rate_per_s": 1000000,
                       "burst": 1000000})
    status, text = Conn(base).call("POST", "/admin/api/keys", ADMIN, body)
    assert status == 201, text
    return json.loads(text)["data"]["key"]


def create(conn, key, n):
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    body = json.dumps({"url": f"https://example.com/item/{n}"})
    started = time.perf_counter()
    status, text = conn.call("POST", "/api/v1/links", headers, body)
    took = time.perf_counter() - started
    assert status == 200, text
    return json.loads(text)["data"]["code"], took


def links(round_no, side, count):
    """`count` share links of four drives that no earlier job asked about (the cache is cold)."""
    shapes = ("https://pan.quark.cn/s/ok{}", "https://pan.baidu.com/s/1gone{}",
              "https://cloud.189.cn/t/none{}", "https://www.alipan.com/s/ok{}")
    return [shapes[n % 4].format(f"C{round_no}{side}{n:07d}") for n in range(count)]


def run_job(base, key, items):
    """Submits a job of `items` to `base` and waits until it is done; its seconds."""
    conn = Conn(base)
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    started = time.perf_counter()
    status, text = conn.call("POST", "/jobs", headers, json.dumps({"items": items}))
    assert status == 201, text
    job = json.loads(text)["job_id"]
    while True:
        status, text = conn.call("GET", f"/jobs/{job}", {"X-API-Key": key})
        assert status == 200, text
        if json.loads(text)["status"] == "done":
            return time.perf_counter() - started
        assert time.perf_counter() - started < 600, f"job {job} not done in 600 s"
        time.sleep(0.02)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def varz(monitors):
    total = 0
    for base in monitors:
        with urllib.request.urlopen(f"{base}/varz") as answer:
            data = json.load(answer)
        total += data["in_msgs"] + data["out_msgs"]
    return total


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


def main():
    parser = argparse.ArgumentParser()
    for name in ("single", "a", "c", "monitors", "nats-pids", "single-pid", "node-pids"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--checks", type=int, default=20000)
    args = parser.parse_args()
    monitors = args.monitors.split(",")
    nats_pids = args.nats_pids.split()
    node_pids = args.node_pids.split()
    hz = os.sysconf("SC_CLK_TCK")
    single_key = make_key(args.single)
    cluster_key = make_key(args.a)
    # The key reaches C through the cluster before it is used there.
    c = Conn(args.c)
    for _ in range(2000):
        if c.call("GET", "/api/v1/me", {"X-API-Key": cluster_key})[0] == 200:
            break
        time.sleep(0.005)
    rows = []
    n = 0
    for round_no in range(1, args.rounds + 1):
        # Fresh connections each round: a job's minutes outlast the servers' keep-alive.
        single, a, c = Conn(args.single), Conn(args.a), Conn(args.c)
        single_times = []
        for _ in range(args.creates):
            n += 1
            single_times.append(create(single, single_key, n)[1])
        messages, ticks = varz(monitors), cpu_ticks(nats_pids)
        cluster_times = []
        for _ in range(args.creates):
            n += 1
            cluster_times.append(create(a, cluster_key, n)[1])
        messages = (varz(monitors) - messages) / args.creates
        servers_us = (cpu_ticks(nats_pids) - ticks) / hz / args.creates * 1e6
        seen = []
        for _ in range(500):
            n += 1
            code, _ = create(a, cluster_key, n)
            started = time.perf_counter()
            while True:
                status, _ = c.call("GET", f"/{code}")
                if status == 302:
                    break
                assert time.perf_counter() - started < 5, f"{code} never redirected on C"
                time.sleep(0.0002)
            seen.append(time.perf_counter() - started)
        ticks = cpu_ticks([args.single_pid])
        single_job = run_job(args.single, single_key, links(round_no, "s", args.checks))
        single_check_us = (cpu_ticks([args.single_pid]) - ticks) / hz / args.checks * 1e6
        messages_before, ticks = varz(monitors), cpu_ticks(nats_pids)
        nodes_ticks = cpu_ticks(node_pids)
        cluster_job = run_job(args.a, cluster_key, links(round_no, "c", args.checks))
        check_messages = (varz(monitors) - messages_before) / args.checks
        check_servers_us = (cpu_ticks(nats_pids) - ticks) / hz / args.checks * 1e6
        nodes_check_us = (cpu_ticks(node_pids) - nodes_ticks) / hz / args.checks * 1e6
        row = {
            "single_p50": pct(single_times, 50) * 1e3,
            "single_p99": pct(single_times, 99) * 1e3,
            "cluster_p50": pct(cluster_times, 50) * 1e3,
            "cluster_p99": pct(cluster_times, 99) * 1e3,
            "messages": messages,
            "servers_us": servers_us,
            "seen_p50": pct(seen, 50) * 1e3,
            "seen_p99": pct(seen, 99) * 1e3,
            "seen_max": max(seen) * 1e3,
            "single_rate": args.checks / single_job,
            "cluster_rate": args.checks / cluster_job,
            "single_check_us": single_check_us,
            "nodes_check_us": nodes_check_us,
            "check_messages": check_messages,
            "check_servers_us": check_servers_us,
        }
        rows.append(row)
        print(
            f"round {round_no}: create single p50 {row['single_p50']:.2f} ms p99 "
            f"{row['single_p99']:.2f} ms | cluster p50 {row['cluster_p50']:.2f} ms p99 "
            f"{row['cluster_p99']:.2f} ms | NATS messages per create {messages:.1f}, servers' "
            f"CPU {servers_us:.0f} µs | A's answer → C redirects p50 {row['seen_p50']:.2f} ms "
            f"p99 {row['seen_p99']:.2f} ms max {row['seen_max']:.2f} ms",
            flush=True,
        )
        print(
            f"round {round_no}: a job of {args.checks} links: single node "
            f"{row['single_rate']:.0f} checks/s, its CPU {row['single_check_us']:.0f} µs per "
            f"check | cluster {row['cluster_rate']:.0f} checks/s, the three nodes' CPU "
            f"{row['nodes_check_us']:.0f} µs per check, NATS messages per check "
            f"{row['check_messages']:.2f}, servers' CPU {row['check_servers_us']:.0f} µs per check",
            flush=True,
        )
    median = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(
        f"median of {len(rows)} rounds of {args.creates} creates: single p50 "
        f"{median['single_p50']:.2f} / p99 {median['single_p99']:.2f} ms; cluster p50 "
        f"{median['cluster_p50']:.2f} / p99 {median['cluster_p99']:.2f} ms (added p50 "
        f"{median['cluster_p50'] - median['single_p50']:.2f} ms); {median['messages']:.1f} NATS "
        f"messages and {median['servers_us']:.0f} µs of the servers' CPU per create; A → C "
        f"p50 {median['seen_p50']:.2f} / p99 {median['seen_p99']:.2f} / max "
        f"{median['seen_max']:.2f} ms"
    )
    print(
        f"median of {len(rows)} jobs of {args.checks} links: single node "
        f"{median['single_rate']:.0f} checks/s at {median['single_check_us']:.0f} µs of its CPU "
        f"per check; cluster of three {median['cluster_rate']:.0f} checks/s at "
        f"{median['nodes_check_us']:.0f} µs of the nodes' CPU per check; "
        f"{median['check_messages']:.2f} NATS messages and {median['check_servers_us']:.0f} µs "
        f"of the servers' CPU per check"
    )


if __name__ == "__main__":
    main()

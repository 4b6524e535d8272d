"""Flow logs' cost and capacity (issue 20, "Checks and speed"), on one 2-node lab.

1. Throughput: iperf3 pod (node1) -> pod (node2) with flow logs on (the lab's default:
   FelixConfiguration's flowLogsGoldmaneServer) and off (the field removed: Felix drops its
   NFLOG rules and its collector), interleaved BENCH_ROUNDS times; the ratio is the median
   of the per-round on/off ratios (target >= 0.95).
2. Connections logged: both nodes' calico-node pinned to CPU 0, the load generator (a client
   pod making TCP connections at a fixed rate for BENCH_STEP_SECONDS) and the server pod on
   CPU 1. At each rate, every connection must be in calico-goldmane's `GET /flows` (as
   num_connections_started, from both reporters) with no flow dropped by the aggregator; the
   highest such rate is printed (target >= 2000/s). Each rate uses its own server port, so
   the records of one step are told from the others'.
3. Record delay: from a connection's end to the moment its records (both reporters) are in
   `GET /flows`, median of BENCH_DELAY_SAMPLES (target <= flush interval + 2 s; the lab's
   flush interval is 15 s).
4. bench-policy's full load (1000 endpoints x 500 policies read, calculated, rendered and
   loaded with nft -f into a fresh namespace; bench/policy.py part 1) with flow logs' NFLOG
   rules and without, in turns, BENCH_FULL_ROUNDS times each; medians. BENCH_FULL=0 skips it.

Needs root. Run: make bench-flows
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

from lab_runs import LAB, down, iperf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pycalico.lab import cluster, goldmane
from pycalico.lab.namespaces import ns_name
from pycalico.lab.state import LabState

SECONDS = int(os.environ.get("BENCH_IPERF_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
STEP_SECONDS = int(os.environ.get("BENCH_STEP_SECONDS", "3"))
RATES = tuple(int(r) for r in os.environ.get("BENCH_RATES", "500,1000,2000,3000,4000").split(","))
DELAY_SAMPLES = int(os.environ.get("BENCH_DELAY_SAMPLES", "3"))
FULL_ROUNDS = int(os.environ.get("BENCH_FULL_ROUNDS", "3"))
RUN_FULL = os.environ.get("BENCH_FULL", "1") != "0"
RECORD_WAIT = 60.0
FIRST_PORT = 9000
NODE_CPU, LOAD_CPU = "0", "1"

# One process, one thread: accept, wait for the client's close, close. The client closes
# first, as clients do, so its side keeps TIME_WAIT and its port is not reused at once: a
# 5-tuple used again before the next conntrack dump (5 s) would count as one connection.
SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(4096)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.recv(1)
    c.close()
"""
# Connections at a fixed rate; prints how many were made.
CLIENT = """
import socket, sys, time
ip, port, rate, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
made = 0
start = time.perf_counter()
for i in range(rate * seconds):
    wait = start + i / rate - time.perf_counter()
    if wait > 0:
        time.sleep(wait)
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((ip, port))
        made += 1
    except OSError:
        pass
    s.close()
print(made, time.perf_counter() - start)
"""


def sh(*cmd: str, stdin: str | None = None) -> str:
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=True).stdout


def flows(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sh(LAB, "flows", "--name", name, "-o", "json").splitlines()
            if line]  # fmt: skip


def started(records: list[dict[str, Any]], port: int) -> dict[str, int]:
    counts = {"Src": 0, "Dst": 0}
    for f in records:
        if f["dest_port"] == port and f["reporter"] in counts:
            counts[f["reporter"]] += f["num_connections_started"]
    return counts


def dropped(name: str) -> int:
    sock = goldmane.connect(LabState.load(name))
    with sock:
        sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    for line in data.decode().splitlines():
        if line.startswith("goldmane_aggr_dropped_flows_total "):
            return int(float(line.split()[1]))
    return 0


def flow_logs(state: LabState, on: bool) -> None:
    """Flow logs on (the lab's FelixConfiguration) or off (without its flowLogs fields), and
    wait until every node's Felix has its NFLOG rules accordingly."""
    text = cluster.felix_configuration_yaml()
    if not on:
        text = "".join(line + "\n" for line in text.splitlines() if "flowLogs" not in line)
    calicoctl = os.path.join(os.path.dirname(sys.executable), "calicoctl")
    env = cluster.node_env(state, state.nodes[0])
    netns = f"--net=/run/netns/{ns_name(state.name, state.nodes[0])}"  # where node1 reaches it
    subprocess.run(["nsenter", netns, calicoctl, "apply", "-f", "-"], input=text, env=env,
                   capture_output=True, text=True, check=True)  # fmt: skip
    name, nodes = state.name, state.nodes
    deadline = time.monotonic() + 30
    for node in nodes:
        while True:
            rules = sh("ip", "netns", "exec", ns_name(name, node), "nft", "list", "table", "inet",
                       "calico")  # fmt: skip
            if ("log prefix" in rules) == on:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Felix on {node} did not turn flow logs {'on' if on else 'off'}"
                )
            time.sleep(0.2)


def pin(pid: int, cpu: str) -> None:
    sh("taskset", "-a", "-p", "-c", cpu, str(pid))


def full_loads() -> list[str]:
    """Part 4: bench-policy's cold full load without and with flow logs, in turns."""
    import tempfile

    import policy as policy_bench

    from pycalico.datastore.resources import ResourceClient
    from pycalico.datastore.sqlite import SqliteBackend

    totals: dict[bool, list[float]] = {False: [], True: []}
    applies: dict[bool, list[float]] = {False: [], True: []}
    sizes: dict[bool, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-flows-") as tmp:
        store = os.path.join(tmp, "store.db")
        backend = SqliteBackend(store, create=True)
        try:
            policy_bench.load_datastore(ResourceClient(backend))
        finally:
            backend.close()
        for _ in range(FULL_ROUNDS):
            for on in (False, True):
                cold = policy_bench.cold_full(store, tmp, floors=0, flow_logs=on)
                totals[on].append(policy_bench.cold_total(cold))
                applies[on].append(cold.apply)
                sizes[on] = cold.sizes["script kB"]
    lines = []
    for on in (False, True):
        lines.append(
            f"  flow logs {'on ' if on else 'off'}: total {statistics.median(totals[on]):.2f} s "
            f"(nft -f {statistics.median(applies[on]):.2f} s), script {sizes[on]} kB"
        )
    ratio = statistics.median(totals[True]) / statistics.median(totals[False])
    lines.append(f"  on/off: {ratio:.2f} (median of {FULL_ROUNDS} rounds each, in turns)")
    return lines


def main() -> int:
    if os.geteuid() != 0:
        sys.stderr.write("bench-flows needs root (it creates network namespaces)\n")
        return 1
    name = f"b{uuid.uuid4().hex[:5]}"
    sh(LAB, "up", "--name", name, "--nodes", "2")
    servers: list[subprocess.Popen[str]] = []
    try:
        sh(LAB, "pod", "add", "server", "--node", "node2", "--name", name)
        sh(LAB, "pod", "add", "client", "--node", "node1", "--name", name)
        state = LabState.load(name)
        server, client = state.pods["default/server"], state.pods["default/client"]

        # 1. Throughput, on and off in turns.
        on: list[float] = []
        off: list[float] = []
        for _ in range(ROUNDS):
            for wanted, into in ((True, on), (False, off)):
                flow_logs(state, wanted)
                into.append(iperf(server.netns, client.netns, server.ip, SECONDS))
        flow_logs(state, True)
        ratio = statistics.median(a / b for a, b in zip(on, off, strict=True))

        # 2. Connections logged per second.
        for node in state.nodes:
            pin(state.pids[f"calico-node:{node}"], NODE_CPU)
        best = 0
        outcomes = []
        for step, rate in enumerate(RATES):
            port = FIRST_PORT + step
            proc = subprocess.Popen(
                ["ip", "netns", "exec", server.netns, "taskset", "-c", LOAD_CPU,
                 sys.executable, "-c", SERVER, str(port)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            servers.append(proc)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            made_text = sh("ip", "netns", "exec", client.netns, "taskset", "-c", LOAD_CPU,
                           sys.executable, "-c", CLIENT, server.ip, str(port), str(rate),
                           str(STEP_SECONDS))  # fmt: skip
            made, took = int(made_text.split()[0]), float(made_text.split()[1])
            achieved = made / took
            deadline = time.monotonic() + RECORD_WAIT
            counts = started(flows(name), port)
            while min(counts.values()) < made and time.monotonic() < deadline:
                time.sleep(2)
                counts = started(flows(name), port)
            lost = dropped(name)
            complete = counts == {"Src": made, "Dst": made} and lost == 0
            outcomes.append(
                f"  {rate}/s asked, {achieved:.0f}/s made ({made} connections): logged "
                f"Src {counts['Src']}, Dst {counts['Dst']}, aggregator dropped {lost}"
                f"{'' if complete else '  <- incomplete'}"
            )
            if not complete or achieved < rate * 0.9:
                break
            best = rate

        # 3. Record delay.
        delays = []
        for sample in range(DELAY_SAMPLES):
            port = FIRST_PORT + 100 + sample
            proc = subprocess.Popen(
                ["ip", "netns", "exec", server.netns, sys.executable, "-c", SERVER, str(port)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            servers.append(proc)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            sh("ip", "netns", "exec", client.netns, sys.executable, "-c", CLIENT, server.ip,
               str(port), "1", "1")  # fmt: skip
            ended = time.monotonic()
            while min(started(flows(name), port).values()) < 1:
                if time.monotonic() - ended > RECORD_WAIT:
                    raise RuntimeError(f"no record of the connection to port {port}")
                time.sleep(0.25)
            delays.append(time.monotonic() - ended)
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
        down(name)
    delay = statistics.median(delays)
    full = full_loads() if RUN_FULL else []
    print(f"iperf3 pod -> pod, {ROUNDS} interleaved rounds of {SECONDS} s (Gbit/s):")
    print(f"  flow logs on  {' '.join(f'{v:.2f}' for v in on)}")
    print(f"  flow logs off {' '.join(f'{v:.2f}' for v in off)}")
    print(f"connections logged, calico-node on CPU {NODE_CPU}, load on CPU {LOAD_CPU}, "
          f"{STEP_SECONDS} s per rate:")  # fmt: skip
    print("\n".join(outcomes))
    print(f"record delay samples (s): {' '.join(f'{d:.1f}' for d in delays)} "
          "(target <= flush interval 15 s + 2 s)")  # fmt: skip
    if full:
        print("bench-policy's full load, 1000 endpoints x 500 policies:")
        print("\n".join(full))
    print(
        f"flows: throughput on/off {ratio:.2f}, {best} connections/s logged, "
        f"record delay {delay:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CNI speed: pycalico's `calico` (shim + node agent) against Debian's Go ptp + host-local.

One run measures, on fresh network namespaces made (and removed) by the benchmark:
  * N sequential ADD and DEL per plugin (p50/p90/p99 of each),
  * 100 parallel pycalico ADDs (wall time, and that the addresses are all distinct),
  * 20 pod sandboxes made by a real runtime, podman with its CNI backend (`pod create` and
    `pod start`: the infra container, its network namespace and the CNI ADD), on a ptp
    network and on a pycalico network alternately (p50/p90 of each, and pycalico - ptp
    in ms: the runtime's own cost swamps a ratio). Podman runs in a node namespace of the
    benchmark's own, its storage and configuration in the benchmark's temporary directory.
The last line is `cni add p50 ratio vs ptp: <x>`. Needs root. Run: make bench-cni
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The repository root, for the tests' shared helpers (tests.support).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

VENV_BIN = os.path.dirname(sys.executable)
REFERENCE_DIR = "/usr/lib/cni"
RUNS = int(os.environ.get("BENCH_CNI_RUNS", "200"))
PARALLEL = 100
SANDBOXES = int(os.environ.get("BENCH_CNI_SANDBOXES", "20"))


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class Plugin:
    def __init__(self, name: str, binary: str, conf: dict[str, Any], path: str) -> None:
        self.name, self.binary, self.conf, self.path = name, binary, conf, path

    def call(self, command: str, container: str, netns: str) -> tuple[float, dict[str, Any]]:
        env = {
            "PATH": os.environ["PATH"],
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container,
            "CNI_NETNS": f"/run/netns/{netns}",
            "CNI_IFNAME": "eth0",
            "CNI_PATH": self.path,
        }
        start = time.perf_counter()
        out = subprocess.run(
            [self.binary],
            env=env,
            input=json.dumps(self.conf).encode(),
            capture_output=True,
            check=False,
        )
        elapsed = time.perf_counter() - start
        if out.returncode != 0:
            raise RuntimeError(f"{self.name} {command} failed: {out.stdout!r} {out.stderr!r}")
        return elapsed, (json.loads(out.stdout) if out.stdout.strip() else {})


def sequential(plugin: Plugin, tag: str) -> tuple[list[float], list[float]]:
    adds, dels = [], []
    for i in range(RUNS):
        ns = f"bench-{tag}-{i}"
        sh("ip", "netns", "add", ns)
        try:
            container = uuid.uuid4().hex
            adds.append(plugin.call("ADD", container, ns)[0])
            dels.append(plugin.call("DEL", container, ns)[0])
        finally:
            sh("ip", "netns", "del", ns)
    return adds, dels


def parallel_adds(plugin: Plugin, tag: str) -> tuple[float, int]:
    names = [f"bench-{tag}-p{i}" for i in range(PARALLEL)]
    # Container IDs as runtimes make them: the host veth name comes from their first 11 chars.
    ids = {n: uuid.uuid4().hex for n in names}
    for ns in names:
        sh("ip", "netns", "add", ns)
    try:
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
            results = list(pool.map(lambda n: plugin.call("ADD", ids[n], n)[1], names))
        wall = time.perf_counter() - start
        addresses = {r["ips"][0]["address"] for r in results}
        for ns in names:
            plugin.call("DEL", ids[ns], ns)
        return wall, len(addresses)
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def with_agent(tmp: str, work: Callable[[Plugin], Any]) -> Any:
    from pycalico.cni.install import install

    bin_dir = os.path.join(tmp, "bin")
    store, sock = os.path.join(tmp, "store.db"), os.path.join(tmp, "agent.sock")
    install(bin_dir, sock)
    env = {**os.environ, "DATASTORE_TYPE": "sqlite", "SQLITE_PATH": store}
    subprocess.run(
        [os.path.join(VENV_BIN, "calicoctl"), "apply", "-f", "-"],
        env=env,
        check=True,
        capture_output=True,
        input=b"apiVersion: projectcalico.org/v3\nkind: IPPool\n"
        b"metadata: {name: bench}\nspec: {cidr: 10.251.0.0/16}\n",
    )
    # The agent's own datastore is the one the netconf names, or it would hand every call
    # back to the shim to run in-process.
    agent = subprocess.Popen(
        [sys.executable, "-m", "pycalico.cni.agent", "--socket", sock], env=env
    )
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        conf = {
            "cniVersion": "1.0.0",
            "name": "k8s-pod-network",
            "type": "calico",
            "nodename": "bench-node",
            "sqlite_path": store,
            "agent_socket": sock,
            "ipam_lock_file": os.path.join(tmp, "ipam.lock"),
            "ipam": {"type": "calico-ipam"},
        }
        return work(
            Plugin("pycalico calico (shim+agent)", os.path.join(bin_dir, "calico"), conf, bin_dir)
        )
    finally:
        agent.send_signal(signal.SIGINT)
        agent.wait(timeout=10)


def podman_sandboxes(tmp: str) -> dict[str, list[float]]:
    """Seconds per pod sandbox (`podman pod create` + `pod start`), per network."""
    from pycalico.cni.install import install
    from tests.support import runtimes
    from tests.support.node_namespace import node_namespace

    root = Path(tmp) / "podman"
    bin_dir, sock, store = root / "bin", root / "agent.sock", root / "store.db"
    install(str(bin_dir), str(sock))
    runtimes.calicoctl(
        store,
        "apply",
        "-f",
        "-",
        stdin="apiVersion: projectcalico.org/v3\nkind: IPPool\n"
        "metadata: {name: bench}\nspec: {cidr: 10.253.0.0/16}\n",
    )
    networks = {
        "ptp": {
            "type": "ptp",
            "ipMasq": False,
            "ipam": {
                "type": "host-local",
                "subnet": "10.254.0.0/16",
                "dataDir": str(root / "host-local"),
            },
        },
        "calico": {
            "type": "calico",
            "nodename": "bench-node",
            "sqlite_path": str(store),
            "ipam_lock_file": str(root / "ipam.lock"),
            "ipam": {"type": "calico-ipam"},
        },
    }
    times: dict[str, list[float]] = {net: [] for net in networks}
    with node_namespace("cbpm", gateway="192.0.2.1") as node:
        agent = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                node.ns,
                sys.executable,
                "-m",
                "pycalico.cni.agent",
                "--socket",
                str(sock),
            ],
            # The agent serves only calls on its own datastore; with another it would hand
            # every call back to the shim, which then pays for a Python start-up in-process.
            env={**os.environ, "DATASTORE_TYPE": "sqlite", "SQLITE_PATH": str(store)},
        )
        try:
            runtimes.eventually(sock.exists, what="the CNI agent listening")
            with runtimes.podman(root, node.ns, [bin_dir]) as podman:
                for net, conf in networks.items():
                    podman.network(f"bench-{net}", [conf])
                # Round 0 warms up (podman builds its pause image then); the order alternates.
                for i in range(SANDBOXES + 1):
                    for net in sorted(networks, reverse=bool(i % 2)):
                        name = f"{net}-{i}"
                        start = time.perf_counter()
                        podman("pod", "create", "--name", name, "--network", f"bench-{net}")
                        podman("pod", "start", name)
                        elapsed = time.perf_counter() - start
                        podman("pod", "rm", "-f", "-t", "0", name)
                        if i:
                            times[net].append(elapsed)
        finally:
            agent.send_signal(signal.SIGINT)
            agent.wait(timeout=10)
    return times


def main() -> int:
    if os.geteuid() != 0:
        sys.stderr.write("bench-cni needs root (it creates network namespaces)\n")
        return 1
    tag = uuid.uuid4().hex[:4]
    rows = []
    with tempfile.TemporaryDirectory(prefix="pycalico-cni-bench-") as tmp:
        ref_conf = {
            "cniVersion": "1.0.0",
            "name": "bench",
            "type": "ptp",
            "ipMasq": False,
            "ipam": {
                "type": "host-local",
                "subnet": "10.252.0.0/16",
                "dataDir": os.path.join(tmp, "host-local"),
            },
        }
        ref = Plugin(
            "Debian ptp + host-local (Go)",
            os.path.join(REFERENCE_DIR, "ptp"),
            ref_conf,
            REFERENCE_DIR,
        )
        print(f"running {RUNS} sequential ADD+DEL per plugin ...", file=sys.stderr)
        ref_add, ref_del = sequential(ref, f"r{tag}")
        ours_add, ours_del = with_agent(tmp, lambda p: sequential(p, f"c{tag}"))
        print(f"running {PARALLEL} parallel pycalico ADDs ...", file=sys.stderr)
        wall, distinct = with_agent(
            tempfile.mkdtemp(dir=tmp), lambda p: parallel_adds(p, f"q{tag}")
        )
        from tests.support.runtimes import podman_missing

        skipped = podman_missing()
        if skipped is None:
            print(f"running {SANDBOXES} podman pod sandboxes per network ...", file=sys.stderr)
            sandboxes = podman_sandboxes(tmp)
    for name, adds, dels in (
        ("Debian ptp + host-local (Go)", ref_add, ref_del),
        ("pycalico calico (shim+agent)", ours_add, ours_del),
    ):
        rows.append(
            (
                name,
                *(f"{pct(adds, q):.1f}" for q in (0.5, 0.9, 0.99)),
                *(f"{pct(dels, q):.1f}" for q in (0.5, 0.9, 0.99)),
            )
        )
    header = ("plugin", "ADD p50", "ADD p90", "ADD p99", "DEL p50", "DEL p90", "DEL p99")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"{RUNS} sequential ADD+DEL on fresh netns (milliseconds)")
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print(f"{PARALLEL} parallel pycalico ADDs: {wall:.2f} s, {distinct} distinct addresses")
    if skipped is None:
        print(f"{SANDBOXES} podman pod sandboxes, pod create + start (milliseconds)")
        pod_rows = [
            ("network", "p50", "p90"),
            *(
                (name, f"{pct(sandboxes[net], 0.5):.1f}", f"{pct(sandboxes[net], 0.9):.1f}")
                for name, net in (
                    ("Debian ptp + host-local (Go)", "ptp"),
                    ("pycalico calico (shim+agent)", "calico"),
                )
            ),
        ]
        widths = [max(len(r[i]) for r in pod_rows) for i in range(3)]
        for row in pod_rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        diff = {q: pct(sandboxes["calico"], q) - pct(sandboxes["ptp"], q) for q in (0.5, 0.9)}
        print(f"pod sandbox pycalico - ptp: p50 {diff[0.5]:+.1f} ms, p90 {diff[0.9]:+.1f} ms")
    else:
        print(f"podman pod sandboxes: skipped ({skipped})")
    ratio = statistics.median(ours_add) / statistics.median(ref_add)
    print(f"cni add p50 ratio vs ptp: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

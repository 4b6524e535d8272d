"""Datapath speed: iperf3 pod-to-pod across lab nodes (VXLAN) next to a raw VXLAN path.

In one run:
  * reference: two plain namespaces joined by a veth underlay and a hand-made VXLAN device
    pair (same VNI, port and 1450 MTU as Calico's), iperf3 across the tunnel;
  * pycalico: a 2-node lab, one pod per node, iperf3 from one pod to the other;
  * the wall time of `calico-lab up --nodes 3`.
Prints both throughputs and their ratio (target >= 0.95). Needs root. Run: make bench-datapath
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

LAB = os.path.join(os.path.dirname(sys.executable), "calico-lab")
SECONDS = int(os.environ.get("BENCH_IPERF_SECONDS", "5"))


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def iperf(server_ns: str, client_ns: str, server_ip: str) -> float:
    """Gbit/s from client to server over SECONDS seconds."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        out = sh(
            "ip", "netns", "exec", client_ns, "iperf3", "-c", server_ip, "-t", str(SECONDS), "-J"
        )
        return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e9
    finally:
        server.kill()
        server.wait()


def raw_vxlan() -> float:
    tag = uuid.uuid4().hex[:5]
    a, b = f"rawa-{tag}", f"rawb-{tag}"
    try:
        for ns in (a, b):
            sh("ip", "netns", "add", ns)
        sh(
            "ip",
            "link",
            "add",
            "eth0",
            "netns",
            a,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            b,
        )
        for ns, under, inner in (
            (a, "192.168.99.1", "10.99.0.1"),
            (b, "192.168.99.2", "10.99.0.2"),
        ):
            run = ["ip", "netns", "exec", ns]
            sh(*run, "ip", "addr", "add", f"{under}/24", "dev", "eth0")
            sh(*run, "ip", "link", "set", "eth0", "up")
            sh(
                *run,
                "ip",
                "link",
                "add",
                "vx",
                "type",
                "vxlan",
                "id",
                "4096",
                "dstport",
                "4789",
                "local",
                under,
                "dev",
                "eth0",
                "nolearning",
            )
            sh(*run, "ip", "link", "set", "vx", "mtu", "1450", "up")
            sh(*run, "ip", "addr", "add", f"{inner}/24", "dev", "vx")
        for ns, peer_under, peer_inner in (
            (a, "192.168.99.2", "10.99.0.2"),
            (b, "192.168.99.1", "10.99.0.1"),
        ):
            run = ["ip", "netns", "exec", ns]
            peer_mac = json.loads(
                sh("ip", "netns", "exec", b if ns == a else a, "ip", "-j", "link", "show", "vx")
            )[0]["address"]
            sh(
                *run,
                "ip",
                "neigh",
                "add",
                peer_inner,
                "lladdr",
                peer_mac,
                "dev",
                "vx",
                "nud",
                "permanent",
            )
            sh(*run, "bridge", "fdb", "append", peer_mac, "dev", "vx", "dst", peer_under)
        return iperf(b, a, "10.99.0.2")
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def lab_path() -> tuple[float, float]:
    name = f"b{uuid.uuid4().hex[:5]}"
    started = time.monotonic()
    sh(LAB, "up", "--name", name, "--nodes", "3")
    up_seconds = time.monotonic() - started
    try:
        sh(LAB, "pod", "add", "server", "--node", "node2", "--name", name)
        sh(LAB, "pod", "add", "client", "--node", "node1", "--name", name)
        from pycalico.lab.state import LabState

        pods = LabState.load(name).pods
        server, client = pods["default/server"], pods["default/client"]
        return iperf(server.netns, client.netns, server.ip), up_seconds
    finally:
        subprocess.run([LAB, "down", "--name", name], capture_output=True, check=False)


def main() -> int:
    if os.geteuid() != 0:
        sys.stderr.write("bench-datapath needs root (it creates network namespaces)\n")
        return 1
    raw = raw_vxlan()
    ours, up_seconds = lab_path()
    rows = [
        ("raw VXLAN between two namespaces (reference)", f"{raw:.2f} Gbit/s"),
        ("pycalico pod -> pod across nodes (VXLAN)", f"{ours:.2f} Gbit/s"),
        ("calico-lab up --nodes 3 (wall time; target <= 10 s)", f"{up_seconds:.1f} s"),
    ]
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")
    print(f"datapath ratio vs raw vxlan: {ours / raw:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

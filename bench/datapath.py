"""Datapath speed: iperf3 pod-to-pod across lab nodes (VXLAN) next to a raw VXLAN path.

In one run, on one lab (`calico-lab up --nodes 3`, its wall time printed):
  * reference: two plain namespaces plugged into the lab's own underlay bridge exactly as
    the nodes are (a veth into `<lab>-net`, port of br0, same link MTU), each with a
    hand-made VXLAN device copied from node1's `vxlan.calico` (VNI, port, MTU, learning
    off), iperf3 between the two tunnel addresses. Nothing of pycalico is on this path;
  * pycalico: one pod on node1, one on node2, iperf3 from one to the other;
  * for diagnosis, node1 -> node2 over `vxlan.calico` (the nodes' own VXLAN path: the
    reference plus what the node namespace adds, i.e. netfilter with conntrack);
  * for diagnosis, the same pods with both nodes' nftables rulesets emptied for the
    measurement (Felix's policy, NAT and NOTRACK tables; with no rules the kernel runs
    no netfilter hook and no conntrack there), then loaded back as they were: what the
    pod path costs without netfilter, i.e. its two veths and two forwarding steps.
The paths run interleaved, BENCH_ROUNDS times (order rotated each round, so drift and
other load on the machine hit all paths alike); medians and ranges are printed, and the
ratio is the median of the per-round pod/reference ratios (target >= 0.95). The gap
is split per round into what the veths and forwarding cost (1 - emptied/reference) and
what the nodes' netfilter adds on top (emptied/reference - pod/reference).
Needs root. Run: make bench-datapath
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from lab_runs import LAB, down, iperf

# The repository root, for the tests' shared helpers (tests.support).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support.node_namespace import sh as in_ns

SECONDS = int(os.environ.get("BENCH_IPERF_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
STREAMS = int(os.environ.get("BENCH_IPERF_STREAMS", "1"))
RAW_UNDERLAY = ("192.168.56.250", "192.168.56.251")  # lab subnet, clear of router and nodes
RAW_INNER = ("10.99.0.1", "10.99.0.2")


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def link_json(ns: str, dev: str) -> dict[str, Any]:
    return json.loads(in_ns(ns, "ip", "-j", "-d", "addr", "show", "dev", dev))[0]  # type: ignore[no-any-return]


@contextmanager
def raw_vxlan_hosts(lab: str) -> Iterator[tuple[str, str, str]]:
    """Two plain hosts on the lab's underlay with a VXLAN tunnel between them.

    Yields (server namespace, client namespace, server tunnel address). The namespaces
    are recorded in the lab's state first, so `calico-lab down` removes them even if
    this process dies; they are removed here on the way out as well.
    """
    from pycalico.lab.namespaces import ns_name
    from pycalico.lab.state import LabState

    net, node1 = ns_name(lab, "net"), ns_name(lab, "node1")
    node_eth0 = link_json(node1, "eth0")
    vxlan = link_json(node1, "vxlan.calico")
    info = vxlan["linkinfo"]["info_data"]
    tag = uuid.uuid4().hex[:4]
    hosts = [f"{lab}-rawa{tag}", f"{lab}-rawb{tag}"]
    state = LabState.load(lab)
    state.namespaces.extend(hosts)
    state.save()
    try:
        for i, ns in enumerate(hosts):
            port, under = f"raw{'ab'[i]}{tag}", RAW_UNDERLAY[i]
            sh("ip", "netns", "add", ns)
            # The same plug as a lab node's: a veth into the underlay namespace, port of br0.
            sh(*f"ip link add eth0 netns {ns} type veth peer name {port} netns {net}".split())
            for cmd in (
                "ip link set lo up",
                f"ip link set eth0 mtu {node_eth0['mtu']} up",
                f"ip addr add {under}/24 dev eth0",
                f"ip link add vxlan.calico type vxlan id {info['id']} dstport {info['port']}"
                f" local {under} dev eth0 nolearning",
                f"ip link set vxlan.calico mtu {vxlan['mtu']} up",
                f"ip addr add {RAW_INNER[i]}/24 dev vxlan.calico",
            ):
                in_ns(ns, *cmd.split())
            in_ns(net, *f"ip link set {port} master br0 up".split())
        macs = [str(link_json(ns, "vxlan.calico")["address"]) for ns in hosts]
        for i, ns in enumerate(hosts):
            peer_inner, peer_under, peer_mac = RAW_INNER[1 - i], RAW_UNDERLAY[1 - i], macs[1 - i]
            for cmd in (
                f"ip neigh add {peer_inner} lladdr {peer_mac} dev vxlan.calico nud permanent",
                f"bridge fdb append {peer_mac} dev vxlan.calico dst {peer_under}",
            ):
                in_ns(ns, *cmd.split())
        yield hosts[1], hosts[0], RAW_INNER[1]
    finally:
        for ns in hosts:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@contextmanager
def nftables_emptied(namespaces: list[str]) -> Iterator[None]:
    """Every nftables rule out of these namespaces for the duration, then back as it was.

    The restore starts with `flush ruleset`, so it is exact even if something wrote to
    the ruleset meanwhile (Felix does not: with no datastore change it sends nothing).
    """
    saved = {ns: in_ns(ns, "nft", "list", "ruleset") for ns in namespaces}
    try:
        for ns in namespaces:
            in_ns(ns, "nft", "flush", "ruleset")
        yield
    finally:
        for ns, rules in saved.items():
            subprocess.run(
                ["ip", "netns", "exec", ns, "nft", "-f", "-"],
                input="flush ruleset\n" + rules,
                capture_output=True,
                text=True,
                check=True,
            )
            if in_ns(ns, "nft", "list", "ruleset") != rules:
                raise RuntimeError(f"the nftables ruleset of {ns} did not come back as it was")


def tunnel_address(ns: str) -> str:
    for addr in link_json(ns, "vxlan.calico")["addr_info"]:
        if addr["family"] == "inet":
            return str(addr["local"])
    raise RuntimeError(f"no tunnel address on vxlan.calico in {ns}")


def measure(paths: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    names = list(paths)
    results: dict[str, list[float]] = {name: [] for name in names}
    for r in range(ROUNDS):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            results[name].append(paths[name]())
    return results


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} Gbit/s  ({min(values):.2f}-{max(values):.2f})"


def main() -> int:
    if os.geteuid() != 0:
        sys.stderr.write("bench-datapath needs root (it creates network namespaces)\n")
        return 1
    from pycalico.lab.namespaces import ns_name
    from pycalico.lab.state import LabState

    name = f"b{uuid.uuid4().hex[:5]}"
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    sh(LAB, "up", "--name", name, "--nodes", "3")
    up_seconds = time.monotonic() - started
    try:
        sh(LAB, "pod", "add", "server", "--node", "node2", "--name", name)
        sh(LAB, "pod", "add", "client", "--node", "node1", "--name", name)
        pods = LabState.load(name).pods
        server, client = pods["default/server"], pods["default/client"]
        node1, node2 = ns_name(name, "node1"), ns_name(name, "node2")
        node2_vtep = tunnel_address(node2)

        def pod_without_netfilter() -> float:
            with nftables_emptied([node1, node2]):
                return iperf(server.netns, client.netns, server.ip, SECONDS, STREAMS)

        with raw_vxlan_hosts(name) as (raw_server, raw_client, raw_ip):
            results = measure(
                {
                    "raw": lambda: iperf(raw_server, raw_client, raw_ip, SECONDS, STREAMS),
                    "node": lambda: iperf(node2, node1, node2_vtep, SECONDS, STREAMS),
                    "bare": pod_without_netfilter,
                    "pod": lambda: iperf(server.netns, client.netns, server.ip, SECONDS, STREAMS),
                }
            )
    finally:
        down(name)
    load_after = os.getloadavg()[0]
    ratios = [p / r for p, r in zip(results["pod"], results["raw"], strict=True)]
    bare = [b / r for b, r in zip(results["bare"], results["raw"], strict=True)]
    rows = [
        ("raw VXLAN, two plain namespaces on the lab underlay (reference)", spread(results["raw"])),
        ("pycalico node -> node over vxlan.calico (diagnostic)", spread(results["node"])),
        ("pycalico pod -> pod, nodes' nftables emptied (diagnostic)", spread(results["bare"])),
        ("pycalico pod -> pod across nodes (VXLAN)", spread(results["pod"])),
        ("calico-lab up --nodes 3 (wall time; target <= 10 s)", f"{up_seconds:.1f} s"),
    ]
    width = max(len(r[0]) for r in rows)
    print(
        f"median (min-max) of {ROUNDS} interleaved rounds of {SECONDS} s,"
        f" {STREAMS} iperf3 stream{'s' if STREAMS > 1 else ''} each"
        f" (load average {load_before:.1f} before, {load_after:.1f} after)"
    )
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")
    print(
        f"datapath ratio vs raw vxlan: {statistics.median(ratios):.2f} "
        f"(per round {min(ratios):.2f}-{max(ratios):.2f}; target >= 0.95)"
    )
    veths = statistics.median(1 - b for b in bare)
    netfilter = statistics.median(b - p for b, p in zip(bare, ratios, strict=True))
    print(
        f"gap, as a share of the reference (median per round): pod veths + forwarding"
        f" {veths:.2f}, the nodes' netfilter (conntrack, NAT hooks, policy) {netfilter:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""IPIP end to end on a stock kernel: run inside the VM by test_vm.py, never on the host.

(The file name keeps pytest on the host from collecting it: the host kernel has no ipip.)
A lab costs half a minute or more under emulation, so each is a class-scoped fixture that
the class's checks share (and that is gone before the next class starts its own); they
only read it, except the pool switch, which runs last in its class.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pycalico.datastore.backend import Backend
from pycalico.datastore.config import config_from_env, open_backend
from pycalico.felix.calc.inputs import affinity_owner
from pycalico.ipam import keys
from pycalico.ipam.allocator import Allocator
from pycalico.lab.cluster import node_env
from pycalico.lab.main import ipip_available
from pycalico.lab.namespaces import ns_name
from pycalico.lab.settle import settle
from pycalico.lab.state import LabState
from pycalico.netns import in_netns
from tests.support.lab_driver import (
    calicoctl,
    lab,
    node_ip,
    ping_stream,
    pod_ip,
    received,
    wait_for,
)

IPIP_PROTO, UDP, ICMP = 4, 17, 1
VXLAN_PORT = 4789
PING_INTERVAL = 0.1
MAX_LOST_IN_A_ROW = 20  # pings (2 s at PING_INTERVAL) unanswered while the pool switches
NODES = ("node1", "node2", "node3")


def sh(*cmd: str) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert out.returncode == 0, f"`{' '.join(cmd)}` failed: {out.stderr}"
    return out.stdout


def ip_json(ns: str, *args: str) -> list[dict[str, Any]]:
    return list(json.loads(sh("ip", "netns", "exec", ns, "ip", "-j", "-d", *args) or "[]"))


@contextlib.contextmanager
def lab_up(*options: str) -> Iterator[str]:
    name = f"v{uuid.uuid4().hex[:5]}"
    try:
        lab("up", "--name", name, *options)
        yield name
    finally:
        lab("down", "--name", name, check=False)


def add_pods(name: str, nodes: int) -> None:
    for n in range(1, nodes + 1):
        lab("pod", "add", f"p{n}", "--node", f"node{n}", "--serve", "80", "--name", name)


@contextlib.contextmanager
def datastore(name: str) -> Iterator[Backend]:
    state = LabState.load(name)
    backend = open_backend(config_from_env(node_env(state, state.nodes[0])))
    try:
        yield backend
    finally:
        backend.close()


def nodes_json(name: str) -> dict[str, dict[str, Any]]:
    listed = json.loads(calicoctl(name, "get", "nodes", "-o", "json"))
    return {n["metadata"]["name"]: n for n in listed["items"]}


def blocks_by_node(name: str) -> dict[str, list[str]]:
    with datastore(name) as backend:
        affinities, _ = backend.list(keys.all_affinities_prefix())
    owned: dict[str, list[str]] = {}
    owners = (affinity_owner(kv.key, kv.value) for kv in affinities)
    for block, node in (found for found in owners if found):
        owned.setdefault(node, []).append(str(block))
    return owned


def felix_routes(ns: str) -> dict[str, dict[str, Any]]:
    """Felix's routes in a node namespace, by destination: protocol 80, and every route on
    vxlan.calico (those carry the device route protocol, as Calico's do)."""
    on_vxlan = [r for r in ip_json(ns, "route", "show") if r.get("dev") == "vxlan.calico"]
    return {r["dst"]: r for r in ip_json(ns, "route", "show", "proto", "80") + on_vxlan}


def route_text(route: dict[str, Any]) -> str:
    """One route as `ip route` prints it, without the protocol: what a reader compares."""
    if route.get("type") == "blackhole":
        return f"blackhole {route['dst']}"
    words = [route["dst"]]
    if route.get("gateway"):
        words += ["via", route["gateway"]]
    words += ["dev", route["dev"], *route.get("flags", [])]
    return " ".join(words)


class Wire:
    """Frames crossing the lab's underlay bridges, counted by an nftables bridge table.

    Each count is `(outer source, outer destination, IP protocol)`: encapsulated pod
    traffic is node-to-node protocol 4 (IPIP) or UDP 4789 (VXLAN); unencapsulated pod
    traffic is ICMP between the pods' own addresses.
    """

    TABLE = "bridge vmwire"

    def __init__(self, name: str, **flows: tuple[str, str, int]) -> None:
        self.ns = ns_name(name, "net")
        self.flows = flows

    def __enter__(self) -> Wire:
        lines = [
            f"add table {self.TABLE}",
            f"add chain {self.TABLE} counted {{ type filter hook forward priority 0; }}",
        ]
        for key, (src, dst, proto) in self.flows.items():
            match = f"ip saddr {src} ip daddr {dst} ip protocol {proto}"
            if proto == UDP:
                match += f" udp dport {VXLAN_PORT}"
            lines.append(f'add rule {self.TABLE} counted {match} counter comment "{key}"')
        subprocess.run(
            ["ip", "netns", "exec", self.ns, "nft", "-f", "-"],
            input="\n".join(lines) + "\n",
            text=True,
            check=True,
        )
        return self

    def counts(self) -> dict[str, int]:
        table = json.loads(
            sh("ip", "netns", "exec", self.ns, "nft", "-j", "list", "table", *self.TABLE.split())
        )
        counts = {}
        for item in table["nftables"]:
            rule = item.get("rule")
            if rule and rule.get("comment") in self.flows:
                counter = next(e["counter"] for e in rule["expr"] if "counter" in e)
                counts[rule["comment"]] = int(counter["packets"])
        return counts

    def __exit__(self, *exc: object) -> None:
        sh("ip", "netns", "exec", self.ns, "nft", "delete", "table", *self.TABLE.split())


def ping_netns(name: str, pod: str, address: str, count: int = 3) -> None:
    """Ping from `pod`; at least one reply must come back."""
    got, out = received(ping_stream(name, pod, address, count, 0.2))
    assert got > 0, out


# --- the module loads on demand ------------------------------------------------------


def test_felix_creates_tunl0_when_the_ipip_module_is_not_loaded_yet() -> None:
    from pyroute2 import IPRoute

    from pycalico.felix.calc.desired import IpipSpec
    from pycalico.felix.dataplane.ipip import ensure

    sh("modprobe", "-r", "ipip")
    assert ipip_available(), "calico-lab must accept --encap ipip while ipip is not loaded"
    ns = f"ipip-{uuid.uuid4().hex[:6]}"
    sh("ip", "netns", "add", ns)
    try:

        def create() -> None:
            with IPRoute() as ipr:
                ensure(ipr, IpipSpec(mtu=1480, address="10.99.0.1"))

        in_netns(f"/run/netns/{ns}", create)
        (tunl0,) = ip_json(ns, "addr", "show", "tunl0")
        assert tunl0["mtu"] == 1480 and "UP" in tunl0["flags"]
        assert [(a["local"], a["prefixlen"]) for a in tunl0["addr_info"]] == [("10.99.0.1", 32)]
    finally:
        sh("ip", "netns", "del", ns)


# --- two subnets, IPIP CrossSubnet --------------------------------------------------------


@pytest.fixture(scope="class")
def two_subnet() -> Iterator[str]:
    """node1 and node2 share 192.168.56.0/24; node3 is on 192.168.57.0/24."""
    options = ("--nodes", "3", "--topology", "two-subnet", "--encap", "ipip", "--cross-subnet")
    with lab_up(*options) as name:
        add_pods(name, 3)
        yield name


class TestCrossSubnet:
    def test_the_same_subnet_is_routed_on_eth0_and_the_other_subnet_through_tunl0(
        self, two_subnet: str
    ) -> None:
        owned = blocks_by_node(two_subnet)
        routes = felix_routes(ns_name(two_subnet, "node1"))
        (same,) = owned["node2"]
        (other,) = owned["node3"]
        assert route_text(routes[same]) == f"{same} via {node_ip(two_subnet, 'node2')} dev eth0"
        assert route_text(routes[other]) == (
            f"{other} via {node_ip(two_subnet, 'node3')} dev tunl0 onlink"
        )
        (tunl0,) = ip_json(ns_name(two_subnet, "node1"), "link", "show", "tunl0")
        assert tunl0["mtu"] == 1480

    def test_only_traffic_that_leaves_the_subnet_is_encapsulated(self, two_subnet: str) -> None:
        p1, p2, p3 = (pod_ip(two_subnet, p) for p in ("p1", "p2", "p3"))
        n1, n2, n3 = (node_ip(two_subnet, n) for n in ("node1", "node2", "node3"))
        with Wire(
            two_subnet,
            same_ipip=(n1, n2, IPIP_PROTO),
            same_plain=(p1, p2, ICMP),
            cross_ipip=(n1, n3, IPIP_PROTO),
            cross_plain=(p1, p3, ICMP),
        ) as wire:
            ping_netns(two_subnet, "p1", p2)
            ping_netns(two_subnet, "p1", p3)
            counts = wire.counts()
        assert counts["same_plain"] >= 3 and counts["same_ipip"] == 0, counts
        assert counts["cross_ipip"] >= 3 and counts["cross_plain"] == 0, counts
        assert "FAIL" not in lab("probe", "--name", two_subnet)


# --- a flat 3-node lab, IPIP Always, then switched to VXLAN ----------------------------------


def longest_loss(ping_output: str, sent: int) -> int:
    """The longest run of unanswered pings (by sequence number)."""
    answered = sorted({int(s) for s in re.findall(r"icmp_seq=(\d+)", ping_output)})
    edges = [0, *answered, sent + 1]
    return max(b - a - 1 for a, b in itertools.pairwise(edges))


@pytest.fixture(scope="class")
def flat() -> Iterator[str]:
    with lab_up("--nodes", "3", "--encap", "ipip") as name:
        add_pods(name, 3)
        yield name


class TestFlatAlways:
    def test_every_node_has_tunl0_with_its_ipam_tunnel_address_and_mtu_1480(
        self, flat: str
    ) -> None:
        nodes = nodes_json(flat)
        owned = blocks_by_node(flat)
        with datastore(flat) as backend:
            alloc = Allocator(backend)
            for node in NODES:
                tunnel = nodes[node]["spec"]["bgp"]["ipv4IPIPTunnelAddr"]
                handle = f"ipip-tunnel-addr-{node}"
                assert [str(a.ip) for a in alloc.addresses_of_handle(handle)] == [tunnel]
                assert any(
                    ipaddress.ip_address(tunnel) in ipaddress.ip_network(b) for b in owned[node]
                ), (node, tunnel, owned)
                (tunl0,) = ip_json(ns_name(flat, node), "addr", "show", "tunl0")
                assert tunl0["mtu"] == 1480, tunl0
                assert "UP" in tunl0["flags"]
                assert [(a["local"], a["prefixlen"]) for a in tunl0["addr_info"]] == [(tunnel, 32)]
        (pod_eth0,) = ip_json(LabState.load(flat).pods["default/p1"].netns, "link", "show", "eth0")
        assert pod_eth0["mtu"] == 1480  # the CNI took the MTU Felix wrote

    def test_the_trace_of_a_pod_pair_shows_tunl0_and_the_ipip_packet_on_the_wire(
        self, flat: str
    ) -> None:
        state = LabState.load(flat)
        found = json.loads(
            lab(
                "trace",
                "--name",
                flat,
                "--from",
                "default/p1",
                "--to",
                "default/p2",
                "--port",
                "80",
                "-o",
                "json",
            )
        )
        assert found["outcome"] == "delivered", found
        text = "\n".join(s["text"] for s in found["steps"])
        # the route line reads "via <node> dev tunl0 proto 80 onlink"
        route = [line for line in text.splitlines() if "dev tunl0" in line]
        assert route and "onlink" in route[0], text
        encap = [s["text"] for s in found["steps"] if s["kind"] == "encap"]
        node1, node2 = (state.node_ips[n].split("/")[0] for n in ("node1", "node2"))
        assert len(encap) == 1 and "IPIP on the wire" in encap[0], encap
        assert node1 in encap[0] and node2 in encap[0], encap
        assert state.pods["default/p2"].ip in encap[0], encap

    def test_remote_blocks_are_routed_via_the_node_ip_dev_tunl0_onlink_proto_80(
        self, flat: str
    ) -> None:
        owned = blocks_by_node(flat)
        for node in NODES:
            ns = ns_name(flat, node)
            routes = felix_routes(ns)
            for other in NODES:
                for block in owned[other] if other != node else []:
                    expected = f"{block} via {node_ip(flat, other)} dev tunl0 onlink"
                    assert block in routes, (node, block, routes)
                    assert route_text(routes[block]) == expected, (node, routes[block])
            text = sh("ip", "netns", "exec", ns, "ip", "route")
            for block in owned[node]:
                assert f"blackhole {block} proto bird" in text, text  # BIRD's, as in Calico

    def test_nodes_forward_although_the_stock_host_does_not(self, flat: str) -> None:
        with open("/proc/sys/net/ipv4/ip_forward", encoding="ascii") as f:
            assert f.read().strip() == "0"  # Debian's default, which new namespaces inherit
        for node in NODES:
            forwarding = sh(
                "ip", "netns", "exec", ns_name(flat, node), "sysctl", "-n", "net.ipv4.ip_forward"
            )
            assert forwarding.strip() == "1", node  # Felix turned it on

    def test_every_pod_reaches_every_pod_and_the_outside(self, flat: str) -> None:
        for proto in ("tcp", "icmp"):
            matrix = lab("probe", "--name", flat, "--proto", proto)
            assert "FAIL" not in matrix, matrix

    def test_pod_traffic_between_nodes_is_ip_protocol_4_on_the_underlay(self, flat: str) -> None:
        p1, p2 = pod_ip(flat, "p1"), pod_ip(flat, "p2")
        n1, n2 = node_ip(flat, "node1"), node_ip(flat, "node2")
        with Wire(
            flat, ipip=(n1, n2, IPIP_PROTO), back=(n2, n1, IPIP_PROTO), plain=(p1, p2, ICMP)
        ) as wire:
            ping_netns(flat, "p1", p2)
            counts = wire.counts()
        assert counts["ipip"] >= 3 and counts["back"] >= 3, counts
        assert counts["plain"] == 0, counts

    def test_ipip_between_nodes_survives_host_endpoints_that_allow_nothing_else(
        self, flat: str
    ) -> None:
        """IPIP (protocol 4) from other Calico hosts is admitted ahead of host endpoint
        policy, as Calico arranges it: a '*' host endpoint on node1 and one on node2's
        eth0, under a policy that allows nothing, leave pod traffic encapsulated and
        flowing. Both go again before the next check."""
        n1, n2 = node_ip(flat, "node1"), node_ip(flat, "node2")
        heps = [
            ("node1-all", {"node": "node1", "interfaceName": "*", "expectedIPs": [n1]}),
            ("node2-eth0", {"node": "node2", "interfaceName": "eth0", "expectedIPs": [n2]}),
        ]
        docs = [
            json.dumps(
                {
                    "apiVersion": "projectcalico.org/v3",
                    "kind": "HostEndpoint",
                    "metadata": {"name": hep_name, "labels": {"guarded": "yes"}},
                    "spec": spec,
                }
            )
            for hep_name, spec in heps
        ]
        docs.append(
            json.dumps(
                {
                    "apiVersion": "projectcalico.org/v3",
                    "kind": "GlobalNetworkPolicy",
                    "metadata": {"name": "guard-hosts"},
                    "spec": {"selector": "guarded == 'yes'", "types": ["Ingress", "Egress"]},
                }
            )
        )
        calicoctl(flat, "apply", "-f", "-", stdin="\n---\n".join(docs))
        try:
            settle(LabState.load(flat))
            ping = ["ip", "netns", "exec", ns_name(flat, "node3"), "ping", "-c1", "-W1"]
            assert subprocess.run([*ping, n1], capture_output=True).returncode != 0  # guarded
            with Wire(flat, ipip=(n1, n2, IPIP_PROTO), back=(n2, n1, IPIP_PROTO)) as wire:
                ping_netns(flat, "p1", pod_ip(flat, "p2"))
                counts = wire.counts()
            assert counts["ipip"] >= 3 and counts["back"] >= 3, counts
            assert "FAIL" not in lab("probe", "--name", flat)
        finally:
            for hep_name, _ in heps:
                calicoctl(flat, "delete", "hostendpoint", hep_name)
            calicoctl(flat, "delete", "globalnetworkpolicy", "guard-hosts")
            settle(LabState.load(flat))

    def test_switching_the_pool_to_vxlan_under_running_pods_moves_everything_within_2s(
        self, flat: str
    ) -> None:
        """Last in the class: it changes the lab the checks above read."""
        p2 = pod_ip(flat, "p2")
        n1, n2 = node_ip(flat, "node1"), node_ip(flat, "node2")
        pool = calicoctl(flat, "get", "ippool", "default-ipv4-ippool", "-o", "yaml")
        assert "ipipMode: Always" in pool and "vxlanMode: Never" in pool, pool
        switched = pool.replace("ipipMode: Always", "ipipMode: Never").replace(
            "vxlanMode: Never", "vxlanMode: Always"
        )
        ping = ping_stream(flat, "p1", p2, 100_000, PING_INTERVAL)
        try:
            calicoctl(flat, "apply", "-f", "-", stdin=switched)
            wait_for("every node's routes to move to vxlan.calico", lambda: moved(flat), 60)
            settle(LabState.load(flat))
            ping_netns(flat, "p1", p2)  # replies flow again before the stream is judged
        finally:
            ping.send_signal(signal.SIGINT)
            _, out = received(ping)
        sent = int(re.search(r"(\d+) packets transmitted", out).group(1))  # type: ignore[union-attr]
        lost = longest_loss(out, sent)
        print(f"longest run of lost pings while the pool switched: {lost}")
        assert lost <= MAX_LOST_IN_A_ROW, out[-2000:]
        nodes = nodes_json(flat)
        owned = blocks_by_node(flat)
        with datastore(flat) as backend:
            alloc = Allocator(backend)
            for node in NODES:
                ns = ns_name(flat, node)
                assert "ipv4IPIPTunnelAddr" not in nodes[node]["spec"].get("bgp", {})
                assert alloc.addresses_of_handle(f"ipip-tunnel-addr-{node}") == []
                vtep = nodes[node]["spec"]["ipv4VXLANTunnelAddr"]
                (vxlan,) = ip_json(ns, "addr", "show", "vxlan.calico")
                assert vxlan["mtu"] == 1450
                assert [a["local"] for a in vxlan["addr_info"] if a["family"] == "inet"] == [vtep]
                assert sh("ip", "netns", "exec", ns, "ip", "route", "show", "dev", "tunl0") == ""
                (tunl0,) = ip_json(ns, "addr", "show", "tunl0")
                assert [a for a in tunl0["addr_info"] if a["family"] == "inet"] == [], tunl0
                text = sh("ip", "netns", "exec", ns, "ip", "route")
                for block in owned[node]:
                    assert f"blackhole {block} proto 80" in text, text  # Felix's, for VXLAN
        with Wire(flat, vxlan=(n1, n2, UDP), ipip=(n1, n2, IPIP_PROTO)) as wire:
            ping_netns(flat, "p1", p2)
            counts = wire.counts()
        assert counts["vxlan"] >= 3 and counts["ipip"] == 0, counts
        assert "FAIL" not in lab("probe", "--name", flat)


def moved(name: str) -> bool:
    """Every node routes every remote block through vxlan.calico, none through tunl0."""
    for node in NODES:
        routes = felix_routes(ns_name(name, node)).values()
        if {r["dev"] for r in routes if r.get("type") != "blackhole"} != {"vxlan.calico"}:
            return False
    return True

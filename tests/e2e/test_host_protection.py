"""Host protection in the lab: host endpoints, failsafe ports, preDNAT, doNotTrack and the
automatic host endpoints of kube-controllers, with real packets from the external host
(203.0.113.1) and between pods, and `calicoctl policy explain` agreeing."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pycalico.lab.cluster import EXTERNAL_IP
from pycalico.lab.namespaces import ns_name
from pycalico.lab.settle import settle
from pycalico.lab.state import LabState
from pycalico.netns import in_netns
from tests.support.host_protection_net import connects
from tests.support.lab_driver import (
    calicoctl,
    down_leaving_nothing,
    explained,
    lab,
    node_ip,
    ping_three,
    pod_ip,
    wait_for,
)

pytestmark = pytest.mark.e2e

HEP_LABELS = {"host-endpoint": "ingress"}
ALLOW_8080 = {
    "selector": "host-endpoint == 'ingress'",
    "ingress": [
        {
            "action": "Allow",
            "protocol": "TCP",
            "source": {"nets": ["203.0.113.0/24"]},
            "destination": {"ports": [8080]},
        }
    ],
}


def _yaml(kind: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> str:
    meta: dict[str, Any] = {"name": name, **({"labels": labels} if labels else {})}
    return json.dumps(
        {"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": meta, "spec": spec}
    )


def apply(name: str, *docs: str) -> None:
    calicoctl(name, "apply", "-f", "-", stdin="\n---\n".join(docs))
    settle(LabState.load(name))


def delete(name: str, kind: str, *names: str) -> None:
    for item in names:
        calicoctl(name, "delete", kind, item)
    settle(LabState.load(name))


def hep(name: str, node: str, interface: str) -> str:
    return _yaml(
        "HostEndpoint",
        f"{node}-{'all' if interface == '*' else interface}",
        {"node": node, "interfaceName": interface, "expectedIPs": [node_ip(name, node)]},
        HEP_LABELS,
    )


@contextlib.contextmanager
def node_servers(name: str, node: str, ports: str) -> Iterator[None]:
    """Echo servers on a node's own (host) network, stopped by pid afterwards."""
    ns = ns_name(name, node)
    server = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "pycalico.lab.echo", ports],
        stdout=subprocess.DEVNULL,
    )
    try:
        first = int(ports.split(",")[0])
        wait_for("the node's servers", lambda: connects(ns, "127.0.0.1", first, timeout=0.5))
        yield
    finally:
        server.kill()
        server.wait()


def from_outside(name: str, ip: str, port: int) -> bool:
    return connects(ns_name(name, "ext"), ip, port)


@pytest.fixture(scope="module")
def vxlan_lab() -> Iterator[str]:
    """Two VXLAN nodes, a pod on each serving TCP 80, listeners on node1's host network."""
    name = f"h{uuid.uuid4().hex[:5]}"
    try:
        lab("up", "--name", name, "--nodes", "2")
        lab("pod", "add", "p1", "--node", "node1", "--serve", "80", "--name", name)
        lab("pod", "add", "p2", "--node", "node2", "--serve", "80", "--name", name)
        with node_servers(name, "node1", "8080,8081,8082,22"):
            yield name
    finally:
        down_leaving_nothing(name)


def pods_talk(name: str) -> bool:
    p1, p2 = (LabState.load(name).pods[f"default/{p}"].netns for p in ("p1", "p2"))
    return connects(p1, pod_ip(name, "p2"), 80) and connects(p2, pod_ip(name, "p1"), 80)


def test_a_host_endpoint_on_eth0_admits_policy_and_failsafes_and_pod_traffic_survives(
    vxlan_lab: str,
) -> None:
    name, node1 = vxlan_lab, node_ip(vxlan_lab, "node1")
    assert from_outside(name, node1, 8081)  # nothing protects the host yet
    apply(name, hep(name, "node1", "eth0"), _yaml("GlobalNetworkPolicy", "allow-8080", ALLOW_8080))
    try:
        assert from_outside(name, node1, 8080)
        assert not from_outside(name, node1, 8081)
        assert from_outside(name, node1, 22)  # failsafe: no policy allows it
        assert not connects(ns_name(name, "node2"), node1, 8081)  # not from 203.0.113.0/24
        assert pods_talk(name)  # VXLAN between the nodes, forwarded pod traffic
        for port, allowed in ((8080, True), (8081, False), (22, True)):
            assert explained(name, EXTERNAL_IP, "node:node1", port) == allowed
    finally:
        delete(name, "hostendpoint", "node1-eth0")
    assert from_outside(name, node1, 8081)  # the host endpoint gone, all restored
    delete(name, "globalnetworkpolicy", "allow-8080")


def test_the_all_interfaces_endpoint_protects_the_host_not_forwarded_pod_traffic(
    vxlan_lab: str,
) -> None:
    name, node1 = vxlan_lab, node_ip(vxlan_lab, "node1")
    apply(name, hep(name, "node1", "*"), _yaml("GlobalNetworkPolicy", "allow-8080", ALLOW_8080))
    try:
        assert from_outside(name, node1, 8080)
        assert not from_outside(name, node1, 8081)
        assert not connects(ns_name(name, "node1"), EXTERNAL_IP, 80)  # host egress: deny
        assert pods_talk(name)
        assert connects(LabState.load(name).pods["default/p1"].netns, EXTERNAL_IP, 80)
        assert connects(ns_name(name, "node1"), pod_ip(name, "p1"), 80)  # its own pod
        # A pod to its own host: the lab's Felix has DefaultEndpointToHostAction ACCEPT.
        assert connects(LabState.load(name).pods["default/p1"].netns, node1, 8081)
        assert explained(name, "node:node1", "default/p1", 80)
        assert explained(name, "default/p1", EXTERNAL_IP, 80)
    finally:
        delete(name, "hostendpoint", "node1-all")
        delete(name, "globalnetworkpolicy", "allow-8080")


@contextlib.contextmanager
def node_port(name: str, node: str, port: int, pod: str) -> Iterator[None]:
    """node:port DNAT-ed to the pod's port 80, as kube-proxy would (the test's own table,
    removed afterwards)."""
    ns = ns_name(name, node)
    script = (
        "add table ip hepnodeport\n"
        "add chain ip hepnodeport pre { type nat hook prerouting priority dstnat; }\n"
        f"add rule ip hepnodeport pre tcp dport {port} dnat to {pod_ip(name, pod)}:80\n"
    )
    subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-f", "-"], input=script, text=True, check=True
    )
    try:
        yield
    finally:
        subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "delete", "table", "ip", "hepnodeport"], check=False
        )


def test_a_pre_dnat_policy_closes_a_node_port_that_normal_policy_would_open(
    vxlan_lab: str,
) -> None:
    name, node1 = vxlan_lab, node_ip(vxlan_lab, "node1")
    close = {
        "selector": "host-endpoint == 'ingress'",
        "preDNAT": True,
        "applyOnForward": True,
        "ingress": [
            {
                "action": "Deny",
                "protocol": "TCP",
                "source": {"nets": ["203.0.113.0/24"]},
                "destination": {"ports": [30080]},
            }
        ],
    }
    with node_port(name, "node1", 30080, "p1"):
        apply(
            name, hep(name, "node1", "eth0"), _yaml("GlobalNetworkPolicy", "allow-8080", ALLOW_8080)
        )
        try:
            assert from_outside(name, node1, 30080)  # forwarded to p1:80, which is open
            apply(name, _yaml("GlobalNetworkPolicy", "close-nodeport", close))
            assert not from_outside(name, node1, 30080)
            p2 = LabState.load(name).pods["default/p2"].netns
            assert connects(p2, pod_ip(name, "p1"), 80)  # the pod's own port stays open
            assert not explained(name, EXTERNAL_IP, "node:node1", 30080)
        finally:
            delete(name, "hostendpoint", "node1-eth0")
            delete(name, "globalnetworkpolicy", "allow-8080", "close-nodeport")


def _conntrack(name: str, node: str, flush: bool = False) -> set[tuple[str, int]]:
    """The node's conntrack entries as (source, destination port); `flush`: empty it first."""

    def work() -> set[tuple[str, int]]:
        from pyroute2 import Conntrack

        with Conntrack(nfgen_family=socket.AF_INET) as ct:
            if flush:
                ct.flush()
            return {(e.tuple_orig.saddr, int(e.tuple_orig.dport or 0)) for e in ct.dump_entries()}

    return in_netns(f"/run/netns/{ns_name(name, node)}", work)


def test_a_do_not_track_policy_admits_a_flow_conntrack_never_sees(vxlan_lab: str) -> None:
    name, node1 = vxlan_lab, node_ip(vxlan_lab, "node1")
    untracked = {
        "selector": "host-endpoint == 'ingress'",
        "doNotTrack": True,
        "applyOnForward": True,
        "ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": [8082]}}],
        "egress": [{"action": "Allow", "protocol": "TCP", "source": {"ports": [8082]}}],
    }
    apply(name, hep(name, "node1", "eth0"), _yaml("GlobalNetworkPolicy", "untracked", untracked))
    try:
        _conntrack(name, "node1", flush=True)
        assert from_outside(name, node1, 8082)  # normal policy has nothing for it
        assert not from_outside(name, node1, 8081)  # ... and refuses what is not untracked
        assert from_outside(name, node1, 22)  # a tracked flow, for comparison
        tracked = _conntrack(name, "node1")
        assert (EXTERNAL_IP, 22) in tracked and (EXTERNAL_IP, 8082) not in tracked
    finally:
        delete(name, "hostendpoint", "node1-eth0")
        delete(name, "globalnetworkpolicy", "untracked")


def test_automatic_host_endpoints_follow_kube_controllers_configuration(vxlan_lab: str) -> None:
    name, node1 = vxlan_lab, node_ip(vxlan_lab, "node1")

    def autos() -> list[dict[str, Any]]:
        listed = json.loads(calicoctl(name, "get", "hostendpoints", "-o", "json"))
        return [h for h in listed["items"] if h["metadata"]["name"].endswith("-auto-hep")]

    wait_for(
        "kube-controllers' default configuration",
        lambda: "default" in calicoctl(name, "get", "kubecontrollersconfiguration"),
    )
    enable = '{"spec": {"controllers": {"node": {"hostEndpoint": {"autoCreate": "Enabled"}}}}}'
    calicoctl(name, "patch", "kubecontrollersconfiguration", "default", "--patch", enable)
    wait_for("two automatic host endpoints", lambda: len(autos()) == 2)
    by_node = {h["spec"]["node"]: h for h in autos()}
    assert by_node["node1"]["spec"]["interfaceName"] == "*"
    assert node1 in by_node["node1"]["spec"]["expectedIPs"]
    assert by_node["node1"]["spec"]["profiles"] == ["projectcalico-default-allow"]
    settle(LabState.load(name))
    # Allow-all until a policy selects them: everything still works.
    assert from_outside(name, node1, 8081) and pods_talk(name)
    protect = {
        "selector": "projectcalico.org/created-by == 'calico-kube-controllers'",
        "order": 10,
        "ingress": ALLOW_8080["ingress"],
    }
    apply(name, _yaml("GlobalNetworkPolicy", "protect-nodes", protect))
    try:
        assert from_outside(name, node1, 8080)
        assert not from_outside(name, node1, 8081)
        assert from_outside(name, node1, 22)
        assert pods_talk(name)
    finally:
        delete(name, "globalnetworkpolicy", "protect-nodes")
        disable = (
            '{"spec": {"controllers": {"node": {"hostEndpoint": {"autoCreate": "Disabled"}}}}}'
        )
        calicoctl(name, "patch", "kubecontrollersconfiguration", "default", "--patch", disable)
        wait_for("the automatic host endpoints gone", lambda: autos() == [])


def test_bgp_sessions_come_back_through_a_host_endpoint(make_lab: Callable[..., str]) -> None:
    """--encap none: routes travel by BGP (TCP 179, a failsafe port both ways); sessions
    restarted under a host endpoint that allows nothing else still establish."""
    name = make_lab("--nodes", "2", "--encap", "none")
    lab("pod", "add", "a", "--node", "node1", "--name", name)
    lab("pod", "add", "b", "--node", "node2", "--name", name)
    state = LabState.load(name)

    def established() -> bool:
        out = calicoctl(name, "node", "status")
        return "Established" in out

    wait_for("the mesh", established)
    apply(name, hep(name, "node1", "eth0"))
    socket_path = state.path("nodes", "node1", "run", "bird.ctl")
    subprocess.run(["birdc", "-s", socket_path, "restart", "all"], check=True, capture_output=True)
    wait_for("the mesh re-established through the host endpoint", established)
    ping_three(name, "a", pod_ip(name, "b"))
    # The host endpoint is in force: the outside's ping to node1 meets its default deny.
    ping = ["ip", "netns", "exec", ns_name(name, "ext"), "ping", "-c1", "-W1"]
    assert subprocess.run([*ping, node_ip(name, "node1")], capture_output=True).returncode != 0
    assert subprocess.run([*ping, node_ip(name, "node2")], capture_output=True).returncode == 0

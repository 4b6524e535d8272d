"""Felix's desired state: snapshot + settings + the host's links in, one typed value out."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from pycalico.api.resource import normalize
from pycalico.felix.calc.desired import (
    Calculator,
    DesiredStateError,
    Forwarding,
    HostLinks,
    IpipSpec,
    VxlanSpec,
)
from pycalico.felix.calc.mtu import Link
from pycalico.felix.calc.routes import PROTO_BOOT, NodeInfo, PoolInfo, Route, Workload
from pycalico.felix.calc.settings import resolve
from pycalico.felix.calc.snapshot import Snapshot
from pycalico.felix.rules.nat import NatPool
from pycalico.policy import calc as policy_calc
from pycalico.policy import model

NET = ipaddress.ip_network
HOST = HostLinks(
    (Link("lo", 65536, True), Link("eth0", 1500, True), Link("tunl0", 1480, False)),
    (("127.0.0.1", "lo"), ("192.0.2.11", "eth0")),
)


def snapshot(vxlan: str = "Always", ipip: str = "Never", revision: int = 7) -> Snapshot:
    return Snapshot(
        revision=revision,
        nodes={
            "node1": NodeInfo(
                "node1", ipaddress.ip_interface("192.0.2.11/24"), "10.244.1.0", "66:00:00:00:00:01"
            ),
            "node2": NodeInfo(
                "node2", ipaddress.ip_interface("192.0.2.12/24"), "10.244.2.0", "66:00:00:00:00:02"
            ),
        },
        pools=[PoolInfo(NET("10.244.0.0/16"), ipip, vxlan)],
        nat_pools=[NatPool("10.244.0.0/16", True)],
        block_owners={NET("10.244.1.0/26"): "node1", NET("10.244.2.0/26"): "node2"},
    )


def test_vxlan_node_gets_device_routes_mtu_and_notrack_from_its_settings() -> None:
    settings = resolve({}, {"vxlanVNI": 5000, "vxlanPort": 4790}, {})
    desired = Calculator("node1").calculate(snapshot(), settings, HOST)
    routing = desired.routing
    assert routing.underlay == "eth0"
    assert routing.vxlan == VxlanSpec(
        5000, 4790, "192.0.2.11", "eth0", "66:00:00:00:00:01", 1450, "10.244.1.0"
    )
    assert routing.ipip is None
    assert routing.pod_mtu == 1450
    assert routing.forwarding == Forwarding(ipv4=True, ipv6=True)
    assert (
        Route("10.244.2.0/26", dev="vxlan.calico", via="10.244.2.0", onlink=True, proto=PROTO_BOOT)
        in routing.state.routes
    )
    assert desired.ruleset.chains["raw-PREROUTING"] == ('udp dport 4790 notrack comment "vxlan"',)
    assert desired.revision == 7


def test_ipip_node_gets_tunl0_with_the_configured_mtu() -> None:
    settings = resolve({"FELIX_IPIPMTU": "1400"}, {}, {})
    routing = Calculator("node1").calculate(snapshot("Never", "Always"), settings, HOST).routing
    assert routing.ipip == IpipSpec(1400, "")
    assert routing.vxlan is None and routing.vxlan_port is None
    assert routing.pod_mtu == 1400


def test_ip_forwarding_disabled_leaves_forwarding_alone() -> None:
    settings = resolve({}, {"ipForwarding": "Disabled"}, {})
    assert Calculator("node1").calculate(snapshot(), settings, HOST).routing.forwarding is None


def test_endpoint_to_host_action_reaches_the_ruleset() -> None:
    settings = resolve({}, {}, {"defaultEndpointToHostAction": "Accept"})
    desired = Calculator("node1").calculate(snapshot(), settings, HOST)
    assert desired.ruleset.chains["filter-cali-wl-to-host"][-1].startswith("accept ")


def test_the_same_routing_inputs_give_back_the_same_routing_object() -> None:
    """What lets a policy-only change skip the device and route managers."""
    calculator = Calculator("node1")
    settings = resolve({}, {}, {})
    first = calculator.calculate(snapshot(revision=1), settings, HOST)
    again = calculator.calculate(snapshot(revision=2), settings, dataclasses.replace(HOST))
    assert again.routing is first.routing
    other_settings = resolve({}, {"vxlanMTU": 1400}, {})
    changed = calculator.calculate(snapshot(revision=3), other_settings, HOST)
    assert changed.routing is not first.routing and changed.routing.pod_mtu == 1400
    other_host = HostLinks((Link("eth0", 9000, True),), HOST.addresses)
    assert calculator.calculate(snapshot(), other_settings, other_host).routing.pod_mtu == 1400
    assert calculator.calculate(snapshot(), settings, other_host).routing.pod_mtu == 8950


KNS_DEFAULT = model.profile(
    normalize(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "Profile",
            "metadata": {"name": "kns.default"},
            "spec": {"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]},
        }
    )
)
POD = model.endpoint(
    normalize(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "WorkloadEndpoint",
            "metadata": {"name": "node1-k8s-a-eth0", "namespace": "default"},
            "spec": {
                "node": "node1",
                "orchestrator": "k8s",
                "pod": "a",
                "endpoint": "eth0",
                "interfaceName": "calia",
                "ipNetworks": ["10.246.1.5/32"],
                "profiles": ["kns.default"],
            },
        }
    ),
    {"kns.default": KNS_DEFAULT},
)


def policy_only_snapshot(*pools: PoolInfo) -> Snapshot:
    """node1 without an address (CALICO_NETWORKING_BACKEND=none), one pod of its own, and a
    node2 that has an address, a VTEP and a block."""
    return Snapshot(
        revision=3,
        nodes={
            "node1": NodeInfo("node1", None, "10.246.1.0"),
            "node2": NodeInfo(
                "node2", ipaddress.ip_interface("192.0.2.12/24"), "10.246.2.0", "66:00:00:00:00:02"
            ),
        },
        pools=list(pools),
        nat_pools=[NatPool(str(p.cidr), True) for p in pools],
        workloads=[Workload("10.246.1.5/32", "calia")],
        block_owners={NET("10.246.1.0/26"): "node1", NET("10.246.2.0/26"): "node2"},
        borrowed={"10.246.1.9": "node2"},
        policy=policy_calc.Inputs(
            [POD], [], {"kns.default": KNS_DEFAULT}, {"default": policy_calc.Tier("default", 1)}
        ),
    )


OWN_ROUTES = {
    Route("10.246.1.5/32", dev="calia", proto=PROTO_BOOT, scope="link"),
    Route("10.246.1.0/26", kind="blackhole"),
}


def test_a_node_without_an_address_gets_policy_its_pods_routes_and_nat() -> None:
    desired = Calculator("node1").calculate(
        policy_only_snapshot(PoolInfo(NET("10.246.0.0/16"))), resolve({}, {}, {}), HOST
    )
    routing = desired.routing
    assert desired.endpoints == frozenset({"calia"})
    assert desired.workload_addresses == frozenset({NET("10.246.1.5/32")})
    assert {"filter-cali-fw-calia", "filter-cali-tw-calia"} <= desired.ruleset.chains.keys()
    assert "nat-outgoing" in desired.ruleset.base_chains
    assert routing.state.routes == OWN_ROUTES
    assert (routing.underlay, routing.vxlan, routing.ipip, routing.vxlan_port) == (
        "",
        None,
        None,
        None,
    )
    assert routing.forwarding == Forwarding(ipv4=True, ipv6=True)
    assert routing.pod_mtu == 1500
    assert routing.warnings == ()


def test_a_node_without_an_address_builds_no_tunnel_its_pools_ask_for_and_says_why() -> None:
    snap = policy_only_snapshot(
        PoolInfo(NET("10.246.0.0/16"), vxlan_mode="Always"),
        PoolInfo(NET("10.247.0.0/16"), ipip_mode="Always"),
    )
    desired = Calculator("node1").calculate(snap, resolve({}, {}, {}), HOST)
    routing = desired.routing
    assert (routing.vxlan, routing.ipip, routing.vxlan_port) == (None, None, None)
    assert "raw-PREROUTING" not in desired.ruleset.chains
    assert routing.state.routes == OWN_ROUTES  # nothing via vxlan.calico, tunl0 or eth0
    assert routing.state.neighbours == set() and routing.state.fdb == set()
    assert routing.pod_mtu == 1500  # no tunnel overhead for a tunnel not built
    assert len(routing.warnings) == 2
    for warning, device, mode in zip(
        routing.warnings, ("vxlan.calico", "tunl0"), ("vxlanMode", "ipipMode"), strict=True
    ):
        assert warning.startswith("Node node1 has no IPv4 address (policy-only mode): no ")
        assert device in warning and mode in warning


def test_a_node_not_registered_yet_is_a_node_without_an_address() -> None:
    snap = policy_only_snapshot(PoolInfo(NET("10.246.0.0/16")))
    del snap.nodes["node1"]
    routing = Calculator("node1").calculate(snap, resolve({}, {}, {}), HOST).routing
    assert routing.state.routes == OWN_ROUTES


def test_a_node_whose_address_no_link_holds_has_no_desired_state_yet() -> None:
    host = HostLinks(HOST.links, (("127.0.0.1", "lo"),))
    with pytest.raises(DesiredStateError, match="no interface holds this node's address"):
        Calculator("node1").calculate(snapshot(), resolve({}, {}, {}), host)

"""Felix's route calculation for every pool mode (pure; the kernel is not involved)."""

from __future__ import annotations

import ipaddress

from pycalico.felix.calc.routes import (
    PROTO_BOOT,
    FdbEntry,
    Neighbour,
    NodeInfo,
    PoolInfo,
    Route,
    RouteState,
    Workload,
    calculate,
)

NET = ipaddress.ip_network
NODES = {
    "node1": NodeInfo(
        "node1", ipaddress.ip_interface("192.0.2.11/24"), "10.244.1.0", "66:00:00:00:00:01"
    ),
    "node2": NodeInfo(
        "node2", ipaddress.ip_interface("192.0.2.12/24"), "10.244.2.0", "66:00:00:00:00:02"
    ),
    "node3": NodeInfo(
        "node3", ipaddress.ip_interface("198.51.100.13/24"), "10.244.3.0", "66:00:00:00:00:03"
    ),
}
BLOCKS = {
    NET("10.244.1.0/26"): "node1",
    NET("10.244.2.0/26"): "node2",
    NET("10.244.3.0/26"): "node3",
}


def calc(
    pool: PoolInfo, borrowed: dict[str, str] | None = None, workloads: list[Workload] | None = None
) -> RouteState:
    return calculate("node1", NODES, [pool], BLOCKS, borrowed or {}, workloads or [], "eth0")


def test_local_workloads_get_host_routes_and_local_blocks_a_blackhole() -> None:
    state = calc(
        PoolInfo(NET("10.244.0.0/16"), vxlan_mode="Always"),
        workloads=[Workload("10.244.1.5/32", "cali1234567890a")],
    )
    assert (
        Route("10.244.1.5/32", dev="cali1234567890a", proto=PROTO_BOOT, scope="link")
        in state.routes
    )
    assert Route("10.244.1.0/26", kind="blackhole") in state.routes


def test_vxlan_always_routes_remote_blocks_via_their_vtep_with_neighbour_and_fdb() -> None:
    state = calc(PoolInfo(NET("10.244.0.0/16"), vxlan_mode="Always"))
    assert (
        Route("10.244.2.0/26", dev="vxlan.calico", via="10.244.2.0", onlink=True, proto=PROTO_BOOT)
        in state.routes
    )
    assert (
        Route("10.244.3.0/26", dev="vxlan.calico", via="10.244.3.0", onlink=True, proto=PROTO_BOOT)
        in state.routes
    )
    assert state.neighbours == {
        Neighbour("10.244.2.0", "66:00:00:00:00:02"),
        Neighbour("10.244.3.0", "66:00:00:00:00:03"),
    }
    assert state.fdb == {
        FdbEntry("66:00:00:00:00:02", "192.0.2.12"),
        FdbEntry("66:00:00:00:00:03", "198.51.100.13"),
    }


def test_vxlan_cross_subnet_routes_same_subnet_nodes_directly() -> None:
    state = calc(PoolInfo(NET("10.244.0.0/16"), vxlan_mode="CrossSubnet"))
    assert Route("10.244.2.0/26", dev="eth0", via="192.0.2.12", onlink=True) in state.routes
    assert (
        Route("10.244.3.0/26", dev="vxlan.calico", via="10.244.3.0", onlink=True, proto=PROTO_BOOT)
        in state.routes
    )
    assert state.fdb == {FdbEntry("66:00:00:00:00:03", "198.51.100.13")}


def test_ipip_always_and_cross_subnet_use_tunl0_onlink_via_the_node_ip() -> None:
    always = calc(PoolInfo(NET("10.244.0.0/16"), ipip_mode="Always"))
    assert Route("10.244.2.0/26", dev="tunl0", via="192.0.2.12", onlink=True) in always.routes
    cross = calc(PoolInfo(NET("10.244.0.0/16"), ipip_mode="CrossSubnet"))
    assert Route("10.244.2.0/26", dev="eth0", via="192.0.2.12") in cross.routes
    assert Route("10.244.3.0/26", dev="tunl0", via="198.51.100.13", onlink=True) in cross.routes
    assert not always.neighbours and not always.fdb


def test_no_encapsulation_leaves_remote_blocks_to_bgp() -> None:
    state = calc(PoolInfo(NET("10.244.0.0/16")))
    assert {r.dst for r in state.routes} == {"10.244.1.0/26"}


def test_addresses_borrowed_by_another_node_are_routed_to_it_individually() -> None:
    state = calc(
        PoolInfo(NET("10.244.0.0/16"), vxlan_mode="Always"),
        borrowed={"10.244.1.9": "node2", "10.244.2.7": "node1"},
    )
    assert (
        Route("10.244.1.9/32", dev="vxlan.calico", via="10.244.2.0", onlink=True, proto=PROTO_BOOT)
        in state.routes
    )
    assert not any(r.dst == "10.244.2.7/32" for r in state.routes)


def test_nodes_without_a_known_vtep_or_address_get_no_route_yet() -> None:
    nodes = {**NODES, "node2": NodeInfo("node2", ipaddress.ip_interface("192.0.2.12/24"))}
    state = calculate(
        "node1",
        nodes,
        [PoolInfo(NET("10.244.0.0/16"), vxlan_mode="Always")],
        {NET("10.244.2.0/26"): "node2", NET("10.244.9.0/26"): "ghost"},
        {},
        [],
        "eth0",
    )
    assert state.routes == set() and state.fdb == set()


def test_a_pool_switched_to_vxlan_keeps_the_ipip_route_until_the_remote_vtep_is_known() -> None:
    switching = NodeInfo(
        "node2", ipaddress.ip_interface("192.0.2.12/24"), ipip_address="10.244.2.1"
    )
    pools = [PoolInfo(NET("10.244.0.0/16"), vxlan_mode="Always")]
    blocks = {NET("10.244.2.0/26"): "node2"}
    nodes = {**NODES, "node2": switching}
    before = calculate("node1", nodes, pools, blocks, {}, [], "eth0", tunl0_up=True)
    assert (
        before.routes == {Route("10.244.2.0/26", dev="tunl0", via="192.0.2.12", onlink=True)}
        and before.fdb == set()
    )
    # A node that cannot send IPIP (tunl0 down or absent) has nothing to keep.
    assert calculate("node1", nodes, pools, blocks, {}, [], "eth0").routes == set()
    after = calculate("node1", NODES, pools, blocks, {}, [], "eth0", tunl0_up=True)
    assert after.routes == {
        Route("10.244.2.0/26", dev="vxlan.calico", via="10.244.2.0", onlink=True, proto=PROTO_BOOT)
    }


def test_blocks_outside_every_pool_are_ignored() -> None:
    state = calculate(
        "node1",
        NODES,
        [PoolInfo(NET("10.244.0.0/16"), vxlan_mode="Always")],
        {NET("172.16.0.0/26"): "node2"},
        {},
        [],
        "eth0",
    )
    assert state.routes == set()


def test_vxlan_routes_carry_the_device_route_protocol_and_the_rest_felixs_own() -> None:
    """As Calico's Felix: `ip route` shows VXLAN routes with no protocol (boot), while
    blackholes and same-subnet routes are `proto 80`."""
    state = calc(PoolInfo(NET("10.244.0.0/16"), vxlan_mode="CrossSubnet"))
    protocols = {(r.dev or r.kind): r.proto for r in state.routes}
    assert protocols == {"blackhole": 80, "vxlan.calico": PROTO_BOOT, "eth0": 80}


def test_a_node_without_an_address_routes_only_its_own_pods_and_blocks_in_every_mode() -> None:
    """Policy-only mode: every route to another node starts from this node's address."""
    nodes = {**NODES, "node1": NodeInfo("node1", None, "10.244.1.0", "66:00:00:00:00:01")}
    workload = Workload("10.244.1.5/32", "cali1234567890a")
    own = {
        Route("10.244.1.5/32", dev="cali1234567890a", proto=PROTO_BOOT, scope="link"),
        Route("10.244.1.0/26", kind="blackhole"),
    }
    for mode in ("Always", "CrossSubnet"):
        for pool in (
            PoolInfo(NET("10.244.0.0/16"), vxlan_mode=mode),
            PoolInfo(NET("10.244.0.0/16"), ipip_mode=mode),
        ):
            state = calculate(
                "node1", nodes, [pool], BLOCKS, {"10.244.1.9": "node2"}, [workload], ""
            )
            assert state == RouteState(own), pool

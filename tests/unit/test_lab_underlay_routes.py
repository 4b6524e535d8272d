"""The routes the lab makes on its underlay, which `repair` restores."""

from __future__ import annotations

from pycalico.lab.state import LabState
from pycalico.lab.underlay_routes import expected


def lab(**fields: object) -> LabState:
    state = LabState("t", ["node1", "node2", "node3"], pool="10.244.0.0/16")
    state.node_ips = {
        "node1": "192.168.56.10/24",
        "node2": "192.168.56.11/24",
        "node3": "192.168.57.12/24",
    }
    for key, value in fields.items():
        setattr(state, key, value)
    return state


def test_every_node_has_a_default_route_via_its_subnets_router_address() -> None:
    routes = [r.text() for r in expected(lab()) if r.role.startswith("node")]
    assert routes == [
        "default via 192.168.56.1 dev eth0",
        "default via 192.168.56.1 dev eth0",
        "default via 192.168.57.1 dev eth0",
    ]


def test_the_external_host_routes_back_to_the_nodes_and_behind_a_tor_to_the_pods() -> None:
    flat = [(r.role, r.text()) for r in expected(lab()) if r.role == "ext"]
    assert flat == [("ext", "192.168.56.0/23 via 203.0.113.254 dev eth0")]
    tor = [r.dst for r in expected(lab(topology="tor")) if r.role == "ext"]
    assert tor == ["192.168.56.0/23", "10.244.0.0/16"]


def test_etcd_members_have_default_routes_too() -> None:
    roles = [r.role for r in expected(lab(datastore="etcd"))]
    assert roles.count("etcd1") == roles.count("etcd3") == 1

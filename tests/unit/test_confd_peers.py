"""BGP mesh peerings, protocol names and router ids, as confd computes them."""

from __future__ import annotations

from pycalico.confd.peers import BgpNode, Peering, mesh, protocol_name, router_id

NODES = {
    "node1": BgpNode("node1", "192.168.56.11"),
    "node2": BgpNode("node2", "192.168.56.12", asn=64513),
    "node3": BgpNode("node3", "192.168.56.9"),
    "rr": BgpNode("rr", "192.168.56.20", rr_cluster_id="244.0.0.1"),
    "bare": BgpNode("bare", ""),
}


def test_protocol_names_turn_separators_into_underscores() -> None:
    assert protocol_name("Mesh", "192.168.56.12") == "Mesh_192_168_56_12"
    assert protocol_name("Node", "fd00::2") == "Node_fd00__2"
    assert protocol_name("Global", "10.0.0.1", 1179) == "Global_10_0_0_1_port_1179"


def test_mesh_pairs_every_addressed_non_reflector_node_once() -> None:
    peers = mesh(NODES["node1"], NODES)
    assert peers == [
        Peering("Mesh_192_168_56_12", "192.168.56.12", 64513, passive=True),
        Peering("Mesh_192_168_56_9", "192.168.56.9", 64512, passive=True),
    ]


def test_only_the_side_with_the_smaller_ip_string_dials() -> None:
    # "192.168.56.9" > "192.168.56.11" as strings, so node1 is passive towards node3 and
    # node3 dials it, as in Calico (a string comparison, not a numeric one).
    towards_node1 = [p for p in mesh(NODES["node3"], NODES) if p.ip == "192.168.56.11"]
    assert towards_node1[0].passive is False


def test_no_mesh_on_reflectors_when_disabled_or_without_an_address() -> None:
    assert mesh(NODES["rr"], NODES) == []
    assert mesh(NODES["node1"], NODES, mesh_enabled=False) == []
    assert mesh(NODES["bare"], NODES) == []


def test_router_id_is_the_node_ip_unless_set_or_hashed() -> None:
    assert router_id(NODES["node1"]) == "192.168.56.11"
    assert router_id(NODES["node1"], "10.9.9.9") == "10.9.9.9"
    hashed = router_id(NODES["node1"], "hash")
    assert hashed == router_id(NODES["node1"], "hash") and int(hashed.split(".")[0]) <= 223

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


def test_only_the_side_with_the_greater_ip_string_dials() -> None:
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


# --- explicit peers (BGPPeer) ----------------------------------------------------------

from pycalico.confd.peers import DEFAULT_AS, PeerSpec, explicit, split_peer_ip  # noqa: E402

CLUSTER = {
    "a": BgpNode("a", "10.0.0.1", labels={"rack": "r1"}),
    "b": BgpNode("b", "10.0.0.2", labels={"rack": "r2"}),
    "rr1": BgpNode("rr1", "10.0.0.11", rr_cluster_id="1.1.1.1", labels={"rr": "true"}),
    "rr2": BgpNode("rr2", "10.0.0.12", rr_cluster_id="2.2.2.2", labels={"rr": "true"}),
}
TO_REFLECTORS = PeerSpec("to-rr", node_selector="all()", peer_selector="rr == 'true'")


def _names(peerings: list[Peering]) -> list[str]:
    return [p.protocol for p in peerings]


def test_peer_ip_forms_split_into_address_and_port() -> None:
    assert split_peer_ip("10.0.0.1") == ("10.0.0.1", None)
    assert split_peer_ip("10.0.0.1:1179") == ("10.0.0.1", 1179)
    assert split_peer_ip("[fd00::1]:1179") == ("fd00::1", 1179)
    assert split_peer_ip("fd00::1") == ("fd00::1", None)


def test_a_global_peer_applies_on_every_node() -> None:
    tor = PeerSpec("tor", peer_ip="10.0.0.254", asn=65001)
    for name in ("a", "rr1"):
        global_, specific = explicit(CLUSTER[name], CLUSTER, [tor])
        assert _names(global_) == ["Global_10_0_0_254"] and specific == []
        assert global_[0].asn == 65001 and not global_[0].passive


def test_node_and_node_selector_peers_apply_only_where_they_select() -> None:
    peers = [
        PeerSpec("only-b", node="b", peer_ip="192.0.2.1", asn=65002),
        PeerSpec("rack1", node_selector="rack == 'r1'", peer_ip="192.0.2.2:1790", asn=65003),
    ]
    assert _names(explicit(CLUSTER["a"], CLUSTER, peers)[1]) == ["Node_192_0_2_2_port_1790"]
    assert _names(explicit(CLUSTER["b"], CLUSTER, peers)[1]) == ["Node_192_0_2_1"]


def test_reflector_recipe_clients_peer_with_both_reflectors() -> None:
    _, specific = explicit(CLUSTER["a"], CLUSTER, [TO_REFLECTORS])
    assert _names(specific) == ["Node_10_0_0_11", "Node_10_0_0_12"]
    assert not any(p.rr_client for p in specific)


def test_reflector_recipe_reflectors_peer_back_and_treat_others_as_clients() -> None:
    _, specific = explicit(CLUSTER["rr1"], CLUSTER, [TO_REFLECTORS])
    # rr2 is matched forward (all() -> rr == 'true'); a and b by reverse peering.
    assert _names(specific) == ["Node_10_0_0_12", "Node_10_0_0_1", "Node_10_0_0_2"]
    assert all(p.rr_client for p in specific)
    assert specific[0].rr_cluster_id == "2.2.2.2"


def test_reflectors_sharing_a_cluster_id_are_not_each_others_clients() -> None:
    same = dict(
        CLUSTER, rr2=BgpNode("rr2", "10.0.0.12", rr_cluster_id="1.1.1.1", labels={"rr": "true"})
    )
    _, specific = explicit(same["rr1"], same, [TO_REFLECTORS])
    assert [p.rr_client for p in specific] == [False, True, True]


def test_manual_reverse_peering_does_not_peer_back() -> None:
    manual = PeerSpec(
        "to-rr", node_selector="rack == 'r1'", peer_selector="rr == 'true'", reverse=False
    )
    assert explicit(CLUSTER["rr1"], CLUSTER, [manual])[1] == []
    auto = PeerSpec("to-rr", node_selector="rack == 'r1'", peer_selector="rr == 'true'")
    assert _names(explicit(CLUSTER["rr1"], CLUSTER, [auto])[1]) == ["Node_10_0_0_1"]


def test_a_node_named_by_peer_ip_and_as_peers_back() -> None:
    peer = PeerSpec("a-to-b", node="a", peer_ip="10.0.0.2", asn=DEFAULT_AS)
    assert _names(explicit(CLUSTER["b"], CLUSTER, [peer])[1]) == ["Node_10_0_0_1"]
    other_as = PeerSpec("a-to-b", node="a", peer_ip="10.0.0.2", asn=65009)
    assert explicit(CLUSTER["b"], CLUSTER, [other_as])[1] == []


def test_a_global_peering_wins_over_a_node_specific_one_to_the_same_address() -> None:
    peers = [
        PeerSpec("g", peer_ip="192.0.2.1", asn=65001),
        PeerSpec("n", node="a", peer_ip="192.0.2.1", asn=65001),
    ]
    global_, specific = explicit(CLUSTER["a"], CLUSTER, peers)
    assert _names(global_) == ["Global_192_0_2_1"] and specific == []


def test_a_global_peer_that_is_a_calico_node_dials_from_one_side_only() -> None:
    peer = PeerSpec("all-to-b", peer_selector="rack == 'r2'")
    # As strings "10.0.0.2" > "10.0.0.1" and > "10.0.0.11": a and rr1 wait for b to dial.
    for name in ("a", "rr1"):
        global_, _ = explicit(CLUSTER[name], CLUSTER, [peer])
        assert global_[0].ip == "10.0.0.2" and global_[0].passive is True
    tor = PeerSpec("tor", peer_ip="10.0.0.9", asn=65001)  # not a Calico node: always dial
    assert explicit(CLUSTER["a"], CLUSTER, [tor])[0][0].passive is False


def test_peers_of_a_family_this_node_lacks_are_left_out() -> None:
    peer = PeerSpec("v6", peer_ip="fd00::1", asn=65001)
    assert explicit(CLUSTER["a"], CLUSTER, [peer]) == ([], [])
    dual = BgpNode("a", "10.0.0.1", ipv6="fd00::a")
    assert _names(explicit(dual, {"a": dual}, [peer])[0]) == ["Global_fd00__1"]


def test_next_hop_mode_overrides_keep_original_next_hop() -> None:
    keep = PeerSpec("x", peer_ip="192.0.2.9", asn=65001, keep_original_next_hop=True)
    assert explicit(CLUSTER["a"], CLUSTER, [keep])[0][0].next_hop == "keep"
    self_ = PeerSpec(
        "x", peer_ip="192.0.2.9", asn=65001, keep_original_next_hop=True, next_hop_mode="Self"
    )
    assert explicit(CLUSTER["a"], CLUSTER, [self_])[0][0].next_hop == "self"

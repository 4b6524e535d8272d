"""`calico-lab status` as a table: nodes, pods, pools, and what needs attention."""

from __future__ import annotations

from pycalico.lab.lab_status import LabFacts, NodeFacts, PodFacts, PoolFacts, encapsulation
from pycalico.lab.status_table import render


def facts(**changes: object) -> LabFacts:
    base = LabFacts(
        name="demo",
        topology="flat",
        encap="vxlan",
        cross_subnet=False,
        datastore="sqlite",
        ipv6=False,
        pool="10.244.0.0/16",
        external="203.0.113.1",
        nodes=[
            NodeFacts("node1", "192.168.56.10", 64512, "10.244.16.64", True, "", None),
            NodeFacts("node2", "192.168.56.11", 64512, "10.244.140.192", True, "", (1, 2)),
        ],
        pods=[PodFacts("default/web", "node2", "10.244.140.193")],
        pools=[PoolFacts("default-ipv4-ippool", "10.244.0.0/16", "VXLAN Always", True, False)],
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def rows_after(text: str, header: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start:]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def test_nodes_show_address_as_tunnel_process_readiness_and_bgp_sessions() -> None:
    nodes = rows_after(render(facts()), "NODE")
    assert nodes[0] == ["NODE", "IP", "AS", "TUNNEL", "CALICO-NODE", "READY", "BGP", "UNDERLAY"]
    assert nodes[1] == [
        "node1",
        "192.168.56.10",
        "64512",
        "10.244.16.64",
        "running",
        "yes",
        "-",
        "ok",
    ]
    assert nodes[2][6:8] == ["1/2", "Established"]


def test_pods_and_pools_have_their_own_tables() -> None:
    text = render(facts())
    assert rows_after(text, "POD")[1] == ["default/web", "node2", "10.244.140.193"]
    assert rows_after(text, "POOL")[1] == [
        "default-ipv4-ippool",
        "10.244.0.0/16",
        "VXLAN",
        "Always",
        "yes",
        "no",
    ]


def test_the_headline_says_topology_encapsulation_and_datastore() -> None:
    first = render(facts(encap="none", datastore="etcd")).splitlines()[0]
    assert first.startswith("lab demo: flat underlay, no encapsulation (BGP), etcd datastore")


def test_a_node_not_ready_says_why_below_the_table() -> None:
    node = NodeFacts("node1", "192.168.56.10", 64512, "", False, "calico-node exited", None)
    text = render(facts(nodes=[node]))
    assert rows_after(text, "NODE")[1][4:6] == ["exited", "no"]
    assert "! node1 is not ready: calico-node exited" in text


def test_a_lost_default_route_is_flagged_with_the_repair_command() -> None:
    node = NodeFacts("node1", "192.168.56.10", 64512, "", True, "", None)
    node.missing_routes = ["default via 192.168.56.1 dev eth0"]
    text = render(facts(nodes=[node]))
    assert rows_after(text, "NODE")[1][-2:] == ["route", "missing"]
    assert "`default via 192.168.56.1 dev eth0`" in text and "calico-lab repair" in text


def test_an_unreachable_datastore_is_said_not_hidden() -> None:
    text = render(facts(pools=[], datastore_error="datastore: etcd is down"))
    assert "! datastore unreachable: datastore: etcd is down" in text


def test_no_pods_says_how_to_add_one() -> None:
    assert "no pods (add one" in render(facts(pods=[]))


def test_pool_encapsulation_in_words() -> None:
    assert encapsulation({"vxlanMode": "CrossSubnet"}) == "VXLAN CrossSubnet"
    assert encapsulation({"ipipMode": "Always", "vxlanMode": "Never"}) == "IPIP Always"
    assert encapsulation({"cidr": "10.0.0.0/16"}) == "none"


def test_the_headline_names_the_route_reflectors() -> None:
    text = render(facts(encap="none", route_reflectors=["node11", "node12"]))
    assert text.splitlines()[0].startswith(
        "lab demo: flat underlay, no encapsulation (BGP), route reflectors node11, node12,"
    )

"""calico-lab up --route-reflectors: which nodes, which resources, which labs refuse it."""

from __future__ import annotations

import pytest
import yaml

from pycalico.api.resource import normalize
from pycalico.lab.route_reflectors import check, reflectors, resources_yaml
from pycalico.lab.state import LabError
from pycalico.selector import parse

NODES = [f"node{i}" for i in range(1, 13)]
IPS = {n: f"192.168.56.{9 + i}/24" for i, n in enumerate(NODES, start=1)}


def test_the_last_nodes_reflect_so_node1_is_a_client() -> None:
    assert reflectors(NODES, 2) == ["node11", "node12"]
    assert reflectors(NODES, 0) == []


def test_the_resources_are_the_seeds_recipe_and_valid_v3() -> None:
    docs = [normalize(d) for d in yaml.safe_load_all(resources_yaml(NODES, 2, IPS))]
    by_kind: dict[str, list[dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    nodes = {d["metadata"]["name"]: d for d in by_kind["Node"]}
    assert set(nodes) == {"node11", "node12"}
    assert nodes["node11"]["metadata"]["labels"] == {"route-reflector": "true"}
    assert nodes["node11"]["spec"]["bgp"] == {
        "ipv4Address": "192.168.56.20/24",
        "routeReflectorClusterID": "244.0.0.1",
    }
    assert nodes["node12"]["spec"]["bgp"]["routeReflectorClusterID"] == "244.0.0.2"
    [peer] = by_kind["BGPPeer"]
    assert peer["spec"]["nodeSelector"] == "all()"
    selector = parse(peer["spec"]["peerSelector"])
    assert selector.evaluate({"route-reflector": "true"})
    assert not selector.evaluate({})
    [config] = by_kind["BGPConfiguration"]
    assert config["metadata"]["name"] == "default"
    assert config["spec"]["nodeToNodeMeshEnabled"] is False


@pytest.mark.parametrize(
    ("count", "nodes", "topology", "bird", "says"),
    [
        (2, 2, "flat", True, "must be 0-1 for 2 nodes"),
        (-1, 5, "flat", True, "must be 0-4"),
        (2, 5, "tor", True, "ToR"),
        (2, 5, "flat", False, "--encap none or ipip"),
    ],
)
def test_a_lab_that_cannot_have_reflectors_is_refused_in_one_line(
    count: int, nodes: int, topology: str, bird: bool, says: str
) -> None:
    with pytest.raises(LabError) as refused:
        check(count, nodes, topology, bird)
    assert says in str(refused.value) and "\n" not in str(refused.value)


def test_no_reflectors_is_always_fine_and_some_on_a_bgp_lab_too() -> None:
    check(0, 1, "flat", False)
    check(2, 12, "flat", True)

"""The vxlan.calico device manager against the real kernel, in a namespace the test owns."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from pycalico.felix.calc.desired import VxlanSpec
from pycalico.felix.dataplane.vxlan import ensure
from pycalico.netns import in_netns
from tests.support.node_namespace import node_namespace, sh

pytestmark = pytest.mark.integration

SPEC = VxlanSpec(
    vni=4096,
    port=4789,
    local_ip="192.0.2.11",
    parent="eth0",
    mac="66:f9:37:c3:7e:94",
    mtu=1450,
    address="10.244.1.0",
)


@pytest.fixture
def node() -> Iterator[tuple[str, Any]]:
    from pyroute2 import IPRoute

    with node_namespace("vxnode") as n:
        ipr = in_netns(n.path, IPRoute)
        try:
            yield n.ns, ipr
        finally:
            ipr.close()


def details(ns: str) -> dict[str, Any]:
    link = json.loads(sh(ns, "ip", "-j", "-d", "addr", "show", "vxlan.calico"))[0]
    return link  # type: ignore[no-any-return]


def test_the_device_is_created_as_calico_makes_it(node: tuple[str, Any]) -> None:
    ns, ipr = node
    assert ensure(ipr, SPEC) is True
    link = details(ns)
    data = link["linkinfo"]["info_data"]
    assert (data["id"], data["port"], data["local"], data["learning"]) == (
        4096,
        4789,
        "192.0.2.11",
        False,
    )
    assert link["address"] == "66:f9:37:c3:7e:94" and link["mtu"] == 1450
    assert [(a["local"], a["prefixlen"]) for a in link["addr_info"] if a["family"] == "inet"] == [
        ("10.244.1.0", 32)
    ]
    assert "UP" in link["flags"]


def test_a_matching_device_is_left_alone(node: tuple[str, Any]) -> None:
    ns, ipr = node
    ensure(ipr, SPEC)
    index = details(ns)["ifindex"]
    assert ensure(ipr, SPEC) is False
    assert details(ns)["ifindex"] == index  # not re-created


def test_a_different_vni_recreates_and_mtu_or_address_change_in_place(
    node: tuple[str, Any],
) -> None:
    ns, ipr = node
    ensure(ipr, SPEC)
    index = details(ns)["ifindex"]
    ensure(ipr, VxlanSpec(**{**SPEC.__dict__, "mtu": 1400, "address": "10.244.1.64"}))
    link = details(ns)
    assert link["ifindex"] == index and link["mtu"] == 1400
    assert [a["local"] for a in link["addr_info"] if a["family"] == "inet"] == ["10.244.1.64"]
    ensure(ipr, VxlanSpec(**{**SPEC.__dict__, "vni": 4097}))
    assert details(ns)["ifindex"] != index
    assert details(ns)["linkinfo"]["info_data"]["id"] == 4097

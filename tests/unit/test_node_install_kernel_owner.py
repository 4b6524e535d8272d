"""Which links and routes uninstall takes as calico-node's: Calico's own ownership rules."""

from __future__ import annotations

import pytest

from pycalico.node.install.kernel_owner import NFT_TABLES, calico_route, deletable_link


@pytest.mark.parametrize(
    "name", ["cali1234567890a", "vxlan.calico", "vxlan-v6.calico", "wireguard.cali", "wg-v6.cali"]
)
def test_workload_ends_and_calicos_tunnel_devices_are_deleted(name: str) -> None:
    assert deletable_link(name)


@pytest.mark.parametrize("name", ["eth0", "tunl0", "vxlan0", "docker0", "lo", "wg0", "xcali0"])
def test_other_links_and_the_ipip_modules_tunl0_are_not_deleted(name: str) -> None:
    assert not deletable_link(name)


@pytest.mark.parametrize(
    ("proto", "dev"),
    [(80, "eth0"), (12, "eth0"), (12, ""), (3, "tunl0"), (3, "vxlan.calico"), (3, "cali0ab")],
)
def test_felix_and_bird_routes_and_routes_through_calicos_devices_are_calicos(
    proto: int, dev: str
) -> None:
    assert calico_route(proto, dev)


@pytest.mark.parametrize(("proto", "dev"), [(3, "eth0"), (4, "eth0"), (2, "eth0"), (186, "")])
def test_other_routes_are_not_calicos(proto: int, dev: str) -> None:
    assert not calico_route(proto, dev)


def test_the_nftables_tables_are_felixs_own() -> None:
    assert NFT_TABLES == ("inet calico", "ip calico")

"""Where lab nodes sit on the underlay: small labs keep their addresses, big ones fit."""

from __future__ import annotations

import ipaddress

import pytest

from pycalico.lab.host_limits import inotify_needed, inotify_shortfall
from pycalico.lab.state import LabError, check_name, max_name_length
from pycalico.lab.underlay_plan import (
    ETCD_MEMBERS,
    MAX_NODES,
    SUBNETS,
    bridge_port,
    etcd_member_ip,
    gateway,
    node_address,
    node_address6,
)

IFNAMSIZ = 16  # with the closing NUL


def test_the_cap_is_at_least_two_hundred_nodes() -> None:
    assert MAX_NODES >= 200


def test_small_labs_keep_the_addresses_they_always_had() -> None:
    assert node_address(0, 3, "flat") == "192.168.56.10/24"
    assert node_address(19, 20, "flat") == "192.168.56.29/24"
    assert [node_address(i, 4, "two-subnet") for i in range(4)] == [
        "192.168.56.10/24",
        "192.168.56.11/24",
        "192.168.57.12/24",
        "192.168.57.13/24",
    ]
    assert node_address6(1, 3, "flat") == "fd00:56::b/64"
    assert gateway(3, 4, "two-subnet") == "192.168.57.1"


@pytest.mark.parametrize("topology", ["flat", "tor", "two-subnet"])
def test_every_node_of_the_biggest_lab_has_its_own_address_on_its_routers_subnet(
    topology: str,
) -> None:
    taken = {etcd_member_ip(i) for i in range(ETCD_MEMBERS)}
    addresses = [
        ipaddress.ip_interface(node_address(i, MAX_NODES, topology)) for i in range(MAX_NODES)
    ]
    assert len({a.ip for a in addresses}) == MAX_NODES
    assert not {str(a.ip) for a in addresses} & taken
    for i, address in enumerate(addresses):
        router = ipaddress.ip_address(gateway(i, MAX_NODES, topology))
        assert address.network in {ipaddress.ip_network(s) for s in SUBNETS}
        assert router in address.network and address.ip != router
        assert address.ip not in (
            address.network.network_address,
            address.network.broadcast_address,
        )
    six = {node_address6(i, MAX_NODES, topology) for i in range(MAX_NODES)}
    assert len(six) == MAX_NODES


def test_a_node_past_the_cap_does_not_fit() -> None:
    with pytest.raises(ValueError):
        node_address(MAX_NODES, MAX_NODES + 1, "flat")


def test_every_bridge_port_name_fits_the_kernels_interface_name_limit() -> None:
    names = {bridge_port(i) for i in range(MAX_NODES)}
    assert len(names) == MAX_NODES
    assert max(len(n) for n in names) < IFNAMSIZ


def test_a_lab_of_a_hundred_nodes_or_more_has_one_character_less_for_its_name() -> None:
    assert max_name_length("/run/calico-lab", 3) == 59
    assert max_name_length("/run/calico-lab", 99) == 59
    assert max_name_length("/run/calico-lab", MAX_NODES) == 58
    assert check_name("a" * 59, "/run/calico-lab", 99)
    with pytest.raises(LabError) as refused:
        check_name("a" * 59, "/run/calico-lab", MAX_NODES)
    assert f"node{MAX_NODES}/run/cni-agent.sock" in str(refused.value)


def test_an_sqlite_lab_needs_an_inotify_instance_per_node_and_etcd_none() -> None:
    assert inotify_needed(100, "sqlite") > 100
    assert inotify_needed(100, "etcd") == 0


def test_too_few_inotify_instances_is_refused_naming_the_sysctl() -> None:
    assert inotify_shortfall(10, "sqlite", in_use=3, limit=128) == ""
    why = inotify_shortfall(200, "sqlite", in_use=3, limit=128)
    assert "fs.inotify.max_user_instances=128" in why and "\n" not in why
    suggested = int(why.rsplit("=", 1)[1].rstrip(")"))
    assert suggested >= 3 + inotify_needed(200, "sqlite")
    assert inotify_shortfall(200, "etcd", in_use=120, limit=128) == ""

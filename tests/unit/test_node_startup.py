"""calico-node startup decisions and the objects it ensures, against a real SQLite store."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from pycalico.api.registry import resolve
from pycalico.datastore.resources import ResourceClient
from pycalico.node.autodetect import HostInterface
from pycalico.node.startup import (
    StartupError,
    ensure_cluster,
    node_address,
    node_address6,
    node_name,
    register_node,
    write_nodename,
)

IFACES = [
    HostInterface(1, "lo", (ipaddress.ip_interface("127.0.0.1/8"),)),
    HostInterface(2, "eth0", (ipaddress.ip_interface("192.0.2.11/24"),)),
]


def test_node_name_prefers_env_then_the_nodename_file_then_hostname(tmp_path: Path) -> None:
    path = tmp_path / "nodename"
    assert node_name({"NODENAME": "n1", "HOSTNAME": "h"}, str(path)) == "n1"
    write_nodename(str(path), "from-file")
    assert node_name({"HOSTNAME": "Upper"}, str(path)) == "from-file"
    assert node_name({"HOSTNAME": "Upper"}, str(tmp_path / "missing")) == "upper"


@pytest.mark.parametrize("name", ["x/y", "Node1", "a_b", "a" * 254])
def test_a_node_name_calico_would_refuse_stops_startup(tmp_path: Path, name: str) -> None:
    with pytest.raises(StartupError, match=r"^invalid node name .*: a node name must be"):
        node_name({"NODENAME": name}, str(tmp_path / "missing"))
    write_nodename(str(tmp_path / "nodename"), name)
    with pytest.raises(StartupError, match=r"^invalid node name"):
        node_name({}, str(tmp_path / "nodename"))


def test_ip_rules_explicit_autodetect_none_and_kept() -> None:
    assert str(node_address({"IP": "192.0.2.11"}, "", IFACES)) == "192.0.2.11/24"
    assert str(node_address({"IP": "203.0.113.5/28"}, "", IFACES)) == "203.0.113.5/28"
    assert str(node_address({}, "", IFACES)) == "192.0.2.11/24"
    assert str(node_address({}, "198.51.100.1/24", IFACES)) == "198.51.100.1/24"
    assert str(node_address({"IP": "autodetect"}, "198.51.100.1/24", IFACES)) == "192.0.2.11/24"
    assert node_address({"IP": "none"}, "", IFACES) is None
    with pytest.raises(StartupError, match="not an IPv4"):
        node_address({"IP": "fd00::1"}, "", IFACES)
    with pytest.raises(StartupError, match="Failed to autodetect"):
        node_address({"IP_AUTODETECTION_METHOD": "interface=wlan0"}, "", IFACES)


def test_startup_ensures_cluster_objects_and_the_default_pool_once(client: ResourceClient) -> None:
    env = {"CALICO_IPV4POOL_CIDR": "10.244.0.0/16", "CALICO_IPV4POOL_VXLAN": "Always"}
    ensure_cluster(client, env, [])
    info = client.get(resolve("ClusterInformation"), "default")
    assert info is not None and info["spec"]["datastoreReady"] is True
    assert len(info["spec"]["clusterGUID"]) == 32
    assert client.get(resolve("Tier"), "default") is not None
    assert client.get(resolve("FelixConfiguration"), "default") is not None
    pools, _ = client.list(resolve("IPPool"))
    assert [(p["metadata"]["name"], p["spec"]["vxlanMode"]) for p in pools] == [
        ("default-ipv4-ippool", "Always")
    ]
    ensure_cluster(client, {"CALICO_IPV4POOL_CIDR": "10.99.0.0/16"}, [])  # a second node
    assert len(client.list(resolve("IPPool"))[0]) == 1
    guid = info["spec"]["clusterGUID"]
    again = client.get(resolve("ClusterInformation"), "default")
    assert again is not None and again["spec"]["clusterGUID"] == guid


def test_register_node_writes_the_address_and_a_restart_writes_nothing(
    client: ResourceClient,
) -> None:
    identity = register_node(client, "node1", {"AS": "64513"}, IFACES)
    assert str(identity.address) == "192.0.2.11/24"
    node = client.get(resolve("Node"), "node1")
    assert node is not None
    assert node["spec"]["bgp"] == {"asNumber": 64513, "ipv4Address": "192.0.2.11/24"}
    revision = client.backend.revision()
    register_node(client, "node1", {"AS": "64513"}, IFACES)
    assert client.backend.revision() == revision


def test_backend_none_registers_no_address_of_either_family(client: ResourceClient) -> None:
    """As Calico's policy-only mode: even an IP6 asked for is not written."""
    env = {"CALICO_NETWORKING_BACKEND": "none", "IP6": "autodetect", "AS": "64513"}
    identity = register_node(client, "node1", env, DUAL)
    assert identity.address is None
    node = client.get(resolve("Node"), "node1")
    assert node is not None
    assert node["spec"]["bgp"] == {"asNumber": 64513}


DUAL = [
    HostInterface(1, "lo", (ipaddress.ip_interface("::1/128"),)),
    HostInterface(
        2,
        "eth0",
        (ipaddress.ip_interface("192.0.2.11/24"), ipaddress.ip_interface("2001:db8:56::11/64")),
    ),
]


def test_ip6_is_off_unless_asked_for_then_autodetected_or_given() -> None:
    assert node_address6({}, "", DUAL) is None
    assert str(node_address6({}, "2001:db8::1/64", DUAL)) == "2001:db8::1/64"  # kept
    assert node_address6({"IP6": "none"}, "2001:db8::1/64", DUAL) is None
    auto = {"IP6": "autodetect", "IP6_AUTODETECTION_METHOD": "interface=eth0"}
    assert str(node_address6(auto, "", DUAL)) == "2001:db8:56::11/64"
    assert str(node_address6({"IP6": "2001:db8::7"}, "", DUAL)) == "2001:db8::7/128"
    for bad in ("192.0.2.1", "junk"):
        with pytest.raises(StartupError, match="IP6="):
            node_address6({"IP6": bad}, "", DUAL)


def test_dual_stack_node_registers_both_addresses_and_the_v6_pool(client: ResourceClient) -> None:
    env = {
        "IP6": "autodetect",
        "CALICO_IPV4POOL_CIDR": "10.244.0.0/16",
        "CALICO_IPV6POOL_CIDR": "fd00:10:244::/48",
    }
    ensure_cluster(client, env, [])
    register_node(client, "node1", env, DUAL)
    node = client.get(resolve("Node"), "node1")
    assert node is not None
    assert node["spec"]["bgp"]["ipv6Address"] == "2001:db8:56::11/64"
    pools = {p["metadata"]["name"]: p["spec"] for p in client.list(resolve("IPPool"))[0]}
    assert pools["default-ipv6-ippool"]["cidr"] == "fd00:10:244::/48"
    assert pools["default-ipv6-ippool"]["blockSize"] == 122
    assert not pools["default-ipv6-ippool"].get("natOutgoing")


def test_no_v6_pool_without_a_v6_cidr(client: ResourceClient) -> None:
    ensure_cluster(client, {"CALICO_IPV4POOL_CIDR": "10.244.0.0/16", "IP6": "autodetect"}, [])
    names = [p["metadata"]["name"] for p in client.list(resolve("IPPool"))[0]]
    assert names == ["default-ipv4-ippool"]

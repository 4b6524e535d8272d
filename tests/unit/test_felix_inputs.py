"""Datastore objects to Felix calculation inputs."""

from __future__ import annotations

import ipaddress
import json

from pycalico.felix.calc.inputs import (
    affinity_owner,
    block_borrowed,
    endpoint_workloads,
    nat_pool,
    node_info,
    pool_info,
)
from pycalico.felix.calc.routes import Workload
from pycalico.ipam.block import Block


def test_node_info_reads_address_vtep_and_derives_the_mac() -> None:
    info = node_info(
        {
            "metadata": {"name": "node1"},
            "spec": {"bgp": {"ipv4Address": "192.0.2.11/24"}, "ipv4VXLANTunnelAddr": "10.244.1.0"},
        }
    )
    assert str(info.address) == "192.0.2.11/24" and info.vxlan_address == "10.244.1.0"
    assert info.vxlan_mac == "66:f9:37:c3:7e:94"
    assert node_info({"metadata": {"name": "n"}, "spec": {}}).address is None


def test_pools_give_modes_and_nat() -> None:
    pool = {"spec": {"cidr": "10.244.0.0/16", "vxlanMode": "Always", "natOutgoing": True}}
    assert pool_info(pool).vxlan_mode == "Always"
    assert nat_pool(pool).nat_outgoing is True


def test_an_endpoint_gives_its_node_and_ipv4_workload_routes() -> None:
    wep = {
        "spec": {
            "node": "node1",
            "interfaceName": "cali1",
            "ipNetworks": ["10.244.1.5/32", "fd00::5/128"],
        }
    }
    assert endpoint_workloads(wep) == ("node1", (Workload("10.244.1.5/32", "cali1"),))
    assert endpoint_workloads({"spec": {"node": "node2", "ipNetworks": ["10.0.0.1/32"]}}) == (
        "node2",
        (),
    )


def test_block_owners_come_from_confirmed_affinities() -> None:
    kvs = [
        ("/calico/ipam/v2/host/node1/ipv4/block/10.244.1.0-26", '{"state":"confirmed"}'),
        ("/calico/ipam/v2/host/node2/ipv4/block/10.244.2.0-26", '{"state":"pending"}'),
        ("/calico/ipam/v2/host/node3", "{}"),
    ]
    owners = [found for key, value in kvs if (found := affinity_owner(key, value))]
    assert owners == [(ipaddress.ip_network("10.244.1.0/26"), "node1")]


def test_borrowed_addresses_are_those_allocated_by_another_node() -> None:
    block = Block.new(ipaddress.ip_network("10.244.1.0/26"), "host:node1", now_ns=1)
    block.assign(1, "own", {"node": "node1"})
    block.assign(1, "borrowed", {"node": "node2"})
    assert block_borrowed(block.to_json()) == {"10.244.1.1": "node2"}
    assert json.loads(block.to_json())["affinity"] == "host:node1"

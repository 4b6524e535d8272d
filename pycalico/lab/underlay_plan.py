"""Where each lab node sits on the underlay: its subnet, its addresses, its bridge port (pure).

Every underlay subnet is a /24 with the router at .1 and nodes from .10 upwards in node
order, so a lab's first nodes have the addresses they always had (node1 192.168.56.10,
node2 .11, ...) whatever the lab's size. etcd's members hold 192.168.56.201-203; nodes step
over them, which leaves room for MAX_NODES (242) in one /24 and keeps every node of
a flat lab on one L2 segment, as `--encap none` needs (BGP next hops are on-link).
"""

from __future__ import annotations

import ipaddress

SUBNETS = ("192.168.56.0/24", "192.168.57.0/24")
SUBNETS6 = ("fd00:56::/64", "fd00:57::/64")
PREFIX = 24
FIRST_HOST = 10
ETCD_FIRST_HOST = 201
ETCD_MEMBERS = 3
# Hosts .10-.254 of a /24 but etcd's three.
MAX_NODES = 254 - FIRST_HOST + 1 - ETCD_MEMBERS


def node_subnet(index: int, nodes: int, topology: str) -> int:
    """Which underlay subnet node `index` (0-based) sits on: two-subnet splits them."""
    if topology != "two-subnet":
        return 0
    return 0 if index < (nodes + 1) // 2 else 1


def node_host(index: int) -> int:
    """Node `index`'s host number in its /24, stepping over etcd's members."""
    host = FIRST_HOST + index
    if host >= ETCD_FIRST_HOST:
        host += ETCD_MEMBERS
    if host > 254:
        raise ValueError(f"node {index + 1} does not fit the underlay (at most {MAX_NODES} nodes)")
    return host


def node_address(index: int, nodes: int, topology: str) -> str:
    """Node `index`'s IPv4 address with its prefix, e.g. `192.168.56.10/24`."""
    net = ipaddress.ip_network(SUBNETS[node_subnet(index, nodes, topology)])
    return f"{net.network_address + node_host(index)}/{PREFIX}"


def node_address6(index: int, nodes: int, topology: str) -> str:
    net = ipaddress.ip_network(SUBNETS6[node_subnet(index, nodes, topology)])
    return f"{net.network_address + node_host(index)}/{net.prefixlen}"


def gateway(index: int, nodes: int, topology: str) -> str:
    """The router's address on node `index`'s subnet."""
    net = ipaddress.ip_network(SUBNETS[node_subnet(index, nodes, topology)])
    return str(net.network_address + 1)


def etcd_member_ip(index: int) -> str:
    return str(ipaddress.ip_network(SUBNETS[0]).network_address + ETCD_FIRST_HOST + index)


def bridge_port(index: int) -> str:
    """The name of node `index`'s end of its link in the underlay namespace."""
    return f"n{index + 1}"

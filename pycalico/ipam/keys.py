"""Where IPAM keeps its records: Calico's etcd layout under /calico/ipam/v2/."""

from __future__ import annotations

import ipaddress

PREFIX = "/calico/ipam/v2/"
HANDLE_PREFIX = PREFIX + "handle/"


def _cidr_name(cidr: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    return str(cidr).replace("/", "-")


def block_prefix(version: int) -> str:
    return f"{PREFIX}assignment/ipv{version}/block/"


def block_key(cidr: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    return block_prefix(cidr.version) + _cidr_name(cidr)


def host_affinity_prefix(host: str, version: int) -> str:
    return f"{PREFIX}host/{host}/ipv{version}/block/"


def affinity_key(host: str, cidr: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    return host_affinity_prefix(host, cidr.version) + _cidr_name(cidr)


def all_affinities_prefix() -> str:
    return f"{PREFIX}host/"


def _cidr_from_name(name: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    address, _, length = name.rpartition("-")
    return ipaddress.ip_network(f"{address}/{length}")


def parse_block_key(key: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return _cidr_from_name(key.rsplit("/", 1)[-1])


def parse_affinity_key(
    key: str,
) -> tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
    """(host, block CIDR) from an affinity key; None for other keys under the host prefix."""
    parts = key[len(all_affinities_prefix()) :].split("/")
    if len(parts) != 4 or parts[1] not in ("ipv4", "ipv6") or parts[2] != "block":
        return None
    try:
        return parts[0], _cidr_from_name(parts[3])
    except ValueError:
        return None


def handle_key(handle_id: str) -> str:
    return HANDLE_PREFIX + handle_id

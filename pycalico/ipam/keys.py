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
    return f"{host_affinities_prefix(host)}ipv{version}/block/"


def host_affinities_prefix(host: str) -> str:
    """Every affinity of `host`, of both IP versions."""
    return f"{PREFIX}host/{host}/"


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
    """(host, block CIDR) from an affinity key; None for other keys under the host prefix.

    Read from the right: node names are refused if they hold a '/', but one that got in
    before must still parse, so that its affinities can be found and removed."""
    host, _, rest = key[len(all_affinities_prefix()) :].rpartition("/ipv")
    parts = rest.split("/")
    if not host or len(parts) != 3 or parts[0] not in ("4", "6") or parts[1] != "block":
        return None
    try:
        return host, _cidr_from_name(parts[2])
    except ValueError:
        return None


def handle_key(handle_id: str) -> str:
    return HANDLE_PREFIX + handle_id

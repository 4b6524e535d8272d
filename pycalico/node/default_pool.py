"""The default IP pools calico-node creates from its environment when none exist."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_V4_CIDR = "192.168.0.0/16"
_MODES = {
    "always": "Always",
    "crosssubnet": "CrossSubnet",
    "cross-subnet": "CrossSubnet",
    "never": "Never",
    "off": "Never",
}
_FALSE = {"false", "0", "no", "n", "f"}


class PoolEnvError(ValueError):
    pass


def _mode(env: Mapping[str, str], key: str) -> str:
    value = env.get(key, "")
    if not value:
        return "Never"
    try:
        return _MODES[value.lower()]
    except KeyError:
        raise PoolEnvError(f"{key}={value} is not one of Always, CrossSubnet, Never") from None


def _v4_cidr(env: Mapping[str, str], host_addresses: Sequence[ipaddress.IPv4Interface]) -> str:
    """CALICO_IPV4POOL_CIDR, else 192.168.0.0/16, else the first free 172.16-31.0.0/16."""
    if env.get("CALICO_IPV4POOL_CIDR"):
        return env["CALICO_IPV4POOL_CIDR"]
    for candidate in [DEFAULT_V4_CIDR, *(f"172.{n}.0.0/16" for n in range(16, 32))]:
        net = ipaddress.ip_network(candidate)
        if not any(a.ip in net or net.subnet_of(a.network) for a in host_addresses):
            return candidate
    raise PoolEnvError("no default IPv4 pool range is free of this host's addresses")


def default_ipv4_pool(
    env: Mapping[str, str], host_addresses: Sequence[ipaddress.IPv4Interface] = ()
) -> dict[str, Any] | None:
    """The `default-ipv4-ippool` calico-node would create; None for `none`/NO_DEFAULT_POOLS."""
    no_defaults = env.get("NO_DEFAULT_POOLS", "").lower() == "true"
    if no_defaults:
        if env.get("CALICO_IPV4POOL_CIDR"):
            raise PoolEnvError("NO_DEFAULT_POOLS=true cannot be combined with CALICO_IPV4POOL_CIDR")
        return None
    cidr = _v4_cidr(env, host_addresses)
    if cidr.lower() == "none":
        return None
    spec: dict[str, Any] = {
        "cidr": cidr,
        "ipipMode": _mode(env, "CALICO_IPV4POOL_IPIP"),
        "vxlanMode": _mode(env, "CALICO_IPV4POOL_VXLAN"),
        "natOutgoing": env.get("CALICO_IPV4POOL_NAT_OUTGOING", "true").lower() not in _FALSE,
        "nodeSelector": env.get("CALICO_IPV4POOL_NODE_SELECTOR") or "all()",
    }
    if env.get("CALICO_IPV4POOL_BLOCK_SIZE"):
        try:
            spec["blockSize"] = int(env["CALICO_IPV4POOL_BLOCK_SIZE"])
        except ValueError:
            raise PoolEnvError("CALICO_IPV4POOL_BLOCK_SIZE must be a number (20-32)") from None
    if env.get("CALICO_IPV4POOL_DISABLE_BGP_EXPORT", "").lower() == "true":
        spec["disableBGPExport"] = True
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "IPPool",
        "metadata": {"name": "default-ipv4-ippool"},
        "spec": spec,
    }


def default_ipv6_pool(env: Mapping[str, str]) -> dict[str, Any] | None:
    """`default-ipv6-ippool` from CALICO_IPV6POOL_CIDR; None when that is unset or `none`.

    Calico invents a random ULA /48 when IPv6 is on and no CIDR is given; pycalico asks
    for the range instead, so two nodes never race to create different ones.
    """
    cidr = env.get("CALICO_IPV6POOL_CIDR", "")
    if not cidr or cidr.lower() == "none" or env.get("NO_DEFAULT_POOLS", "").lower() == "true":
        return None
    spec: dict[str, Any] = {
        "cidr": cidr,
        "vxlanMode": _mode(env, "CALICO_IPV6POOL_VXLAN"),
        "natOutgoing": env.get("CALICO_IPV6POOL_NAT_OUTGOING", "false").lower() not in _FALSE,
        "nodeSelector": env.get("CALICO_IPV6POOL_NODE_SELECTOR") or "all()",
    }
    if env.get("CALICO_IPV6POOL_BLOCK_SIZE"):
        try:
            spec["blockSize"] = int(env["CALICO_IPV6POOL_BLOCK_SIZE"])
        except ValueError:
            raise PoolEnvError("CALICO_IPV6POOL_BLOCK_SIZE must be a number (116-128)") from None
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "IPPool",
        "metadata": {"name": "default-ipv6-ippool"},
        "spec": spec,
    }

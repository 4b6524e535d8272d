"""Node IP autodetection (`IP_AUTODETECTION_METHOD`), as calico-node does it.

Pure: callers pass the host's interfaces (read with netlink elsewhere) and, for
`can-reach`, a function that returns the local source address towards a destination.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

# Interfaces that never carry the node's address (calico-node's default exclusions).
DEFAULT_EXCLUDES = (
    r"^docker.*",
    r"^cbr.*",
    r"^dummy.*",
    r"^podman.*",
    r"^virbr.*",
    r"^lxcbr.*",
    r"^veth.*",
    r"^lo",
    r"^br-.*",
    r"^cali.*",
    r"^tunl.*",
    r"^flannel.*",
    r"^kube-ipvs.*",
    r"^cni.*",
    r"^vxlan\.calico.*",
    r"^vxlan-v6\.calico.*",
    r"^wireguard\.cali.*",
    r"^wg-v6\.cali.*",
    r"^nodelocaldns.*",
)


class AutodetectError(ValueError):
    pass


@dataclass(frozen=True)
class HostInterface:
    index: int
    name: str
    addresses: tuple[Interface, ...]  # in the order the kernel lists them


def _global_unicast(addr: Interface) -> bool:
    ip = addr.ip
    return not (ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified)


def _regexes(text: str, what: str) -> list[re.Pattern[str]]:
    try:
        return [re.compile(part) for part in text.split(",") if part]
    except re.error as exc:
        raise AutodetectError(f"invalid {what} regex in IP_AUTODETECTION_METHOD: {exc}") from None


def _first(
    interfaces: Sequence[HostInterface],
    version: int,
    keep: Callable[[HostInterface], bool],
    accept: Callable[[Interface], bool] = lambda a: True,
) -> Interface | None:
    # calico-node walks the interface list from the highest index down.
    for iface in sorted(interfaces, key=lambda i: i.index, reverse=True):
        if not keep(iface):
            continue
        for addr in iface.addresses:
            if addr.version == version and _global_unicast(addr) and accept(addr):
                return addr
    return None


def autodetect(
    method: str,
    interfaces: Sequence[HostInterface],
    version: int = 4,
    source_towards: Callable[[str], str] | None = None,
) -> Interface:
    """The node's address (with its interface prefix length) by `method`."""
    method = method.strip() or "first-found"
    kind, _, arg = method.partition("=")
    excludes = _regexes(",".join(DEFAULT_EXCLUDES), "exclude")
    found: Interface | None
    if kind == "first-found" and not arg:
        found = _first(interfaces, version, lambda i: not any(r.search(i.name) for r in excludes))
    elif kind == "interface" and arg:
        wanted = _regexes(arg, "interface")
        found = _first(interfaces, version, lambda i: any(r.search(i.name) for r in wanted))
    elif kind == "skip-interface" and arg:
        skipped = excludes + _regexes(arg, "skip-interface")
        found = _first(interfaces, version, lambda i: not any(r.search(i.name) for r in skipped))
    elif kind == "cidr" and arg:
        try:
            nets = [ipaddress.ip_network(c, strict=False) for c in arg.split(",") if c]
        except ValueError as exc:
            raise AutodetectError(f"invalid CIDR in IP_AUTODETECTION_METHOD: {exc}") from None
        found = _first(
            interfaces,
            version,
            lambda i: not any(r.search(i.name) for r in excludes),
            lambda a: any(a.ip in n for n in nets if n.version == a.version),
        )
    elif kind == "can-reach" and arg:
        if source_towards is None:
            raise AutodetectError("can-reach needs a way to ask the kernel for a route")
        try:
            source = ipaddress.ip_address(source_towards(arg))
        except (OSError, ValueError) as exc:
            raise AutodetectError(f"cannot reach {arg}: {exc}") from None
        found = _first(interfaces, version, lambda i: True, lambda a: a.ip == source)
    else:
        raise AutodetectError(f"Invalid IP autodetection method: {method}")
    if found is None:
        raise AutodetectError(f"Failed to autodetect an IPv{version} address using {method}")
    return found

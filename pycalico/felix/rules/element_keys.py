"""The kernel's keys for elements of pycalico's nftables sets, as nft itself would send them
(pure).

A label change moves addresses in and out of selector and named-port sets. Sending those
element changes straight over netlink costs well under a millisecond, where `nft -f` first
reads back every element of every interval set in the table (tens of milliseconds at a
thousand endpoints). So the keys here must be exactly nft's, or elements nft added could not
be deleted over netlink and vice versa:
* an interval set (`flags interval`, no concatenation; the kernel's rbtree) holds a network
  as two elements: its first address, and the address after its last one flagged as an
  interval end; a network reaching the top of the address space has no end element;
* a concatenation is its fields side by side, each padded to 4 bytes (nft registers are
  32-bit); `inet_proto` is one byte, `inet_service` two, in network order.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

INTERVAL_SETS = {
    "type ipv4_addr; flags interval;": 4,
    "type ipv6_addr; flags interval;": 6,
}
NAMED_PORT_SETS = {
    "type ipv4_addr . inet_proto . inet_service;": 4,
    "type ipv6_addr . inet_proto . inet_service;": 6,
}


class UnencodableElement(ValueError):
    """An element (or a set declaration) this module does not produce keys for."""


@dataclass(frozen=True)
class Key:
    value: bytes
    interval_end: bool = False


def encodable(decl: str) -> bool:
    return decl in INTERVAL_SETS or decl in NAMED_PORT_SETS


def element_keys(decl: str, element: str) -> tuple[Key, ...]:
    """The kernel elements that stand for `element` of a set declared as `decl`."""
    if decl in INTERVAL_SETS:
        return _interval(element, INTERVAL_SETS[decl])
    if decl in NAMED_PORT_SETS:
        return (_named_port(element, NAMED_PORT_SETS[decl]),)
    raise UnencodableElement(f"no netlink keys for sets declared {decl!r}")


def _interval(element: str, version: int) -> tuple[Key, ...]:
    try:
        net = ipaddress.ip_network(element)
    except ValueError:
        raise UnencodableElement(f"{element!r} is not a network") from None
    if net.version != version:
        raise UnencodableElement(f"{element!r} is not an IPv{version} network")
    start = Key(net.network_address.packed)
    last = int(net.broadcast_address)
    if last == (1 << net.max_prefixlen) - 1:
        return (start,)
    after = type(net.network_address)(last + 1)
    return start, Key(after.packed, interval_end=True)


def _named_port(element: str, version: int) -> Key:
    parts = [p.strip() for p in element.split(" . ")]
    try:
        address_text, protocol_text, port_text = parts
        address = ipaddress.ip_address(address_text)
        protocol, port = int(protocol_text), int(port_text)
    except ValueError:
        raise UnencodableElement(f"{element!r} is not address . protocol . port") from None
    if address.version != version or not 0 <= protocol <= 255 or not 0 <= port <= 65535:
        raise UnencodableElement(f"{element!r} is out of range for an IPv{version} set")
    return Key(address.packed + bytes((protocol, 0, 0, 0)) + port.to_bytes(2, "big") + b"\0\0")

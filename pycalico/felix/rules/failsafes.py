"""Failsafe ports: what stays open through any host endpoint, so a wrong policy cannot cut
a node off from SSH, BGP, etcd or the API server (pure).

FelixConfiguration `failsafeInboundHostPorts` / `failsafeOutboundHostPorts` (reference
host-protection.md §3): a list of {protocol, port, net?}; in the environment Felix's own
text form, `proto:port`, `proto:cidr:port` (an IPv6 CIDR in brackets) or a bare `port`, a
missing protocol meaning tcp, and `none` for no failsafes at all.

The chains are Calico's (felix/rules/static.go): `cali-failsafe-in` accepts the inbound list
by destination port (and source network when one is given), `cali-failsafe-out` the
outbound list by destination port (and destination network). In the raw table, before
connection tracking, each also accepts the other list's replies by source port: otherwise a
reply could fall through to a doNotTrack policy and half a connection would go untracked.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True, order=True)
class ProtoPort:
    protocol: str  # tcp, udp or sctp (lower case)
    port: int
    net: str = ""  # a CIDR, "" for any address


def _defaults(text: str) -> tuple[ProtoPort, ...]:
    return tuple(
        ProtoPort(proto, int(port)) for proto, port in (item.split(":") for item in text.split(","))
    )


DEFAULT_INBOUND = _defaults(
    "tcp:22,udp:68,tcp:179,tcp:2379,tcp:2380,tcp:5473,tcp:6443,tcp:6666,tcp:6667"
)
DEFAULT_OUTBOUND = _defaults(
    "udp:53,udp:67,tcp:179,tcp:2379,tcp:2380,tcp:5473,tcp:6443,tcp:6666,tcp:6667"
)


def _network(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise ValueError(f"invalid CIDR or IP {text}") from None


def parse(text: str) -> tuple[ProtoPort, ...]:
    """Felix's text form (its PortListParam); ValueError naming what is wrong."""
    if text.strip().lower() == "none":
        return ()
    found = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        net = ""
        if "[" in item and "]:" in item:
            start, end = item.index("["), item.index("]:")
            net, item = item[start + 1 : end], item[:start] + item[end + 2 :]
        parts = item.split(":")
        if len(parts) > 3:
            raise ValueError(
                "ports should be <protocol>:<net>:<number> or <protocol>:<number> or <number>"
            )
        protocol, port = "tcp", parts[-1]
        if len(parts) == 3:
            protocol, net = parts[0].lower(), parts[1]
        elif len(parts) == 2:
            protocol = parts[0].lower()
        if protocol not in ("tcp", "udp"):
            raise ValueError(f"unknown protocol: {protocol}")
        if not port.isdigit():
            raise ValueError("ports should be integers")
        if int(port) > 65535:
            raise ValueError("ports must be in range 0-65535")
        found.append(ProtoPort(protocol, int(port), _network(net) if net else ""))
    return tuple(found)


def from_datastore(values: Sequence[Mapping[str, Any]]) -> tuple[ProtoPort, ...]:
    """The FelixConfiguration list (already validated) as ProtoPorts."""
    return tuple(
        ProtoPort(
            str(v.get("protocol") or "tcp").lower(),
            int(v["port"]),
            _network(v["net"]) if v.get("net") else "",
        )
        for v in values
    )


def _matches(entries: Iterable[ProtoPort], port_side: str, net_side: str) -> list[str]:
    """One rule per protocol for the entries without a network (their ports as one set),
    then one per entry with a network, in the family of that network."""
    by_protocol: dict[str, list[int]] = {}
    lines = []
    for entry in entries:
        if not entry.net:
            by_protocol.setdefault(entry.protocol, []).append(entry.port)
    for protocol in PROTOCOLS:
        ports = sorted(set(by_protocol.get(protocol, ())))
        if ports:
            listed = str(ports[0]) if len(ports) == 1 else "{ " + ", ".join(map(str, ports)) + " }"
            lines.append(f"meta l4proto {protocol} th {port_side}port {listed} accept")
    for entry in entries:
        if entry.net:
            family = "ip" if ipaddress.ip_network(entry.net).version == 4 else "ip6"
            lines.append(
                f"{family} {net_side}addr {entry.net} meta l4proto {entry.protocol} "
                f"th {port_side}port {entry.port} accept"
            )
    return lines


def inbound_chain(
    inbound: Sequence[ProtoPort], outbound: Sequence[ProtoPort], raw: bool
) -> tuple[str, ...]:
    """`cali-failsafe-in`: the inbound ports; in raw also replies from the outbound ones."""
    lines = _matches(inbound, "d", "s")
    if raw:
        lines += _matches(outbound, "s", "s")
    return tuple(lines)


def outbound_chain(
    inbound: Sequence[ProtoPort], outbound: Sequence[ProtoPort], raw: bool
) -> tuple[str, ...]:
    """`cali-failsafe-out`: the outbound ports; in raw also replies to the inbound ones."""
    lines = _matches(outbound, "d", "d")
    if raw:
        lines += _matches(inbound, "s", "d")
    return tuple(lines)

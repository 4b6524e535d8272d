"""Conntrack entries of workload addresses that are gone, removed as Felix removes them.

Every endpoint chain accepts established flows before its policy. Once a pod is deleted its
address can go to a new pod, and flows the old one had would still count as established
for the new one, past its policy. Calico's Felix therefore deletes, for each removed
workload address, every entry whose original source (the pod opened the flow) or reply
source (the pod answered it) is that address; so does this.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
from collections.abc import Iterable
from typing import Any

from pyroute2 import Conntrack, NetlinkError
from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

from pycalico.felix.calc.desired import Desired, Network
from pycalico.felix.dataplane.manager import Manager

log = logging.getLogger("pycalico.felix")

_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}


def remove(addresses: Iterable[str]) -> int:
    """Delete the flows of these addresses (bare, no prefix length) in this network
    namespace; the number deleted. An entry that expires meanwhile is no error."""
    by_family: dict[int, set[str]] = {}
    for address in addresses:
        ip = ipaddress.ip_address(address)
        by_family.setdefault(_FAMILY[ip.version], set()).add(str(ip))
    removed = 0
    for family, ips in by_family.items():
        with Conntrack(nfgen_family=family) as ct:
            for entry in _flows_of(ct, family, ips):
                try:
                    ct.delete(entry)
                    removed += 1
                except NetlinkError as exc:
                    if exc.code != errno.ENOENT:  # else it expired meanwhile
                        raise
    if removed:
        log.info("removed %d conntrack flows of deleted workload addresses", removed)
    return removed


def _flows_of(ct: Conntrack, family: int, ips: set[str]) -> list[Any]:
    if family == socket.AF_INET:
        # The kernel filters the dump (5.8+): a few entries to decode, not the whole table.
        found = {
            (str(entry.tuple_orig), entry.id): entry
            for ip in ips
            for direction in ("tuple_orig", "tuple_reply")
            for entry in ct.dump_entries(**{direction: NFCTAttrTuple(saddr=ip)})
        }
        return list(found.values())
    # The kernel's IPv6 dump filter matches every address but the one given (checked on
    # 6.18), so IPv6 reads the whole table and matches here: slow on a large table.
    return [
        entry
        for entry in ct.dump_entries()
        if _canonical(entry.tuple_orig.saddr) in ips or _canonical(entry.tuple_reply.saddr) in ips
    ]


def _canonical(address: str | None) -> str:
    return str(ipaddress.ip_address(address)) if address else ""


class ConntrackManager(Manager):
    """Removes the flows of local workload addresses that went away, after the ruleset
    that no longer lets anything to or from them is in place (so a new pod given the
    address starts with none). Nothing is flushed at start: flows a restart finds belong to
    pods that are still there, or were removed before it."""

    def __init__(self) -> None:
        self._addresses: frozenset[Network] | None = None

    def apply(self, desired: Desired) -> None:
        addresses = desired.workload_addresses
        before = addresses if self._addresses is None else self._addresses
        gone = [str(net.network_address) for net in before - addresses]
        if gone:
            try:
                remove(gone)
            except (OSError, NetlinkError) as exc:
                log.warning("could not remove conntrack flows of %s: %s", sorted(gone), exc)
        self._addresses = addresses

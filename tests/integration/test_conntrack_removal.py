"""conntrack.remove() in a namespace of its own, at a table with many other entries: exactly
the flows whose original or reply source is a removed address go, in either family."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import pytest

from pycalico.felix.dataplane import conntrack
from pycalico.netns import in_netns
from tests.support.conntrack_entries import add_tcp_entry
from tests.support.node_namespace import bare_namespace

pytestmark = pytest.mark.integration

# (original source, original destination, reply source, zone): what tells entries apart here.
Flow = tuple[str, str, str, int]

POD = "fd00:244::5"
OTHERS = 3000  # many dump buffers (the kernel sends about 130 IPv6 entries per 32 KiB)


@pytest.fixture
def netns() -> Iterator[str]:
    with bare_namespace("ctrm") as ns:
        yield f"/run/netns/{ns}"


def add(flows: list[Flow]) -> None:
    from pyroute2 import Conntrack

    for family in (socket.AF_INET, socket.AF_INET6):
        with Conntrack(nfgen_family=family) as ct:
            for port, (src, dst, reply_src, zone) in enumerate(flows, start=1024):
                if (":" in src) == (family == socket.AF_INET6):
                    add_tcp_entry(ct, family, src, dst, port, reply_src, zone)


def table() -> set[Flow]:
    from pyroute2 import Conntrack

    def canonical(address: str) -> str:
        return str(ipaddress.ip_address(address))

    found = set()
    for family in (socket.AF_INET, socket.AF_INET6):
        with Conntrack(nfgen_family=family) as ct:
            found |= {
                (
                    canonical(e.tuple_orig.saddr),
                    canonical(e.tuple_orig.daddr),
                    canonical(e.tuple_reply.saddr),
                    e.zone or 0,
                )
                for e in ct.dump_entries()
            }
    return found


def others(count: int) -> list[Flow]:
    """Flows between other addresses, including ones next to the pod's (fd00:244::50,
    fd00:244::5:0) that a careless match would take for it."""
    near = ["fd00:244::50", "fd00:244::5:0", "fd00:244::55"]
    return [
        (near[i % 3] if i % 10 == 0 else f"fd00:246::{i // 200 + 1:x}:{i % 200 + 1:x}",
         "fd00:245::1", "fd00:245::1", 0)
        for i in range(count)
    ]  # fmt: skip


def test_ipv6_removal_deletes_exactly_the_flows_the_address_opened_or_answered(
    netns: str,
) -> None:
    pods = [
        (POD, "fd00:245::9", "fd00:245::9", 0),  # the pod opened it
        (POD, "fd00:245::9", "fd00:245::9", 7),  # the same in zone 7: a flow of its own
        ("fd00:245::9", POD, POD, 0),  # the pod answered it
        ("fd00:245::9", "fd00:245::80", POD, 0),  # answered behind a DNAT to it
    ]
    kept = [
        *others(OTHERS),
        # the pod's address as a destination only: a DNAT sent the flow elsewhere
        ("fd00:245::9", POD, "fd00:246::7", 0),
        ("10.244.1.5", "10.244.2.9", "10.244.2.9", 0),  # IPv4 is not asked for
    ]

    def run() -> tuple[int, set[Flow], set[Flow]]:
        add(pods + kept)
        before = table()
        return conntrack.remove([POD]), before, table()

    removed, before, after = in_netns(netns, run)
    assert before == set(pods + kept)
    assert removed == len(pods)
    assert after == set(kept)


def test_one_removal_of_several_addresses_in_both_families(netns: str) -> None:
    pods = [
        (POD, "fd00:245::9", "fd00:245::9", 0),
        ("fd00:245::9", "fd00:244::6", "fd00:244::6", 0),
        ("10.244.1.5", "10.244.2.9", "10.244.2.9", 0),
        ("10.244.1.5", "10.244.2.9", "10.244.2.9", 7),  # in zone 7: a flow of its own
        ("10.244.2.9", "10.244.1.6", "10.244.1.6", 0),
    ]
    kept = [*others(500), ("10.244.1.7", "10.244.2.9", "10.244.2.9", 0)]

    def run() -> tuple[int, set[Flow]]:
        add(pods + kept)
        gone = ["fd00:244::5", "fd00:244:0:0::6", "10.244.1.5", "10.244.1.6"]
        return conntrack.remove(gone), table()

    removed, after = in_netns(netns, run)
    assert removed == len(pods)
    assert after == set(kept)


def test_removing_an_address_without_flows_deletes_nothing(netns: str) -> None:
    kept = others(300)

    def run() -> tuple[int, set[Flow]]:
        add(kept)
        return conntrack.remove(["fd00:244::99"]), table()

    assert in_netns(netns, run) == (0, set(kept))

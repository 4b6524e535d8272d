"""Conntrack entries made by hand, as a TCP flow would leave them: what the tests and the
conntrack bench fill a namespace's table with (run it inside the namespace)."""

from __future__ import annotations

from typing import Any


def add_tcp_entry(
    ct: Any,  # a pyroute2 Conntrack of the entry's family
    family: int,
    src: str,
    dst: str,
    port: int,
    reply_src: str = "",
    zone: int = 0,
    timeout: int = 300,
) -> None:
    """`src`:`port` -> `dst`:80, answered from `reply_src` (default `dst`; another address
    is a DNAT) in conntrack zone `zone`."""
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

    ct.entry(
        "add",
        timeout=timeout,
        zone=zone or None,
        tuple_orig=NFCTAttrTuple(
            family=family, saddr=src, daddr=dst, proto=6, sport=port, dport=80
        ),
        tuple_reply=NFCTAttrTuple(
            family=family, saddr=reply_src or dst, daddr=src, proto=6, sport=80, dport=port
        ),
    )

"""Link and address changes the kernel announces, read without blocking: what makes routes
vanish, and what moves host endpoints between interfaces.

A link that goes down loses its routes, and the kernel says nothing about those routes
(IPv4 flushes them silently); nor does a down-and-up leave any trace in the link's state
that a later look could compare. Calico's Felix listens to link updates for this; so does
this, on a netlink socket subscribed to link and address messages, drained on demand. The
socket is opened in the network namespace of the thread that creates it.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field

from pyroute2.netlink.rtnl import (
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV6_IFADDR,
    RTMGRP_LINK,
)
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

_RECV_BYTES = 65536


@dataclass
class Changes:
    links: set[str] = field(default_factory=set)  # names of the links that changed
    addresses: bool = False  # some address came or went
    lost: bool = False  # the kernel dropped messages for want of buffer: anything may have


class LinkEvents:
    def __init__(self) -> None:
        self._sock = socket.socket(
            socket.AF_NETLINK,
            socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
            socket.NETLINK_ROUTE,
        )
        self._sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
        self._marshal = MarshalRtnl()

    def drain(self) -> Changes:
        """What changed since the last call."""
        changes = Changes()
        while True:
            try:
                data = self._sock.recv(_RECV_BYTES)
            except BlockingIOError:
                return changes
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    changes.lost = True
                    continue
                raise
            for msg in self._marshal.parse(data):
                kind = msg["header"]["type"]
                if kind in (RTM_NEWLINK, RTM_DELLINK):
                    changes.links.add(str(msg.get_attr("IFLA_IFNAME")))
                elif kind in (RTM_NEWADDR, RTM_DELADDR):
                    changes.addresses = True

    def close(self) -> None:
        self._sock.close()

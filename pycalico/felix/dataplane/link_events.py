"""Link changes the kernel announces, read without blocking: what makes routes vanish.

A link that goes down loses its routes, and the kernel says nothing about those routes
(IPv4 flushes them silently); nor does a down-and-up leave any trace in the link's state
that a later look could compare. Calico's Felix listens to link updates for this; so does
this, on a netlink socket subscribed to link messages, drained on demand. The socket is
opened in the network namespace of the thread that creates it.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable

from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_NEWLINK, RTMGRP_LINK
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

_RECV_BYTES = 65536


class LinkEvents:
    def __init__(self) -> None:
        self._sock = socket.socket(
            socket.AF_NETLINK,
            socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
            socket.NETLINK_ROUTE,
        )
        self._sock.bind((0, RTMGRP_LINK))
        self._marshal = MarshalRtnl()

    def changed(self, names: Iterable[str]) -> bool:
        """Whether any link of these names changed since the last call (also when the
        kernel dropped messages for want of buffer: then anything may have)."""
        wanted = set(names)
        hit = False
        while True:
            try:
                data = self._sock.recv(_RECV_BYTES)
            except BlockingIOError:
                return hit
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    hit = True
                    continue
                raise
            for msg in self._marshal.parse(data):
                if msg["header"]["type"] in (RTM_NEWLINK, RTM_DELLINK):
                    hit = hit or msg.get_attr("IFLA_IFNAME") in wanted

    def close(self) -> None:
        self._sock.close()

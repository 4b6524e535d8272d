"""Link and address changes the kernel announces, read without blocking: what makes routes
vanish, and what moves host endpoints between interfaces.

A link that goes down loses its routes, and the kernel says nothing about those routes
(IPv4 flushes them silently); nor does a down-and-up leave any trace in the link's state
that a later look could compare. Calico's Felix listens to link updates for this; so does
this, on a netlink socket subscribed to link and address messages. The socket is opened in
the network namespace of the thread that creates it. A thread of its own reads it as the
kernel writes, keeps what changed until `drain()` takes it, and calls `on_change` (Felix's
loop sleeps between datastore changes; this wakes it).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
from collections.abc import Callable
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
    def __init__(self, on_change: Callable[[], None] = lambda: None) -> None:
        self._sock = socket.socket(
            socket.AF_NETLINK,
            socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
            socket.NETLINK_ROUTE,
        )
        self._sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
        self._marshal = MarshalRtnl()
        self._lock = threading.Lock()
        self._changes = Changes()
        self._on_change = on_change
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._listen, name="link-events", daemon=True)
        self._thread.start()

    def drain(self) -> Changes:
        """What changed since the last call."""
        with self._lock:
            self._read(self._changes)
            changes, self._changes = self._changes, Changes()
        return changes

    def _listen(self) -> None:
        poller = select.poll()
        poller.register(self._sock, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if self._stop_r in ready:
                return
            try:
                with self._lock:
                    heard = self._read(self._changes)
            except OSError:  # the socket failed: whoever drains next hears it from recv
                self._on_change()
                return
            if heard:
                self._on_change()

    def _read(self, changes: Changes) -> bool:
        """Add what the socket holds to `changes`; whether it held anything."""
        heard = False
        while True:
            try:
                data = self._sock.recv(_RECV_BYTES)
            except BlockingIOError:
                return heard
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    changes.lost = heard = True
                    continue
                raise
            heard = True
            for msg in self._marshal.parse(data):
                kind = msg["header"]["type"]
                if kind in (RTM_NEWLINK, RTM_DELLINK):
                    changes.links.add(str(msg.get_attr("IFLA_IFNAME")))
                elif kind in (RTM_NEWADDR, RTM_DELADDR):
                    changes.addresses = True

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join()
        os.close(self._stop_r)
        os.close(self._stop_w)
        self._sock.close()

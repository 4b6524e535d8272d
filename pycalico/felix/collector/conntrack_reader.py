"""Reading conntrack's table and its events (kernel side; the bytes are read by
conntrack_messages).

`dump()` reads the whole table, every family, as Felix polls it for counters (every 5 s in
Calico). `ConntrackEvents` subscribes to NEW, UPDATE and/or DESTROY events: a destroy
event carries the entry's final counters, so a connection that ended between two dumps
is still counted.

Counters exist only with `net.netfilter.nf_conntrack_acct = 1` in the namespace; `enable_
accounting()` sets it (entries created before that carry none).
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterable

from pycalico.felix.collector import conntrack_messages as msg
from pycalico.felix.collector.conntrack_messages import ConntrackEntry

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
SO_RCVBUFFORCE = 33
RECEIVE_BUFFER = 8 << 20
_RECV = 1 << 18
ACCOUNTING = "/proc/sys/net/netfilter/nf_conntrack_acct"


def enable_accounting() -> None:
    """Turn on conntrack's per-entry counters in this thread's network namespace."""
    with open(ACCOUNTING, "w") as f:
        f.write("1")


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        sock.bind((0, 0))
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    except BaseException:
        sock.close()
        raise
    return sock


def dump(family: int = socket.AF_UNSPEC) -> list[ConntrackEntry]:
    """Every entry of this namespace's table (of one family, or all)."""
    entries: list[ConntrackEntry] = []
    for data in dump_buffers(family):
        entries.extend(msg.parse(data)[0])
    return entries


def dump_buffers(family: int = socket.AF_UNSPEC) -> list[bytes]:
    """The reads a dump of the table takes, as the kernel sent them."""
    with _socket() as sock:
        sock.send(msg.dump_request(family, 1))
        buffers: list[bytes] = []
        while True:
            data = sock.recv(_RECV)
            buffers.append(data)
            _, end = msg.parse(data)
            if end is not None:
                if end.error:
                    raise OSError(end.error, f"dumping conntrack: {os.strerror(end.error)}")
                return buffers


class ConntrackEvents:
    """A subscription to conntrack's event groups (msg.GROUP_NEW/UPDATE/DESTROY)."""

    def __init__(self, groups: Iterable[int] = (msg.GROUP_NEW, msg.GROUP_DESTROY)) -> None:
        self.lost = 0  # reads that found the receive buffer had overflowed
        self._sock = _socket()
        try:
            for group in groups:
                self._sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
        except BaseException:
            self._sock.close()
            raise

    def fileno(self) -> int:
        return self._sock.fileno()

    def set_timeout(self, seconds: float | None) -> None:
        self._sock.settimeout(seconds)

    def receive(self) -> bytes:
        """One read's bytes (blocking until there are some)."""
        while True:
            try:
                return self._sock.recv(_RECV)
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self.lost += 1

    def read(self) -> list[ConntrackEntry]:
        """The events of one read (blocking until there is one)."""
        entries, _ = msg.parse(self.receive())
        return entries

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> ConntrackEvents:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

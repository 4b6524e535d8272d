"""Subscribing to NFLOG groups and reading what policy rules log (kernel side; the bytes are
read by nflog_messages).

One netlink socket binds every group it is given (Felix: 1 for ingress policy, 2 for
egress). Each group is configured to copy the first `copy_range` bytes of the packet —
headers enough for the 5-tuple — and to batch: the kernel sends a batch when it holds
`queue_threshold` packets or `flush_centiseconds` passed, so a busy node gets many log
messages per read. The receive buffer is enlarged (SO_RCVBUFFORCE as root) because a
full buffer loses messages; such a loss (ENOBUFS) is counted, not fatal.

A group is bound by one socket at a time in a network namespace; binding one that
another socket holds is refused (EPERM), which is reported naming the group.

A read waits on the socket and on an eventfd, with no timeout unless one is set:
`interrupt()` from another thread ends a read that would otherwise wait for the next
packet forever (closing the socket does not reliably wake a blocked recv on Linux).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
from collections.abc import Iterable

from pycalico.felix.collector import nflog_messages as msg
from pycalico.felix.collector.nflog_messages import NflogPacket

NETLINK_NETFILTER = 12
SO_RCVBUFFORCE = 33
COPY_RANGE = 128  # IPv6 (40) + extension headers + the transport ports, with room
QUEUE_THRESHOLD = 64
FLUSH_CENTISECONDS = 10  # 100 ms: far below any flush interval of flow logs
KERNEL_BUFFER = 131072  # NFULA_CFG_NLBUFSIZ's maximum
RECEIVE_BUFFER = 8 << 20
_RECV = 1 << 18


class NflogError(Exception):
    """A group that cannot be subscribed, in one line naming it."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.errno = code


class NflogReader:
    def __init__(
        self,
        groups: Iterable[int],
        copy_range: int = COPY_RANGE,
        queue_threshold: int = QUEUE_THRESHOLD,
        flush_centiseconds: int = FLUSH_CENTISECONDS,
    ) -> None:
        self.groups = tuple(groups)
        self.lost = 0  # reads that found the receive buffer had overflowed
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self._sock.bind((0, 0))
            try:
                self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
            except PermissionError:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            seq = 0
            for group in self.groups:
                for attributes in (
                    (msg.bind_command(msg.NFULNL_CFG_CMD_BIND),),
                    (
                        msg.copy_packet(copy_range),
                        msg.be32(msg.NFULA_CFG_NLBUFSIZ, KERNEL_BUFFER),
                        msg.be32(msg.NFULA_CFG_QTHRESH, queue_threshold),
                        msg.be32(msg.NFULA_CFG_TIMEOUT, flush_centiseconds),
                    ),
                ):
                    seq += 1
                    self._request(group, seq, attributes)
            self._wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        except BaseException:
            self._sock.close()
            raise
        self._poll = select.poll()
        self._poll.register(self._sock, select.POLLIN)
        self._poll.register(self._wake, select.POLLIN)

    def _request(self, group: int, seq: int, attributes: tuple[bytes, ...]) -> None:
        self._sock.send(msg.config_message(group, seq, *attributes))
        while True:
            data = self._sock.recv(_RECV)
            offset = 0
            while offset + msg.NLMSG_HEADER.size <= len(data):
                length, kind, _, got, _ = msg.NLMSG_HEADER.unpack_from(data, offset)
                if kind == msg.NLMSG_ERROR and got == seq:
                    code = -int.from_bytes(data[offset + 16 : offset + 20], "little", signed=True)
                    if code:
                        # The kernel refuses a group another socket has bound with EPERM.
                        what = (
                            "bound by another socket" if code == errno.EPERM else os.strerror(code)
                        )
                        raise NflogError(code, f"NFLOG group {group}: {what}")
                    return
                if length < msg.NLMSG_HEADER.size:
                    break
                offset += (length + 3) & ~3

    def fileno(self) -> int:
        return self._sock.fileno()

    def receive(self) -> bytes:
        """One read's bytes (blocking until there are some); b"" when `interrupt()` ended
        the wait, TimeoutError past the timeout set, if any."""
        timeout = self._sock.gettimeout()
        while True:
            ready = self._poll.poll(None if timeout is None else timeout * 1000)
            if not ready:
                raise TimeoutError("no NFLOG message within the timeout")
            if any(fd == self._wake for fd, _ in ready):
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(self._wake)
                return b""
            try:
                return self._sock.recv(_RECV)
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self.lost += 1

    def read(self) -> list[NflogPacket]:
        """The packets of one read (blocking until there is one); [] once interrupted."""
        packets, _ = msg.parse(self.receive())
        return packets

    def interrupt(self) -> None:
        """End the read under way in another thread, or else the next one."""
        os.eventfd_write(self._wake, 1)

    def set_timeout(self, seconds: float | None) -> None:
        self._sock.settimeout(seconds)

    def close(self) -> None:
        for group in self.groups:
            try:
                self._sock.send(
                    msg.config_message(group, 0, msg.bind_command(msg.NFULNL_CFG_CMD_UNBIND))
                )
            except OSError:
                break
        self._sock.close()
        os.close(self._wake)

    def __enter__(self) -> NflogReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

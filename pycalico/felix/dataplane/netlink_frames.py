"""Reading netlink messages by their headers alone, for the sockets Felix speaks raw on
(nf_tables element batches, conntrack dumps): where they start, what kind they are, and
the error an acknowledgement or a dump's end carries."""

from __future__ import annotations

import struct
from collections.abc import Iterator

from pyroute2.netlink import NLMSG_DONE, NLMSG_ERROR

HEADER = struct.Struct("=IHHII")  # struct nlmsghdr: length, type, flags, sequence, port
_CODE = struct.Struct("=i")


def frames(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(offset, length, type, sequence number) of each message in `data`; a malformed
    length ends the reading."""
    offset = 0
    while offset + HEADER.size <= len(data):
        length, kind, _flags, seq, _port = HEADER.unpack_from(data, offset)
        if length < HEADER.size:
            return
        yield offset, length, kind, seq
        offset += (length + 3) & ~3


def error_code(data: bytes, offset: int) -> int:
    """The error an NLMSG_ERROR (an acknowledgement) or NLMSG_DONE (a dump's end) at
    `offset` carries, as a positive errno; 0 for none."""
    return -_CODE.unpack_from(data, offset + HEADER.size)[0]


def acks(data: bytes) -> list[tuple[int, int]]:
    """(sequence number, errno) of every acknowledgement in `data` (errno 0: success)."""
    return [
        (seq, error_code(data, offset))
        for offset, _length, kind, seq in frames(data)
        if kind == NLMSG_ERROR
    ]


def ends_dump(kind: int) -> bool:
    return kind in (NLMSG_DONE, NLMSG_ERROR)

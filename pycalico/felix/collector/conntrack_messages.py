"""Conntrack entries and events, read from the bytes ctnetlink sends (pure).

A flow's packets and bytes come from conntrack (reference flows.md §5): the counters of
both directions (with `net.netfilter.nf_conntrack_acct = 1`), the original and reply
tuples (they differ when the connection was NATed: the original destination is the
service, the reply source the workload), the TCP state and status bits (assured, dying).
A dump and the NEW/UPDATE/DESTROY event groups carry entries in the same message format,
so one reader walks both: every attribute once, nested tuples and counters decoded in
place, everything else skipped.

Numbers from include/uapi/linux/netfilter/nfnetlink_conntrack.h.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple

from pycalico.felix.collector.nflog_messages import (
    NFGENMSG,
    NLA,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_HEADER,
)

NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_NEW = 0
IPCTNL_MSG_CT_GET = 1
IPCTNL_MSG_CT_DELETE = 2
NEW_TYPE = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW
GET_TYPE = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET
DELETE_TYPE = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE
NLM_F_CREATE = 0x400
NLM_F_EXCL = 0x200

CTA_TUPLE_ORIG = 1
CTA_TUPLE_REPLY = 2
CTA_STATUS = 3
CTA_PROTOINFO = 4
CTA_TIMEOUT = 7
CTA_MARK = 8
CTA_COUNTERS_ORIG = 9
CTA_COUNTERS_REPLY = 10
CTA_ID = 12
CTA_ZONE = 18
CTA_TUPLE_IP = 1
CTA_TUPLE_PROTO = 2
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4
CTA_PROTO_NUM = 1
CTA_PROTO_SRC_PORT = 2
CTA_PROTO_DST_PORT = 3
CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE = 5, 6
CTA_PROTO_ICMPV6_TYPE, CTA_PROTO_ICMPV6_CODE = 8, 9
CTA_COUNTERS_PACKETS = 1
CTA_COUNTERS_BYTES = 2
CTA_COUNTERS32_PACKETS = 3
CTA_COUNTERS32_BYTES = 4
CTA_PROTOINFO_TCP = 1
CTA_PROTOINFO_TCP_STATE = 1

IPS_SEEN_REPLY = 0x2
IPS_ASSURED = 0x4
IPS_SRC_NAT = 0x10
IPS_DST_NAT = 0x20
IPS_DYING = 0x200

# Event multicast groups (NFNLGRP_CONNTRACK_*).
GROUP_NEW = 1
GROUP_UPDATE = 2
GROUP_DESTROY = 3

_NLA_TYPE = 0x3FFF
_BE16 = struct.Struct("!H")
_BE32 = struct.Struct("!I")
_BE64 = struct.Struct("!Q")


class Event(IntEnum):
    DUMP = 0  # an entry of a dump: the table as it is
    NEW = 1
    UPDATE = 2
    DESTROY = 3


class Tuple(NamedTuple):
    """One direction: packed addresses, protocol, ports (ICMP: type and code)."""

    src: bytes
    dst: bytes
    proto: int
    sport: int
    dport: int


_EMPTY = Tuple(b"", b"", 0, 0, 0)


class ConntrackEntry(NamedTuple):
    event: Event
    family: int  # 4 or 6
    orig: Tuple
    reply: Tuple
    packets_orig: int
    bytes_orig: int
    packets_reply: int
    bytes_reply: int
    status: int
    id: int
    zone: int
    mark: int
    tcp_state: int  # TCP_CONNTRACK_*: 3 established, 7 time-wait, 8 close; 0 for others
    timeout: int  # seconds left; 0 in destroy events

    @property
    def dnat(self) -> bool:
        """The destination was translated (a service address to a workload's): the
        kernel's own status bit, which the tuples alone cannot tell for ICMP (the reply's
        type differs from the request's)."""
        return bool(self.status & IPS_DST_NAT)


class DumpEnd(NamedTuple):
    error: int  # a positive errno, 0 for a clean end


def parse(data: bytes) -> tuple[list[ConntrackEntry], DumpEnd | None]:
    """The entries in one read, and the dump's end if this read holds it."""
    entries: list[ConntrackEntry] = []
    offset, end = 0, len(data)
    header = NLMSG_HEADER.size
    while offset + header <= end:
        length, kind, flags, _seq, _port = NLMSG_HEADER.unpack_from(data, offset)
        if length < header or offset + length > end:
            break
        if kind == NEW_TYPE:
            event = Event.NEW if flags & (NLM_F_CREATE | NLM_F_EXCL) else Event.UPDATE
            if flags & 0x2 and not flags & (NLM_F_CREATE | NLM_F_EXCL):  # NLM_F_MULTI: a dump
                event = Event.DUMP
            entries.append(_entry(data, offset + header, offset + length, event))
        elif kind == DELETE_TYPE:
            entries.append(_entry(data, offset + header, offset + length, Event.DESTROY))
        elif kind in (NLMSG_DONE, NLMSG_ERROR):
            code = -int.from_bytes(
                data[offset + header : offset + header + 4], "little", signed=True
            )
            return entries, DumpEnd(code if kind == NLMSG_ERROR else max(code, 0))
        offset += (length + 3) & ~3
    return entries, None


def _entry(data: bytes, start: int, end: int, event: Event) -> ConntrackEntry:
    family_code = data[start]
    orig = reply = _EMPTY
    packets_orig = bytes_orig = packets_reply = bytes_reply = 0
    status = ident = zone = mark = tcp_state = timeout = 0
    at = start + NFGENMSG.size
    while at + 4 <= end:
        length, kind = NLA.unpack_from(data, at)
        if length < 4:
            break
        kind &= _NLA_TYPE
        body, stop = at + 4, at + length
        if kind == CTA_TUPLE_ORIG:
            orig = _tuple(data, body, stop)
        elif kind == CTA_TUPLE_REPLY:
            reply = _tuple(data, body, stop)
        elif kind == CTA_COUNTERS_ORIG:
            packets_orig, bytes_orig = _counters(data, body, stop)
        elif kind == CTA_COUNTERS_REPLY:
            packets_reply, bytes_reply = _counters(data, body, stop)
        elif kind == CTA_STATUS:
            status = _BE32.unpack_from(data, body)[0]
        elif kind == CTA_ID:
            ident = _BE32.unpack_from(data, body)[0]
        elif kind == CTA_ZONE:
            zone = _BE16.unpack_from(data, body)[0]
        elif kind == CTA_MARK:
            mark = _BE32.unpack_from(data, body)[0]
        elif kind == CTA_TIMEOUT:
            timeout = _BE32.unpack_from(data, body)[0]
        elif kind == CTA_PROTOINFO:
            tcp_state = _tcp_state(data, body, stop)
        at += (length + 3) & ~3
    family = 6 if family_code == 10 else 4  # AF_INET6 is 10
    return ConntrackEntry(
        event, family, orig, reply, packets_orig, bytes_orig, packets_reply, bytes_reply,
        status, ident, zone, mark, tcp_state, timeout,
    )  # fmt: skip


def _tuple(data: bytes, at: int, end: int) -> Tuple:
    src = dst = b""
    proto = sport = dport = 0
    while at + 4 <= end:
        length, kind = NLA.unpack_from(data, at)
        if length < 4:
            break
        kind &= _NLA_TYPE
        if kind == CTA_TUPLE_IP:
            inner, stop = at + 4, at + length
            while inner + 4 <= stop:
                ip_length, ip_kind = NLA.unpack_from(data, inner)
                if ip_length < 4:
                    break
                ip_kind &= _NLA_TYPE
                if ip_kind in (CTA_IP_V4_SRC, CTA_IP_V6_SRC):
                    src = data[inner + 4 : inner + ip_length]
                elif ip_kind in (CTA_IP_V4_DST, CTA_IP_V6_DST):
                    dst = data[inner + 4 : inner + ip_length]
                inner += (ip_length + 3) & ~3
        elif kind == CTA_TUPLE_PROTO:
            inner, stop = at + 4, at + length
            while inner + 4 <= stop:
                p_length, p_kind = NLA.unpack_from(data, inner)
                if p_length < 4:
                    break
                p_kind &= _NLA_TYPE
                value_at = inner + 4
                if p_kind == CTA_PROTO_NUM:
                    proto = data[value_at]
                elif p_kind == CTA_PROTO_SRC_PORT:
                    sport = _BE16.unpack_from(data, value_at)[0]
                elif p_kind == CTA_PROTO_DST_PORT:
                    dport = _BE16.unpack_from(data, value_at)[0]
                elif p_kind in (CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMPV6_TYPE):
                    sport = data[value_at]
                elif p_kind in (CTA_PROTO_ICMP_CODE, CTA_PROTO_ICMPV6_CODE):
                    dport = data[value_at]
                inner += (p_length + 3) & ~3
        at += (length + 3) & ~3
    return Tuple(src, dst, proto, sport, dport)


def _counters(data: bytes, at: int, end: int) -> tuple[int, int]:
    packets = count = 0
    while at + 4 <= end:
        length, kind = NLA.unpack_from(data, at)
        if length < 4:
            break
        kind &= _NLA_TYPE
        if kind == CTA_COUNTERS_PACKETS:
            packets = _BE64.unpack_from(data, at + 4)[0]
        elif kind == CTA_COUNTERS_BYTES:
            count = _BE64.unpack_from(data, at + 4)[0]
        elif kind == CTA_COUNTERS32_PACKETS:
            packets = _BE32.unpack_from(data, at + 4)[0]
        elif kind == CTA_COUNTERS32_BYTES:
            count = _BE32.unpack_from(data, at + 4)[0]
        at += (length + 3) & ~3
    return packets, count


def _tcp_state(data: bytes, at: int, end: int) -> int:
    while at + 4 <= end:
        length, kind = NLA.unpack_from(data, at)
        if length < 4:
            break
        if kind & _NLA_TYPE == CTA_PROTOINFO_TCP:
            inner, stop = at + 4, at + length
            while inner + 4 <= stop:
                t_length, t_kind = NLA.unpack_from(data, inner)
                if t_length < 4:
                    break
                if t_kind & _NLA_TYPE == CTA_PROTOINFO_TCP_STATE:
                    return data[inner + 4]
                inner += (t_length + 3) & ~3
        at += (length + 3) & ~3
    return 0


def dump_request(family: int, seq: int) -> bytes:
    """IPCTNL_MSG_CT_GET with NLM_F_DUMP for one family (AF_UNSPEC: every family)."""
    body = NFGENMSG.pack(family, 0, 0)
    flags = 0x1 | 0x300  # NLM_F_REQUEST | NLM_F_DUMP
    return NLMSG_HEADER.pack(NLMSG_HEADER.size + len(body), GET_TYPE, flags, seq, 0) + body

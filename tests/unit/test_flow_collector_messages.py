"""The NFLOG and conntrack message readers on messages built here byte by byte (the kernel's
own are read in tests/integration/test_flow_collector_kernel.py): every field they keep,
the header shapes they walk, and what they do with truncated or foreign bytes."""

from __future__ import annotations

import ipaddress
import struct

from pycalico.felix.collector import conntrack_messages as ct
from pycalico.felix.collector import nflog_messages as nf

NLA_F_NESTED = 0x8000


def nlmsg(kind: int, body: bytes, flags: int = 0, seq: int = 0) -> bytes:
    length = 16 + len(body)
    return struct.pack("=IHHII", length, kind, flags, seq, 0) + body + b"\0" * (-length % 4)


def attr(kind: int, value: bytes) -> bytes:
    return nf.attribute(kind, value)


def nested(kind: int, *children: bytes) -> bytes:
    return nf.attribute(kind | NLA_F_NESTED, b"".join(children))


def ip(address: str) -> bytes:
    return ipaddress.ip_address(address).packed


def ipv4(proto: int, src: str, dst: str, l4: bytes, fragment_offset: int = 0) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, fragment_offset, 64, proto, 0, ip(src), ip(dst)
    )
    return header + l4


def ipv6(next_header: int, src: str, dst: str, rest: bytes) -> bytes:
    return (
        struct.pack("!IHBB16s16s", 0x60000000, len(rest), next_header, 64, ip(src), ip(dst)) + rest
    )


def tcp(sport: int, dport: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x02, 65535, 0, 0)


def nflog_packet(group: int, prefix: str, payload: bytes, *extra: bytes) -> bytes:
    body = nf.NFGENMSG.pack(2, 0, group)
    body += attr(nf.NFULA_PACKET_HDR, struct.pack("!HBB", 0x0800, 1, 0))
    body += attr(nf.NFULA_PREFIX, prefix.encode() + b"\0")
    body += b"".join(extra)
    body += attr(nf.NFULA_PAYLOAD, payload)
    return nlmsg(nf.PACKET_TYPE, body, flags=0x2)


def done() -> bytes:
    return nlmsg(nf.NLMSG_DONE, struct.pack("=i", 0))


def test_an_ipv4_tcp_packet_gives_its_group_prefix_and_tuple() -> None:
    data = nflog_packet(
        1,
        "API0|gnp/allow-dns",
        ipv4(6, "10.0.0.1", "10.0.0.2", tcp(40000, 80)),
        attr(nf.NFULA_MARK, struct.pack("!I", 0x10000)),
        attr(nf.NFULA_IFINDEX_INDEV, struct.pack("!I", 7)),
    )
    (packet,), others = nf.parse(data)
    assert others == 0
    assert packet == nf.NflogPacket(
        1, "API0|gnp/allow-dns", 4, 6, ip("10.0.0.1"), ip("10.0.0.2"), 40000, 80, 0x10000, 7, 0
    )


def test_a_batch_is_read_in_one_pass_and_its_end_skipped() -> None:
    one = nflog_packet(
        2, "DPE|default", ipv4(17, "10.0.0.1", "10.0.0.9", struct.pack("!HHHH", 5353, 53, 8, 0))
    )
    packets, others = nf.parse(one * 3 + done())
    assert [(p.group, p.proto, p.sport, p.dport) for p in packets] == [(2, 17, 5353, 53)] * 3
    assert others == 0


def test_icmp_carries_type_and_code_in_the_port_fields() -> None:
    data = nflog_packet(1, "DRI", ipv4(1, "10.0.0.1", "10.0.0.2", bytes([8, 0, 0, 0])))
    (packet,), _ = nf.parse(data)
    assert (packet.proto, packet.sport, packet.dport) == (1, 8, 0)


def test_ipv6_extension_headers_are_walked_to_the_ports() -> None:
    hop_by_hop = bytes([60, 0]) + b"\0" * 6  # next: destination options, 8 bytes
    destination = bytes([44, 0]) + b"\0" * 6  # next: fragment
    fragment = bytes([6, 0, 0, 1]) + b"\0" * 4  # first fragment (offset 0, more fragments)
    payload = ipv6(0, "fd00::1", "fd00::2", hop_by_hop + destination + fragment + tcp(1234, 443))
    (packet,), _ = nf.parse(nflog_packet(1, "API3|np/shop/web", payload))
    assert (packet.family, packet.proto, packet.sport, packet.dport) == (6, 6, 1234, 443)
    assert (packet.src, packet.dst) == (ip("fd00::1"), ip("fd00::2"))


def test_later_fragments_have_no_ports() -> None:
    v4 = nflog_packet(1, "p", ipv4(6, "10.0.0.1", "10.0.0.2", tcp(1, 2), fragment_offset=185))
    (packet,), _ = nf.parse(v4)
    assert (packet.proto, packet.sport, packet.dport) == (6, 0, 0)
    later = bytes([6, 0, 0x05, 0x00]) + b"\0" * 4  # offset 160
    v6 = nflog_packet(1, "p", ipv6(44, "fd00::1", "fd00::2", later + tcp(1, 2)))
    (packet,), _ = nf.parse(v6)
    assert (packet.proto, packet.sport, packet.dport) == (6, 0, 0)


def test_a_payload_cut_short_keeps_what_it_holds() -> None:
    cut = ipv4(6, "10.0.0.1", "10.0.0.2", tcp(1, 2))[:22]  # two bytes of TCP
    (packet,), _ = nf.parse(nflog_packet(1, "p", cut))
    assert (packet.family, packet.src, packet.sport) == (4, ip("10.0.0.1"), 0)
    (packet,), _ = nf.parse(nflog_packet(1, "p", b"\x45\x00"))
    assert (packet.family, packet.src) == (0, b"")


def test_a_packet_without_payload_or_ip_gives_no_tuple() -> None:
    body = nf.NFGENMSG.pack(2, 0, 3) + attr(nf.NFULA_PREFIX, b"DRE\0")
    (packet,), _ = nf.parse(nlmsg(nf.PACKET_TYPE, body))
    assert (packet.group, packet.prefix, packet.family) == (3, "DRE", 0)
    (arp,), _ = nf.parse(nflog_packet(3, "x", b"\x00\x01\x08\x00"))
    assert arp.family == 0


def test_a_truncated_read_stops_at_the_last_whole_message() -> None:
    good = nflog_packet(1, "API0|gnp/a", ipv4(6, "10.0.0.1", "10.0.0.2", tcp(1, 2)))
    packets, _ = nf.parse(good + good[:30])
    assert len(packets) == 1
    assert nf.parse(b"\x01\x00") == ([], 0)


def test_other_messages_are_counted_not_read() -> None:
    ack = nlmsg(nf.NLMSG_ERROR, struct.pack("=i", 0) + b"\0" * 16)
    assert nf.parse(ack) == ([], 1)


def test_config_messages_carry_the_group_big_endian_and_ask_for_an_ack() -> None:
    message = nf.config_message(258, 9, nf.bind_command(nf.NFULNL_CFG_CMD_BIND))
    length, kind, flags, seq, _ = nf.NLMSG_HEADER.unpack_from(message)
    assert (length, kind, flags, seq) == (len(message), nf.CONFIG_TYPE, 0x5, 9)
    assert message[16:20] == b"\x00\x00\x01\x02"
    assert message[20:] == struct.pack("=HH", 5, nf.NFULA_CFG_CMD) + b"\x01\0\0\0"
    mode = nf.copy_packet(128)
    assert (
        mode == struct.pack("=HH", 10, nf.NFULA_CFG_MODE) + struct.pack("!IBB", 128, 2, 0) + b"\0\0"
    )


# --- conntrack ---


def ct_tuple(kind: int, src: str, dst: str, proto: int, sport: int, dport: int) -> bytes:
    v6 = ":" in src
    ips = nested(
        ct.CTA_TUPLE_IP,
        attr(ct.CTA_IP_V6_SRC if v6 else ct.CTA_IP_V4_SRC, ip(src)),
        attr(ct.CTA_IP_V6_DST if v6 else ct.CTA_IP_V4_DST, ip(dst)),
    )
    if proto in (1, 58):
        ports = (
            attr(
                ct.CTA_PROTO_ICMP_TYPE if proto == 1 else ct.CTA_PROTO_ICMPV6_TYPE, bytes([sport])
            ),
            attr(
                ct.CTA_PROTO_ICMP_CODE if proto == 1 else ct.CTA_PROTO_ICMPV6_CODE, bytes([dport])
            ),
        )
    else:
        ports = (
            attr(ct.CTA_PROTO_SRC_PORT, struct.pack("!H", sport)),
            attr(ct.CTA_PROTO_DST_PORT, struct.pack("!H", dport)),
        )
    return nested(
        kind, ips, nested(ct.CTA_TUPLE_PROTO, attr(ct.CTA_PROTO_NUM, bytes([proto])), *ports)
    )


def counters(kind: int, packets: int, count: int, wide: bool = True) -> bytes:
    if wide:
        return nested(
            kind,
            attr(ct.CTA_COUNTERS_PACKETS, struct.pack("!Q", packets)),
            attr(ct.CTA_COUNTERS_BYTES, struct.pack("!Q", count)),
        )
    return nested(
        kind,
        attr(ct.CTA_COUNTERS32_PACKETS, struct.pack("!I", packets)),
        attr(ct.CTA_COUNTERS32_BYTES, struct.pack("!I", count)),
    )


def ct_message(kind: int, flags: int, family: int = 2, *attributes: bytes) -> bytes:
    return nlmsg(kind, nf.NFGENMSG.pack(family, 0, 0) + b"".join(attributes), flags=flags)


def tcp_entry(kind: int = ct.NEW_TYPE, flags: int = 0x2, reply_src: str = "10.0.0.2") -> bytes:
    return ct_message(
        kind,
        flags,
        2,
        ct_tuple(ct.CTA_TUPLE_ORIG, "10.0.0.1", "10.96.0.10", 6, 40000, 80),
        ct_tuple(ct.CTA_TUPLE_REPLY, reply_src, "10.0.0.1", 6, 8080, 40000),
        nested(
            ct.CTA_PROTOINFO,
            nested(ct.CTA_PROTOINFO_TCP, attr(ct.CTA_PROTOINFO_TCP_STATE, b"\x03")),
        ),
        attr(ct.CTA_STATUS, struct.pack("!I", ct.IPS_ASSURED | ct.IPS_DST_NAT)),
        attr(ct.CTA_TIMEOUT, struct.pack("!I", 431999)),
        attr(ct.CTA_MARK, struct.pack("!I", 5)),
        counters(ct.CTA_COUNTERS_ORIG, 6, 480),
        counters(ct.CTA_COUNTERS_REPLY, 4, 5000),
        attr(ct.CTA_ID, struct.pack("!I", 0xDEADBEEF)),
        attr(ct.CTA_ZONE, struct.pack("!H", 3)),
    )


def test_a_dump_entry_gives_tuples_counters_and_state() -> None:
    (entry,), end = ct.parse(tcp_entry() + done())
    assert end == ct.DumpEnd(0)
    assert entry == ct.ConntrackEntry(
        ct.Event.DUMP, 4,
        ct.Tuple(ip("10.0.0.1"), ip("10.96.0.10"), 6, 40000, 80),
        ct.Tuple(ip("10.0.0.2"), ip("10.0.0.1"), 6, 8080, 40000),
        6, 480, 4, 5000, ct.IPS_ASSURED | ct.IPS_DST_NAT, 0xDEADBEEF, 3, 5, 3, 431999,
    )  # fmt: skip
    assert entry.dnat


def test_event_kinds_come_from_the_message_type_and_flags() -> None:
    new = tcp_entry(flags=ct.NLM_F_CREATE | ct.NLM_F_EXCL)
    update = tcp_entry(flags=0)
    destroy = tcp_entry(kind=ct.DELETE_TYPE, flags=0)
    entries, end = ct.parse(new + update + destroy)
    assert [e.event for e in entries] == [ct.Event.NEW, ct.Event.UPDATE, ct.Event.DESTROY]
    assert end is None


def test_32_bit_counters_are_read_too() -> None:
    data = ct_message(
        ct.NEW_TYPE, 0x2, 2,
        ct_tuple(ct.CTA_TUPLE_ORIG, "10.0.0.1", "10.0.0.2", 17, 1, 53),
        counters(ct.CTA_COUNTERS_ORIG, 2, 100, wide=False),
    )  # fmt: skip
    (entry,), _ = ct.parse(data)
    assert (entry.packets_orig, entry.bytes_orig, entry.reply) == (
        2,
        100,
        ct.Tuple(b"", b"", 0, 0, 0),
    )


def test_ipv6_and_icmp_entries() -> None:
    data = ct_message(
        ct.NEW_TYPE, 0x2, 10,
        ct_tuple(ct.CTA_TUPLE_ORIG, "fd00::1", "fd00::2", 58, 128, 0),
        ct_tuple(ct.CTA_TUPLE_REPLY, "fd00::2", "fd00::1", 58, 129, 0),
    )  # fmt: skip
    (entry,), _ = ct.parse(data)
    assert (entry.family, entry.orig.proto, entry.orig.sport, entry.reply.sport) == (
        6,
        58,
        128,
        129,
    )
    assert entry.orig.src == ip("fd00::1")
    assert not entry.dnat


def test_a_dump_that_failed_says_why() -> None:
    error = nlmsg(nf.NLMSG_ERROR, struct.pack("=i", -4) + b"\0" * 16)
    assert ct.parse(tcp_entry() + error)[1] == ct.DumpEnd(4)


def test_messages_of_other_kinds_and_truncated_tails_are_skipped() -> None:
    entries, end = ct.parse(nlmsg(0x0105, b"\0" * 8) + tcp_entry() + tcp_entry()[:40])
    assert (len(entries), end) == (1, None)


def test_a_dump_request_asks_for_every_entry_of_a_family() -> None:
    request = ct.dump_request(10, 7)
    length, kind, flags, seq, _ = nf.NLMSG_HEADER.unpack_from(request)
    assert (length, kind, flags, seq) == (20, ct.GET_TYPE, 0x301, 7)
    assert request[16] == 10


def test_entries_of_one_shape_each_keep_their_own_values() -> None:
    def entry(port: int, packets: int) -> bytes:
        return ct_message(
            ct.NEW_TYPE, 0x2, 2,
            ct_tuple(ct.CTA_TUPLE_ORIG, "10.0.0.1", "10.0.0.2", 6, port, 80),
            counters(ct.CTA_COUNTERS_ORIG, packets, packets * 100),
        )  # fmt: skip

    entries, _ = ct.parse(b"".join(entry(1000 + i, i) for i in range(5)))
    assert [(e.orig.sport, e.packets_orig, e.bytes_orig) for e in entries] == [
        (1000 + i, i, i * 100) for i in range(5)
    ]


def test_entries_of_one_length_but_another_shape_are_read_by_their_own() -> None:
    status = attr(ct.CTA_STATUS, struct.pack("!I", ct.IPS_ASSURED))
    mark = attr(ct.CTA_MARK, struct.pack("!I", 99))
    orig = ct_tuple(ct.CTA_TUPLE_ORIG, "10.0.0.1", "10.0.0.2", 6, 1, 80)
    first = ct_message(ct.NEW_TYPE, 0x2, 2, orig, status, mark)
    second = ct_message(ct.NEW_TYPE, 0x2, 2, orig, mark, status)
    assert len(first) == len(second)
    entries, _ = ct.parse(first + second + first)
    assert [(e.status, e.mark) for e in entries] == [(ct.IPS_ASSURED, 99)] * 3


def test_an_attribute_too_short_for_its_value_leaves_the_field_unset() -> None:
    short_status = attr(ct.CTA_STATUS, b"\x00\x04")
    orig = ct_tuple(ct.CTA_TUPLE_ORIG, "10.0.0.1", "10.0.0.2", 6, 1, 80)
    (entry,), _ = ct.parse(ct_message(ct.NEW_TYPE, 0x2, 2, short_status, orig))
    assert (entry.status, entry.orig.sport) == (0, 1)

"""The NFLOG and conntrack readers against real packets in a namespace: a test nftables
table logs new connections with Felix's prefixes, and what the readers report is what
went over the wire (tests/support/flow_namespaces.py)."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from pycalico.felix.collector import conntrack_messages as ct
from pycalico.felix.collector.conntrack_reader import ConntrackEvents, dump, enable_accounting
from pycalico.felix.collector.nflog_messages import NflogPacket
from pycalico.felix.collector.nflog_reader import NflogError, NflogReader
from pycalico.flows import nflog_prefix
from pycalico.flows.record import Action, PolicyKind
from tests.support import flow_namespaces as fn

pytestmark = pytest.mark.integration


@pytest.fixture
def pair() -> Iterator[fn.Pair]:
    with fn.logging_pair() as p:
        p.in_server(enable_accounting)
        yield p


@pytest.fixture
def reader(pair: fn.Pair) -> Iterator[NflogReader]:
    nflog: NflogReader = pair.in_server(
        lambda: NflogReader([fn.INGRESS_GROUP, fn.EGRESS_GROUP], flush_centiseconds=1)
    )
    nflog.set_timeout(10)
    try:
        yield nflog
    finally:
        nflog.close()


def packed(address: str) -> bytes:
    return ipaddress.ip_address(address).packed


def read_until(reader: NflogReader, count: int) -> list[NflogPacket]:
    got: list[NflogPacket] = []
    while len(got) < count:
        got.extend(reader.read())
    return got


def test_each_new_connection_is_logged_once_with_its_prefix_and_tuple(
    pair: fn.Pair, reader: NflogReader
) -> None:
    server = fn.EchoServer(pair, socket.AF_INET, fn.SERVER4, fn.ALLOWED_PORT)
    try:
        ports = [
            fn.connect(pair, socket.AF_INET, fn.SERVER4, fn.ALLOWED_PORT, b"hello")[0]
            for _ in range(50)
        ]
    finally:
        server.close()
    logged = read_until(reader, 50)
    assert sorted(p.sport for p in logged) == sorted(ports)
    assert {(p.group, p.prefix, p.family, p.proto) for p in logged} == {
        (fn.INGRESS_GROUP, fn.ALLOW_PREFIX, 4, 6)
    }
    assert {(p.src, p.dst, p.dport) for p in logged} == {
        (packed(fn.CLIENT4), packed(fn.SERVER4), fn.ALLOWED_PORT)
    }
    assert all(p.in_ifindex and not p.out_ifindex for p in logged)  # arrived on eth0
    rule = nflog_prefix.parse(logged[0].prefix)
    assert rule == nflog_prefix.RuleLog(
        Action.ALLOW, nflog_prefix.Owner.POLICY, nflog_prefix.Direction.INGRESS, 0,
        PolicyKind.GLOBAL_NETWORK_POLICY, "", "allow-web",
    )  # fmt: skip


def test_ipv6_connections_are_read_from_the_ipv6_header(pair: fn.Pair, reader: NflogReader) -> None:
    server = fn.EchoServer(pair, socket.AF_INET6, fn.SERVER6, fn.ALLOWED_PORT)
    try:
        port, answer = fn.connect(pair, socket.AF_INET6, fn.SERVER6, fn.ALLOWED_PORT, b"v6")
    finally:
        server.close()
    assert answer == b"v6"
    (logged,) = read_until(reader, 1)
    assert (logged.family, logged.proto, logged.src, logged.dst, logged.sport, logged.dport) == (
        6, 6, packed(fn.CLIENT6), packed(fn.SERVER6), port, fn.ALLOWED_PORT,
    )  # fmt: skip


def test_a_dropped_connection_is_logged_by_the_tiers_end(
    pair: fn.Pair, reader: NflogReader
) -> None:
    with pytest.raises(OSError):
        fn.connect(pair, socket.AF_INET, fn.SERVER4, fn.DENIED_PORT, timeout=0.5)
    logged = read_until(reader, 1)[0]  # retransmitted SYNs are new too: logged again
    assert (logged.prefix, logged.dport) == (fn.DENY_PREFIX, fn.DENIED_PORT)
    assert nflog_prefix.parse(logged.prefix) == nflog_prefix.TierEnd(
        Action.DENY, nflog_prefix.Direction.INGRESS, "default"
    )


def test_udp_and_icmp_carry_ports_and_type_code(pair: fn.Pair, reader: NflogReader) -> None:
    def send_udp() -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"ping", (fn.SERVER4, fn.PROFILE_UDP_PORT))
            return int(sock.getsockname()[1])

    udp_port = pair.in_client(send_udp)
    # From the server: its output chain logs the echo request it sends.
    subprocess.run(
        ["nsenter", f"--net={pair.server}", "ping", "-c", "1", "-W", "2", fn.CLIENT4],
        check=True, capture_output=True,
    )  # fmt: skip
    logged = {p.prefix: p for p in read_until(reader, 2)}
    udp, icmp = logged[fn.PROFILE_PREFIX], logged[fn.EGRESS_PREFIX]
    assert (udp.proto, udp.sport, udp.dport) == (17, udp_port, fn.PROFILE_UDP_PORT)
    assert (icmp.group, icmp.proto, icmp.sport, icmp.dport) == (fn.EGRESS_GROUP, 1, 8, 0)
    assert icmp.out_ifindex and not icmp.in_ifindex


def test_a_group_held_by_another_socket_is_refused_by_name(
    pair: fn.Pair, reader: NflogReader
) -> None:
    with pytest.raises(
        NflogError, match=f"^NFLOG group {fn.INGRESS_GROUP}: bound by another socket$"
    ):
        pair.in_server(lambda: NflogReader([fn.INGRESS_GROUP]))


def test_interrupt_ends_a_read_that_waits_with_no_timeout(
    pair: fn.Pair, reader: NflogReader
) -> None:
    reader.set_timeout(None)
    got: list[list[NflogPacket]] = []
    blocked = threading.Thread(target=lambda: got.append(reader.read()), daemon=True)
    blocked.start()
    reader.interrupt()
    blocked.join(timeout=30)
    assert not blocked.is_alive() and got == [[]]


def test_a_read_with_a_timeout_and_nothing_logged_times_out(
    pair: fn.Pair, reader: NflogReader
) -> None:
    reader.set_timeout(0.2)
    with pytest.raises(TimeoutError):
        reader.read()


def test_a_read_after_an_interrupt_still_gets_the_packets_logged(
    pair: fn.Pair, reader: NflogReader
) -> None:
    reader.interrupt()
    assert reader.read() == []
    server = fn.EchoServer(pair, socket.AF_INET, fn.SERVER4, fn.ALLOWED_PORT)
    try:
        port, _ = fn.connect(pair, socket.AF_INET, fn.SERVER4, fn.ALLOWED_PORT, b"after")
    finally:
        server.close()
    assert [p.sport for p in read_until(reader, 1)] == [port]


def test_the_dump_has_each_connections_tuples_and_counters(pair: fn.Pair) -> None:
    server = fn.EchoServer(pair, socket.AF_INET, fn.SERVER4, fn.ALLOWED_PORT)
    try:
        sent = b"x" * 3000
        port, answer = fn.connect(pair, socket.AF_INET, fn.SERVER4, fn.ALLOWED_PORT, sent)
        dnat_port, _ = fn.connect(pair, socket.AF_INET, fn.SERVER4, fn.DNAT_PORT, b"nat")
    finally:
        server.close()
    assert answer == sent
    entries = {e.orig.sport: e for e in pair.in_server(dump) if e.orig.proto == 6}
    direct, translated = entries[port], entries[dnat_port]
    assert direct.event == ct.Event.DUMP
    assert direct.family == 4
    assert direct.orig == ct.Tuple(packed(fn.CLIENT4), packed(fn.SERVER4), 6, port, fn.ALLOWED_PORT)
    assert direct.reply == ct.Tuple(
        packed(fn.SERVER4), packed(fn.CLIENT4), 6, fn.ALLOWED_PORT, port
    )
    assert direct.bytes_orig > len(sent) and direct.bytes_reply > len(sent)
    assert direct.packets_orig >= 4 and direct.packets_reply >= 3
    assert direct.status & ct.IPS_ASSURED
    assert direct.tcp_state in (7, 8)  # TIME_WAIT or CLOSE: both sides closed
    assert not direct.dnat
    assert translated.dnat
    assert (translated.orig.dport, translated.reply.sport) == (fn.DNAT_PORT, fn.ALLOWED_PORT)


def test_events_report_new_connections_and_final_counters_at_destroy(pair: fn.Pair) -> None:
    events: ConntrackEvents = pair.in_server(ConntrackEvents)
    events.set_timeout(10)
    try:
        server = fn.EchoServer(pair, socket.AF_INET, fn.SERVER4, fn.ALLOWED_PORT)
        try:
            port, _ = fn.connect(pair, socket.AF_INET, fn.SERVER4, fn.ALLOWED_PORT, b"y" * 500)
        finally:
            server.close()
        pair.in_server(flush_conntrack)  # ends the TIME_WAIT entry now
        seen: dict[ct.Event, ct.ConntrackEntry] = {}
        deadline = time.monotonic() + 10
        while ct.Event.DESTROY not in seen and time.monotonic() < deadline:
            for entry in events.read():
                if entry.orig.sport == port:
                    seen.setdefault(entry.event, entry)
    finally:
        events.close()
    assert ct.Event.NEW in seen
    destroyed = seen[ct.Event.DESTROY]
    assert destroyed.bytes_orig > 500 and destroyed.bytes_reply > 500
    assert destroyed.orig.dport == fn.ALLOWED_PORT


def flush_conntrack() -> None:
    from pyroute2 import Conntrack

    with Conntrack() as table:
        table.flush()

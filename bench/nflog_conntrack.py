"""How fast the flow collector reads the kernel: NFLOG packet logs and conntrack entries.

Root; two namespaces and a test nftables table (tests/support/flow_namespaces.py). New TCP
connections are made one after another from the client namespace; the server's input
chain logs each with a Felix prefix to an NFLOG group, and a reader takes the batches as
the kernel sends them (kept as raw bytes), alongside a conntrack event subscription. Then
the captured bytes are parsed again and again: messages per second of this process's
parsers, the median of 5 rounds, next to pyroute2 decoding the same conntrack dump (the
library Felix uses elsewhere; it has no NFLOG support).

The issue's end-to-end target is 2000 new connections per second logged with calico-node on
one core; the parse rates say how much of a core reading the kernel's side of that takes.

    make bench-collector        (root; python bench/nflog_conntrack.py [--connections N])
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pycalico.felix.collector import conntrack_messages, nflog_messages
from pycalico.felix.collector.conntrack_reader import (
    ConntrackEvents,
    dump_buffers,
    enable_accounting,
)
from pycalico.felix.collector.nflog_reader import NflogReader
from tests.support import flow_namespaces as fn

ROUNDS = 5


def rate(count: int, parse: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """(median, lowest, highest) items per second over ROUNDS rounds of `repeat` parses."""
    rates = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(repeat):
            parse()
        rates.append(count * repeat / (time.perf_counter() - start))
    return statistics.median(rates), min(rates), max(rates)


def capture(connections: int) -> tuple[list[bytes], list[bytes], list[bytes], float, int]:
    """(NFLOG reads, conntrack event reads, conntrack dump reads, connections/s made, lost)."""
    with fn.logging_pair("flbench") as pair:
        pair.in_server(enable_accounting)
        reader: NflogReader = pair.in_server(lambda: NflogReader([fn.INGRESS_GROUP]))
        events: ConntrackEvents = pair.in_server(ConntrackEvents)
        reader.set_timeout(5)
        events.set_timeout(0.5)
        nflog_reads: list[bytes] = []
        event_reads: list[bytes] = []
        done = threading.Event()

        def drain_nflog() -> None:
            logged = 0
            while logged < connections:
                try:
                    data = reader.receive()
                except TimeoutError:
                    return
                nflog_reads.append(data)
                logged += len(nflog_messages.parse(data)[0])

        def drain_events() -> None:
            while not done.is_set():
                try:
                    event_reads.append(events.receive())
                except TimeoutError:
                    continue

        threads = [threading.Thread(target=drain_nflog), threading.Thread(target=drain_events)]
        for thread in threads:
            thread.start()
        server = fn.EchoServer(pair, socket.AF_INET, fn.SERVER4, fn.ALLOWED_PORT)
        start = time.perf_counter()
        try:
            for _ in range(connections):
                fn.connect(pair, socket.AF_INET, fn.SERVER4, fn.ALLOWED_PORT, b"x" * 100)
            made = connections / (time.perf_counter() - start)
        finally:
            server.close()
        threads[0].join()
        done.set()
        threads[1].join()
        dumps = pair.in_server(dump_buffers)
        lost = reader.lost + events.lost
        reader.close()
        events.close()
    return nflog_reads, event_reads, dumps, made, lost


def pyroute2_decode(buffers: list[bytes]) -> Callable[[], object]:
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTSocket

    marshal = NFCTSocket().marshal

    def decode() -> None:
        for data in buffers:
            for message in marshal.parse(data):
                message.get_attr("CTA_TUPLE_ORIG")
                message.get_attr("CTA_COUNTERS_ORIG")

    return decode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=3000)
    opts = parser.parse_args()
    nflog_reads, event_reads, dumps, made, lost = capture(opts.connections)

    logs = sum(len(nflog_messages.parse(d)[0]) for d in nflog_reads)
    events = sum(len(conntrack_messages.parse(d)[0]) for d in event_reads)
    entries = sum(len(conntrack_messages.parse(d)[0]) for d in dumps)
    print(
        f"{opts.connections} new TCP connections made at {made:.0f}/s; captured {logs} NFLOG "
        f"messages in {len(nflog_reads)} reads, {events} conntrack events in "
        f"{len(event_reads)} reads, a dump of {entries} entries in {len(dumps)} reads "
        f"({lost} reads lost to overruns)"
    )

    def parse_all(parse: Callable[[bytes], object], buffers: list[bytes]) -> Callable[[], None]:
        def run() -> None:
            for data in buffers:
                parse(data)

        return run

    rows = [
        ("NFLOG packet logs", logs, parse_all(nflog_messages.parse, nflog_reads), 20),
        ("conntrack events", events, parse_all(conntrack_messages.parse, event_reads), 20),
        ("conntrack dump entries", entries, parse_all(conntrack_messages.parse, dumps), 20),
        ("conntrack dump, pyroute2 decode (reference)", entries, pyroute2_decode(dumps), 1),
    ]  # fmt: skip
    results = {}
    print(f"{'parser':46} {'messages/s':>12}  {'range':>21}  {'us each':>8}")
    for name, count, parse, repeat in rows:
        median, low, high = rate(count, parse, repeat)
        results[name] = median
        print(f"{name:46} {median:12,.0f}  {low:10,.0f}-{high:<10,.0f}  {1e6 / median:8.2f}")
    per_connection = 1 / results["NFLOG packet logs"] + 2 / results["conntrack events"]
    print(
        f"collector parse: nflog {results['NFLOG packet logs']:,.0f} messages/s, conntrack "
        f"{results['conntrack dump entries']:,.0f} entries/s; one NFLOG log and two events "
        f"per connection: {1 / per_connection:,.0f} connections/s of one core (target >= 2000 "
        "end to end)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

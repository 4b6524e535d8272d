"""The Felix -> aggregator stream between real processes on loopback: either side killed
and restarted, every record arrives exactly once.

Each record is one connection to a port of its own, so the aggregator's answer shows both
a lost record (a port missing) and a duplicate (a port counted twice).
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.flow_processes import AggregatorProcess, SenderProcess, wait_for

pytestmark = pytest.mark.contract


@pytest.fixture
def aggregator() -> Iterator[AggregatorProcess]:
    agg = AggregatorProcess().start()
    try:
        yield agg
    finally:
        agg.close()


@pytest.fixture
def senders() -> Iterator[list[SenderProcess]]:
    started: list[SenderProcess] = []
    try:
        yield started
    finally:
        for sender in started:
            sender.close()


def connections_by_port(agg: AggregatorProcess) -> Counter[int]:
    counts: Counter[int] = Counter()
    for item in agg.flows():
        counts[item["dest_port"]] += item["num_connections_started"]
    return counts


def exactly_once(ports: range) -> Counter[int]:
    return Counter({port: 1 for port in ports})


def test_records_reach_the_aggregator_once_each(
    aggregator: AggregatorProcess, senders: list[SenderProcess], tmp_path: Path
) -> None:
    sender = SenderProcess(aggregator.collector, tmp_path / "spool")
    senders.append(sender)
    sender.send(300)
    assert sender.flush()
    assert connections_by_port(aggregator) == exactly_once(range(1, 301))
    assert sender.stats()["acknowledged"] == 300


def test_a_killed_aggregator_gets_back_what_it_had_and_what_came_while_it_was_down(
    aggregator: AggregatorProcess, senders: list[SenderProcess], tmp_path: Path
) -> None:
    sender = SenderProcess(aggregator.collector, tmp_path / "spool")
    senders.append(sender)
    sender.send(200)
    assert sender.flush()
    aggregator.stop(signal.SIGKILL)
    sender.send(100, first_port=201)  # nobody listens: they wait, unacknowledged
    assert not sender.flush(timeout=1)
    aggregator.start()
    assert sender.flush()
    assert connections_by_port(aggregator) == exactly_once(range(1, 301))


def test_a_sender_killed_mid_stream_resends_from_its_spool_without_duplicates(
    aggregator: AggregatorProcess, senders: list[SenderProcess], tmp_path: Path
) -> None:
    first = SenderProcess(aggregator.collector, tmp_path / "spool")
    senders.append(first)
    first.send(2000)  # killed at once: some taken, some on the wire, some never sent
    first.kill()
    second = SenderProcess(aggregator.collector, tmp_path / "spool")
    senders.append(second)
    assert second.flush()
    assert connections_by_port(aggregator) == exactly_once(range(1, 2001))
    assert second.stats()["sender"] == first_identity(tmp_path / "spool")


def test_records_the_aggregator_read_after_their_sender_died_are_not_taken_twice(
    aggregator: AggregatorProcess, senders: list[SenderProcess], tmp_path: Path
) -> None:
    """The dead sender's connection is still being read while its successor resends."""
    first = SenderProcess(aggregator.collector, tmp_path / "spool")
    senders.append(first)
    first.send(100)
    assert first.flush()
    aggregator.pause()
    first.send(500, first_port=101)  # into the socket, never acknowledged
    first.kill()
    second = SenderProcess(aggregator.collector, tmp_path / "spool")
    senders.append(second)
    second.send(100, first_port=601)
    aggregator.resume()
    assert second.flush()
    assert connections_by_port(aggregator) == exactly_once(range(1, 701))


def test_both_sides_killed_lose_nothing_the_spool_holds(
    aggregator: AggregatorProcess, senders: list[SenderProcess], tmp_path: Path
) -> None:
    first = SenderProcess(aggregator.collector, tmp_path / "spool")
    senders.append(first)
    first.send(150)
    assert first.flush()
    aggregator.stop(signal.SIGKILL)
    first.send(50, first_port=151)
    first.kill()
    aggregator.start()
    second = SenderProcess(aggregator.collector, tmp_path / "spool")
    senders.append(second)
    assert second.flush()
    assert connections_by_port(aggregator) == exactly_once(range(1, 201))


def test_a_sender_without_a_spool_is_a_new_sender_after_a_restart(
    aggregator: AggregatorProcess, senders: list[SenderProcess]
) -> None:
    first = SenderProcess(aggregator.collector, None)
    senders.append(first)
    first.send(10)
    assert first.flush()
    identity = first.stats()["sender"]
    first.close()
    second = SenderProcess(aggregator.collector, None)
    senders.append(second)
    second.send(10, first_port=11)
    assert second.flush()
    assert second.stats()["sender"] != identity
    assert connections_by_port(aggregator) == exactly_once(range(1, 21))


def test_a_sender_waits_for_an_aggregator_that_is_not_there_yet(
    senders: list[SenderProcess], tmp_path: Path
) -> None:
    agg = AggregatorProcess().start()
    collector = agg.collector
    agg.stop()
    sender = SenderProcess(collector, tmp_path / "spool")
    senders.append(sender)
    sender.send(20)
    late = AggregatorProcess()
    late.collector, late.api = collector, "127.0.0.1:0"
    try:
        late.start()
        assert sender.flush()
        assert wait_for(lambda: late.connections() == 20, timeout=10)
    finally:
        late.close()


def first_identity(spool: Path) -> str:
    return (spool / "sender").read_text().strip()


def test_past_max_pending_records_are_dropped_and_counted(tmp_path: Path) -> None:
    from pycalico.flows.sender import FlowSender
    from tests.support.flow_records import flow

    agg = AggregatorProcess().start()
    collector = agg.collector
    agg.stop()  # nobody acknowledges
    sender = FlowSender(collector, max_pending=10, retry_first=0.2).start()
    try:
        accepted = [sender.send(flow(dest_port=port)) for port in range(1, 16)]
        assert accepted == [True] * 10 + [False] * 5
        assert (sender.stats.queued, sender.stats.dropped) == (10, 5)
    finally:
        sender.close()


def test_a_sender_whose_identity_was_used_before_takes_a_new_one(
    aggregator: AggregatorProcess, senders: list[SenderProcess], tmp_path: Path
) -> None:
    """Its records were lost but not its identity: numbering again from 1 would have the
    aggregator take new records for old ones."""
    first = SenderProcess(aggregator.collector, tmp_path / "spool")
    senders.append(first)
    first.send(30)
    assert first.flush()
    first.close()
    (tmp_path / "spool" / "records").unlink()
    second = SenderProcess(aggregator.collector, tmp_path / "spool")
    senders.append(second)
    old_identity = first_identity(tmp_path / "spool")
    second.send(5, first_port=31)
    assert second.flush()
    renamed = second.stats()["sender"]
    assert renamed != old_identity
    second.close()
    third = SenderProcess(aggregator.collector, tmp_path / "spool")  # keeps the new identity
    senders.append(third)
    third.send(2, first_port=36)
    assert third.flush()
    assert third.stats()["sender"] == renamed == first_identity(tmp_path / "spool")
    assert connections_by_port(aggregator) == exactly_once(range(1, 38))


# Long enough for the polling the sender did before to show (its loop turned every second):
# a window to observe that nothing happens in, not a timing asserted.
QUIET = 3.0


def test_a_connected_sender_with_nothing_to_do_does_not_wake_up(
    aggregator: AggregatorProcess,
) -> None:
    from pycalico.flows.sender import FlowSender
    from tests.support.flow_records import flow

    sender = FlowSender(aggregator.collector, retry_first=0.2).start()
    try:
        now = int(time.time())
        assert sender.send(flow(now, dest_port=1)) and sender.flush(timeout=30)
        # The turn that follows the acknowledgement may still be under way: one window
        # to let it end, then one in which the thread must not wake at all (the record
        # it caches leaves the cache only in 5 minutes).
        time.sleep(QUIET)
        turns = sender.turns
        time.sleep(QUIET)
        assert sender.turns == turns
        assert sender.send(flow(now, dest_port=2)) and sender.flush(timeout=30)
        assert sender.turns > turns
    finally:
        closer = threading.Thread(target=sender.close, daemon=True)
        closer.start()
        closer.join(timeout=30)
    assert not closer.is_alive()
    assert connections_by_port(aggregator) == exactly_once(range(1, 3))


"""How long the sender's connected loop may sleep: until the oldest cached record can leave
the cache, and with no timer at all while nothing can leave it before an acknowledgement
(which wakes the loop by itself)."""

from __future__ import annotations

from pycalico.flows import wire
from pycalico.flows.sender import expiry_wait
from pycalico.flows.spool import Entry
from tests.support.flow_records import flow


def entry(seq: int, at: float) -> Entry:
    return Entry(seq, at, wire.record(seq, flow(dest_port=seq)))


def test_an_empty_cache_needs_no_timer() -> None:
    assert expiry_wait([], 0, 300.0, 1000.0) is None


def test_an_unacknowledged_oldest_record_needs_no_timer() -> None:
    assert expiry_wait([entry(5, 100.0), entry(6, 101.0)], 4, 300.0, 1000.0) is None


def test_an_acknowledged_oldest_record_is_waited_for_until_it_is_old_enough() -> None:
    cache = [entry(1, 100.0), entry(2, 150.0)]
    assert expiry_wait(cache, 1, 300.0, 160.0) == 240.0


def test_an_acknowledged_record_already_old_enough_is_dropped_at_once() -> None:
    assert expiry_wait([entry(1, 100.0)], 1, 300.0, 900.0) == 0.0

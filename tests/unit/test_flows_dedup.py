"""Deduplication by each sender's sequence numbers: resends are taken once, none skipped."""

from __future__ import annotations

import random

from pycalico.flows.dedup import SequenceDedup


def test_each_number_is_taken_once_and_resends_are_not() -> None:
    dedup = SequenceDedup()
    assert [dedup.take("felix-a", n) for n in (1, 2, 3)] == [True, True, True]
    assert [dedup.take("felix-a", n) for n in (2, 3, 4)] == [False, False, True]
    assert dedup.highest("felix-a") == 4


def test_senders_are_numbered_independently() -> None:
    dedup = SequenceDedup()
    dedup.take("felix-a", 10)
    assert dedup.take("felix-b", 1)
    assert dedup.highest("felix-c") == 0
    assert dedup.senders() == 2


def test_two_overlapping_in_order_connections_take_every_number_exactly_once() -> None:
    """An old connection still being read while its replacement resends everything from
    the first record the sender saw no acknowledgement for: interleaved in any way, every
    number is taken once."""
    rng = random.Random(20)
    for _ in range(500):
        dedup = SequenceDedup()
        old = list(range(1, 41))
        taken: list[int] = []
        for _ in range(rng.randint(0, 40)):  # taken before the sender reconnects
            seq = old.pop(0)
            assert dedup.take("felix", seq)
            taken.append(seq)
        acknowledged = rng.randint(0, len(taken))  # acknowledgements lag behind
        new = list(range(acknowledged + 1, 61))
        while old or new:
            stream = old if (old and (not new or rng.random() < 0.5)) else new
            seq = stream.pop(0)
            if dedup.take("felix", seq):
                taken.append(seq)
        assert sorted(taken) == list(range(1, 61))

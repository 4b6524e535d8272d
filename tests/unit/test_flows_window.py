"""Goldmane's window: 15 s buckets over an hour, a cap per bucket, merging by key."""

from __future__ import annotations

import pytest

from pycalico.flows.window import Outcome, Window, WindowSettings
from tests.support.flow_records import flow

BUCKET = 113_333_333 * 15  # a bucket boundary (Unix time 1699999995)
NOW = BUCKET + 10


def test_a_record_lands_in_the_bucket_holding_its_start_with_the_buckets_bounds() -> None:
    window = Window(NOW)
    assert window.add(flow(start=BUCKET + 7, end_time=BUCKET + 9)) == Outcome.NEW
    (placed,) = window.flows(0, BUCKET + 15)
    assert (placed.start_time, placed.end_time) == (BUCKET, BUCKET + 15)


def test_records_of_one_key_in_one_bucket_become_one_aggregate() -> None:
    window = Window(NOW)
    window.add(flow(start=BUCKET + 1))
    assert window.add(flow(start=BUCKET + 14, packets_in=10)) == Outcome.MERGED
    (merged,) = window.flows(BUCKET, BUCKET + 15)
    assert merged.packets_in == 4 + 10
    assert merged.num_connections_started == 2
    assert window.unique_flows() == 1


def test_a_listing_merges_one_key_across_buckets_and_spans_them() -> None:
    window = Window(NOW)
    window.add(flow(start=BUCKET - 30))
    window.add(flow(start=BUCKET))
    window.add(flow(start=BUCKET, dest_port=443))
    assert window.unique_flows() == 3
    listed = {f.key.dest_port: f for f in window.flows(BUCKET - 30, BUCKET + 15)}
    assert listed[80].num_connections_started == 2
    assert (listed[80].start_time, listed[80].end_time) == (BUCKET - 30, BUCKET + 15)
    assert listed[443].num_connections_started == 1


def test_a_listing_includes_only_buckets_starting_in_its_range() -> None:
    window = Window(NOW)
    for start in (BUCKET - 30, BUCKET - 15, BUCKET):
        window.add(flow(start=start, packets_in=1))
    (only,) = window.flows(BUCKET - 15, BUCKET)
    assert only.packets_in == 1
    assert [f.start_time for f in window.bucket_flows(BUCKET - 30, BUCKET + 15)] == [
        BUCKET - 30, BUCKET - 15, BUCKET,
    ]  # fmt: skip


def test_the_window_holds_an_hour_and_one_future_bucket_and_drops_the_rest() -> None:
    window = Window(NOW)
    oldest = BUCKET - 240 * 15
    assert window.add(flow(start=oldest)) == Outcome.NEW
    assert window.add(flow(start=oldest - 1)) == Outcome.TOO_OLD
    assert window.add(flow(start=BUCKET + 15)) == Outcome.NEW  # clock skew: one bucket ahead
    assert window.add(flow(start=BUCKET + 30)) == Outcome.TOO_NEW
    assert window.counters.dropped_outside == 2
    assert window.counters.received == 4


def test_rolling_forgets_buckets_that_fall_out_of_the_hour() -> None:
    window = Window(NOW)
    window.add(flow(start=BUCKET - 240 * 15))
    window.add(flow(start=BUCKET))
    window.roll(NOW + 15)
    assert [f.start_time for f in window.bucket_flows(0, 2**40)] == [BUCKET]
    assert window.add(flow(start=BUCKET - 240 * 15)) == Outcome.TOO_OLD


def test_rolling_never_moves_the_window_back() -> None:
    window = Window(NOW)
    window.roll(NOW - 3600)
    assert window.oldest_start == BUCKET - 240 * 15


def test_a_full_bucket_drops_new_keys_counts_them_and_still_merges_known_ones() -> None:
    window = Window(NOW, WindowSettings(max_flows_per_bucket=2))
    assert window.add(flow(start=BUCKET, dest_port=1)) == Outcome.NEW
    assert window.add(flow(start=BUCKET, dest_port=2)) == Outcome.NEW
    assert window.add(flow(start=BUCKET, dest_port=3)) == Outcome.BUCKET_FULL
    assert window.add(flow(start=BUCKET, dest_port=1)) == Outcome.MERGED
    assert window.add(flow(start=BUCKET - 15, dest_port=3)) == Outcome.NEW  # another bucket
    assert window.counters.dropped_full == 1
    assert window.counters.dropped == 1
    assert sorted(f.key.dest_port for f in window.bucket_flows(BUCKET, BUCKET + 1)) == [1, 2]


def test_changes_are_drained_once_per_bucket_and_key_with_their_latest_number() -> None:
    window = Window(NOW)
    window.add(flow(start=BUCKET))
    window.add(flow(start=BUCKET))
    window.add(flow(start=BUCKET - 15))
    drained = window.drain_changes()
    assert [(n, f.start_time, f.num_connections_started) for n, f in drained] == [
        (3, BUCKET - 15, 1), (2, BUCKET, 2),
    ]  # fmt: skip
    assert window.drain_changes() == []
    window.add(flow(start=BUCKET))
    ((number, again),) = window.drain_changes()
    assert number == window.change_count == 4
    assert again.num_connections_started == 3  # the bucket's aggregate so far


def test_dropped_records_are_no_change() -> None:
    window = Window(NOW, WindowSettings(max_flows_per_bucket=1))
    window.add(flow(start=BUCKET))
    window.add(flow(start=BUCKET, dest_port=1))
    window.add(flow(start=BUCKET - 3600 * 2))
    assert window.change_count == 1


def test_changes_of_buckets_that_rolled_away_are_not_sent() -> None:
    window = Window(NOW, WindowSettings(history=1))
    window.add(flow(start=BUCKET - 15))
    window.roll(NOW + 15)
    assert window.drain_changes() == []


@pytest.mark.parametrize(
    ("gte", "lt", "expected"),
    [
        (0, 0, (BUCKET - 240 * 15, NOW + 1)),
        (-60, 0, (BUCKET - 60, NOW + 1)),
        (-71, -1, (BUCKET - 75, NOW - 1)),
        (BUCKET + 3, BUCKET + 20, (BUCKET, BUCKET + 20)),
    ],
)
def test_time_bounds_follow_goldmanes_conventions(
    gte: int, lt: int, expected: tuple[int, int]
) -> None:
    assert Window(NOW).bounds(gte, lt, NOW) == expected


@pytest.mark.parametrize(
    "settings",
    [
        {"bucket_seconds": 0},
        {"history": 0},
        {"future": -1},
        {"max_flows_per_bucket": 0},
    ],
)
def test_impossible_settings_are_refused(settings: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        WindowSettings(**settings)


def test_a_narrow_bucket_width_places_records_by_it() -> None:
    window = Window(100, WindowSettings(bucket_seconds=1, history=5))
    window.add(flow(start=98))
    (placed,) = window.flows(0, 200)
    assert (placed.start_time, placed.end_time) == (98, 99)

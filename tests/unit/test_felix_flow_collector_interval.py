"""Where the collector's flush interval starts when connections come back after it slept:
on its grid of whole intervals, the one that holds the first new packet; never an interval
stretched over the idle time."""

from __future__ import annotations

from pycalico.felix.collector.collector import interval_holding


def test_within_the_interval_it_went_dormant_in_the_start_stays() -> None:
    assert interval_holding(1000, 1010.5, 15.0) == 1000


def test_after_idle_intervals_the_start_is_the_grid_point_before_now() -> None:
    assert interval_holding(1000, 1000 + 3600 + 7.0, 15.0) == 1000 + 3600


def test_exactly_on_a_grid_point_a_new_interval_starts_there() -> None:
    assert interval_holding(1000, 1045.0, 15.0) == 1045


def test_the_interval_never_spans_more_than_one_flush_interval_before_now() -> None:
    for now in (1000.0, 1014.9, 1015.0, 1899.99, 86_400.5):
        start = interval_holding(1000, now, 15.0)
        assert 0 <= now - start < 15.0

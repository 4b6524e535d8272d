"""Summaries with quantiles over a sliding window, as Felix's apply time reports them."""

from __future__ import annotations

import math

from pycalico.metrics.sliding_summary import SlidingSummary


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_quantiles_are_the_nearest_rank_of_the_window() -> None:
    summary = SlidingSummary(clock=Clock())
    for value in range(1, 101):
        summary.observe(value / 100)
    assert summary.quantiles() == {0.5: 0.5, 0.9: 0.9, 0.99: 0.99}


def test_old_observations_leave_the_quantiles_but_not_count_and_sum() -> None:
    clock = Clock()
    summary = SlidingSummary(max_age=600, clock=clock)
    summary.observe(5.0)
    clock.now += 601
    summary.observe(0.1)
    assert summary.quantiles() == {0.5: 0.1, 0.9: 0.1, 0.99: 0.1}
    assert (summary.count, summary.sum) == (2, 5.1)


def test_an_empty_window_reports_nan_as_go_does() -> None:
    clock = Clock()
    summary = SlidingSummary(max_age=10, clock=clock)
    summary.observe(1.0)
    clock.now += 11
    assert all(math.isnan(v) for v in summary.quantiles().values())


def test_the_family_has_quantile_sum_and_count_samples() -> None:
    summary = SlidingSummary(clock=Clock())
    summary.observe(0.2)
    samples = [(s.name, s.labels, s.value) for s in summary.family("t_seconds", "T.").samples]
    assert samples == [
        ("t_seconds", {"quantile": "0.5"}, 0.2),
        ("t_seconds", {"quantile": "0.9"}, 0.2),
        ("t_seconds", {"quantile": "0.99"}, 0.2),
        ("t_seconds_sum", {}, 0.2),
        ("t_seconds_count", {}, 1),
    ]


def test_at_most_max_kept_observations_are_held() -> None:
    summary = SlidingSummary(max_kept=3, clock=Clock())
    for value in (9.0, 1.0, 2.0, 3.0):
        summary.observe(value)
    assert summary.quantiles()[0.99] == 3.0
    assert summary.count == 4

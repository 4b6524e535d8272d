"""A Prometheus summary whose quantiles cover a sliding window, as Go's client keeps them
(pure: the clock is given).

prometheus_client's Summary has a count and a sum but no quantiles. Felix's summaries
(Calico's `cprometheus.NewSummary`) report the 0.5, 0.9 and 0.99 quantiles of the last
10 minutes (Go's DefMaxAge) and a count and sum over the whole life of the process; a
quantile with no observation in the window is NaN, as Go reports it. Here the quantiles
are exact (nearest rank over the observations in the window) rather than Go's
approximation; at most `max_kept` observations are held, the oldest dropped first.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable

from prometheus_client.core import Metric

QUANTILES = (0.5, 0.9, 0.99)
MAX_AGE_SECONDS = 600.0
MAX_KEPT = 10_000


class SlidingSummary:
    def __init__(
        self,
        max_age: float = MAX_AGE_SECONDS,
        max_kept: int = MAX_KEPT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._window: collections.deque[tuple[float, float]] = collections.deque(maxlen=max_kept)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        with self._lock:
            self._window.append((self._clock(), value))
            self.count += 1
            self.sum += value

    def quantiles(self) -> dict[float, float]:
        with self._lock:
            oldest = self._clock() - self._max_age
            while self._window and self._window[0][0] < oldest:
                self._window.popleft()
            values = sorted(value for _, value in self._window)
        if not values:
            return {q: math.nan for q in QUANTILES}
        return {q: values[max(0, math.ceil(q * len(values)) - 1)] for q in QUANTILES}

    def family(self, name: str, documentation: str) -> Metric:
        metric = Metric(name, documentation, "summary")
        for q, value in self.quantiles().items():
            metric.add_sample(name, {"quantile": str(q)}, value)
        with self._lock:
            count, total = self.count, self.sum
        metric.add_sample(name + "_sum", {}, total)
        metric.add_sample(name + "_count", {}, count)
        return metric

"""Goldmane's window of flows (reference flows.md §2): fixed buckets of time (15 s by
default) over about an hour, each holding one aggregate per FlowKey (pure; the caller
gives the time).

A record goes into the bucket holding its start_time; there it is merged with the others of
its key (counters summed, labels intersected), and its times become the bucket's bounds.
The ring keeps `history` buckets before the one filling now, and `future` buckets after it
for clocks that run ahead; a record for a time outside that is dropped, and so is a record
of a new key for a bucket already holding `max_flows_per_bucket` keys (the cap that keeps
one noisy interval from exhausting memory). Both drops are counted.

Every aggregate that changes is also noted with a running change number, so that a stream
can send what changed since it last looked (`drain_changes`), once per bucket and key
however many records came, and a stream that starts now can skip what it already has.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import Enum

from pycalico.flows.record import Flow, FlowKey

BUCKET_SECONDS = 15
HISTORY_BUCKETS = 240  # an hour of 15 s buckets
FUTURE_BUCKETS = 1
MAX_FLOWS_PER_BUCKET = 10_000


@dataclass(frozen=True)
class WindowSettings:
    bucket_seconds: int = BUCKET_SECONDS
    history: int = HISTORY_BUCKETS
    future: int = FUTURE_BUCKETS
    max_flows_per_bucket: int = MAX_FLOWS_PER_BUCKET

    def __post_init__(self) -> None:
        if self.bucket_seconds < 1:
            raise ValueError("the bucket width must be at least 1 s")
        if self.history < 1 or self.future < 0:
            raise ValueError("the window needs at least one bucket of history")
        if self.max_flows_per_bucket < 1:
            raise ValueError("a bucket must hold at least one flow")


class Outcome(Enum):
    NEW = "new"  # first record of its key in its bucket
    MERGED = "merged"
    TOO_OLD = "too old"
    TOO_NEW = "too new"
    BUCKET_FULL = "bucket full"


@dataclass
class Counters:
    received: int = 0
    dropped_full: int = 0
    dropped_outside: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_full + self.dropped_outside


class Window:
    def __init__(self, now: float, settings: WindowSettings | None = None) -> None:
        self.settings = settings or WindowSettings()
        self.counters = Counters()
        self._buckets: dict[int, dict[FlowKey, Flow]] = {}
        # bucket start -> key -> the number of its latest change
        self._changed: dict[int, dict[FlowKey, int]] = {}
        self.change_count = 0
        self._current = self._start_of(now)

    def _start_of(self, t: float) -> int:
        width = self.settings.bucket_seconds
        return int(t // width) * width

    @property
    def oldest_start(self) -> int:
        return self._current - self.settings.history * self.settings.bucket_seconds

    @property
    def newest_start(self) -> int:
        return self._current + self.settings.future * self.settings.bucket_seconds

    def roll(self, now: float) -> None:
        """Move the window to `now`, forgetting the buckets that fall out of it."""
        current = self._start_of(now)
        if current <= self._current:
            return  # still in the same bucket (or a clock that stepped back)
        self._current = current
        oldest = self.oldest_start
        for start in [s for s in self._buckets if s < oldest]:
            del self._buckets[start]
            self._changed.pop(start, None)

    def add(self, flow: Flow) -> Outcome:
        self.counters.received += 1
        start = self._start_of(flow.start_time)
        if start < self.oldest_start:
            self.counters.dropped_outside += 1
            return Outcome.TOO_OLD
        if start > self.newest_start:
            self.counters.dropped_outside += 1
            return Outcome.TOO_NEW
        bucket = self._buckets.setdefault(start, {})
        placed = replace(flow, start_time=start, end_time=start + self.settings.bucket_seconds)
        held = bucket.get(flow.key)
        if held is None:
            if len(bucket) >= self.settings.max_flows_per_bucket:
                self.counters.dropped_full += 1
                return Outcome.BUCKET_FULL
            bucket[flow.key] = placed
            outcome = Outcome.NEW
        else:
            bucket[flow.key] = held.merged(placed)
            outcome = Outcome.MERGED
        self.change_count += 1
        self._changed.setdefault(start, {})[flow.key] = self.change_count
        return outcome

    def unique_flows(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def bucket_flows(self, gte: int, lt: int) -> Iterator[Flow]:
        """Each bucket's aggregates, for the buckets starting in [gte, lt), oldest first."""
        for start in sorted(s for s in self._buckets if gte <= s < lt):
            yield from self._buckets[start].values()

    def flows(self, gte: int, lt: int) -> list[Flow]:
        """One aggregate per key over the buckets starting in [gte, lt)."""
        merged: dict[FlowKey, Flow] = {}
        for flow in self.bucket_flows(gte, lt):
            held = merged.get(flow.key)
            merged[flow.key] = flow if held is None else held.merged(flow)
        return list(merged.values())

    def drain_changes(self) -> list[tuple[int, Flow]]:
        """The bucket aggregates that changed since the last call, each with the number of
        its latest change, oldest bucket first."""
        changed = [
            (number, self._buckets[start][key])
            for start in sorted(self._changed)
            for key, number in self._changed[start].items()
            if start in self._buckets
        ]
        self._changed.clear()
        return changed

    def bounds(self, gte: int, lt: int, now: float) -> tuple[int, int]:
        """Goldmane's time arguments as absolute bucket starts: for `gte`, 0 is the oldest
        bucket, above 0 a Unix time, below 0 seconds before now (the bucket holding that
        time is included); for `lt`, 0 is now (the bucket filling now included)."""
        low = self.oldest_start if gte == 0 else self._start_of(gte if gte > 0 else now + gte)
        high = int(now) + 1 if lt == 0 else int(lt if lt > 0 else now + lt)
        return low, high

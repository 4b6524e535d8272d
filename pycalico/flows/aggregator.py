"""What the aggregator holds and answers, shared by its collector and API threads: the
window, the senders' sequence numbers, the streams' subscriptions, its counters.

No sockets here: the collector hands in records, the HTTP API asks questions, a ticker
rolls the window and publishes what changed; each takes the one lock.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pycalico.flows import query, whisker_json
from pycalico.flows.dedup import SequenceDedup
from pycalico.flows.record import Flow, RecordError
from pycalico.flows.window import Outcome, Window, WindowSettings

log = logging.getLogger("pycalico.flows")

# A stream that falls this far behind is ended rather than allowed to hold memory.
SUBSCRIPTION_BACKLOG = 100_000


def _worth_logging(count: int) -> bool:
    """The 1st, 10th, 100th... drop: a full bucket is said, not shouted per flow."""
    return count > 0 and 10 ** (len(str(count)) - 1) == count


@dataclass
class Subscription:
    filter: query.Filter
    since: int  # changes up to this number are in the backlog it started with
    events: queue.Queue[Flow | None] = field(default_factory=queue.Queue)
    overflowed: bool = False


@dataclass
class CollectorCounters:
    taken: int = 0
    duplicates: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class AggregatorStats:
    received: int
    dropped: int
    unique_flows: int
    duplicates: int
    rejected: int
    senders: int


class Aggregator:
    def __init__(self, settings: WindowSettings, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._window = Window(clock(), settings)
        self._dedup = SequenceDedup()
        self._subscriptions: list[Subscription] = []
        self.collector = CollectorCounters()

    @property
    def settings(self) -> WindowSettings:
        return self._window.settings

    # --- the collector side ---

    def highest(self, sender: str) -> int:
        with self._lock:
            return self._dedup.highest(sender)

    def receive(self, sender: str, seq: int, data: Any) -> bool:
        """Take record `seq` of `sender` unless it was taken before; False when the record
        is no flow (it counts as taken, so that a resend is not read again)."""
        try:
            flow = Flow.from_json(data)
        except RecordError as exc:
            flow, problem = None, str(exc)
        with self._lock:
            if not self._dedup.take(sender, seq):
                self.collector.duplicates += 1
                return True
            if flow is None:
                self.collector.rejected += 1
                log.warning("refused record %d from %s: %s", seq, sender, problem)
                return False
            self.collector.taken += 1
            self._window.roll(self._clock())
            outcome = self._window.add(flow)
        if outcome == Outcome.BUCKET_FULL and _worth_logging(self._window.counters.dropped_full):
            log.warning(
                "dropped a flow: its bucket holds %d flows already (%d dropped so far)",
                self.settings.max_flows_per_bucket,
                self._window.counters.dropped_full,
            )
        elif outcome in (Outcome.TOO_OLD, Outcome.TOO_NEW):
            log.warning("dropped a flow starting at %d: %s for the window", flow.start_time,
                        outcome.value)  # fmt: skip
        return True

    # --- the API side ---

    def list(self, q: query.ListQuery) -> tuple[list[dict[str, Any]], int]:
        with self._lock:
            now = self._clock()
            self._window.roll(now)
            low, high = self._window.bounds(q.start_time_gte, q.start_time_lt, now)
            flows = [f for f in self._window.flows(low, high) if q.filter.matches(f)]
        items, pages = query.page_of(query.sort_flows(flows, q.sort_by), q.page, q.page_size)
        return [whisker_json.flow_json(f) for f in items], pages

    def hints(self, q: query.HintsQuery) -> tuple[list[dict[str, Any]], int]:
        with self._lock:
            now = self._clock()
            self._window.roll(now)
            low, high = self._window.bounds(q.start_time_gte, q.start_time_lt, now)
            flows = [f for f in self._window.flows(low, high) if q.filter.matches(f)]
        values, pages = query.page_of(query.hints(flows, q.type), q.page, q.page_size)
        return [{"value": v} for v in values], pages

    def subscribe(self, q: query.ListQuery) -> tuple[Subscription, list[Flow]]:
        """A stream: the bucket aggregates already held from the query's start time, oldest
        first, and a subscription for every aggregate that changes from now on."""
        with self._lock:
            sub = Subscription(q.filter, self._window.change_count)
            now = self._clock()
            low, high = self._window.bounds(q.start_time_gte, 0, now)
            backlog = [f for f in self._window.bucket_flows(low, high) if q.filter.matches(f)]
            self._subscriptions.append(sub)
        return sub, backlog

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscriptions:
                self._subscriptions.remove(sub)

    def tick(self) -> int:
        """Roll the window and send every stream the aggregates that changed; the number
        of changed aggregates."""
        with self._lock:
            self._window.roll(self._clock())
            changed = self._window.drain_changes()
            subscriptions = list(self._subscriptions)
        for sub in subscriptions:
            for number, flow in changed:
                if number > sub.since and sub.filter.matches(flow):
                    sub.events.put(flow)
            if sub.events.qsize() > SUBSCRIPTION_BACKLOG and not sub.overflowed:
                sub.overflowed = True
                sub.events.put(None)  # the stream ends; its client reconnects
        return len(changed)

    def close_streams(self) -> None:
        with self._lock:
            subscriptions, self._subscriptions = self._subscriptions, []
        for sub in subscriptions:
            sub.events.put(None)

    def stats(self) -> AggregatorStats:
        """What the counters say now (the metrics endpoint reads them per scrape)."""
        with self._lock:
            counters = self._window.counters
            return AggregatorStats(
                received=counters.received,
                dropped=counters.dropped,
                unique_flows=self._window.unique_flows(),
                duplicates=self.collector.duplicates,
                rejected=self.collector.rejected,
                senders=self._dedup.senders(),
            )

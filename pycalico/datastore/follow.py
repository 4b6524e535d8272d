"""Follow the datastore: apply everything, then re-apply after every change.

Felix and confd both work this way. The loop keeps a Mirror of the datastore, loaded once
and then kept current from the watch, and hands it to `apply`; apply works out its whole
desired state from it and writes only differences, so there is no event-by-event state to
get wrong, and reading from memory keeps a small change cheap. Events already delivered
when one arrives go into the same apply, so a burst of writes (a pod's IPAM and endpoint)
costs one apply without waiting for a quiet period. A full reload (and apply) also runs
every `resync_seconds()` (asked on every turn, so a changed setting takes effect at
once; inf for never), to repair anything changed behind the component's back, and after a watch is
lost (e.g. compacted or the datastore was away).

Between changes the loop sleeps: `idle` runs when it said it would next be due, or at once
when another thread rings the `Wakeup` (Felix's link events, for one). A timed tick on
every node was most of an idle cluster's CPU (bench/scale.py).
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from pycalico.datastore.backend import Backend, DatastoreError, Event, Watch, WatchCompacted
from pycalico.datastore.mirror import Mirror

log = logging.getLogger("pycalico.datastore")

WATCH_PREFIX = "/calico/"
MAX_EVENTS_PER_APPLY = 1000
RETRY_FIRST_SECONDS = 0.2
RETRY_MAX_SECONDS = 2.0
FULL_SETTLE_EVERY = 10  # loads: the first, then one resync in ten (15 min by default)
T = TypeVar("T")


def _retrying(step: Callable[[], T], stop: threading.Event) -> T | None:
    """`step()`, retried with backoff while the datastore is unreachable; None on `stop`."""
    delay = RETRY_FIRST_SECONDS
    while not stop.is_set():
        try:
            return step()
        except DatastoreError as exc:
            log.warning("datastore unavailable (retrying in %.1fs): %s", delay, exc)
            stop.wait(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
    return None


def _settle_heap(full: bool) -> None:
    """Collect once, then keep what survived out of the collector's way.

    After a full load the heap is mostly long-lived (the mirror and what apply built from
    it); a full collection walking all of it stalled a Felix label change by up to ~45 ms at
    1000 endpoints. `full` first unfreezes what an earlier load froze, so that what has
    since become cyclic garbage is reclaimed too; otherwise only what is new since is
    collected. A full one on every resync was most of an idle node's CPU (bench/scale.py:
    ~20 ms a time for each of Felix and confd); a reload keeps what is still current, so
    there is little new to collect.
    """
    if full:
        gc.unfreeze()
    gc.collect()
    gc.freeze()


class Wakeup:
    """Rung from any thread: the `follow` loop it was given to runs its `idle` step now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watch: Watch | None = None
        self._rung = False

    def ring(self) -> None:
        with self._lock:
            self._rung = True
            if self._watch is not None:
                self._watch.interrupt()

    def _attach(self, watch: Watch | None) -> None:
        """The watch the loop waits on from now on (a ring between two watches is kept)."""
        with self._lock:
            self._watch = watch
            if watch is not None and self._rung:
                watch.interrupt()

    def _answered(self) -> None:
        with self._lock:
            self._rung = False


def follow(
    backend: Backend,
    apply: Callable[[Mirror], None],
    stop: threading.Event,
    resync_seconds: Callable[[], float],
    idle: Callable[[Mirror], float] = lambda view: math.inf,
    relevant: Callable[[Event, Mirror], bool] = lambda event, before: True,
    wakeup: Wakeup | None = None,
    min_apply_interval: float = 0.0,
) -> None:
    """Run `apply(mirror)` once everything is loaded, then after changes, until `stop`.

    `idle(mirror)` is for work that is due without a datastore change (and liveness): it
    runs when `wakeup` rings, after every apply, after a batch of changes none of which is
    `relevant` to `apply` (such a batch is only taken into the mirror: on a busy cluster
    most writes are other components' business, or change nothing `apply` reads; `relevant`
    sees each event with the mirror as it was before it), and when the seconds it returned
    last time have passed; never while a change waits for its apply, nor in the middle of
    a revision's events (so the mirror's revision is one the dataplane reflects whole).
    A change is applied at once, unless the last apply ended less than `min_apply_interval`
    seconds ago: then at that moment, with whatever else has arrived by then (a pod's IPAM
    and endpoint writes, a node's registration, a bring-up's burst): a lone change waits for
    nothing, a burst costs a few applies a second. While the datastore is away nothing is
    torn down: the last applied state stays and the loop retries until it is back.
    """
    mirror = Mirror(WATCH_PREFIX)
    wakeup = wakeup or Wakeup()

    def ring_on_stop() -> None:  # the loop sleeps with no timeout: `stop` must wake it
        stop.wait()
        wakeup.ring()

    threading.Thread(target=ring_on_stop, name="follow-stop", daemon=True).start()

    def restart() -> Watch | None:
        revision = _retrying(lambda: mirror.load(backend), stop)
        if revision is None:
            return None
        watch = _retrying(lambda: backend.watch(WATCH_PREFIX, revision), stop)
        wakeup._attach(watch)
        if watch is not None:
            _apply(mirror)
            _settle_heap(full=mirror.loads % FULL_SETTLE_EVERY == 1)
        return watch

    def _apply(view: Mirror) -> None:
        try:
            apply(view)
        except DatastoreError as exc:  # apply's own writes; the next change or resync retries
            log.warning("apply failed: %s", exc)

    def _idle() -> float:
        wakeup._answered()
        return time.monotonic() + idle(mirror)

    watch = restart()
    last_resync = applied_at = time.monotonic()
    idle_at = _idle()
    apply_at = math.inf  # a relevant change waits for its apply until then
    try:
        while watch is not None and not stop.is_set():
            try:
                next_resync = last_resync + resync_seconds()
                if time.monotonic() >= next_resync:
                    watch.close()
                    watch = restart()
                    # The reload's apply may have left work due (strays, deferred routes).
                    last_resync = applied_at = idle_at = time.monotonic()
                    apply_at = math.inf
                    continue
                if time.monotonic() >= apply_at:
                    _apply(mirror)
                    applied_at, apply_at = time.monotonic(), math.inf
                    # What the apply left due (a route waiting for its device) is known
                    # only to `idle`: ask it on the next turn.
                    idle_at = applied_at
                    continue
                # While a change waits for its apply, `idle` waits too (it runs right
                # after): it would otherwise be told of a revision as current that the
                # dataplane does not reflect yet.
                wake_at = min(next_resync, idle_at if math.isinf(apply_at) else apply_at)
                timeout = None if math.isinf(wake_at) else max(0.0, wake_at - time.monotonic())
                event = watch.next(timeout=timeout)
                if event is None:
                    if math.isinf(apply_at):
                        idle_at = _idle()
                    continue
                changed = caught_up = False
                for _ in range(MAX_EVENTS_PER_APPLY):
                    changed = changed or relevant(event, mirror)
                    mirror.apply(event)
                    event = watch.next(timeout=0)
                    if event is None:
                        caught_up = True  # a watch hands out a revision's events whole
                        break
                else:  # a steady stream: apply now, take the rest next
                    changed = changed or relevant(event, mirror)
                    mirror.apply(event)
                if changed:
                    apply_at = min(apply_at, applied_at + min_apply_interval)
                elif caught_up and math.isinf(apply_at):
                    idle_at = _idle()
            except (WatchCompacted, DatastoreError) as exc:
                log.info("watch restarted: %s", exc)
                watch.close()
                watch = restart()
                applied_at = idle_at = time.monotonic()
                apply_at = math.inf
    finally:
        wakeup._attach(None)
        if watch is not None:
            watch.close()

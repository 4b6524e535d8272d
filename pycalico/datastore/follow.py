"""Follow the datastore: apply everything, then re-apply after every burst of changes.

Felix and confd both work this way: each apply reads a fresh snapshot and writes only
differences, so re-applying is cheap and there is no event-by-event state to get wrong. A
full re-apply also runs every `resync_seconds` to repair anything changed behind the
component's back, and after a watch is lost (e.g. compacted or the datastore was away).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from pycalico.datastore.backend import Backend, DatastoreError, Watch, WatchCompacted

log = logging.getLogger("pycalico.datastore")

WATCH_PREFIX = "/calico/"
DEBOUNCE_SECONDS = 0.01
IDLE_TICK_SECONDS = 0.5
RETRY_FIRST_SECONDS = 0.2
RETRY_MAX_SECONDS = 2.0
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


def follow(
    backend: Backend,
    apply: Callable[[], int],
    stop: threading.Event,
    resync_seconds: float,
    idle: Callable[[], None] = lambda: None,
) -> None:
    """Run `apply` (it returns the revision it read at), then after changes, until `stop`.

    `idle` runs on every quiet tick (at least every half second), for liveness and for
    work that is due without a datastore change. While the datastore is away nothing is
    torn down: the last applied state stays and the loop retries until it is back.
    """

    def restart() -> Watch | None:
        revision = _retrying(apply, stop)
        if revision is None:
            return None
        return _retrying(lambda: backend.watch(WATCH_PREFIX, revision), stop)

    watch = restart()
    next_resync = time.monotonic() + resync_seconds
    try:
        while watch is not None and not stop.is_set():
            timeout = max(0.0, min(IDLE_TICK_SECONDS, next_resync - time.monotonic()))
            try:
                event = watch.next(timeout=timeout)
                due = time.monotonic() >= next_resync
                if event is None and not due:
                    idle()
                    continue
                if event is not None:
                    # Let a burst of writes (a pod's IPAM + endpoint) settle into one apply.
                    while watch.next(timeout=DEBOUNCE_SECONDS) is not None:
                        pass
                apply()
            except (WatchCompacted, DatastoreError) as exc:
                log.info("watch restarted: %s", exc)
                watch.close()
                watch = restart()
            if time.monotonic() >= next_resync:
                next_resync = time.monotonic() + resync_seconds
    finally:
        if watch is not None:
            watch.close()

"""Felix's main loop: read everything, apply, then follow the datastore's changes.

Every batch of changes (a short quiet period after the first event) triggers a fresh
snapshot and apply; the dataplane side only writes differences, so this stays cheap. A
full resync also runs every `routeRefreshInterval` to repair anything changed behind
Felix's back. Failures are logged and retried on the next change or resync.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from pycalico.datastore.backend import Backend, DatastoreError, WatchCompacted
from pycalico.felix import snapshot
from pycalico.felix.driver import Driver

log = logging.getLogger("pycalico.felix")

WATCH_PREFIX = "/calico/"
DEBOUNCE_SECONDS = 0.05
DEFAULT_RESYNC_SECONDS = 90.0

# Told after every loop turn: whether an apply ran and succeeded (None: no apply), its time.
Observer = Callable[[bool | None, float], None]


def _apply(backend: Backend, driver: Driver, before: Callable[[], None], observe: Observer) -> int:
    """Snapshot and apply; the snapshot's revision (to watch from) either way."""
    started = time.monotonic()
    try:
        before()
    except Exception as exc:
        log.warning("pre-apply step failed (will retry): %s", exc)
    snap = snapshot.read(backend, driver.node)
    try:
        driver.apply(snap)
    except Exception as exc:
        log.warning("dataplane apply failed (will retry): %s", exc)
        observe(False, time.monotonic() - started)
        return snap.revision
    elapsed = time.monotonic() - started
    log.debug("applied revision %d in %.1f ms", snap.revision, elapsed * 1000)
    observe(True, elapsed)
    return snap.revision


def run(
    backend: Backend,
    driver: Driver,
    stop: threading.Event,
    resync_seconds: float = DEFAULT_RESYNC_SECONDS,
    before_apply: Callable[[], None] = lambda: None,
    observe: Observer = lambda ok, seconds: None,
) -> None:
    """Apply, then follow changes until `stop` is set.

    `before_apply` runs ahead of every apply (calico-node keeps tunnel addresses current
    there); `observe` hears about every loop turn (health and metrics).
    """

    def apply_now() -> int:
        return _apply(backend, driver, before_apply, observe)

    revision = apply_now()
    next_resync = time.monotonic() + resync_seconds
    watch = backend.watch(WATCH_PREFIX, revision)
    try:
        while not stop.is_set():
            timeout = max(0.0, min(0.5, next_resync - time.monotonic()))
            try:
                event = watch.next(timeout=timeout)
            except (WatchCompacted, DatastoreError) as exc:
                log.info("watch restarted: %s", exc)
                watch.close()
                revision = apply_now()
                watch = backend.watch(WATCH_PREFIX, revision)
                continue
            due = time.monotonic() >= next_resync
            if event is None and not due:
                observe(None, 0.0)
                continue
            if event is not None:
                # Let a burst of writes (a pod's IPAM + endpoint) settle into one apply.
                while watch.next(timeout=DEBOUNCE_SECONDS) is not None:
                    pass
            apply_now()
            if due:
                next_resync = time.monotonic() + resync_seconds
    finally:
        watch.close()

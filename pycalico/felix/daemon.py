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

from pycalico.datastore.backend import Backend, DatastoreError, WatchCompacted
from pycalico.felix import snapshot
from pycalico.felix.driver import Driver

log = logging.getLogger("pycalico.felix")

WATCH_PREFIX = "/calico/"
DEBOUNCE_SECONDS = 0.05
DEFAULT_RESYNC_SECONDS = 90.0


def _apply(backend: Backend, driver: Driver) -> int:
    """Snapshot and apply; the snapshot's revision (to watch from) either way."""
    snap = snapshot.read(backend, driver.node)
    started = time.monotonic()
    try:
        driver.apply(snap)
        log.debug(
            "applied revision %d in %.1f ms", snap.revision, (time.monotonic() - started) * 1000
        )
    except Exception as exc:
        log.warning("dataplane apply failed (will retry): %s", exc)
    return snap.revision


def run(
    backend: Backend,
    driver: Driver,
    stop: threading.Event,
    resync_seconds: float = DEFAULT_RESYNC_SECONDS,
) -> None:
    revision = _apply(backend, driver)
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
                revision = _apply(backend, driver)
                watch = backend.watch(WATCH_PREFIX, revision)
                continue
            due = time.monotonic() >= next_resync
            if event is None and not due:
                continue
            if event is not None:
                # Let a burst of writes (a pod's IPAM + endpoint) settle into one apply.
                while watch.next(timeout=DEBOUNCE_SECONDS) is not None:
                    pass
            _apply(backend, driver)
            if due:
                next_resync = time.monotonic() + resync_seconds
    finally:
        watch.close()

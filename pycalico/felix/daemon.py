"""Felix's main loop: a snapshot of the datastore mirror applied after every change.

The dataplane side only writes differences, so this stays cheap; a full resync runs every
`routeRefreshInterval`. Between changes, what the kernel alone changed (a link flap that
took routes with it, a stray route out of its grace period) gets an apply within half a
second. Failures are logged and retried on the next change or resync.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from pycalico.datastore.backend import Backend
from pycalico.datastore.follow import follow
from pycalico.datastore.mirror import Mirror
from pycalico.felix import snapshot
from pycalico.felix.driver import Driver

log = logging.getLogger("pycalico.felix")

DEFAULT_RESYNC_SECONDS = 90.0

# Told after every loop turn: whether an apply ran and succeeded (None: no apply), its time.
Observer = Callable[[bool | None, float], None]


def _apply(view: Mirror, driver: Driver, before: Callable[[], None], observe: Observer) -> None:
    started = time.monotonic()
    try:
        before()
    except Exception as exc:
        log.warning("pre-apply step failed (will retry): %s", exc)
    snap = snapshot.read(view, driver.node, driver.policy_reader)
    try:
        driver.apply(snap)
    except Exception as exc:
        log.warning("dataplane apply failed (will retry): %s", exc)
        observe(False, time.monotonic() - started)
        return
    elapsed = time.monotonic() - started
    log.debug("applied revision %d in %.1f ms", snap.revision, elapsed * 1000)
    observe(True, elapsed)


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
    there); `observe` hears about every loop turn (health and metrics). Between changes
    the driver is asked whether the kernel needs an apply anyway (a link flap, a route out
    of its grace period).
    """

    def idle(view: Mirror) -> None:
        if driver.due():
            _apply(view, driver, before_apply, observe)
        else:
            observe(None, 0.0)

    follow(
        backend,
        lambda view: _apply(view, driver, before_apply, observe),
        stop,
        resync_seconds,
        idle=idle,
    )

"""calico-goldmane as calico-node's child: started when configured (aggregator_config.py),
started again whenever it dies, stopped when calico-node stops.

It shares calico-node's network namespace, stdout and stderr (its log is calico-node's).
The kernel ends it if calico-node dies without stopping it (PR_SET_PDEATHSIG, tied to the
supervising thread, which outlives every child it starts), so a calico-node restarted
after a kill -9 finds the aggregator's ports free.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from pycalico.node.aggregator_config import AggregatorConfig

log = logging.getLogger("pycalico.node")

PR_SET_PDEATHSIG = 1
FIRST_RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 10.0
# A child that ran this long was healthy: the next restart is quick again.
STEADY_SECONDS = 30.0
STOP_SECONDS = 5.0
_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warning"}


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class AggregatorChild:
    def __init__(self, config: AggregatorConfig, stop: threading.Event) -> None:
        self.config = config
        self._stop = stop
        self._thread = threading.Thread(target=self._supervise, name="goldmane", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        """Wait until the child is stopped (after `stop` is set)."""
        self._thread.join()

    def _command(self) -> list[str]:
        level = _LEVELS.get(logging.getLevelName(logging.getLogger().getEffectiveLevel()), "error")
        binary = os.path.join(os.path.dirname(sys.executable), "calico-goldmane")
        return [binary, *self.config.args(), "--log-level", level]

    def _supervise(self) -> None:
        delay = FIRST_RESTART_DELAY
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                # A session of its own: a terminal's ^C is calico-node's to pass on.
                proc = subprocess.Popen(
                    self._command(),
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                log.error("cannot start calico-goldmane: %s", exc)
            else:
                log.info(
                    "calico-goldmane started (pid %d): collector %s, API %s",
                    proc.pid, self.config.collector, self.config.api,
                )  # fmt: skip
                while proc.poll() is None and not self._stop.wait(0.2):
                    pass
                if self._stop.is_set():
                    self._end(proc)
                    return
                if time.monotonic() - started >= STEADY_SECONDS:
                    delay = FIRST_RESTART_DELAY
                log.warning(
                    "calico-goldmane (pid %d) exited with status %s; starting it again in %.0fs",
                    proc.pid, proc.returncode, delay,
                )  # fmt: skip
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, MAX_RESTART_DELAY)

    def _end(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("calico-goldmane (pid %d) did not stop in %.0fs; killing it", proc.pid,
                        STOP_SECONDS)  # fmt: skip
            proc.kill()
            proc.wait()
        log.info("calico-goldmane (pid %d) stopped", proc.pid)

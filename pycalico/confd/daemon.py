"""confd: keep BIRD's config equal to what the datastore says, and BIRD running.

After every burst of datastore changes the config is rendered again; only when the text
differs is it written, checked by BIRD itself (`bird -p -c`) and loaded (`birdc
configure`). A config BIRD refuses is never installed: the last good one keeps running
and the error is reported (logged, and in `status.bird_error` for health).

A BIRD that dies is started again at once: a thread waits on its pidfd (it may be adopted
from an earlier calico-node, so not a child to wait for) and wakes the loop, which sleeps
otherwise.
"""

from __future__ import annotations

import logging
import math
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pycalico.api.registry import resolve
from pycalico.confd import bird_config, config_changes, inputs
from pycalico.confd.bird_process import BirdError, BirdProcess
from pycalico.datastore.backend import Backend
from pycalico.datastore.follow import Wakeup, follow
from pycalico.datastore.resources import ResourceClient, kind_prefix
from pycalico.ipam import keys

log = logging.getLogger("pycalico.confd")

DEFAULT_RESYNC_SECONDS = 90.0
WATCHDOG_RETRY_SECONDS = 1.0  # while no thread can wait for BIRD's exit


# What bird.cfg is made of; a datastore change outside these leaves it as it is.
INPUT_KINDS = ("Node", "BGPConfiguration", "BGPPeer", "IPPool")


def input_prefixes(node: str) -> tuple[str, ...]:
    """The datastore keys `render` reads for `node`: its kinds and the node's own IPAM
    block affinities (another node's new block is that node's BIRD's to announce)."""
    kinds = (kind_prefix(resolve(kind)) for kind in INPUT_KINDS)
    return (*kinds, keys.host_affinities_prefix(node))


def render(backend: Backend, node: str, router_id_setting: str = "") -> str | None:
    """This node's bird.cfg (None while its Node has no record yet)."""
    client = ResourceClient(backend)
    found = {kind: client.list(resolve(kind))[0] for kind in INPUT_KINDS}
    affinities, _ = backend.list(keys.host_affinities_prefix(node))
    wanted = inputs.bird_inputs(
        node,
        found["Node"],
        found["BGPConfiguration"],
        found["BGPPeer"],
        found["IPPool"],
        ((kv.key, kv.value) for kv in affinities),
        router_id_setting,
    )
    return bird_config.render(wanted) if wanted else None


@dataclass
class Confd:
    backend: Backend
    node: str
    bird: BirdProcess
    router_id_setting: str = ""
    on_state: Callable[[bool, str], None] = lambda ready, error: None
    _installed: str = field(default="", init=False)
    _wakeup: Wakeup = field(default_factory=Wakeup, init=False)
    _watched: int | None = field(default=None, init=False)  # the BIRD pid a thread waits on

    def _install(self, text: str) -> None:
        """Write, validate and load `text`; the last good config stays if BIRD refuses it."""
        path = self.bird.config
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        candidate = f"{path}.new"
        with open(candidate, "w", encoding="utf-8") as f:
            f.write(text)
        problem = BirdProcess.validate(candidate)
        if problem:
            os.unlink(candidate)
            raise BirdError(
                f"BIRD refuses the rendered config, keeping the last good one: {problem}"
            )
        os.replace(candidate, path)
        started = time.monotonic()
        if not self.bird.ensure_running(recovering=True):
            self.bird.reload()
        what = config_changes.summary(self._installed, text)
        self._installed = text
        log.info("BIRD config updated in %.1f ms: %s", (time.monotonic() - started) * 1000, what)

    def _report(self, error: str) -> None:
        self.on_state(self.bird.pid() is not None and bool(self._installed), error)

    def apply(self, view: Backend) -> None:
        """Render from `view` (the datastore or a mirror of it) and install."""
        try:
            text = render(view, self.node, self.router_id_setting)
        except (ValueError, KeyError) as exc:  # a stored record confd cannot use
            log.error("%s", exc)
            self._report(str(exc))
            return
        try:
            if text is not None and text != self._installed:
                self._install(text)
            elif self._installed:
                self.bird.ensure_running(recovering=True)
        except (BirdError, OSError) as exc:
            log.error("%s", exc)
            self._report(str(exc))
            return
        self._report("")

    def watchdog(self) -> float:
        """Between changes: a BIRD that died is started again on the last good config.
        Seconds until the next look: none needed while a thread waits for BIRD's exit."""
        if self._installed and self.bird.pid() is None:
            log.warning("BIRD is not running; starting it again")
            try:
                self.bird.ensure_running(recovering=True)
            except BirdError as exc:
                log.error("%s", exc)
            self._report("")
        if not self._installed or self._await_exit():
            return math.inf  # nothing to watch yet (an apply comes first), or a thread waits
        return WATCHDOG_RETRY_SECONDS

    def _await_exit(self) -> bool:
        """Whether a thread waits for the running BIRD's exit (one is started if not)."""
        pid = self.bird.pid()
        if pid is None:
            return False
        if pid == self._watched:
            return True
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # gone already, or no pidfds here: the watchdog looks on a timer
            return False
        self._watched = pid
        threading.Thread(
            target=self._exited, args=(pid, fd), name="bird-exit", daemon=True
        ).start()
        return True

    def _exited(self, pid: int, fd: int) -> None:
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.poll()
        finally:
            os.close(fd)
            if self._watched == pid:  # a BIRD started meanwhile has a waiter of its own
                self._watched = None
            self._wakeup.ring()

    def run(self, stop: threading.Event, resync_seconds: float = DEFAULT_RESYNC_SECONDS) -> None:
        prefixes = input_prefixes(self.node)
        follow(
            self.backend,
            self.apply,
            stop,
            lambda: resync_seconds,
            idle=lambda _: self.watchdog(),
            relevant=lambda event, _: event.key.startswith(prefixes),
            wakeup=self._wakeup,
        )

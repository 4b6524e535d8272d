"""The one interface of Felix's dataplane managers.

Each manager owns one kind of kernel (or host) state and makes it match its part of
`Desired`. The driver applies them in order on every apply; a manager whose part did not
change since it last applied it does nothing, unless it was reset or says it is due.
"""

from __future__ import annotations

import math
from typing import Any

from pycalico.felix.calc.desired import Desired, Routing


class Manager:
    def apply(self, desired: Desired) -> None:
        """Make the kernel hold this manager's part of `desired`."""
        raise NotImplementedError

    def due(self) -> bool:
        """Whether applying again would change something though nothing desired changed."""
        return False

    def due_in(self) -> float:
        """Seconds until `due()` may next hold without any datastore or link change (inf:
        never): Felix sleeps until then."""
        return math.inf

    def reset(self) -> None:
        """Forget what was applied: the next apply checks the kernel against it all again
        (after a full reload of the datastore, or a link change that took state with it)."""

    def close(self) -> None:
        """Release what the manager holds open."""


class DeviceManager(Manager):
    """A tunnel device: set up from its part of the routing (`spec`), again only when that
    part changed (or after a reset): most routing changes (another node's block) leave it,
    and looking the device up on each was a per-change cost growing with the cluster."""

    _UNSET = object()

    def __init__(self, ipr: Any) -> None:
        self.ipr = ipr  # a pyroute2 IPRoute in the node's namespace
        self._applied: object = self._UNSET

    def apply(self, desired: Desired) -> None:
        spec = self.spec(desired.routing)
        if spec == self._applied:
            return
        self._applied = self._UNSET
        self.settle(desired.routing)
        self._applied = spec

    def spec(self, routing: Routing) -> object:
        """The part of `routing` this device is made from."""
        raise NotImplementedError

    def settle(self, routing: Routing) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        self._applied = self._UNSET

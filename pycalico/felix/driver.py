"""Felix's dataplane driver: compute `Desired` from a snapshot, then apply each manager.

Order matters for traffic already flowing: forwarding and devices first (so routes have
somewhere to point), then routes, neighbours and FDB by diff, then the `inet calico` table
(policy and NAT in one transaction), then conntrack flows of addresses gone, then the files
others wait on.

The device and route managers work only when their part of `Desired` changed, after a full
reload of the datastore (every resync, or a lost watch), when a link they hang on changed
(the kernel announces it; a link going down takes its routes with it and leaves no other
trace), or when a route is due (a stray out of its grace period, a wanted one waiting for
its device); a change that concerns only policy (a label, a policy) skips them. The host's
links are read only after the kernel announced a change of them, and a change of this
node's routes is made route by route: the kernel's routing table is read back (and
reconciled) only after a reset. A full reload also rewrites the whole nftables table,
repairing anything changed behind Felix's back.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from pycalico.felix.calc import desired as calc
from pycalico.felix.calc.routes import IPIP_DEVICE, VXLAN_DEVICE
from pycalico.felix.calc.settings import Settings
from pycalico.felix.calc.snapshot import Snapshot
from pycalico.felix.dataplane import host_links
from pycalico.felix.dataplane.conntrack import ConntrackManager
from pycalico.felix.dataplane.forwarding import ForwardingManager
from pycalico.felix.dataplane.ipip import IpipManager
from pycalico.felix.dataplane.link_events import Changes, LinkEvents
from pycalico.felix.dataplane.manager import Manager
from pycalico.felix.dataplane.nftables import NftablesManager
from pycalico.felix.dataplane.routes import RouteManager
from pycalico.felix.dataplane.status_files import (
    EndpointStatusManager,
    MtuFileManager,
    RevisionFileManager,
)
from pycalico.felix.dataplane.vxlan import VxlanManager

log = logging.getLogger("pycalico.felix")


class Driver:
    def __init__(
        self,
        node: str,
        ipr: Any,  # pyroute2 IPRoute in the node's namespace
        mtu_file: str = "/var/lib/calico/mtu",
        bird_blackholes: bool = False,
        endpoint_status_dir: str = "",
        revision_file: str = "",
    ) -> None:
        """`bird_blackholes`: with the BIRD backend, BIRD installs the blackholes of blocks
        outside VXLAN pools. `endpoint_status_dir`, `revision_file`: "" for none."""
        self.node = node
        # Called from another thread when the kernel announces a link or address change
        # (Felix sets it to wake its loop, which then asks `due()`).
        self.on_link_change: Callable[[], None] = lambda: None
        self.ipr = ipr
        self.calculator = calc.Calculator(node, bird_blackholes)
        self.routes = RouteManager(ipr)
        self.nftables = NftablesManager()
        # Those that hang on links: a change of the underlay or a tunnel device resets them.
        self._linked: list[Manager] = [
            ForwardingManager(),
            VxlanManager(ipr),
            IpipManager(ipr),
            self.routes,
        ]
        self._revision_file = RevisionFileManager(revision_file) if revision_file else None
        self.managers: list[Manager] = [
            *self._linked,
            self.nftables,
            ConntrackManager(),
            *([EndpointStatusManager(endpoint_status_dir)] if endpoint_status_dir else []),
            MtuFileManager(mtu_file),
            *([self._revision_file] if self._revision_file else []),
        ]
        self._generation: int | None = None
        self._link_events: LinkEvents | None = None
        self._links_dirty = False  # a link changed: the linked managers start over
        self._routes_dirty = False  # a routed device or an address changed: routes read back
        # A link or address changed: the links are read again (without starting the linked
        # managers over).
        self._host_links_stale = False
        self._underlay = ""
        # The host's links as last read; None: read them on the next apply.
        self._host: calc.HostLinks | None = None
        self._ok = False  # the last apply went through
        # What the last apply was made from, and what it asked for once it went through
        # (Felix's metrics read them).
        self.snapshot: Snapshot | None = None
        self.desired: calc.Desired | None = None
        # What the last calculation could not give that the pools ask for (Routing.warnings).
        self.warnings: tuple[str, ...] = ()
        self.applies = 0
        self.route_count = 0

    def apply(self, snap: Snapshot, settings: Settings) -> None:
        self.snapshot = snap
        if snap.generation != self._generation:
            for manager in self.managers:
                manager.reset()
            self._generation, self._host = snap.generation, None
        if self._links_changed():  # first: changes from now on are heard
            if self._links_dirty:
                for manager in self._linked:
                    manager.reset()
            if self._routes_dirty:
                self.routes.reset()
            self._links_dirty, self._routes_dirty = False, False
            self._host_links_stale, self._host = False, None
        host = self._host
        if host is None or self.routes.due():
            host = host_links.read(self.ipr)
        self._host, self._ok = None, False  # until this apply has gone through
        desired = self.calculator.calculate(snap, settings, host)
        last = self.desired
        if last is None or (last.routing.ipip, last.routing.vxlan) != (
            desired.routing.ipip,
            desired.routing.vxlan,
        ):
            # A tunnel device's address change makes the kernel flush routes through it:
            # the route manager reads the table back after the devices are settled.
            self.routes.reset()
        self._underlay = desired.routing.underlay
        self.warnings = desired.routing.warnings + desired.policy_warnings
        for manager in self.managers:
            manager.apply(desired)
        self._host, self._ok, self.desired = host, True, desired
        self.route_count = len(desired.routing.state.routes)
        self.applies += 1

    def still_current(self, revision: int) -> None:
        """The datastore moved to `revision` with nothing this dataplane is made of: once
        the last apply went through, the dataplane reflects that revision too."""
        if self._ok and self._revision_file is not None:
            self._revision_file.write(revision)

    def due(self) -> bool:
        """Whether the kernel needs an apply though the datastore did not change: a link the
        routes hang on changed (a down took its routes with it), or a manager has work
        waiting (a route's grace period or device). Cheap: reads only what the kernel
        announced.

        A link change is worth a try even after a failed apply: a link coming back up is
        what an apply that failed while it was down waits for. Otherwise a failed apply
        waits for the next datastore change or resync, rather than fail on every idle turn."""
        if self._links_changed():
            return True
        return self._ok and any(manager.due() for manager in self.managers)

    def due_in(self) -> float:
        """Seconds until `due()` may hold with nothing announced (inf: only on a link
        change, which calls `on_link_change`)."""
        if not self._ok:
            return math.inf
        return min((manager.due_in() for manager in self.managers), default=math.inf)

    def _links_changed(self) -> bool:
        """Whether the underlay or a tunnel link changed since the linked managers last
        started over, or any link or address since the links were last read (the links are
        read again only then: every kernel change of them is announced)."""
        if self._link_events is None:  # opened in the namespace of the thread that applies
            self._link_events = LinkEvents(lambda: self.on_link_change())
        try:
            changes = self._link_events.drain()
        except OSError as exc:  # a new socket next time; meanwhile anything may have changed
            log.warning("link events: %s; listening again", exc)
            self._link_events.close()
            self._link_events = None
            changes = Changes(lost=True)
        names = {self._underlay, VXLAN_DEVICE, IPIP_DEVICE} - {""}
        if changes.lost or changes.links & names:
            self._links_dirty = True
        # Routes are patched from what was applied; the kernel flushes those of a device
        # that goes down or loses its address without a word, so such a change makes the
        # route manager read the table back.
        if changes.addresses or (changes.links and changes.links & self._routed_devices()):
            self._routes_dirty = True
        if changes.lost or changes.addresses or changes.links:
            self._host_links_stale = True
        return self._links_dirty or self._routes_dirty or self._host_links_stale

    def _routed_devices(self) -> set[str]:
        return {r.dev for r in self.desired.routing.state.routes} if self.desired else set()

    def close(self) -> None:
        for manager in self.managers:
            manager.close()
        if self._link_events is not None:
            self._link_events.close()

"""Reconciles the kernel's routes, VXLAN neighbours and FDB entries with Felix's calculation.

Only what is pycalico's is touched, as Calico's Felix owns main-table routes: routes with
Felix's protocol (80), routes on `vxlan.calico` and workload routes on `cali*` interfaces,
and permanent neighbour/FDB entries on `vxlan.calico`. Everything is
compared first and only differences are written, so a restarted Felix that finds the
kernel already right changes nothing (established pod traffic never notices).
"""

from __future__ import annotations

import errno
import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import rt_scope, rt_type
from pyroute2.netlink.rtnl.ndmsg import NUD_PERMANENT
from pyroute2.netlink.rtnl.rtmsg import RTNH_F_ONLINK

from pycalico.felix.calc.desired import Desired, Routing
from pycalico.felix.calc.routes import (
    VXLAN_DEVICE,
    FdbEntry,
    Neighbour,
    Route,
    RouteState,
)
from pycalico.felix.dataplane.manager import Manager
from pycalico.netns import MAIN_TABLE, PROTO_FELIX

RTN_UNICAST, RTN_BLACKHOLE = rt_type["unicast"], rt_type["blackhole"]
SCOPE_LINK, SCOPE_UNIVERSE = rt_scope["link"], rt_scope["universe"]
WORKLOAD_PREFIX = "cali"
# A workload route the CNI just added may be seen before its endpoint: leave it this long.
WORKLOAD_ROUTE_GRACE = 10.0
# Only a safety net: a wanted route's device that appears (or comes up) wakes Felix with its
# link event.
DEFERRED_RETRY_SECONDS = 1.0


@dataclass
class ApplyStats:
    added: int = 0
    removed: int = 0


@dataclass
class RouteManager(Manager):
    ipr: Any  # a pyroute2 IPRoute in the node's namespace
    clock: Callable[[], float] = time.monotonic
    # Unexpected workload routes, with when they were first seen (for the grace period).
    _strays: dict[str, float] = field(default_factory=dict)
    # Wanted routes whose device was missing at the last reconcile, with when that was
    # first seen: retried (on the device's link event, or every DEFERRED_RETRY_SECONDS) for
    # a grace period, then left to the periodic resync (a device that long gone is not
    # coming; a pod's veth exists before its endpoint).
    _deferred: dict[str, float] = field(default_factory=dict)
    _applied: Routing | None = field(default=None, init=False)

    def apply(self, desired: Desired) -> None:
        applied, state = self._applied, desired.routing.state
        if applied is not None and not self.due():
            # Most changes leave this node's routes as they were (another node's pod, a
            # block BIRD routes), or change a few of them: reading the whole table back
            # from the kernel on each was a per-change cost growing with the cluster.
            # Only a reset (every resync, a link change) reconciles against the kernel.
            if state == applied.state:
                self._applied = desired.routing
                return
            self._applied = None  # until patched: a failure midway reconciles next time
            if self._patch(applied.state, state):
                self._applied = desired.routing
                return
        self._applied = None
        self.reconcile(state)
        self._applied = desired.routing

    def reset(self) -> None:
        self._applied = None

    def due(self) -> bool:
        """Whether applying again would change something with no datastore change: a stray
        workload route is out of its grace period, or a wanted route's device may be there."""
        now = self.clock()
        return any(now - first >= WORKLOAD_ROUTE_GRACE for first in self._strays.values()) or any(
            now - first < WORKLOAD_ROUTE_GRACE for first in self._deferred.values()
        )

    def due_in(self) -> float:
        """A stray is due when its grace period ends; a wanted route waiting for its device
        is tried again every DEFERRED_RETRY_SECONDS while in its grace period (its veth
        usually comes with the link event that wakes Felix anyway)."""
        now = self.clock()
        waits = [first + WORKLOAD_ROUTE_GRACE - now for first in self._strays.values()]
        if any(now - first < WORKLOAD_ROUTE_GRACE for first in self._deferred.values()):
            waits.append(DEFERRED_RETRY_SECONDS)
        return max(0.0, min(waits, default=math.inf))

    def reconcile(self, desired: RouteState) -> ApplyStats:
        stats = ApplyStats()
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in self.ipr.get_links()}
        indexes = {name: index for index, name in names.items()}
        self._routes(desired.routes, names, indexes, stats)
        vxlan = indexes.get(VXLAN_DEVICE)
        if vxlan is not None:
            self._neighbours(desired.neighbours, vxlan, stats)
            self._fdb(desired.fdb, vxlan, stats)
        return stats

    def _patch(self, old: RouteState, new: RouteState) -> bool:
        """Change only the routes that differ between two applied states; False (nothing
        changed) where that cannot be done: neighbours or FDB entries differ, or a route's
        device is missing (the full reconcile defers it)."""
        if old.neighbours != new.neighbours or old.fdb != new.fdb:
            return False
        gone = {r.dst: r for r in old.routes - new.routes}
        added = new.routes - old.routes
        devices = {r.dev for r in added if r.dev}
        indexes = {}
        for dev in devices:
            found = self.ipr.link_lookup(ifname=dev)
            if not found:
                return False
            indexes[dev] = found[0]
        for route in added:
            gone.pop(route.dst, None)  # replaced, not removed
            self.ipr.route("replace", **self._route_args(route, indexes))
        for route in gone.values():
            try:
                self.ipr.route("del", **self._route_args(route, indexes))
            except NetlinkError as exc:
                if exc.code != errno.ESRCH:
                    raise
        return True

    # --- routes ---------------------------------------------------------------------------

    def _current_routes(self, names: dict[int, str]) -> dict[str, Route]:
        current = {}
        for msg in self.ipr.get_routes(family=socket.AF_INET, table=MAIN_TABLE):
            proto, kind = msg["proto"], msg["type"]
            dev = names.get(msg.get_attr("RTA_OIF"), "")
            # Felix's protocol, or a device of its own (Calico's main-table ownership).
            ours = (
                proto == PROTO_FELIX
                or dev == VXLAN_DEVICE
                or (kind == RTN_UNICAST and dev.startswith(WORKLOAD_PREFIX))
            )
            if not ours:
                continue
            dst = f"{msg.get_attr('RTA_DST') or '0.0.0.0'}/{msg['dst_len']}"
            current[dst] = Route(
                dst,
                kind="blackhole" if kind == RTN_BLACKHOLE else "unicast",
                dev=dev if kind == RTN_UNICAST else "",
                via=msg.get_attr("RTA_GATEWAY") or "",
                onlink=bool(msg["flags"] & RTNH_F_ONLINK),
                proto=proto,
                scope="link" if msg["scope"] == SCOPE_LINK else "universe",
            )
        return current

    def _routes(
        self, desired: set[Route], names: dict[int, str], indexes: dict[str, int], stats: ApplyStats
    ) -> None:
        current = self._current_routes(names)
        wanted = {r.dst: r for r in desired}
        now = self.clock()
        # A stray gone from the kernel (its pod deleted, a CNI rollback) is forgotten: it
        # would otherwise stay due for ever, and Felix apply without end.
        self._strays = {dst: first for dst, first in self._strays.items() if dst in current}
        for dst, route in current.items():
            if dst in wanted:
                continue
            if route.dev.startswith(WORKLOAD_PREFIX) and route.proto != PROTO_FELIX:
                first_seen = self._strays.setdefault(dst, now)
                if now - first_seen < WORKLOAD_ROUTE_GRACE:
                    continue
            self._strays.pop(dst, None)
            self.ipr.route("del", **self._route_args(route, indexes))
            stats.removed += 1
        deferred, self._deferred = self._deferred, {}
        for dst, route in wanted.items():
            self._strays.pop(dst, None)
            if current.get(dst) == route:
                continue
            if route.dev and route.dev not in indexes:
                self._deferred[dst] = deferred.get(dst, now)  # no device (yet): retried
                continue
            self.ipr.route("replace", **self._route_args(route, indexes))
            stats.added += 1

    @staticmethod
    def _route_args(route: Route, indexes: dict[str, int]) -> dict[str, Any]:
        args: dict[str, Any] = {"dst": route.dst, "table": MAIN_TABLE, "proto": route.proto}
        if route.kind == "blackhole":
            args["type"] = "blackhole"
            return args
        args["oif"] = indexes.get(route.dev, 0)
        args["scope"] = SCOPE_LINK if route.scope == "link" else SCOPE_UNIVERSE
        if route.via:
            args["gateway"] = route.via
        if route.onlink:
            args["flags"] = RTNH_F_ONLINK
        return args

    # --- VXLAN neighbours and FDB ---------------------------------------------------------

    def _neighbours(self, desired: set[Neighbour], index: int, stats: ApplyStats) -> None:
        current = {
            Neighbour(msg.get_attr("NDA_DST"), str(msg.get_attr("NDA_LLADDR")).lower())
            for msg in self.ipr.get_neighbours(family=socket.AF_INET, ifindex=index)
            if msg["state"] & NUD_PERMANENT
        }
        for entry in current - desired:
            self.ipr.neigh("del", dst=entry.ip, lladdr=entry.mac, ifindex=index)
            stats.removed += 1
        for entry in desired - current:
            self.ipr.neigh(
                "replace", dst=entry.ip, lladdr=entry.mac, ifindex=index, state=NUD_PERMANENT
            )
            stats.added += 1

    def _fdb(self, desired: set[FdbEntry], index: int, stats: ApplyStats) -> None:
        current = set()
        for msg in self.ipr.fdb("dump", ifindex=index):
            dst = msg.get_attr("NDA_DST")
            if msg["ifindex"] == index and dst:
                current.add(FdbEntry(str(msg.get_attr("NDA_LLADDR")).lower(), dst))
        for entry in current - desired:
            self.ipr.fdb("del", ifindex=index, lladdr=entry.mac, dst=entry.dst)
            stats.removed += 1
        for entry in desired - current:
            self.ipr.fdb(
                "append", ifindex=index, lladdr=entry.mac, dst=entry.dst, state=NUD_PERMANENT
            )
            stats.added += 1

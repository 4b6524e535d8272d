"""Felix's main loop: a snapshot of the datastore mirror applied after every change.

The dataplane side only writes differences, so this stays cheap; a full resync runs every
`routeRefreshInterval`. Between changes the loop sleeps: what the kernel alone changed (a
link flap that took routes with it) wakes it through the link events, and a stray route
out of its grace period gets an apply when that period ends. Failures are logged and
retried on the next change or resync.

Settings are resolved on the apply after a FelixConfiguration changes (env `FELIX_*`, then
FelixConfiguration `node.<name>`, then `default`), so a change takes effect without a restart: the
resync interval from the next resync on, the log level at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from pycalico.datastore.backend import Backend
from pycalico.datastore.follow import Wakeup, follow
from pycalico.datastore.mirror import Mirror
from pycalico.felix import apply_summary
from pycalico.felix.calc import settings as felix_settings
from pycalico.felix.calc import snapshot
from pycalico.felix.calc.snapshot import Snapshot, SnapshotReader
from pycalico.felix.collector import flow_view
from pycalico.felix.collector.collector import FlowCollector, FlowDirs
from pycalico.felix.collector.flow_view import FlowView
from pycalico.felix.collector.nflog_reader import NflogError
from pycalico.felix.driver import Driver
from pycalico.policy.pending import PendingEvaluator

log = logging.getLogger("pycalico.felix")

# Calico's severities by Python's levels (Trace is Debug here: there is nothing below it).
LOG_LEVELS = {
    "Trace": logging.DEBUG,
    "Debug": logging.DEBUG,
    "Info": logging.INFO,
    "Warning": logging.WARNING,
    "Error": logging.ERROR,
    "Fatal": logging.CRITICAL,
}

# A change within this long of the last apply waits for the rest of its burst: every node
# applied each of a pod's four IPAM and endpoint writes on its own, the cluster's cost of a
# pod growing with the square of its size (bench/scale.py, 100 nodes: ~0.9 s per pod).
APPLY_INTERVAL_SECONDS = 0.1

# Under the shortest time calico-node's liveness goes stale after (3 × min(resync, 90 s)).
HEARTBEAT_SECONDS = 30.0

# Read by calico-node at start (its health and metrics servers); a change needs a restart.
AT_START = ("healthHost", "healthPort", "prometheusMetricsHost", "prometheusMetricsPort")

# Told after every loop turn: whether an apply ran and succeeded (None: no apply), its time.
Observer = Callable[[bool | None, float], None]


class Felix:
    """One Felix: reads snapshots, resolves its settings, drives the dataplane."""

    def __init__(
        self,
        driver: Driver,
        env: Mapping[str, str],
        before_apply: Callable[[Mirror], None] = lambda view: None,
        observe: Observer = lambda ok, seconds: None,
        flow_dirs: FlowDirs | None = None,
        before_apply_reads: tuple[str, ...] = (),
    ) -> None:
        """`env`: the process environment (its FELIX_* variables beat the datastore);
        `before_apply(mirror)` runs ahead of every apply (calico-node keeps tunnel
        addresses current there); `observe` hears about every loop turn (health and metrics);
        `flow_dirs`: where flow logs keep their state and serve the local reporter (None:
        no flow collector, whatever the settings say); `before_apply_reads`: the datastore
        keys (prefixes) `before_apply` reads beyond the snapshot's own, whose changes must
        make an apply too."""
        self.driver = driver
        self.env = {k: v for k, v in env.items() if k.startswith("FELIX_")}
        self.reader = SnapshotReader(driver.node)
        self.settings = felix_settings.resolve(self.env, {}, {})
        self._settings_from: tuple[dict[str, Any], dict[str, Any]] | None = None
        self._resolved = self.settings
        self.before_apply = before_apply
        self.inputs = (*snapshot.input_prefixes(), *before_apply_reads)
        self.observe = observe
        self._warned: set[str] = set()
        self._seen: apply_summary.Seen | None = None  # what the last apply was made from
        self._dataplane_warnings: tuple[str, ...] = ()
        self.flow_dirs = flow_dirs
        self.collector: FlowCollector | None = None
        self._collector_failure = ""
        self._flow_inputs: tuple[object, ...] | None = None  # what the collector last heard

    def apply(self, view: Mirror) -> None:
        started = time.monotonic()
        try:
            self.before_apply(view)
        except Exception as exc:
            log.warning("pre-apply step failed (will retry): %s", exc)
        snap = self.reader.read(view)
        self._settle(self._resolve(snap.global_config, snap.node_config))
        try:
            self.driver.apply(snap, self.settings)
        except Exception as exc:
            log.warning("dataplane apply failed (will retry): %s", exc)
            self.observe(False, time.monotonic() - started)
            return
        finally:
            self._tell(self.driver.warnings + snap.unenforced)
        self._flow_logs(snap)
        elapsed = time.monotonic() - started
        seen = apply_summary.Seen.of(snap, self.driver.route_count)
        if log.isEnabledFor(logging.INFO):
            what = apply_summary.changes(self._seen, seen)
            log.info("%s", apply_summary.line(snap.revision, elapsed * 1000, what))
        self._seen = seen
        self.observe(True, elapsed)

    def _resolve(
        self, global_spec: dict[str, Any], node_spec: dict[str, Any]
    ) -> felix_settings.Settings:
        """The settings, resolved again only when a FelixConfiguration changed (every
        setting's key looked up in three sources was a tenth of an apply)."""
        if self._settings_from != (global_spec, node_spec):
            self._settings_from = (global_spec, node_spec)
            self._resolved = felix_settings.resolve(self.env, global_spec, node_spec)
        return self._resolved

    def idle(self, view: Mirror) -> float:
        """Between applies: work the kernel asks for, else the news that changes of no
        concern to Felix leave the dataplane as current as the datastore (the revision
        file)."""
        try:
            due = self.driver.due()
            if not due:
                self.driver.still_current(view.revision())
        except OSError as exc:  # the link events' socket, the revision file
            log.warning("between applies: %s; applying", exc)
            due = True
        if due:
            self.apply(view)
        else:
            self.observe(None, 0.0)
        # Liveness is a loop that turns: with resyncs far apart (or off) it still turns.
        return min(self.driver.due_in(), HEARTBEAT_SECONDS)

    def _tell(self, warnings: tuple[str, ...]) -> None:
        """Each warning (the dataplane's, and what Felix does not enforce) once, when it
        starts to hold (every apply would repeat it), and again should it come back after
        it stopped."""
        for warning in warnings:
            if warning not in self._dataplane_warnings:
                log.warning("%s", warning)
        self._dataplane_warnings = warnings

    def _settle(self, new: felix_settings.Settings) -> None:
        for warning in new.warnings:
            if warning not in self._warned:
                log.warning("%s", warning)
                self._warned.add(warning)
        old, self.settings = self.settings, new
        if new.log_severity_screen != old.log_severity_screen or self.driver.applies == 0:
            level = LOG_LEVELS[new.log_severity_screen]
            logging.getLogger("pycalico.felix").setLevel(level)
        if new.route_refresh_interval != old.route_refresh_interval:
            log.info("routeRefreshInterval is now %ss", new.route_refresh_interval)
        if self.driver.applies:
            for key in AT_START:
                if new.value_of(key) != old.value_of(key):
                    log.warning("%s changed: it takes effect when calico-node restarts", key)

    def _flow_logs(self, snap: Snapshot) -> None:
        """Start, update or stop the flow collector after an apply that went through: it
        exists only while flow logs are enabled (reference flows.md §4), as do its rules."""
        if self.flow_dirs is None:
            return
        if not self.settings.flow_logs_enabled:
            self.close()
            return
        if self.collector is None:
            try:
                self.collector = FlowCollector(
                    self.driver.node, self.flow_dirs, self.driver.calculator.renderer.prefixes
                ).start()
            except (OSError, NflogError) as exc:
                if str(exc) != self._collector_failure:
                    log.warning("flow logs: cannot start the collector (will retry): %s", exc)
                    self._collector_failure = str(exc)
                return
            self._collector_failure = ""
        # Most applies change nothing the view or the evaluator is made of (another node's
        # route, an IPAM write): rebuilding both, and re-evaluating every connection's
        # pending traces, on each of them was a per-change cost growing with the cluster.
        # The model objects are memoized per stored version, so comparing these tuples is
        # mostly identity checks.
        policy, last = snap.policy, self.driver.calculator.last_policy
        made_from = (
            self.settings,
            tuple(policy.endpoints),
            tuple(policy.policies),
            tuple(policy.profiles.items()),
            tuple(policy.network_sets),
            tuple(policy.host_endpoints),
            tuple(policy.staged_policies),
            tuple(policy.tiers.items()),
            tuple(snap.nodes.items()),  # node infos are memoized: mostly identity checks
            tuple(last.endpoints.items()),
            tuple(last.policies.items()),
        )
        if made_from == self._flow_inputs:
            return
        self._flow_inputs = made_from
        node = self.driver.node
        nodes = {name: info.address for name, info in snap.nodes.items()}
        evaluating = self.settings.flow_logs_policy_evaluation_mode != "None"

        def made() -> tuple[FlowView, PendingEvaluator | None]:
            # Every input is this apply's own: a snapshot's and a calculation's objects are
            # new each time, never changed after, so the collector's thread may make these.
            view = flow_view.build(
                node,
                policy.endpoints,
                nodes,
                policy.network_sets,
                last,
                policy.staged_policies,
                policy.tiers,
            )
            return view, PendingEvaluator(policy) if evaluating else None

        self.collector.update(self.settings, made, evaluating)

    def close(self) -> None:
        if self.collector is not None:
            self.collector.close()
            self.collector = None
        self._flow_inputs = None

    def run(self, backend: Backend, stop: threading.Event) -> None:
        """Apply, then follow changes until `stop` is set. Between changes the driver is
        asked whether the kernel needs an apply anyway (a link flap, a route out of its
        grace period)."""
        wakeup = Wakeup()
        self.driver.on_link_change = wakeup.ring
        try:
            follow(
                backend,
                self.apply,
                stop,
                lambda: self.settings.resync_seconds,
                idle=self.idle,
                relevant=lambda event, before: (
                    event.key.startswith(self.inputs) and snapshot.changes(event, before)
                ),
                wakeup=wakeup,
                min_apply_interval=APPLY_INTERVAL_SECONDS,
            )
        finally:
            self.close()

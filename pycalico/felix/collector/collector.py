"""Felix's flow collector: reads the kernel, keeps the flow table, flushes flow records to
Goldmane (`flowLogsGoldmaneServer`) and/or the local reporter (reference flows.md §3-§6).

Two threads. One reads NFLOG groups 1 and 2 and hands each read to the table: nothing else
runs there, so the kernel's batches are taken as fast as they come; it blocks on the socket
with no timeout (close() interrupts it). The other ticks every second while the table
holds something: a conntrack dump every `CONNTRACK_INTERVAL` (Calico's 5 s) for the
counters and the ends, the pending traces of new connections (and of every connection each
0.8 × flush interval), and at each flush interval the records, queued to the sender (which
keeps them in its spool until acknowledged) before the table's state is saved next to that
spool: a restarted calico-node neither loses what it flushed nor reports again what it did.

A table with nothing in it (no live connection, no ended one left to report) has nothing to
dump, evaluate, flush or save: the second thread then sleeps, with no timer, until the NFLOG
thread logs a packet of a new connection. An idle node's collector costs no wake-up at all.
Waking, it keeps the grid of flush intervals it had (`interval_holding`).

Felix hands over, after every apply, its settings and what it applied (`update`); the
names, labels and plans of the flows come from there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pycalico.felix.calc.settings import Settings
from pycalico.felix.collector import conntrack_reader
from pycalico.felix.collector.flow_table import FlowTable
from pycalico.felix.collector.flow_view import FlowView
from pycalico.felix.collector.local_reporter import LocalReporter
from pycalico.felix.collector.nflog_reader import NflogReader
from pycalico.felix.rules.nflog import EGRESS_GROUP, INGRESS_GROUP
from pycalico.flows.nflog_prefix import PrefixTable
from pycalico.flows.record import Flow
from pycalico.flows.sender import FlowSender
from pycalico.policy.pending import PendingEvaluator

# Makes what Felix applied into the collector's view and evaluator, when they are needed.
ViewSource = Callable[[], tuple[FlowView, PendingEvaluator | None]]
log = logging.getLogger("pycalico.felix.collector")

CONNTRACK_INTERVAL = 5.0
TICK = 1.0
PENDING_SHARE = 0.8  # of the flush interval, between two evaluations of a pending trace
STATE_FILE = "table.json"


def interval_holding(start: int, now: float, every: float) -> int:
    """The start of the flush interval that holds `now`, on the grid of intervals `every`
    seconds long from `start` (the last flush when the collector went dormant).

    The grid is kept, rather than an interval started at the first new packet, because a
    polling collector flushed the idle intervals too (with no record): resuming on its grid
    gives the records it gave. The first connections' records cover one whole interval
    that holds them, neither stretched back over the idle time nor cut short and flushed
    at once, and go out at its end: at most one interval after they began.
    """
    if every <= 0 or now - start < every:
        return start
    return start + int((now - start) // every * every)


@dataclass(frozen=True)
class FlowDirs:
    """Where the collector keeps its spool and table (the node's state dir) and serves the
    local reporter (the node's run dir)."""

    state: str
    run: str

    @property
    def flows(self) -> str:
        return os.path.join(self.state, "flows")


class FlowCollector:
    def __init__(
        self,
        node: str,
        dirs: FlowDirs,
        prefixes: PrefixTable,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node = node
        self.dirs = dirs
        self._clock = clock
        self._lock = threading.Lock()
        # Notified by the NFLOG thread when a packet made a connection: the collector
        # thread waits on it while the table is empty.
        self._logged = threading.Condition(self._lock)
        self.table = FlowTable(prefixes)
        self._source: ViewSource | None = None
        self._made: tuple[FlowView, PendingEvaluator | None] | None = None
        self._settings = Settings()
        self._sender: FlowSender | None = None
        self._server = ""
        self._reporter: LocalReporter | None = None
        self._stop = threading.Event()
        self.dumps = 0  # conntrack dumps taken into the table so far
        # Wake-ups of each thread: the NFLOG thread's reads, the collector thread's turns
        # (neither counts while the node is idle).
        self.reads = 0
        self.turns = 0
        self.dormant = False  # the collector thread sleeps until a connection is logged
        self._reader = NflogReader((INGRESS_GROUP, EGRESS_GROUP))
        try:
            conntrack_reader.enable_accounting()
        except OSError as exc:
            log.warning("flow logs: cannot turn on conntrack accounting (no byte counts): %s", exc)
        self._restore()
        self._interval_start = int(clock())
        self._threads = [
            threading.Thread(target=self._read_nflog, daemon=True, name="flow-nflog"),
            threading.Thread(target=self._collect, daemon=True, name="flow-collector"),
        ]

    def start(self) -> FlowCollector:
        for thread in self._threads:
            thread.start()
        log.info("flow collector started (NFLOG groups %d and %d)", INGRESS_GROUP, EGRESS_GROUP)
        return self

    # --- from Felix ---

    def update(self, settings: Settings, source: ViewSource, evaluating: bool) -> None:
        """What Felix applied: its settings, and how to make the view of the cluster and
        the pending-trace evaluator (None unless `evaluating`: flowLogsPolicyEvaluationMode
        None). They are made when flows first need them: during a bring-up's burst of
        changes, making them on every apply was a fifth of Felix's CPU, mostly for nothing."""
        level = logging.DEBUG if settings.flow_logs_collector_debug_trace else logging.NOTSET
        if log.level != level:  # setting it clears every logger's cache, under a lock
            log.setLevel(level)
        with self._lock:
            self._settings = settings
            self._source, self._made = source, None
            if evaluating:
                for conn in self.table.connections():
                    conn.pending_at = -1.0  # the policies changed: evaluate again
            else:
                for conn in self.table.connections():
                    conn.pending.clear()
        server = settings.flow_logs_goldmane_server
        if server != self._server:
            self._server = server
            self._replace_sender(server)
        local = settings.flow_logs_local_reporter == "Enabled"
        if local and self._reporter is None:
            self._reporter = LocalReporter(self.dirs.run)
            log.info("flow logs: local reporter on unix://%s", self._reporter.path)
        elif not local and self._reporter is not None:
            self._reporter.close()
            self._reporter = None

    def _replace_sender(self, server: str) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        if not server:
            return
        try:
            self._sender = FlowSender(
                server, sender_id=self.node, spool_dir=os.path.join(self.dirs.flows, "spool")
            ).start()
        except ValueError as exc:
            log.warning("flowLogsGoldmaneServer: %s; no flow records are sent", exc)
            return
        every = self._settings.flow_logs_flush_interval
        log.info("flow logs: sending to %s every %ss", server, every)

    # --- the threads ---

    def _read_nflog(self) -> None:
        reader, table, lock, clock = self._reader, self.table, self._lock, self._clock
        while not self._stop.is_set():
            try:
                packets = reader.read()  # [] once close() interrupted it
            except OSError as exc:
                if self._stop.is_set():
                    return
                log.warning("reading NFLOG: %s", exc)
                packets = []
            self.reads += 1
            if not packets:
                continue
            with lock:
                made = table.logged(packets, clock())
                if made:
                    self._logged.notify()
            if made and log.isEnabledFor(logging.DEBUG):
                for conn in made:
                    log.debug("new connection %s: %s", conn.key, conn.logged)

    def _collect(self) -> None:
        next_dump = 0.0
        while not self._stop.is_set():
            if self._sleep_while_empty():
                next_dump = 0.0  # the new connections' counters at the first turn
            if self._stop.wait(TICK):
                return
            self.turns += 1
            try:
                now = self._clock()
                if now >= next_dump:
                    next_dump = now + CONNTRACK_INTERVAL
                    entries = conntrack_reader.dump()
                    with self._lock:
                        self.table.dumped(entries)
                    self.dumps += 1
                self._pending(now)
                if now - self._interval_start >= self._settings.flow_logs_flush_interval:
                    self.flush(now)
            except Exception as exc:  # the collector must outlive any one bad turn
                log.warning("flow collector: %s: %s", type(exc).__name__, exc)

    def _sleep_while_empty(self) -> bool:
        """Wait, with no timer, while the table holds nothing (it was flushed empty, or
        nothing was ever logged); True if it did."""
        with self._lock:
            if not self.table.is_empty() or self._stop.is_set():
                return False
            self.dormant = True
            while self.table.is_empty() and not self._stop.is_set():
                self._logged.wait()
            self.dormant = False
            if self._stop.is_set():
                return False
            self._interval_start = interval_holding(
                self._interval_start, self._clock(), self._settings.flow_logs_flush_interval
            )
        log.debug("flow collector: connections again after an idle time")
        return True

    def _pending(self, now: float) -> None:
        with self._lock:
            self._pending_locked(now)

    def _view_locked(self) -> tuple[FlowView, PendingEvaluator | None] | None:
        if self._made is None and self._source is not None:
            self._made = self._source()
        return self._made

    def _pending_locked(self, now: float) -> None:
        made = self._view_locked()
        if made is None or made[1] is None:
            return
        view, evaluator = made
        every = PENDING_SHARE * self._settings.flow_logs_flush_interval
        count = self.table.evaluate_pending(view, evaluator, now, every)
        if count:
            log.debug("evaluated the pending traces of %d connections", count)

    def flush(self, now: float) -> list[Flow]:
        """The records of the interval now ending, handed to the sender and the local
        reporter; the table's state saved after."""
        with self._lock:
            made = self._view_locked()
            if made is None:
                return []
            view = made[0]
            # Connections logged since the last tick get theirs now, so that no record of
            # a connection goes out without its pending trace.
            self._pending_locked(now)
            records = self.table.flush(view, self._interval_start, now)
            self._interval_start = int(now)
            for flow in records:
                if self._sender is not None:
                    self._sender.send(flow)
                if self._reporter is not None:
                    self._reporter.send(flow)
            self._save()
        log.debug("flushed %d flow records (%d connections live)", len(records), len(self.table))
        return records

    # --- surviving a restart ---

    def _state_path(self) -> str:
        return os.path.join(self.dirs.flows, STATE_FILE)

    def _save(self) -> None:
        path = self._state_path()
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        temporary = path + ".new"
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(self.table.state(), f)
        os.replace(temporary, path)

    def _restore(self) -> None:
        try:
            with open(self._state_path(), encoding="utf-8") as f:
                data = json.load(f)
            count = self.table.restore(data, self._clock())
        except FileNotFoundError:
            return
        except ValueError as exc:
            log.warning("flow logs: %s; starting with an empty table", exc)
            return
        log.info("flow logs: %d live connections taken over from before the restart", count)

    def close(self) -> None:
        """Flush what the interval holds, then stop (a calico-node stop loses no flow)."""
        self._stop.set()
        with self._lock:
            self._logged.notify_all()
        self._reader.interrupt()
        for thread in self._threads:
            if thread.is_alive():
                thread.join()
        self.flush(self._clock())
        if self._sender is not None:
            self._sender.close()
        if self._reporter is not None:
            self._reporter.close()
        with contextlib.suppress(OSError):
            self._reader.close()
        log.info("flow collector stopped")

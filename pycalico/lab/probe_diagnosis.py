"""Naming what dropped a probe: every node traces the probe round's packets (trace_tables,
marking whatever goes to the probed port) while the matrix runs, and a probe that timed out
is looked up in the nodes' traces: the policy and rule that denied it, as
`dropped by <policy>[rule]`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from pycalico.lab import trace_events, trace_tables, trace_verdicts
from pycalico.lab.cluster import EXTERNAL_IP
from pycalico.lab.namespaces import ns_name
from pycalico.lab.probe import TIMED_OUT, Results
from pycalico.lab.state import LabState


def drop_of(
    runs_by_node: dict[str, list[trace_verdicts.Decision]],
) -> trace_verdicts.Decision | None:
    """The first denial among a packet's decisions on the nodes it crossed (pure)."""
    for decisions in runs_by_node.values():
        for decision in decisions:
            if not decision.allowed:
                return decision
    return None


@dataclass
class Watch:
    """Traces the probe round on every node, from `with` to its end."""

    state: LabState
    protocol: str
    port: int
    table: str = field(default_factory=trace_tables.table_name)
    monitors: list[trace_tables.Monitor] = field(default_factory=list)
    installed: list[str] = field(default_factory=list)

    def __enter__(self) -> Watch:
        namespaces = [ns_name(self.state.name, node) for node in self.state.nodes]
        marked = trace_tables.match_service(self.protocol, self.port)
        try:
            for ns in namespaces:
                self.installed.append(ns)
                trace_tables.install(ns, self.table, marked)
            self.monitors = [trace_tables.Monitor(ns) for ns in namespaces]
            for monitor in self.monitors:
                monitor.start()
            trace_tables.wait_listening(self.monitors)
        except BaseException:
            self._end()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._end()

    def _end(self) -> None:
        for monitor in self.monitors:
            monitor.stop()
        for ns in self.installed:
            trace_tables.remove(ns, self.table)

    def name_drops(self, results: Results) -> None:
        """Replace `timeout` by `dropped by <policy>[rule]` where a node's trace shows it."""
        from pycalico.lab.trace_policy import RuleIndex, load_inputs

        events = {
            m.netns: [e for line in m.lines if (e := trace_events.parse(line)) is not None]
            for m in self.monitors
        }
        addresses = {key: pod.ip for key, pod in self.state.pods.items()}
        addresses["external"] = EXTERNAL_IP
        inputs = None
        indexes: dict[str, RuleIndex] = {}
        for source, row in results.failures.items():
            for target, why in row.items():
                if why != TIMED_OUT:
                    continue
                src, dst = addresses.get(source, ""), addresses.get(target, "")
                if inputs is None:
                    inputs = load_inputs(self.state)
                decisions: dict[str, list[trace_verdicts.Decision]] = {}
                for ns, found in events.items():
                    run = trace_events.first_packet(
                        found, self.table, _same_flow(src, dst, self.protocol, self.port)
                    )
                    index = indexes.setdefault(ns, RuleIndex(ns, inputs))
                    decisions[ns] = trace_verdicts.decisions(trace_events.hooks(run), index)
                denial = drop_of(decisions)
                if denial is not None:
                    row[target] = f"dropped by {denial.name}"


def _same_flow(src: str, dst: str, protocol: str, port: int) -> Callable[[dict[str, str]], bool]:
    def matches(headers: dict[str, str]) -> bool:
        if headers.get("saddr") != src or headers.get("daddr") != dst:
            return False
        return protocol == "icmp" or headers.get("dport") == str(port)

    return matches

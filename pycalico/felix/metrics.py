"""Felix's Prometheus metrics by Calico's names and types (reference flows.md §9).

calico-node tells `applied()` about every apply (the snapshot it was made from, what it
asked of the dataplane, whether it went through, how long it took); a scrape reads what
the last one left, so a scrape costs a few counts and never touches the kernel.

Per-rule packets and bytes (Calico #6998 asks for them; Felix has none) are pycalico's own:
`pycalico_policy_rule_packets_total` and `pycalico_policy_rule_bytes_total`, one series per
rule of each policy and profile that applies here, read from the kernel once per scrape.

Where pycalico differs: its one `inet calico` table serves IPv4 and IPv6 alike, so the
nftables gauges carry `ip_version="inet"` (Felix has a table per IP version); the
apply-time quantiles are exact over the window (see pycalico.metrics.sliding_summary).
Felix's other metrics (iptables and ipsets, which pycalico does not use; per-message
counters of its internal dataplane, which pycalico does not have) are not exported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pycalico.felix.dataplane.rule_counters import RuleKey, counted_chain
from pycalico.felix.rules.host_endpoints import FILTER, MANGLE, RAW
from pycalico.felix.rules.policy import policy_chain, selector_set
from pycalico.metrics.sliding_summary import SlidingSummary
from pycalico.policy.model import EntitySelector, Policy, Profile

if TYPE_CHECKING:
    from pycalico.felix.calc.desired import Desired
    from pycalico.felix.calc.snapshot import Snapshot

log = logging.getLogger("pycalico.felix")

MAIN_TABLE = 254
# felix_resync_state's values, as Felix sets them.
WAITING, RESYNCING, IN_SYNC = 1, 2, 3

# The names the renderer gives policy chains and selector sets begin so.
_POLICY_CHAINS = tuple(
    policy_chain("", d, layer) for d in ("ingress", "egress") for layer in (FILTER, MANGLE, RAW)
)
_SELECTOR_SETS = tuple(selector_set(EntitySelector(), v).split("-", 1)[0] + "-" for v in (4, 6))


def _go_counter(name: str, documentation: str, value: float) -> Metric:
    """A counter named as Felix's Go counters are, without `_total`."""
    metric = Metric(name, documentation, "counter")
    metric.add_sample(name, {}, value)
    return metric


def active_policies(desired: Desired) -> int:
    """Policies that apply to some local endpoint, workload or host: those the ruleset has
    a chain for (in any layer: a host endpoint's pre-DNAT or untracked policy has its
    chain in mangle or raw only)."""
    return len(
        {
            chain[len(prefix) :]
            for chain in desired.ruleset.chains
            for prefix in _POLICY_CHAINS
            if chain.startswith(prefix)
        }
    )


def active_selectors(desired: Desired) -> int:
    """Selectors in the rules of what applies locally: one set each (per IP version)."""
    return len(
        {name.split("-", 1)[1] for name in desired.ruleset.sets if name.startswith(_SELECTOR_SETS)}
    )


Counts = dict[RuleKey, tuple[int, int]]


class RuleCounters:
    """Per-rule packets and bytes that only grow: a rule's kernel counter starts from zero
    whenever its chain is written again (a full resync, a change of the policy), so a drop
    is taken as a restart and the count before it is kept. What was counted between the
    last scrape and such a rewrite is lost. A rule no longer in the table is forgotten."""

    def __init__(self) -> None:
        self._last: Counts = {}
        self._before: Counts = {}

    def update(self, reading: Counts) -> Counts:
        totals: Counts = {}
        before: Counts = {}
        for key, (packets, octets) in reading.items():
            base = self._before.get(key, (0, 0))
            last = self._last.get(key)
            if last is not None and (packets < last[0] or octets < last[1]):
                base = (base[0] + last[0], base[1] + last[1])
            before[key] = base
            totals[key] = (base[0] + packets, base[1] + octets)
        self._last, self._before = dict(reading), before
        return totals


class FelixMetrics(Collector):
    def __init__(
        self,
        node: str,
        clock: Callable[[], float] = time.monotonic,
        read_counters: Callable[[list[str]], Counts] | None = None,
    ) -> None:
        """`read_counters(chains)`: the kernel's per-rule counters of those chains
        (rule_counters.read), asked once per scrape; None for no per-rule metrics."""
        self.node = node
        self._read_counters = read_counters
        self._rule_counters = RuleCounters()
        self._counters_lock = threading.Lock()
        self._lock = threading.Lock()
        self._apply_time = SlidingSummary(clock=clock)
        self._failures = 0
        self._resyncs = 0
        self._generation: int | None = None
        self._initial_seconds: float | None = None
        self._snapshot: Snapshot | None = None
        self._desired: Desired | None = None

    def applied(
        self, ok: bool, seconds: float, snapshot: Snapshot | None, desired: Desired | None
    ) -> None:
        """An apply ended: `snapshot` what it was made from, `desired` what it asked of the
        dataplane (None when it failed). The first that went through is the initial
        resync; the apply-time summary leaves it out, as Felix's has since 3.31."""
        with self._lock:
            if snapshot is not None:
                if snapshot.generation != self._generation:
                    self._resyncs += 1  # a full reload of the datastore: a resync
                    self._generation = snapshot.generation
                self._snapshot = snapshot
            if not ok:
                self._failures += 1
                return
            self._desired = desired
            if self._initial_seconds is None:
                self._initial_seconds = seconds
                return
        self._apply_time.observe(seconds)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snapshot, desired = self._snapshot, self._desired
            failures, resyncs, initial = self._failures, self._resyncs, self._initial_seconds
        yield _gauge("felix_host", "Configured Felix hostname (as a label), always 1.", 1.0,
                     {"host": self.node})  # fmt: skip
        yield _gauge(
            "felix_resync_state",
            "Current datastore state: 1 waiting, 2 resyncing, 3 in sync.",
            IN_SYNC if snapshot is not None else WAITING,
        )
        yield _go_counter(
            "felix_resyncs_started",
            "Number of times Felix has started resyncing with the datastore.",
            resyncs,
        )
        yield _go_counter(
            "felix_int_dataplane_failures",
            "Number of times dataplane updates failed and will be retried.",
            failures,
        )
        yield self._apply_time.family(
            "felix_int_dataplane_apply_time_seconds",
            "Time in seconds that it took to apply a dataplane update.",
        )
        if initial is not None:
            yield _gauge(
                "felix_int_dataplane_initial_resync_time_seconds",
                "Time in seconds that it took to apply the dataplane after the first resync.",
                initial,
            )
        if snapshot is not None:
            yield from _cluster(snapshot, self.node)
        if desired is not None:
            yield from _local(desired)
        if self._read_counters is not None and snapshot is not None and desired is not None:
            yield from self._per_rule(snapshot, desired)

    def _per_rule(self, snapshot: Snapshot, desired: Desired) -> Iterator[Metric]:
        assert self._read_counters is not None
        # Only the policy and profile chains, each dumped alone: a dump of the whole table
        # would walk every rule of it (10 times slower with 500 policies, bench-policy).
        chains = [c for c in desired.ruleset.chains if counted_chain(c)]
        with self._counters_lock:  # one reading per scrape, and scrapes one at a time
            try:
                totals = self._rule_counters.update(self._read_counters(chains))
            except OSError as exc:
                log.warning("could not read the policy rules' counters: %s", exc)
                return
        labels = ["kind", "tier", "namespace", "name", "direction", "rule_index", "action"]
        packets = CounterMetricFamily(
            "pycalico_policy_rule_packets",
            "Packets that matched a policy or profile rule (sum by name for a policy's).",
            labels=labels,
        )
        octets = CounterMetricFamily(
            "pycalico_policy_rule_bytes",
            "Bytes that matched a policy or profile rule (sum by name for a policy's).",
            labels=labels,
        )
        policies = {p.id: p for p in snapshot.policy.policies}
        for key, (n_packets, n_bytes) in sorted(
            totals.items(), key=lambda item: (item[0].owner, item[0].chain_kind, item[0].index)
        ):
            values = _rule_labels(key, policies, snapshot.policy.profiles)
            if values is not None:
                packets.add_metric(values, n_packets)
                octets.add_metric(values, n_bytes)
        yield packets
        yield octets


def _rule_labels(
    key: RuleKey, policies: Mapping[str, Policy], profiles: Mapping[str, Profile]
) -> list[str] | None:
    """kind, tier, namespace, name, direction, rule_index, action of a counted rule; None
    for one whose policy the snapshot no longer has."""
    direction = "ingress" if key.chain_kind in ("pi", "pri") else "egress"
    holder: Policy | Profile | None
    if key.chain_kind in ("pi", "po"):
        holder = policies.get(key.owner)
        if holder is None:
            return None
        kind = "GlobalNetworkPolicy" if holder.namespace is None else "NetworkPolicy"
        tier, namespace, name = holder.tier, holder.namespace or "", holder.name
    else:
        holder = profiles.get(key.owner)
        if holder is None:
            return None
        kind, tier, namespace, name = "Profile", "", "", holder.name
    rules = getattr(holder, direction) or ()
    action = rules[key.index].action if key.index < len(rules) else ""
    return [kind, tier, namespace, name, direction, str(key.index), action]


def _gauge(
    name: str, documentation: str, value: float, labels: dict[str, str] | None = None
) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), value)
    return family


def _cluster(snapshot: Snapshot, node: str) -> Iterator[Metric]:
    policy = snapshot.policy
    for name, documentation, value in (
        ("felix_cluster_num_hosts", "Total number of Calico hosts in the cluster.",
         len(snapshot.nodes)),
        ("felix_cluster_num_workload_endpoints",
         "Total number of workload endpoints cluster-wide.", len(policy.endpoints)),
        ("felix_cluster_num_host_endpoints", "Total number of host endpoints cluster-wide.",
         len(policy.host_endpoints)),
        ("felix_cluster_num_policies", "Total number of policies in the cluster.",
         len(policy.policies)),
        ("felix_cluster_num_profiles", "Total number of profiles in the cluster.",
         len(policy.profiles)),
        ("felix_cluster_num_tiers", "Total number of Calico tiers in the cluster.",
         len(policy.tiers)),
    ):  # fmt: skip
        yield _gauge(name, documentation, value)
    yield _gauge(
        "felix_active_local_endpoints",
        "Number of active endpoints on this host.",
        len({w.interface for w in snapshot.workloads})
        + sum(1 for h in policy.host_endpoints if h.node == node),
    )


def _local(desired: Desired) -> Iterator[Metric]:
    yield _gauge(
        "felix_active_local_policies",
        "Number of active policies on this host.",
        active_policies(desired),
    )
    yield _gauge(
        "felix_active_local_selectors",
        "Number of active selectors on this host.",
        active_selectors(desired),
    )
    rules = desired.ruleset
    chains = GaugeMetricFamily(
        "felix_nft_chains", "Number of active nftables chains.", labels=["ip_version"]
    )
    chains.add_metric(["inet"], len(rules.chains))
    yield chains
    lines = GaugeMetricFamily(
        "felix_nft_rules", "Number of nftables rules in Felix's chains.", labels=["ip_version"]
    )
    lines.add_metric(["inet"], sum(len(chain) for chain in rules.chains.values()))
    yield lines
    yield _gauge("felix_nft_sets", "Number of active nftables sets.", len(rules.sets))
    yield _gauge("felix_nft_maps", "Number of active nftables maps.", len(rules.maps))
    routes = GaugeMetricFamily(
        "felix_route_table_num_routes",
        "Number of routes that Felix is managing in the particular routing table.",
        labels=["table"],
    )
    by_version = {4: 0, 6: 0}
    for route in desired.routing.state.routes:
        by_version[6 if ":" in route.dst else 4] += 1
    for version, count in by_version.items():
        routes.add_metric([f"IPv{version}:{MAIN_TABLE}"], count)
    yield routes

"""Felix's flow table: NFLOG traces joined with conntrack counters into Goldmane records,
reporters by which end is local, counters per interval, ends, restarts; the pending traces
of its connections (policy/pending.py) and when they are evaluated."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from pycalico.api.resource import normalize
from pycalico.felix.calc.staged_tiers import with_staged_tiers
from pycalico.felix.collector import flow_view
from pycalico.felix.collector.conntrack_messages import ConntrackEntry, Event, Tuple
from pycalico.felix.collector.flow_table import FlowTable, packet_of
from pycalico.felix.collector.nflog_messages import NflogPacket
from pycalico.flows.nflog_prefix import PrefixTable
from pycalico.flows.record import Action, EndpointType, PolicyKind, Reporter
from pycalico.policy import calc, model
from pycalico.policy.pending import PendingEvaluator, staged_policy
from tests.unit.test_policy_calc import PROFILES, REMOTE, TIERS, A, B, inputs, pol

NOBODY = {"action": "Allow", "protocol": "TCP", "source": {"selector": "app == 'nobody'"}}
DENY_DB = pol("NetworkPolicy", "db", {"selector": "app == 'db'", "ingress": [NOBODY]}, ns="x")
ENDPOINTS = [A, B, REMOTE]


def _ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def view(*policies: object) -> flow_view.FlowView:
    state = calc.Calculator("node1").calculate(inputs(*policies, endpoints=ENDPOINTS))  # type: ignore[arg-type]
    return flow_view.build("node1", ENDPOINTS, {"node1": None}, [], state)


def log(group: int, prefix: str, src: str, dst: str, dport: int = 80) -> NflogPacket:
    return NflogPacket(group, prefix, 4, 6, _ip(src), _ip(dst), 40000, dport, 0, 0, 0)


def entry(src: str, dst: str, counts: tuple[int, int, int, int], state: int = 3, ct_id: int = 9,
          dport: int = 80) -> ConntrackEntry:  # fmt: skip
    orig = Tuple(_ip(src), _ip(dst), 6, 40000, dport)
    reply = Tuple(_ip(dst), _ip(src), 6, dport, 40000)
    return ConntrackEntry(Event.DUMP, 4, orig, reply, *counts, 0, ct_id, 0, 0, state, 100)


def test_a_connection_between_two_local_pods_is_reported_by_both_with_both_ways_counted() -> None:
    table = FlowTable(PrefixTable())
    table.logged([log(2, "ARE0|pro/kns.x", "10.0.0.1", "10.0.0.2"),
                  log(1, "ARI0|pro/kns.x", "10.0.0.1", "10.0.0.2")], 100.0)  # fmt: skip
    table.dumped([entry("10.0.0.1", "10.0.0.2", (5, 500, 4, 4000))])
    records = {f.key.reporter: f for f in table.flush(view(), 90, 105.0)}
    src, dst = records[Reporter.SRC], records[Reporter.DST]
    assert (src.key.source_name, src.key.dest_name, src.key.dest_port) == ("a", "b", 80)
    assert src.key.source_type == EndpointType.WORKLOAD and src.key.action == Action.ALLOW
    assert (src.packets_out, src.bytes_out, src.packets_in, src.bytes_in) == (5, 500, 4, 4000)
    assert (dst.packets_in, dst.bytes_in, dst.packets_out, dst.bytes_out) == (5, 500, 4, 4000)
    assert src.key.policies.enforced[0].kind == PolicyKind.PROFILE
    assert dst.key.policies.enforced[0].name == "kns.x"
    assert (src.num_connections_started, src.num_connections_live) == (1, 1)
    assert "app=web" in src.source_labels and not any(
        label.startswith("pcns.") for label in src.source_labels
    )


def test_the_next_interval_carries_only_what_was_new_and_the_end_completes_it() -> None:
    table = FlowTable(PrefixTable())
    table.logged([log(2, "ARE0|pro/kns.x", "10.0.0.1", "10.0.0.2")], 100.0)
    table.dumped([entry("10.0.0.1", "10.0.0.2", (5, 500, 4, 4000))])
    table.flush(view(), 90, 105.0)
    table.dumped([entry("10.0.0.1", "10.0.0.2", (7, 700, 5, 5000), state=7)])  # time-wait
    [flow] = table.flush(view(), 105, 120.0)
    assert (flow.packets_out, flow.bytes_out, flow.packets_in, flow.bytes_in) == (2, 200, 1, 1000)
    assert (flow.num_connections_started, flow.num_connections_completed) == (0, 1)
    assert flow.num_connections_live == 0
    assert table.flush(view(), 120, 135.0) == []  # ended: forgotten


def test_a_table_is_empty_only_once_its_ended_connections_were_flushed() -> None:
    """The collector sleeps on an empty table: an end not yet reported keeps it awake."""
    table = FlowTable(PrefixTable())
    assert table.is_empty()
    table.logged([log(2, "ARE0|pro/kns.x", "10.0.0.1", "10.0.0.2")], 100.0)
    assert not table.is_empty()
    table.dumped([entry("10.0.0.1", "10.0.0.2", (5, 500, 4, 4000))])
    table.dumped([])  # conntrack no longer holds it: ended
    assert len(table) == 0 and not table.is_empty()
    [flow] = table.flush(view(), 90, 105.0)
    assert flow.num_connections_completed == 1 and table.is_empty()


def test_a_denied_connection_is_reported_by_its_destination_with_the_tier_end_and_trigger() -> None:
    table = FlowTable(PrefixTable())
    for _ in range(3):  # the SYN and two retransmits, each dropped
        table.logged([log(1, "DPI|default", "10.0.2.1", "10.0.0.2")], 100.0)
    table.dumped([])  # a dropped first packet leaves no conntrack entry
    [flow] = table.flush(view(DENY_DB), 90, 105.0)
    assert flow.key.reporter == Reporter.DST and flow.key.action == Action.DENY
    assert (flow.key.source_name, flow.key.source_namespace) == ("r", "y")
    [hit] = flow.key.policies.enforced
    assert hit.kind == PolicyKind.END_OF_TIER and hit.rule_index == -1 and hit.tier == "default"
    assert hit.trigger is not None and (hit.trigger.kind, hit.trigger.name) == (
        PolicyKind.CALICO_NETWORK_POLICY, "db",
    )  # fmt: skip
    assert (flow.packets_in, flow.bytes_in, flow.num_connections_started) == (3, 0, 1)


def test_a_dropped_connection_ends_after_it_stops_logging() -> None:
    table = FlowTable(PrefixTable())
    table.logged([log(1, "DPI|default", "10.0.2.1", "10.0.0.2")], 100.0)
    table.flush(view(DENY_DB), 90, 105.0)
    assert len(table) == 1
    [flow] = table.flush(view(DENY_DB), 105, 120.0)
    assert flow.num_connections_live == 0 and flow.packets_in == 0 and len(table) == 0


def test_traffic_of_no_local_workload_makes_no_record() -> None:
    table = FlowTable(PrefixTable())
    table.logged([log(1, "ARI0|pro/kns.y", "10.0.0.1", "10.0.2.1")], 100.0)  # REMOTE is node2's
    assert table.flush(view(), 90, 105.0) == []


def test_a_restored_table_reports_only_what_came_after_the_save() -> None:
    table = FlowTable(PrefixTable())
    table.logged([log(2, "ARE0|pro/kns.x", "10.0.0.1", "10.0.2.1")], 100.0)
    table.dumped([entry("10.0.0.1", "10.0.2.1", (5, 500, 4, 4000))])
    table.flush(view(), 90, 105.0)
    again = FlowTable(PrefixTable())
    assert again.restore(table.state(), 200.0) == 1
    again.dumped([entry("10.0.0.1", "10.0.2.1", (6, 600, 4, 4000))])
    [flow] = again.flush(view(), 190, 205.0)
    assert (flow.packets_out, flow.bytes_out, flow.num_connections_started) == (1, 100, 0)


def test_a_reused_five_tuple_is_a_new_connection() -> None:
    table = FlowTable(PrefixTable())
    table.logged([log(2, "ARE0|pro/kns.x", "10.0.0.1", "10.0.2.1")], 100.0)
    table.dumped([entry("10.0.0.1", "10.0.2.1", (5, 500, 4, 4000), ct_id=1)])
    table.dumped([entry("10.0.0.1", "10.0.2.1", (2, 120, 1, 60), ct_id=2)])
    [flow] = table.flush(view(), 90, 105.0)
    assert flow.num_connections_started == 2 and flow.num_connections_completed == 1
    assert (flow.packets_out, flow.bytes_out) == (7, 620)


def test_other_ends_are_named_by_node_network_set_or_network() -> None:
    node2 = ipaddress.IPv4Interface("192.168.56.12/24")
    offices = model.network_set(
        normalize({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkSet",
                   "metadata": {"name": "offices", "labels": {"kind": "office"}},
                   "spec": {"nets": ["198.51.100.0/24"]}}),
        {},
    )  # fmt: skip
    state = calc.Calculator("node1").calculate(inputs(endpoints=ENDPOINTS))
    named = flow_view.build("node1", ENDPOINTS, {"node2": node2}, [offices], state)
    table = FlowTable(PrefixTable())
    for src in ("192.168.56.12", "198.51.100.7", "203.0.113.1", "10.9.9.9"):
        table.logged([log(1, "ARI0|pro/kns.x", src, "10.0.0.2")], 100.0)
    found = {
        (f.key.source_name, f.key.source_namespace, f.key.source_type)
        for f in table.flush(named, 90, 105.0)
    }
    assert found == {
        ("node2", "-", EndpointType.HOST),
        ("offices", "-", EndpointType.NETWORK_SET),
        ("pub", "-", EndpointType.NETWORK),
        ("pvt", "-", EndpointType.NETWORK),
    }


def test_a_tier_of_staged_policies_only_passes_with_the_staged_policy_as_trigger() -> None:
    tiers = {**TIERS, "audit": calc.Tier("audit", 50)}
    found = staged_policy(
        normalize({"apiVersion": "projectcalico.org/v3", "kind": "StagedGlobalNetworkPolicy",
                   "metadata": {"name": "audit.all"},
                   "spec": {"tier": "audit", "selector": "all()", "ingress": [{"action": "Deny"}]}})
    )  # fmt: skip
    assert found is not None
    enforced = calc.Inputs(ENDPOINTS, [], PROFILES, tiers)
    state = with_staged_tiers(
        calc.Calculator("node1").calculate(enforced), [A, B], [found], tiers
    )
    named = flow_view.build("node1", ENDPOINTS, {}, [], state, [found], tiers)
    table = FlowTable(PrefixTable())
    table.logged([log(1, "PPI|audit", "10.0.2.1", "10.0.0.2"),
                  log(1, "ARI0|pro/kns.x", "10.0.2.1", "10.0.0.2")], 100.0)  # fmt: skip
    [flow] = table.flush(named, 90, 105.0)
    tier_end, profile = flow.key.policies.enforced
    assert (tier_end.kind, tier_end.tier, tier_end.action) == (
        PolicyKind.END_OF_TIER, "audit", Action.PASS,
    )  # fmt: skip
    assert tier_end.trigger is not None
    assert (tier_end.trigger.kind, tier_end.trigger.name) == (
        PolicyKind.STAGED_GLOBAL_NETWORK_POLICY, "audit.all",
    )  # fmt: skip
    assert (profile.kind, profile.policy_index, flow.key.action) == (
        PolicyKind.PROFILE, 1, Action.ALLOW,
    )  # fmt: skip


def test_a_connection_key_is_evaluated_as_its_packet_with_ports_except_for_icmp() -> None:
    tcp = packet_of((6, _ip("10.0.0.1"), _ip("10.0.0.2"), 40000, 80))
    assert (str(tcp.src), str(tcp.dst), tcp.protocol, tcp.src_port, tcp.dst_port) == (
        "10.0.0.1", "10.0.0.2", 6, 40000, 80,
    )  # fmt: skip
    icmp = packet_of((1, _ip("10.0.0.1"), _ip("10.0.0.2"), 0, 0))
    assert (icmp.protocol, icmp.src_port, icmp.dst_port) == (1, None, None)


def _denied_from_remote() -> FlowTable:
    table = FlowTable(PrefixTable())
    table.logged([log(1, "DPI|default", "10.0.2.1", "10.0.0.2")], 100.0)
    return table


def test_without_staged_policies_a_pending_trace_is_the_enforced_one_hit_for_hit() -> None:
    table = _denied_from_remote()
    named = view(DENY_DB)
    evaluate = PendingEvaluator(inputs(DENY_DB, endpoints=ENDPOINTS))
    assert table.evaluate_pending(named, evaluate, 100.0, 12.0) == 1
    [flow] = table.flush(named, 90, 105.0)
    assert flow.key.policies.pending == flow.key.policies.enforced
    assert flow.key.policies.pending[0].kind == PolicyKind.END_OF_TIER


def test_a_staged_allow_is_a_pending_allow_next_to_the_enforced_deny() -> None:
    table = _denied_from_remote()
    opened = staged_policy(
        normalize({"apiVersion": "projectcalico.org/v3", "kind": "StagedNetworkPolicy",
                   "metadata": {"name": "open-db", "namespace": "x"},
                   "spec": {"selector": "app == 'db'", "ingress": [{"action": "Allow"}]}})
    )  # fmt: skip
    assert opened is not None
    given = replace(inputs(DENY_DB, endpoints=ENDPOINTS), staged_policies=[opened])
    table.evaluate_pending(view(DENY_DB), PendingEvaluator(given), 100.0, 12.0)
    [flow] = table.flush(view(DENY_DB), 90, 105.0)
    [hit] = flow.key.policies.pending
    assert (hit.kind, hit.namespace, hit.name, hit.tier, hit.action, hit.policy_index) == (
        PolicyKind.STAGED_NETWORK_POLICY, "x", "open-db", "default", Action.ALLOW, 0,
    )  # fmt: skip
    assert flow.key.action == Action.DENY


def test_a_pending_trace_is_evaluated_when_new_then_again_once_every_period() -> None:
    table = _denied_from_remote()
    named = view(DENY_DB)
    evaluate = PendingEvaluator(inputs(DENY_DB, endpoints=ENDPOINTS))
    assert table.evaluate_pending(named, evaluate, 100.0, 12.0) == 1
    assert table.evaluate_pending(named, evaluate, 111.0, 12.0) == 0
    assert table.evaluate_pending(named, evaluate, 112.0, 12.0) == 1


def test_a_connection_that_ends_before_its_first_evaluation_still_gets_its_pending_trace() -> None:
    table = FlowTable(PrefixTable())
    table.logged([log(2, "ARE0|pro/kns.x", "10.0.0.1", "10.0.0.2")], 100.0)
    table.dumped([entry("10.0.0.1", "10.0.0.2", (5, 500, 4, 4000), state=7)])  # time-wait
    named = view()
    evaluate = PendingEvaluator(inputs(endpoints=ENDPOINTS))
    assert table.evaluate_pending(named, evaluate, 100.5, 12.0) == 1
    assert table.evaluate_pending(named, evaluate, 101.0, 12.0) == 0  # once, not every tick
    flows = table.flush(named, 90, 105.0)
    assert flows and all(flow.key.policies.pending for flow in flows)
    assert all(flow.num_connections_completed == 1 for flow in flows)

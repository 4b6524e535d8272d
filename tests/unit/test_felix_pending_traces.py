"""Pending traces: staged policies with stagedAction Set evaluated as if enforced, next to
the enforced ones, hit by hit; other staged actions never."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any

import pytest

from pycalico.api.resource import normalize
from pycalico.felix.collector.pending import PendingEvaluator, staged_policy
from pycalico.flows.record import Action, PolicyKind
from tests.unit.test_policy_calc import A, B, inputs, pol


def staged(kind: str, name: str, spec: dict[str, Any], ns: str | None = "x") -> Any:
    meta: dict[str, Any] = {"name": name, **({"namespace": ns} if ns else {})}
    doc = {"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": meta, "spec": spec}
    return staged_policy(normalize(doc))


def key(src: Any, dst: Any, port: int = 80, proto: int = 6) -> tuple[int, bytes, bytes, int, int]:
    def packed(ep: Any) -> bytes:
        return ipaddress.ip_network(ep.addresses[0]).network_address.packed

    return (proto, packed(src), packed(dst), 40000, port)


DENY_WEB = {"selector": "app == 'web'", "types": ["Ingress"], "ingress": [{"action": "Deny"}]}


def test_without_staged_policies_the_pending_trace_is_the_enforced_walk() -> None:
    hits = PendingEvaluator(inputs(), [])(A, "ingress", key(B, A))
    assert [(h.kind, h.name, h.action, h.rule_index) for h in hits] == [
        (PolicyKind.PROFILE, "kns.x", Action.ALLOW, 0)
    ]


def test_a_staged_deny_is_a_pending_deny_under_its_staged_kind() -> None:
    found = staged("StagedNetworkPolicy", "lockdown", DENY_WEB)
    [hit] = PendingEvaluator(inputs(), [found])(A, "ingress", key(B, A))
    assert (hit.kind, hit.namespace, hit.name) == (
        PolicyKind.STAGED_NETWORK_POLICY, "x", "lockdown",
    )  # fmt: skip
    assert (hit.action, hit.rule_index, hit.policy_index, hit.tier) == (
        Action.DENY, 0, 0, "default",
    )  # fmt: skip


def test_a_staged_policy_that_matches_no_rule_ends_its_tier_as_if_enforced() -> None:
    only_db = {"selector": "app == 'web'", "ingress": [{"action": "Allow", "protocol": "UDP"}]}
    found = staged("StagedGlobalNetworkPolicy", "udp-only", only_db, ns=None)
    [hit] = PendingEvaluator(inputs(), [found])(A, "ingress", key(B, A))
    assert hit.kind == PolicyKind.END_OF_TIER and hit.action == Action.DENY
    assert hit.trigger is not None
    assert (hit.trigger.kind, hit.trigger.name) == (
        PolicyKind.STAGED_GLOBAL_NETWORK_POLICY, "udp-only",
    )  # fmt: skip


def test_a_staged_kubernetes_policy_is_named_by_its_own_name() -> None:
    found = staged(
        "StagedKubernetesNetworkPolicy",
        "web",
        {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]},
    )
    pod = replace(A, labels={**A.labels, "projectcalico.org/orchestrator": "k8s"})
    [hit] = PendingEvaluator(inputs(endpoints=[pod, B]), [found])(pod, "ingress", key(B, pod))
    assert hit.kind == PolicyKind.END_OF_TIER and hit.trigger is not None
    assert (hit.trigger.kind, hit.trigger.name) == (
        PolicyKind.STAGED_KUBERNETES_NETWORK_POLICY, "web",
    )  # fmt: skip


def test_an_enforced_allow_ahead_of_a_staged_deny_still_allows() -> None:
    allow = pol("NetworkPolicy", "first", {"order": 1, "selector": "app == 'web'",
                                           "ingress": [{"action": "Allow"}]}, ns="x")  # fmt: skip
    found = staged("StagedNetworkPolicy", "lockdown", {**DENY_WEB, "order": 2})
    [hit] = PendingEvaluator(inputs(allow), [found])(A, "ingress", key(B, A))
    assert (hit.kind, hit.name, hit.action) == (
        PolicyKind.CALICO_NETWORK_POLICY, "first", Action.ALLOW,
    )  # fmt: skip


def test_a_pass_leaves_the_tier_and_is_a_hit_of_its_own() -> None:
    spec = {"selector": "app == 'web'", "types": ["Egress"], "egress": [{"action": "Pass"}]}
    passing = staged("StagedNetworkPolicy", "pass", spec)
    hits = PendingEvaluator(inputs(), [passing])(A, "egress", key(A, B))
    assert [(h.kind, h.action, h.policy_index) for h in hits] == [
        (PolicyKind.STAGED_NETWORK_POLICY, Action.PASS, 0),
        (PolicyKind.PROFILE, Action.ALLOW, 1),
    ]


@pytest.mark.parametrize("action", ["Delete", "Learn", "Ignore"])
def test_only_staged_action_set_is_evaluated(action: str) -> None:
    spec = {"stagedAction": action} if action == "Delete" else {**DENY_WEB, "stagedAction": action}
    assert staged("StagedNetworkPolicy", "lockdown", spec) is None

"""Pending traces: what policy would do to an observed connection were the staged policies
enforced (pure; reference flows.md §6, Calico's StagedAsEnforced policy check).

Staged policies with `stagedAction: Set` (or none) join the enforced ones, each in its own
tier at its own order, as if enforced; staged Delete, Learn and Ignore entries do not (OSS
Felix is not sent Delete, and has no code path for the other two). Then the local
endpoint's policy is walked in one direction, as the dataplane would: tiers in order, a
policy's rules in order (Log decides nothing, Pass leaves the tier), a tier's end, the
profiles, their end. Every deciding step is a hit, numbered by its position, the same shape
as the enforced trace read from NFLOG (traces.py), so the two can be compared hit by hit.

`flowLogsPolicyEvaluationMode: None` turns this off (the collector never calls it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pycalico.api.staged import STAGED_KINDS
from pycalico.felix.collector.flow_table import Key
from pycalico.felix.rules import nflog
from pycalico.flows import naming
from pycalico.flows.naming import PolicyRef
from pycalico.flows.record import Action, PolicyHit, PolicyKind
from pycalico.kube.conversions import network_policy
from pycalico.policy import calc, model, verdict
from pycalico.policy.model import Endpoint, Policy, Rule

END_OF_TIER_RULE = -1
STAGED_ID_PREFIX = "staged:"  # a staged policy's id, apart from an enforced one's of its name
_ACTIONS = {"Allow": Action.ALLOW, "Deny": Action.DENY, "Pass": Action.PASS}


@dataclass(frozen=True)
class Staged:
    """A staged policy as the calculation sees it (as if enforced) and as a trace names it."""

    policy: Policy
    ref: PolicyRef


def staged_policy(resource: Mapping[str, Any]) -> Staged | None:
    """A stored staged policy's model; None unless its stagedAction is Set."""
    kind, meta, spec = resource["kind"], resource["metadata"], dict(resource["spec"])
    if kind not in STAGED_KINDS or spec.pop("stagedAction", "Set") != "Set":
        return None
    namespace = meta.get("namespace", "")
    if kind == "StagedKubernetesNetworkPolicy":
        doc = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": meta["name"], "namespace": namespace},
            "spec": spec,
        }
        enforced = model.policy(network_policy(doc))
        name = meta["name"]
    else:
        as_kind = "NetworkPolicy" if kind == "StagedNetworkPolicy" else "GlobalNetworkPolicy"
        enforced = model.policy({**resource, "kind": as_kind, "spec": spec})
        name = enforced.name
    ref = naming.policy_ref(kind, name, namespace, enforced.tier)
    return Staged(replace(enforced, id=STAGED_ID_PREFIX + enforced.id), ref)


def _walk_rules(
    rules: Sequence[Rule], packet: verdict.Packet, matcher: verdict.Matcher
) -> tuple[str, int] | None:
    for index, rule in enumerate(rules):
        if rule.action != "Log" and matcher.rule(rule, packet):
            return rule.action, index
    return None


def packet_of(key: Key) -> verdict.Packet:
    proto, src, dst, sport, dport = key
    ports = proto not in (1, 58)
    return verdict.Packet(
        ipaddress.ip_address(src),
        ipaddress.ip_address(dst),
        proto,
        dst_port=dport if ports else None,
        src_port=sport if ports else None,
    )


class PendingEvaluator:
    """Evaluates connections against one set of inputs (build a new one when they change):
    endpoints' plans and selector memberships are worked out once and kept."""

    def __init__(self, inputs: calc.Inputs, staged: Iterable[Staged]) -> None:
        staged = list(staged)
        self._ordered = calc.ordered([*inputs.policies, *(s.policy for s in staged)], inputs.tiers)
        self._tiers = inputs.tiers
        self._scoped = calc.Scoped.of(self._ordered)
        self._policies = {p.id: p for p in self._ordered}
        self._refs = {p.id: nflog.policy_ref(p) for p in inputs.policies}
        self._refs.update((s.policy.id, s.ref) for s in staged)
        self._profiles = inputs.profiles
        self._matcher = verdict.Matcher(inputs)
        self._plans: dict[str, calc.EndpointPlan] = {}

    def _plan(self, ep: Endpoint) -> calc.EndpointPlan:
        found = self._plans.get(ep.key)
        if found is None:
            found = self._plans[ep.key] = calc.plan(ep, self._ordered, self._tiers, self._scoped)
        return found

    def _hit(self, policy_id: str, action: str, rule: int, index: int) -> PolicyHit:
        ref = self._refs[policy_id]
        return PolicyHit(ref.kind, ref.name, ref.namespace, ref.tier, _ACTIONS[action], index, rule)

    def _trigger(self, policy_id: str) -> PolicyHit:
        ref = self._refs[policy_id]
        return PolicyHit(ref.kind, ref.name, ref.namespace, ref.tier, Action.UNSPECIFIED, 0, 0)

    def __call__(self, ep: Endpoint, direction: str, key: Key) -> tuple[PolicyHit, ...]:
        packet = packet_of(key)
        plan = self._plan(ep)
        hits: list[PolicyHit] = []
        for tier in plan.ingress if direction == "ingress" else plan.egress:
            passed = False
            for policy_id in tier.policies:
                rules = getattr(self._policies[policy_id], direction) or ()
                found = _walk_rules(rules, packet, self._matcher)
                if found is None:
                    continue
                action, rule = found
                hits.append(self._hit(policy_id, action, rule, len(hits)))
                if action != "Pass":
                    return tuple(hits)
                passed = True
                break
            if passed:
                continue
            end = Action.DENY if tier.default_action == "Deny" else Action.PASS
            hits.append(
                PolicyHit(
                    PolicyKind.END_OF_TIER, "", "", tier.tier, end, len(hits), END_OF_TIER_RULE,
                    self._trigger(tier.policies[0]),
                )
            )  # fmt: skip
            if end == Action.DENY:
                return tuple(hits)
        for name in plan.profiles:
            profile = self._profiles.get(name)
            if profile is None:
                continue
            found = _walk_rules(getattr(profile, direction), packet, self._matcher)
            if found is not None and found[0] in ("Allow", "Deny"):
                action, rule = found
                hits.append(
                    PolicyHit(PolicyKind.PROFILE, name, "", "", _ACTIONS[action], len(hits), rule)
                )
                return tuple(hits)
        trigger = next(
            (
                PolicyHit(PolicyKind.PROFILE, name, "", "", Action.UNSPECIFIED, 0, 0)
                for name in plan.profiles
            ),
            None,
        )
        hits.append(
            PolicyHit(
                PolicyKind.END_OF_TIER, "", "", "", Action.DENY, len(hits), END_OF_TIER_RULE,
                trigger,
            )
        )  # fmt: skip
        return tuple(hits)

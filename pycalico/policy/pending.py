"""Staged policies evaluated as if enforced (pure): the pending trace of flow logs, and the
staged verdict `calicoctl policy explain` shows (reference flows.md §6).

A staged policy (StagedNetworkPolicy, StagedGlobalNetworkPolicy,
StagedKubernetesNetworkPolicy) becomes the policy it would be once enforced: the enforced
kind's spec, a Kubernetes one converted as kube-controllers converts a NetworkPolicy. It
keeps its tier and order and joins the enforced policies there (`calc.Inputs.
staged_policies`, `Inputs.staged_as_enforced()`); it is never rendered into the dataplane.

Which are evaluated is what Calico's open-source Felix is sent: every staged policy but a
`stagedAction: Delete` one (libcalico-go's staged update processors drop Delete entries
and pass the rest on; Felix's StagedAsEnforced check never looks at stagedAction, so Learn
and Ignore are evaluated exactly as Set).

The pending trace is Calico's StagedAsEnforced check (app-policy/checker) for one local
workload endpoint in one direction: tiers in order, a policy's rules in order (Log decides
nothing), a Pass leaving the tier, a tier no policy decided ending in its default action
(an EndOfTier hit whose trigger is the tier's first policy), then the profiles (a Pass
there moves on to the next profile, as the dataplane's profile chains do) and their end.
Every deciding step is a hit numbered by its position, named as Goldmane names policies
(flows/naming.py): the shape of the enforced trace Felix reads from NFLOG
(felix/collector/traces.py), so that a flow's two traces compare hit by hit. Felix's flow
collector evaluates its connections here (when, is the collector's; never with
`flowLogsPolicyEvaluationMode: None`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pycalico.flows import naming
from pycalico.flows.record import Action, PolicyHit, PolicyKind
from pycalico.kube.conversions import network_policy
from pycalico.policy import calc, model, verdict
from pycalico.policy.model import Endpoint, Policy

STAGED_KINDS = {
    "StagedNetworkPolicy": "NetworkPolicy",
    "StagedGlobalNetworkPolicy": "GlobalNetworkPolicy",
    "StagedKubernetesNetworkPolicy": "NetworkPolicy",
}
# Every stagedAction but Delete reaches Calico's Felix (see above).
EVALUATED_STAGED_ACTIONS = ("Set", "Learn", "Ignore")
END_OF_TIER_RULE = -1
_ACTIONS = {"Allow": Action.ALLOW, "Deny": Action.DENY, "Pass": Action.PASS}


def staged_policy(resource: Mapping[str, Any]) -> Policy | None:
    """A stored staged policy as the policy it would be once enforced (its `kind` still the
    staged one, its id `<shortkind>:<tier>/[<namespace>/]<name>`, apart from any enforced
    policy's); None when it is not evaluated (stagedAction Delete)."""
    kind, meta = resource["kind"], resource["metadata"]
    spec = dict(resource.get("spec") or {})
    if spec.pop("stagedAction", "Set") not in EVALUATED_STAGED_ACTIONS:
        return None
    if kind == "StagedKubernetesNetworkPolicy":
        enforced = model.policy(
            network_policy(
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                    "spec": spec,
                }
            )
        )
    else:
        enforced = model.policy({**resource, "kind": STAGED_KINDS[kind], "spec": spec})
    ref = naming.policy_ref(kind, meta["name"], meta.get("namespace", ""), enforced.tier)
    scope = f"{enforced.namespace}/" if enforced.namespace is not None else ""
    short = naming.SHORT_KINDS[ref.kind]
    return replace(
        enforced, id=f"{short}:{enforced.tier}/{scope}{meta['name']}", name=ref.name, kind=kind
    )


def is_staged(policy: Policy) -> bool:
    return policy.kind in STAGED_KINDS


def policy_ref(policy: Policy) -> naming.PolicyRef:
    """How a flow's trace names a policy, enforced or staged (a Kubernetes NetworkPolicy,
    stored as `knp.default.<name>`, as kind NetworkPolicy under its own name)."""
    kind = policy.kind
    if not is_staged(policy):
        kind = "NetworkPolicy" if policy.namespace is not None else "GlobalNetworkPolicy"
    return naming.policy_ref(kind, policy.name, policy.namespace or "", policy.tier)


def _named(ref: naming.PolicyRef, action: Action, index: int, rule: int) -> PolicyHit:
    return PolicyHit(ref.kind, ref.name, ref.namespace, ref.tier, action, index, rule)


class PendingEvaluator:
    """The pending trace of connections, against one set of inputs (make a new evaluator when
    they change): the policy order, each endpoint's plan and every selector's members are
    worked out once and kept."""

    def __init__(self, inputs: calc.Inputs) -> None:
        enforced = inputs.staged_as_enforced()
        self._ordered = calc.ordered(enforced.policies, enforced.tiers)
        self._scoped = calc.Scoped.of(self._ordered)
        self._policies = {p.id: p for p in self._ordered}
        self._refs: dict[str, naming.PolicyRef] = {}
        self._tiers = inputs.tiers
        self._profiles = inputs.profiles
        self._matcher = verdict.Matcher(enforced)
        self._plans: dict[str, calc.EndpointPlan] = {}

    def _plan(self, ep: Endpoint) -> calc.EndpointPlan:
        found = self._plans.get(ep.key)
        if found is None:
            found = calc.plan(ep, self._ordered, self._tiers, self._scoped)
            self._plans[ep.key] = found
        return found

    def _ref(self, policy_id: str) -> naming.PolicyRef:
        found = self._refs.get(policy_id)
        if found is None:
            found = self._refs[policy_id] = policy_ref(self._policies[policy_id])
        return found

    def __call__(
        self, ep: Endpoint, direction: str, packet: verdict.Packet
    ) -> tuple[PolicyHit, ...]:
        """The hits of `packet` at `ep` (a workload) in `direction` ("ingress" when `ep` is
        the destination, "egress" when it is the source), in the order they act."""
        plan = self._plan(ep)
        hits: list[PolicyHit] = []
        for tier in plan.ingress if direction == "ingress" else plan.egress:
            decided = None
            for policy_id in tier.policies:
                rules = getattr(self._policies[policy_id], direction) or ()
                found = verdict.first_match(rules, packet, self._matcher)
                if found is not None:
                    decided = (policy_id, *found)
                    break
            if decided is not None:
                policy_id, action, rule = decided
                hits.append(_named(self._ref(policy_id), _ACTIONS[action], len(hits), rule))
                if action != "Pass":
                    return tuple(hits)
                continue
            end = Action.DENY if tier.default_action == "Deny" else Action.PASS
            trigger = _named(self._ref(tier.policies[0]), Action.UNSPECIFIED, 0, 0)
            hits.append(
                PolicyHit(
                    PolicyKind.END_OF_TIER, "", "", tier.tier, end, len(hits),
                    END_OF_TIER_RULE, trigger,
                )
            )  # fmt: skip
            if end == Action.DENY:
                return tuple(hits)
        for name in plan.profiles:
            profile = self._profiles.get(name)
            if profile is None:
                continue
            found = verdict.first_match(getattr(profile, direction), packet, self._matcher)
            if found is not None and found[0] in ("Allow", "Deny"):
                action, rule = found
                hits.append(
                    PolicyHit(PolicyKind.PROFILE, name, "", "", _ACTIONS[action], len(hits), rule)
                )
                return tuple(hits)
        first = plan.profiles[0] if plan.profiles else None
        trigger = (
            None
            if first is None
            else PolicyHit(PolicyKind.PROFILE, first, "", "", Action.UNSPECIFIED, 0, 0)
        )
        hits.append(
            PolicyHit(
                PolicyKind.END_OF_TIER, "", "", "", Action.DENY, len(hits), END_OF_TIER_RULE,
                trigger,
            )
        )  # fmt: skip
        return tuple(hits)


def pending_policy_hits(
    inputs: calc.Inputs, ep: Endpoint, direction: str, packet: verdict.Packet
) -> tuple[PolicyHit, ...]:
    """One connection's pending trace (Goldmane's `pending_policies`): what policy would do
    to `packet` at the local workload `ep` in `direction` were `inputs.staged_policies`
    enforced. For many connections against the same inputs, keep a PendingEvaluator."""
    return PendingEvaluator(inputs)(ep, direction, packet)

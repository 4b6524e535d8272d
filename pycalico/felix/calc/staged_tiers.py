"""Tiers that hold only staged policies for an endpoint, as flow logs need them (pure).

Staged policies are never rendered, so a tier whose only policies for an endpoint are
staged has no place in its chain; with flow logs on, Calico's Felix still ends such a tier
with an NFLOG pass (`PPI|<tier>`, reference flows.md §5), so that the enforced trace says
the tier was passed. Such tiers join the endpoint's plan here with no policies and a Pass
end: rendered, they are the tier's end alone, and traffic carries on as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pycalico.policy import calc
from pycalico.policy.model import Endpoint, Policy


def _merged(
    enforced: tuple[calc.TierPlan, ...],
    staged: tuple[calc.TierPlan, ...],
    tiers: Mapping[str, calc.Tier],
) -> tuple[calc.TierPlan, ...]:
    have = {t.tier for t in enforced}
    extra = [calc.TierPlan(t.tier, (), "Pass") for t in staged if t.tier not in have]
    if not extra:
        return enforced
    return tuple(sorted((*enforced, *extra), key=lambda t: (tiers[t.tier].order, t.tier)))


def with_staged_tiers(
    state: calc.PolicyState,
    endpoints: Sequence[Endpoint],
    staged: Sequence[Policy],
    tiers: Mapping[str, calc.Tier],
) -> calc.PolicyState:
    """`state` with each local endpoint's staged-only tiers added to its plan (a new state;
    plans without any stay the same objects)."""
    ordered = calc.ordered(staged, tiers)
    if not ordered:
        return state
    scoped = calc.Scoped.of(ordered)
    plans = dict(state.endpoints)
    for ep in endpoints:
        current = plans.get(ep.interface)
        if current is None:
            continue
        found = calc.plan(ep, ordered, tiers, scoped)
        ingress = _merged(current.ingress, found.ingress, tiers)
        egress = _merged(current.egress, found.egress, tiers)
        if ingress is not current.ingress or egress is not current.egress:
            plans[ep.interface] = calc.EndpointPlan(
                current.interface, ingress, egress, current.profiles
            )
    return calc.PolicyState(
        endpoints=plans,
        host_endpoints=state.host_endpoints,
        policies=state.policies,
        profiles=state.profiles,
        selector_sets=state.selector_sets,
        named_ports=state.named_ports,
        ipv6=state.ipv6,
    )

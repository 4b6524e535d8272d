"""The policy calculation (pure): which policies apply to which local endpoint, in what
order, and which addresses every selector in their rules stands for.

The dataplane renders exactly this (policy/nft.py), and `calicoctl policy explain` walks
exactly this (policy/verdict.py), so the two cannot disagree about what applies.

Order (reference policy-dataplane.md §4): tiers by their `order`; inside a tier policies
by `order` (none = last), then name. A tier counts for a direction only when at least one
of its policies applies to the endpoint in that direction; then traffic no policy allows
or passes is dropped at the end of the tier (or passed on, for a tier whose
defaultAction is Pass). With no applicable policy at all, the endpoint's profiles decide.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pycalico.policy.model import (
    Endpoint,
    EntitySelector,
    NetworkSet,
    Policy,
    Profile,
    Rule,
    selects,
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_TIER_ORDER = 1_000_000.0


@dataclass(frozen=True)
class Tier:
    name: str
    order: float
    default_action: str = "Deny"  # or "Pass"


@dataclass(frozen=True)
class TierPlan:
    tier: str
    policies: tuple[str, ...]  # policy ids, in evaluation order
    default_action: str


@dataclass(frozen=True)
class EndpointPlan:
    interface: str
    ingress: tuple[TierPlan, ...]
    egress: tuple[TierPlan, ...]
    profiles: tuple[str, ...]


@dataclass(frozen=True)
class NamedPortKey:
    selector: EntitySelector | None  # None: every endpoint
    protocol: int
    name: str


@dataclass
class PolicyState:
    endpoints: dict[str, EndpointPlan] = field(default_factory=dict)  # by interface
    policies: dict[str, Policy] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    selector_sets: dict[EntitySelector, frozenset[Network]] = field(default_factory=dict)
    named_ports: dict[NamedPortKey, frozenset[tuple[Network, int, int]]] = field(
        default_factory=dict
    )


@dataclass
class Inputs:
    endpoints: Sequence[Endpoint]
    policies: Sequence[Policy]
    profiles: Mapping[str, Profile]
    tiers: Mapping[str, Tier]
    network_sets: Sequence[NetworkSet] = ()


def ordered(policies: Iterable[Policy], tiers: Mapping[str, Tier]) -> list[Policy]:
    known = [p for p in policies if p.tier in tiers]
    return sorted(known, key=lambda p: (tiers[p.tier].order, p.tier, *p.sort_key()))


def plan(ep: Endpoint, policies: Sequence[Policy], tiers: Mapping[str, Tier]) -> EndpointPlan:
    """`policies` must already be `ordered`."""
    directions: dict[str, list[TierPlan]] = {"ingress": [], "egress": []}
    applicable = [p for p in policies if selects(p, ep)]
    for direction, plans in directions.items():
        current: list[str] = []
        tier_name = None
        for p in applicable:
            if getattr(p, direction) is None:
                continue
            if p.tier != tier_name:
                if current and tier_name is not None:
                    plans.append(
                        TierPlan(tier_name, tuple(current), tiers[tier_name].default_action)
                    )
                tier_name, current = p.tier, []
            current.append(p.id)
        if current and tier_name is not None:
            plans.append(TierPlan(tier_name, tuple(current), tiers[tier_name].default_action))
    return EndpointPlan(
        ep.interface, tuple(directions["ingress"]), tuple(directions["egress"]), ep.profiles
    )


def rule_selectors(rules: Iterable[Rule]) -> set[EntitySelector]:
    found = set()
    for r in rules:
        for entity in (r.source, r.destination):
            for sel in (entity.selector, entity.not_selector):
                if sel is not None:
                    found.add(sel)
    return found


def named_port_keys(rules: Iterable[Rule]) -> set[NamedPortKey]:
    found = set()
    for r in rules:
        for entity in (r.source, r.destination):
            for name in entity.ports.names + entity.not_ports.names:
                found.add(NamedPortKey(entity.selector, r.protocol or 6, name))
    return found


def members(
    sel: EntitySelector, endpoints: Sequence[Endpoint], network_sets: Sequence[NetworkSet]
) -> frozenset[Network]:
    found: set[Network] = set()
    for ep in endpoints:
        if sel.matches(ep.labels, ep.namespace, ep.namespace_labels, ep.sa_labels):
            found.update(ep.addresses)
    for ns in network_sets:
        if sel.matches(ns.labels, ns.namespace, ns.namespace_labels):
            found.update(ns.nets)
    return frozenset(found)


def named_port_members(
    key: NamedPortKey, endpoints: Sequence[Endpoint]
) -> frozenset[tuple[Network, int, int]]:
    found = set()
    for ep in endpoints:
        if key.selector is not None and not key.selector.matches(
            ep.labels, ep.namespace, ep.namespace_labels, ep.sa_labels
        ):
            continue
        for name, protocol, port in ep.ports:
            if name == key.name and protocol == key.protocol:
                found.update((address, protocol, port) for address in ep.addresses)
    return frozenset(found)


def _rules(p: Policy | Profile) -> list[Rule]:
    return [*(p.ingress or ()), *(p.egress or ())]


def calculate(node: str, inputs: Inputs) -> PolicyState:
    """The policy state of `node`: plans for its endpoints and every set their rules use."""
    policies = ordered(inputs.policies, inputs.tiers)
    by_id = {p.id: p for p in policies}
    state = PolicyState()
    for ep in inputs.endpoints:
        if ep.node != node or not ep.interface:
            continue
        current = plan(ep, policies, inputs.tiers)
        state.endpoints[ep.interface] = current
        for tier in current.ingress + current.egress:
            for policy_id in tier.policies:
                state.policies[policy_id] = by_id[policy_id]
        for name in current.profiles:
            if name in inputs.profiles:
                state.profiles[name] = inputs.profiles[name]
    used = [*state.policies.values(), *state.profiles.values()]
    for sel in set().union(*(rule_selectors(_rules(p)) for p in used)):
        state.selector_sets[sel] = members(sel, inputs.endpoints, inputs.network_sets)
    for key in set().union(*(named_port_keys(_rules(p)) for p in used)):
        state.named_ports[key] = named_port_members(key, inputs.endpoints)
    return state

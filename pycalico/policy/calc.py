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

from pycalico.policy.identity_memo import IdentityMemo
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
PLAN_MEMO_LIMIT = 20_000
USES_MEMO_LIMIT = 50_000


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


def _token(ep: Endpoint) -> tuple[object, ...]:
    """Everything about an endpoint that decides what applies to it and what it matches."""
    return (
        ep.namespace,
        frozenset(ep.labels.items()),
        frozenset(ep.namespace_labels.items()),
        frozenset(ep.sa_labels.items()),
        ep.profiles,
    )


@dataclass(frozen=True)
class _Uses:
    selectors: frozenset[EntitySelector]
    named_ports: frozenset[NamedPortKey]


@dataclass
class Calculator:
    """`calculate`, remembering its work between calls so a small change costs little.

    Plans are kept per endpoint content while the policies stay the same objects (the
    inputs reader hands back the same objects for unchanged resources); which rule
    selectors each endpoint matches is kept per endpoint content, so a label change
    evaluates that one endpoint against the selectors, and a new selector is evaluated
    against every endpoint once.
    """

    node: str
    _policies: tuple[Policy, ...] = ()
    _tiers: dict[str, Tier] = field(default_factory=dict)
    _plans: dict[tuple[object, ...], EndpointPlan] = field(default_factory=dict)
    _selectors: frozenset[EntitySelector] = frozenset()
    _matched: dict[str, tuple[tuple[object, ...], frozenset[EntitySelector]]] = field(
        default_factory=dict
    )
    # The selectors and named ports each policy's or profile's rules use.
    _uses: IdentityMemo[Policy | Profile, _Uses] = field(
        default_factory=lambda: IdentityMemo(USES_MEMO_LIMIT)
    )

    def _uses_of(self, item: Policy | Profile) -> _Uses:
        return self._uses.get(
            item,
            lambda it: _Uses(
                frozenset(rule_selectors(_rules(it))), frozenset(named_port_keys(_rules(it)))
            ),
        )

    def _same_policies(self, policies: list[Policy], tiers: Mapping[str, Tier]) -> bool:
        return (
            len(policies) == len(self._policies)
            and all(a is b for a, b in zip(policies, self._policies, strict=True))
            and dict(tiers) == self._tiers
        )

    def _plan(
        self,
        ep: Endpoint,
        token: tuple[object, ...],
        policies: list[Policy],
        tiers: Mapping[str, Tier],
    ) -> EndpointPlan:
        found = self._plans.get(token)
        if found is None:
            if len(self._plans) > PLAN_MEMO_LIMIT:
                self._plans.clear()  # label churn: forget old combinations, keep memory flat
            found = self._plans[token] = plan(ep, policies, tiers)
        return EndpointPlan(ep.interface, found.ingress, found.egress, found.profiles)

    def _update_matches(
        self,
        endpoints: Sequence[Endpoint],
        tokens: Mapping[str, tuple[object, ...]],
        selectors: frozenset[EntitySelector],
    ) -> None:
        added = selectors - self._selectors
        for ep in endpoints:
            token = tokens[ep.key]
            known = self._matched.get(ep.key)
            if known is None or known[0] != token:
                chosen = selectors
                matched: set[EntitySelector] = set()
            else:
                chosen = added
                matched = set(known[1] & selectors)
            for sel in chosen:
                if sel.matches(ep.labels, ep.namespace, ep.namespace_labels, ep.sa_labels):
                    matched.add(sel)
            self._matched[ep.key] = (token, frozenset(matched))
        for key in self._matched.keys() - tokens.keys():
            del self._matched[key]
        self._selectors = selectors

    def calculate(self, inputs: Inputs) -> PolicyState:
        policies = ordered(inputs.policies, inputs.tiers)
        if not self._same_policies(policies, inputs.tiers):
            self._policies, self._tiers, self._plans = tuple(policies), dict(inputs.tiers), {}
        by_id = {p.id: p for p in policies}
        tokens = {ep.key: _token(ep) for ep in inputs.endpoints}
        state = PolicyState()
        for ep in inputs.endpoints:
            if ep.node != self.node or not ep.interface:
                continue
            current = self._plan(ep, tokens[ep.key], policies, inputs.tiers)
            state.endpoints[ep.interface] = current
            for tier in current.ingress + current.egress:
                for policy_id in tier.policies:
                    state.policies[policy_id] = by_id[policy_id]
            for name in current.profiles:
                if name in inputs.profiles:
                    state.profiles[name] = inputs.profiles[name]
        everything = [*policies, *inputs.profiles.values()]
        self._update_matches(
            inputs.endpoints,
            tokens,
            frozenset().union(*(self._uses_of(p).selectors for p in everything)),
        )
        used = [self._uses_of(p) for p in (*state.policies.values(), *state.profiles.values())]
        wanted = set().union(*(u.selectors for u in used))
        found: dict[EntitySelector, set[Network]] = {sel: set() for sel in wanted}
        for ep in inputs.endpoints:
            for sel in self._matched[ep.key][1]:
                if sel in found:
                    found[sel].update(ep.addresses)
        for ns in inputs.network_sets:
            for sel in wanted:
                if sel.matches(ns.labels, ns.namespace, ns.namespace_labels):
                    found[sel].update(ns.nets)
        state.selector_sets = {sel: frozenset(nets) for sel, nets in found.items()}
        state.named_ports = self._named_ports(
            set().union(*(u.named_ports for u in used)), inputs.endpoints
        )
        return state

    def _named_ports(
        self, keys: set[NamedPortKey], endpoints: Sequence[Endpoint]
    ) -> dict[NamedPortKey, frozenset[tuple[Network, int, int]]]:
        """`named_port_members` for every key at once, from the endpoints' ports outwards and
        with the selector matches already known."""
        by_port: dict[tuple[int, str], list[NamedPortKey]] = {}
        for key in keys:
            by_port.setdefault((key.protocol, key.name), []).append(key)
        found: dict[NamedPortKey, set[tuple[Network, int, int]]] = {key: set() for key in keys}
        for ep in endpoints:
            if not ep.ports:
                continue
            matched = self._matched[ep.key][1]
            for name, protocol, port in ep.ports:
                for key in by_port.get((protocol, name), ()):
                    if key.selector is None or key.selector in matched:
                        found[key].update((address, protocol, port) for address in ep.addresses)
        return {key: frozenset(entries) for key, entries in found.items()}


def calculate(node: str, inputs: Inputs) -> PolicyState:
    """The policy state of `node`: plans for its endpoints and every set their rules use."""
    return Calculator(node).calculate(inputs)

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
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from pycalico.policy.identity_memo import IdentityMemo
from pycalico.policy.model import (
    Endpoint,
    EntitySelector,
    HostEndpoint,
    NetworkSet,
    Policy,
    Profile,
    Rule,
    selects,
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
AnyEndpoint = Endpoint | HostEndpoint
ALL_INTERFACES = "*"  # a HostEndpoint for every interface that has none of its own
WORKLOAD_PREFIX = "cali"  # workload interfaces: never a host endpoint's
DEFAULT_TIER_ORDER = 1_000_000.0
PLAN_MEMO_LIMIT = 20_000
USES_MEMO_LIMIT = 50_000
TOKEN_MEMO_LIMIT = 50_000


@dataclass(frozen=True)
class Tier:
    name: str
    order: float
    default_action: str = "Deny"  # or "Pass"


@dataclass(frozen=True, slots=True)  # a few per endpoint plan: slots, ~50 B less each
class TierPlan:
    tier: str
    policies: tuple[str, ...]  # policy ids, in evaluation order
    default_action: str


@dataclass(frozen=True, slots=True)  # one or two per endpoint: slots, ~50 B less each
class EndpointPlan:
    interface: str
    ingress: tuple[TierPlan, ...]
    egress: tuple[TierPlan, ...]
    profiles: tuple[str, ...]


@dataclass(frozen=True)
class HostEndpointPlan:
    """What applies to a host endpoint on one interface, stage by stage (reference
    host-protection.md §2, §4; Felix's event_sequencer tierInfoToProtoTierInfo): host
    traffic (normal policy, then the profiles), forwarded traffic (applyOnForward policy
    only), untracked (doNotTrack) and pre-DNAT (ingress only). The last two never drop at
    the end of a tier: normal policy still follows them."""

    name: str  # the HostEndpoint
    interface: str  # the interface it governs, or ALL_INTERFACES
    normal: EndpointPlan
    forward: EndpointPlan
    untracked: EndpointPlan
    pre_dnat: EndpointPlan

    def stages(self) -> tuple[EndpointPlan, ...]:
        return (self.normal, self.forward, self.untracked, self.pre_dnat)


@dataclass(frozen=True)
class NamedPortKey:
    selector: EntitySelector | None  # None: every endpoint
    protocol: int
    name: str


@dataclass
class PolicyState:
    endpoints: dict[str, EndpointPlan] = field(default_factory=dict)  # by interface
    # This node's active host endpoints, by the interface they govern (ALL_INTERFACES: the
    # one for every interface without its own).
    host_endpoints: dict[str, HostEndpointPlan] = field(default_factory=dict)
    policies: dict[str, Policy] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    selector_sets: dict[EntitySelector, frozenset[Network]] = field(default_factory=dict)
    named_ports: dict[NamedPortKey, frozenset[tuple[Network, int, int]]] = field(
        default_factory=dict
    )
    ipv6: bool = False  # some endpoint or network set has an IPv6 address


@dataclass
class Inputs:
    endpoints: Sequence[Endpoint]
    policies: Sequence[Policy]
    profiles: Mapping[str, Profile]
    tiers: Mapping[str, Tier]
    network_sets: Sequence[NetworkSet] = ()
    host_endpoints: Sequence[HostEndpoint] = ()
    # Staged policies (policy/pending.py): never rendered, only evaluated as if enforced.
    staged_policies: Sequence[Policy] = ()

    def all_endpoints(self) -> list[AnyEndpoint]:
        return [*self.endpoints, *self.host_endpoints]

    def staged_as_enforced(self) -> Inputs:
        """These inputs with the staged policies enforced, each in its tier at its order
        (an enforced policy goes first where the two tie)."""
        return replace(self, policies=[*self.policies, *self.staged_policies], staged_policies=())


def ordered(policies: Iterable[Policy], tiers: Mapping[str, Tier]) -> list[Policy]:
    known = [p for p in policies if p.tier in tiers]
    return sorted(known, key=lambda p: (tiers[p.tier].order, p.tier, *p.sort_key()))


def _tier_plans(
    applicable: Sequence[Policy],
    direction: str,
    tiers: Mapping[str, Tier],
    end_of_tier: str | None = None,
) -> tuple[TierPlan, ...]:
    """`applicable` (ordered) grouped into tiers for one direction; `end_of_tier` overrides
    the tiers' default actions (Pass for the untracked and pre-DNAT stages)."""
    plans: list[TierPlan] = []
    current: list[str] = []
    tier_name = None
    for p in applicable:
        if getattr(p, direction) is None:
            continue
        if p.tier != tier_name:
            if current and tier_name is not None:
                action = end_of_tier or tiers[tier_name].default_action
                plans.append(TierPlan(tier_name, tuple(current), action))
            tier_name, current = p.tier, []
        current.append(p.id)
    if current and tier_name is not None:
        action = end_of_tier or tiers[tier_name].default_action
        plans.append(TierPlan(tier_name, tuple(current), action))
    return tuple(plans)


@dataclass(frozen=True)
class Scoped:
    """The policies that may apply to workloads, in order, each with the index of its scope
    (namespace and selectors: whom it selects) among the distinct scopes: an endpoint is
    tested once per scope, not once per policy (many policies share a selector, e.g. all
    those on one host endpoint). doNotTrack and preDNAT policies apply to host endpoints
    only, as in Calico, so they are not here."""

    policies: tuple[Policy, ...]
    scope_of: tuple[int, ...]
    scopes: tuple[Policy, ...]  # one policy of each distinct scope, to test with

    @staticmethod
    def of(policies: Sequence[Policy]) -> Scoped:
        kept = [p for p in policies if not p.host_only]
        index: dict[tuple[str | None, str, str, str], int] = {}
        scopes: list[Policy] = []
        scope_of = []
        for p in kept:
            key = (p.namespace, p.selector, p.namespace_selector, p.service_account_selector)
            if key not in index:
                index[key] = len(scopes)
                scopes.append(p)
            scope_of.append(index[key])
        return Scoped(tuple(kept), tuple(scope_of), tuple(scopes))

    def applicable(self, ep: Endpoint) -> list[Policy]:
        hits = [selects(p, ep) for p in self.scopes]
        return [p for p, i in zip(self.policies, self.scope_of, strict=True) if hits[i]]


def plan(
    ep: Endpoint,
    policies: Sequence[Policy],
    tiers: Mapping[str, Tier],
    scoped: Scoped | None = None,
) -> EndpointPlan:
    """`policies` must already be `ordered`; `scoped`: Scoped.of(policies), when the caller
    keeps it."""
    applicable = (scoped or Scoped.of(policies)).applicable(ep)
    return EndpointPlan(
        ep.interface,
        _tier_plans(applicable, "ingress", tiers),
        _tier_plans(applicable, "egress", tiers),
        ep.profiles,
    )


def host_plan(
    hep: HostEndpoint, interface: str, policies: Sequence[Policy], tiers: Mapping[str, Tier]
) -> HostEndpointPlan:
    """`policies` must already be `ordered`."""
    applicable = [p for p in policies if selects(p, hep)]
    normal = [p for p in applicable if not p.host_only]
    forward = [p for p in normal if p.apply_on_forward]
    untracked = [p for p in applicable if p.do_not_track]
    pre_dnat = [p for p in applicable if p.pre_dnat]

    def stage(
        chosen: list[Policy],
        profiles: tuple[str, ...] = (),
        end: str | None = None,
        egress: bool = True,
    ) -> EndpointPlan:
        return EndpointPlan(
            interface,
            _tier_plans(chosen, "ingress", tiers, end),
            _tier_plans(chosen, "egress", tiers, end) if egress else (),
            profiles,
        )

    return HostEndpointPlan(
        hep.key,
        interface,
        stage(normal, hep.profiles),
        stage(forward),
        stage(untracked, end="Pass"),
        stage(pre_dnat, end="Pass", egress=False),
    )


def resolve_host_endpoints(
    heps: Sequence[HostEndpoint],
    node: str,
    interfaces: Mapping[str, frozenset[str]] | None,
) -> dict[str, HostEndpoint]:
    """Which of `node`'s host endpoints governs which interface (Felix's
    resolveHostEndpoints): a named one its interface, one without a name each interface
    holding one of its expectedIPs, the earliest name winning where several match; the
    all-interfaces one under ALL_INTERFACES.

    `interfaces`: the host's interfaces and their addresses (as text); None when they are
    not known (`calicoctl policy explain`), then a named one governs its name.
    """
    mine = sorted((h for h in heps if h.node == node), key=lambda h: h.key)
    specific = [h for h in mine if h.interface != ALL_INTERFACES]
    if interfaces is None:
        interfaces = {h.interface: frozenset() for h in specific if h.interface}
    found: dict[str, HostEndpoint] = {}
    for name, addresses in sorted(interfaces.items()):
        if name.startswith(WORKLOAD_PREFIX):
            continue
        for hep in specific:
            if hep.interface == name or (
                not hep.interface
                and any(str(a.network_address) in addresses for a in hep.addresses)
            ):
                found[name] = hep
                break
    wildcard = next((h for h in mine if h.interface == ALL_INTERFACES), None)
    if wildcard is not None:
        found[ALL_INTERFACES] = wildcard
    return found


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
    sel: EntitySelector, endpoints: Sequence[AnyEndpoint], network_sets: Sequence[NetworkSet]
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
    key: NamedPortKey, endpoints: Sequence[AnyEndpoint]
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


def _token(ep: AnyEndpoint) -> tuple[object, ...]:
    """Everything about an endpoint that decides what applies to it and what it matches."""
    return (
        ep.namespace,
        _flat(ep.labels),
        _flat(ep.namespace_labels),
        _flat(ep.sa_labels),
        ep.profiles,
    )


def _flat(labels: Mapping[str, str]) -> tuple[str, ...]:
    """Labels as one tuple, key, value, key, value..., by key: equal for equal labels.
    A frozenset of the items held an endpoint's token at ~1.5 KB; this is ~0.2 KB."""
    return tuple(text for key in sorted(labels) for text in (key, labels[key]))


@dataclass(frozen=True)
class _Uses:
    selectors: frozenset[EntitySelector]
    named_ports: frozenset[NamedPortKey]


PortEntry = tuple[Network, int, int]
S = TypeVar("S")
M = TypeVar("M")


class _Membership(Generic[S, M]):
    """The members of many sets, each counted once per endpoint that brings it, so that an
    endpoint's change touches only the sets it enters or leaves, and a set that did not
    change is handed out as the same frozenset object as before."""

    def __init__(self) -> None:
        self._counts: dict[S, dict[M, int]] = {}
        self._frozen: dict[S, frozenset[M]] = {}

    def change(self, owner: S, members: Iterable[M], delta: int) -> None:
        counts = self._counts.setdefault(owner, {})
        for member in members:
            n = counts.get(member, 0) + delta
            if n:
                counts[member] = n
            else:
                del counts[member]
        self._frozen.pop(owner, None)

    def members(self, owner: S) -> frozenset[M]:
        found = self._frozen.get(owner)
        if found is None:
            found = self._frozen[owner] = frozenset(self._counts.get(owner, ()))
        return found

    def forget(self, owners: Iterable[S]) -> None:
        for owner in owners:
            self._counts.pop(owner, None)
            self._frozen.pop(owner, None)


@dataclass(frozen=True, slots=True)  # one per endpoint: slots, ~60 B less each
class _Seen:
    """An endpoint as the last calculation saw it, and what it put into the sets."""

    endpoint: AnyEndpoint  # the object itself: the same object is the same endpoint
    token: tuple[object, ...]
    addresses: tuple[Network, ...]
    ports: tuple[tuple[str, int, int], ...]
    # A tuple, not a frozenset: a few selectors each, and ~0.6 KB less per endpoint.
    matched: tuple[EntitySelector, ...]
    port_entries: tuple[tuple[NamedPortKey, tuple[PortEntry, ...]], ...]


@dataclass
class Calculator:
    """`calculate`, remembering its work between calls so a small change costs little.

    Plans are kept per endpoint content while the policies stay the same objects (the
    inputs reader hands back the same objects for unchanged resources). Set memberships
    are kept as counts: an endpoint whose labels, addresses or ports changed is evaluated
    against the selectors again and moves its addresses between sets; a new selector is
    evaluated against every endpoint once. So a label change costs one endpoint's worth of
    selector matching and planning, plus one pass of identity checks over the endpoints to
    find the one that changed.
    """

    node: str
    _policies: tuple[Policy, ...] = ()
    # The policies as given, the tiers, and `ordered` of the two, from the last calculation.
    _last_ordered: tuple[tuple[Policy, ...], dict[str, Tier], list[Policy]] | None = None
    _tiers: dict[str, Tier] = field(default_factory=dict)
    _plans: dict[tuple[object, ...], EndpointPlan] = field(default_factory=dict)
    # One tuple for all plans with the same tiers in one direction (and one TierPlan for
    # equal ones): endpoints with other labels mostly have the same policies, and a copy
    # each was ~1 KB per endpoint.
    _tiers_shared: dict[tuple[TierPlan, ...], tuple[TierPlan, ...]] = field(default_factory=dict)
    _tier_shared: dict[TierPlan, TierPlan] = field(default_factory=dict)
    _endpoint_plans: dict[str, EndpointPlan] = field(default_factory=dict)
    # This node's workload endpoints by key, each with its plan, as the last calculation
    # left them; and how many of those plans name each policy and profile, so that the
    # state's policies and profiles follow a change without walking every plan.
    _local: dict[str, tuple[Endpoint, EndpointPlan]] = field(default_factory=dict)
    _policy_refs: dict[str, int] = field(default_factory=dict)
    _profile_refs: dict[str, int] = field(default_factory=dict)
    # What the last calculation worked out again (the rest were the same objects as
    # before): the local endpoints it planned and the endpoints it matched against the
    # selectors. What a change cost, whatever the number of endpoints.
    replanned: int = 0
    rematched: int = 0
    # Host endpoint plans by (name, interface), with the token they were made for.
    _host_plans: dict[tuple[str, str], tuple[tuple[object, ...], HostEndpointPlan]] = field(
        default_factory=dict
    )
    _scoped: Scoped = field(default_factory=lambda: Scoped((), (), ()))
    _selectors: frozenset[EntitySelector] = frozenset()
    _port_keys: frozenset[NamedPortKey] = frozenset()
    _seen: dict[str, _Seen] = field(default_factory=dict)
    _sets: _Membership[EntitySelector, Network] = field(default_factory=_Membership)
    _ports: _Membership[NamedPortKey, PortEntry] = field(default_factory=_Membership)
    _ipv6_endpoints: int = 0
    # The selectors and named ports each policy's or profile's rules use.
    _uses: IdentityMemo[Policy | Profile, _Uses] = field(
        default_factory=lambda: IdentityMemo(USES_MEMO_LIMIT)
    )
    _tokens: IdentityMemo[AnyEndpoint, tuple[object, ...]] = field(
        default_factory=lambda: IdentityMemo(TOKEN_MEMO_LIMIT)
    )
    # What all policies and profiles use, and what those applying on this node use, with
    # the objects each came from (see _all_uses).
    _unions: list[tuple[tuple[Policy | Profile, ...], _Uses] | None] = field(
        default_factory=lambda: [None, None]
    )

    def _uses_of(self, item: Policy | Profile) -> _Uses:
        return self._uses.get(
            item,
            lambda it: _Uses(
                frozenset(rule_selectors(_rules(it))), frozenset(named_port_keys(_rules(it)))
            ),
        )

    def _all_uses(self, slot: int, items: tuple[Policy | Profile, ...]) -> _Uses:
        """What `items` use together; kept in `slot` while they stay the same objects, as
        they do across a label change, so that it costs a pass of identity checks rather
        than the union of every policy's selectors."""
        last = self._unions[slot]
        if (
            last is not None
            and len(last[0]) == len(items)
            and all(a is b for a, b in zip(last[0], items, strict=True))
        ):
            return last[1]
        uses = [self._uses_of(item) for item in items]
        union = _Uses(
            frozenset().union(*(u.selectors for u in uses)),
            frozenset().union(*(u.named_ports for u in uses)),
        )
        self._unions[slot] = (items, union)
        return union

    def _ordered(self, policies: Sequence[Policy], tiers: Mapping[str, Tier]) -> list[Policy]:
        """`ordered`, sorted again only when the policies are not the same objects in the
        same order as last time (a label change leaves them so) or the tiers changed."""
        last = self._last_ordered
        if (
            last is not None
            and len(last[0]) == len(policies)
            and all(a is b for a, b in zip(last[0], policies, strict=True))
            and last[1] == tiers
        ):
            return last[2]
        found = ordered(policies, tiers)
        self._last_ordered = (tuple(policies), dict(tiers), found)
        return found

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
                # label churn: forget old combinations, keep memory flat
                self._plans.clear()
                self._tiers_shared.clear()
                self._tier_shared.clear()
            made = plan(ep, policies, tiers, self._scoped)
            found = self._plans[token] = EndpointPlan(
                made.interface, self._shared(made.ingress), self._shared(made.egress), made.profiles
            )
        last = self._endpoint_plans.get(ep.key)
        if (
            last is not None
            and last.interface == ep.interface
            and (last.ingress, last.egress, last.profiles)
            == (found.ingress, found.egress, found.profiles)
        ):
            return last  # the same object: the dataplane renders it from memory
        current = (
            found
            if found.interface == ep.interface
            else EndpointPlan(ep.interface, found.ingress, found.egress, found.profiles)
        )
        self._endpoint_plans[ep.key] = current
        return current

    def _shared(self, tiers: tuple[TierPlan, ...]) -> tuple[TierPlan, ...]:
        found = self._tiers_shared.get(tiers)
        if found is None:
            each = self._tier_shared
            found = self._tiers_shared[tiers] = tuple(each.setdefault(t, t) for t in tiers)
        return found

    def _host_plan(
        self,
        hep: HostEndpoint,
        interface: str,
        token: tuple[object, ...],
        policies: list[Policy],
        tiers: Mapping[str, Tier],
    ) -> HostEndpointPlan:
        """The same object while the endpoint's token and the policies stay the same."""
        found = self._host_plans.get((hep.key, interface))
        if found is not None and found[0] == token:
            return found[1]
        made = host_plan(hep, interface, policies, tiers)
        if found is not None and found[1] == made:
            made = found[1]
        self._host_plans[hep.key, interface] = (token, made)
        return made

    def _update_plans(
        self, endpoints: Sequence[Endpoint], policies: list[Policy], tiers: Mapping[str, Tier]
    ) -> int:
        """Plan this node's endpoints that are not the same objects as last time, and count
        what their plans name; how many were planned."""
        last, local = self._local, {}
        changed = []
        for ep in endpoints:
            found = last.get(ep.key)
            if found is not None and found[0] is ep:
                local[ep.key] = found
            elif ep.node == self.node and ep.interface:
                token = self._tokens.get(ep, _token)
                local[ep.key] = (ep, self._plan(ep, token, policies, tiers))
                changed.append(ep.key)
        for key in [*changed, *(last.keys() - local.keys())]:
            if key in last:
                self._count(last[key][1], -1)
            if key in local:
                self._count(local[key][1], 1)
        self._local = local
        return len(changed)

    def _count(self, plan: EndpointPlan, delta: int) -> None:
        for tier in plan.ingress + plan.egress:
            for policy_id in tier.policies:
                _add(self._policy_refs, policy_id, delta)
        for name in plan.profiles:
            _add(self._profile_refs, name, delta)

    def _update_sets(
        self,
        endpoints: Sequence[AnyEndpoint],
        selectors: frozenset[EntitySelector],
        port_keys: frozenset[NamedPortKey],
    ) -> int:
        """Move the addresses of endpoints that changed between the sets; how many
        endpoints were evaluated again."""
        added, removed = selectors - self._selectors, self._selectors - selectors
        self._sets.forget(removed)
        ports_changed = port_keys != self._port_keys
        if ports_changed:
            self._ports.forget(self._port_keys)
        selectors_same = not added and not removed and not ports_changed
        by_port: dict[tuple[int, str], list[NamedPortKey]] = {}
        for key in port_keys:
            by_port.setdefault((key.protocol, key.name), []).append(key)
        evaluated = 0
        for ep in endpoints:
            seen = self._seen.get(ep.key)
            if selectors_same and seen is not None and seen.endpoint is ep:
                continue
            token = self._tokens.get(ep, _token)
            same = (
                seen is not None
                and seen.token == token
                and seen.addresses == ep.addresses
                and seen.ports == ep.ports
            )
            if same and selectors_same:
                assert seen is not None
                self._seen[ep.key] = replace(seen, endpoint=ep)
                continue
            evaluated += 1
            if same:
                assert seen is not None
                kept = tuple(s for s in seen.matched if s not in removed)
                new = tuple(s for s in added if _selects(s, ep))
                matched = kept + new
                for sel in new:
                    self._sets.change(sel, ep.addresses, 1)
            else:
                if seen is not None:
                    self._withdraw(seen, removed, ports_changed)
                matched = tuple(s for s in selectors if _selects(s, ep))
                for sel in matched:
                    self._sets.change(sel, ep.addresses, 1)
            entries = _port_entries(ep, matched, by_port)
            if seen is not None and same and not ports_changed:
                for key, items in seen.port_entries:
                    self._ports.change(key, items, -1)
            for key, items in entries:
                self._ports.change(key, items, 1)
            if seen is not None:
                self._ipv6_endpoints -= any(a.version == 6 for a in seen.addresses)
            self._ipv6_endpoints += any(a.version == 6 for a in ep.addresses)
            self._seen[ep.key] = _Seen(ep, token, ep.addresses, ep.ports, matched, entries)
        for key in self._seen.keys() - {ep.key for ep in endpoints}:
            gone = self._seen.pop(key)
            self._withdraw(gone, removed, ports_changed)
            self._ipv6_endpoints -= any(a.version == 6 for a in gone.addresses)
            self._endpoint_plans.pop(key, None)
        self._selectors, self._port_keys = selectors, port_keys
        return evaluated

    def _withdraw(
        self, seen: _Seen, removed: frozenset[EntitySelector], ports_changed: bool
    ) -> None:
        """Take an endpoint's old addresses out of the sets that still exist."""
        for sel in seen.matched:
            if sel not in removed:
                self._sets.change(sel, seen.addresses, -1)
        if not ports_changed:
            for key, items in seen.port_entries:
                self._ports.change(key, items, -1)

    def calculate(
        self, inputs: Inputs, interfaces: Mapping[str, frozenset[str]] | None = None
    ) -> PolicyState:
        """`interfaces`: the host's interfaces and their addresses, which decide the host
        endpoints' (see resolve_host_endpoints)."""
        policies = self._ordered(inputs.policies, inputs.tiers)
        if not self._same_policies(policies, inputs.tiers):
            self._policies, self._tiers, self._plans = tuple(policies), dict(inputs.tiers), {}
            self._tiers_shared, self._tier_shared = {}, {}
            self._host_plans = {}
            self._scoped = Scoped.of(policies)
            self._local, self._policy_refs, self._profile_refs = {}, {}, {}
        self.replanned = self._update_plans(inputs.endpoints, policies, inputs.tiers)
        state = PolicyState()
        state.endpoints = {ep.interface: plan for ep, plan in self._local.values()}
        host_policies: set[str] = set()
        host_profiles: set[str] = set()
        resolved = resolve_host_endpoints(inputs.host_endpoints, self.node, interfaces)
        live = set()
        for interface, hep in resolved.items():
            token = self._tokens.get(hep, _token)
            host = self._host_plan(hep, interface, token, policies, inputs.tiers)
            state.host_endpoints[interface] = host
            live.add((hep.key, interface))
            for stage in host.stages():
                for tier in stage.ingress + stage.egress:
                    host_policies.update(tier.policies)
            host_profiles.update(host.normal.profiles)
        for gone in self._host_plans.keys() - live:
            del self._host_plans[gone]
        # In evaluation order, and the profiles in the inputs' order, whatever order the
        # plans naming them came in: the same state however it was arrived at.
        state.policies = {
            p.id: p for p in policies if p.id in self._policy_refs or p.id in host_policies
        }
        state.profiles = {
            name: profile
            for name, profile in inputs.profiles.items()
            if name in self._profile_refs or name in host_profiles
        }
        everything = self._all_uses(0, (*policies, *inputs.profiles.values()))
        everyone = inputs.all_endpoints()
        self.rematched = self._update_sets(everyone, everything.selectors, everything.named_ports)
        used = self._all_uses(1, (*state.policies.values(), *state.profiles.values()))
        wanted = used.selectors
        from_network_sets: dict[EntitySelector, set[Network]] = {}
        for ns in inputs.network_sets:
            for sel in wanted:
                if sel.matches(ns.labels, ns.namespace, ns.namespace_labels):
                    from_network_sets.setdefault(sel, set()).update(ns.nets)
        state.selector_sets = {
            sel: (
                self._sets.members(sel) | from_network_sets[sel]
                if sel in from_network_sets
                else self._sets.members(sel)
            )
            for sel in wanted
        }
        state.named_ports = {key: self._ports.members(key) for key in used.named_ports}
        state.ipv6 = self._ipv6_endpoints > 0 or any(
            n.version == 6 for ns in inputs.network_sets for n in ns.nets
        )
        return state


def _add(counts: dict[str, int], key: str, delta: int) -> None:
    n = counts.get(key, 0) + delta
    if n:
        counts[key] = n
    else:
        del counts[key]


def _selects(sel: EntitySelector, ep: AnyEndpoint) -> bool:
    return sel.matches(ep.labels, ep.namespace, ep.namespace_labels, ep.sa_labels)


def _port_entries(
    ep: AnyEndpoint,
    matched: tuple[EntitySelector, ...],
    by_port: Mapping[tuple[int, str], list[NamedPortKey]],
) -> tuple[tuple[NamedPortKey, tuple[PortEntry, ...]], ...]:
    """What `ep` puts into each named-port set: its addresses with the port's number."""
    found: list[tuple[NamedPortKey, tuple[PortEntry, ...]]] = []
    for name, protocol, port in ep.ports:
        keys = [
            key
            for key in by_port.get((protocol, name), ())
            if key.selector is None or key.selector in matched
        ]
        if keys:
            # One for all its sets: ~0.05 KB less per endpoint with bench-scale's policies.
            items = tuple((a, protocol, port) for a in ep.addresses)
            found += ((key, items) for key in keys)
    return tuple(found)


def calculate(
    node: str, inputs: Inputs, interfaces: Mapping[str, frozenset[str]] | None = None
) -> PolicyState:
    """The policy state of `node`: plans for its endpoints and every set their rules use."""
    return Calculator(node).calculate(inputs, interfaces)

"""What Felix's flow collector knows about the cluster at one apply (pure): who an address
is, as a flow names it, with its labels; which policies the local endpoints meet, to read
the rule trace back into policy hits (the tier of a policy, the trigger of a tier's end).

Built from the snapshot Felix applied and the policy state it calculated, so a flow is named
by the same data that decided it. Addresses are packed bytes (4 or 16), as the kernel's
messages carry them, so a lookup costs one dictionary access.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pycalico.felix.rules import nflog
from pycalico.flows import naming
from pycalico.flows.record import Action, PolicyHit, PolicyKind
from pycalico.policy import calc, pending
from pycalico.policy.model import NS_PREFIX, SA_PREFIX, Endpoint, NetworkSet, Policy

PolicyKey = tuple[PolicyKind, str, str]  # kind, namespace, name: what a prefix names


def _packed(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bytes | None:
    """A single address's bytes; None for a wider network."""
    return net.network_address.packed if net.num_addresses == 1 else None


def endpoint_labels(ep: Endpoint) -> frozenset[str]:
    """A workload's labels as a record carries them: its own, not those its namespace's and
    service account's profiles lend it for selectors."""
    return frozenset(
        f"{k}={v}"
        for k, v in ep.labels.items()
        if not k.startswith(NS_PREFIX) and not k.startswith(SA_PREFIX)
    )


@dataclass(frozen=True)
class Named:
    endpoint: naming.Endpoint
    labels: frozenset[str] = frozenset()


@dataclass
class FlowView:
    node: str
    local: dict[bytes, Endpoint] = field(default_factory=dict)  # this node's workloads
    named: dict[bytes, Named] = field(default_factory=dict)  # every workload and host
    network_sets: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, Named], ...] = ()
    plans: dict[str, calc.EndpointPlan] = field(default_factory=dict)  # by interface
    policies: dict[str, Policy] = field(default_factory=dict)  # by id
    tiers: dict[PolicyKey, str] = field(default_factory=dict)  # the tier of each policy
    # The staged policies (as if enforced: policy/pending.py) and the tiers: a tier of
    # staged policies only ends without policies of its own in the plan; its trigger is
    # the first staged one that selects the endpoint.
    staged: tuple[Policy, ...] = ()
    tier_order: Mapping[str, calc.Tier] = field(default_factory=dict)
    _staged_plans: dict[str, calc.EndpointPlan] = field(default_factory=dict)

    def name(self, address: bytes) -> Named:
        found = self.named.get(address)
        if found is not None:
            return found
        ip = ipaddress.ip_address(address)
        for net, named in self.network_sets:
            if ip in net:
                return named
        return Named(naming.network(str(ip)))

    def trigger(self, ep: Endpoint, direction: str, tier: str) -> PolicyHit | None:
        """The first policy of `tier` that applies to `ep` in `direction` (an end of tier's
        trigger), as a hit without action."""
        plan = self.plans.get(ep.interface)
        if plan is None:
            return None
        for tier_plan in plan.ingress if direction == "ingress" else plan.egress:
            if tier_plan.tier == tier and tier_plan.policies:
                ref = nflog.policy_ref(self.policies[tier_plan.policies[0]])
                return _trigger(ref)
        return self._staged_trigger(ep, direction, tier)

    def _staged_trigger(self, ep: Endpoint, direction: str, tier: str) -> PolicyHit | None:
        if not self.staged:
            return None
        plan = self._staged_plans.get(ep.key)
        if plan is None:
            ordered = calc.ordered(self.staged, self.tier_order)
            plan = self._staged_plans[ep.key] = calc.plan(ep, ordered, self.tier_order)
        by_id = {p.id: p for p in self.staged}
        for tier_plan in plan.ingress if direction == "ingress" else plan.egress:
            if tier_plan.tier == tier and tier_plan.policies:
                return _trigger(pending.policy_ref(by_id[tier_plan.policies[0]]))
        return None

    def first_profile(self, ep: Endpoint) -> PolicyHit | None:
        for name in ep.profiles:
            return PolicyHit(PolicyKind.PROFILE, name, "", "", Action.UNSPECIFIED, 0, 0)
        return None


def _trigger(ref: naming.PolicyRef) -> PolicyHit:
    """A policy as an end of tier's trigger: a hit without action."""
    return PolicyHit(ref.kind, ref.name, ref.namespace, ref.tier, Action.UNSPECIFIED, 0, 0)


def _network_set_name(ns: NetworkSet) -> Named:
    namespace, _, name = ns.key.partition("/")
    return Named(
        naming.network_set(name, namespace or None),
        frozenset(f"{k}={v}" for k, v in ns.labels.items()),
    )


def build(
    node: str,
    endpoints: Sequence[Endpoint],
    nodes: Mapping[str, ipaddress.IPv4Interface | None],
    network_sets: Sequence[NetworkSet],
    state: calc.PolicyState,
    staged: Sequence[Policy] = (),
    tiers: Mapping[str, calc.Tier] | None = None,
) -> FlowView:
    """`nodes`: every node's address (a host's traffic is named by its node); `staged`:
    the staged policies evaluated (calc.Inputs.staged_policies), in `tiers`."""
    view = FlowView(
        node,
        plans=dict(state.endpoints),
        policies=dict(state.policies),
        staged=tuple(staged),
        tier_order=dict(tiers or {}),
    )
    for name, address in nodes.items():
        if address is not None:
            view.named[address.ip.packed] = Named(naming.host(name))
    for ep in endpoints:
        named = Named(
            naming.workload(ep.namespace, ep.pod or ep.key.rpartition("/")[2], ep.generate_name),
            endpoint_labels(ep),
        )
        for net in ep.addresses:
            packed = _packed(net)
            if packed is None:
                continue
            view.named[packed] = named
            if ep.node == node and ep.interface:
                view.local[packed] = ep
    view.network_sets = tuple(
        (net, _network_set_name(ns)) for ns in network_sets for net in ns.nets
    )
    for policy in state.policies.values():
        ref = nflog.policy_ref(policy)
        view.tiers[ref.kind, ref.namespace, ref.name] = ref.tier
    return view

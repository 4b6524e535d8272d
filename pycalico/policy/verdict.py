"""What policy does to one packet, and why (pure): the walk `calicoctl policy explain` shows.

It walks the same plans (policy/calc.py) and the same rule meaning the nftables rendering
encodes (policy/nft.py): the source endpoint's egress, then the destination endpoint's
ingress; in each, tiers in order, a policy's rules in order (Log carries on, Pass leaves
the tier), the end-of-tier drop, then the profiles, then the final drop. Traffic from an
address that is not a workload (the host, the outside) meets only the destination's
ingress, and traffic to one only the source's egress.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from pycalico.policy import calc
from pycalico.policy.model import Endpoint, Entity, EntitySelector, Policy, Ports, Profile, Rule

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Packet:
    src: Address
    dst: Address
    protocol: int  # 6 tcp, 17 udp, 1 icmp, ...
    dst_port: int | None = None
    src_port: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None


@dataclass(frozen=True)
class Step:
    """The decision of one endpoint in one direction."""

    endpoint: str
    direction: str  # "egress" or "ingress"
    allowed: bool
    by: str  # "policy <tier>/<ns>/<name>", "profile <name>", or why it was dropped
    rule: int | None = None  # index in the policy's (or profile's) rules for that direction


@dataclass
class Matcher:
    """Rule matching for one packet; selector and named-port sets computed on demand."""

    inputs: calc.Inputs
    _sets: dict[EntitySelector, frozenset[calc.Network]] = field(default_factory=dict)

    def in_selector(self, sel: EntitySelector, address: Address) -> bool:
        if sel not in self._sets:
            self._sets[sel] = calc.members(sel, self.inputs.endpoints, self.inputs.network_sets)
        return any(address in net for net in self._sets[sel])

    def named_port(
        self, sel: EntitySelector | None, protocol: int, name: str, address: Address, port: int
    ) -> bool:
        key = calc.NamedPortKey(sel, protocol, name)
        return any(
            address in net and port == p
            for net, _, p in calc.named_port_members(key, self.inputs.endpoints)
        )

    def _ports(
        self,
        ports: Ports,
        sel: EntitySelector | None,
        protocol: int,
        address: Address,
        port: int | None,
    ) -> bool:
        if port is None:
            return False
        if any(lo <= port <= hi for lo, hi in ports.ranges):
            return True
        return any(self.named_port(sel, protocol, name, address, port) for name in ports.names)

    def _entity(self, e: Entity, address: Address, port: int | None, protocol: int) -> bool:
        if e.nets and not any(address in n for n in e.nets):
            return False
        if any(address in n for n in e.not_nets):
            return False
        if e.selector is not None and not self.in_selector(e.selector, address):
            return False
        if e.not_selector is not None and self.in_selector(e.not_selector, address):
            return False
        if e.ports and not self._ports(e.ports, e.selector, protocol, address, port):
            return False
        return not (e.not_ports and self._ports(e.not_ports, e.selector, protocol, address, port))

    def rule(self, r: Rule, p: Packet) -> bool:
        if r.ip_version is not None and r.ip_version != p.src.version:
            return False
        if r.protocol is not None and r.protocol != p.protocol:
            return False
        if r.not_protocol is not None and r.not_protocol == p.protocol:
            return False
        if r.icmp is not None and not (
            p.icmp_type == r.icmp.type and r.icmp.code in (None, p.icmp_code)
        ):
            return False
        if r.not_icmp is not None and (
            p.icmp_type == r.not_icmp.type and r.not_icmp.code in (None, p.icmp_code)
        ):
            return False
        protocol = r.protocol or 6
        return self._entity(r.source, p.src, p.src_port, protocol) and self._entity(
            r.destination, p.dst, p.dst_port, protocol
        )


def _walk_rules(
    rules: tuple[Rule, ...], packet: Packet, matcher: Matcher
) -> tuple[str, int] | None:
    """The first deciding (action, index) among `rules`; Log never decides."""
    for index, r in enumerate(rules):
        if r.action != "Log" and matcher.rule(r, packet):
            return r.action, index
    return None


def decide(
    ep: Endpoint,
    direction: str,
    packet: Packet,
    plan: calc.EndpointPlan,
    policies: dict[str, Policy],
    profiles: dict[str, Profile],
    matcher: Matcher,
) -> Step:
    for tier in plan.ingress if direction == "ingress" else plan.egress:
        passed = False
        for policy_id in tier.policies:
            rules = getattr(policies[policy_id], direction) or ()
            found = _walk_rules(rules, packet, matcher)
            if found is None:
                continue
            action, index = found
            if action == "Pass":
                passed = True
                break
            return Step(ep.key, direction, action == "Allow", f"policy {policy_id}", index)
        if not passed and tier.default_action == "Deny":
            return Step(ep.key, direction, False, f"end of tier {tier.tier}: no policy allowed it")
    for name in plan.profiles:
        profile = profiles.get(name)
        if profile is None:
            continue
        found = _walk_rules(getattr(profile, direction), packet, matcher)
        if found is not None and found[0] in ("Allow", "Deny"):
            return Step(ep.key, direction, found[0] == "Allow", f"profile {name}", found[1])
    return Step(ep.key, direction, False, "no profile allowed it")


def explain(
    inputs: calc.Inputs, src: Endpoint | None, dst: Endpoint | None, packet: Packet
) -> list[Step]:
    """The steps that decide `packet` from `src` to `dst` (None: not a workload)."""
    ordered = calc.ordered(inputs.policies, inputs.tiers)
    policies = {p.id: p for p in ordered}
    profiles = dict(inputs.profiles)
    matcher = Matcher(inputs)
    steps = []
    for ep, direction in ((src, "egress"), (dst, "ingress")):
        if ep is None:
            continue
        step = decide(
            ep, direction, packet, calc.plan(ep, ordered, inputs.tiers), policies, profiles, matcher
        )
        steps.append(step)
        if not step.allowed:
            break
    return steps


"""What policy does to one packet, and why (pure): the walk `calicoctl policy explain` shows.

It walks the same plans (policy/calc.py) and the same rule meaning the nftables rendering
encodes (felix/rules/policy.py): the source endpoint's egress, then the destination
endpoint's ingress; in each, tiers in order, a policy's rules in order (Log carries on, Pass
leaves the tier), the end-of-tier drop, then the profiles, then the final drop. Traffic from
an address that is not a workload (the outside) meets only the destination's ingress, and
traffic to one only the source's egress.

A host (its own processes, behind a host endpoint) is a side too, and a node's host
endpoint also stands in the way of traffic it forwards to and from its pods, as Felix's
chains have it (felix/rules/host_endpoints.py): on the way in the failsafe ports, then
untracked (doNotTrack) policy, then preDNAT policy, then normal policy (host traffic) or
applyOnForward policy (forwarded traffic); an Allow in an earlier stage skips the later
host stages but never the workload's own policy. A pod reaching its own host meets
DefaultEndpointToHostAction instead of host endpoint policy; the host reaching its own pod
is always allowed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pycalico.policy import calc
from pycalico.policy.model import (
    Endpoint,
    Entity,
    EntitySelector,
    HostEndpoint,
    Policy,
    Ports,
    Profile,
    Rule,
)

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
    stage: str = ""  # a host endpoint's: untracked, preDNAT, forward; "" for normal policy
    policy: str = field(default="", compare=False)  # the deciding policy's id, if one did


@dataclass(frozen=True)
class Host:
    """A host's own processes as one side of a connection."""

    node: str
    hep: HostEndpoint | None  # the host endpoint its traffic goes through; None: unprotected
    name: str  # as steps show it: "hep <name>" or "node <node>"


@dataclass(frozen=True)
class NodeRules:
    """What Felix on a node does besides policy: DefaultEndpointToHostAction and the
    failsafe ports (`failsafe(direction, packet)`: the entry that lets it through, if any)."""

    endpoint_to_host: str = "Drop"
    failsafe: Callable[[str, Packet], str | None] = lambda direction, packet: None


Side = Endpoint | Host | None


@dataclass
class Matcher:
    """Rule matching for one packet; selector and named-port sets computed on demand."""

    inputs: calc.Inputs
    _sets: dict[EntitySelector, frozenset[calc.Network]] = field(default_factory=dict)

    def in_selector(self, sel: EntitySelector, address: Address) -> bool:
        if sel not in self._sets:
            everyone = self.inputs.all_endpoints()
            self._sets[sel] = calc.members(sel, everyone, self.inputs.network_sets)
        return any(address in net for net in self._sets[sel])

    def named_port(
        self, sel: EntitySelector | None, protocol: int, name: str, address: Address, port: int
    ) -> bool:
        key = calc.NamedPortKey(sel, protocol, name)
        return any(
            address in net and port == p
            for net, _, p in calc.named_port_members(key, self.inputs.all_endpoints())
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


def first_match(
    rules: tuple[Rule, ...], packet: Packet, matcher: Matcher
) -> tuple[str, int] | None:
    """The first deciding (action, index) among `rules`; Log never decides."""
    for index, r in enumerate(rules):
        if r.action != "Log" and matcher.rule(r, packet):
            return r.action, index
    return None


def _tiers(
    key: str,
    direction: str,
    tiers: tuple[calc.TierPlan, ...],
    packet: Packet,
    policies: Mapping[str, Policy],
    matcher: Matcher,
    stage: str = "",
) -> Step | None:
    """The tiers' decision, or None when every tier passed the packet on."""
    for tier in tiers:
        passed = False
        for policy_id in tier.policies:
            rules = getattr(policies[policy_id], direction) or ()
            found = first_match(rules, packet, matcher)
            if found is None:
                continue
            action, index = found
            if action == "Pass":
                passed = True
                break
            allowed = action == "Allow"
            return Step(key, direction, allowed, f"policy {policy_id}", index, stage, policy_id)
        if not passed and tier.default_action == "Deny":
            reason = f"end of tier {tier.tier}: no policy allowed it"
            return Step(key, direction, False, reason, stage=stage)
    return None


def decide(
    ep: Endpoint | HostEndpoint,
    direction: str,
    packet: Packet,
    plan: calc.EndpointPlan,
    policies: Mapping[str, Policy],
    profiles: Mapping[str, Profile],
    matcher: Matcher,
    key: str = "",
) -> Step:
    key = key or ep.key
    tiers = plan.ingress if direction == "ingress" else plan.egress
    step = _tiers(key, direction, tiers, packet, policies, matcher)
    if step is not None:
        return step
    for name in plan.profiles:
        profile = profiles.get(name)
        if profile is None:
            continue
        found = first_match(getattr(profile, direction), packet, matcher)
        if found is not None and found[0] in ("Allow", "Deny"):
            return Step(key, direction, found[0] == "Allow", f"profile {name}", found[1])
    return Step(key, direction, False, "no profile allowed it")


@dataclass
class _Walk:
    inputs: calc.Inputs
    packet: Packet
    rules_of: Callable[[str], NodeRules]
    gateway: Callable[[str], HostEndpoint | None]  # the host endpoint forwarded traffic meets
    ordered: list[Policy] = field(init=False)
    policies: dict[str, Policy] = field(init=False)
    matcher: Matcher = field(init=False)

    def __post_init__(self) -> None:
        self.ordered = calc.ordered(self.inputs.policies, self.inputs.tiers)
        self.policies = {p.id: p for p in self.ordered}
        self.matcher = Matcher(self.inputs)

    def workload(self, ep: Endpoint, direction: str) -> Step:
        plan = calc.plan(ep, self.ordered, self.inputs.tiers)
        return decide(
            ep, direction, self.packet, plan, self.policies, self.inputs.profiles, self.matcher
        )

    def host(
        self, hep: HostEndpoint, key: str, direction: str, forwarded: bool, from_workload: bool
    ) -> list[Step]:
        """A host endpoint's stages in order, up to the first that decides. `forwarded`:
        traffic through the host, not to or from its processes; `from_workload`: from a
        pod to its own host (only the '*' endpoint's preDNAT stage sees that)."""
        plan = calc.host_plan(hep, hep.interface or "by-ip", self.ordered, self.inputs.tiers)
        everywhere = hep.interface == calc.ALL_INTERFACES
        # Every host endpoint chain but the forward ones starts with the failsafe ports; in
        # raw and mangle they only end those stages.
        failsafe = self.rules_of(hep.node).failsafe(direction, self.packet)
        if failsafe is not None and not (forwarded or from_workload):
            return [Step(key, direction, True, f"failsafe {failsafe}")]
        early: list[tuple[str, calc.EndpointPlan]] = []
        if failsafe is None:
            if not (from_workload or everywhere):  # Felix ignores doNotTrack on '*'
                early.append(("untracked", plan.untracked))
            if direction == "ingress" and (everywhere or not from_workload):
                early.append(("preDNAT", plan.pre_dnat))
        for stage, stage_plan in early:
            tiers = stage_plan.ingress if direction == "ingress" else stage_plan.egress
            step = _tiers(key, direction, tiers, self.packet, self.policies, self.matcher, stage)
            if step is not None:
                return [step]
        if from_workload:
            return []
        if forwarded:
            tiers = plan.forward.ingress if direction == "ingress" else plan.forward.egress
            found = _tiers(
                key, direction, tiers, self.packet, self.policies, self.matcher, "forward"
            )
            return [found] if found is not None else []
        profiles = self.inputs.profiles
        args = (self.packet, plan.normal, self.policies, profiles, self.matcher, key)
        return [decide(hep, direction, *args)]


def _over_loopback(host: Host) -> Host:
    everywhere = host.hep is not None and host.hep.interface == calc.ALL_INTERFACES
    return host if everywhere else Host(host.node, None, host.name)


def _node_of(side: Side) -> str | None:
    return side.node if side is not None else None


def explain(
    inputs: calc.Inputs,
    src: Side,
    dst: Side,
    packet: Packet,
    rules_of: Callable[[str], NodeRules] = lambda node: NodeRules(),
    gateway: Callable[[str], HostEndpoint | None] = lambda node: None,
) -> list[Step]:
    """The steps that decide `packet` from `src` to `dst` (None: neither a workload nor a
    host, e.g. the outside). `rules_of(node)`: that node's Felix settings; `gateway(node)`:
    the host endpoint that traffic between the node's pods and other hosts goes through."""
    walk = _Walk(inputs, packet, rules_of, gateway)
    same_node = _node_of(src) is not None and _node_of(src) == _node_of(dst)
    if same_node and isinstance(src, Host) and isinstance(dst, Host):
        # Over loopback: only the all-interfaces endpoint governs lo.
        src, dst = (_over_loopback(side) for side in (src, dst))
        same_node = False
    steps: list[Step] = []

    def add(found: list[Step]) -> bool:
        steps.extend(found)
        return all(s.allowed for s in found)

    # Leaving the source.
    if isinstance(src, Endpoint):
        if not add([walk.workload(src, "egress")]):
            return steps
        hep = gateway(src.node)
        if (
            not same_node
            and hep is not None
            and not add(walk.host(hep, f"hep {hep.key}", "egress", True, False))
        ):
            return steps
    elif isinstance(src, Host):
        if same_node and isinstance(dst, Endpoint):
            steps.append(Step(src.name, "egress", True, "host to its own pod"))
            return steps
        if (
            src.hep is not None
            and not same_node
            and not add(walk.host(src.hep, src.name, "egress", False, False))
        ):
            return steps
    # Arriving at the destination.
    if isinstance(dst, Host):
        local_pod = same_node and isinstance(src, Endpoint)
        if dst.hep is not None and not same_node:
            add(walk.host(dst.hep, dst.name, "ingress", False, False))
        elif local_pod:
            if dst.hep is not None and not add(
                walk.host(dst.hep, dst.name, "ingress", False, True)
            ):
                return steps
            action = rules_of(dst.node).endpoint_to_host
            by = f"defaultEndpointToHostAction {action}"
            steps.append(Step(dst.name, "ingress", action != "Drop", by))
    elif isinstance(dst, Endpoint):
        hep = gateway(dst.node)
        if not same_node and hep is not None:
            found = walk.host(hep, f"hep {hep.key}", "ingress", True, False)
            if not add(found):
                return steps
        add([walk.workload(dst, "ingress")])
    return steps

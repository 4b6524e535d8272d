"""What the lab page's JSON endpoints answer (pure): the lab's pods and nodes from its
record, and a pod's policies as the policy calculation orders them for its endpoint.

A pod's policies come from `calc.plan`, the plan Felix renders into the pod's chains and
`calicoctl policy explain` walks: for each direction, the tiers in order, in each the
policies that select the pod in their order, and what the end of the tier does; then the
pod's profiles, which decide when no policy applies in that direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pycalico.lab.cluster import EXTERNAL_IP
from pycalico.lab.page_requests import RequestError
from pycalico.lab.state import LabState
from pycalico.policy import calc
from pycalico.policy.model import (
    NS_PREFIX,
    PROTOCOL_NUMBERS,
    SA_PREFIX,
    Endpoint,
    Entity,
    Icmp,
    Policy,
    Ports,
    Rule,
)

CALICO_LABELS = "projectcalico.org/"
KNP_PREFIX = "knp.default."  # a Kubernetes NetworkPolicy, as pycalico stores it
_PROTOCOL_NAMES = {number: name.upper() for name, number in PROTOCOL_NUMBERS.items()}
# Labels every pod gets from its profiles and the CNI, not its own.
_INHERITED = (NS_PREFIX, SA_PREFIX, CALICO_LABELS)


def summary(state: LabState) -> dict[str, Any]:
    """The lab as its record has it: what the page's pickers offer (the external host as a
    destination too, as `calico-lab trace --to IP` takes it)."""
    return {
        "lab": state.name,
        "topology": state.topology,
        "encap": state.encap,
        "external": EXTERNAL_IP,
        "nodes": [
            {"name": node, "ip": state.node_ips.get(node, "").split("/")[0]} for node in state.nodes
        ],
        "pods": [
            {"pod": key, "node": pod.node, "ip": pod.ip, "labels": dict(pod.labels)}
            for key, pod in sorted(state.pods.items())
        ],
    }


def endpoint_of(inputs: calc.Inputs, key: str) -> Endpoint:
    """The workload endpoint of pod `key` (NS/POD), found as policy explain finds it."""
    namespace, _, pod = key.partition("/")
    for ep in inputs.endpoints:
        if ep.namespace == namespace and pod in (ep.pod, ep.key.partition("/")[2]):
            return ep
    raise RequestError(f"pod {key} has no workload endpoint in the datastore", 404)


def pod_policies(inputs: calc.Inputs, key: str) -> dict[str, Any]:
    """Pod `key`'s policies, ingress and egress, tier by tier, then its profiles."""
    ep = endpoint_of(inputs, key)
    ordered = calc.ordered(inputs.policies, inputs.tiers)
    by_id = {p.id: p for p in ordered}
    plan = calc.plan(ep, ordered, inputs.tiers)
    profiles = []
    for name in plan.profiles:
        profile = inputs.profiles.get(name)
        profiles.append(
            {
                "name": name,
                "ingress": [rule_text(r) for r in profile.ingress] if profile else [],
                "egress": [rule_text(r) for r in profile.egress] if profile else [],
                "missing": profile is None,
            }
        )
    return {
        "pod": key,
        "node": ep.node,
        "interface": ep.interface,
        "addresses": [str(n) for n in ep.addresses],
        "labels": {k: v for k, v in ep.labels.items() if not k.startswith(_INHERITED)},
        "ingress": _tiers(plan.ingress, "ingress", by_id, inputs),
        "egress": _tiers(plan.egress, "egress", by_id, inputs),
        "profiles": profiles,
    }


def _tiers(
    plans: Sequence[calc.TierPlan], direction: str, by_id: dict[str, Policy], inputs: calc.Inputs
) -> list[dict[str, Any]]:
    return [
        {
            "tier": plan.tier,
            "order": _number(inputs.tiers[plan.tier].order),
            "end_of_tier": plan.default_action,
            "policies": [_policy(by_id[pid], direction) for pid in plan.policies],
        }
        for plan in plans
    ]


def _policy(p: Policy, direction: str) -> dict[str, Any]:
    if p.namespace is None:
        kind, name = "GlobalNetworkPolicy", p.name
    elif p.name.startswith(KNP_PREFIX):
        kind, name = "Kubernetes NetworkPolicy", p.name[len(KNP_PREFIX) :]
    else:
        kind, name = "NetworkPolicy", p.name
    return {
        "id": p.id,
        "kind": kind,
        "name": name,
        "namespace": p.namespace,
        "order": _number(p.order),
        "selector": p.selector or "all()",
        "rules": [rule_text(r) for r in getattr(p, direction) or ()],
    }


def _number(value: float | None) -> float | int | None:
    """An order as written: 100, not 100.0."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def rule_text(rule: Rule) -> str:
    """One rule in a line, in the words of its YAML: `Allow TCP from app == 'a' to ports
    80,8080`."""
    parts = [rule.action]
    if rule.ip_version:
        parts.append(f"IPv{rule.ip_version}")
    if rule.protocol is not None:
        parts.append(_PROTOCOL_NAMES.get(rule.protocol, f"protocol {rule.protocol}"))
    if rule.not_protocol is not None:
        parts.append(f"not {_PROTOCOL_NAMES.get(rule.not_protocol, str(rule.not_protocol))}")
    if rule.icmp:
        parts.append(_icmp("type", rule.icmp))
    if rule.not_icmp:
        parts.append(_icmp("not type", rule.not_icmp))
    for word, entity in (("from", rule.source), ("to", rule.destination)):
        described = _entity(entity)
        if described:
            parts.append(f"{word} {described}")
    return " ".join(parts)


def _icmp(word: str, icmp: Icmp) -> str:
    return f"{word} {icmp.type}" + (f" code {icmp.code}" if icmp.code is not None else "")


def _entity(e: Entity) -> str:
    parts = []
    if e.selector:
        parts.append(e.selector.text())
    if e.not_selector:
        parts.append(f"not {e.not_selector.text()}")
    if e.nets:
        parts.append("nets " + ",".join(map(str, e.nets)))
    if e.not_nets:
        parts.append("not nets " + ",".join(map(str, e.not_nets)))
    if e.ports:
        parts.append("ports " + _ports(e.ports))
    if e.not_ports:
        parts.append("not ports " + _ports(e.not_ports))
    return " ".join(parts)


def _ports(ports: Ports) -> str:
    ranges = [str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in ports.ranges]
    return ",".join([*ranges, *ports.names])

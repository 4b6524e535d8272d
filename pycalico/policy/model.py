"""Calico policy, profiles and endpoints as the policy calculation sees them (pure).

Everything a rule can select is reduced to an `EntitySelector`: a label selector, a
namespace condition, or both. Calico's scoping rules (reference policy-dataplane.md §4-§5,
resources-and-calicoctl.md §4) live here:
* a NetworkPolicy applies only to endpoints of its own namespace, and its rules'
  `selector` picks endpoints (and NetworkSets) of that namespace unless the rule has a
  `namespaceSelector`;
* GlobalNetworkPolicies, their rules and profiles' rules see every namespace, unless a
  `namespaceSelector` narrows it; `global()` there means "not namespaced" (GlobalNetworkSets);
* a namespaceSelector is evaluated on the namespace's labels, which an endpoint carries
  through its `kns.<ns>` profile as `pcns.<key>` labels.
"""

from __future__ import annotations

import functools
import ipaddress
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pycalico.selector import parse

PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132, "udplite": 136}
NAMESPACE_LABEL = "projectcalico.org/namespace"
NS_PREFIX = "pcns."
SA_PREFIX = "pcsa."
SA_NAME_LABEL = "projectcalico.org/name"
GLOBAL_NS = "global()"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class EntitySelector:
    """Which endpoints and network sets a rule's selector picks."""

    selector: str = ""  # canonical label selector; "" = no label condition
    namespace: str | None = None  # only this namespace
    namespace_selector: str = ""  # canonical; GLOBAL_NS = only non-namespaced entities
    service_accounts: str = ""  # canonical selector over service-account labels

    def text(self) -> str:
        parts = [f"({self.selector})" if self.selector else "all()"]
        if self.namespace is not None:
            parts.append(f"namespace == {self.namespace!r}")
        if self.namespace_selector:
            parts.append(f"namespaceSelector({self.namespace_selector})")
        if self.service_accounts:
            parts.append(f"serviceAccounts({self.service_accounts})")
        return " && ".join(parts)

    def matches(
        self,
        labels: Mapping[str, str],
        namespace: str | None,
        ns_labels: Mapping[str, str],
        sa_labels: Mapping[str, str] | None = None,
    ) -> bool:
        """`sa_labels`: the endpoint's service account's labels; None for network sets."""
        if self.service_accounts and (
            sa_labels is None or not parse(self.service_accounts).evaluate(sa_labels)
        ):
            return False
        if self.namespace_selector == GLOBAL_NS:
            if namespace is not None:
                return False
        elif self.namespace_selector and (
            namespace is None or not parse(self.namespace_selector).evaluate(ns_labels)
        ):
            return False
        if self.namespace is not None and namespace != self.namespace:
            return False
        return not self.selector or parse(self.selector).evaluate(labels)


@dataclass(frozen=True)
class Ports:
    """A rule's port list: numeric ranges and named ports (either may match)."""

    ranges: tuple[tuple[int, int], ...] = ()
    names: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.ranges or self.names)


@dataclass(frozen=True)
class Entity:
    nets: tuple[Network, ...] = ()
    not_nets: tuple[Network, ...] = ()
    selector: EntitySelector | None = None
    not_selector: EntitySelector | None = None
    ports: Ports = Ports()
    not_ports: Ports = Ports()


@dataclass(frozen=True)
class Icmp:
    type: int
    code: int | None = None


@dataclass(frozen=True)
class Rule:
    action: str  # Allow, Deny, Pass, Log
    protocol: int | None = None
    not_protocol: int | None = None
    ip_version: int | None = None
    icmp: Icmp | None = None
    not_icmp: Icmp | None = None
    source: Entity = Entity()
    destination: Entity = Entity()


@dataclass(frozen=True)
class Policy:
    id: str  # <tier>/<name> or <tier>/<namespace>/<name>: chain names and explain
    tier: str
    order: float | None
    name: str
    namespace: str | None  # None: a GlobalNetworkPolicy
    selector: str
    namespace_selector: str  # GlobalNetworkPolicy's own namespaceSelector
    ingress: tuple[Rule, ...] | None  # None: the policy has no Ingress type
    egress: tuple[Rule, ...] | None
    service_account_selector: str = ""
    # GlobalNetworkPolicy's host-endpoint stages (reference host-protection.md §4): such
    # policies apply only to host endpoints, before conntrack (doNotTrack) or before DNAT
    # (preDNAT); applyOnForward also puts a normal one on traffic forwarded through one.
    do_not_track: bool = False
    pre_dnat: bool = False
    apply_on_forward: bool = False
    # The resource kind it was read from: a staged kind's policy is evaluated only as if
    # enforced (policy/pending.py), never rendered.
    kind: str = "NetworkPolicy"

    @property
    def host_only(self) -> bool:
        """Whether the policy applies to host endpoints alone (never to workloads)."""
        return self.do_not_track or self.pre_dnat

    def sort_key(self) -> tuple[float, str]:
        return (self.order if self.order is not None else float("inf"), self.name)


@dataclass(frozen=True)
class Profile:
    name: str
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]
    labels_to_apply: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A workload endpoint on any node (its addresses feed selector sets everywhere).

    Its texts are interned and its namespace's labels shared: one of these per endpoint,
    kept for as long as the endpoint is, was ~2 KB with copies of them (~1 KB without)."""

    key: str  # namespace/name
    namespace: str
    node: str
    interface: str
    addresses: tuple[Network, ...]
    labels: Mapping[str, str] = field(hash=False)  # own labels + its profiles' labels
    namespace_labels: Mapping[str, str] = field(hash=False)
    profiles: tuple[str, ...] = ()
    ports: tuple[tuple[str, int, int], ...] = ()  # (name, protocol number, port)
    pod: str = ""  # the pod (or workload) name users know it by
    sa_labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    generate_name: str = ""  # the pod's generateName: how flow logs name its workload


@dataclass(frozen=True)
class HostEndpoint:
    """A HostEndpoint: policy on a host's own interface(s). Not namespaced, so namespaced
    policies and rule selectors never pick it; its expectedIPs feed selector sets as a
    workload's addresses do."""

    key: str  # the HostEndpoint's name
    node: str
    interface: str  # a name, "*" for every interface, "" to be found by expectedIPs
    addresses: tuple[Network, ...]  # expectedIPs, as host networks
    labels: Mapping[str, str] = field(hash=False)  # own labels + its profiles' labels
    profiles: tuple[str, ...] = ()
    ports: tuple[tuple[str, int, int], ...] = ()  # (name, protocol number, port)
    namespace: None = None
    namespace_labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    sa_labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    pod: str = ""


@dataclass(frozen=True)
class NetworkSet:
    key: str
    namespace: str | None  # None: a GlobalNetworkSet
    nets: tuple[Network, ...]
    labels: Mapping[str, str] = field(hash=False)
    namespace_labels: Mapping[str, str] = field(default_factory=dict, hash=False)


# Calico's built-in profile: it allows everything both ways. Stored nowhere; every reader of
# the policy inputs supplies it (kube-controllers' automatic host endpoints name it).
DEFAULT_ALLOW = "projectcalico-default-allow"


def _canonical(selector: str) -> str:
    text = str(parse(selector)) if selector else ""
    return "" if text == "all()" else text


def protocol_number(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    return PROTOCOL_NUMBERS[str(value).lower()]


def _ports(values: Sequence[Any]) -> Ports:
    ranges, names = [], []
    for value in values:
        if isinstance(value, int):
            ranges.append((value, value))
        elif ":" in value:
            lo, hi = value.split(":")
            ranges.append((int(lo), int(hi)))
        else:
            names.append(value)
    return Ports(tuple(ranges), tuple(names))


def _entity_selector(
    spec: Mapping[str, Any], key: str, namespace: str | None
) -> EntitySelector | None:
    selector = spec.get(key, "")
    ns_selector = spec.get("namespaceSelector", "") if key == "selector" else ""
    accounts = _service_accounts(spec.get("serviceAccounts")) if key == "selector" else ""
    if not selector and not ns_selector and not accounts:
        return None
    if ns_selector:
        ns_text = (
            GLOBAL_NS if ns_selector.strip() == GLOBAL_NS else _canonical(ns_selector) or "all()"
        )
        # A rule in a namespaced policy with a namespaceSelector reaches other namespaces.
        return EntitySelector(_canonical(selector), None, ns_text, accounts)
    return EntitySelector(_canonical(selector), namespace, "", accounts)


def _service_accounts(spec: Mapping[str, Any] | None) -> str:
    """serviceAccounts {names, selector} as one selector over the account's labels."""
    if not spec:
        return ""
    parts = []
    if spec.get("names"):
        names = ", ".join(repr(n) for n in sorted(spec["names"]))
        parts.append(f"{SA_NAME_LABEL} in {{ {names} }}")
    if spec.get("selector"):
        parts.append(f"({spec['selector']})")
    return _canonical(" && ".join(parts)) if parts else ""


def _entity(spec: Mapping[str, Any], namespace: str | None) -> Entity:
    return Entity(
        nets=tuple(ipaddress.ip_network(n, strict=False) for n in spec.get("nets", [])),
        not_nets=tuple(ipaddress.ip_network(n, strict=False) for n in spec.get("notNets", [])),
        selector=_entity_selector(spec, "selector", namespace),
        # notSelector keeps the namespace scope but not the namespaceSelector (Calico).
        not_selector=(
            EntitySelector(_canonical(spec["notSelector"]), namespace)
            if spec.get("notSelector")
            else None
        ),
        ports=_ports(spec.get("ports", [])),
        not_ports=_ports(spec.get("notPorts", [])),
    )


def _icmp(spec: Mapping[str, Any] | None) -> Icmp | None:
    if not spec or "type" not in spec:
        return None
    return Icmp(int(spec["type"]), spec.get("code"))


def rule(spec: Mapping[str, Any], namespace: str | None) -> Rule:
    return Rule(
        action=spec["action"],
        protocol=protocol_number(spec.get("protocol")),
        not_protocol=protocol_number(spec.get("notProtocol")),
        ip_version=spec.get("ipVersion"),
        icmp=_icmp(spec.get("icmp")),
        not_icmp=_icmp(spec.get("notICMP")),
        source=_entity(spec.get("source", {}), namespace),
        destination=_entity(spec.get("destination", {}), namespace),
    )


def policy(resource: Mapping[str, Any]) -> Policy:
    """A NetworkPolicy or GlobalNetworkPolicy resource."""
    meta, spec = resource["metadata"], resource["spec"]
    namespace = meta.get("namespace") if resource["kind"] == "NetworkPolicy" else None
    tier = spec.get("tier", "default")
    types = spec.get("types", ["Ingress"])
    rules = {
        direction: tuple(rule(r, namespace) for r in spec.get(direction.lower(), []))
        for direction in ("Ingress", "Egress")
    }
    scope = f"{namespace}/" if namespace is not None else ""
    return Policy(
        id=f"{tier}/{scope}{meta['name']}",
        tier=tier,
        order=spec.get("order"),
        name=meta["name"],
        namespace=namespace,
        selector=_canonical(spec.get("selector", "")),
        namespace_selector=_canonical(spec.get("namespaceSelector", "")),
        service_account_selector=_canonical(spec.get("serviceAccountSelector", "")),
        ingress=rules["Ingress"] if "Ingress" in types else None,
        egress=rules["Egress"] if "Egress" in types else None,
        do_not_track=bool(spec.get("doNotTrack")) and namespace is None,
        pre_dnat=bool(spec.get("preDNAT")) and namespace is None,
        apply_on_forward=bool(spec.get("applyOnForward")) and namespace is None,
        kind=resource["kind"],
    )


def profile(resource: Mapping[str, Any]) -> Profile:
    spec = resource["spec"]
    return Profile(
        resource["metadata"]["name"],
        tuple(rule(r, None) for r in spec.get("ingress", [])),
        tuple(rule(r, None) for r in spec.get("egress", [])),
        dict(spec.get("labelsToApply", {})),
    )


DEFAULT_ALLOW_PROFILE = Profile(DEFAULT_ALLOW, (Rule("Allow"),), (Rule("Allow"),))


def endpoint(resource: Mapping[str, Any], profiles: Mapping[str, Profile]) -> Endpoint:
    meta, spec = resource["metadata"], resource["spec"]
    names = tuple(_intern(name) for name in spec.get("profiles", []))
    labels = {
        _intern(k): _intern(v) for k, v in _labels_with_profiles(meta, names, profiles).items()
    }
    namespace = _intern(meta.get("namespace", "default"))
    labels.setdefault(NAMESPACE_LABEL, namespace)
    return Endpoint(
        key=f"{namespace}/{meta['name']}",
        namespace=namespace,
        node=_intern(spec.get("node", "")),
        interface=spec.get("interfaceName", ""),
        addresses=tuple(ipaddress.ip_network(n, strict=False) for n in spec.get("ipNetworks", [])),
        labels=labels,
        namespace_labels=_prefixed(labels, NS_PREFIX),
        profiles=names,
        ports=_endpoint_ports(spec),
        pod=spec.get("pod") or spec.get("workload", ""),
        sa_labels=_prefixed(labels, SA_PREFIX),
        generate_name=_intern(meta.get("generateName", "")),
    )


def _intern(text: Any) -> Any:
    """One copy of a text that many endpoints carry (label keys and values, namespaces,
    nodes, profiles); anything else, as it is."""
    return sys.intern(text) if type(text) is str else text


def _prefixed(labels: Mapping[str, str], prefix: str) -> Mapping[str, str]:
    """The labels under `prefix` (a namespace's, a service account's), without it, as one
    object shared by every endpoint with the same ones: they must not be modified."""
    return _shared_labels(
        tuple((_intern(k[len(prefix) :]), v) for k, v in labels.items() if k.startswith(prefix))
    )


@functools.lru_cache(maxsize=4096)
def _shared_labels(items: tuple[tuple[str, str], ...]) -> Mapping[str, str]:
    return dict(items)


def _labels_with_profiles(
    meta: Mapping[str, Any], names: Sequence[str], profiles: Mapping[str, Profile]
) -> dict[str, str]:
    labels: dict[str, str] = {}
    for name in names:
        if name in profiles:
            labels.update(profiles[name].labels_to_apply)
    labels.update(meta.get("labels", {}))
    return labels


def _endpoint_ports(spec: Mapping[str, Any]) -> tuple[tuple[str, int, int], ...]:
    return tuple(
        (_intern(p["name"]), protocol_number(p.get("protocol", "TCP")) or 6, int(p["port"]))
        for p in spec.get("ports", [])
        if p.get("name")
    )


def host_endpoint(resource: Mapping[str, Any], profiles: Mapping[str, Profile]) -> HostEndpoint:
    meta, spec = resource["metadata"], resource["spec"]
    names = tuple(spec.get("profiles", []))
    return HostEndpoint(
        key=meta["name"],
        node=spec.get("node", ""),
        interface=spec.get("interfaceName", ""),
        addresses=tuple(ipaddress.ip_network(ip) for ip in spec.get("expectedIPs", [])),
        labels=_labels_with_profiles(meta, names, profiles),
        profiles=names,
        ports=_endpoint_ports(spec),
    )


def network_set(
    resource: Mapping[str, Any], namespace_labels: Mapping[str, Mapping[str, str]]
) -> NetworkSet:
    meta = resource["metadata"]
    namespace = meta.get("namespace") if resource["kind"] == "NetworkSet" else None
    return NetworkSet(
        key=f"{namespace or ''}/{meta['name']}",
        namespace=namespace,
        nets=tuple(ipaddress.ip_network(n, strict=False) for n in resource["spec"].get("nets", [])),
        labels=dict(meta.get("labels", {})),
        namespace_labels=namespace_labels.get(namespace or "", {}),
    )


def selects(policy_: Policy, ep: Endpoint | HostEndpoint) -> bool:
    """Whether a policy applies to an endpoint (either direction)."""
    if policy_.namespace is not None and ep.namespace != policy_.namespace:
        return False
    if policy_.namespace_selector and not parse(policy_.namespace_selector).evaluate(
        ep.namespace_labels
    ):
        return False
    if policy_.service_account_selector and not parse(policy_.service_account_selector).evaluate(
        ep.sa_labels
    ):
        return False
    return not policy_.selector or parse(policy_.selector).evaluate(ep.labels)

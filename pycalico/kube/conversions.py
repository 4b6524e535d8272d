"""Kubernetes objects as Calico stores them (pure): a `networking.k8s.io/v1` NetworkPolicy
becomes the Calico NetworkPolicy `knp.default.<name>`, a Namespace the Profile `kns.<ns>`,
a ServiceAccount the Profile `ksa.<ns>.<sa>` — what kube-controllers writes in etcd mode
(reference resources-and-calicoctl.md §4, policy-dataplane.md §8).

Each input is first checked and defaulted as kube-apiserver would (the lab has none):
policyTypes default to Ingress, plus Egress when there are egress rules; a port's protocol
defaults to TCP; every namespace carries `kubernetes.io/metadata.name`.

Namespace selectors are stored as written (`env == 'prod'`, `all()`); the `pcns.` prefix is
the policy calculation's to add when it matches them against namespace labels, exactly as
Felix's update processor does for any Calico policy.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from pycalico.api.endpoints import PORT_PROTOCOLS
from pycalico.kube.validation import Checker, check_top_level

NETWORKING_API = "networking.k8s.io/v1"
POLICY_PREFIX = "knp.default."
NAMESPACE_PROFILE_PREFIX = "kns."
SERVICE_ACCOUNT_PROFILE_PREFIX = "ksa."
NAMESPACE_LABEL_PREFIX = "pcns."
SERVICE_ACCOUNT_LABEL_PREFIX = "pcsa."
NAME_LABEL = "projectcalico.org/name"
# The apiserver puts this label on every namespace (Kubernetes >= 1.22).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
ORCHESTRATOR_CLAUSE = "projectcalico.org/orchestrator == 'k8s'"
POLICY_ORDER = 1000.0
POLICY_TYPES = ("Ingress", "Egress")


def namespace_profile_name(namespace: str) -> str:
    return NAMESPACE_PROFILE_PREFIX + namespace


def service_account_profile_name(namespace: str, account: str) -> str:
    return f"{SERVICE_ACCOUNT_PROFILE_PREFIX}{namespace}.{account}"


# --- NetworkPolicy -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Port:
    protocol: str
    port: int | str | None  # None: every port of the protocol
    end_port: int | None = None


def network_policy(doc: dict[str, Any]) -> dict[str, Any]:
    """Validate a v1 NetworkPolicy document and return the Calico NetworkPolicy resource."""
    from pycalico.api.resource import normalize

    c = Checker()
    check_top_level(c, doc)
    meta = c.metadata(doc.get("metadata"), namespaced=True)
    spec = c.mapping(doc.get("spec"), "spec", ("podSelector", "ingress", "egress", "policyTypes"))
    c.label_selector(spec.get("podSelector"), "spec.podSelector")
    ingress = _rules(c, spec.get("ingress"), "spec.ingress", "from")
    egress = _rules(c, spec.get("egress"), "spec.egress", "to")
    declared = _policy_types(c, spec.get("policyTypes"))
    c.raise_if_any("NetworkPolicy", meta["name"])

    namespace = meta["namespace"]
    calico_spec: dict[str, Any] = {
        "order": POLICY_ORDER,
        "selector": _selector(spec.get("podSelector") or {}, pod=True),
        "types": _calico_types(declared, bool(egress)),
    }
    ingress_rules = [r for peers, ports in ingress for r in _allow_rules(peers, ports, True)]
    egress_rules = [r for peers, ports in egress for r in _allow_rules(peers, ports, False)]
    if ingress_rules:
        calico_spec["ingress"] = ingress_rules
    if egress_rules:
        calico_spec["egress"] = egress_rules
    return normalize(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "NetworkPolicy",
            "metadata": {"name": POLICY_PREFIX + meta["name"], "namespace": namespace},
            "spec": calico_spec,
        }
    )


Rule = tuple[list[dict[str, Any]], list[_Port]]


def _rules(c: Checker, value: Any, path: str, peers_key: str) -> list[Rule]:
    rules: list[Rule] = []
    for i, raw in enumerate(c.listing(value, path)):
        where = f"{path}[{i}]"
        rule = c.mapping(raw, where, ("ports", peers_key))
        ports = [
            _port(c, p, f"{where}.ports[{j}]")
            for j, p in enumerate(c.listing(rule.get("ports"), f"{where}.ports"))
        ]
        peers = [
            _peer(c, p, f"{where}.{peers_key}[{j}]")
            for j, p in enumerate(c.listing(rule.get(peers_key), f"{where}.{peers_key}"))
        ]
        rules.append((peers, ports))
    return rules


def _port(c: Checker, raw: Any, path: str) -> _Port:
    entry = c.mapping(raw, path, ("protocol", "port", "endPort"))
    protocol = c.string(entry.get("protocol"), f"{path}.protocol") or "TCP"
    if protocol not in PORT_PROTOCOLS:
        c.unsupported(f"{path}.protocol", protocol, sorted(PORT_PROTOCOLS))
    port = entry.get("port")
    end_port = c.integer(entry.get("endPort"), f"{path}.endPort")
    if isinstance(port, bool) or not isinstance(port, int | str | None):
        c.invalid(f"{path}.port", port, "must be a port number or a port name")
        port = None
    elif isinstance(port, int):
        c.port_number(port, f"{path}.port")
        if end_port is not None:
            if end_port < port:
                c.invalid(f"{path}.endPort", end_port, "must be greater than or equal to `port`")
            c.port_number(end_port, f"{path}.endPort")
    elif isinstance(port, str):
        if end_port is not None:
            c.invalid(
                f"{path}.endPort", end_port, "may not be specified when `port` is non-numeric"
            )
        c.port_name(port, f"{path}.port")
    elif end_port is not None:
        c.invalid(f"{path}.endPort", end_port, "may not be specified when `port` is not specified")
    return _Port(protocol, port, end_port)


def _peer(c: Checker, raw: Any, path: str) -> dict[str, Any]:
    peer = c.mapping(raw, path, ("podSelector", "namespaceSelector", "ipBlock"))
    present = [
        k for k in ("podSelector", "namespaceSelector", "ipBlock") if peer.get(k) is not None
    ]
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            c.label_selector(peer[key], f"{path}.{key}")
    if "ipBlock" in present:
        _ip_block(c, peer["ipBlock"], f"{path}.ipBlock")
    if not present:
        c.required(path, "must specify a peer")
    elif len(present) > 1 and "ipBlock" in present:
        c.forbidden(path, "may not specify both ipBlock and another peer")
    return peer


def _ip_block(c: Checker, raw: Any, path: str) -> None:
    block = c.mapping(raw, path, ("cidr", "except"))
    cidr = c.string(block.get("cidr"), f"{path}.cidr")
    if not cidr:
        c.required(f"{path}.cidr")
        return
    network = _cidr(c, cidr, f"{path}.cidr")
    for i, raw_except in enumerate(c.listing(block.get("except"), f"{path}.except")):
        where = f"{path}.except[{i}]"
        text = c.string(raw_except, where)
        excluded = None if text is None else _cidr(c, text, where)
        if network is None or excluded is None:
            continue
        if (
            excluded.version != network.version
            or not excluded.subnet_of(network)  # type: ignore[arg-type]
            or excluded.prefixlen <= network.prefixlen
        ):
            c.invalid(where, text, "must be a strict subset of `cidr`")


def _cidr(c: Checker, text: str, path: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        if "/" not in text:
            raise ValueError(text)
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        c.invalid(path, text, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
        return None


def _policy_types(c: Checker, value: Any) -> list[str]:
    types = c.listing(value, "spec.policyTypes")
    if len(types) > len(POLICY_TYPES):
        c.invalid("spec.policyTypes", types, "may not specify more than two policyTypes")
        return []
    for i, kind in enumerate(types):
        if kind not in POLICY_TYPES:
            c.unsupported(f"spec.policyTypes[{i}]", kind, POLICY_TYPES)
    return types


def _calico_types(declared: list[str], has_egress_rules: bool) -> list[str]:
    """The apiserver's default (Ingress, plus Egress if there are egress rules), then
    Calico's order: Ingress before Egress, each once."""
    if not declared:
        declared = ["Ingress", "Egress"] if has_egress_rules else ["Ingress"]
    return [t for t in POLICY_TYPES if t in declared]


def _selector(selector: dict[str, Any] | None, pod: bool) -> str:
    """A label selector in Calico's syntax. Pod selectors are pinned to Kubernetes pods;
    an empty namespace selector means every namespace, an absent one the policy's own."""
    parts = [ORCHESTRATOR_CLAUSE] if pod else []
    if selector is None:
        return " && ".join(parts)
    labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not pod and not labels and not expressions:
        return "all()"
    parts += [f"{key} == '{labels[key]}'" for key in sorted(labels)]
    for expr in expressions:
        key, values = expr["key"], "', '".join(expr.get("values") or [])
        parts.append(
            {
                "In": f"{key} in {{ '{values}' }}",
                "NotIn": f"{key} not in {{ '{values}' }}",
                "Exists": f"has({key})",
                "DoesNotExist": f"! has({key})",
            }[expr["operator"]]
        )
    return " && ".join(parts)


def _entity(peer: dict[str, Any] | None) -> dict[str, Any]:
    """The EntityRule fields that pick a peer: nets for an ipBlock, else selectors."""
    if peer is None:
        return {}
    block = peer.get("ipBlock")
    if block is not None:
        entity: dict[str, Any] = {"nets": [str(ipaddress.ip_network(block["cidr"], strict=False))]}
        excepts = [str(ipaddress.ip_network(e, strict=False)) for e in block.get("except") or []]
        if excepts:
            entity["notNets"] = excepts
        return entity
    entity = {"selector": _selector(peer.get("podSelector"), pod=True)}
    namespace_selector = _selector(peer.get("namespaceSelector"), pod=False)
    if namespace_selector:
        entity["namespaceSelector"] = namespace_selector
    return entity


PortValue = int | str


def _allow_rules(
    peers: list[dict[str, Any]], ports: list[_Port], ingress: bool
) -> list[dict[str, Any]]:
    """One Allow rule per (protocol, peer): protocols in sorted order, each with its ports
    merged; a protocol listed once without a port allows all of its ports."""
    # "" is no protocol at all: a rule without ports matches every protocol.
    by_protocol: dict[str, list[PortValue] | None] = {} if ports else {"": None}
    for entry in ports:
        if entry.port is None:
            by_protocol[entry.protocol] = None
        elif entry.protocol not in by_protocol:
            by_protocol[entry.protocol] = [_port_value(entry)]
        elif (merged := by_protocol[entry.protocol]) is not None:
            merged.append(_port_value(entry))
    rules = []
    for protocol in sorted(by_protocol):
        port_list = simplify_ports(by_protocol[protocol] or [])
        for peer in peers or [None]:
            rule: dict[str, Any] = {"action": "Allow"}
            if protocol:
                rule["protocol"] = protocol
            dest: dict[str, Any] = {"ports": port_list} if port_list else {}
            if ingress:
                rule["source"] = _entity(peer)
                rule["destination"] = dest
            else:
                rule["destination"] = {**dest, **_entity(peer)}
            rules.append(rule)
    return rules


def _port_value(entry: _Port) -> PortValue:
    if isinstance(entry.port, str):
        return entry.port
    assert entry.port is not None
    if entry.end_port is None or entry.end_port == entry.port:
        return entry.port
    return f"{entry.port}:{entry.end_port}"


def simplify_ports(ports: list[PortValue]) -> list[PortValue]:
    """The fewest numbers and ranges covering the same ports, after the named ports.

    As Calico's SimplifyPorts: a list covering at most one numeric port is kept as given.
    """
    names = [p for p in ports if isinstance(p, str) and ":" not in p]
    spans = sorted(_span(p) for p in ports if not (isinstance(p, str) and ":" not in p))
    if sum(hi - lo + 1 for lo, hi in spans) <= 1:
        return ports
    merged: list[list[int]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [*names, *(lo if lo == hi else f"{lo}:{hi}" for lo, hi in merged)]


def _span(port: PortValue) -> tuple[int, int]:
    if isinstance(port, int):
        return port, port
    lo, _, hi = port.partition(":")
    return int(lo), int(hi)


# --- Namespace and ServiceAccount ----------------------------------------------------------


def namespace_profile(doc: dict[str, Any]) -> dict[str, Any]:
    """Validate a v1 Namespace document and return its `kns.<ns>` Profile: allow-all rules
    and the namespace's labels as `pcns.<key>`, plus `pcns.projectcalico.org/name`."""
    c = Checker()
    check_top_level(c, doc, ("status",))
    meta = c.metadata(doc.get("metadata"), namespaced=False, name_rule="label")
    spec = c.mapping(doc.get("spec"), "spec", ("finalizers",))
    c.listing(spec.get("finalizers"), "spec.finalizers")
    c.mapping(doc.get("status"), "status", ("phase", "conditions"))
    c.raise_if_any("Namespace", meta["name"])
    name = meta["name"]
    labels = {**meta["labels"], NAMESPACE_NAME_LABEL: name}
    return _profile(
        namespace_profile_name(name),
        NAMESPACE_LABEL_PREFIX,
        labels,
        name,
        {"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]},
    )


SERVICE_ACCOUNT_FIELDS = ("secrets", "imagePullSecrets", "automountServiceAccountToken")


def service_account_profile(doc: dict[str, Any]) -> dict[str, Any]:
    """Validate a v1 ServiceAccount document and return its `ksa.<ns>.<sa>` Profile: no
    rules, the account's labels as `pcsa.<key>`, plus `pcsa.projectcalico.org/name`."""
    c = Checker()
    check_top_level(c, doc, SERVICE_ACCOUNT_FIELDS)
    meta = c.metadata(doc.get("metadata"), namespaced=True)
    c.raise_if_any("ServiceAccount", meta["name"])
    return _profile(
        service_account_profile_name(meta["namespace"], meta["name"]),
        SERVICE_ACCOUNT_LABEL_PREFIX,
        meta["labels"],
        meta["name"],
        {},
    )


def _profile(
    name: str, prefix: str, labels: dict[str, str], own_name: str, rules: dict[str, Any]
) -> dict[str, Any]:
    from pycalico.api.resource import normalize

    to_apply = {prefix + k: v for k, v in labels.items()}
    to_apply[prefix + NAME_LABEL] = own_name
    return normalize(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "Profile",
            "metadata": {"name": name},
            "spec": {**rules, "labelsToApply": to_apply},
        }
    )

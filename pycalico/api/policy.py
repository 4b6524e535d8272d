"""Policy kinds: NetworkPolicy, GlobalNetworkPolicy, Profile, Tier, and the rule model."""

from __future__ import annotations

import ipaddress
from typing import Any

from pycalico.api import checks
from pycalico.api.kind import Kind
from pycalico.api.meta import NAME_FIELD
from pycalico.api.schema import (
    Bool,
    Custom,
    Enum,
    Field,
    FieldError,
    Float,
    GoTag,
    Int,
    ListOf,
    MapOf,
    Str,
    Struct,
    go_field_name,
)

ACTIONS = ("Allow", "Deny", "Log", "Pass")
PORT_PROTOCOLS = {"tcp", "udp", "sctp", 6, 17, 132}
ICMP_PROTOCOLS = {"icmp", "icmpv6", 1, 58}
DEFAULT_TIER = "default"
BUILTIN_TIERS = frozenset({DEFAULT_TIER, "adminnetworkpolicy", "baselineadminnetworkpolicy"})
TIER_LABEL = "projectcalico.org/tier"


def _protocol_key(value: int | str | None) -> int | str | None:
    return value.lower() if isinstance(value, str) else value


def _net_versions(nets: list[str]) -> set[int]:
    return {ipaddress.ip_network(n, strict=False).version for n in nets}


def _check_entity(entity: dict[str, Any], path: str) -> list[FieldError]:
    errors = []
    # libcalico-go's rule validator names these fields from the rule: `Source.Nets`.
    side = go_field_name(path)
    for key in ("nets", "notNets"):
        nets = entity.get(key, [])
        if len(_net_versions(nets)) > 1:
            errors.append(
                FieldError(
                    f"{path}.{key}",
                    nets,
                    "rule contains both IPv4 and IPv6 CIDRs",
                    f"{side}.{go_field_name(key)}",
                )
            )
    for net in entity.get("notNets", []):
        if ipaddress.ip_network(net, strict=False).prefixlen == 0:
            errors.append(
                FieldError(
                    f"{path}.notNets",
                    net,
                    "catch-all CIDR in negation creates logical contradiction (matches no traffic)",
                    f"{side}.NotNets",
                )
            )
    for key in ("selector", "notSelector"):
        if "global()" in entity.get(key, "").replace(" ", ""):
            errors.append(
                FieldError(
                    f"{path}.{key}",
                    entity[key],
                    "global() can only be used in an EntityRule namespaceSelector",
                )
            )
    if "services" in entity:
        clashes = [
            k
            for k in (
                "selector",
                "notSelector",
                "namespaceSelector",
                "nets",
                "notNets",
                "serviceAccounts",
            )
            if k in entity
        ]
        if clashes:
            errors.append(
                FieldError(
                    f"{path}.services",
                    entity["services"].get("name", ""),
                    f"cannot specify {clashes[0]} and services on the same rule",
                )
            )
        if not entity["services"].get("name"):
            errors.append(FieldError(f"{path}.services.name", "", "services must specify a name"))
    return errors


def _rule_cidr(value: Any) -> str:
    if not isinstance(value, str) or checks.ip_or_cidr(value):
        raise ValueError("invalid CIDR")
    return value


ENTITY_RULE = Struct(
    (
        Field("nets", ListOf(Custom(_rule_cidr))),
        Field("selector", Str((checks.selector,))),
        Field("namespaceSelector", Str((checks.selector,))),
        Field(
            "services",
            Struct(
                (
                    Field("name", Str((checks.dns1123_subdomain,))),
                    Field("namespace", Str((checks.dns1123_label,))),
                )
            ),
        ),
        Field("ports", ListOf(Custom(checks.port))),
        Field("notNets", ListOf(Custom(_rule_cidr))),
        Field("notSelector", Str((checks.selector,))),
        Field("notPorts", ListOf(Custom(checks.port))),
        Field(
            "serviceAccounts",
            Struct((Field("names", ListOf(Str())), Field("selector", Str((checks.selector,))))),
        ),
    ),
    checks=(_check_entity,),
)

ICMP_FIELDS = Struct(
    (
        Field("type", Int(0, 254), omitempty=False),
        Field("code", Int(0, 255), omitempty=False),
    ),
    checks=(
        lambda icmp, path: (
            [FieldError(f"{path}.code", icmp["code"], "ICMP code specified without an ICMP type")]
            if "code" in icmp and "type" not in icmp
            else []
        ),
    ),
)


def _check_rule(rule: dict[str, Any], path: str) -> list[FieldError]:
    errors = []
    proto = _protocol_key(rule.get("protocol"))
    for side in ("source", "destination"):
        entity = rule.get(side, {})
        for key in ("ports", "notPorts"):
            if entity.get(key) and proto not in PORT_PROTOCOLS:
                errors.append(
                    FieldError(
                        f"{path}.{side}.{key}",
                        entity[key],
                        "rules that specify ports must set protocol to TCP or UDP or SCTP",
                        f"{go_field_name(side)}.{go_field_name(key)}",
                    )
                )
        version = rule.get("ipVersion")
        for key in ("nets", "notNets"):
            versions = _net_versions(entity.get(key, []))
            if version is not None and versions and versions != {version}:
                errors.append(
                    FieldError(
                        f"{path}.{side}.{key}",
                        entity[key],
                        "rule IP version doesn't match CIDR version",
                        f"{go_field_name(side)}.{go_field_name(key)}",
                    )
                )
    for icmp_key, proto_key in (("icmp", "protocol"), ("notICMP", "notProtocol")):
        if icmp_key in rule and _protocol_key(rule.get(proto_key)) not in ICMP_PROTOCOLS:
            errors.append(
                FieldError(
                    f"{path}.{icmp_key}",
                    rule[icmp_key],
                    "rules that specify ICMP fields must set protocol to ICMP",
                )
            )
    for proto_key in ("protocol", "notProtocol"):
        p = _protocol_key(rule.get(proto_key))
        if p in ("icmp", 1) and rule.get("ipVersion", 4) != 4:
            errors.append(
                FieldError(
                    f"{path}.ipVersion",
                    rule["ipVersion"],
                    "must set ipversion to '4' with protocol icmp",
                )
            )
        if p in ("icmpv6", 58) and rule.get("ipVersion", 6) != 6:
            errors.append(
                FieldError(
                    f"{path}.ipVersion",
                    rule["ipVersion"],
                    "must set ipversion to '6' with protocol icmpv6",
                )
            )
    if "http" in rule:
        if rule["action"] != "Allow":
            errors.append(
                FieldError(f"{path}.http", rule["http"], "only valid for Allow rules")
            )
        if proto not in (None, "tcp", 6):
            errors.append(
                FieldError(
                    f"{path}.protocol",
                    rule["protocol"],
                    "rules that specify HTTP fields must set protocol to TCP or empty",
                )
            )
    return errors


def _check_http_path(p: dict[str, Any], path: str) -> list[FieldError]:
    if ("exact" in p) == ("prefix" in p):
        return [FieldError(path, p, "an HTTP path must specify exactly one of exact or prefix")]
    return []


RULE = Struct(
    (
        Field("action", Enum(ACTIONS), required=True),
        Field(
            "ipVersion",
            Custom(lambda v: _enum_int(v, (4, 6), "ipVersion must be 4 or 6")),
            omitempty=False,
        ),
        Field("protocol", Custom(checks.protocol), omitempty=False),
        Field("icmp", ICMP_FIELDS),
        Field("notProtocol", Custom(checks.protocol), omitempty=False),
        Field("notICMP", ICMP_FIELDS),
        # Go's omitempty never drops a struct value, so calicoctl always prints these two.
        Field("source", ENTITY_RULE, default={}),
        Field("destination", ENTITY_RULE, default={}),
        Field(
            "http",
            Struct(
                (
                    Field("methods", ListOf(Str())),
                    Field(
                        "paths",
                        ListOf(
                            Struct(
                                (Field("exact", Str()), Field("prefix", Str())),
                                checks=(_check_http_path,),
                            )
                        ),
                    ),
                )
            ),
        ),
        Field("metadata", Struct((Field("annotations", MapOf(Str())),))),
    ),
    checks=(_check_rule,),
)


def _enum_int(value: Any, allowed: tuple[int, ...], reason: str) -> int:
    if isinstance(value, bool) or value not in allowed:
        raise ValueError(reason)
    return int(value)


def default_policy_types(spec: dict[str, Any]) -> list[str]:
    """Calico's defaulting: egress rules alone mean [Egress]; both mean both."""
    has_egress = bool(spec.get("egress"))
    has_ingress = bool(spec.get("ingress"))
    if has_egress and not has_ingress:
        return ["Egress"]
    if has_egress:
        return ["Ingress", "Egress"]
    return ["Ingress"]


def _unique_types(types: list[str]) -> str | None:
    return "duplicate policy type" if len(set(types)) != len(types) else None


def _policy_fields(global_policy: bool) -> tuple[Field, ...]:
    common_head = (
        Field("tier", Str((checks.dns1123_label,)), default=DEFAULT_TIER),
        Field("order", Float()),
        Field("ingress", ListOf(RULE)),
        Field("egress", ListOf(RULE)),
        Field("selector", Str((checks.selector,))),
        Field(
            "types",
            ListOf(Enum(("Ingress", "Egress")), (_unique_types,)),
            default=default_policy_types,
        ),
    )
    tail = (
        Field("serviceAccountSelector", Str((checks.selector,))),
        Field("performanceHints", ListOf(Enum(("AssumeNeededOnEveryNode",)))),
    )
    if not global_policy:
        return common_head + tail
    return (
        *common_head,
        Field("doNotTrack", Bool()),
        Field("preDNAT", Bool()),
        Field("applyOnForward", Bool()),
        tail[0],
        Field("namespaceSelector", Str((checks.selector,))),
        tail[1],
    )


def _check_policy_selectors(spec: dict[str, Any], path: str) -> list[FieldError]:
    return [
        FieldError(
            f"{path}.{key}",
            spec[key],
            "global() can only be used in an EntityRule namespaceSelector",
        )
        for key in ("selector", "serviceAccountSelector")
        if "global()" in spec.get(key, "").replace(" ", "")
    ]


def _check_global_policy(spec: dict[str, Any], path: str) -> list[FieldError]:
    """libcalico-go v3.30's validateGlobalNetworkPolicy, in its order and words (the types
    are defaulted before it runs, so egress rules alone also make an Egress type)."""
    errors = _check_policy_selectors(spec, path)
    pre_dnat, untracked = spec.get("preDNAT"), spec.get("doNotTrack")
    if untracked and pre_dnat:
        reason = "PreDNAT and DoNotTrack cannot both be true, for a given PolicySpec"
        errors.append(FieldError(f"{path}.preDNAT", True, reason, "PolicySpec.PreDNAT"))
    if pre_dnat and spec.get("egress"):
        reason = "PreDNAT PolicySpec cannot have any Egress rules"
        errors.append(FieldError(f"{path}.egress", None, reason, "PolicySpec.Egress"))
    if pre_dnat and "Egress" in spec.get("types", []):
        reason = "PreDNAT PolicySpec cannot have 'egress' Type"
        errors.append(FieldError(f"{path}.types", spec["types"], reason, "PolicySpec.Types"))
    if (untracked or pre_dnat) and not spec.get("applyOnForward"):
        reason = (
            "ApplyOnForward must be true if either PreDNAT or DoNotTrack is true, "
            "for a given PolicySpec"
        )
        errors.append(
            FieldError(f"{path}.applyOnForward", False, reason, "PolicySpec.ApplyOnForward")
        )
    return errors


# Kubernetes and OpenStack policies: their names carry the default tier in their own form.
_SOURCE_PREFIXES = ("knp.default.", "ossg.default.")


def _policy_name_check(kind: str) -> Any:
    def check(resource: dict[str, Any]) -> list[FieldError]:
        name = resource["metadata"]["name"]
        tier = resource["spec"].get("tier", DEFAULT_TIER)
        if tier != DEFAULT_TIER and not name.startswith(tier + "."):
            return [
                FieldError(
                    "metadata.name",
                    name,
                    f"{kind} name must be prefixed with its tier: '{tier}.<name>'",
                    NAME_FIELD,
                )
            ]
        # A dotted name is stored as it is, and its first label is read as the tier.
        if (
            tier == DEFAULT_TIER
            and "." in name
            and not name.startswith(("default.", *_SOURCE_PREFIXES))
        ):
            return [
                FieldError(
                    "metadata.name",
                    name,
                    f"{kind} name in the default tier must be '<name>' or 'default.<name>'",
                    NAME_FIELD,
                )
            ]
        return []

    return check


def _tier_label(resource: dict[str, Any]) -> dict[str, str]:
    return {TIER_LABEL: resource["spec"]["tier"]}


def _policy_name(name: str) -> str | None:
    """A label or `<tier>.<label>` (or a synthesised `knp.default.<subdomain>`), worded as
    libcalico-go words every policy name it refuses."""
    valid = checks.dns1123_subdomain(name) is None and (
        name.startswith(_SOURCE_PREFIXES) or name.count(".") <= 1
    )
    return checks.too_long(name, checks.SUBDOMAIN_MAX) or (None if valid else checks.LABEL_REASON)


NETWORK_POLICY = Kind(
    "NetworkPolicy",
    "networkpolicies",
    namespaced=True,
    spec=Struct(_policy_fields(global_policy=False), checks=(_check_policy_selectors,)),
    name_check=_policy_name,
    checks=(_policy_name_check("NetworkPolicy"),),
    derived_labels=_tier_label,
)

GLOBAL_NETWORK_POLICY = Kind(
    "GlobalNetworkPolicy",
    "globalnetworkpolicies",
    namespaced=False,
    spec=Struct(_policy_fields(global_policy=True), checks=(_check_global_policy,)),
    name_check=_policy_name,
    checks=(_policy_name_check("GlobalNetworkPolicy"),),
    derived_labels=_tier_label,
)


def _labels(labels: dict[str, str]) -> str | None:
    bad = any(checks.label_key(k) or checks.label_value(v) for k, v in labels.items())
    return GoTag("labels") if bad else None


# validateTier's orders for the tiers Calico creates itself, and its words for them.
BUILTIN_TIER_ORDERS = {
    DEFAULT_TIER: (1_000_000.0, "default tier order must be 1e+06"),
    "adminnetworkpolicy": (1_000.0, "adminnetworkpolicy tier order must be 1000"),
    "baselineadminnetworkpolicy": (
        10_000_000.0,
        "baselineadminnetworkpolicy tier order must be 1e+07",
    ),
}


def _check_builtin_tier_order(resource: dict[str, Any]) -> list[FieldError]:
    name, order = resource["metadata"]["name"], resource["spec"].get("order")
    if name not in BUILTIN_TIER_ORDERS or order == BUILTIN_TIER_ORDERS[name][0]:
        return []
    # Go prints the *float64 itself: `<nil>` when unset, else an address (pycalico: the order).
    shown = "<nil>" if order is None else order
    return [FieldError("spec.order", shown, BUILTIN_TIER_ORDERS[name][1], "TierSpec.Order")]


PROFILE = Kind(
    "Profile",
    "profiles",
    namespaced=False,
    spec=Struct(
        (
            Field("ingress", ListOf(RULE)),
            Field("egress", ListOf(RULE)),
            # Calico's `labels` tag checks the map as one value.
            Field("labelsToApply", MapOf(Str(), checks=(_labels,))),
        )
    ),
)

TIER = Kind(
    "Tier",
    "tiers",
    namespaced=False,
    spec=Struct(
        (
            Field("order", Float(), omitempty=False),
            Field("defaultAction", Enum(("Deny", "Pass"), tag="oneof"), default="Deny"),
        )
    ),
    name_check=checks.tier_name,
    checks=(_check_builtin_tier_order,),
)

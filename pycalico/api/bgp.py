"""BGPConfiguration, BGPPeer and BGPFilter."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from pycalico.api import checks
from pycalico.api.duration import go_duration
from pycalico.api.kind import Kind
from pycalico.api.schema import (
    Bool,
    Custom,
    Enum,
    Field,
    FieldError,
    GoTag,
    Int,
    ListOf,
    Str,
    Struct,
    ValidationErrors,
    go_field_name,
    go_struct,
    go_tag,
    type_name,
)

LOG_SEVERITIES = ("Trace", "Debug", "Info", "Warning", "Error", "Fatal", "Panic", "None")
_COMMUNITY_RE = re.compile(r"[0-9]+:[0-9]+(:[0-9]+)?")
_REQUIRED = GoTag("required")


def _community_value_errors(value: str) -> list[str] | None:
    """Calico's isValidCommunity: None when the value is not `aa:nn` or `aa:nn:mm` at all,
    else a reason per part too big for its 16 (or, in a large community, 32) bits."""
    if not _COMMUNITY_RE.fullmatch(value):
        return None
    bits = 16 if value.count(":") == 1 else 32
    return [
        f"invalid community value, expected {bits} bit value"
        for part in value.split(":")
        if int(part) >= 1 << bits
    ]


# Calico's `net` tag refuses what is not an address or CIDR; pycalico also wants the prefix.
_NET = go_tag("net", checks.ip_or_cidr, checks.cidr)


def _cidr_list() -> ListOf:
    # Calico's tag is `omitempty,net`; pycalico also wants the CIDR written.
    return ListOf(Struct((Field("cidr", Str((_NET,)), required=True, missing=_REQUIRED),)))


SECRET_KEY_REF = Struct(
    (
        Field(
            "secretKeyRef",
            Struct(
                (
                    Field("name", Str(), required=True),
                    Field("key", Str(), required=True),
                    Field("optional", Bool(), omitempty=False),
                )
            ),
        ),
    )
)


_COMMUNITY_VALUE = "Spec.Communities[].Value"
_ADVERTISED_COMMUNITY = "Spec.PrefixAdvertisement[].Communities[]"


def _check_communities(spec: dict[str, Any], path: str) -> list[FieldError]:
    """validateBGPConfigurationSpec, in its order and with its field names: a community's
    value is `aa:nn` or `aa:nn:mm` within range, defined communities must be used, and an
    advertisement's community is such a value or the name of a defined one."""
    communities = spec.get("communities", [])
    errors = []
    for i, community in enumerate(communities):
        value, where = community["value"], f"{path}.communities[{i}].value"
        reasons = _community_value_errors(value)
        errors.extend(FieldError(where, value, r, _COMMUNITY_VALUE) for r in reasons or ())
        if reasons is None:
            errors.append(
                FieldError(
                    where, value, "invalid community value or format used.", _COMMUNITY_VALUE
                )
            )
    advertisements = spec.get("prefixAdvertisements", [])
    if communities and not advertisements:
        errors.append(
            FieldError(
                f"{path}.communities",
                "[" + " ".join(go_struct(c["name"], c["value"]) for c in communities) + "]",
                "communities are defined but not used in Spec.PrefixAdvertisement[].",
                "Spec.Communities[]",
            )
        )
    defined = {c["name"] for c in communities}
    for i, advertisement in enumerate(advertisements):
        for j, community in enumerate(advertisement.get("communities", [])):
            where = f"{path}.prefixAdvertisements[{i}].communities[{j}]"
            reasons = _community_value_errors(community)
            errors.extend(
                FieldError(where, community, r, _ADVERTISED_COMMUNITY) for r in reasons or ()
            )
            if reasons is None and community not in defined:
                errors.append(
                    FieldError(
                        where,
                        community,
                        "community used is invalid or not defined.",
                        _ADVERTISED_COMMUNITY,
                    )
                )
    if spec.get("nodeToNodeMeshEnabled") is False:
        # Calico shows the whole spec as Go prints it, pointers as addresses: pycalico
        # shows no value.
        for key in ("nodeMeshPassword", "nodeMeshMaxRestartTime"):
            if key in spec:
                go_name = go_field_name(key)
                errors.append(
                    FieldError(
                        f"{path}.{key}",
                        None,
                        f"spec.{go_name} cannot be set if spec.NodeToNodeMesh is disabled",
                        f"Spec.{go_name}",
                    )
                )
    return errors


# What only the cluster-wide `default` BGPConfiguration may set, in the order and words of
# libcalico-go's client (ValidateDefaultOnlyFields), which checks it after validation.
_DEFAULT_ONLY = (
    ("nodeToNodeMeshEnabled", "nodeToNodeMeshEnabled"),
    ("asNumber", "ASNumber"),
    ("serviceLoadBalancerIPs", "ServiceLoadBalancerIPs"),
    ("serviceExternalIPs", "ServiceExternalIPs"),
    ("serviceClusterIPs", "ServiceClusterIPs"),
    ("nodeMeshPassword", "nodeMeshPassword"),
    ("nodeMeshMaxRestartTime", "nodeMeshMaxRestartTime"),
)


def _default_only_fields(resource: dict[str, Any]) -> list[FieldError]:
    if resource["metadata"]["name"] == "default":
        return []
    return [
        FieldError(
            f"spec.{key}",
            None,
            f"Cannot set {words} on a non default BGP Configuration.",
            f"BGPConfiguration.Spec.{go_field_name(key)}",
        )
        for key, words in _DEFAULT_ONLY
        if key in resource["spec"]
    ]


def _advertised_cidr(value: Any) -> str:
    """An advertisement's CIDR: Calico's `net` tag refuses it, and then, if it is not an
    address at all, validateBGPConfigurationSpec does too."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not a {type_name(value)}")
    reason = _NET(value)
    if not reason:
        return value
    errors = [FieldError("", value, reason, "CIDR")]
    if checks.ip_or_cidr(value):
        errors.append(
            FieldError("", value, "invalid CIDR value.", "Spec.PrefixAdvertisement[].CIDR")
        )
    raise ValidationErrors(errors)


def _ignored_interface(value: str) -> str | None:
    # Globs for BIRD's interface patterns; a lone "*" would match every interface.
    if value != "*" and _IGNORED_INTERFACE_RE.fullmatch(value):
        return None
    return GoTag("ignoredInterface")


_IGNORED_INTERFACE_RE = re.compile(r"[a-zA-Z0-9_.*-]{1,15}")


BGPCONFIG_SPEC = Struct(
    (
        Field("logSeverityScreen", Enum(LOG_SEVERITIES, tag="logLevel")),
        Field("nodeToNodeMeshEnabled", Bool(), omitempty=False),
        Field("asNumber", Custom(checks.as_number), omitempty=False),
        Field("serviceLoadBalancerIPs", _cidr_list()),
        Field("serviceExternalIPs", _cidr_list()),
        Field("serviceClusterIPs", _cidr_list()),
        Field(
            "communities",
            ListOf(
                Struct(
                    (
                        # Calico's `name` tag allows a subdomain; pycalico a label only.
                        Field(
                            "name",
                            Str((go_tag("name", checks.dns1123_subdomain, checks.dns1123_label),)),
                            required=True,
                            missing=_REQUIRED,
                        ),
                        Field("value", Str(), required=True, missing=_REQUIRED),
                    )
                )
            ),
        ),
        Field(
            "prefixAdvertisements",
            ListOf(
                Struct(
                    (
                        Field("cidr", Custom(_advertised_cidr), required=True, missing=_REQUIRED),
                        Field("communities", ListOf(Str())),
                    )
                )
            ),
        ),
        Field("listenPort", Int(1, 65535, "gt", "lte")),
        Field("nodeMeshPassword", SECRET_KEY_REF),
        Field("nodeMeshMaxRestartTime", Custom(go_duration)),
        Field("bindMode", Enum(("None", "NodeIP"))),
        Field("ignoredInterfaces", ListOf(Str((_ignored_interface,)))),
        Field("localWorkloadPeeringIPV4", Str((go_tag("ipv4", checks.ipv4_address),))),
        Field("localWorkloadPeeringIPV6", Str((go_tag("ipv6", checks.ipv6_address),))),
    ),
    checks=(_check_communities,),
)

BGP_CONFIGURATION = Kind(
    "BGPConfiguration",
    "bgpconfigurations",
    namespaced=False,
    spec=BGPCONFIG_SPEC,
    checks=(_default_only_fields,),
)


# Calico only looks for a port when the whole value has one of these shapes.
_IPV4_PORT_RE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+")
_IPV6_PORT_RE = re.compile(r"\[[0-9a-fA-F:.]+\]:[0-9]+")
_PEER_IP_FORMS = "must be <IP>, <IPv4>:<port> or [<IPv6>]:<port>"


def peer_address(value: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int | None]:
    """The address and port (None: BGP's own) of a peerIP; ValueError if it is not one."""
    host, port = value, None
    if _IPV4_PORT_RE.fullmatch(value) or _IPV6_PORT_RE.fullmatch(value):
        host, _, digits = value.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        port = int(digits)
        if not 1 <= port <= 65535:
            raise ValueError("invalid peer port: must be 1-65535")
    if "%" in host:  # a zone index: Python parses it, Go's net.ParseIP does not
        raise ValueError(f"invalid peer IP: {_PEER_IP_FORMS}")
    try:
        return ipaddress.ip_address(host), port
    except ValueError:
        raise ValueError(f"invalid peer IP: {_PEER_IP_FORMS}") from None


def _peer_ip(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"invalid peer IP: {_PEER_IP_FORMS}")
    peer_address(value)
    return value


def _check_peer(spec: dict[str, Any], path: str) -> list[FieldError]:
    errors = []
    if spec.get("node") and spec.get("nodeSelector"):
        errors.append(
            FieldError(
                f"{path}.node",
                spec["node"],
                "Node field must be empty when NodeSelector is specified",
            )
        )
    if spec.get("peerSelector"):
        for key in ("peerIP", "asNumber"):
            if key in spec:
                go_name = go_field_name(key)
                errors.append(
                    FieldError(
                        f"{path}.{key}",
                        spec[key],
                        f"{go_name} field must be empty when PeerSelector is specified",
                    )
                )
    elif "peerIP" not in spec and "localWorkloadSelector" not in spec:
        errors.append(FieldError(f"{path}.peerIP", "", "peerIP or peerSelector must be set"))
    elif "peerIP" in spec and "asNumber" not in spec:
        errors.append(FieldError(f"{path}.asNumber", "", "asNumber must be set with peerIP"))
    if "reachableBy" in spec:
        if "peerIP" not in spec:
            # Calico's own spelling, so that a search for its message finds this one.
            reason = "ReachablyBy field must be empty when PeerIP is empty"
        elif ipaddress.ip_address(spec["reachableBy"]).version != (
            peer_address(spec["peerIP"])[0].version
        ):
            reason = "ReachableBy and PeerIP address family mismatched"
        else:
            reason = ""
        if reason:
            errors.append(FieldError(f"{path}.reachableBy", spec["reachableBy"], reason))
    if spec.get("keepOriginalNextHop") and "nextHopMode" in spec:
        errors.append(
            FieldError(
                f"{path}.keepOriginalNextHop",
                True,
                "The KeepOriginalNextHop field is deprecated. It must not be set to true when "
                "NextHopMode is configured.",
            )
        )
    return errors


BGPPEER_SPEC = Struct(
    (
        Field("node", Str((checks.dns1123_subdomain,))),
        Field("peerIP", Custom(_peer_ip)),
        # Not omitempty: a written 0 is refused as an AS number rather than read as "unset".
        Field("asNumber", Custom(checks.as_number), omitempty=False),
        Field("nodeSelector", Str((checks.selector,))),
        Field("peerSelector", Str((checks.selector,))),
        Field("keepOriginalNextHop", Bool()),
        Field("nextHopMode", Enum(("Auto", "Self", "Keep"))),
        Field("password", SECRET_KEY_REF),
        Field("sourceAddress", Enum(("UseNodeIP", "None"))),
        Field("failureDetectionMode", Enum(("None", "BFDIfDirectlyConnected"))),
        Field("restartMode", Enum(("GracefulRestart", "LongLivedGracefulRestart"))),
        Field("maxRestartTime", Custom(go_duration)),
        Field("birdGatewayMode", Enum(("Recursive", "DirectIfDirectlyConnected"))),
        Field("numAllowedLocalASNumbers", Int(0, 10), omitempty=False),
        Field("ttlSecurity", Int(0, 255), omitempty=False),
        Field("reachableBy", Str((checks.ip_address,))),
        Field("filters", ListOf(Str((checks.dns1123_subdomain,)))),
        Field("localWorkloadSelector", Str((checks.selector,))),
        Field("reversePeering", Enum(("Auto", "Manual"))),
        Field("keepaliveTime", Custom(go_duration)),
        Field("localASNumber", Custom(checks.as_number), omitempty=False),
    ),
    checks=(_check_peer,),
)

BGP_PEER = Kind("BGPPeer", "bgppeers", namespaced=False, spec=BGPPEER_SPEC)


def _filter_network(version: int) -> Callable[[str], str | None]:
    """Calico's netv4/netv6: a strictly masked network of the rule's family (or a bare IP)."""

    def check(value: str) -> str | None:
        try:
            network = ipaddress.ip_network(value)
        except ValueError:
            return f"must be a strictly masked IPv{version} network"
        if network.version != version:
            return f"must be an IPv{version} network"
        return None

    return check


_FILTER_INTERFACE_RE = re.compile(r"[a-zA-Z0-9_.*-]{1,15}")


def _filter_interface(value: str) -> str | None:
    return None if _FILTER_INTERFACE_RE.fullmatch(value) else GoTag("bgpFilterInterface")


def _check_filter_rule(rule: dict[str, Any], path: str) -> list[FieldError]:
    """validateBGPFilterRule: each of its rules that the rule breaks, in its order."""
    errors = []
    cidr, operator = rule.get("cidr"), rule.get("matchOperator")
    if cidr and not operator:
        errors.append(
            FieldError(f"{path}.cidr", cidr, "MatchOperator cannot be empty when CIDR is not")
        )
    if operator and not cidr:
        errors.append(
            FieldError(
                f"{path}.matchOperator", operator, "CIDR cannot be empty when MatchOperator is not"
            )
        )
    if "prefixLength" in rule and not cidr:
        length = rule["prefixLength"]
        errors.append(
            FieldError(
                f"{path}.prefixLength",
                # Go prints the two pointers' addresses; pycalico shows what they point to.
                go_struct(length.get("min"), length.get("max")),
                "CIDR cannot be empty when PrefixLength is not",
            )
        )
    return errors


def _filter_rules(version: int) -> ListOf:
    """BGPFilterRuleV4 or V6: every field checked by a struct tag of Calico's (the network
    strictly masked, or a bare IP; prefix lengths within the family's)."""
    longest = 32 if version == 4 else 128
    length = Int(0, longest, f"bgpFilterPrefixLengthV{version}", f"bgpFilterPrefixLengthV{version}")
    return ListOf(
        Struct(
            (
                Field("cidr", Str((go_tag(f"netv{version}", _filter_network(version)),))),
                Field(
                    "prefixLength",
                    Struct(
                        (
                            Field("min", length, omitempty=False),
                            Field("max", length, omitempty=False),
                        )
                    ),
                ),
                Field("source", Enum(("RemotePeers",), tag="oneof")),
                Field("interface", Str((_filter_interface,))),
                Field(
                    "matchOperator", Enum(("Equal", "NotEqual", "In", "NotIn"), tag="matchOperator")
                ),
                Field(
                    "action",
                    Enum(("Accept", "Reject"), tag="filterAction"),
                    required=True,
                    missing=_REQUIRED,
                ),
            ),
            checks=(_check_filter_rule,),
        )
    )


BGP_FILTER = Kind(
    "BGPFilter",
    "bgpfilters",
    namespaced=False,
    spec=Struct(
        (
            Field("exportV4", _filter_rules(4)),
            Field("importV4", _filter_rules(4)),
            Field("exportV6", _filter_rules(6)),
            Field("importV6", _filter_rules(6)),
        )
    ),
)

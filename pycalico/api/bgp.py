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
    Int,
    ListOf,
    Str,
    Struct,
    go_field_name,
)

LOG_SEVERITIES = ("Trace", "Debug", "Info", "Warning", "Error", "Fatal", "Panic", "None")
_COMMUNITY_RE = re.compile(r"\d+:\d+(:\d+)?")


def _community_value(value: str) -> str | None:
    if not _COMMUNITY_RE.fullmatch(value):
        return "community value must be 'aa:nn' or 'aa:nn:mm'"
    limits = (65535, 65535) if value.count(":") == 1 else (4294967295, 4294967295, 4294967295)
    if any(int(part) > limit for part, limit in zip(value.split(":"), limits, strict=True)):
        return "community value out of range"
    return None


def _cidr_list() -> ListOf:
    return ListOf(Struct((Field("cidr", Str((checks.cidr,)), required=True),)))


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


def _check_communities(spec: dict[str, Any], path: str) -> list[FieldError]:
    """Calico's rules: defined communities must be used, and an advertisement's community is
    either a value (`aa:nn`, `aa:nn:mm`) or the name of a defined one."""
    defined = {c["name"] for c in spec.get("communities", [])}
    advertisements = spec.get("prefixAdvertisements", [])
    if defined and not advertisements:
        return [
            FieldError(
                f"{path}.communities",
                sorted(defined),
                "communities are defined but not used in spec.prefixAdvertisements",
            )
        ]
    errors = []
    for i, advertisement in enumerate(advertisements):
        for j, community in enumerate(advertisement.get("communities", [])):
            if community not in defined and _community_value(community) is not None:
                errors.append(
                    FieldError(
                        f"{path}.prefixAdvertisements[{i}].communities[{j}]",
                        community,
                        "community used is invalid or not defined",
                    )
                )
    return errors


BGPCONFIG_SPEC = Struct(
    (
        Field("logSeverityScreen", Enum(LOG_SEVERITIES)),
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
                        Field("name", Str((checks.dns1123_label,)), required=True),
                        Field("value", Str((_community_value,)), required=True),
                    )
                )
            ),
        ),
        Field(
            "prefixAdvertisements",
            ListOf(
                Struct(
                    (
                        Field("cidr", Str((checks.cidr,)), required=True),
                        Field("communities", ListOf(Str())),
                    )
                )
            ),
        ),
        Field("listenPort", Int(1, 65535)),
        Field("nodeMeshPassword", SECRET_KEY_REF),
        Field("nodeMeshMaxRestartTime", Custom(go_duration)),
        Field("bindMode", Enum(("None", "NodeIP"))),
        Field("ignoredInterfaces", ListOf(Str())),
        Field("localWorkloadPeeringIPV4", Str((checks.ipv4_address,))),
        Field("localWorkloadPeeringIPV6", Str((checks.ip_address,))),
    ),
    checks=(_check_communities,),
)

BGP_CONFIGURATION = Kind(
    "BGPConfiguration",
    "bgpconfigurations",
    namespaced=False,
    spec=BGPCONFIG_SPEC,
    name_check=checks.dns1123_subdomain,
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


def _check_filter_rule(rule: dict[str, Any], path: str) -> list[FieldError]:
    if "cidr" in rule and "matchOperator" not in rule:
        return [FieldError(f"{path}.matchOperator", "", "matchOperator is required with cidr")]
    if "matchOperator" in rule and "cidr" not in rule:
        return [FieldError(f"{path}.cidr", "", "cidr is required with matchOperator")]
    if "prefixLength" in rule and "cidr" not in rule:
        return [FieldError(f"{path}.cidr", "", "cidr is required with prefixLength")]
    return []


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
    if _FILTER_INTERFACE_RE.fullmatch(value):
        return None
    return "interface must be 1-15 characters of [a-zA-Z0-9_.*-]"


def _filter_rules(version: int) -> ListOf:
    longest = 32 if version == 4 else 128
    return ListOf(
        Struct(
            (
                Field("cidr", Str((_filter_network(version),))),
                Field(
                    "prefixLength",
                    Struct(
                        (
                            Field("min", Int(0, longest), omitempty=False),
                            Field("max", Int(0, longest), omitempty=False),
                        )
                    ),
                ),
                Field("source", Enum(("RemotePeers",))),
                Field("interface", Str((_filter_interface,))),
                Field("matchOperator", Enum(("Equal", "NotEqual", "In", "NotIn"))),
                Field("action", Enum(("Accept", "Reject")), required=True),
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

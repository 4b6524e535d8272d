"""BGPConfiguration, BGPPeer and BGPFilter."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from pycalico.api import checks
from pycalico.api.duration import go_duration
from pycalico.api.kind import Kind
from pycalico.api.schema import Bool, Custom, Enum, Field, FieldError, Int, ListOf, Str, Struct

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

BGPCONFIG_SPEC = Struct(
    (
        Field("logSeverityScreen", Enum(LOG_SEVERITIES)),
        Field("nodeToNodeMeshEnabled", Bool(), omitempty=False),
        Field("asNumber", Custom(checks.as_number)),
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
    )
)

BGP_CONFIGURATION = Kind(
    "BGPConfiguration",
    "bgpconfigurations",
    namespaced=False,
    spec=BGPCONFIG_SPEC,
    name_check=checks.dns1123_subdomain,
)


def _peer_ip(value: Any) -> str:
    """`IP`, `IP:port` or `[IPv6]:port`."""
    if not isinstance(value, str):
        raise ValueError("invalid peer IP")
    host, port = value, None
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
        if rest and port is None:
            raise ValueError("invalid peer IP")
    elif value.count(":") == 1:
        host, port = value.split(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError("invalid peer IP") from None
    if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError("invalid peer port")
    return value


def _check_peer(spec: dict[str, Any], path: str) -> list[FieldError]:
    errors = []
    if spec.get("node") and spec.get("nodeSelector"):
        errors.append(
            FieldError(
                f"{path}.node", spec["node"], "node field must be empty when nodeSelector is set"
            )
        )
    if spec.get("peerSelector"):
        for key in ("peerIP", "asNumber"):
            if key in spec:
                errors.append(
                    FieldError(
                        f"{path}.{key}", spec[key], f"{key} must be empty when peerSelector is set"
                    )
                )
    elif "peerIP" not in spec and "localWorkloadSelector" not in spec:
        errors.append(FieldError(f"{path}.peerIP", "", "peerIP or peerSelector must be set"))
    elif "peerIP" in spec and "asNumber" not in spec:
        errors.append(FieldError(f"{path}.asNumber", "", "asNumber must be set with peerIP"))
    return errors


BGPPEER_SPEC = Struct(
    (
        Field("node", Str((checks.dns1123_subdomain,))),
        Field("peerIP", Custom(_peer_ip)),
        Field("asNumber", Custom(checks.as_number)),
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
        Field("localASNumber", Custom(checks.as_number)),
    ),
    checks=(_check_peer,),
)

BGP_PEER = Kind("BGPPeer", "bgppeers", namespaced=False, spec=BGPPEER_SPEC)


def _check_filter_rule(rule: dict[str, Any], path: str) -> list[FieldError]:
    if "cidr" in rule and "matchOperator" not in rule:
        return [FieldError(f"{path}.matchOperator", "", "matchOperator is required with cidr")]
    if "matchOperator" in rule and "cidr" not in rule:
        return [FieldError(f"{path}.cidr", "", "cidr is required with matchOperator")]
    return []


def _filter_rules() -> ListOf:
    return ListOf(
        Struct(
            (
                Field("cidr", Str((checks.cidr,))),
                Field(
                    "prefixLength", Struct((Field("min", Int(0, 128)), Field("max", Int(0, 128))))
                ),
                Field("source", Enum(("RemotePeers",))),
                Field("interface", Str()),
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
            Field("exportV4", _filter_rules()),
            Field("importV4", _filter_rules()),
            Field("exportV6", _filter_rules()),
            Field("importV6", _filter_rules()),
        )
    ),
)

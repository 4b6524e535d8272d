"""Node: a Calico node's addresses, AS number and tunnel addresses."""

from __future__ import annotations

from typing import Any

from pycalico.api import checks
from pycalico.api.kind import Kind
from pycalico.api.schema import Custom, Enum, Field, FieldError, ListOf, Str, Struct


def _check_bgp(bgp: dict[str, Any], path: str) -> list[FieldError]:
    if not bgp:
        return [FieldError(path, "", "Spec.BGP should not be empty")]
    return []


NODE_BGP = Struct(
    (
        Field("asNumber", Custom(checks.as_number), omitempty=False),
        Field("ipv4Address", Str((checks.ipv4_with_prefix,))),
        Field("ipv6Address", Str((checks.ipv6_with_prefix,))),
        Field("ipv4IPIPTunnelAddr", Str((checks.ipv4_address,))),
        Field("routeReflectorClusterID", Str((checks.ipv4_address,))),
    ),
    checks=(_check_bgp,),
)

NODE_SPEC = Struct(
    (
        Field("bgp", NODE_BGP),
        Field("ipv4VXLANTunnelAddr", Str((checks.ipv4_address,))),
        Field("vxlanTunnelMACAddr", Str((checks.mac_address,))),
        Field("ipv6VXLANTunnelAddr", Str((checks.ip_address,))),
        Field("vxlanTunnelMACAddrV6", Str((checks.mac_address,))),
        Field(
            "orchRefs",
            ListOf(
                Struct(
                    (
                        Field("nodeName", Str()),
                        Field("orchestrator", Str(), required=True),
                    )
                )
            ),
        ),
        Field(
            "wireguard",
            Struct(
                (
                    Field("interfaceIPv4Address", Str((checks.ipv4_address,))),
                    Field("interfaceIPv6Address", Str((checks.ip_address,))),
                )
            ),
        ),
        Field(
            "addresses",
            ListOf(
                Struct(
                    (
                        Field("address", Str((checks.ip_or_cidr,)), required=True),
                        Field("type", Enum(("CalicoNodeIP", "InternalIP", "ExternalIP"))),
                    )
                )
            ),
        ),
    )
)

NODE_STATUS = Struct(
    (
        Field("wireguardPublicKey", Str()),
        Field("wireguardPublicKeyV6", Str()),
        Field("podCIDRs", ListOf(Str((checks.cidr,)))),
    )
)

NODE = Kind("Node", "nodes", namespaced=False, spec=NODE_SPEC, status=NODE_STATUS)

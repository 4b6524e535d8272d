"""Node: a Calico node's addresses, AS number and tunnel addresses."""

from __future__ import annotations

import ipaddress
from typing import Any

from pycalico.api import checks
from pycalico.api.kind import Kind
from pycalico.api.schema import (
    Check,
    Custom,
    Enum,
    Field,
    FieldError,
    GoTag,
    ListOf,
    Str,
    Struct,
    go_tag,
)

# Every Node field libcalico-go checks, it checks with a struct tag (NodeSpec and its parts
# in libcalico-go/lib/apis/v3/node.go), so its errors are the tags'.
_IPV4 = Str((go_tag("ipv4", checks.ipv4_address),))
_IPV6 = Str((go_tag("ipv6", checks.ipv6_address),))
_MAC = Str((go_tag("mac", checks.mac_address),))
_WIREGUARD_KEY = Str((go_tag("wireguardPublicKey", checks.wireguard_key),))


def _family(version: int) -> Check:
    """Calico's cidrv4/cidrv6: an address or CIDR of that IP version."""

    def check(value: str) -> str | None:
        if checks.ip_or_cidr(value) or ipaddress.ip_interface(value).version != version:
            return f"must be an IPv{version} address or CIDR"
        return None

    return check


def _check_bgp(bgp: dict[str, Any], path: str) -> list[FieldError]:
    if not bgp:
        # validateNodeSpec shows the pointer to the empty NodeBGPSpec as Go's %v prints it:
        # a nil ASNumber, then four empty strings.
        return [FieldError(path, "&{<nil>    }", "Spec.BGP should not be empty")]
    return []


NODE_BGP = Struct(
    (
        Field("asNumber", Custom(checks.as_number), omitempty=False),
        # Calico's cidrv4/cidrv6 also take a bare address; pycalico wants the prefix length.
        Field("ipv4Address", Str((go_tag("cidrv4", _family(4), checks.ip_with_prefix),))),
        Field("ipv6Address", Str((go_tag("cidrv6", _family(6), checks.ip_with_prefix),))),
        Field("ipv4IPIPTunnelAddr", _IPV4),
        Field("routeReflectorClusterID", _IPV4),
    ),
    checks=(_check_bgp,),
)

NODE_SPEC = Struct(
    (
        Field("bgp", NODE_BGP),
        Field("ipv4VXLANTunnelAddr", _IPV4),
        Field("vxlanTunnelMACAddr", _MAC),
        Field("ipv6VXLANTunnelAddr", _IPV6),
        Field("vxlanTunnelMACAddrV6", _MAC),
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
                    Field("interfaceIPv4Address", _IPV4),
                    Field("interfaceIPv6Address", _IPV6),
                )
            ),
        ),
        Field(
            "addresses",
            ListOf(
                Struct(
                    (
                        Field(
                            # `validate:"net"` without omitempty: an empty address fails it.
                            "address",
                            Str((go_tag("net", checks.ip_or_cidr),)),
                            required=True,
                            missing=GoTag("net"),
                        ),
                        Field(
                            "type", Enum(("CalicoNodeIP", "InternalIP", "ExternalIP"), tag="ipType")
                        ),
                    )
                )
            ),
        ),
    )
)

NODE_STATUS = Struct(
    (
        Field("wireguardPublicKey", _WIREGUARD_KEY),
        Field("wireguardPublicKeyV6", _WIREGUARD_KEY),
        Field("podCIDRs", ListOf(Str((checks.cidr,)))),
    )
)

NODE = Kind("Node", "nodes", namespaced=False, spec=NODE_SPEC, status=NODE_STATUS)

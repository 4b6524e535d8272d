"""WorkloadEndpoint and HostEndpoint."""

from __future__ import annotations

import ipaddress
from typing import Any

from pycalico.api import checks
from pycalico.api.kind import Kind
from pycalico.api.schema import Custom, Field, FieldError, Int, ListOf, Str, Struct

PORT_PROTOCOLS = ("TCP", "UDP", "SCTP")


def _single_address(value: Any) -> str:
    if not isinstance(value, str) or checks.ip_or_cidr(value):
        raise ValueError("invalid IP network")
    iface = ipaddress.ip_interface(value)
    if iface.network.num_addresses != 1:
        raise ValueError("IP network contains multiple addresses")
    return str(iface.network)


def _port_number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError("port must be a number between 1 and 65535")
    return value


def _port_protocol(value: Any) -> str:
    if not isinstance(value, str) or value.upper() not in PORT_PROTOCOLS:
        raise ValueError("named port protocol must be TCP, UDP or SCTP")
    return value


def _named_ports(*extra: Field) -> Field:
    """`ports`: the named ports policy rules can refer to."""
    base = (
        Field("name", Str(), required=True),
        Field("protocol", Custom(_port_protocol), required=True),
        Field("port", Custom(_port_number), required=True),
    )
    return Field("ports", ListOf(Struct(base + extra)))


def _check_ipnats(spec: dict[str, Any], path: str) -> list[FieldError]:
    networks = {str(ipaddress.ip_interface(n).ip) for n in spec.get("ipNetworks", [])}
    return [
        FieldError(
            f"{path}.ipNATs[{i}].internalIP",
            nat["internalIP"],
            "internal IP must be one of the endpoint's ipNetworks",
        )
        for i, nat in enumerate(spec.get("ipNATs", []))
        if nat.get("internalIP") not in networks
    ]


WEP_SPEC = Struct(
    (
        Field("orchestrator", Str()),
        Field("workload", Str()),
        Field("node", Str((checks.dns1123_subdomain,))),
        Field("containerID", Str()),
        Field("pod", Str()),
        Field("endpoint", Str()),
        Field("serviceAccountName", Str()),
        Field("ipNetworks", ListOf(Custom(_single_address))),
        Field(
            "ipNATs",
            ListOf(
                Struct(
                    (
                        Field("internalIP", Str((checks.ip_address,)), required=True),
                        Field("externalIP", Str((checks.ip_address,)), required=True),
                    )
                )
            ),
        ),
        Field("ipv4Gateway", Str((checks.ipv4_address,))),
        Field("ipv6Gateway", Str((checks.ip_address,))),
        Field("profiles", ListOf(Str())),
        Field("interfaceName", Str((checks.interface_name,))),
        Field("mac", Str((checks.mac_address,))),
        _named_ports(
            Field("hostPort", Custom(_port_number)),
            Field("hostIP", Str((checks.ip_address,))),
        ),
        Field("allowSpoofedSourcePrefixes", ListOf(Str((checks.cidr,)))),
        Field(
            "qosControls",
            Struct(
                (
                    Field("ingressBandwidth", Int(minimum=0)),
                    Field("egressBandwidth", Int(minimum=0)),
                    Field("ingressBurst", Int(minimum=0)),
                    Field("egressBurst", Int(minimum=0)),
                    Field("ingressPacketRate", Int(minimum=0)),
                    Field("egressPacketRate", Int(minimum=0)),
                    Field("ingressMaxConnections", Int(minimum=0)),
                    Field("egressMaxConnections", Int(minimum=0)),
                )
            ),
        ),
    ),
    checks=(_check_ipnats,),
)

WORKLOAD_ENDPOINT = Kind(
    "WorkloadEndpoint",
    "workloadendpoints",
    namespaced=True,
    spec=WEP_SPEC,
)


def _check_hep(spec: dict[str, Any], path: str) -> list[FieldError]:
    if not spec.get("interfaceName") and not spec.get("expectedIPs"):
        return [
            FieldError(
                f"{path}.interfaceName", "", "no interface or expected IPs have been specified"
            )
        ]
    return []


def _hep_interface(value: str) -> str | None:
    return None if value == "*" else checks.interface_name(value)


HEP_SPEC = Struct(
    (
        Field("node", Str((checks.dns1123_subdomain,)), required=True),
        Field("interfaceName", Str((_hep_interface,))),
        Field("expectedIPs", ListOf(Str((checks.ip_address,)))),
        Field("profiles", ListOf(Str())),
        _named_ports(),
    ),
    checks=(_check_hep,),
)

HOST_ENDPOINT = Kind("HostEndpoint", "hostendpoints", namespaced=False, spec=HEP_SPEC)

"""WorkloadEndpoint and HostEndpoint.

Transcribed from libcalico-go/lib/apis/v3/workloadendpoint.go and
api/pkg/apis/projectcalico/v3/hostendpoint.go (v3.30), with the checks of libcalico-go's
validator: the struct tags (whose errors read `Reason: failed to validate Field: ...`) and
validateWorkloadEndpointSpec, validateHostEndpointSpec, validateIPNAT and the port
validators, in their words and with the field names they give.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from pycalico.api import checks
from pycalico.api.kind import Kind
from pycalico.api.schema import (
    Custom,
    Field,
    FieldError,
    GoTag,
    Int,
    ListOf,
    Str,
    Struct,
    ValidationErrors,
    WholeList,
    format_value,
    go_struct,
    go_tag,
    type_name,
)

PORT_PROTOCOLS = ("TCP", "UDP", "SCTP")
_PORT_PROTOCOL_NUMBERS = (6, 17, 132)
_CONTAINER_ID_RE = re.compile(r"[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?")

# Calico's `name` tag is the subdomain pattern with no length limit; pycalico keeps 253.
_NAME = Str((go_tag("name", checks.subdomain_chars, checks.dns1123_subdomain),))
_NAMES = ListOf(_NAME)


def _interface(value: str) -> str | None:
    return None if value == "*" or checks.interface_name(value) is None else GoTag("interface")


def _container_id(value: str) -> str | None:
    return None if _CONTAINER_ID_RE.fullmatch(value) else GoTag("containerID")


def _net_tag_fails(value: Any) -> bool:
    """Calico's `net` tag: an address, or a CIDR with no host bits set."""
    if not isinstance(value, str) or checks.ip_or_cidr(value):
        return True
    iface = ipaddress.ip_interface(value)
    return iface.ip != iface.network.network_address


def _ip_networks(value: Any) -> list[str]:
    """The endpoint's addresses: each checked by the `net` tag, then (validateWorkloadEndpoint-
    Spec) each must be a single address, an error that shows the whole list."""
    if not isinstance(value, list):
        raise ValueError(f"must be a list, not a {type_name(value)}")
    errors = [
        FieldError(f"spec.ipNetworks[{i}]", item, GoTag("net"))
        for i, item in enumerate(value)
        if _net_tag_fails(item)
    ]
    errors.extend(
        FieldError("spec.ipNetworks", value, "IP network contains multiple addresses")
        for item in value
        if isinstance(item, str)
        and checks.ip_or_cidr(item) is None
        and ipaddress.ip_interface(item).network.num_addresses != 1
    )
    if errors:
        raise ValidationErrors(errors)
    return [str(ipaddress.ip_interface(item).network) for item in value]


def _family(value: str) -> int:
    """The IP version Go gives an address or CIDR (it reads `::ffff:a.b.c.d` as IPv4)."""
    address = ipaddress.ip_interface(value).ip
    mapped = isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None
    return 4 if mapped else address.version


def _gateway(version: int) -> Custom:
    """A gateway address: the `ipv4`/`ipv6` tag, then validateWorkloadEndpointSpec's own
    check, which refuses an address (or CIDR) of the other family."""
    address_check = checks.ipv4_address if version == 4 else checks.ipv6_address

    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not a {type_name(value)}")
        if address_check(value) is None:
            return value
        errors = [FieldError("", value, GoTag(f"ipv{version}"))]
        if checks.ip_or_cidr(value) is None and _family(value) != version:
            errors.append(FieldError("", value, f"invalid IPv{version} gateway address specified"))
        raise ValidationErrors(errors)

    return Custom(convert)


def _check_ipnats(spec: dict[str, Any], path: str) -> list[FieldError]:
    """validateIPNAT (both addresses of one family) and validateWorkloadEndpointSpec (every
    internal address is one of the endpoint's networks: one error, showing all the NATs)."""
    nats = spec.get("ipNATs", [])
    errors = [
        FieldError(f"{path}.ipNATs[{i}].externalIP", nat["externalIP"], "mismatched IP versions")
        for i, nat in enumerate(nats)
        if ipaddress.ip_address(nat["internalIP"]).version
        != ipaddress.ip_address(nat["externalIP"]).version
    ]
    networks = [ipaddress.ip_network(n) for n in spec.get("ipNetworks", [])]
    if any(not any(ipaddress.ip_address(nat["internalIP"]) in n for n in networks) for nat in nats):
        shown = "[" + " ".join(go_struct(n["internalIP"], n["externalIP"]) for n in nats) + "]"
        errors.append(FieldError(f"{path}.ipNATs", shown, "NAT is not in the endpoint networks"))
    return errors


def _protocol(struct: str) -> Custom:
    """An endpoint port's numorstring.Protocol: validateProtocol's check of the value, then
    the port validator's (`<struct>.Protocol`) that it is one with ports. A name is kept as
    written (Felix reads it case-insensitively); a number 6, 17 or 132 as a number."""

    def convert(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"must be a protocol name or number, not {format_value(value)}")
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, int) and not 0 <= value <= 255:
            raise ValueError("protocol number must be 1-255")
        errors = []
        if value == 0:
            errors.append(FieldError("", 0, "protocol number invalid", "Protocol"))
        elif isinstance(value, str) and value.lower() not in checks.PROTOCOL_NUMBERS:
            errors.append(FieldError("", value, "protocol name invalid", "Protocol"))
        if not _supports_ports(value):
            errors.append(
                FieldError(
                    "", value, f"{struct} protocol does not support ports.", f"{struct}.Protocol"
                )
            )
        if errors:
            raise ValidationErrors(errors)
        return value

    return Custom(convert)


def _supports_ports(protocol: Any) -> bool:
    if isinstance(protocol, int):
        return protocol in _PORT_PROTOCOL_NUMBERS
    return protocol.upper() in PORT_PROTOCOLS


def _missing_protocol(struct: str, path: str) -> list[FieldError]:
    """No protocol is Go's zero Protocol, the number 0, which both validators refuse."""
    return [
        FieldError(f"{path}.protocol", 0, "protocol number invalid", "Protocol"),
        FieldError(
            f"{path}.protocol",
            0,
            f"{struct} protocol does not support ports.",
            f"{struct}.Protocol",
        ),
    ]


_PORT = Int(1, 65535, "gt")


def _check_workload_port(port: dict[str, Any], path: str) -> list[FieldError]:
    errors = [] if "protocol" in port else _missing_protocol("WorkloadEndpointPort", path)
    if "name" not in port:
        # Calico also takes a port with no name but a host port; pycalico's policy keys
        # named ports by name, so it needs one either way.
        reason = (
            "WorkloadEndpointPort name must not be empty if no HostPort is specified"
            if "hostPort" not in port
            else "pycalico needs a name for every port"
        )
        errors.append(FieldError(f"{path}.name", "", reason, "WorkloadEndpointPort.Name"))
    return errors


def _check_host_port(port: dict[str, Any], path: str) -> list[FieldError]:
    return [] if "protocol" in port else _missing_protocol("EndpointPort", path)


_PORT_NAME = Str((go_tag("portName", checks.port_name),))

WEP_SPEC = Struct(
    (
        Field("orchestrator", _NAME),
        Field("workload", _NAME),
        Field("node", _NAME),
        Field("containerID", Str((_container_id,))),
        Field("pod", _NAME),
        Field("endpoint", _NAME),
        Field("serviceAccountName", _NAME),
        Field("ipNetworks", WholeList(_ip_networks)),
        Field(
            "ipNATs",
            ListOf(
                Struct(
                    (
                        Field("internalIP", Str((go_tag("ip", checks.ip_address),)), required=True),
                        Field("externalIP", Str((go_tag("ip", checks.ip_address),)), required=True),
                    )
                )
            ),
        ),
        Field("ipv4Gateway", _gateway(4)),
        Field("ipv6Gateway", _gateway(6)),
        Field("profiles", _NAMES),
        Field("interfaceName", Str((_interface,))),
        Field("mac", Str((go_tag("mac", checks.mac_address),))),
        Field(
            "ports",
            ListOf(
                Struct(
                    (
                        Field("name", _PORT_NAME),
                        Field("protocol", _protocol("WorkloadEndpointPort")),
                        Field("port", _PORT, required=True, missing=GoTag("gt"), zero=0),
                        Field("hostPort", Int(1, 65535)),
                        Field("hostIP", Str((go_tag("net", checks.ip_or_cidr),))),
                    ),
                    checks=(_check_workload_port,),
                )
            ),
        ),
        Field(
            "allowSpoofedSourcePrefixes",
            # Calico's `cidr` tag also takes a bare address; pycalico wants the prefix.
            ListOf(Str((go_tag("cidr", checks.ip_or_cidr, checks.cidr),))),
        ),
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
    """validateHostEndpointSpec, which names its field InterfaceName for both rules."""
    errors = []
    if not spec.get("interfaceName") and not spec.get("expectedIPs"):
        errors.append(
            FieldError(
                f"{path}.interfaceName", "", "no interface or expected IPs have been specified"
            )
        )
    if not spec.get("node"):
        errors.append(FieldError(f"{path}.node", "", "no node has been specified", "InterfaceName"))
    return errors


HEP_SPEC = Struct(
    (
        Field("node", _NAME),
        Field("interfaceName", Str((_interface,))),
        Field("expectedIPs", ListOf(Str((go_tag("ip", checks.ip_address),)))),
        Field("profiles", _NAMES),
        Field(
            "ports",
            ListOf(
                Struct(
                    (
                        # `validate:"portName"` without omitempty: an empty name fails it.
                        Field("name", _PORT_NAME, required=True, missing=GoTag("portName")),
                        Field("protocol", _protocol("EndpointPort")),
                        Field("port", _PORT, required=True, missing=GoTag("gt"), zero=0),
                    ),
                    checks=(_check_host_port,),
                )
            ),
        ),
    ),
    checks=(_check_hep,),
)

HOST_ENDPOINT = Kind("HostEndpoint", "hostendpoints", namespaced=False, spec=HEP_SPEC)

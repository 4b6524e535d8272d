"""Value checks shared by resource schemas: names, labels, CIDRs, ports, protocols...

Every check returns None for a good value or a short reason (Calico's wording where it
has one) for a bad one.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = rf"{DNS1123_LABEL}(\.{DNS1123_LABEL})*"
_SUBDOMAIN_RE = re.compile(DNS1123_SUBDOMAIN)
_LABEL_RE = re.compile(DNS1123_LABEL)
_QUALIFIED_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_INTERFACE_RE = re.compile(r"[a-zA-Z0-9_.\-]{1,15}")
_MAC_RE = re.compile(r"[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}")
_PORT_NAME_RE = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9_-]*[a-zA-Z0-9])?")

PROTOCOL_NAMES = ("TCP", "UDP", "ICMP", "ICMPv6", "SCTP", "UDPLite")
PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132, "udplite": 136}


SUBDOMAIN_MAX = 253
LABEL_MAX = 63
SUBDOMAIN_REASON = (
    "name must consist of lower case alphanumeric characters, '-' or '.' "
    f"(regex: {DNS1123_SUBDOMAIN})"
)
LABEL_REASON = (
    f"name must consist of lower case alphanumeric characters or '-' (regex: {DNS1123_LABEL})"
)


def too_long(name: str, limit: int) -> str | None:
    return f"name is too long by {len(name) - limit} bytes" if len(name) > limit else None


def dns1123_subdomain(name: str) -> str | None:
    return too_long(name, SUBDOMAIN_MAX) or (
        None if _SUBDOMAIN_RE.fullmatch(name) else SUBDOMAIN_REASON
    )


def node_name(name: str) -> str | None:
    """A whole one-line error for a bad node name; Calico validates a Node's name as a
    DNS-1123 subdomain, and IPAM keys and interface names built from it rely on that
    (a '/' would split the affinity keys that hold the node's blocks)."""
    if dns1123_subdomain(name) is None:
        return None
    return (
        f"invalid node name {name!r}: a node name must be 1-253 lower-case alphanumeric "
        "characters, '-' or '.', starting and ending with an alphanumeric"
    )


def dns1123_label(name: str) -> str | None:
    return too_long(name, LABEL_MAX) or (None if _LABEL_RE.fullmatch(name) else LABEL_REASON)


def label_key(key: str) -> str | None:
    """A Kubernetes qualified name: optional DNS subdomain prefix, '/', name of ≤63."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or dns1123_subdomain(prefix)):
        return f"invalid label key prefix '{prefix}': must be a DNS subdomain"
    if not name or len(name) > 63 or not _QUALIFIED_NAME_RE.fullmatch(name):
        return (
            f"invalid label key '{key}': name part must be 63 characters or less, "
            "alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
        )
    return None


def label_value(value: str) -> str | None:
    if value == "":
        return None
    if len(value) > 63 or not _QUALIFIED_NAME_RE.fullmatch(value):
        return (
            f"invalid label value '{value}': must be 63 characters or less, alphanumerics, "
            "'-', '_' or '.', starting and ending with an alphanumeric"
        )
    return None


def annotation_key(key: str) -> str | None:
    return label_key(key)


def interface_name(name: str) -> str | None:
    if not _INTERFACE_RE.fullmatch(name):
        return "interface name must be 1-15 characters of [a-zA-Z0-9_.-]"
    return None


def mac_address(value: str) -> str | None:
    if not _MAC_RE.fullmatch(value):
        return "invalid MAC address"
    return None


def ip_address(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "invalid IP address"
    return None


def ipv4_address(value: str) -> str | None:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return "invalid IPv4 address"
    return None


def cidr(value: str) -> str | None:
    """An IP network in CIDR notation; host bits may be set (Calico masks these)."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return "invalid CIDR"
    if "/" not in value:
        return "invalid CIDR: a prefix length is required"
    return None


def ip_or_cidr(value: str) -> str | None:
    try:
        ipaddress.ip_interface(value)
    except ValueError:
        return "invalid IP address or CIDR"
    return None


def ip_with_prefix(value: str) -> str | None:
    """`ip/len` as used by Node spec.bgp.ipv4Address (the host bits are the address)."""
    if "/" not in value:
        return "must be an address with prefix length (e.g. 192.0.2.10/24)"
    return ip_or_cidr(value)


def ipv4_with_prefix(value: str) -> str | None:
    reason = ip_with_prefix(value)
    if reason is None and ipaddress.ip_interface(value).version != 4:
        return "must be an IPv4 address"
    return reason


def ipv6_with_prefix(value: str) -> str | None:
    reason = ip_with_prefix(value)
    if reason is None and ipaddress.ip_interface(value).version != 6:
        return "must be an IPv6 address"
    return reason


def selector(value: str) -> str | None:
    from pycalico.selector import SelectorError, parse

    try:
        parse(value)
    except SelectorError as exc:
        return f"invalid selector: {exc}"
    return None


def duration(value: str) -> str | None:
    from pycalico.api.duration import parse_go_duration

    try:
        parse_go_duration(value)
    except ValueError as exc:
        return str(exc)
    return None


_ASPLAIN_RE = re.compile(r"[0-9]+")
_ASDOT_RE = re.compile(r"([0-9]+)\.([0-9]+)")
_AS_RANGE = "must be 1-4294967295, or asdot 0.1-65535.65535 as a quoted string"


def as_number(value: Any) -> Any:
    """A BGP AS number: an integer, or a string holding one or asdot `a.b` (converted).

    0 is refused (it is reserved, and BIRD will not run a session with it) although Calico's
    own decoder lets it through.
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # YAML's 65000.0 reaches Calico as JSON 65000
    if isinstance(value, float):
        # Calico's decoder refuses the number 1.1 too.
        raise ValueError(
            'invalid AS number: YAML reads an unquoted 1.10 as a decimal; quote asdot ("1.10")'
        )
    if isinstance(value, str):
        dotted = _ASDOT_RE.fullmatch(value)
        if _ASPLAIN_RE.fullmatch(value):
            value = int(value)
        elif dotted and int(dotted[1]) <= 65535 and int(dotted[2]) <= 65535:
            value = int(dotted[1]) << 16 | int(dotted[2])
        else:
            raise ValueError(f"invalid AS number: {_AS_RANGE}")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4294967295:
        raise ValueError(f"invalid AS number: {_AS_RANGE}")
    return value


def port(value: Any) -> Any:
    """numorstring.Port: a number, a `min:max` range, or a named port."""
    if isinstance(value, bool):
        raise ValueError("invalid port")
    if isinstance(value, int):
        if not 1 <= value <= 65535:
            raise ValueError("port must be between 1 and 65535")
        return value
    if not isinstance(value, str) or not value:
        raise ValueError("invalid port: must be a number, a range 'min:max' or a port name")
    low, colon, high = value.partition(":")
    if colon:
        try:
            lo, hi = int(low), int(high)
        except ValueError:
            raise ValueError("invalid port range: must be 'min:max'") from None
        if not (1 <= lo <= 65535 and 1 <= hi <= 65535) or lo > hi:
            raise ValueError("invalid port range: need 1 <= min <= max <= 65535")
        return value
    if value.isdigit():
        return port(int(value))
    if len(value) > 15 or not _PORT_NAME_RE.fullmatch(value):
        raise ValueError("invalid port name")
    return value


def protocol(value: Any) -> Any:
    """numorstring.Protocol: a known name (case as written) or a number 1-255."""
    if isinstance(value, bool):
        raise ValueError("invalid protocol")
    if isinstance(value, int):
        if not 1 <= value <= 255:
            raise ValueError("protocol number must be 1-255")
        return value
    if isinstance(value, str):
        if value.lower() in PROTOCOL_NUMBERS:
            return value
        if value.isdigit() and 1 <= int(value) <= 255:
            return int(value)
    raise ValueError("protocol must be one of " + ", ".join(PROTOCOL_NAMES) + " or 1-255")


def port_range_or_number(value: Any) -> Any:
    """A number or `min:max`, with no named ports (host ports, failsafe ports)."""
    result = port(value)
    if isinstance(result, str) and ":" not in result:
        raise ValueError("named ports are not allowed here")
    return result

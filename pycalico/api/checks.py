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


def subdomain_chars(name: str) -> str | None:
    """The DNS-1123 subdomain pattern alone, with no length limit: Calico's `name` tag."""
    return None if _SUBDOMAIN_RE.fullmatch(name) else SUBDOMAIN_REASON


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


def metadata_name(name: str) -> list[str] | None:
    """validateObjectMeta's reasons for a resource name: its length and its pattern are
    checked apart, so a long name of bad characters has both reasons."""
    reasons = [r for r in (too_long(name, SUBDOMAIN_MAX), subdomain_chars(name)) if r]
    return reasons or None


def tier_name(name: str) -> list[str] | None:
    """A Tier's name: validateObjectMeta's rules, then validateTier's (a label, since it
    prefixes policy names and is a label value in Kubernetes)."""
    reasons = metadata_name(name) or []
    label = [
        r
        for r in (too_long(name, LABEL_MAX), None if _LABEL_RE.fullmatch(name) else LABEL_REASON)
        if r
    ]
    return reasons + label or None


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


# Kubernetes' own reasons (k8s.io/apimachinery/pkg/util/validation, v0.32 as Calico v3.30
# builds with), which libcalico-go's validator passes on for metadata labels and annotations.
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = f"({_QUALIFIED_NAME_FMT})?"
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character"
)
_K8S_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character"
)


def _regex_error(message: str, pattern: str, *examples: str) -> str:
    shown = "".join(f"{' or ' if i else ''}'{e}', " for i, e in enumerate(examples))
    return f"{message} (e.g. {shown}regex used for validation is '{pattern}')"


def _max_length(limit: int) -> str:
    return f"must be no more than {limit} characters"


def _k8s_subdomain_errors(value: str) -> list[str]:
    errors = [_max_length(SUBDOMAIN_MAX)] if len(value.encode()) > SUBDOMAIN_MAX else []
    if not _SUBDOMAIN_RE.fullmatch(value):
        errors.append(_regex_error(_K8S_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN, "example.com"))
    return errors


def qualified_name_errors(value: str) -> list[str]:
    """IsQualifiedName: a label key (`[prefix/]name`), every reason it fails."""
    name_error = _regex_error(
        _QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc"
    )
    parts = value.split("/")
    if len(parts) > 2:
        return [
            f"a qualified name {name_error} with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        ]
    errors = []
    if len(parts) == 2:
        if not parts[0]:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend(f"prefix part {e}" for e in _k8s_subdomain_errors(parts[0]))
    name = parts[-1]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name.encode()) > LABEL_MAX:
        errors.append(f"name part {_max_length(LABEL_MAX)}")
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errors.append(f"name part {name_error}")
    return errors


def label_value_errors(value: str) -> list[str]:
    """IsValidLabelValue: every reason a label value fails."""
    errors = [_max_length(LABEL_MAX)] if len(value.encode()) > LABEL_MAX else []
    if value and not _QUALIFIED_NAME_RE.fullmatch(value):
        errors.append(
            _regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
        )
    return errors


def interface_name(name: str) -> str | None:
    if not _INTERFACE_RE.fullmatch(name):
        return "interface name must be 1-15 characters of [a-zA-Z0-9_.-]"
    return None


def wireguard_key(value: str) -> str | None:
    """A WireGuard key as wgtypes.ParseKey reads one: 32 bytes in standard base64."""
    import base64
    import binascii

    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "invalid WireGuard key"
    return None if len(key) == 32 else "invalid WireGuard key: must be 32 bytes"


def port_name(name: str) -> str | None:
    """A Kubernetes port name (IsValidPortName): up to 15 of a-z, 0-9 and '-', with a letter,
    no '--', and no '-' at either end."""
    if (
        len(name) <= 15
        and re.fullmatch(r"[-a-z0-9]+", name)
        and re.search(r"[a-z]", name)
        and "--" not in name
        and not name.startswith("-")
        and not name.endswith("-")
    ):
        return None
    return "invalid port name"


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


def ipv6_address(value: str) -> str | None:
    """An IPv6 address as Go's net.ParseIP reads one: no zone, and not IPv4-mapped (Go
    takes `::ffff:a.b.c.d` for the IPv4 address)."""
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return "invalid IPv6 address"
    if address.ipv4_mapped is not None or address.scope_id is not None:
        return "invalid IPv6 address"
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

"""What the lab page's JSON endpoints accept (pure): every pod name, address, protocol and
port is checked against the lab before anything runs, and each refusal is one line that the
page shows as it is (a 400, or a 404 for a pod the datastore does not know).

Nothing here reaches a shell (the trace runs its commands as argument lists), but a name is
still held to Kubernetes' form and to the pods the lab has, so only known names go further.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

PROTOCOLS = ("tcp", "udp", "icmp")
DEFAULT_PORT = 80  # `calico-lab trace`'s, for tcp and udp
MAX_BODY = 4096  # a trace request is a few names and a number
_SHOWN = 64  # how much of a bad value an error repeats
# A namespace (DNS-1123 label) and a pod name (DNS-1123 subdomain).
_POD = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?")
_LONGEST = 63 + 1 + 253  # a namespace, "/", a pod name
_TRACE_KEYS = ("from", "to", "proto", "port")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


class RequestError(ValueError):
    """A refused request: one line, and the HTTP status it is answered with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TraceRequest:
    source: str  # NS/POD
    destination: str  # NS/POD or an IPv4 address
    protocol: str
    port: int | None  # None for icmp


def check_host(host: str | None) -> None:
    """Refuse a request whose Host names anything but loopback: a page elsewhere that gets
    a name of its own resolved to 127.0.0.1 (DNS rebinding) must not read the lab or run
    traces as root. Any port: an `ssh -L` tunnel to the console brings its own."""
    try:
        name = urlsplit(f"//{host or ''}").hostname
    except ValueError:  # an unclosed [
        name = None
    if name not in LOOPBACK_NAMES:
        raise RequestError(f"Host {shown(host)}: open the page as 127.0.0.1 or localhost", 403)


def check_json(content_type: str) -> None:
    """Refuse a trace request that is not sent as JSON: a form or a `text/plain` body is
    what another site's page can send here without the browser asking first."""
    if content_type != "application/json":
        raise RequestError(f"send the request as application/json, not {content_type}", 415)


def shown(value: object) -> str:
    """A value as an error repeats it: quoted, escaped to one line, cut short."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def pod_name(value: object, known: Collection[str], lab: str, what: str = "pod") -> str:
    """`NS/POD` (a bare POD is in `default`, as kubectl has it) of a pod the lab has;
    `what` names the field in a refusal."""
    if not isinstance(value, str) or not value:
        raise RequestError(f"{what}: give a pod as NS/POD")
    key = value if "/" in value else f"default/{value}"
    if not _POD.fullmatch(key) or len(key) > _LONGEST:
        raise RequestError(f"{what} {shown(value)}: not a pod name (NS/POD)")
    if key not in known:
        raise RequestError(f"{what}: no pod {key} in lab {lab}")
    return key


def policies_query(query: str, known: Collection[str], lab: str) -> str:
    """The pod of `?pod=NS/POD`."""
    values = parse_qs(query, keep_blank_values=True).get("pod", [])
    if len(values) != 1:
        raise RequestError("give one pod: ?pod=NS/POD")
    return pod_name(values[0], known, lab)


def trace_request(body: bytes, known: Collection[str], lab: str) -> TraceRequest:
    """A trace request: `{"from": NS/POD, "to": NS/POD|IPv4, "proto": tcp|udp|icmp,
    "port": 1-65535}`, as `calico-lab trace` takes them (port 80 unless given; none with
    icmp)."""
    if len(body) > MAX_BODY:
        raise RequestError(f"the request is larger than {MAX_BODY} bytes", 413)
    try:
        fields = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise RequestError("the request is not JSON") from None
    if not isinstance(fields, dict):
        raise RequestError('the request must be a JSON object: {"from": ..., "to": ...}')
    unknown = sorted(set(fields) - set(_TRACE_KEYS))
    if unknown:
        raise RequestError(f"unknown field {shown(unknown[0])}: use {', '.join(_TRACE_KEYS)}")
    source = pod_name(fields.get("from"), known, lab, "from")
    destination = _destination(fields.get("to"), known, lab)
    protocol = fields.get("proto", "tcp")
    if protocol not in PROTOCOLS:
        raise RequestError(f"proto {shown(protocol)}: use {', '.join(PROTOCOLS)}")
    port = _port(fields.get("port"))
    if protocol == "icmp":
        if port is not None:
            raise RequestError("port has no meaning with proto icmp")
    elif port is None:
        port = DEFAULT_PORT
    return TraceRequest(source, destination, protocol, port)


def _destination(value: object, known: Collection[str], lab: str) -> str:
    if isinstance(value, str):
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            pass
    return pod_name(value, known, lab, "to")


def _port(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):  # JSON true is not port 1
        raise RequestError(f"port {shown(value)}: must be 1-65535")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= 65535:
        raise RequestError(f"port {shown(value)}: must be 1-65535")
    return value

"""The Felix -> aggregator stream, message by message (pure): one JSON object per line.

    sender:     {"hello": {"sender": "<id>", "protocol": 1}}
    aggregator: {"welcome": {"highest": N}}     the highest record it took from that sender
    sender:     {"seq": N, "flow": {...}}       each record, numbered 1, 2, 3... in order
    aggregator: {"ack": N, "rejected": [...]}   every record up to N is taken (or refused)

Goldmane speaks gRPC (FlowCollector.Connect, one empty receipt per update, dedup by
contents). This carries the same records (Goldmane's field names) with what makes
resending safe: numbers and a cumulative acknowledgement. It costs calico-node no gRPC
runtime or generated code; a record that is no flow is refused by number (the sender
drops it and logs it) rather than breaking the connection it came on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pycalico.flows.record import Flow

PROTOCOL = 1
MAX_LINE = 1 << 20  # far above any record; a longer line is a broken peer


class WireError(ValueError):
    """A line that is not a message of this protocol."""


@dataclass(frozen=True)
class Hello:
    sender: str
    protocol: int


@dataclass(frozen=True)
class Welcome:
    highest: int


@dataclass(frozen=True)
class Record:
    seq: int
    flow: Any  # the record's JSON, read into a Flow by the aggregator


@dataclass(frozen=True)
class Ack:
    seq: int
    rejected: tuple[int, ...] = ()


Message = Hello | Welcome | Record | Ack


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def hello(sender: str) -> bytes:
    return _line({"hello": {"sender": sender, "protocol": PROTOCOL}})


def welcome(highest: int) -> bytes:
    return _line({"welcome": {"highest": highest}})


def record(seq: int, flow: Flow) -> bytes:
    return _line({"seq": seq, "flow": flow.to_json()})


def ack(seq: int, rejected: tuple[int, ...] = ()) -> bytes:
    return _line({"ack": seq, "rejected": list(rejected)})


def decode(line: bytes) -> Message:
    if len(line) > MAX_LINE:
        raise WireError(f"a line of {len(line)} bytes (at most {MAX_LINE})")
    try:
        obj = json.loads(line)
    except ValueError:
        raise WireError("a line that is not JSON") from None
    if not isinstance(obj, dict):
        raise WireError("a message that is not a JSON object")
    if "seq" in obj:
        return Record(_number(obj["seq"], "seq", 1), obj.get("flow"))
    if "ack" in obj:
        rejected = obj.get("rejected", [])
        if not isinstance(rejected, list):
            raise WireError("rejected must be a list")
        return Ack(
            _number(obj["ack"], "ack", 0), tuple(_number(r, "rejected", 1) for r in rejected)
        )
    if "hello" in obj:
        body = obj["hello"]
        if not isinstance(body, dict) or not isinstance(body.get("sender"), str):
            raise WireError("hello needs a sender")
        if not body["sender"]:
            raise WireError("hello needs a sender")
        return Hello(body["sender"], _number(body.get("protocol"), "protocol", 1))
    if "welcome" in obj:
        body = obj["welcome"]
        if not isinstance(body, dict):
            raise WireError("welcome must be an object")
        return Welcome(_number(body.get("highest"), "highest", 0))
    raise WireError(f"an unknown message (keys: {', '.join(sorted(obj)) or 'none'})")


def _number(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise WireError(f"{what} must be an integer of at least {minimum}")
    return value


class LineBuffer:
    """Splits what a socket delivers into lines, however the bytes were cut."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[bytes]:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE:
            raise WireError(f"a line of more than {MAX_LINE} bytes")
        return lines

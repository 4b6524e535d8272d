"""The Felix -> aggregator messages: encoded, decoded, and broken lines refused."""

from __future__ import annotations

import pytest

from pycalico.flows import wire
from pycalico.flows.record import Flow
from tests.support.flow_records import flow


def test_every_message_reads_back() -> None:
    assert wire.decode(wire.hello("node-1-ab12")) == wire.Hello("node-1-ab12", wire.PROTOCOL)
    assert wire.decode(wire.welcome(41)) == wire.Welcome(41)
    assert wire.decode(wire.ack(9, (3, 7))) == wire.Ack(9, (3, 7))
    message = wire.decode(wire.record(5, flow()))
    assert isinstance(message, wire.Record)
    assert message.seq == 5
    assert Flow.from_json(message.flow) == flow()


def test_each_message_is_one_line() -> None:
    line = wire.record(1, flow())
    assert line.endswith(b"\n") and line.count(b"\n") == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"seq": 0, "flow": {}}', "seq must be an integer of at least 1"),
        (b'{"seq": "1"}', "seq must be"),
        (b'{"ack": -1}', "ack must be"),
        (b'{"ack": 1, "rejected": 3}', "rejected must be a list"),
        (b'{"hello": {"sender": ""}}', "needs a sender"),
        (b'{"hello": {"sender": "a"}}', "protocol must be"),
        (b'{"welcome": 3}', "welcome must be an object"),
        (b'{"bye": 1}', "unknown message"),
        (b"x" * (wire.MAX_LINE + 1), "at most"),
    ],
)
def test_broken_lines_are_refused(line: bytes, message: str) -> None:
    with pytest.raises(wire.WireError, match=message):
        wire.decode(line)


def test_lines_are_split_however_the_bytes_arrive() -> None:
    stream = wire.welcome(1) + wire.ack(2) + wire.ack(3)
    buffer = wire.LineBuffer()
    lines: list[bytes] = []
    for i in range(len(stream)):
        lines.extend(buffer.feed(stream[i : i + 1]))
    assert [wire.decode(line) for line in lines] == [wire.Welcome(1), wire.Ack(2), wire.Ack(3)]


def test_an_endless_line_is_refused_before_it_fills_memory() -> None:
    buffer = wire.LineBuffer()
    with pytest.raises(wire.WireError, match="more than"):
        for _ in range(20):
            buffer.feed(b"y" * (1 << 16))

"""A packet's trace as lines a person reads, or as JSON for tools (pure)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Step:
    """One thing that happened to the packet, where, and what decided it."""

    where: str  # default/a, node1, wire, router, external
    kind: str  # route, arp, policy, nat, vtep, encap, in, deliver, drop, note
    text: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trace:
    source: str  # default/a (10.244.1.5)
    destination: str
    packet: str  # the 5-tuple as sent
    steps: list[Step]
    outcome: str  # delivered, refused, dropped, timeout, ...
    summary: str  # one line saying how it ended and why
    notes: list[str] = field(default_factory=list)  # where policy explain disagrees, etc.
    flow: dict[str, Any] = field(default_factory=dict)  # src, dst, protocol, sport, dport


def text(trace: Trace) -> str:
    lines = [f"trace {trace.source} → {trace.destination}: {trace.packet}"]
    width = max([len(s.where) for s in trace.steps] + [4])
    kinds = max([len(s.kind) for s in trace.steps] + [4])
    for number, step in enumerate(trace.steps, 1):
        lines.append(f"{number:>3}  {step.where:<{width}}  {step.kind:<{kinds}}  {step.text}")
    lines.append(f"outcome: {trace.outcome}: {trace.summary}")
    lines += [f"note: {note}" for note in trace.notes]
    return "\n".join(lines) + "\n"


def as_json(trace: Trace) -> str:
    return json.dumps(asdict(trace), indent=2, ensure_ascii=False) + "\n"

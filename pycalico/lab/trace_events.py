"""nftables trace events, as `nft -a monitor trace` prints them, read into what they say
about one packet (pure).

Every base chain a traced packet enters prints the packet first (`... packet: iif "cali1"
ip saddr ...`), then one event per rule that matched (`... rule <rule> # handle N (verdict
V)`), then the chain's policy if no rule ended it (`... policy accept`). The kernel numbers
these with a trace id that it reuses for later packets, so a packet's events are the run
that starts at the trace table's own first chain (see trace_tables.TABLE).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

_EVENT = re.compile(
    r"^trace id (?P<id>[0-9a-f]+) (?P<family>\S+) (?P<table>\S+) (?P<chain>\S+) "
    r"(?P<kind>packet|rule|policy|verdict)(?::)? ?(?P<rest>.*?)\s*$"
)
_RULE = re.compile(r"^(?P<text>.*?)(?: # handle (?P<handle>\d+))? \(verdict (?P<verdict>[^)]*)\)$")
_FIELDS = {
    "iif": re.compile(r'\biif "([^"]+)"'),
    "oif": re.compile(r'\boif "([^"]+)"'),
    "saddr": re.compile(r"\bip saddr (\S+)"),
    "daddr": re.compile(r"\bip daddr (\S+)"),
    "protocol": re.compile(r"\bip protocol (\S+)"),
    "sport": re.compile(r"\b(?:tcp|udp) sport (\d+)"),
    "dport": re.compile(r"\b(?:tcp|udp) dport (\d+)"),
    "icmp_type": re.compile(r"\bicmp type (\S+)"),
    "icmp_id": re.compile(r"\bicmp id (\d+)"),
    "tcp_flags": re.compile(r"\btcp flags == (\S+)"),
    "ether_saddr": re.compile(r"\bether saddr (\S+)"),
    "ether_daddr": re.compile(r"\bether daddr (\S+)"),
}


@dataclass(frozen=True)
class Event:
    trace_id: str
    table: str  # "calico", or the trace's own table
    chain: str
    kind: str  # packet, rule, policy or verdict
    text: str = ""  # the rule as nft prints it (rule events)
    handle: int | None = None  # the rule's handle (rule events)
    verdict: str = ""  # accept, drop, continue, return, jump X, goto X
    packet: dict[str, str] = field(default_factory=dict)  # the headers (packet events)

    @property
    def comment(self) -> str:
        found = re.search(r'comment "([^"]*)"', self.text)
        return found.group(1) if found else ""


def parse(line: str) -> Event | None:
    """One line of `nft -a monitor trace`; None for anything else."""
    found = _EVENT.match(line)
    if found is None:
        return None
    kind, rest = found.group("kind"), found.group("rest")
    base = (found.group("id"), found.group("table"), found.group("chain"), kind)
    if kind == "packet":
        headers = {key: m.group(1) for key, rx in _FIELDS.items() if (m := rx.search(rest))}
        return Event(*base, packet=headers)
    if kind == "rule":
        rule = _RULE.match(rest)
        if rule is None:
            return Event(*base, text=rest)
        handle = rule.group("handle")
        return Event(
            *base,
            text=rule.group("text"),
            handle=int(handle) if handle else None,
            verdict=rule.group("verdict"),
        )
    return Event(*base, verdict=rest.split(" meta mark")[0].strip())


def first_packet(
    events: Iterable[Event], trace_table: str, matches: Callable[[dict[str, str]], bool]
) -> list[Event]:
    """The events of the first packet whose headers `matches` accepts, in the order the
    kernel sent them, from where it entered the trace table's first chain (prerouting or
    output)."""
    run: list[Event] = []
    for event in events:
        starts = (
            event.table == trace_table
            and event.kind == "packet"
            and event.chain
            in (
                "pre",
                "out",
            )
        )
        if starts:
            if run:
                return run
            if not matches(event.packet):
                continue
            run = [event]
        elif run:
            run.append(event)
    return run


@dataclass(frozen=True)
class Packet:
    """The traced packet's inner 5-tuple (ICMP: its echo id stands for the ports)."""

    src: str
    dst: str
    protocol: str  # tcp, udp or icmp
    sport: int  # the ICMP echo id for icmp
    dport: int  # 0 for icmp

    def seen_in(self, headers: dict[str, str], src: str = "", sport: int = 0) -> bool:
        """Whether a packet event shows this packet (after NAT: with `src`, `sport`)."""
        if headers.get("daddr") != self.dst or headers.get("saddr") != (src or self.src):
            return False
        if self.protocol == "icmp":
            return headers.get("icmp_id") in (None, str(sport or self.sport))
        return headers.get("sport") == str(sport or self.sport) and headers.get("dport") == str(
            self.dport
        )

    def tuple_text(self, src: str = "", sport: int = 0) -> str:
        if self.protocol == "icmp":
            return f"{src or self.src} → {self.dst} ICMP echo id {sport or self.sport}"
        source = f"{src or self.src}:{sport or self.sport}"
        return f"{source} → {self.dst}:{self.dport} {self.protocol.upper()}"


@dataclass(frozen=True)
class Hook:
    """What happened in one base chain: the packet as it entered, and the events after."""

    table: str
    chain: str
    packet: dict[str, str]
    events: tuple[Event, ...]

    @property
    def final(self) -> str:
        """accept, drop, or "" (the chain ended without a verdict of its own)."""
        for event in reversed(self.events):
            if event.kind == "policy" or event.verdict in ("accept", "drop"):
                return event.verdict
        return ""


def hooks(run: list[Event]) -> list[Hook]:
    """A packet's run of events, cut into the base chains it went through."""
    out: list[Hook] = []
    for event in run:
        if event.kind == "packet":
            out.append(Hook(event.table, event.chain, event.packet, ()))
        elif out:
            last = out[-1]
            out[-1] = Hook(last.table, last.chain, last.packet, (*last.events, event))
    return out

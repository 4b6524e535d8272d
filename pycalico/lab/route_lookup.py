"""Route lookups for one packet, as the kernel answers them (RTM_GETROUTE, through `ip route
get`): the route it resolves (next hop and device) and the routing-table entry that matched
(`fibmatch`: prefix, protocol, flags), from the packet's own addresses, ports and input
interface."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from typing import Any

from pycalico.lab.trace_events import Packet

# What `ip route` omits when printing a route (its defaults).
_QUIET = {"protocol": ("boot", "unspec"), "scope": ("global", "universe"), "table": ("main",)}


@dataclass(frozen=True)
class RouteAnswer:
    """The kernel's answer; `error` when it has no route (its own words)."""

    dst: str = ""  # the matching entry's prefix ("default", "10.244.2.0/26")
    type: str = ""  # unicast, local, blackhole, unreachable, ...
    gateway: str = ""
    dev: str = ""
    protocol: str = ""
    scope: str = ""
    table: str = ""
    flags: tuple[str, ...] = ()
    prefsrc: str = ""
    error: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def text(self) -> str:
        """The entry as `ip route` prints it (pure)."""
        if self.error:
            return f"no route: {self.error}"
        parts = [] if self.type in ("unicast", "") else [self.type]
        parts.append(self.dst)
        if self.gateway:
            parts += ["via", self.gateway]
        if self.dev:
            parts += ["dev", self.dev]
        for key in ("table", "protocol", "scope"):
            value = getattr(self, key)
            if value and value not in _QUIET[key]:
                parts += ["proto" if key == "protocol" else key, value]
        parts += list(self.flags)
        return " ".join(parts)


def answer(entry: dict[str, Any], resolved: dict[str, Any] | None = None) -> RouteAnswer:
    """A RouteAnswer from `ip -j route get fibmatch` (and the plain lookup) (pure)."""
    resolved = resolved or {}
    return RouteAnswer(
        dst=str(entry.get("dst", "")),
        type=str(entry.get("type", "unicast")),
        gateway=str(entry.get("gateway", resolved.get("gateway", ""))),
        dev=str(entry.get("dev", resolved.get("dev", ""))),
        protocol=str(entry.get("protocol", "")),
        scope=str(entry.get("scope", "")),
        table=str(entry.get("table", "")),
        flags=tuple(entry.get("flags", ())),
        prefsrc=str(resolved.get("prefsrc", entry.get("prefsrc", ""))),
        raw={"fibmatch": entry, "route": resolved},
    )


def _arguments(packet: Packet, src: str, sport: int, iif: str) -> list[str]:
    args = [packet.dst, "from", src]
    if iif:
        args += ["iif", iif]
    if packet.protocol == "icmp":
        return [*args, "ipproto", "icmp"]
    return [*args, "ipproto", packet.protocol, "sport", str(sport), "dport", str(packet.dport)]


def _ip(netns: str, *args: str) -> tuple[list[dict[str, Any]], str]:
    out = subprocess.run(
        ["nsenter", f"--net=/run/netns/{netns}", "ip", "-j", "-d", "route", "get", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return [], out.stderr.strip().removeprefix("RTNETLINK answers: ")
    return json.loads(out.stdout or "[]"), ""


def lookup(netns: str, packet: Packet, src: str, sport: int, iif: str = "") -> RouteAnswer:
    """The kernel's route for the packet in `netns`, arriving on `iif` (none: sent from
    there), its source `src`:`sport` as it is at that point (after any NAT before it)."""
    args = _arguments(packet, src, sport, iif)
    resolved, error = _ip(netns, *args)
    if error:
        return RouteAnswer(error=error)
    entry, error = _ip(netns, "fibmatch", *args)
    if error or not entry:
        return RouteAnswer(error=error or "no matching entry")
    return answer(entry[0], resolved[0] if resolved else None)

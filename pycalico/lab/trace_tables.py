"""The temporary nftables table that marks one packet for tracing in one namespace, and the
`nft monitor trace` that listens there.

The kernel clears a packet's trace flag whenever it crosses a veth or a tunnel into another
namespace, so every namespace on the path gets a table of its own (`inet calico-lab-trace-
<pid>`, never Felix's `calico`): a rule before everything else (conntrack, Felix's raw
chains) sets `meta nftrace` on the packet, and two chains after everything else (after
source NAT, and on local delivery) let the trace show the packet as it leaves or arrives.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field

from pycalico.lab.state import LabError
from pycalico.lab.trace_events import Packet

PREFIX = "calico-lab-trace"
FIRST = -400  # before raw (-300), conntrack (-200) and everything of Felix's
LAST = 400  # after source NAT (100) and every filter chain
NFTRACE_GROUP = 1 << 8  # NFNLGRP_NFTRACE (9) in /proc/net/netlink's group mask
NETLINK_NETFILTER = 12
READY_TIMEOUT = 5.0


def table_name(pid: int | None = None) -> str:
    return f"{PREFIX}-{os.getpid() if pid is None else pid}"


def match(packet: Packet) -> str:
    """What marks the packet: its destination and protocol (and port), whatever NAT makes of
    its source on the way; the trace's reader picks the packet out by its whole tuple."""
    return f"ip daddr {packet.dst} {match_service(packet.protocol, packet.dport)}"


def match_service(protocol: str, port: int) -> str:
    """Every packet to a service (a probe round's packets, whatever their addresses)."""
    if protocol == "icmp":
        return "icmp type echo-request"
    return f"{protocol} dport {port}"


def render(name: str, marked: str) -> str:
    """The table, as `nft -f` reads it, marking the packets `marked` matches (pure)."""
    mark = f"{marked} meta nftrace set 1"
    chains = [
        ("pre", "prerouting", FIRST, mark),
        ("out", "output", FIRST, mark),
        ("post", "postrouting", LAST, "counter"),
        ("in", "input", LAST, "counter"),
    ]
    body = "".join(
        f"  chain {chain} {{ type filter hook {hook} priority {priority}; policy accept; "
        f"{rule}; }}\n"
        for chain, hook, priority, rule in chains
    )
    return f"table inet {name} {{\n{body}}}\n"


def _nft(netns: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nsenter", f"--net=/run/netns/{netns}", "nft", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def install(netns: str, name: str, marked: str) -> None:
    out = _nft(netns, "-f", "-", stdin=render(name, marked))
    if out.returncode != 0:
        raise LabError(f"could not add the trace table in {netns}: {out.stderr.strip()}")


def remove(netns: str, name: str) -> None:
    """Delete the table if it is there (a namespace that went away took it along)."""
    _nft(netns, "delete", "table", "inet", name)


@dataclass
class Monitor:
    """`nft -a monitor trace` in one namespace, its lines collected as they come."""

    netns: str
    lines: list[str] = field(default_factory=list)
    _proc: subprocess.Popen[str] | None = None
    _reader: threading.Thread | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.netns}", "nft", "-a", "monitor", "trace"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def listening(self) -> bool:
        """Whether the monitor has joined the trace group (nothing before that is seen)."""
        assert self._proc is not None
        try:
            with open(f"/proc/{self._proc.pid}/net/netlink", encoding="ascii") as f:
                rows = [line.split() for line in f.readlines()[1:]]
        except OSError:
            return False
        return any(
            int(row[1]) == NETLINK_NETFILTER and int(row[3], 16) & NFTRACE_GROUP for row in rows
        )

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(5)
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
        if self._reader is not None:
            self._reader.join(5)


def wait_listening(monitors: list[Monitor]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    waiting = list(monitors)
    while waiting:
        waiting = [m for m in waiting if not m.listening()]
        if waiting and time.monotonic() > deadline:
            names = ", ".join(m.netns for m in waiting)
            raise LabError(f"nft monitor trace did not start in {names}")
        if waiting:
            time.sleep(0.02)

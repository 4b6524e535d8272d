"""The private segment the multi-host guests share, and the "outside" beyond it.

Everything is in network namespaces the test makes, never on the host's own interfaces:

  <seg>       bridge br0 (192.0.2.1/24, TEST-NET-1): each guest's tap is a port; it
              routes between the segment and the outside (and nowhere else)
  <seg>-out   "the internet": 203.0.113.1 (TEST-NET-3), reached through <seg>

QEMU runs inside <seg> (see harness.Nic), so it makes the guests' taps there. What crosses
the segment is seen with tcpdump on br0 (`Segment.capture`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .harness import Nic

SUBNET = ipaddress.ip_network("192.0.2.0/24")
ROUTER = "192.0.2.1"
OUTSIDE = "203.0.113.1"
OUTSIDE_ROUTER = "203.0.113.254"
BRIDGE = "br0"
FIRST_GUEST = 11  # host1 is 192.0.2.11, as in the README
TIMESTAMP = re.compile(r"\d\d:\d\d:\d\d\.\d+ ")


def _sh(*cmd: str) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise AssertionError(f"`{' '.join(cmd)}` failed: {out.stderr.strip()}")
    return out.stdout


@dataclass
class Capture:
    """What tcpdump saw on the segment's bridge (`-n`), once stopped: one string per packet,
    an encapsulated packet's inner headers after its outer ones."""

    packets: list[str] = field(default_factory=list)

    def matching(self, pattern: str) -> list[str]:
        return [p for p in self.packets if re.search(pattern, p)]


@dataclass(frozen=True)
class Segment:
    ns: str
    outside_ns: str
    tag: str

    def nic(self, index: int) -> Nic:
        """Guest `index`'s (0-based) NIC on this segment."""
        return Nic(
            netns=self.ns,
            bridge=BRIDGE,
            tap=f"pct{self.tag}{index}",
            mac=f"52:54:00:{int(self.tag[:2], 16):02x}:{int(self.tag[2:4], 16):02x}:{index:02x}",
            address=f"{SUBNET.network_address + FIRST_GUEST + index}/{SUBNET.prefixlen}",
            gateway=ROUTER,
        )

    def in_ns(self, *cmd: str) -> str:
        return _sh("nsenter", f"--net=/run/netns/{self.ns}", *cmd)

    @contextlib.contextmanager
    def capture(self, pcap_filter: str) -> Iterator[Capture]:
        """tcpdump on br0 from entry (once it listens) to exit; the packets in `lines`."""
        seen = Capture()
        with tempfile.TemporaryDirectory(prefix="pcseg-") as tmp:
            pcap = Path(tmp) / "segment.pcap"
            dump = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.ns}", "tcpdump", "-i", BRIDGE, "-n",
                 "-U", "-w", str(pcap), pcap_filter],
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            try:
                assert dump.stderr is not None
                said = dump.stderr.readline()  # "listening on br0, ...": it captures now
                if "listening on" not in said:
                    raise AssertionError(f"tcpdump on the segment did not start: {said}")
                yield seen
            finally:
                dump.send_signal(signal.SIGINT)
                try:
                    dump.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    dump.kill()
                    dump.communicate()
            read = _sh("tcpdump", "-n", "-r", str(pcap))
            for line in read.splitlines():
                if TIMESTAMP.match(line):
                    seen.packets.append(line)
                elif line.strip() and seen.packets:  # the inner packet of a tunnelled one
                    seen.packets[-1] += " | " + line.strip()


@contextlib.contextmanager
def segment() -> Iterator[Segment]:
    """A fresh segment and outside; both namespaces removed on the way out (the guests'
    taps go with QEMU, which the caller stops first)."""
    tag = uuid.uuid4().hex[:4]
    seg = Segment(f"pcseg-{tag}", f"pcseg-{tag}-out", tag)
    made: list[str] = []
    try:
        for ns in (seg.ns, seg.outside_ns):
            _sh("ip", "netns", "add", ns)
            made.append(ns)
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
        _sh("ip", "-n", seg.ns, "link", "add", BRIDGE, "type", "bridge")
        _sh("ip", "-n", seg.ns, "addr", "add", f"{ROUTER}/{SUBNET.prefixlen}", "dev", BRIDGE)
        _sh("ip", "-n", seg.ns, "link", "set", BRIDGE, "up")
        _sh("ip", "-n", seg.ns, "link", "add", "out0", "type", "veth",
            "peer", "name", "eth0", "netns", seg.outside_ns)  # fmt: skip
        _sh("ip", "-n", seg.ns, "addr", "add", f"{OUTSIDE_ROUTER}/24", "dev", "out0")
        _sh("ip", "-n", seg.ns, "link", "set", "out0", "up")
        seg.in_ns("sysctl", "-qw", "net.ipv4.ip_forward=1")
        _sh("ip", "-n", seg.outside_ns, "addr", "add", f"{OUTSIDE}/24", "dev", "eth0")
        _sh("ip", "-n", seg.outside_ns, "link", "set", "eth0", "up")
        _sh("ip", "-n", seg.outside_ns, "route", "add", "default", "via", OUTSIDE_ROUTER)
        yield seg
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], check=False)

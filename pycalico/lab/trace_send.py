"""Sending the one real packet a trace follows, from inside the source pod, and what came
back: a TCP SYN (connect), a UDP datagram, or an ICMP echo request, from a chosen source
port (echo id) so that the trace tables can pick it out."""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

from pycalico.lab.trace_events import Packet
from pycalico.netns import in_netns

# Under TCP's first retransmission (1 s): a dropped SYN is sent once, and traced once.
TIMEOUT = 0.9


@dataclass(frozen=True)
class Reply:
    outcome: str  # answered, refused, timeout, unreachable
    detail: str = ""  # what answered, or the error


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, sequence: int = 1) -> bytes:
    """An ICMP echo request with its checksum (pure)."""
    payload = b"calico-lab trace"
    header = struct.pack("!BBHHH", 8, 0, 0, ident, sequence)
    return struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, sequence) + payload


def _tcp(packet: Packet) -> Reply:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((packet.src, packet.sport))
        sock.settimeout(TIMEOUT)
        sock.connect((packet.dst, packet.dport))
        sock.sendall(b"trace\n")
        try:
            answer = sock.recv(256).decode(errors="replace").strip()
        except TimeoutError:
            answer = ""
        return Reply(
            "answered", f"connection established{f', answered {answer!r}' if answer else ''}"
        )


def _udp(packet: Packet) -> Reply:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((packet.src, packet.sport))
        sock.settimeout(TIMEOUT)
        sock.connect((packet.dst, packet.dport))  # connected: ICMP errors are reported
        sock.send(b"trace\n")
        answer = sock.recv(256).decode(errors="replace").strip()
        return Reply("answered", f"a datagram came back{f': {answer!r}' if answer else ''}")


def _icmp(packet: Packet) -> Reply:
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        sock.bind((packet.src, 0))
        sock.sendto(echo_request(packet.sport), (packet.dst, 0))
        deadline = time.monotonic() + TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
            data, _ = sock.recvfrom(2048)
            header = (data[0] & 0x0F) * 4
            kind, _, _, ident = struct.unpack("!BBHH", data[header : header + 6])
            if kind == 0 and ident == packet.sport:
                return Reply("answered", "echo reply")
            if kind == 3:  # destination unreachable, about our packet or not: look inside
                quoted = data[header + 8 :]
                inner = (quoted[0] & 0x0F) * 4 if quoted else 0
                if quoted[inner + 4 : inner + 6] == struct.pack("!H", packet.sport):
                    return Reply(
                        "refused", f"ICMP destination unreachable (code {data[header + 1]})"
                    )


def send(netns: str, packet: Packet) -> Reply:
    """Send the packet from `netns` and wait for what comes back."""
    send_one = {"tcp": _tcp, "udp": _udp, "icmp": _icmp}[packet.protocol]

    def run() -> Reply:
        try:
            return send_one(packet)
        except TimeoutError:
            return Reply("timeout", f"no answer within {TIMEOUT}s")
        except ConnectionRefusedError:
            what = "TCP RST" if packet.protocol == "tcp" else "ICMP port unreachable"
            return Reply("refused", what)
        except OSError as exc:
            return Reply("unreachable", exc.strerror or str(exc))

    return in_netns(f"/run/netns/{netns}", run)

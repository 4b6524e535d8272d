"""What a traced packet looked like on a wire: frames captured with an AF_PACKET socket and
decoded here (VXLAN, IPIP or plain IPv4, and ARP).

The underlay capture listens on every port of the lab's bridges at once (the `<lab>-net`
namespace holds them), so whatever a node sends to another node, the router or etcd is seen
there, encapsulated or not, with the port it came in on.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

from pycalico.netns import in_netns

ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
VXLAN_PORT = 4789
PROTOCOLS = {1: "icmp", 4: "ipip", 6: "tcp", 17: "udp"}


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _ipv4(packet: bytes) -> dict[str, Any] | None:
    """An IPv4 packet's addresses, protocol and ports (ICMP: type and echo id)."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    header = (packet[0] & 0x0F) * 4
    proto = packet[9]
    out: dict[str, Any] = {
        "src": socket.inet_ntoa(packet[12:16]),
        "dst": socket.inet_ntoa(packet[16:20]),
        "protocol": PROTOCOLS.get(proto, str(proto)),
        "ttl": packet[8],
    }
    body = packet[header:]
    if proto in (6, 17) and len(body) >= 4:
        out["sport"], out["dport"] = struct.unpack("!HH", body[:4])
        if proto == 6 and len(body) >= 14:
            out["tcp_flags"] = body[13]
        if proto == 17 and out["dport"] == VXLAN_PORT and len(body) >= 16:
            vxlan = body[8:16]
            out["vni"] = int.from_bytes(vxlan[4:7], "big")
            inner = body[16:]
            if len(inner) >= 14 and inner[12:14] == b"\x08\x00":
                out["inner_ether"] = {"src": _mac(inner[6:12]), "dst": _mac(inner[0:6])}
                out["inner"] = _ipv4(inner[14:])
    elif proto == 1 and len(body) >= 8:
        out["icmp_type"] = body[0]
        out["icmp_id"] = struct.unpack("!H", body[4:6])[0]
    elif proto == 4:
        out["inner"] = _ipv4(body)
    return out


def decode(frame: bytes) -> dict[str, Any] | None:
    """An Ethernet frame: its MACs and its IPv4 or ARP content (pure)."""
    if len(frame) < 14:
        return None
    ethertype = struct.unpack("!H", frame[12:14])[0]
    out: dict[str, Any] = {"ether_src": _mac(frame[6:12]), "ether_dst": _mac(frame[0:6])}
    if ethertype == ETH_P_IP:
        ip = _ipv4(frame[14:])
        if ip is None:
            return None
        out["ip"] = ip
        return out
    if ethertype == ETH_P_ARP and len(frame) >= 42:
        arp = frame[14:42]
        out["arp"] = {
            "op": "request" if struct.unpack("!H", arp[6:8])[0] == 1 else "reply",
            "sender_mac": _mac(arp[8:14]),
            "sender_ip": socket.inet_ntoa(arp[14:18]),
            "target_ip": socket.inet_ntoa(arp[24:28]),
        }
        return out
    return None


def carried(ip: dict[str, Any]) -> dict[str, Any]:
    """The packet inside a VXLAN or IPIP packet, or the packet itself."""
    return ip.get("inner") or ip


@dataclass
class Capture:
    """Frames of one namespace (every interface, or one), kept from start to stop."""

    netns: str
    interface: str = ""
    ethertype: int = ETH_P_ALL
    frames: list[tuple[str, bool, dict[str, Any]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    error: str = ""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        def listen() -> None:
            try:
                sock = socket.socket(
                    socket.AF_PACKET, socket.SOCK_RAW, socket.htons(self.ethertype)
                )
                if self.interface:
                    sock.bind((self.interface, 0))
            except OSError as exc:
                self.error = str(exc)
                self._ready.set()
                return
            sock.settimeout(0.05)
            self._ready.set()
            with sock:
                while not self._stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        frame, address = sock.recvfrom(65535)
                        decoded = decode(frame)
                        if decoded is None:
                            continue
                        # address: (interface, protocol, packet type, ...)
                        self.frames.append((address[0], address[2] == PACKET_OUTGOING, decoded))

        in_netns(f"/run/netns/{self.netns}", listen)

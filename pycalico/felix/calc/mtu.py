"""MTU auto-detection, as Felix does it: host MTU minus each enabled encapsulation's overhead."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_IFACE_PATTERN = r"^((en|wl|ww|sl|ib)[Pcopsvx].*|(eth|wlan|wwan).*)"
FALLBACK_HOST_MTU = 1460
OVERHEAD = {"ipip": 20, "vxlan": 50, "vxlan-v6": 70, "wireguard": 60, "wireguard-v6": 80}


@dataclass(frozen=True)
class Link:
    name: str
    mtu: int
    up: bool


def host_mtu(links: Iterable[Link], pattern: str = DEFAULT_IFACE_PATTERN) -> int:
    """The smallest MTU of the up interfaces matching `pattern` (1460 when none match)."""
    regex = re.compile(pattern)
    mtus = [link.mtu for link in links if link.up and regex.search(link.name)]
    return min(mtus) if mtus else FALLBACK_HOST_MTU


def tunnel_mtu(host: int, encap: str, configured: int = 0) -> int:
    """A tunnel device's MTU: the FelixConfiguration value, else host MTU minus overhead."""
    return configured or host - OVERHEAD[encap]


def pod_mtu(host: int, enabled: dict[str, int]) -> int:
    """The MTU pods get: the smallest enabled tunnel MTU, or the host MTU with no tunnel.

    `enabled` maps each enabled encapsulation to its configured MTU (0 = automatic).
    """
    if not enabled:
        return host
    return min(tunnel_mtu(host, encap, configured) for encap, configured in enabled.items())

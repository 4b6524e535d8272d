"""The VXLAN device's MAC address: Calico derives it from the node name when none is set."""

from __future__ import annotations

import hashlib


def vtep_mac(node_name: str, configured: str = "", ipv6: bool = False) -> str:
    """`Node.spec.vxlanTunnelMACAddr` if set, else 0x66 + the first 5 bytes of SHA-1(name)."""
    if configured:
        return configured.lower()
    digest = hashlib.sha1((node_name + ("-v6" if ipv6 else "")).encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x66, *digest[:5]))

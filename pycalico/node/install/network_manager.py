"""NetworkManager's `conf.d/calico.conf` (pure): Calico's devices are not NetworkManager's.

NetworkManager changes routes on the interfaces it manages, which breaks Calico's routing;
Calico's troubleshooting guide has this file written before Calico networking is used.
"""

from __future__ import annotations

UNMANAGED = (
    "interface-name:cali*",
    "interface-name:tunl*",
    "interface-name:vxlan.calico",
    "interface-name:vxlan-v6.calico",
    "interface-name:wireguard.cali",
    "interface-name:wg-v6.cali",
)


def render() -> str:
    return f"[keyfile]\nunmanaged-devices={';'.join(UNMANAGED)}\n"

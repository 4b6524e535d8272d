"""The `tunl0` IPIP device: up, with Calico's MTU and exactly the node's tunnel address.

The device itself comes from the kernel's ipip module (loading it creates `tunl0`); on a
kernel without the module nothing can be created and the caller gets a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pycalico.felix.calc_routes import IPIP_DEVICE
from pycalico.felix.tunnel_link import settle


class IpipUnsupported(RuntimeError):
    pass


@dataclass(frozen=True)
class IpipSpec:
    mtu: int
    address: str  # the node's IPIP tunnel address ("" until IPAM gave one)


def ensure(ipr: Any, spec: IpipSpec) -> bool:
    """Make `tunl0` match `spec`; True if anything changed."""
    from pyroute2.netlink.exceptions import NetlinkError

    changed = False
    found = ipr.link_lookup(ifname=IPIP_DEVICE)
    if not found:
        try:
            ipr.link("add", ifname=IPIP_DEVICE, kind="ipip")
        except NetlinkError as exc:
            raise IpipUnsupported(
                f"cannot create {IPIP_DEVICE}: this kernel has no ipip support ({exc.args[-1]})"
            ) from None
        changed = True
        found = ipr.link_lookup(ifname=IPIP_DEVICE)
    return settle(ipr, found[0], spec.mtu, spec.address) or changed

"""The `tunl0` IPIP device: up, with Calico's MTU and exactly the node's tunnel address.

The device itself comes from the kernel's ipip module (loading it creates `tunl0`); on a
kernel without the module nothing can be created and the caller gets a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pycalico.felix.calc_routes import IPIP_DEVICE

AF_INET = 2


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
    index = found[0]
    link = ipr.get_links(index)[0]
    if link.get_attr("IFLA_MTU") != spec.mtu:
        ipr.link("set", index=index, mtu=spec.mtu)
        changed = True
    if not link["flags"] & 1:
        ipr.link("set", index=index, state="up")
        changed = True
    current = {
        (a.get_attr("IFA_ADDRESS"), a["prefixlen"])
        for a in ipr.get_addr(index=index, family=AF_INET)
    }
    wanted = {(spec.address, 32)} if spec.address else set()
    for address, prefixlen in current - wanted:
        ipr.addr("del", index=index, address=address, prefixlen=prefixlen)
        changed = True
    for address, prefixlen in wanted - current:
        ipr.addr("add", index=index, address=address, prefixlen=prefixlen)
        changed = True
    return changed

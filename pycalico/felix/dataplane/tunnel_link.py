"""What every tunnel device needs once it exists: Calico's MTU, up, and exactly one /32.

The address is the node's tunnel address from IPAM; any other address on the device is
stale (a previous allocation, or something added by hand) and is removed.
"""

from __future__ import annotations

import socket
from typing import Any

from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP


def settle(ipr: Any, index: int, mtu: int, address: str) -> bool:
    """Bring link `index` to `mtu`, up, holding only `address`/32 ("" = none); True if changed."""
    changed = False
    link = ipr.get_links(index)[0]
    if link.get_attr("IFLA_MTU") != mtu:
        ipr.link("set", index=index, mtu=mtu)
        changed = True
    if not link["flags"] & IFF_UP:
        ipr.link("set", index=index, state="up")
        changed = True
    current = {
        (a.get_attr("IFA_ADDRESS"), a["prefixlen"])
        for a in ipr.get_addr(index=index, family=socket.AF_INET)
    }
    wanted = {(address, 32)} if address else set()
    for stale, prefixlen in current - wanted:
        ipr.addr("del", index=index, address=stale, prefixlen=prefixlen)
        changed = True
    for missing, prefixlen in wanted - current:
        ipr.addr("add", index=index, address=missing, prefixlen=prefixlen)
        changed = True
    return changed

"""The `tunl0` IPIP device: up, with Calico's MTU and exactly the node's tunnel address.

The device itself comes from the kernel's ipip module: loading it creates `tunl0` in every
namespace. Asking for a link of kind ipip loads the module on demand, and the `tunl0`
that appears then is the one we use. On a kernel without the module nothing can be
created and the caller gets a clear error.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from pycalico.felix.calc.desired import IpipSpec, Routing
from pycalico.felix.calc.routes import IPIP_DEVICE
from pycalico.felix.dataplane.manager import DeviceManager
from pycalico.felix.dataplane.tunnel_link import settle


class IpipUnsupported(RuntimeError):
    pass


def ensure(ipr: Any, spec: IpipSpec) -> bool:
    """Make `tunl0` match `spec`; True if anything changed."""
    from pyroute2.netlink.exceptions import NetlinkError

    changed = False
    found = ipr.link_lookup(ifname=IPIP_DEVICE)
    if not found:
        try:
            ipr.link("add", ifname=IPIP_DEVICE, kind="ipip")
        except NetlinkError as exc:
            # Loading the module on demand created tunl0 before our own add could.
            if exc.code != errno.EEXIST:
                raise IpipUnsupported(
                    f"cannot create {IPIP_DEVICE}: this kernel has no ipip support ({exc.args[-1]})"
                ) from None
        changed = True
        found = ipr.link_lookup(ifname=IPIP_DEVICE)
    return settle(ipr, found[0], spec.mtu, spec.address) or changed


def disable(ipr: Any) -> None:
    """No pool uses IPIP: `tunl0` keeps no address (the module's device cannot be deleted).

    Removing its last address makes the kernel flush every route through `tunl0`; the
    ones Felix still wants (a switching pool's, see calc/routes.py) come back in the same
    apply, because the route manager reads the kernel after the devices are settled.
    """
    found = ipr.link_lookup(ifname=IPIP_DEVICE)
    if not found:
        return
    for addr in list(ipr.get_addr(index=found[0], family=socket.AF_INET)):  # the whole dump first
        address = addr.get_attr("IFA_ADDRESS")
        ipr.addr("del", index=found[0], address=address, prefixlen=addr["prefixlen"])


class IpipManager(DeviceManager):
    """`tunl0` as the routing part wants it: set up while a pool uses IPIP, else without an
    address (when it exists at all)."""

    def spec(self, routing: Routing) -> object:
        return routing.ipip

    def settle(self, routing: Routing) -> None:
        if routing.ipip is not None:
            ensure(self.ipr, routing.ipip)
        else:
            disable(self.ipr)

"""The `vxlan.calico` device: created, checked and repaired as Felix does.

An existing device is kept when it already matches (VNI, port, local address, parent,
MAC, learning off), so restarts never bounce it; it is re-created only when it differs,
and its MTU, tunnel address and up state are set in place.
"""

from __future__ import annotations

from typing import Any

from pycalico.felix.calc.desired import Routing, VxlanSpec
from pycalico.felix.calc.routes import VXLAN_DEVICE
from pycalico.felix.dataplane.manager import DeviceManager
from pycalico.felix.dataplane.tunnel_link import settle


def _info(link: Any) -> dict[str, Any]:
    linkinfo = link.get_attr("IFLA_LINKINFO")
    data = linkinfo.get_attr("IFLA_INFO_DATA") if linkinfo else None
    kind = linkinfo.get_attr("IFLA_INFO_KIND") if linkinfo else None
    if kind != "vxlan" or data is None:
        return {}
    return {
        "vni": data.get_attr("IFLA_VXLAN_ID"),
        "port": data.get_attr("IFLA_VXLAN_PORT"),
        "local": data.get_attr("IFLA_VXLAN_LOCAL"),
        "parent": data.get_attr("IFLA_VXLAN_LINK"),
        "learning": data.get_attr("IFLA_VXLAN_LEARNING"),
        "mac": str(link.get_attr("IFLA_ADDRESS")).lower(),
    }


def ensure(ipr: Any, spec: VxlanSpec) -> bool:
    """Make the kernel's `vxlan.calico` match `spec`; True if anything was changed."""
    parent = ipr.link_lookup(ifname=spec.parent)
    if not parent:
        raise RuntimeError(f"VXLAN parent interface {spec.parent} does not exist")
    wanted = {
        "vni": spec.vni,
        "port": spec.port,
        "local": spec.local_ip,
        "parent": parent[0],
        "learning": 0,
        "mac": spec.mac.lower(),
    }
    changed = False
    found = ipr.link_lookup(ifname=VXLAN_DEVICE)
    if found and _info(ipr.get_links(found[0])[0]) != wanted:
        ipr.link("del", index=found[0])
        found = []
    if not found:
        ipr.link(
            "add",
            ifname=VXLAN_DEVICE,
            kind="vxlan",
            vxlan_id=spec.vni,
            vxlan_port=spec.port,
            vxlan_local=spec.local_ip,
            vxlan_link=parent[0],
            vxlan_learning=0,
            address=spec.mac,
            mtu=spec.mtu,
        )
        changed = True
        found = ipr.link_lookup(ifname=VXLAN_DEVICE)
    return settle(ipr, found[0], spec.mtu, spec.address) or changed


class VxlanManager(DeviceManager):
    """Keeps `vxlan.calico` as the routing part wants it; without a spec (no VXLAN pool, or
    no tunnel address yet) an existing device is left as it is."""

    def spec(self, routing: Routing) -> object:
        return routing.vxlan

    def settle(self, routing: Routing) -> None:
        if routing.vxlan is not None:
            ensure(self.ipr, routing.vxlan)

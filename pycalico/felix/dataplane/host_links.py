"""The facts about this host's links that Felix's calculation needs, read from the kernel:
each link's name, MTU and state (the host MTU, tunl0), and which link holds which address
(the underlay; host endpoints found by their expectedIPs)."""

from __future__ import annotations

import ipaddress
from typing import Any

from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP

from pycalico.felix.calc.desired import HostLinks
from pycalico.felix.calc.mtu import Link


def read(ipr: Any) -> HostLinks:
    names: dict[int, str] = {}
    links = []
    for link in ipr.get_links():
        name = str(link.get_attr("IFLA_IFNAME"))
        names[link["index"]] = name
        links.append(Link(name, int(link.get_attr("IFLA_MTU")), bool(link["flags"] & IFF_UP)))
    # Each address in Python's own text form, which the endpoints' addresses are compared in.
    addresses = tuple(
        (str(ipaddress.ip_address(msg.get_attr("IFA_ADDRESS"))), names.get(msg["index"], ""))
        for msg in ipr.get_addr()
    )
    return HostLinks(tuple(links), addresses)

"""What in a node's kernel is calico-node's, and goes at uninstall (pure).

Calico's own ownership rules, as Felix applies them (felix/dataplane/routes.py): `cali*`
interfaces are workloads' host ends; `vxlan.calico`, `vxlan-v6.calico`, `wireguard.cali`
and `wg-v6.cali` are Calico's tunnel devices (the same list Calico has NetworkManager leave
alone); routes of Felix's protocol (80) or BIRD's (`bird`, 12), or on one of those devices
or `tunl0`, are Calico's. `tunl0` itself belongs to the kernel's ipip module, which made it
in every namespace and will not delete it: uninstall takes Felix's address off it and sets
it down, as it was before Felix. The nftables tables are Felix's (`inet calico`, and the
`ip calico` an earlier pycalico used).
"""

from __future__ import annotations

from pycalico.felix.rules.table import TABLE
from pycalico.netns import PROTO_FELIX

WORKLOAD_PREFIX = "cali"
TUNNEL_DEVICES = ("vxlan.calico", "vxlan-v6.calico", "wireguard.cali", "wg-v6.cali")
IPIP_DEVICE = "tunl0"
PROTO_BIRD = 12  # rtnetlink's RTPROT_BIRD: the protocol BIRD's kernel protocol writes with
# Felix's table, and the one earlier pycalico versions kept NAT in.
NFT_TABLES = (TABLE, "ip calico")


def deletable_link(name: str) -> bool:
    """A link uninstall deletes (a workload's host end, or a Calico tunnel device)."""
    return name.startswith(WORKLOAD_PREFIX) or name in TUNNEL_DEVICES


def calico_route(proto: int, dev: str) -> bool:
    """A route uninstall deletes: Felix's or BIRD's, or through one of Calico's devices."""
    return proto in (PROTO_FELIX, PROTO_BIRD) or dev == IPIP_DEVICE or deletable_link(dev)

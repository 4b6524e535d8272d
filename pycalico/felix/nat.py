"""natOutgoing: traffic from a natOutgoing pool to anywhere outside all pools is masqueraded.

Rendered as one nftables script for pycalico's own table (`ip calico`), applied as a single
transaction. The script is idempotent: it creates what is missing and replaces the
contents of the sets and the chain, so applying it again changes nothing. The NAT chain
exists only while some pool masquerades.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

TABLE = "ip calico"
ALL_POOLS = "all-ipam-pools"
MASQ_POOLS = "masq-ipam-pools"
CHAIN = "nat-outgoing"
HOOK = "type nat hook postrouting priority srcnat; policy accept;"
RAW_CHAINS = (
    ("raw-prerouting", "type filter hook prerouting priority raw; policy accept;"),
    ("raw-output", "type filter hook output priority raw; policy accept;"),
)


@dataclass(frozen=True)
class NatPool:
    cidr: str
    nat_outgoing: bool
    disabled: bool = False


def render(pools: Iterable[NatPool], vxlan_port: int | None = None) -> str:
    """The nft script for IPv4 natOutgoing over these pools (and VXLAN's NOTRACK).

    With VXLAN on, its UDP packets skip connection tracking, as Calico's raw-table rules
    make them: the tunnel's outer packets need no state, and tracking them costs every
    packet a conntrack lookup on both nodes.
    """
    v4 = [p for p in pools if ipaddress.ip_network(p.cidr).version == 4]
    all_cidrs = sorted({p.cidr for p in v4})
    # Disabled pools still hold addresses in use: their traffic is still masqueraded.
    masq_cidrs = sorted({p.cidr for p in v4 if p.nat_outgoing})
    lines = [f"add table {TABLE}"]
    for name, cidrs in ((ALL_POOLS, all_cidrs), (MASQ_POOLS, masq_cidrs)):
        lines += [
            f"add set {TABLE} {name} {{ type ipv4_addr; flags interval; auto-merge; }}",
            f"flush set {TABLE} {name}",
        ]
        if cidrs:
            lines.append(f"add element {TABLE} {name} {{ {', '.join(cidrs)} }}")
    # Each base chain is added first even when it is about to be deleted: `delete` of a
    # missing chain fails, and the script must apply over any earlier state.
    lines += [
        f"add chain {TABLE} {CHAIN} {{ {HOOK} }}",
        f"flush chain {TABLE} {CHAIN}",
    ]
    if masq_cidrs:
        # No `ct state new` needed: the kernel runs NAT chains only for a connection's
        # first packet, later ones reuse the binding kept in conntrack.
        lines.append(
            f"add rule {TABLE} {CHAIN} ip saddr @{MASQ_POOLS} ip daddr != @{ALL_POOLS} "
            'masquerade fully-random comment "natOutgoing"'
        )
    else:
        # Nothing to masquerade: no NAT base chain at all. While one exists the kernel
        # runs its NAT hooks on every packet at four hook points (prerouting, input,
        # output, postrouting), about 0.7% of a forwarded pod stream's CPU here.
        lines.append(f"delete chain {TABLE} {CHAIN}")
    for chain, hook in RAW_CHAINS:
        lines += [f"add chain {TABLE} {chain} {{ {hook} }}", f"flush chain {TABLE} {chain}"]
        if vxlan_port:
            lines.append(f'add rule {TABLE} {chain} udp dport {vxlan_port} notrack comment "vxlan"')
        else:
            # An empty base chain is still called for every packet at its hook.
            lines.append(f"delete chain {TABLE} {chain}")
    return "\n".join(lines) + "\n"

"""natOutgoing, and VXLAN's NOTRACK, as chains and sets of pycalico's `inet calico` table
(pure).

Traffic from a natOutgoing pool to anywhere outside all pools is masqueraded; nothing else
is. These go into the same ruleset as policy, so Felix keeps one table of its own and
changes it in one transaction.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from pycalico.felix.rules.table import NftSet, Ruleset

ALL_POOLS = "all-ipam-pools"
MASQ_POOLS = "masq-ipam-pools"
CHAIN = "nat-outgoing"
HOOK = "type nat hook postrouting priority srcnat; policy accept;"
RAW_CHAINS = (
    ("raw-PREROUTING", "type filter hook prerouting priority raw; policy accept;"),
    ("raw-OUTPUT", "type filter hook output priority raw; policy accept;"),
)
_SET_DECL = "type ipv4_addr; flags interval;"


@dataclass(frozen=True)
class NatPool:
    cidr: str
    nat_outgoing: bool
    disabled: bool = False


def _set(cidrs: Iterable[ipaddress.IPv4Network]) -> NftSet:
    return NftSet(_SET_DECL, frozenset(str(n) for n in ipaddress.collapse_addresses(cidrs)))


@functools.lru_cache(maxsize=8)
def _masquerade_sets(pools: tuple[NatPool, ...]) -> tuple[NftSet, NftSet] | None:
    """Every IPv4 pool and the natOutgoing ones (None: no pool masquerades). Made again
    only when the pools change: parsing and collapsing them on every apply was a twentieth
    of an apply's CPU in a 100-node lab."""
    v4 = [
        (net, p.nat_outgoing)
        for p in pools
        if isinstance(net := ipaddress.ip_network(p.cidr), ipaddress.IPv4Network)
    ]
    # Disabled pools still hold addresses in use: their traffic is still masqueraded.
    masq = [net for net, nat_outgoing in v4 if nat_outgoing]
    return (_set(net for net, _ in v4), _set(masq)) if masq else None


def add_to(rules: Ruleset, pools: Iterable[NatPool], vxlan_port: int | None = None) -> None:
    """Add IPv4 natOutgoing over these pools (and VXLAN's NOTRACK) to `rules`.

    Base chains exist only while they have work: while one exists the kernel runs its hook
    on every packet (a NAT base chain costs the NAT hooks at four points, about 0.7% of a
    forwarded pod stream's CPU here). With VXLAN on, its UDP packets skip connection
    tracking, as Calico's raw-table rules make them: the tunnel's outer packets need no
    state, and tracking them costs every packet a conntrack lookup on both nodes.
    """
    sets = _masquerade_sets(tuple(pools))
    if sets is not None:
        rules.sets[ALL_POOLS], rules.sets[MASQ_POOLS] = sets
        # No `ct state new` needed: the kernel runs NAT chains only for a connection's
        # first packet, later ones reuse the binding kept in conntrack.
        rules.chains[CHAIN] = (
            f"ip saddr @{MASQ_POOLS} ip daddr != @{ALL_POOLS} "
            'masquerade fully-random comment "natOutgoing"',
        )
        rules.base_chains[CHAIN] = HOOK
    if vxlan_port:
        for chain, hook in RAW_CHAINS:
            rules.chains[chain] = (f'udp dport {vxlan_port} notrack comment "vxlan"',)
            rules.base_chains[chain] = hook

"""The model of pycalico's one nftables table, `inet calico`: chains, sets, maps (pure).

Policy, natOutgoing and VXLAN's NOTRACK all render into one `Ruleset`, so Felix changes
the table in one transaction and the dataplane compares one value with the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TABLE = "inet calico"


@dataclass(frozen=True)
class NftSet:
    decl: str  # "type ...; flags ...;"
    elements: frozenset[str]


@dataclass
class Ruleset:
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sets: dict[str, NftSet] = field(default_factory=dict)
    maps: dict[str, NftSet] = field(default_factory=dict)
    # The chains that hook into the packet path, with their hook declarations.
    base_chains: dict[str, str] = field(default_factory=dict)

"""natOutgoing and VXLAN's NOTRACK as part of the `inet calico` ruleset (pure rendering)."""

from __future__ import annotations

from pycalico.felix.rules.nat import ALL_POOLS, CHAIN, MASQ_POOLS, NatPool, add_to
from pycalico.felix.rules.table import Ruleset


def rendered(pools: list[NatPool], vxlan_port: int | None = None) -> Ruleset:
    rules = Ruleset()
    add_to(rules, pools, vxlan_port)
    return rules


def test_nat_pools_masquerade_traffic_leaving_all_pools() -> None:
    rules = rendered([NatPool("10.244.0.0/16", True), NatPool("10.245.0.0/16", False)])
    assert rules.sets[ALL_POOLS].elements == {"10.244.0.0/15"}  # adjacent pools, one interval
    assert rules.sets[MASQ_POOLS].elements == {"10.244.0.0/16"}
    assert rules.chains[CHAIN] == (
        "ip saddr @masq-ipam-pools ip daddr != @all-ipam-pools "
        'masquerade fully-random comment "natOutgoing"',
    )
    assert "type nat hook postrouting" in rules.base_chains[CHAIN]


def test_without_nat_pools_there_is_no_nat_chain_or_sets() -> None:
    # No NAT base chain, so the kernel's NAT hooks do not run on every packet.
    rules = rendered([NatPool("10.244.0.0/16", False)])
    assert rules == Ruleset()


def test_ipv6_pools_are_left_out() -> None:
    assert rendered([NatPool("fd00::/48", True)]) == Ruleset()
    rules = rendered([NatPool("fd00::/48", True), NatPool("10.244.0.0/16", True)])
    assert rules.sets[ALL_POOLS].elements == {"10.244.0.0/16"}


def test_vxlan_packets_skip_connection_tracking_only_when_vxlan_is_on() -> None:
    with_vxlan = rendered([NatPool("10.244.0.0/16", False)], vxlan_port=4789)
    for chain in ("raw-PREROUTING", "raw-OUTPUT"):
        assert with_vxlan.chains[chain] == ('udp dport 4789 notrack comment "vxlan"',)
        assert "priority raw" in with_vxlan.base_chains[chain]
    # Without VXLAN no raw chains: an empty base chain still runs for every packet.
    assert not rendered([NatPool("10.244.0.0/16", True)]).chains.keys() & {"raw-OUTPUT"}

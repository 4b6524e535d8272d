"""natOutgoing and NOTRACK in the real nftables, in Felix's one table, inside a namespace the
test owns."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator

import pytest

from pycalico.felix.dataplane.nftables import NftablesManager
from pycalico.felix.rules import policy as nft
from pycalico.felix.rules.nat import NatPool, add_to
from pycalico.felix.rules.table import Ruleset
from pycalico.netns import in_netns
from pycalico.policy import calc
from tests.support.node_namespace import bare_namespace

pytestmark = pytest.mark.integration


@pytest.fixture
def netns() -> Iterator[str]:
    with bare_namespace("nattest") as name:
        yield name


def table(netns: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "list", "ruleset"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def felix_rules(pools: list[NatPool], vxlan_port: int | None = None) -> Ruleset:
    rules = nft.render(calc.PolicyState())
    add_to(rules, pools, vxlan_port)
    return rules


def test_nat_lives_in_felix_one_table_and_follows_the_pools(netns: str) -> None:
    with contextlib.closing(NftablesManager()) as manager:

        def apply(rules: Ruleset) -> bool:
            return in_netns(f"/run/netns/{netns}", lambda: manager.write(rules))

        apply(felix_rules([NatPool("10.244.0.0/16", True), NatPool("10.250.0.0/16", False)]))
        first = table(netns)
        assert first.count("table ") == 1 and "table inet calico" in first
        assert "masquerade fully-random" in first and "10.250.0.0/16" in first
        assert "type filter hook forward" in first
        assert not apply(
            felix_rules([NatPool("10.244.0.0/16", True), NatPool("10.250.0.0/16", False)])
        )

        # natOutgoing off: no NAT base chain left, so the kernel's NAT hooks are off the path.
        apply(felix_rules([NatPool("10.244.0.0/16", False)], vxlan_port=4789))
        off = table(netns)
        assert "masquerade" not in off and "type nat" not in off
        assert "udp dport 4789 notrack" in off and "priority raw" in off

        # Neither: no raw base chain either.
        apply(felix_rules([NatPool("10.244.0.0/16", False)]))
        assert "priority raw" not in table(netns) and "type nat" not in table(netns)
        apply(felix_rules([NatPool("10.244.0.0/16", True)], vxlan_port=4789))
        assert "masquerade" in table(netns) and "notrack" in table(netns)


def test_the_ip_calico_table_of_earlier_versions_goes_with_the_first_write(netns: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-f", "-"],
        input="add table ip calico\nadd chain ip calico nat-outgoing\n",
        text=True,
        check=True,
    )
    with contextlib.closing(NftablesManager()) as manager:
        in_netns(f"/run/netns/{netns}", lambda: manager.write(felix_rules([])))
    ruleset = table(netns)
    assert "table ip calico" not in ruleset and "table inet calico" in ruleset

"""Per-rule counters read back from the kernel in one netlink dump: Felix's own rendering of
a policy and the profiles, loaded with `nft -f` into a namespace of the test's own."""

from __future__ import annotations

import subprocess

import pytest

from pycalico.felix.dataplane import nftables, rule_counters
from pycalico.felix.dataplane.rule_counters import RuleKey
from pycalico.felix.rules import policy as nft
from pycalico.netns import in_netns
from pycalico.policy import calc
from tests.support.node_namespace import bare_namespace
from tests.unit.test_felix_counted_rules import WEB
from tests.unit.test_policy_calc import inputs

pytestmark = pytest.mark.integration


def test_each_policy_and_profile_rule_reads_back_with_its_packets_and_bytes() -> None:
    rules = nft.PolicyRenderer().render(calc.Calculator("node1").calculate(inputs(WEB)))
    # nft takes a counter's starting values: each line of a rule starts at 7 packets.
    script = nftables.full_script(rules).replace(" counter ", " counter packets 7 bytes 700 ")
    with bare_namespace("rcnt") as ns:
        path = f"/run/netns/{ns}"
        assert in_netns(path, rule_counters.read) == {}  # no table yet
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=script, text=True,
                       check=True)  # fmt: skip
        found = in_netns(path, rule_counters.read)
        chains = [c for c in rules.chains if rule_counters.counted_chain(c)]
        assert in_netns(path, lambda: rule_counters.read(chains)) == found
        one = [nft.policy_chain(WEB.id, "ingress"), "filter-cali-pi-gone"]  # gone: skipped
        only_web = in_netns(path, lambda: rule_counters.read(one))
    assert only_web == {k: v for k, v in found.items() if k.owner == WEB.id}
    web = {k: v for k, v in found.items() if k.owner == WEB.id}
    # Rules 0 and 1 each render an IPv4 and an IPv6 line: their counts add up.
    assert web == {
        RuleKey("pi", WEB.id, 0): (14, 1400),
        RuleKey("pi", WEB.id, 1): (14, 1400),
    }
    assert found[RuleKey("pri", "kns.x", 0)] == (14, 1400)
    assert found[RuleKey("pro", "kns.y", 0)] == (14, 1400)
    assert {k.chain_kind for k in found} == {"pi", "pri", "pro"}  # endpoint chains: none

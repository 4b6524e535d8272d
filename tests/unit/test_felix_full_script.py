"""The order of a whole-table nft transaction: what the kernel pays for depends on it."""

from __future__ import annotations

from pycalico.felix.dataplane.nftables import full_script
from pycalico.felix.rules.table import Ruleset


def _rule_lines(script: str) -> list[str]:
    return [line.split(" ", 4)[4] for line in script.splitlines() if line.startswith("add rule")]


def test_chains_holding_anonymous_sets_are_filled_first_each_in_its_own_order() -> None:
    rules = Ruleset(
        chains={
            "a-endpoint": ("ct state invalid drop", "jump z-policy", "drop"),
            "z-policy": ("meta l4proto 6 th dport 22 accept", "th dport { 80, 443 } accept"),
        }
    )
    assert _rule_lines(full_script(rules)) == [
        "z-policy meta l4proto 6 th dport 22 accept",
        "z-policy th dport { 80, 443 } accept",
        "a-endpoint ct state invalid drop",
        "a-endpoint jump z-policy",
        "a-endpoint drop",
    ]

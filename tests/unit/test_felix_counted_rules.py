"""Per-rule counters in the rendered table: on policy and profile rules only, each with its
rule's index, so that the kernel's counts can be told apart per rule."""

from __future__ import annotations

from pycalico.felix.rules import policy as nft
from pycalico.policy import calc
from tests.unit.test_policy_calc import inputs, pol

WEB = pol(
    "NetworkPolicy",
    "web",
    {
        "selector": "app == 'web'",
        "ingress": [
            {"action": "Allow", "protocol": "TCP", "destination": {"ports": [80, "8000:8080"]}},
            {"action": "Deny"},
        ],
    },
    ns="x",
)


def _rules(renderer: nft.PolicyRenderer) -> dict[str, tuple[str, ...]]:
    return renderer.render(calc.Calculator("node1").calculate(inputs(WEB))).chains


def test_every_line_of_a_policy_rule_counts_and_names_its_rule() -> None:
    chain = _rules(nft.PolicyRenderer())[nft.policy_chain(WEB.id, "ingress")]
    allow = "meta mark set meta mark | 0x10000 return"
    assert chain == tuple(
        f"meta nfproto ipv{v} meta l4proto 6 th dport {{ 80, 8000-8080 }} counter {allow} "
        'comment "rule 0"'
        for v in (4, 6)
    ) + tuple(f'meta nfproto ipv{v} counter drop comment "rule 1"' for v in (4, 6))


def test_profile_rules_count_and_nothing_else_does() -> None:
    chains = _rules(nft.PolicyRenderer())
    profile = chains[nft.profile_chain("kns.x", "ingress")]
    assert all(line.endswith('comment "rule 0"') and " counter " in f" {line}" for line in profile)
    counted = {name for name, lines in chains.items() if any("counter" in ln for ln in lines)}
    assert counted == {
        nft.policy_chain(WEB.id, "ingress"),
        *(nft.profile_chain("kns.x", d) for d in ("ingress", "egress")),
        *(nft.profile_chain("kns.y", d) for d in ("ingress", "egress")),
    }


def test_a_renderer_without_counters_renders_the_rules_alone() -> None:
    chain = _rules(nft.PolicyRenderer(counters=False))[nft.policy_chain(WEB.id, "ingress")]
    assert chain[2:] == ("meta nfproto ipv4 drop", "meta nfproto ipv6 drop")

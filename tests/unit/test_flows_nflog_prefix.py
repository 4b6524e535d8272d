"""NFLOG prefixes: Felix's encoding of the rule that acted, written and read back."""

from __future__ import annotations

import pytest

from pycalico.flows import nflog_prefix as np
from pycalico.flows.naming import PolicyRef
from pycalico.flows.record import Action, PolicyKind

GNP = PolicyRef(PolicyKind.GLOBAL_NETWORK_POLICY, "", "allow-dns", "default")
NP = PolicyRef(PolicyKind.CALICO_NETWORK_POLICY, "shop", "allow-web", "default")
PROFILE = PolicyRef(PolicyKind.PROFILE, "", "kns.shop", "")
STAGED = PolicyRef(PolicyKind.STAGED_NETWORK_POLICY, "shop", "lock", "default")


def test_a_rule_prefix_is_calicos_example() -> None:
    assert np.rule(Action.ALLOW, np.Direction.INGRESS, 0, GNP) == "API0|gnp/allow-dns"


def test_a_rule_prefix_reads_back_as_the_rule() -> None:
    text = np.rule(Action.DENY, np.Direction.EGRESS, 12, NP)
    assert text == "DPE12|np/shop/allow-web"
    assert np.parse(text) == np.RuleLog(
        Action.DENY, np.Owner.POLICY, np.Direction.EGRESS, 12,
        PolicyKind.CALICO_NETWORK_POLICY, "shop", "allow-web",
    )  # fmt: skip


def test_a_profile_rule_is_owned_by_a_profile() -> None:
    text = np.rule(Action.ALLOW, np.Direction.INGRESS, 1, PROFILE)
    assert text == "ARI1|pro/kns.shop"
    parsed = np.parse(text)
    assert isinstance(parsed, np.RuleLog)
    assert parsed.owner == np.Owner.PROFILE


@pytest.mark.parametrize("only_staged", [False, True])
def test_a_tier_ends_in_a_drop_or_when_all_staged_a_pass(only_staged: bool) -> None:
    text = np.tier_end(np.Direction.INGRESS, "security", only_staged)
    assert text == ("PPI|security" if only_staged else "DPI|security")
    action = Action.PASS if only_staged else Action.DENY
    assert np.parse(text) == np.TierEnd(action, np.Direction.INGRESS, "security")


def test_a_staged_no_match_names_the_policy_not_a_tier() -> None:
    text = np.staged_no_match(np.Direction.EGRESS, STAGED)
    assert text == "DPE|snp/shop/lock"
    assert np.parse(text) == np.StagedNoMatch(
        np.Direction.EGRESS, PolicyKind.STAGED_NETWORK_POLICY, "shop", "lock"
    )


@pytest.mark.parametrize("direction", list(np.Direction))
def test_the_profiles_end_is_three_letters(direction: np.Direction) -> None:
    text = np.profile_no_match(direction)
    assert text == f"DR{direction.value}"
    assert np.parse(text) == np.ProfileNoMatch(direction)


def test_long_prefixes_are_hashed_to_63_characters_and_read_back_through_the_table() -> None:
    long_ref = PolicyRef(
        PolicyKind.CALICO_NETWORK_POLICY,
        "a-namespace-with-a-long-name",
        "and-a-policy-with-a-long-name-too",
        "default",
    )
    full = np.rule(Action.ALLOW, np.Direction.INGRESS, 3, long_ref)
    table = np.PrefixTable()
    carried = table.learn(full)
    assert len(full) > 63
    assert len(carried) == 63
    assert carried.startswith(full[:10])
    assert carried.endswith("_" + full[-10:])
    assert table.read(carried) == np.RuleLog(
        Action.ALLOW, np.Owner.POLICY, np.Direction.INGRESS, 3,
        PolicyKind.CALICO_NETWORK_POLICY, long_ref.namespace, long_ref.name,
    )  # fmt: skip


def test_a_prefix_of_exactly_63_characters_is_hashed_too() -> None:
    name = "p" * (63 - len("API0|gnp/"))
    full = np.rule(
        Action.ALLOW,
        np.Direction.INGRESS,
        0,
        PolicyRef(PolicyKind.GLOBAL_NETWORK_POLICY, "", name, "default"),
    )
    assert len(full) == 63
    table = np.PrefixTable()
    carried = table.learn(full)
    assert carried != full and len(carried) == 63
    assert isinstance(table.read(carried), np.RuleLog)


def test_short_prefixes_are_carried_unchanged() -> None:
    table = np.PrefixTable()
    assert table.learn("API0|gnp/allow-dns") == "API0|gnp/allow-dns"
    assert table.read("DRI") == np.ProfileNoMatch(np.Direction.INGRESS)


def test_a_hashed_prefix_no_rule_carries_is_refused() -> None:
    with pytest.raises(ValueError, match="no rendered rule carries"):
        np.PrefixTable().read("x" * 63)
    with pytest.raises(ValueError, match="only the table"):
        np.parse("x" * 63)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a policy log prefix"),
        ("AP", "not a policy log prefix"),
        ("XPI0|gnp/a", "unknown action letter"),
        ("AXI0|gnp/a", "not a policy log prefix"),
        ("APX0|gnp/a", "not a policy log prefix"),
        ("APIx|gnp/a", "is not a number"),
        ("ARI0|gnp/a", "does not fit"),
        ("API0|pro/kns.a", "does not fit"),
        ("API|security", "never an allow"),
        ("PPI|snp/shop/lock", "always a deny"),
        ("DPI|", "not a policy log prefix"),
        ("DPI", "not a policy log prefix"),
        ("ARI", "not a policy log prefix"),
        ("API0|np/allow", "needs <namespace>/<name>"),
    ],
)
def test_malformed_prefixes_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        np.parse(text)

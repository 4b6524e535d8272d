"""Felix's one-string policy hit: written and read back as Goldmane does."""

from __future__ import annotations

import pytest

from pycalico.flows import hit_strings
from pycalico.flows.record import Action, PolicyHit, PolicyKind
from tests.support.flow_records import ALLOW_WEB, DENY_TIER_END


def test_a_namespaced_rule_hit_is_written_with_its_short_kind() -> None:
    assert hit_strings.encode(ALLOW_WEB) == "0|default|np:shop/allow-web|allow|1"


def test_an_end_of_tier_hit_is_written_with_its_trigger_and_rule_minus_one() -> None:
    assert hit_strings.encode(DENY_TIER_END) == "0|default|knp:shop/deny-all|deny|-1"


def test_a_profile_hit_is_written_in_the_profile_tier_and_read_back_without_tier() -> None:
    hit = PolicyHit(PolicyKind.PROFILE, "kns.shop", "", "", Action.ALLOW, 2, 0)
    text = hit_strings.encode(hit)
    assert text == "2|__PROFILE__|pro:kns.shop|allow|0"
    assert hit_strings.decode(text) == hit


@pytest.mark.parametrize(
    "hit",
    [
        ALLOW_WEB,
        PolicyHit(PolicyKind.GLOBAL_NETWORK_POLICY, "allow-dns", "", "security", Action.PASS, 3, 7),
        PolicyHit(PolicyKind.STAGED_NETWORK_POLICY, "lock", "shop", "default", Action.DENY, 1, 0),
        PolicyHit(PolicyKind.STAGED_GLOBAL_NETWORK_POLICY, "g", "", "default", Action.DENY, 0, 2),
        PolicyHit(
            PolicyKind.STAGED_KUBERNETES_NETWORK_POLICY, "k", "shop", "default", Action.ALLOW, 0, 0
        ),
    ],
)
def test_rule_hits_read_back_unchanged(hit: PolicyHit) -> None:
    assert hit_strings.decode(hit_strings.encode(hit)) == hit


def test_an_end_of_tier_hit_reads_back_with_its_trigger_named() -> None:
    hit = hit_strings.decode("4|default|knp:shop/deny-all|deny|-1")
    assert hit.kind == PolicyKind.END_OF_TIER
    assert (hit.tier, hit.action, hit.policy_index, hit.rule_index) == (
        "default",
        Action.DENY,
        4,
        -1,
    )
    assert hit.trigger is not None
    assert (hit.trigger.kind, hit.trigger.namespace, hit.trigger.name) == (
        PolicyKind.NETWORK_POLICY,
        "shop",
        "deny-all",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0|default|np:shop/a|allow", "5 fields"),
        ("0|default|np:shop/a|drop|0", "unknown action"),
        ("x|default|np:shop/a|allow|0", "must be integers"),
        ("0||np:shop/a|allow|0", "needs a tier"),
        ("0|default|np/shop/a|allow|0", "not a policy ID"),
        ("0|default|np:shop/a|allow|-2", "only -1 means end of tier"),
    ],
)
def test_malformed_hit_strings_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hit_strings.decode(text)


def test_hits_that_have_no_string_form_are_refused() -> None:
    no_trigger = PolicyHit(PolicyKind.END_OF_TIER, "", "", "default", Action.DENY, 0, -1)
    with pytest.raises(ValueError, match="needs its trigger"):
        hit_strings.encode(no_trigger)
    unspecified = PolicyHit(
        PolicyKind.GLOBAL_NETWORK_POLICY, "a", "", "t", Action.UNSPECIFIED, 0, 0
    )
    with pytest.raises(ValueError, match="Allow, Deny or Pass"):
        hit_strings.encode(unspecified)

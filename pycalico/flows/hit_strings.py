"""The policy hit as Felix carries it in one string (PC:goldmane/proto/methods.go):
`<policy_index>|<tier>|<shortkind>:[<ns>/]<name>|<allow|deny|pass>|<rule_index>`.

Profiles are in tier `__PROFILE__` (shown as no tier). An end-of-tier hit is written with
its trigger's kind and name and rule index -1, and read back as an EndOfTier hit whose
trigger is that policy.
"""

from __future__ import annotations

from pycalico.flows.naming import SHORT_KINDS, parse_policy_id
from pycalico.flows.record import Action, PolicyHit, PolicyKind

PROFILE_TIER = "__PROFILE__"
END_OF_TIER_RULE = -1
_ACTIONS = {"allow": Action.ALLOW, "deny": Action.DENY, "pass": Action.PASS}


def encode(hit: PolicyHit) -> str:
    named = hit
    if hit.kind == PolicyKind.END_OF_TIER:
        if hit.trigger is None:
            raise ValueError("an EndOfTier hit needs its trigger")
        named = hit.trigger
    if named.kind not in SHORT_KINDS:
        raise ValueError(f"a {named.kind.value} hit has no string form")
    if hit.action not in (Action.ALLOW, Action.DENY, Action.PASS):
        raise ValueError(f"a hit's action must be Allow, Deny or Pass, not {hit.action.value}")
    ident = f"{named.namespace}/{named.name}" if named.namespace else named.name
    tier = PROFILE_TIER if named.kind == PolicyKind.PROFILE else hit.tier
    rule = END_OF_TIER_RULE if hit.kind == PolicyKind.END_OF_TIER else hit.rule_index
    return (
        f"{hit.policy_index}|{tier}|{SHORT_KINDS[named.kind]}:{ident}|"
        f"{hit.action.value.lower()}|{rule}"
    )


def decode(text: str) -> PolicyHit:
    parts = text.split("|")
    if len(parts) != 5:
        raise ValueError(f"'{text}' is not a policy hit (5 fields separated by '|')")
    index, tier, name_part, action_text, rule_text = parts
    action = _ACTIONS.get(action_text.lower())
    if action is None:
        raise ValueError(f"'{text}': unknown action '{action_text}'")
    try:
        policy_index, rule_index = int(index), int(rule_text)
    except ValueError:
        raise ValueError(f"'{text}': policy and rule index must be integers") from None
    if not tier:
        raise ValueError(f"'{text}': a hit needs a tier")
    kind, namespace, name = parse_policy_id(name_part, ":")
    tier = "" if tier == PROFILE_TIER else tier
    if rule_index == END_OF_TIER_RULE:
        trigger = PolicyHit(kind, name, namespace, tier, Action.UNSPECIFIED, 0, 0)
        return PolicyHit(
            PolicyKind.END_OF_TIER, "", "", tier, action, policy_index, rule_index, trigger
        )
    if rule_index < 0:
        raise ValueError(f"'{text}': rule index {rule_index} (only -1 means end of tier)")
    return PolicyHit(kind, name, namespace, tier, action, policy_index, rule_index)

"""A connection's enforced policy trace, from the NFLOG prefixes its first packet logged in
one direction (pure).

The kernel logs the rules a packet meets in the order it meets them: a pass in one tier,
then the allow or deny of a later one (or a tier's end, or the profiles'). Each becomes a
PolicyHit numbered by its position (`policy_index`); the tier of a policy comes from the
policies Felix rendered, the trigger of a tier's end is the first policy of that tier the
endpoint meets, as in Calico. The flow's action is the last hit's.
"""

from __future__ import annotations

from collections.abc import Iterable

from pycalico.felix.collector.flow_view import FlowView
from pycalico.flows.nflog_prefix import (
    Prefix,
    ProfileNoMatch,
    RuleLog,
    StagedNoMatch,
    TierEnd,
)
from pycalico.flows.record import Action, PolicyHit, PolicyKind
from pycalico.policy.model import Endpoint

END_OF_TIER_RULE = -1


def hits(
    prefixes: Iterable[Prefix], view: FlowView, ep: Endpoint | None, direction: str
) -> tuple[PolicyHit, ...]:
    """`ep`: the local endpoint whose chain logged them (None: the end of a tier has no
    trigger to name)."""
    found: list[PolicyHit] = []
    for prefix in prefixes:
        index = len(found)
        if isinstance(prefix, RuleLog):
            tier = view.tiers.get((prefix.kind, prefix.namespace, prefix.name), "")
            found.append(
                PolicyHit(
                    prefix.kind, prefix.name, prefix.namespace, tier, prefix.action, index,
                    prefix.rule_index,
                )
            )  # fmt: skip
        elif isinstance(prefix, TierEnd):
            trigger = view.trigger(ep, direction, prefix.tier) if ep is not None else None
            found.append(
                PolicyHit(
                    PolicyKind.END_OF_TIER, "", "", prefix.tier, prefix.action, index,
                    END_OF_TIER_RULE, trigger,
                )
            )  # fmt: skip
        elif isinstance(prefix, ProfileNoMatch):
            trigger = view.first_profile(ep) if ep is not None else None
            found.append(
                PolicyHit(
                    PolicyKind.END_OF_TIER, "", "", "", Action.DENY, index, END_OF_TIER_RULE,
                    trigger,
                )
            )  # fmt: skip
        elif isinstance(prefix, StagedNoMatch):
            continue  # staged policies are never in the dataplane: their verdicts are pending
    return tuple(found)


def action(trace: tuple[PolicyHit, ...]) -> Action:
    return trace[-1].action if trace else Action.UNSPECIFIED

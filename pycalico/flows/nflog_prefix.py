"""NFLOG prefixes: what a policy rule's `log group N prefix P` says about the rule (pure).

Felix's encoding (reference flows.md §5, PC:felix/rules/nflogprefix.go): three letters —
the action (`A`llow, `D`eny, `P`ass), the owner (`P`olicy, p`R`ofile), the direction
(`I`ngress, `E`gress) — then the rule's index, `|` and the policy ID
(`<shortkind>/[<ns>/]<name>`), e.g. `API0|gnp/allow-dns`. Without an index:
`DPI|<tier>` / `PPI|<tier>` end a tier (drop, or pass when the tier holds only staged
policies), `DPI|<policyID>` is a staged policy's no-match, `DRI`/`DRE` the profiles' end.

The kernel keeps 63 characters of a prefix. A longer one keeps its first and last 10
characters around a 42-character hash, so it is exactly 63 long (an unhashed prefix is at
most 62, so the length alone says which it is); a hashed prefix is read back through a
PrefixTable that knows the prefixes the rules were rendered from. The hash is pycalico's
own (sha256, URL-safe base64): the table is built from the same rules, so it need not be
Calico's.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from enum import StrEnum

from pycalico.flows.naming import PolicyRef, parse_policy_id, policy_id
from pycalico.flows.record import Action, PolicyKind

MAX_LENGTH = 63  # NFLOG's 64 bytes, the last one the terminating NUL
_KEEP = 10
_HASH_LENGTH = MAX_LENGTH - 2 * _KEEP - 1

_ACTION_LETTERS = {Action.ALLOW: "A", Action.DENY: "D", Action.PASS: "P"}
_ACTIONS = {letter: action for action, letter in _ACTION_LETTERS.items()}


class Direction(StrEnum):
    INGRESS = "I"
    EGRESS = "E"


class Owner(StrEnum):
    POLICY = "P"
    PROFILE = "R"


@dataclass(frozen=True)
class RuleLog:
    """A rule of a policy or profile acted: its action, direction, index and policy."""

    action: Action
    owner: Owner
    direction: Direction
    rule_index: int
    kind: PolicyKind
    namespace: str
    name: str


@dataclass(frozen=True)
class TierEnd:
    """No policy of the tier decided: the tier's default (Deny, or Pass when it holds only
    staged policies)."""

    action: Action
    direction: Direction
    tier: str


@dataclass(frozen=True)
class StagedNoMatch:
    """A staged policy that selected the endpoint matched none of its rules."""

    direction: Direction
    kind: PolicyKind
    namespace: str
    name: str


@dataclass(frozen=True)
class ProfileNoMatch:
    """No profile rule decided: the endpoint's profiles end in a drop."""

    direction: Direction


Prefix = RuleLog | TierEnd | StagedNoMatch | ProfileNoMatch


# The encoders return the whole prefix; `limit` (or PrefixTable.learn) makes the form the
# kernel carries.


def rule(action: Action, direction: Direction, rule_index: int, ref: PolicyRef) -> str:
    owner = Owner.PROFILE if ref.kind == PolicyKind.PROFILE else Owner.POLICY
    return f"{_ACTION_LETTERS[action]}{owner}{direction}{rule_index}|{policy_id(ref)}"


def tier_end(direction: Direction, tier: str, only_staged: bool = False) -> str:
    letter = _ACTION_LETTERS[Action.PASS if only_staged else Action.DENY]
    return f"{letter}{Owner.POLICY}{direction}|{tier}"


def staged_no_match(direction: Direction, ref: PolicyRef) -> str:
    return f"D{Owner.POLICY}{direction}|{policy_id(ref)}"


def profile_no_match(direction: Direction) -> str:
    return f"D{Owner.PROFILE}{direction}"


def is_hashed(prefix: str) -> bool:
    return len(prefix) == MAX_LENGTH


def parse(prefix: str) -> Prefix:
    """What an unhashed prefix says; ValueError for anything else (hashed ones included:
    PrefixTable reads those)."""
    if is_hashed(prefix):
        raise ValueError(f"'{prefix}' is hashed: only the table of rendered prefixes reads it")
    return _parse(prefix)


def _parse(prefix: str) -> Prefix:
    if len(prefix) < 3:
        raise ValueError(f"'{prefix}' is not a policy log prefix")
    action = _ACTIONS.get(prefix[0])
    try:
        owner, direction = Owner(prefix[1]), Direction(prefix[2])
    except ValueError:
        raise ValueError(f"'{prefix}' is not a policy log prefix") from None
    if action is None:
        raise ValueError(f"'{prefix}': unknown action letter '{prefix[0]}'")
    head, bar, tail = prefix[3:].partition("|")
    if not bar:
        if owner == Owner.PROFILE and action == Action.DENY and not head:
            return ProfileNoMatch(direction)
        raise ValueError(f"'{prefix}' is not a policy log prefix")
    if head:
        if not head.isdigit():
            raise ValueError(f"'{prefix}': rule index '{head}' is not a number")
        kind, namespace, name = parse_policy_id(tail)
        if (kind == PolicyKind.PROFILE) != (owner == Owner.PROFILE):
            raise ValueError(f"'{prefix}': owner '{owner}' does not fit a {kind.value}")
        return RuleLog(action, owner, direction, int(head), kind, namespace, name)
    if owner != Owner.POLICY or not tail:
        raise ValueError(f"'{prefix}' is not a policy log prefix")
    if "/" in tail:  # tiers have no '/', policy IDs always do
        if action != Action.DENY:
            raise ValueError(f"'{prefix}': a staged policy's no-match is always a deny")
        kind, namespace, name = parse_policy_id(tail)
        return StagedNoMatch(direction, kind, namespace, name)
    if action == Action.ALLOW:
        raise ValueError(f"'{prefix}': a tier ends in a deny or a pass, never an allow")
    return TierEnd(action, direction, tail)


class PrefixTable:
    """Reads prefixes back, hashed ones through the full prefixes they were made from."""

    def __init__(self) -> None:
        self._hashed: dict[str, Prefix] = {}

    def learn(self, full: str) -> str:
        """Remember an unlimited prefix; returns the prefix as the kernel will carry it."""
        limited = limit(full)
        if limited != full:
            self._hashed[limited] = _parse(full)
        return limited

    def read(self, prefix: str) -> Prefix:
        if is_hashed(prefix):
            found = self._hashed.get(prefix)
            if found is None:
                raise ValueError(f"'{prefix}' is a hashed prefix no rendered rule carries")
            return found
        return parse(prefix)


def limit(prefix: str) -> str:
    """The prefix as the kernel carries it: hashed down to 63 characters if longer."""
    if len(prefix) < MAX_LENGTH:
        return prefix
    digest = base64.urlsafe_b64encode(hashlib.sha256(prefix.encode()).digest()).decode()
    return prefix[:_KEEP] + digest[:_HASH_LENGTH] + "_" + prefix[-_KEEP:]

"""The NFLOG statements that let Felix's flow collector see which rule decided a connection
(pure; reference flows.md §5).

With flow logs on, every allow, deny and pass rule of a policy or profile chain logs the
packet to NFLOG group 1 (ingress policy) or 2 (egress) just before its verdict, the end of
a tier logs before its drop (or its pass, for a tier whose default action is Pass), and the
end of the profiles logs before the final drop. Only a connection's first packet reaches
these rules (an endpoint chain accepts established traffic first), so each connection is
logged once per rule it meets. The prefix says which rule (flows/nflog_prefix.py).

Untracked (doNotTrack) and preDNAT chains never log, as in Calico: they are rendered
without these statements.
"""

from __future__ import annotations

from pycalico.flows import naming
from pycalico.flows.nflog_prefix import Direction
from pycalico.flows.record import PolicyKind
from pycalico.policy.model import Policy

INGRESS_GROUP = 1
EGRESS_GROUP = 2
LOGGED_ACTIONS = frozenset({"Allow", "Deny", "Pass"})


def group(direction: str) -> int:
    return INGRESS_GROUP if direction == "ingress" else EGRESS_GROUP


def prefix_direction(direction: str) -> Direction:
    return Direction.INGRESS if direction == "ingress" else Direction.EGRESS


def policy_ref(policy: Policy) -> naming.PolicyRef:
    """How a flow's trace names an enforced policy: a Kubernetes NetworkPolicy (stored as
    `knp.default.<name>`) as kind NetworkPolicy under its own name, like Goldmane."""
    kind = "NetworkPolicy" if policy.namespace is not None else "GlobalNetworkPolicy"
    return naming.policy_ref(kind, policy.name, policy.namespace or "", policy.tier)


def profile_ref(name: str) -> naming.PolicyRef:
    return naming.PolicyRef(PolicyKind.PROFILE, "", name, "")


def statement(prefix: str, direction: str) -> str:
    """`prefix` must already be the form the kernel carries (PrefixTable.learn)."""
    return f'log prefix "{prefix}" group {group(direction)}'

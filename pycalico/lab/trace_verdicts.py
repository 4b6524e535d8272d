"""What Felix's rules did to a traced packet, read from the trace events of its table (pure).

Felix's `inet calico` table (see felix/rules/policy.py) sends a workload's traffic to its
endpoint chain: `filter-cali-fw-<iface>` for the workload's egress, `filter-cali-tw-<iface>`
for its ingress. There a policy chain (`filter-cali-po-<policy>`, `-pi-`) or a profile chain
(`filter-cali-pro-<profile>`, `-pri-`) sets the accept mark and returns (Allow), sets the
pass mark (Pass), or drops (Deny); the endpoint chain drops at the end of a tier or when no
profile accepted. The trace names each rule that matched, with its handle; `rule_index`
turns a policy chain's handle into the index of the policy rule it came from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pycalico.lab.trace_events import Event, Hook

ACCEPT_MARK = "| 0x00010000"
PASS_MARK = "| 0x00020000"
_ENDPOINT = {"filter-cali-fw-": "egress", "filter-cali-tw-": "ingress"}
_RULES = {
    "filter-cali-po-": ("egress", "policy"),
    "filter-cali-pi-": ("ingress", "policy"),
    "filter-cali-pro-": ("egress", "profile"),
    "filter-cali-pri-": ("ingress", "profile"),
}

RuleIndex = Callable[[str, int | None], int | None]


@dataclass
class Decision:
    """One endpoint's verdict on the packet, in one direction."""

    direction: str  # egress, ingress, or "to host" (a workload's traffic to its own node)
    interface: str  # the workload's cali interface
    allowed: bool
    by: str  # "policy <id>", "profile <name>", or what dropped it
    rule: int | None = None  # index among the policy's (profile's) rules for the direction
    chain: str = ""
    handle: int | None = None
    rule_text: str = ""
    notes: list[str] = field(default_factory=list)  # Log and Pass rules met on the way

    @property
    def name(self) -> str:
        """`<policy>[rule]`, as the probe prints what dropped a packet."""
        what = self.by.split(" ", 1)[1] if self.by.startswith(("policy ", "profile ")) else self.by
        return f"{what}[{self.rule}]" if self.rule is not None else what


def owner(chain: str) -> tuple[str, str, str] | None:
    """(direction, "policy" or "profile", its id) of a policy or profile chain."""
    for prefix, (direction, kind) in _RULES.items():
        if chain.startswith(prefix):
            return direction, kind, chain[len(prefix) :]
    return None


def endpoint_of(chain: str) -> tuple[str, str] | None:
    """(direction, interface) of an endpoint chain."""
    for prefix, direction in _ENDPOINT.items():
        if chain.startswith(prefix):
            return direction, chain[len(prefix) :]
    return None


def decisions(hook_list: Sequence[Hook], rule_index: RuleIndex) -> list[Decision]:
    """Every endpoint decision in Felix's table, in the order the packet met them."""
    found: list[Decision] = []
    for hook in hook_list:
        if hook.table != "calico" or not hook.chain.startswith("filter-"):
            continue
        pending: Decision | None = None  # a policy's or profile's Allow, before the return
        notes: list[str] = []
        interface = ""  # of the endpoint chain the policy chains were reached from
        for event in hook.events:
            if event.kind != "rule":
                continue
            endpoint = endpoint_of(event.chain)
            if endpoint is not None:
                direction, interface = endpoint
                made = _endpoint_rule(event, direction, interface, pending, notes)
                if made is not None:
                    found.append(made)
                    pending, notes = None, []
                continue
            rules_of = owner(event.chain)
            if rules_of is not None:
                direction, kind, ident = rules_of
                index = rule_index(event.chain, event.handle)
                where = f"{kind} {ident}" + (f" rule {index}" if index is not None else "")
                decision = Decision(
                    direction,
                    interface,
                    True,
                    f"{kind} {ident}",
                    index,
                    event.chain,
                    event.handle,
                    event.text,
                )
                if event.verdict == "drop":
                    decision.allowed = False
                    decision.notes = notes
                    found.append(decision)
                    notes = []
                elif ACCEPT_MARK in event.text and event.verdict == "return":
                    pending = decision
                elif PASS_MARK in event.text and event.verdict == "return":
                    notes.append(f"passed to the next tier by {where}")
                elif "log prefix" in event.text:
                    notes.append(f"logged by {where}")
                continue
            if event.verdict == "drop" and event.comment == "Unknown interface":
                found.append(
                    Decision("?", "", False, "no endpoint chain: Felix has not programmed it")
                )
            elif event.comment == "Configured DefaultEndpointToHostAction":
                allowed = event.verdict != "drop"
                found.append(
                    Decision(
                        "to host",
                        "",
                        allowed,
                        "defaultEndpointToHostAction",
                        chain=event.chain,
                        handle=event.handle,
                        rule_text=event.text,
                    )
                )
    return found


def _endpoint_rule(
    event: Event, direction: str, interface: str, pending: Decision | None, notes: list[str]
) -> Decision | None:
    """The decision an endpoint chain's rule makes, if this rule makes one."""

    def made(allowed: bool, by: str) -> Decision:
        return Decision(
            direction, interface, allowed, by, None, event.chain, event.handle, event.text, notes
        )

    if event.verdict == "accept" and "ct state established" in event.text:
        return made(True, "an established connection (conntrack)")
    if event.verdict == "return" and event.comment.startswith("Return if"):
        if pending is None:
            return made(True, event.comment)
        pending.interface, pending.notes = interface, notes
        return pending
    if event.verdict != "drop":
        return None
    comment = event.comment
    if comment.startswith("End of tier"):
        tier = comment.split()[3].rstrip(".")
        return made(False, f"end of tier {tier}: no policy allowed it")
    if comment == "Drop if no profiles matched":
        return made(False, "no profile allowed it")
    if "ct state invalid" in event.text:
        return made(False, "conntrack state invalid")
    return made(False, comment or event.text)

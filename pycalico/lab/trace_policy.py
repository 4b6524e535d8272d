"""Naming the policy rule behind a traced nftables rule, and what `calicoctl policy explain`
says about the same packet (so the trace can say where the two disagree).

A policy rule becomes one nft rule per address family and port alternative it can match
(felix/rules/policy.py `rule_lines`), in order, so a rule's position in its chain (found
from its handle in the kernel's listing) tells which policy rule it came from.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Sequence

from pycalico.felix.rules.policy import rule_lines
from pycalico.lab.state import LabState
from pycalico.lab.trace_verdicts import Decision
from pycalico.policy import calc, verdict
from pycalico.policy.model import Endpoint, Rule

PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1}


def index_of(position: int, rules: Sequence[Rule], families: tuple[int, ...]) -> int | None:
    """Which of `rules` the nft rule at `position` (0-based) of their chain came from (pure)."""
    seen = 0
    for index, rule in enumerate(rules):
        seen += len(rule_lines(rule, families))
        if position < seen:
            return index
    return None


def load_inputs(state: LabState) -> calc.Inputs:
    """The policy calculation's inputs, read from the lab's datastore as Felix reads them."""
    from pycalico.api.registry import resolve
    from pycalico.datastore.resources import ResourceClient
    from pycalico.lab import kube_store
    from pycalico.policy import inputs as policy_inputs

    def read(client: ResourceClient) -> calc.Inputs:
        listed = {kind: client.list(resolve(kind))[0] for kind in policy_inputs.KINDS}
        return policy_inputs.Reader().read(listed, client.list(resolve("WorkloadEndpoint"))[0])

    return kube_store.session(state, read)


class RuleIndex:
    """chain + handle -> policy rule index, for the chains of Felix's table in one namespace."""

    def __init__(self, netns: str, inputs: calc.Inputs) -> None:
        self.netns = netns
        self.policies = {p.id: p for p in inputs.policies}
        self.profiles = dict(inputs.profiles)
        self._handles: dict[str, list[int]] = {}
        self._families: tuple[int, ...] | None = None

    def _listing(self, *what: str) -> list[dict[str, object]]:
        out = subprocess.run(
            ["nsenter", f"--net=/run/netns/{self.netns}", "nft", "-a", "-j", "list", *what],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            return []
        return list(json.loads(out.stdout).get("nftables", []))

    def families(self) -> tuple[int, ...]:
        """IPv6 rules are rendered once Felix has IPv6 sets (see felix/rules/policy.py)."""
        if self._families is None:
            names = [
                str(item["set"]["name"])  # type: ignore[index]
                for item in self._listing("sets", "table", "inet", "calico")
                if "set" in item
            ]
            self._families = (4, 6) if any(n.startswith("cali60") for n in names) else (4,)
        return self._families

    def __call__(self, chain: str, handle: int | None) -> int | None:
        from pycalico.lab.trace_verdicts import owner

        found = owner(chain)
        if found is None or handle is None:
            return None
        direction, kind, ident = found
        holder = self.policies.get(ident) if kind == "policy" else self.profiles.get(ident)
        if holder is None:
            return None
        rules = getattr(holder, direction) or ()
        if chain not in self._handles:
            self._handles[chain] = [
                int(item["rule"]["handle"])  # type: ignore[index]
                for item in self._listing("chain", "inet", "calico", chain)
                if "rule" in item
            ]
        handles = self._handles[chain]
        if handle not in handles:
            return None
        return index_of(handles.index(handle), rules, self.families())


def explain(
    inputs: calc.Inputs, src: str, dst: str, protocol: str, dport: int
) -> list[verdict.Step]:
    """`calicoctl policy explain` for the packet."""
    src_ip, dst_ip = ipaddress.ip_address(src), ipaddress.ip_address(dst)

    def owner_of(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Endpoint | None:
        return next(
            (ep for ep in inputs.endpoints if any(address in n for n in ep.addresses)), None
        )

    number = PROTOCOLS[protocol]
    packet = verdict.Packet(
        src_ip,
        dst_ip,
        number,
        dport if protocol != "icmp" else None,
        icmp_type=8 if protocol == "icmp" else None,
    )
    return verdict.explain(inputs, owner_of(src_ip), owner_of(dst_ip), packet)


def disagreements(decisions: Sequence[Decision], steps: Sequence[verdict.Step]) -> list[str]:
    """Where `calicoctl policy explain` (`steps`) says other than what the kernel did to the
    packet (`decisions`, from its trace): one sentence each (pure). A packet let through as
    part of an established connection is not judged by policy, so it is not compared."""
    seen = {d.direction: d for d in decisions if d.direction in ("egress", "ingress")}
    if any(d.by.startswith("an established") for d in seen.values()):
        return []
    out = []
    for step in steps:
        decision = seen.get(step.direction)
        if decision is None:
            continue
        if (step.allowed, step.by, step.rule) == (decision.allowed, decision.by, decision.rule):
            continue
        said = f"{'ALLOW' if step.allowed else 'DENY'} by {step.by}"
        said += f" rule {step.rule}" if step.rule is not None else ""
        saw = f"{'allowed' if decision.allowed else 'denied'} it by {decision.by}"
        saw += f" rule {decision.rule}" if decision.rule is not None else ""
        out.append(
            f"calicoctl policy explain says {step.direction} {said}, but the kernel {saw}: "
            "the trace is what happened"
        )
    return out

"""Render the policy calculation as nftables objects for pycalico's `inet calico` table (pure).

A `PolicyRenderer` lives as long as Felix and remembers what it rendered, so an apply
after a small change re-renders only what changed; a new renderer starts cold.

Felix's nftables layout (reference policy-dataplane.md §2-§7), in one `inet` table:
* base chains `filter-FORWARD` and `filter-INPUT` send traffic from a workload interface
  through `filter-cali-from-wl-dispatch` and traffic to one through
  `filter-cali-to-wl-dispatch`; each dispatches by interface name through a verdict map to
  the endpoint's chain (`filter-cali-fw-<iface>` egress, `filter-cali-tw-<iface>` ingress)
  and drops anything else: an interface Felix has not programmed yet gets no traffic;
* an endpoint chain accepts established flows, drops invalid ones, clears the accept and
  pass marks, walks its tiers (`filter-cali-pi-<policy>`/`-po-`), then its profiles
  (`filter-cali-pri-<profile>`/`-pro-`), and drops what nothing accepted;
* Allow sets the accept mark and returns, Pass sets the pass mark and returns, Deny drops,
  Log logs and carries on;
* selectors become interval sets of addresses (`cali40s-<id>`, `cali60s-<id>` for IPv6)
  and named ports sets of address . protocol . port (`cali40n-<id>`).
Traffic from the host to its own pods is not subject to their ingress policy (Calico's
`cali-OUTPUT` returns for it), and traffic from a pod to its host is decided by
`defaultEndpointToHostAction` after the pod's egress policy.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pycalico.felix.rules import nflog
from pycalico.felix.rules.table import NftSet, Ruleset
from pycalico.flows import nflog_prefix
from pycalico.flows.naming import PolicyRef
from pycalico.flows.record import Action
from pycalico.policy.calc import EndpointPlan, NamedPortKey, Network, PolicyState, TierPlan
from pycalico.policy.identity_memo import IdentityMemo
from pycalico.policy.model import Entity, EntitySelector, Ports, Rule

ACCEPT_MARK = 0x10000
PASS_MARK = 0x20000
FROM_WL_MAP = "cali-from-wl"
TO_WL_MAP = "cali-to-wl"
FROM_DISPATCH = "filter-cali-from-wl-dispatch"
TO_DISPATCH = "filter-cali-to-wl-dispatch"
WL_TO_HOST = "filter-cali-wl-to-host"
BASE_CHAINS = {
    "filter-FORWARD": "type filter hook forward priority filter; policy accept;",
    "filter-INPUT": "type filter hook input priority filter; policy accept;",
}
HOST_ACTIONS = {"Drop": "drop", "Accept": "accept", "Return": "return"}
# The comment of a counted rule: this, then the rule's index in its policy or profile.
RULE_COMMENT = "rule "
_ACCEPTED = f"meta mark & {ACCEPT_MARK:#x} == {ACCEPT_MARK:#x}"
_NOT_PASSED = f"meta mark & {PASS_MARK:#x} == 0"
_CLEAR_PASS = f"meta mark set meta mark & {~PASS_MARK & 0xFFFFFFFF:#x}"
_POLICY_ACCEPTED = f'{_ACCEPTED} return comment "Return if policy accepted"'
_PROFILE_ACCEPTED = f'{_ACCEPTED} return comment "Return if profile accepted"'
_UNTRACKED = f"{_ACCEPTED} notrack"
_CLEAR_MARKS = f"meta mark set meta mark & {~(ACCEPT_MARK | PASS_MARK) & 0xFFFFFFFF:#x}"


def _digest(text: str) -> str:
    raw = hashlib.sha224(text.encode()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()[:22]


def selector_set(sel: EntitySelector, version: int) -> str:
    return f"cali{version}0s-{_digest('s:' + sel.text())}"


def named_port_set(key: NamedPortKey, version: int) -> str:
    where = key.selector.text() if key.selector else "all()"
    return f"cali{version}0n-{_digest(f'n:{where}/{key.protocol}/{key.name}')}"


def policy_chain(policy_id: str, direction: str, layer: str = "filter") -> str:
    """A policy's chain in one of the table's layers (filter; mangle and raw for host
    endpoints' pre-DNAT, DNAT-ed egress and untracked stages)."""
    return f"{layer}-cali-p{'i' if direction == 'ingress' else 'o'}-{policy_id}"


def profile_chain(name: str, direction: str, layer: str = "filter") -> str:
    return f"{layer}-cali-pr{'i' if direction == 'ingress' else 'o'}-{name}"


def endpoint_chain(interface: str, direction: str) -> str:
    # tw: towards the workload (its ingress); fw: from the workload (its egress).
    return f"filter-cali-{'tw' if direction == 'ingress' else 'fw'}-{interface}"


def _family(version: int) -> str:
    return "ip" if version == 4 else "ip6"


def _list(items: Iterable[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def _nets(nets: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network], version: int) -> list[str]:
    """The networks of one family merged as `ipaddress.collapse_addresses` merges them (the
    fewest covering the same addresses, in order), as text. Done on integers: a selector's
    set, hundreds of pod addresses, is merged again on every change to its members, and
    collapse_addresses took most of a label change's rendering."""
    bits = 32 if version == 4 else 128
    ranges = sorted(
        (int(n.network_address), int(n.network_address) | ((1 << (bits - n.prefixlen)) - 1))
        for n in nets
        if n.version == version
    )
    merged: list[list[int]] = []
    for low, high in ranges:
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    address = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    found = []
    for low, high in merged:
        while low <= high:
            # The largest block aligned at `low` that stays within the range.
            size = low & -low if low else 1 << bits
            while size > high - low + 1:
                size >>= 1
            # Interned: an address is in the sets of every selector it matches (~0.2 KB less
            # per endpoint with bench-scale's 1000 policies).
            found.append(sys.intern(f"{address(low)}/{bits + 1 - size.bit_length()}"))
            low += size
    return found


def _net_set(
    nets: frozenset[ipaddress.IPv4Network | ipaddress.IPv6Network], version: int
) -> NftSet:
    """A selector's members as an interval set."""
    return NftSet(f"type ipv{version}_addr; flags interval;", frozenset(_nets(nets, version)))


def _port_ranges(ports: Ports) -> str:
    return _list(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in ports.ranges)


def _entity_matches(
    entity: Entity, side: str, rule_protocol: int, version: int, with_sets: bool
) -> list[list[str]] | None:
    """The alternatives (ORed) of ANDed conditions for one side; None if it cannot match.

    Without sets for this family (no endpoint has such an address) every set would be
    empty: a selector or named port cannot match, and their negations always do.
    """
    fam = _family(version)
    addr = f"{fam} {side}addr"
    port = f"th {side}port"
    base: list[str] = []
    if entity.nets:
        nets = _nets(entity.nets, version)
        if not nets:
            return None
        base.append(f"{addr} {_list(nets)}")
    not_nets = _nets(entity.not_nets, version)
    if not_nets:
        base.append(f"{addr} != {_list(not_nets)}")
    if entity.selector is not None:
        if not with_sets:
            return None
        base.append(f"{addr} @{selector_set(entity.selector, version)}")
    if entity.not_selector is not None and with_sets:
        base.append(f"{addr} != @{selector_set(entity.not_selector, version)}")
    if entity.not_ports.ranges:
        base.append(f"{port} != {_port_ranges(entity.not_ports)}")
    for name in entity.not_ports.names if with_sets else ():
        named = named_port_set(NamedPortKey(entity.selector, rule_protocol, name), version)
        base.append(f"{addr} . meta l4proto . {port} != @{named}")
    if not entity.ports:
        return [base]
    alternatives = []
    if entity.ports.ranges:
        alternatives.append([*base, f"{port} {_port_ranges(entity.ports)}"])
    for name in entity.ports.names if with_sets else ():
        named = named_port_set(NamedPortKey(entity.selector, rule_protocol, name), version)
        alternatives.append([*base, f"{addr} . meta l4proto . {port} @{named}"])
    return alternatives or None


def _icmp(rule: Rule, version: int) -> list[str] | None:
    keyword = "icmp" if version == 4 else "icmpv6"
    out = []
    for icmp, negate in ((rule.icmp, False), (rule.not_icmp, True)):
        if icmp is None:
            continue
        if icmp.code is None:
            out.append(f"{keyword} type {'!= ' if negate else ''}{icmp.type}")
        elif negate:
            out.append(f"{keyword} type . {keyword} code != {{ {icmp.type} . {icmp.code} }}")
        else:
            out.append(f"{keyword} type {icmp.type} {keyword} code {icmp.code}")
    return out


def _verdict(action: str) -> str:
    return {
        "Allow": f"meta mark set meta mark | {ACCEPT_MARK:#x} return",
        "Pass": f"meta mark set meta mark | {PASS_MARK:#x} return",
        "Deny": "drop",
        "Log": 'log prefix "calico-packet: "',
    }[action]


def counted(
    lines: tuple[str, ...], action: str, index: int, log: str = "", counter: bool = True
) -> tuple[str, ...]:
    """A policy or profile rule's lines with a counter before the verdict and the rule's
    index as the comment (`rule 3`), so that its packets and bytes can be read back per
    rule (Calico #6998; felix/metrics.py reads them, at most once per scrape). `log`: an
    NFLOG statement for flow logs, just before the verdict (nflog.py)."""
    verdict = _verdict(action)
    before = ("counter " if counter else "") + (f"{log} " if log else "")
    after = f' comment "{RULE_COMMENT}{index}"' if counter else ""
    return tuple(f"{line[: len(line) - len(verdict)]}{before}{verdict}{after}" for line in lines)


def rule_lines(rule: Rule, families: tuple[int, ...] = (4, 6)) -> tuple[str, ...]:
    """One rule as nft rules: one per address family and port alternative it can match.

    `families`: those that have selector sets (see `_entity_matches`).
    """
    lines = []
    for version in (4, 6):
        if rule.ip_version not in (None, version):
            continue
        if rule.protocol in ((58,) if version == 4 else (1,)):
            continue  # ICMPv6 never in IPv4, ICMP never in IPv6
        head = [f"meta nfproto ipv{version}"]
        if rule.protocol is not None:
            head.append(f"meta l4proto {rule.protocol}")
        if rule.not_protocol is not None:
            head.append(f"meta l4proto != {rule.not_protocol}")
        icmp = _icmp(rule, version)
        if icmp is None:
            continue
        head += icmp
        protocol = rule.protocol or 6
        with_sets = version in families
        sources = _entity_matches(rule.source, "s", protocol, version, with_sets)
        dests = _entity_matches(rule.destination, "d", protocol, version, with_sets)
        if sources is None or dests is None:
            continue
        for src in sources:
            for dst in dests:
                lines.append(" ".join([*head, *src, *dst, _verdict(rule.action)]))
    return tuple(lines)


def tier_lines(
    tier: TierPlan,
    direction: str,
    layer: str = "filter",
    untracked: bool = False,
    tier_end_log: str = "",
) -> list[str]:
    """One tier of an endpoint chain. `untracked`: in raw, where an allowed packet is also
    taken out of connection tracking (Calico maps Allow to NOTRACK and allow there).
    `tier_end_log`: with flow logs, the NFLOG statement of the tier's end (nflog.py). A
    tier without policies holds only staged ones (calc/staged_tiers.py): its end alone.

    Every line is interned: endpoints selected by the same policies hold the same lines,
    and one copy of each per endpoint was most of Felix's memory per endpoint (bench/scale.py,
    1000 policies: ~5 MB per 1000 endpoints)."""
    if not tier.policies:
        if not tier_end_log:
            return []
        return [sys.intern(f'{tier_end_log} comment "End of tier {tier.tier}. Pass"')]
    lines = [sys.intern(f'{_CLEAR_PASS} comment "Start of tier {tier.tier}"')]
    for policy_id in tier.policies:
        lines.append(sys.intern(f"{_NOT_PASSED} jump {policy_chain(policy_id, direction, layer)}"))
        if untracked:
            lines.append(_UNTRACKED)
        lines.append(_POLICY_ACCEPTED)
    if tier.default_action == "Deny":
        end = f"End of tier {tier.tier}. Drop if no policies passed packet"
        log = f"{tier_end_log} " if tier_end_log else ""
        lines.append(sys.intern(f'{_NOT_PASSED} {log}drop comment "{end}"'))
    elif tier_end_log:
        lines.append(
            sys.intern(f'{_NOT_PASSED} {tier_end_log} comment "End of tier {tier.tier}. Pass"')
        )
    return lines


def _endpoint_lines(
    tiers: tuple[TierPlan, ...],
    direction: str,
    profiles: tuple[str, ...],
    learn: Callable[[str], str] | None = None,
) -> tuple[str, ...]:
    """An endpoint's chain for one direction, from its tiers for that direction;
    `profiles`: those of its profiles that exist. `learn`: with flow logs, makes a full
    NFLOG prefix the one the kernel carries (PrefixTable.learn). Nothing in it names the
    endpoint: endpoints with the same tiers and profiles share it."""

    def log(full: str) -> str:
        return nflog.statement(learn(full), direction) if learn is not None else ""

    way = nflog.prefix_direction(direction)
    lines = [
        "ct state established,related accept",
        "ct state invalid drop",
        _CLEAR_MARKS,
    ]
    if direction == "egress":
        lines += [
            'udp dport 4789 drop comment "Drop VXLAN encapped packets originating in workloads"',
            'meta l4proto 4 drop comment "Drop IPinIP encapped packets originating in workloads"',
        ]
    for tier in tiers:
        passes = tier.default_action == "Pass"
        end = log(nflog_prefix.tier_end(way, tier.tier, only_staged=passes))
        lines += tier_lines(tier, direction, tier_end_log=end)
    for name in profiles:
        lines.append(sys.intern(f"jump {profile_chain(name, direction)}"))
        lines.append(_PROFILE_ACCEPTED)
    end = log(nflog_prefix.profile_no_match(way))
    last = f'{end + " " if end else ""}drop comment "Drop if no profiles matched"'
    lines.append(sys.intern(last))
    return tuple(lines)


def _dispatch(interface: str, direction: str) -> str:
    """The verdict map element sending `interface`'s traffic to its chain."""
    return f'"{interface}" : goto {endpoint_chain(interface, direction)}'


def _named_port_set(entries: frozenset[tuple[Network, int, int]], version: int) -> NftSet:
    return NftSet(
        f"type ipv{version}_addr . inet_proto . inet_service;",
        frozenset(
            sys.intern(f"{net.network_address} . {proto} . {port}")
            for net, proto, port in entries
            if net.version == version
        ),
    )


def families(state: PolicyState) -> tuple[int, ...]:
    """IPv4 always; IPv6 sets only once some endpoint or network set has an IPv6 address:
    `nft -f` reads every set of the table back before each change, so empty ones cost."""
    return (4, 6) if state.ipv6 else (4,)


@dataclass(frozen=True)
class _EndpointChains:
    """The endpoints' chains and dispatch maps of the last rendering, with what they were
    made from: the plans by interface, the profiles that existed and the flow logs switch."""

    plans: dict[str, EndpointPlan]
    known_profiles: frozenset[str]
    flow_logs: bool
    chains: dict[str, tuple[str, ...]]
    maps: dict[str, NftSet]


class PolicyRenderer:
    """Renders policy states, remembering results by the identity of what they came from:
    the calculation hands back the same plan, rules tuple or members object for whatever
    did not change. Each memo forgets everything at its limit, so churn cannot grow it."""

    MEMO_LIMIT = 50_000

    def __init__(self, counters: bool = True) -> None:
        """`counters`: a packet and byte counter on every policy and profile rule."""
        self.counters = counters
        self._names: dict[tuple[Any, int], str] = {}
        self._lines: dict[tuple[Rule, tuple[int, ...]], tuple[str, ...]] = {}
        self._chains: dict[tuple[int, ...], IdentityMemo[tuple[Rule, ...], tuple[str, ...]]] = {
            families: IdentityMemo(self.MEMO_LIMIT) for families in ((4,), (4, 6))
        }
        # Endpoint chain lines by what they are made from (the tiers of one direction, the
        # profiles that exist, the flow logs switch), not by the plan, which names its
        # interface: endpoints with the same policies share one tuple.
        self._endpoint_lines: dict[
            tuple[tuple[TierPlan, ...], str, tuple[str, ...], bool], tuple[str, ...]
        ] = {}
        self._dispatch: dict[tuple[str, str], str] = {}
        # The last rendering of each set by name, with the members it came from. Only the
        # latest per name is kept, so memory follows the live sets, not their history.
        self._sets: dict[str, tuple[frozenset[Any], NftSet]] = {}
        # With flow logs: the logged chain of each policy or profile and direction, with
        # the rules it was made from; and every NFLOG prefix rendered, for the collector
        # to read the hashed ones back.
        self._logged: dict[tuple[PolicyRef, str, tuple[int, ...]], tuple[Any, tuple[str, ...]]]
        self._logged = {}
        self.prefixes = nflog_prefix.PrefixTable()
        self._last_endpoints: _EndpointChains | None = None
        # Endpoints whose chains the last rendering looked up again (the rest were copied
        # from the one before): what a change cost, whatever the number of endpoints.
        self.rerendered = 0

    def _bounded(self, memo: dict[Any, Any]) -> dict[Any, Any]:
        if len(memo) >= self.MEMO_LIMIT:
            memo.clear()
        return memo

    def _selector_set(self, sel: EntitySelector, version: int) -> str:
        found = self._names.get((sel, version))
        if found is None:
            found = self._bounded(self._names)[sel, version] = selector_set(sel, version)
        return found

    def _named_port_set(self, key: NamedPortKey, version: int) -> str:
        found = self._names.get((key, version))
        if found is None:
            found = self._bounded(self._names)[key, version] = named_port_set(key, version)
        return found

    def _rule_lines(self, rule: Rule, families: tuple[int, ...]) -> tuple[str, ...]:
        found = self._lines.get((rule, families))
        if found is None:
            found = self._bounded(self._lines)[rule, families] = rule_lines(rule, families)
        return found

    def chain_lines(self, rules: tuple[Rule, ...], families: tuple[int, ...]) -> tuple[str, ...]:
        """A policy's or profile's rules for one direction, as the lines of its chain (each
        counted and commented with its rule's index: see `counted`)."""
        if not self.counters:
            return self._chains[families].get(
                rules, lambda rs: tuple(line for r in rs for line in self._rule_lines(r, families))
            )
        return self._chains[families].get(
            rules,
            lambda rs: tuple(
                line
                for index, r in enumerate(rs)
                for line in counted(self._rule_lines(r, families), r.action, index)
            ),
        )

    def logged_chain_lines(
        self, rules: tuple[Rule, ...], families: tuple[int, ...], ref: PolicyRef, direction: str
    ) -> tuple[str, ...]:
        """`chain_lines` with flow logs' NFLOG statement before every allow, deny and pass
        verdict, its prefix naming `ref`'s rule (nflog.py)."""
        key = (ref, direction, families)
        found = self._logged.get(key)
        if found is not None and found[0] is rules:
            return found[1]
        way = nflog.prefix_direction(direction)
        lines = []
        for index, r in enumerate(rules):
            log = ""
            if r.action in nflog.LOGGED_ACTIONS:
                full = nflog_prefix.rule(Action(r.action), way, index, ref)
                log = nflog.statement(self.prefixes.learn(full), direction)
            lines += counted(self._rule_lines(r, families), r.action, index, log, self.counters)
        made = tuple(lines)
        self._bounded(self._logged)[key] = (rules, made)
        return made

    def _endpoint_chain_lines(
        self,
        plan: EndpointPlan,
        direction: str,
        known_profiles: frozenset[str],
        flow_logs: bool = False,
    ) -> tuple[str, ...]:
        profiles = tuple(name for name in plan.profiles if name in known_profiles)
        tiers = plan.ingress if direction == "ingress" else plan.egress
        key = (tiers, direction, profiles, flow_logs)
        found = self._endpoint_lines.get(key)
        if found is None:
            learn = self.prefixes.learn if flow_logs else None
            lines = _endpoint_lines(tiers, direction, profiles, learn)
            found = self._bounded(self._endpoint_lines)[key] = lines
        return found

    def _endpoint_chains(
        self, plans: dict[str, EndpointPlan], known: frozenset[str], flow_logs: bool
    ) -> _EndpointChains:
        """The chains of every endpoint and the dispatch maps to them. While the same
        interfaces come in the same order, with the same profiles and flow logs switch, the
        last rendering is copied and only the endpoints whose plan is another object are
        rendered again (a label change: one endpoint, or none)."""
        last = self._last_endpoints
        if (
            last is not None
            and last.known_profiles == known
            and last.flow_logs == flow_logs
            and list(last.plans) == list(plans)
        ):
            changed = [i for i, plan in plans.items() if last.plans[i] is not plan]
            chains, maps = dict(last.chains), last.maps
        else:
            changed, chains = list(plans), {}
            maps = {
                name: NftSet(
                    "type ifname : verdict;",
                    frozenset(self._dispatch_element(i, direction) for i in plans),
                )
                for name, direction in ((FROM_WL_MAP, "egress"), (TO_WL_MAP, "ingress"))
            }
        for interface in changed:
            for direction in ("egress", "ingress"):
                chains[endpoint_chain(interface, direction)] = self._endpoint_chain_lines(
                    plans[interface], direction, known, flow_logs
                )
        self.rerendered = len(changed)
        self._last_endpoints = _EndpointChains(dict(plans), known, flow_logs, chains, maps)
        return self._last_endpoints

    def _dispatch_element(self, interface: str, direction: str) -> str:
        found = self._dispatch.get((interface, direction))
        if found is None:
            found = self._bounded(self._dispatch)[interface, direction] = _dispatch(
                interface, direction
            )
        return found

    def _set_once(self, name: str, members: frozenset[Any], make: Callable[[], NftSet]) -> NftSet:
        found = self._sets.get(name)
        if found is not None and (found[0] is members or found[0] == members):
            return found[1]
        made = make()
        self._sets[name] = (members, made)
        return made

    def render(
        self, state: PolicyState, endpoint_to_host: str = "Drop", flow_logs: bool = False
    ) -> Ruleset:
        """`flow_logs`: with the NFLOG rules of flow logs (nflog.py), which exist only
        while flow logs are enabled."""
        out = Ruleset(base_chains=dict(BASE_CHAINS))
        versions = families(state)
        for policy in state.policies.values():
            if policy.host_only:
                continue  # its chains live in the raw or mangle layer (host_endpoints)
            ref = nflog.policy_ref(policy) if flow_logs else None
            for direction in ("ingress", "egress"):
                rules = getattr(policy, direction)
                if rules is not None:
                    chain = policy_chain(policy.id, direction)
                    out.chains[chain] = (
                        self.logged_chain_lines(rules, versions, ref, direction)
                        if ref is not None
                        else self.chain_lines(rules, versions)
                    )
        for profile in state.profiles.values():
            for direction in ("ingress", "egress"):
                chain = profile_chain(profile.name, direction)
                rules = getattr(profile, direction)
                out.chains[chain] = (
                    self.logged_chain_lines(
                        rules, versions, nflog.profile_ref(profile.name), direction
                    )
                    if flow_logs
                    else self.chain_lines(rules, versions)
                )
        endpoints = self._endpoint_chains(state.endpoints, frozenset(state.profiles), flow_logs)
        out.chains.update(endpoints.chains)
        out.maps.update(endpoints.maps)
        out.chains[FROM_DISPATCH] = (
            f"iifname vmap @{FROM_WL_MAP}",
            'drop comment "Unknown interface"',
        )
        out.chains[TO_DISPATCH] = (f"oifname vmap @{TO_WL_MAP}", 'drop comment "Unknown interface"')
        host_action = HOST_ACTIONS.get(endpoint_to_host, "drop")
        out.chains[WL_TO_HOST] = (
            # Neighbour discovery and MLD with the host (the pod's IPv6 gateway) always work.
            "icmpv6 type { 130, 131, 132, 133, 135, 136 } accept",
            f"jump {FROM_DISPATCH}",
            f'{host_action} comment "Configured DefaultEndpointToHostAction"',
        )
        out.chains["filter-FORWARD"] = (
            f'iifname "cali*" jump {FROM_DISPATCH}',
            f'oifname "cali*" jump {TO_DISPATCH}',
        )
        out.chains["filter-INPUT"] = (f'iifname "cali*" goto {WL_TO_HOST}',)
        for sel, nets in state.selector_sets.items():
            for version in versions:
                name = self._selector_set(sel, version)
                out.sets[name] = self._set_once(
                    name, nets, lambda n=nets, v=version: _net_set(n, v)
                )
        for key, entries in state.named_ports.items():
            for version in versions:
                name = self._named_port_set(key, version)
                out.sets[name] = self._set_once(
                    name, entries, lambda e=entries, v=version: _named_port_set(e, v)
                )
        if len(self._sets) > 2 * len(out.sets) + 1024:  # sets that are gone: forget them
            for name in self._sets.keys() - out.sets.keys():
                del self._sets[name]
        return out


def render(state: PolicyState, endpoint_to_host: str = "Drop", flow_logs: bool = False) -> Ruleset:
    """One rendering without memory (tests, one-off uses)."""
    return PolicyRenderer().render(state, endpoint_to_host, flow_logs)

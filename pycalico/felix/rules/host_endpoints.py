"""Host endpoints rendered into pycalico's `inet calico` table (pure): Calico's host
protection (reference host-protection.md §2-§7; Felix's rules/static.go, endpoints.go,
dispatch.go), in its nftables layout, where each iptables table is a name prefix.

Where each stage sits:
* untracked (doNotTrack): `raw-PREROUTING` / `raw-OUTPUT` dispatch by interface to
  `raw-cali-fh-<iface>` / `raw-cali-th-<iface>`; an allowed packet is taken out of
  connection tracking and carries the accept mark, which every later stage honours;
* pre-DNAT: `mangle-PREROUTING` to `mangle-cali-fh-<iface>`, after established flows and
  packets raw accepted;
* normal, for the host's own traffic: `filter-INPUT` (after the VXLAN/IPIP admission rules
  and the workloads' `filter-cali-wl-to-host`) to `filter-cali-fh-<iface>`, `filter-OUTPUT`
  (after host-to-own-pod traffic, which is always allowed, and VXLAN/IPIP to other nodes)
  to `filter-cali-th-<iface>`; host traffic DNAT-ed on its way out is judged in
  `mangle-POSTROUTING` instead, once its outgoing interface is known;
* forwarded (applyOnForward): `filter-FORWARD` sends traffic in through a host endpoint to
  `filter-cali-fhfw-<iface>` before the workload dispatch and traffic out through one to
  `filter-cali-thfw-<iface>` after it; with no applyOnForward policy they allow.
The all-interfaces endpoint (`interfaceName: "*"`) is every dispatch chain's fallback under
the name `any-interface-at-all`; it has no untracked stage (Calico ignores doNotTrack policy
there, with a warning). Every host endpoint chain but the forward ones first jumps to the
failsafe chains (failsafes.py). All of this exists only while the node has a host endpoint:
without one, the hooks it needs cost nothing.

Where iptables needs a copy of a chain in each table, one `inet` table does not: a chain
can be jumped to from any hook. So mangle uses filter's failsafe chains, and its egress
stage for DNAT-ed host traffic, which differs from filter's only in how it lets established
flows through, does that and goes on in `filter-cali-th-<iface>` (with the policy and
profile chains that one jumps to). A copy would cost one nft transaction its rules again
per host endpoint, and change nothing a packet meets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pycalico.felix.rules import failsafes
from pycalico.felix.rules.failsafes import DEFAULT_INBOUND, DEFAULT_OUTBOUND, ProtoPort
from pycalico.felix.rules.policy import (
    ACCEPT_MARK,
    FROM_DISPATCH,
    PASS_MARK,
    TO_DISPATCH,
    WL_TO_HOST,
    families,
    policy_chain,
    profile_chain,
    tier_lines,
)
from pycalico.felix.rules.table import NftSet, Ruleset
from pycalico.policy.calc import ALL_INTERFACES, EndpointPlan, PolicyState
from pycalico.policy.model import Rule

FILTER, MANGLE, RAW = "filter", "mangle", "raw"
ANY_INTERFACE = "any-interface-at-all"  # the all-interfaces endpoint's name in chain names
ALL_HOSTS = "cali40all-hosts-net"
ALL_VXLAN = "cali40all-vxlan-net"
BASE_CHAINS = {
    "filter-OUTPUT": "type filter hook output priority filter; policy accept;",
    "mangle-PREROUTING": "type filter hook prerouting priority mangle; policy accept;",
    "mangle-POSTROUTING": "type filter hook postrouting priority mangle; policy accept;",
    "raw-PREROUTING": "type filter hook prerouting priority raw; policy accept;",
    "raw-OUTPUT": "type filter hook output priority raw; policy accept;",
}
_ACCEPTED = f"meta mark & {ACCEPT_MARK:#x} == {ACCEPT_MARK:#x}"
_NOT_ACCEPTED = f"meta mark & {ACCEPT_MARK:#x} == 0"
_CLEAR = f"meta mark set meta mark & {~(ACCEPT_MARK | PASS_MARK) & 0xFFFFFFFF:#x}"
_CLEAR_PASS = f"meta mark set meta mark & {~PASS_MARK & 0xFFFFFFFF:#x}"
_SET_ACCEPT = f"meta mark set meta mark | {ACCEPT_MARK:#x}"
_HOST_ACCEPTED = f'{_ACCEPTED} accept comment "Host endpoint policy accepted packet."'
_WORKLOADS = '"cali*"'

# What a policy's or profile's rules render to, for the address families that have sets
# (PolicyRenderer.chain_lines, so the renderer's memory serves these chains too).
LinesOf = Callable[[tuple[Rule, ...], tuple[int, ...]], tuple[str, ...]]


@dataclass(frozen=True)
class HostConfig:
    """What host protection needs besides the policy calculation."""

    failsafe_in: tuple[ProtoPort, ...] = DEFAULT_INBOUND
    failsafe_out: tuple[ProtoPort, ...] = DEFAULT_OUTBOUND
    hosts: frozenset[str] = frozenset()  # every node's IPv4 address: the tunnels' peers
    vxlan_port: int | None = None  # VXLAN on: its port
    ipip: bool = False


def endpoint_name(interface: str) -> str:
    return ANY_INTERFACE if interface == ALL_INTERFACES else interface


def host_chain(layer: str, kind: str, interface: str) -> str:
    """`kind`: fh (from the host endpoint), th (to it), fhfw / thfw (forwarded)."""
    return f"{layer}-cali-{kind}-{endpoint_name(interface)}"


def from_dispatch(layer: str) -> str:
    return f"{layer}-cali-from-host-endpoint"


def to_dispatch(layer: str) -> str:
    return f"{layer}-cali-to-host-endpoint"


FROM_FORWARD = "filter-cali-from-hep-forward"
TO_FORWARD = "filter-cali-to-hep-forward"


def failsafe_chain(layer: str, direction: str) -> str:
    return f"{layer}-cali-failsafe-{'in' if direction == 'ingress' else 'out'}"


_CONNTRACK = ("ct state established,related accept", "ct state invalid drop")
# Mangle egress: Calico's allow action there is RETURN, so established flows are marked
# accepted and returned; the rest goes on in filter's chain, from its invalid-state drop.
_MANGLE_CONNTRACK = (
    f"ct state established,related {_SET_ACCEPT}",
    "ct state established,related return",
)


def _endpoint_chain(
    plan: EndpointPlan,
    direction: str,
    layer: str,
    stage: str,
    profiles: tuple[str, ...] = (),
) -> tuple[str, ...]:
    """Felix's endpointIptablesChain for a host endpoint. `stage`: normal, forward,
    untracked or pre_dnat. Forwarded traffic is allowed in a direction no applyOnForward
    policy of the endpoint covers."""
    lines: list[str] = []
    if stage != "untracked":
        lines += _CONNTRACK
    if stage != "forward":
        # Only raw's failsafe chains differ (they also let replies through): mangle's
        # pre-DNAT stage uses filter's.
        lines.append(f"jump {failsafe_chain(RAW if stage == 'untracked' else FILTER, direction)}")
    lines.append(_CLEAR)
    tiers = plan.ingress if direction == "ingress" else plan.egress
    for tier in tiers:
        lines += tier_lines(tier, direction, layer, untracked=stage == "untracked")
    if stage == "forward" and not tiers:
        lines += [
            f'{_SET_ACCEPT} comment "Allow forwarded traffic by default"',
            'return comment "Return for accepted forward traffic"',
        ]
    if stage == "normal":
        for name in profiles:
            lines.append(f"jump {profile_chain(name, direction, layer)}")
            lines.append(f'{_ACCEPTED} return comment "Return if profile accepted"')
        lines.append('drop comment "Drop if no profiles matched"')
    return tuple(lines)


def _dispatch(
    interfaces: Iterable[str], match: str, chain_of: Callable[[str], str], fallback: list[str]
) -> tuple[str, ...]:
    """`match`: iifname or oifname; named interfaces first, then the fallback rules."""
    named = sorted(i for i in interfaces if i != ALL_INTERFACES)
    return (*(f'{match} "{i}" goto {chain_of(i)}' for i in named), *fallback)


def _policy_ids(plans: Iterable[EndpointPlan], direction: str) -> list[str]:
    found: dict[str, None] = {}
    for plan in plans:
        for tier in plan.ingress if direction == "ingress" else plan.egress:
            found.update(dict.fromkeys(tier.policies))
    return list(found)


def _tunnel_rules(config: HostConfig) -> tuple[list[str], list[str]]:
    """VXLAN and IPIP between nodes keep working whatever host policy says: filter-INPUT
    admits them from other nodes (and drops them from anyone else), filter-OUTPUT lets
    them out to other nodes."""
    into: list[str] = []
    out: list[str] = []
    if config.ipip:
        into += [
            f"meta l4proto 4 ip saddr @{ALL_HOSTS} fib daddr type local accept "
            'comment "Allow IPIP packets from Calico hosts"',
            "meta nfproto ipv4 meta l4proto 4 drop "
            'comment "Drop IPIP packets from non-Calico hosts"',
        ]
        out.append(
            f"meta l4proto 4 ip daddr @{ALL_HOSTS} fib saddr type local accept "
            'comment "Allow IPIP packets to other Calico hosts"'
        )
    if config.vxlan_port:
        port = config.vxlan_port
        into += [
            f"udp dport {port} ip saddr @{ALL_VXLAN} fib daddr type local accept "
            'comment "Allow IPv4 VXLAN packets from allowed hosts"',
            f"meta nfproto ipv4 udp dport {port} fib daddr type local drop "
            'comment "Drop IPv4 VXLAN packets from non-allowed hosts"',
        ]
        out.append(
            f"udp dport {port} fib saddr type local ip daddr @{ALL_VXLAN} accept "
            'comment "Allow IPv4 VXLAN packets to other allowed hosts"'
        )
    return into, out


class HostChains:
    """The endpoint and failsafe chains rendered so far, by what they came from; a Felix
    keeps one. A workload's label change leaves the host endpoints' plans as they were (the
    policy calculation hands back the same objects), so an apply after one renders none of
    these again, and the dataplane's comparison with what it applied meets the same tuples.
    The memory forgets everything at its limit, so churn cannot grow it."""

    MEMO_LIMIT = 10_000

    def __init__(self) -> None:
        self._memo: dict[tuple[Any, ...], tuple[str, ...]] = {}

    def _once(self, key: tuple[Any, ...], make: Callable[[], tuple[str, ...]]) -> tuple[str, ...]:
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= self.MEMO_LIMIT:
                self._memo.clear()
            found = self._memo[key] = make()
        return found

    def endpoint(
        self,
        plan: EndpointPlan,
        direction: str,
        layer: str,
        stage: str,
        profiles: tuple[str, ...] = (),
    ) -> tuple[str, ...]:
        return self._once(
            (plan, direction, layer, stage, profiles),
            lambda: _endpoint_chain(plan, direction, layer, stage, profiles),
        )

    def dnat_egress(self, interface: str) -> tuple[str, ...]:
        """Mangle's chain for host traffic DNAT-ed on its way out through `interface`."""
        return self._once(
            ("dnat egress", interface),
            lambda: (*_MANGLE_CONNTRACK, f"goto {host_chain(FILTER, 'th', interface)}"),
        )

    def failsafe(self, direction: str, config: HostConfig, raw: bool) -> tuple[str, ...]:
        make = failsafes.inbound_chain if direction == "ingress" else failsafes.outbound_chain
        return self._once(
            ("failsafe", direction, config.failsafe_in, config.failsafe_out, raw),
            lambda: make(config.failsafe_in, config.failsafe_out, raw=raw),
        )


def add_to(
    out: Ruleset,
    state: PolicyState,
    lines_of: LinesOf,
    config: HostConfig,
    memo: HostChains | None = None,
) -> tuple[str, ...]:
    """Add this node's host endpoints to `out` (after policy and NAT are in it); the
    warnings for what Calico ignores. `memo`: the chains rendered before (none: a one-off
    rendering)."""
    heps = state.host_endpoints
    if not heps:
        return ()
    chains = memo if memo is not None else HostChains()
    versions = families(state)
    warnings = []
    untracked = {}
    for interface, hep in heps.items():
        if not (hep.untracked.ingress or hep.untracked.egress):
            continue
        if interface == ALL_INTERFACES:
            warnings.append(
                f"DoNotTrack policy is not supported for a HEP with `interfaceName: *` "
                f"(HostEndpoint {hep.name}); ignoring it"
            )
        else:
            untracked[interface] = hep
    pre_dnat = {i: h for i, h in heps.items() if h.pre_dnat.ingress}
    policies = state.policies

    def known(profiles: tuple[str, ...]) -> tuple[str, ...]:
        """The profiles that exist (a missing one is skipped, as for a workload)."""
        return tuple(p for p in profiles if p in state.profiles)

    def policy_chains(layer: str, ids: Iterable[str], direction: str) -> None:
        for policy_id in ids:
            rules = getattr(policies[policy_id], direction)
            if rules is not None:
                out.chains[policy_chain(policy_id, direction, layer)] = lines_of(rules, versions)

    # filter: the host's own traffic and forwarded traffic.
    for direction in ("ingress", "egress"):
        out.chains[failsafe_chain(FILTER, direction)] = chains.failsafe(direction, config, False)
    for interface, hep in heps.items():
        for kind, direction, plan, stage in (
            ("fh", "ingress", hep.normal, "normal"),
            ("th", "egress", hep.normal, "normal"),
            ("fhfw", "ingress", hep.forward, "forward"),
            ("thfw", "egress", hep.forward, "forward"),
        ):
            out.chains[host_chain(FILTER, kind, interface)] = chains.endpoint(
                plan, direction, FILTER, stage, known(hep.normal.profiles)
            )
    fallback = ALL_INTERFACES in heps
    for name, match, kind in (
        (from_dispatch(FILTER), "iifname", "fh"),
        (to_dispatch(FILTER), "oifname", "th"),
        (FROM_FORWARD, "iifname", "fhfw"),
        (TO_FORWARD, "oifname", "thfw"),
    ):
        default = [f"goto {host_chain(FILTER, kind, ALL_INTERFACES)}"] if fallback else []
        out.chains[name] = _dispatch(
            heps, match, lambda i, k=kind: host_chain(FILTER, k, i), default
        )

    # mangle: pre-DNAT policy on the way in; normal egress policy for DNAT-ed host traffic,
    # where Calico's allow for an established flow is RETURN, then filter's chain.
    for interface in heps:
        out.chains[host_chain(MANGLE, "th", interface)] = chains.dnat_egress(interface)
    skip_workloads = (
        f"oifname {_WORKLOADS} return "
        'comment "Skip egress WHEP policy for traffic to local workload"'
    )
    out.chains[to_dispatch(MANGLE)] = _dispatch(
        heps,
        "oifname",
        lambda i: host_chain(MANGLE, "th", i),
        [skip_workloads, f"goto {host_chain(MANGLE, 'th', ALL_INTERFACES)}"] if fallback else [],
    )
    out.chains["mangle-POSTROUTING"] = (
        f"{_ACCEPTED} return",
        _CLEAR,
        f"ct status dnat jump {to_dispatch(MANGLE)}",
        f'{_ACCEPTED} return comment "Host endpoint policy accepted packet."',
    )
    if pre_dnat:
        for interface, hep in pre_dnat.items():
            out.chains[host_chain(MANGLE, "fh", interface)] = chains.endpoint(
                hep.pre_dnat, "ingress", MANGLE, "pre_dnat"
            )
        policy_chains(
            MANGLE, _policy_ids((h.pre_dnat for h in pre_dnat.values()), "ingress"), "ingress"
        )
        default = (
            [f"goto {host_chain(MANGLE, 'fh', ALL_INTERFACES)}"]
            if ALL_INTERFACES in pre_dnat
            else []
        )
        out.chains[from_dispatch(MANGLE)] = _dispatch(
            pre_dnat, "iifname", lambda i: host_chain(MANGLE, "fh", i), default
        )
        out.chains["mangle-PREROUTING"] = (
            "ct state established,related accept",
            f"{_ACCEPTED} accept",
            f"jump {from_dispatch(MANGLE)}",
            _HOST_ACCEPTED,
        )

    # raw: untracked policy, before connection tracking.
    raw_in: list[str] = []
    raw_out: list[str] = []
    if untracked:
        for direction in ("ingress", "egress"):
            out.chains[failsafe_chain(RAW, direction)] = chains.failsafe(direction, config, True)
            policy_chains(
                RAW, _policy_ids((h.untracked for h in untracked.values()), direction), direction
            )
        for interface, hep in untracked.items():
            for kind, direction in (("fh", "ingress"), ("th", "egress")):
                out.chains[host_chain(RAW, kind, interface)] = chains.endpoint(
                    hep.untracked, direction, RAW, "untracked"
                )
        out.chains[from_dispatch(RAW)] = _dispatch(
            untracked, "iifname", lambda i: host_chain(RAW, "fh", i), []
        )
        out.chains[to_dispatch(RAW)] = _dispatch(
            untracked, "oifname", lambda i: host_chain(RAW, "th", i), []
        )
        raw_in = [f"iifname != {_WORKLOADS} jump {from_dispatch(RAW)}", f"{_ACCEPTED} accept"]
        raw_out = [f"jump {to_dispatch(RAW)}"]
    # Calico clears its mark bits first thing: a packet the host sent itself comes back in
    # through lo still carrying the accept mark of its way out.
    out.chains["raw-PREROUTING"] = (_CLEAR, *out.chains.get("raw-PREROUTING", ()), *raw_in)
    out.chains["raw-OUTPUT"] = (
        _CLEAR,
        *raw_out,
        *out.chains.get("raw-OUTPUT", ()),
        *([f"{_ACCEPTED} accept"] if untracked else []),
    )

    # The base chains, and the sets the tunnel rules need.
    tunnels_in, tunnels_out = _tunnel_rules(config)
    out.chains["filter-INPUT"] = (
        *tunnels_in,
        f"iifname {_WORKLOADS} goto {WL_TO_HOST}",
        f"{_ACCEPTED} accept",
        _CLEAR,
        f"jump {from_dispatch(FILTER)}",
        _HOST_ACCEPTED,
    )
    out.chains["filter-OUTPUT"] = (
        f"{_ACCEPTED} accept",
        f"oifname {_WORKLOADS} return",
        *tunnels_out,
        _CLEAR,
        f"ct status & dnat == 0 jump {to_dispatch(FILTER)}",
        _HOST_ACCEPTED,
    )
    out.chains["filter-FORWARD"] = (
        _CLEAR_PASS,
        f"{_NOT_ACCEPTED} jump {FROM_FORWARD}",
        f"iifname {_WORKLOADS} jump {FROM_DISPATCH}",
        f"oifname {_WORKLOADS} jump {TO_DISPATCH}",
        f"jump {TO_FORWARD}",
        f'{_ACCEPTED} accept comment "Policy explicitly accepted packet."',
        _SET_ACCEPT,
    )
    for name, hook in BASE_CHAINS.items():
        if name in out.chains:
            out.base_chains[name] = hook
    hosts = frozenset(f"{address}/32" for address in config.hosts)
    if config.ipip:
        out.sets[ALL_HOSTS] = NftSet("type ipv4_addr; flags interval;", hosts)
    if config.vxlan_port:
        out.sets[ALL_VXLAN] = NftSet("type ipv4_addr; flags interval;", hosts)
    return tuple(warnings)

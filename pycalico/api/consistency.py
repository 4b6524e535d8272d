"""Rules that compare a write with what is already stored (pure; the client supplies state)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from typing import Any

from pycalico.api.schema import FieldError

Resource = dict[str, Any]

# Tiered policies: stored under `<tier>.<name>` (default-tier ones as `default.<name>`),
# their tier must exist, and a tier holding any of them cannot be deleted.
POLICY_KINDS = frozenset(
    {
        "NetworkPolicy",
        "GlobalNetworkPolicy",
        "StagedNetworkPolicy",
        "StagedGlobalNetworkPolicy",
    }
)


def tier_to_check(resource: Resource) -> str | None:
    """The Tier that must exist before this policy may be written (None: nothing to check)."""
    from pycalico.api.policy import BUILTIN_TIERS

    if resource["kind"] not in POLICY_KINDS:
        return None
    tier: str = resource["spec"]["tier"]
    return None if tier in BUILTIN_TIERS else tier


# Kinds whose create must be checked against every existing object of the kind.
NEEDS_EXISTING_ON_CREATE = frozenset({"IPPool", "BGPPeer"})
# ...and whose update too: a BGPPeer can be edited into a copy of another (a pool's CIDR
# cannot change, so its update needs only the old version).
NEEDS_EXISTING_ON_UPDATE = frozenset({"BGPPeer"})


def check_create(new: Resource, existing: Sequence[Resource]) -> list[FieldError]:
    if new["kind"] == "IPPool":
        return _pool_overlaps(new, existing)
    if new["kind"] == "BGPPeer":
        return _peer_duplicates(new, existing)
    return []


def check_update(new: Resource, old: Resource, existing: Sequence[Resource]) -> list[FieldError]:
    """`existing` (every stored object of the kind) is read only for NEEDS_EXISTING_ON_UPDATE
    kinds; callers may pass () for the others."""
    if new["kind"] == "BGPPeer":
        return _peer_duplicates(new, existing)
    if new["kind"] == "IPPool":
        errors = []
        if new["spec"]["cidr"] != old["spec"]["cidr"]:
            errors.append(
                FieldError(
                    "spec.cidr",
                    new["spec"]["cidr"],
                    "IPPool CIDR cannot be modified",
                    "IPPool.Spec.CIDR",
                )
            )
        if new["spec"]["blockSize"] != old["spec"]["blockSize"]:
            errors.append(
                FieldError(
                    "spec.blockSize",
                    new["spec"]["blockSize"],
                    "IPPool BlockSize cannot be modified",
                    "IPPool.Spec.BlockSize",
                )
            )
        if ("LoadBalancer" in old["spec"]["allowedUses"]) != (
            "LoadBalancer" in new["spec"]["allowedUses"]
        ):
            errors.append(
                FieldError(
                    "spec.allowedUses",
                    new["spec"]["allowedUses"],
                    # Calico refuses only the change away from LoadBalancer (and words it
                    # so); pycalico refuses the change to it too, as the uses conflict.
                    "IPPool allowed use cannot be changed to or from LoadBalancer",
                    "IPPool.Spec.AllowedUses",
                )
            )
        return errors
    return []


@functools.lru_cache(maxsize=65536)
def _span(cidr: str) -> tuple[int, int, int]:
    """(IP version, first address, last address) as integers: overlap is two comparisons."""
    net = ipaddress.ip_network(cidr)
    return net.version, int(net.network_address), int(net.broadcast_address)


def _pool_overlaps(new: Resource, existing: Sequence[Resource]) -> list[FieldError]:
    version, first, last = _span(new["spec"]["cidr"])
    name = new["metadata"]["name"]
    for pool in existing:
        v, lo, hi = _span(pool["spec"]["cidr"])
        if v == version and lo <= last and first <= hi and pool["metadata"]["name"] != name:
            other = f"IPPool({pool['metadata']['name']}) CIDR {pool['spec']['cidr']}"
            reason = f"IPPool({name}) CIDR overlaps with {other}"
            return [FieldError("spec.cidr", new["spec"]["cidr"], reason, "IPPool.Spec.CIDR")]
    return []


BGP_PORT = 179
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _peering(spec: dict[str, Any]) -> tuple[tuple[str, str], Address, int] | None:
    """What makes two BGPPeers the same session: the nodes they apply to (global, a node, or
    a node selector in canonical form) and the remote address and port."""
    from pycalico.api.bgp import peer_address
    from pycalico.selector import parse

    if "peerIP" not in spec:
        return None  # peerSelector peerings are named by label, not address
    address, port = peer_address(spec["peerIP"])
    if spec.get("node"):
        scope = ("node", spec["node"])
    elif spec.get("nodeSelector"):
        scope = ("nodeSelector", str(parse(spec["nodeSelector"])))
    else:
        scope = ("global", "")
    return scope, address, port or BGP_PORT


def _peer_duplicates(new: Resource, existing: Sequence[Resource]) -> list[FieldError]:
    """Two BGPPeers for the same nodes and peer would make confd render one session twice."""
    mine = _peering(new["spec"])
    name = new["metadata"]["name"]
    if mine is None:
        return []
    for peer in existing:
        if peer["metadata"]["name"] != name and _peering(peer["spec"]) == mine:
            reason = (
                f"BGPPeer({name}) duplicates BGPPeer({peer['metadata']['name']}): "
                f"the same peer {peer['spec']['peerIP']} for {_scope_words(peer['spec'])}"
            )
            return [FieldError("spec.peerIP", new["spec"]["peerIP"], reason)]
    return []


def _scope_words(spec: dict[str, Any]) -> str:
    if spec.get("node"):
        return f"node {spec['node']}"
    if spec.get("nodeSelector"):
        return f"nodeSelector {spec['nodeSelector']}"
    return "every node (global)"

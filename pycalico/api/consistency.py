"""Rules that compare a write with what is already stored (pure; the client supplies state)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from typing import Any

from pycalico.api.schema import FieldError

Resource = dict[str, Any]

POLICY_KINDS = frozenset({"NetworkPolicy", "GlobalNetworkPolicy"})


def tier_to_check(resource: Resource) -> str | None:
    """The Tier that must exist before this policy may be written (None: nothing to check)."""
    from pycalico.api.policy import BUILTIN_TIERS

    if resource["kind"] not in POLICY_KINDS:
        return None
    tier: str = resource["spec"]["tier"]
    return None if tier in BUILTIN_TIERS else tier


# Kinds whose create must be checked against every existing object of the kind.
NEEDS_EXISTING_ON_CREATE = frozenset({"IPPool"})


def check_create(new: Resource, existing: Sequence[Resource]) -> list[FieldError]:
    if new["kind"] == "IPPool":
        return _pool_overlaps(new, existing)
    return []


def check_update(new: Resource, old: Resource) -> list[FieldError]:
    if new["kind"] == "IPPool":
        errors = []
        if new["spec"]["cidr"] != old["spec"]["cidr"]:
            errors.append(
                FieldError("spec.cidr", new["spec"]["cidr"], "IPPool CIDR cannot be modified")
            )
        if new["spec"]["blockSize"] != old["spec"]["blockSize"]:
            errors.append(
                FieldError(
                    "spec.blockSize",
                    new["spec"]["blockSize"],
                    "IPPool BlockSize cannot be modified",
                )
            )
        if ("LoadBalancer" in old["spec"]["allowedUses"]) != (
            "LoadBalancer" in new["spec"]["allowedUses"]
        ):
            errors.append(
                FieldError(
                    "spec.allowedUses",
                    ",".join(new["spec"]["allowedUses"]),
                    "IPPool allowedUses cannot change to or from LoadBalancer",
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
            return [FieldError("spec.cidr", new["spec"]["cidr"], reason)]
    return []

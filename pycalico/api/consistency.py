"""Rules that compare a write with what is already stored (pure; the client supplies state)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from pycalico.api.schema import FieldError

Resource = dict[str, Any]

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


def _pool_overlaps(new: Resource, existing: Sequence[Resource]) -> list[FieldError]:
    net = ipaddress.ip_network(new["spec"]["cidr"])
    name = new["metadata"]["name"]
    for pool in existing:
        other = ipaddress.ip_network(pool["spec"]["cidr"])
        if (
            pool["metadata"]["name"] != name
            and net.version == other.version
            and net.overlaps(other)
        ):
            return [
                FieldError(
                    "spec.cidr",
                    new["spec"]["cidr"],
                    f"IPPool({name}) CIDR overlaps with IPPool({pool['metadata']['name']}) "
                    f"CIDR {pool['spec']['cidr']}",
                )
            ]
    return []

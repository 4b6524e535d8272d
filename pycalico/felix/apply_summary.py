"""What changed between two of Felix's applies, in a few words for its INFO log line (pure).

Calico's Felix logs every dataplane apply at INFO with how long it took; pycalico's adds
what the datastore changed for this node since the last apply: endpoints, policies and
profiles, pools, nodes (their tunnels and addresses), FelixConfiguration, and the number of
routes. Unchanged models are the same objects from one snapshot to the next (the readers
memoise them), so telling changed from unchanged is cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

LISTED = 3  # names listed per change; more are counted


@dataclass(frozen=True)
class Seen:
    """What one apply was made from, as far as its log line tells."""

    endpoints: Mapping[str, str]  # interface -> address
    policies: Mapping[str, Any]  # id -> model
    profiles: Mapping[str, Any]
    pools: Mapping[str, Any]  # CIDR -> model
    nodes: Mapping[str, Any]
    config: Any
    routes: int

    @classmethod
    def of(cls, snap: Any, routes: int) -> Seen:
        endpoints: dict[str, str] = {}
        for workload in snap.workloads:
            endpoints.setdefault(workload.interface, workload.address)
        return cls(
            endpoints,
            {p.id: p for p in snap.policy.policies},
            dict(snap.policy.profiles),
            {str(p.cidr): p for p in snap.pools},
            dict(snap.nodes),
            (snap.global_config, snap.node_config),
            routes,
        )


def _names(items: Iterable[str]) -> str:
    names = sorted(items)
    shown = ", ".join(names[:LISTED])
    return shown + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")


def _diff(what: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = []
    added = new.keys() - old.keys()
    removed = old.keys() - new.keys()
    changed = [k for k in new.keys() & old.keys() if new[k] is not old[k] and new[k] != old[k]]
    if added:
        out.append(f"{what} added {_names(added)}")
    if removed:
        out.append(f"{what} removed {_names(removed)}")
    if changed:
        out.append(f"{what} changed {_names(changed)}")
    return out


def changes(old: Seen | None, new: Seen) -> list[str]:
    """What is different in `new` (everything counts as new on the first apply)."""
    if old is None:
        return [
            f"first apply: {len(new.endpoints)} local endpoints, {len(new.policies)} policies, "
            f"{len(new.profiles)} profiles, {len(new.pools)} pools, {len(new.nodes)} nodes, "
            f"{new.routes} routes"
        ]
    out = []
    added = sorted(new.endpoints.keys() - old.endpoints.keys())
    if added:
        shown = ", ".join(f"{i} ({new.endpoints[i]})" for i in added[:LISTED])
        more = f" and {len(added) - LISTED} more" if len(added) > LISTED else ""
        out.append(f"endpoint added {shown}{more}")
    gone = old.endpoints.keys() - new.endpoints.keys()
    if gone:
        out.append(f"endpoint removed {_names(gone)}")
    out += _diff("policy", old.policies, new.policies)
    out += _diff("profile", old.profiles, new.profiles)
    out += _diff("pool", old.pools, new.pools)
    out += _diff("node", old.nodes, new.nodes)
    if new.config != old.config:
        out.append("FelixConfiguration changed")
    if new.routes != old.routes:
        out.append(f"routes {old.routes} -> {new.routes}")
    return out


def line(revision: int, milliseconds: float, what: list[str]) -> str:
    said = "; ".join(what) if what else "no datastore change (resync or a link change)"
    return (
        f"Finished applying updates to dataplane (revision {revision}, "
        f"msecToApply={milliseconds:.1f}): {said}"
    )

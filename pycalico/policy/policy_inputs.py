"""Everything the policy calculation reads, from the datastore (Felix and `policy explain`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from pycalico.api.registry import resolve
from pycalico.datastore.resources import ResourceClient
from pycalico.policy import calc, model

T = TypeVar("T")


@dataclass
class Reader:
    """Reads the policy inputs, handing back the same model object for a resource that has
    not changed (same resourceVersion, same profiles), so the calculation can tell at a
    glance what did change."""

    _memo: dict[tuple[object, ...], Any] = field(default_factory=dict)
    _next: dict[tuple[object, ...], Any] = field(default_factory=dict)

    def _once(self, key: tuple[object, ...], make: Callable[[], T]) -> T:
        if None in key:
            return make()  # not from a datastore (no resourceVersion): nothing to go by
        found = self._memo.get(key)
        if found is None:
            found = make()
        self._next[key] = found
        return cast(T, found)

    def read(self, client: ResourceClient, weps: list[dict[str, Any]] | None = None) -> calc.Inputs:
        """Every endpoint (their addresses fill selector sets on all nodes) and all policy.

        `weps`: the WorkloadEndpoints when the caller has listed them already.
        """
        if weps is None:
            weps = client.list(resolve("WorkloadEndpoint"))[0]
        listed = {
            kind: client.list(resolve(kind))[0]
            for kind in (
                "Profile",
                "Tier",
                "NetworkPolicy",
                "GlobalNetworkPolicy",
                "NetworkSet",
                "GlobalNetworkSet",
            )
        }
        self._next = {}
        versions = {p["metadata"]["name"]: _version(p) for p in listed["Profile"]}
        profiles = {
            p["metadata"]["name"]: self._once(
                ("Profile", _version(p)), lambda p=p: model.profile(p)
            )
            for p in listed["Profile"]
        }
        tiers = {
            t["metadata"]["name"]: calc.Tier(
                t["metadata"]["name"],
                float(t["spec"].get("order", calc.DEFAULT_TIER_ORDER)),
                t["spec"].get("defaultAction", "Deny"),
            )
            for t in listed["Tier"]
        }
        tiers.setdefault("default", calc.Tier("default", calc.DEFAULT_TIER_ORDER))
        endpoints = [
            self._once(
                (
                    "WorkloadEndpoint",
                    _version(w),
                    *(versions.get(n, "no such profile") for n in w["spec"].get("profiles", [])),
                ),
                lambda w=w: model.endpoint(w, profiles),
            )
            for w in weps
        ]
        namespace_labels = {ep.namespace: dict(ep.namespace_labels) for ep in endpoints}
        policies = [
            self._once((p["kind"], _version(p)), lambda p=p: model.policy(p))
            for p in listed["NetworkPolicy"] + listed["GlobalNetworkPolicy"]
        ]
        network_sets = [
            model.network_set(n, namespace_labels)
            for n in listed["NetworkSet"] + listed["GlobalNetworkSet"]
        ]
        self._memo = self._next
        return calc.Inputs(endpoints, policies, profiles, tiers, network_sets)


def _version(resource: dict[str, Any]) -> tuple[str, str, str] | None:
    meta = resource["metadata"]
    if not meta.get("resourceVersion"):
        return None
    return (meta.get("namespace", ""), meta["name"], meta["resourceVersion"])


def read(client: ResourceClient, weps: list[dict[str, Any]] | None = None) -> calc.Inputs:
    """One read without memory (calicoctl)."""
    return Reader().read(client, weps)

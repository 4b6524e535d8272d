"""Everything the policy calculation reads, from the datastore (Felix and `policy explain`)."""

from __future__ import annotations

from typing import Any

from pycalico.api.registry import resolve
from pycalico.datastore.resources import ResourceClient
from pycalico.policy import calc, model


def read(client: ResourceClient, weps: list[dict[str, Any]] | None = None) -> calc.Inputs:
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
    profiles = {p.name: p for p in map(model.profile, listed["Profile"])}
    tiers = {
        t["metadata"]["name"]: calc.Tier(
            t["metadata"]["name"],
            float(t["spec"].get("order", calc.DEFAULT_TIER_ORDER)),
            t["spec"].get("defaultAction", "Deny"),
        )
        for t in listed["Tier"]
    }
    tiers.setdefault("default", calc.Tier("default", calc.DEFAULT_TIER_ORDER))
    endpoints = [model.endpoint(w, profiles) for w in weps]
    namespace_labels = {ep.namespace: dict(ep.namespace_labels) for ep in endpoints}
    return calc.Inputs(
        endpoints=endpoints,
        policies=[model.policy(p) for p in listed["NetworkPolicy"] + listed["GlobalNetworkPolicy"]],
        profiles=profiles,
        tiers=tiers,
        network_sets=[
            model.network_set(n, namespace_labels)
            for n in listed["NetworkSet"] + listed["GlobalNetworkSet"]
        ],
    )

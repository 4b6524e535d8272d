"""Everything the policy calculation reads, as models made from v3 resources (pure).

Felix and `calicoctl policy explain` list the resources (`KINDS`, and the
WorkloadEndpoints) and hand them over; nothing here reads the datastore.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from pycalico.kube.validation import KubeInvalid
from pycalico.policy import calc, model, pending
from pycalico.policy.identity_memo import IdentityMemo

MODEL_MEMO_LIMIT = 50_000
Resource = dict[str, Any]
# The kinds besides WorkloadEndpoint that the calculation reads.
KINDS = (
    "Profile",
    "Tier",
    "NetworkPolicy",
    "GlobalNetworkPolicy",
    "NetworkSet",
    "GlobalNetworkSet",
    "HostEndpoint",
)
# Read when listed (policy explain, Felix's pending traces): never rendered.
STAGED_KINDS = tuple(pending.STAGED_KINDS)


@dataclass
class Reader:
    """Reads the policy inputs, handing back the same model object for a resource that has
    not changed, so the calculation can tell at a glance what did change.

    "Not changed" is "the same decoded object": Felix reads from a datastore mirror that
    hands out one object per stored version. An endpoint's model also depends on its
    profiles (their labels apply to it), so it is kept together with the profile models
    it was made from.
    """

    _profiles: IdentityMemo[Resource, model.Profile] = field(
        default_factory=lambda: IdentityMemo(MODEL_MEMO_LIMIT)
    )
    # By the resource, or the stored value it is decoded from (see `read`).
    _policies: IdentityMemo[Any, model.Policy] = field(
        default_factory=lambda: IdentityMemo(MODEL_MEMO_LIMIT)
    )
    # By the resource, or the stored value it is decoded from: [its profiles' names, the
    # profile models used, model, the profiles epoch it was last checked in].
    _endpoints: IdentityMemo[Any, list[Any]] = field(
        default_factory=lambda: IdentityMemo(MODEL_MEMO_LIMIT)
    )
    # The profile models of the last read, and a count that moves on whenever they change:
    # an endpoint's model checked in the current count's reads was made from the profiles
    # read now, so it is handed back without checking its profiles one by one again.
    _last_profiles: dict[str, model.Profile] = field(default_factory=dict)
    _profiles_epoch: int = 0
    _staged: IdentityMemo[Resource, model.Policy | None] = field(
        default_factory=lambda: IdentityMemo(MODEL_MEMO_LIMIT)
    )

    def _endpoint(
        self,
        item: Any,
        profiles: dict[str, model.Profile],
        decode: Callable[[Any], Resource] | None = None,
    ) -> Any:
        """A WorkloadEndpoint's or HostEndpoint's model; `item` is the resource, or what
        `decode` turns into it."""
        made = self._endpoints.get(item, lambda _: [(), None, None, -1])
        if made[3] == self._profiles_epoch:
            return made[2]
        used = [profiles.get(name) for name in made[0]]
        if (
            made[2] is None
            or len(made[1]) != len(used)
            or any(a is not b for a, b in zip(made[1], used, strict=True))
        ):
            resource = item if decode is None else decode(item)
            names = tuple(resource["spec"].get("profiles", ()))
            make = model.host_endpoint if resource["kind"] == "HostEndpoint" else model.endpoint
            made[:3] = [names, [profiles.get(name) for name in names], make(resource, profiles)]
        made[3] = self._profiles_epoch
        return made[2]

    def read(
        self,
        listed: Mapping[str, Sequence[Any]],
        weps: Sequence[Any],
        decode: Callable[[Any], Resource] | None = None,
    ) -> calc.Inputs:
        """Every endpoint (their addresses fill selector sets on all nodes) and all policy.

        `listed`: the resources of each of `KINDS`, and of the `STAGED_KINDS` listed (those
        evaluated become `staged_policies`); `weps`: every WorkloadEndpoint. With `decode`,
        the WorkloadEndpoints, NetworkPolicies and GlobalNetworkPolicies are what it turns
        into resources, decoded only when their models are made (Felix passes its mirror's
        stored values: keeping every decoded resource for the sake of its identity was
        ~3 KB per endpoint and ~5 KB per policy).
        """
        profiles = {model.DEFAULT_ALLOW: model.DEFAULT_ALLOW_PROFILE}
        profiles.update(
            (p["metadata"]["name"], self._profiles.get(p, model.profile)) for p in listed["Profile"]
        )
        tiers = {
            t["metadata"]["name"]: calc.Tier(
                t["metadata"]["name"],
                float(t["spec"].get("order", calc.DEFAULT_TIER_ORDER)),
                t["spec"].get("defaultAction", "Deny"),
            )
            for t in listed["Tier"]
        }
        tiers.setdefault("default", calc.Tier("default", calc.DEFAULT_TIER_ORDER))
        last = self._last_profiles
        if len(last) != len(profiles) or any(profiles.get(k) is not v for k, v in last.items()):
            self._profiles_epoch += 1
        self._last_profiles = profiles
        endpoints = [cast(model.Endpoint, self._endpoint(w, profiles, decode)) for w in weps]
        host_endpoints = [
            cast(model.HostEndpoint, self._endpoint(h, profiles))
            for h in listed.get("HostEndpoint", ())
        ]
        make_policy = model.policy if decode is None else lambda p: model.policy(decode(p))
        policies = [
            self._policies.get(p, make_policy)
            for kind in ("NetworkPolicy", "GlobalNetworkPolicy")
            for p in listed[kind]
        ]
        staged = [
            self._staged.get(p, _readable_staged)
            for kind in STAGED_KINDS
            for p in listed.get(kind, ())
        ]
        sets = [*listed["NetworkSet"], *listed["GlobalNetworkSet"]]
        namespace_labels = {ep.namespace: ep.namespace_labels for ep in endpoints} if sets else {}
        network_sets = [model.network_set(n, namespace_labels) for n in sets]
        return calc.Inputs(
            endpoints,
            policies,
            profiles,
            tiers,
            network_sets,
            host_endpoints,
            [p for p in staged if p is not None],
        )


def _readable_staged(resource: Resource) -> model.Policy | None:
    """A stored staged policy as evaluated (pending.staged_policy); None also for one that
    cannot be read as its enforced kind: it was validated when written, so that is a policy
    from an older version, left out rather than stop Felix or `policy explain`."""
    try:
        return pending.staged_policy(resource)
    except (KubeInvalid, KeyError, ValueError):
        return None

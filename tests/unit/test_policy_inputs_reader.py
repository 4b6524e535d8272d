"""The policy inputs reader: the same model for an unchanged resource, a new one when the
resource or a profile it uses changed."""

from __future__ import annotations

import random
from typing import Any

from pycalico.api.resource import normalize
from pycalico.policy import inputs

API = "projectcalico.org/v3"


def profile(ns: str, team: str) -> dict[str, Any]:
    return normalize(
        {
            "apiVersion": API,
            "kind": "Profile",
            "metadata": {"name": f"kns.{ns}"},
            "spec": {"labelsToApply": {"pcns.projectcalico.org/name": ns, "pcns.team": team}},
        }
    )


def workload(slot: int, **labels: str) -> dict[str, Any]:
    ns = "x" if slot % 2 else "y"
    return normalize(
        {
            "apiVersion": API,
            "kind": "WorkloadEndpoint",
            "metadata": {"name": f"node1-k8s-p{slot}-eth0", "namespace": ns, "labels": labels},
            "spec": {
                "node": "node1",
                "orchestrator": "k8s",
                "pod": f"p{slot}",
                "endpoint": "eth0",
                "interfaceName": f"calip{slot}",
                "ipNetworks": [f"10.2.0.{slot}/32"],
                "profiles": [f"kns.{ns}"],
            },
        }
    )


def listed(profiles: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in inputs.KINDS}
    found["Profile"] = profiles
    return found


def test_an_unchanged_endpoint_keeps_its_model_until_a_profile_it_uses_changes() -> None:
    reader = inputs.Reader()
    weps = [workload(1, app="web"), workload(2, app="db")]
    profiles = [profile("x", "a"), profile("y", "a")]
    first = reader.read(listed(profiles), weps).endpoints
    again = reader.read(listed(profiles), weps).endpoints
    assert all(a is b for a, b in zip(first, again, strict=True))
    profiles[0] = profile("x", "b")  # what pod 1 (namespace x) takes its namespace labels from
    changed = reader.read(listed(profiles), weps).endpoints
    assert changed[0] is not first[0] and changed[0].namespace_labels["team"] == "b"
    assert changed[1] is first[1]


def test_a_long_lived_reader_always_gives_what_a_fresh_one_gives() -> None:
    """Felix keeps one Reader across reads; after any series of label and profile changes
    its models must equal those of a fresh reader."""
    rng = random.Random(3)
    weps = [workload(slot, app=rng.choice(["web", "db"])) for slot in range(12)]
    profiles = {ns: profile(ns, "a") for ns in ("x", "y")}
    reader = inputs.Reader()
    for _ in range(200):
        if rng.random() < 0.7:
            slot = rng.randrange(len(weps))
            weps[slot] = workload(slot, app=rng.choice(["web", "db", "cache"]))
        elif rng.random() < 0.8:
            ns = rng.choice(["x", "y"])
            profiles[ns] = profile(ns, rng.choice(["a", "b"]))
        kept = reader.read(listed(list(profiles.values())), weps)
        fresh = inputs.Reader().read(listed(list(profiles.values())), weps)
        assert kept.endpoints == fresh.endpoints
        assert kept.profiles == fresh.profiles

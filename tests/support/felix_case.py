"""Felix's desired state from a handful of v3 resources, without a datastore: what the
golden host-endpoint tests (unit) and their kernel counterparts (integration) share.

A case is a mapping: `node`, `resources` (v3 resources without apiVersion), `interfaces`
(name -> addresses; omitted when the caller reads the kernel's), and optionally `felix`
(FelixConfiguration `default`'s spec) and `env` (FELIX_* variables).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pycalico.api.resource import normalize
from pycalico.felix.calc import inputs as felix_inputs
from pycalico.felix.calc.desired import Calculator, Desired, HostLinks
from pycalico.felix.calc.mtu import Link
from pycalico.felix.calc.settings import resolve
from pycalico.felix.calc.snapshot import Snapshot
from pycalico.policy import inputs as policy_inputs

GOLDEN = Path(__file__).parent.parent / "unit" / "golden" / "felix"


def golden_cases() -> list[str]:
    return sorted(p.stem for p in GOLDEN.glob("*.yaml"))


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((GOLDEN / f"{name}.yaml").read_text())
    return loaded


def snapshot(resources: list[dict[str, Any]]) -> Snapshot:
    normal = [normalize({"apiVersion": "projectcalico.org/v3", **r}) for r in resources]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in normal:
        by_kind.setdefault(r["kind"], []).append(r)
    kinds = (*policy_inputs.KINDS, *policy_inputs.STAGED_KINDS)
    listed = {kind: by_kind.get(kind, []) for kind in kinds}
    pools = by_kind.get("IPPool", [])
    return Snapshot(
        revision=1,
        nodes={n["metadata"]["name"]: felix_inputs.node_info(n) for n in by_kind.get("Node", [])},
        pools=[felix_inputs.pool_info(p) for p in pools],
        nat_pools=[felix_inputs.nat_pool(p) for p in pools],
        policy=policy_inputs.Reader().read(listed, by_kind.get("WorkloadEndpoint", [])),
    )


def host_links(interfaces: dict[str, list[str]]) -> HostLinks:
    return HostLinks(
        tuple(Link(name, 1500, True) for name in interfaces),
        tuple((address, name) for name, addresses in interfaces.items() for address in addresses),
    )


def desired(case: dict[str, Any], host: HostLinks | None = None) -> Desired:
    """`host`: the links as read from a kernel; else the case's `interfaces`."""
    settings = resolve(case.get("env", {}), case.get("felix", {}), {})
    links = host if host is not None else host_links(case["interfaces"])
    return Calculator(case["node"]).calculate(snapshot(case["resources"]), settings, links)

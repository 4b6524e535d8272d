"""One consistent read of everything Felix's calculations need, with the revision it is at."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from pycalico.api.registry import resolve
from pycalico.datastore.mirror import Mirror
from pycalico.datastore.resources import ResourceClient
from pycalico.felix import inputs
from pycalico.felix.calc_routes import NodeInfo, PoolInfo, Workload
from pycalico.felix.nat import NatPool
from pycalico.ipam import keys
from pycalico.policy import calc, policy_inputs
from pycalico.policy.identity_memo import IdentityMemo

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Snapshot:
    revision: int
    generation: int = 0  # the mirror's load count: a new one asks for a full reconcile
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    pools: list[PoolInfo] = field(default_factory=list)
    nat_pools: list[NatPool] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)
    block_owners: dict[Network, str] = field(default_factory=dict)
    borrowed: dict[str, str] = field(default_factory=dict)
    felix_config: dict[str, Any] = field(default_factory=dict)
    policy: calc.Inputs = field(default_factory=lambda: calc.Inputs([], [], {}, {}))


def read(backend: Mirror, node: str, reader: policy_inputs.Reader | None = None) -> Snapshot:
    """Every input, read at (or after) one revision; later changes arrive by watch."""
    client = ResourceClient(backend)
    revision = backend.revision()
    nodes, _ = client.list(resolve("Node"))
    pools, _ = client.list(resolve("IPPool"))
    weps, _ = client.list(resolve("WorkloadEndpoint"))
    affinities, _ = backend.list(keys.all_affinities_prefix())
    blocks, _ = backend.list(keys.block_prefix(4))
    config = _felix_config(client, node)
    policy = (reader or policy_inputs.Reader()).read(client, weps)
    return Snapshot(
        revision=revision,
        generation=backend.loads,
        nodes={n["metadata"]["name"]: inputs.node_info(n) for n in nodes},
        pools=[inputs.pool_info(p) for p in pools],
        nat_pools=[inputs.nat_pool(p) for p in pools],
        workloads=[w for wep in weps for w in _workloads(wep, node)],
        block_owners=inputs.block_owners((kv.key, kv.value) for kv in affinities),
        borrowed=inputs.borrowed_addresses(kv.value for kv in blocks),
        felix_config=config,
        policy=policy,
    )


# Per WorkloadEndpoint object: the mirror hands out one object per stored version.
_WORKLOADS: IdentityMemo[dict[str, Any], tuple[str, tuple[Workload, ...]]] = IdentityMemo(50_000)


def _workloads(wep: dict[str, Any], node: str) -> tuple[Workload, ...]:
    owner, workloads = _WORKLOADS.get(wep, inputs.endpoint_workloads)
    return workloads if owner == node else ()


def _felix_config(client: ResourceClient, node: str) -> dict[str, Any]:
    """The global FelixConfiguration overlaid with this node's `node.<name>` one."""
    kind = resolve("FelixConfiguration")
    merged: dict[str, Any] = {}
    for name in ("default", f"node.{node}"):
        found = client.get(kind, name)
        if found is not None:
            merged.update(found["spec"])
    return merged

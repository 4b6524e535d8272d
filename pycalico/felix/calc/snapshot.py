"""One consistent read of everything Felix's calculations need, with the revision it is at.

Felix reads from its datastore mirror (memory, kept current by the watch), so this does no
I/O. A `SnapshotReader` lives as long as Felix: it hands back the same model object for a
resource that did not change, which lets the calculation see at a glance what did.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from pycalico.api import enforcement
from pycalico.api.kind import Kind
from pycalico.api.registry import resolve
from pycalico.datastore.backend import Event, EventType, KeyValue
from pycalico.datastore.mirror import Mirror
from pycalico.datastore.resources import ResourceClient, decode, kind_prefix
from pycalico.felix.calc import inputs
from pycalico.felix.calc.routes import NodeInfo, PoolInfo, Workload
from pycalico.felix.rules.nat import NatPool
from pycalico.ipam import keys
from pycalico.policy import calc
from pycalico.policy import inputs as policy_inputs
from pycalico.policy.identity_memo import IdentityMemo

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MEMO_LIMIT = 50_000
BLOCKS = keys.block_prefix(4)  # the snapshot reads IPv4 blocks only
WORKLOAD_ENDPOINT = resolve("WorkloadEndpoint")
# The policy kinds read as stored values, decoded only when new (see policy_inputs.Reader.read),
# by the prefix of their keys.
STORED = {kind: kind_prefix(resolve(kind)) for kind in ("NetworkPolicy", "GlobalNetworkPolicy")}
# Every kind `SnapshotReader.read` lists (the staged kinds too: flow logs' pending traces
# evaluate them, policy/pending.py).
KINDS = (
    "Node",
    "IPPool",
    "WorkloadEndpoint",
    "HostEndpoint",
    "FelixConfiguration",
    *policy_inputs.KINDS,
    *policy_inputs.STAGED_KINDS,
)


def input_prefixes() -> tuple[str, ...]:
    """The datastore keys a snapshot is made of: a change under none of them (an IPAM
    handle, a BGP resource, another component's status) cannot change what Felix applies."""
    return (
        *(kind_prefix(resolve(kind)) for kind in KINDS),
        keys.all_affinities_prefix(),
        BLOCKS,
    )


def changes(event: Event, before: Mirror) -> bool:
    """Whether `event`, under one of input_prefixes(), can change a snapshot read from
    `before` once it has taken the event. An IPv4 block counts only for the addresses in
    it that another node took (its owner comes from its affinity): a pod's address given
    out of its own node's block, the commonest write of a cluster, changes nothing here."""
    if not event.key.startswith(BLOCKS):
        return True
    old = before.get(event.key)
    was = before.decoded(old, _block_borrowed) if old is not None else {}
    if event.type is not EventType.PUT:
        return bool(was)
    return was != before.decoded_ahead(event, inputs.block_borrowed)


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
    # The specs of FelixConfiguration `default` and `node.<this node>` ({} when absent).
    global_config: dict[str, Any] = field(default_factory=dict)
    node_config: dict[str, Any] = field(default_factory=dict)
    policy: calc.Inputs = field(default_factory=lambda: calc.Inputs([], [], {}, {}))
    # One line per resource that asks for what Felix does not do (api.enforcement).
    unenforced: tuple[str, ...] = ()


def felix_configurations(client: ResourceClient, node: str) -> list[dict[str, Any] | None]:
    """FelixConfiguration `default` and `node.<node>` (None for a missing one)."""
    kind = resolve("FelixConfiguration")
    return [client.get(kind, name) for name in ("default", f"node.{node}")]


def felix_configuration(client: ResourceClient, node: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The specs of FelixConfiguration `default` and `node.<node>` ({} for a missing one)."""
    global_spec, node_spec = (
        resource["spec"] if resource else {} for resource in felix_configurations(client, node)
    )
    return global_spec, node_spec


@dataclass
class SnapshotReader:
    node: str
    policy: policy_inputs.Reader = field(default_factory=policy_inputs.Reader)
    # Per stored WorkloadEndpoint: the mirror hands out one object per stored version.
    _workloads: IdentityMemo[KeyValue, tuple[str, tuple[Workload, ...]]] = field(
        default_factory=lambda: IdentityMemo(MEMO_LIMIT)
    )
    # Per resource, or per stored policy (see STORED).
    _unenforced: IdentityMemo[Any, str] = field(
        default_factory=lambda: IdentityMemo(MEMO_LIMIT)
    )
    # Per Node object: its addresses and VTEP MAC were parsed again for every node on every
    # apply, a per-change cost growing with the cluster.
    _nodes: IdentityMemo[dict[str, Any], NodeInfo] = field(
        default_factory=lambda: IdentityMemo(MEMO_LIMIT)
    )

    def read(self, mirror: Mirror) -> Snapshot:
        """Every input, at the mirror's revision; later changes arrive by watch."""
        client = ResourceClient(mirror)
        nodes, _ = client.list(resolve("Node"))
        pools, _ = client.list(resolve("IPPool"))
        # Stored values, decoded only when new: the decoded resources are not kept (see
        # policy_inputs.Reader.read).
        weps, _ = mirror.list(kind_prefix(WORKLOAD_ENDPOINT))
        affinities, _ = mirror.list(keys.all_affinities_prefix())
        blocks, _ = mirror.list(BLOCKS)
        kinds = (*policy_inputs.KINDS, *policy_inputs.STAGED_KINDS)
        listed: dict[str, list[Any]] = {
            kind: client.list(resolve(kind))[0] for kind in kinds if kind not in STORED
        }
        listed.update((kind, mirror.list(prefix)[0]) for kind, prefix in STORED.items())
        configs = felix_configurations(client, self.node)
        global_config, node_config = (c["spec"] if c else {} for c in configs)
        checked = [
            *listed["Profile"],
            *client.list(resolve("HostEndpoint"))[0],
            *(c for c in configs if c),
        ]
        policy = self.policy.read(listed, weps, self._decode)
        stored_policies = (*listed["GlobalNetworkPolicy"], *listed["NetworkPolicy"])
        return Snapshot(
            revision=mirror.revision(),
            generation=mirror.loads,
            nodes={n["metadata"]["name"]: self._nodes.get(n, inputs.node_info) for n in nodes},
            pools=[inputs.pool_info(p) for p in pools],
            nat_pools=[inputs.nat_pool(p) for p in pools],
            workloads=[w for wep in weps for w in self._local_workloads(wep)],
            # Parsed once per stored version (the mirror keeps the result): every block and
            # affinity parsed again on each apply was a per-change cost growing with the
            # cluster.
            block_owners=dict(
                found for kv in affinities if (found := mirror.decoded(kv, _affinity_owner))
            ),
            borrowed={
                address: node
                for kv in blocks
                for address, node in mirror.decoded(kv, _block_borrowed).items()
            },
            global_config=global_config,
            node_config=node_config,
            policy=policy,
            unenforced=tuple(
                line
                for line in (
                    *(self._unenforced.get(kv, self._policy_unenforced) for kv in stored_policies),
                    *(self._unenforced.get(r, _unenforced_line) for r in checked),
                )
                if line
            ),
        )

    def _decode(self, kv: KeyValue) -> dict[str, Any]:
        """A stored WorkloadEndpoint or policy, decoded for its policy model; what else is
        made from it (an endpoint's workload routes, what a policy asks for that Felix does
        not do) is made from the same decoding."""
        kind = _stored_kind(kv)
        resource = decode(kind, kv)
        if kind is WORKLOAD_ENDPOINT:
            self._workloads.get(kv, lambda _: inputs.endpoint_workloads(resource))
        else:
            self._unenforced.get(kv, lambda _: _unenforced_line(resource))
        return resource

    def _policy_unenforced(self, kv: KeyValue) -> str:
        return _unenforced_line(decode(_stored_kind(kv), kv))

    def _local_workloads(self, kv: KeyValue) -> tuple[Workload, ...]:
        owner, workloads = self._workloads.get(
            kv, lambda kv: inputs.endpoint_workloads(decode(WORKLOAD_ENDPOINT, kv))
        )
        return workloads if owner == self.node else ()


def _stored_kind(kv: KeyValue) -> Kind:
    for kind, prefix in STORED.items():
        if kv.key.startswith(prefix):
            return resolve(kind)
    return WORKLOAD_ENDPOINT


def _affinity_owner(kv: KeyValue) -> tuple[Network, str] | None:
    return inputs.affinity_owner(kv.key, kv.value)


def _block_borrowed(kv: KeyValue) -> dict[str, str]:
    return inputs.block_borrowed(kv.value)


def _unenforced_line(resource: dict[str, Any]) -> str:
    fields = enforcement.unenforced(resource)
    return enforcement.describe(resource, fields) if fields else ""

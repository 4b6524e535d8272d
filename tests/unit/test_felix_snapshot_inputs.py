"""Felix applies only after changes under the keys its snapshot is made of
(`snapshot.input_prefixes`): a key it reads outside them would be a change it never sees."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from pycalico.api.registry import resolve
from pycalico.api.resource import normalize
from pycalico.datastore.backend import Event, EventType, KeyValue
from pycalico.datastore.mirror import Mirror
from pycalico.datastore.resources import ResourceClient
from pycalico.datastore.sqlite import SqliteBackend
from pycalico.felix.calc import snapshot
from pycalico.ipam import keys
from pycalico.ipam.block import Block
from tests.support.resources import workload_endpoint


def workload(pod: str) -> dict[str, Any]:
    return workload_endpoint(pod, [f"10.2.0.{ord(pod)}"], namespace="x")


class RecordingMirror(Mirror):
    def __init__(self) -> None:
        super().__init__("/calico/")
        self.read: list[str] = []

    def get(self, key: str) -> KeyValue | None:
        self.read.append(key)
        return super().get(key)

    def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        self.read.append(prefix)
        return super().list(prefix)


def test_every_key_a_snapshot_reads_is_under_felix_input_prefixes() -> None:
    mirror = RecordingMirror()

    snapshot.SnapshotReader("node1").read(mirror)

    assert mirror.read
    prefixes = snapshot.input_prefixes()
    assert [key for key in mirror.read if not key.startswith(prefixes)] == []


def test_ipam_handles_and_bgp_resources_are_not_felix_inputs() -> None:
    prefixes = snapshot.input_prefixes()

    assert not keys.handle_key("k8s-pod-network.abc").startswith(prefixes)
    assert not "/calico/resources/v3/projectcalico.org/bgppeers/p".startswith(prefixes)
    assert "/calico/resources/v3/projectcalico.org/workloadendpoints/ns/x".startswith(prefixes)


BLOCK = ipaddress.ip_network("10.244.1.0/26")
BLOCK_KEY = keys.block_key(BLOCK)


def block_with(*takers: str) -> Block:
    """node1's block, an address taken by each of `takers` in turn."""
    block = Block.new(BLOCK, "host:node1", now_ns=1)
    for taker in takers:
        block.assign(1, f"h-{len(block.attributes)}", {"node": taker})
    return block


def mirror_holding(block: Block | None) -> Mirror:
    mirror = Mirror("/calico/")
    if block is not None:
        mirror.apply(Event(EventType.PUT, BLOCK_KEY, block.to_json(), 5))
    return mirror


def put(block: Block) -> Event:
    return Event(EventType.PUT, BLOCK_KEY, block.to_json(), 6)


def test_an_address_given_out_of_the_owners_own_block_changes_no_snapshot() -> None:
    before = mirror_holding(block_with("node1"))
    assert not snapshot.changes(put(block_with("node1", "node1")), before)
    assert not snapshot.changes(put(block_with()), before)  # released again
    assert not snapshot.changes(put(block_with("node1")), mirror_holding(None))  # a new block


def test_an_address_another_node_borrows_or_gives_back_changes_the_snapshot() -> None:
    assert snapshot.changes(put(block_with("node1", "node2")), mirror_holding(block_with("node1")))
    assert snapshot.changes(put(block_with("node1")), mirror_holding(block_with("node1", "node2")))
    assert snapshot.changes(put(block_with("node2")), mirror_holding(None))


def test_a_deleted_block_changes_the_snapshot_only_if_another_node_had_an_address_in_it() -> None:
    lent = block_with("node2")
    gone = Event(EventType.DELETE, BLOCK_KEY, lent.to_json(), 7)
    assert snapshot.changes(gone, mirror_holding(lent))
    own = block_with("node1")
    own_gone = Event(EventType.DELETE, BLOCK_KEY, own.to_json(), 7)
    assert not snapshot.changes(own_gone, mirror_holding(own))


def test_every_other_input_counts_as_a_change() -> None:
    for key in (
        "/calico/resources/v3/projectcalico.org/workloadendpoints/ns/node2-k8s-p-eth0",
        keys.affinity_key("node2", BLOCK),
    ):
        assert snapshot.changes(Event(EventType.PUT, key, "{}", 6), Mirror("/calico/"))

def test_each_stored_endpoint_and_policy_is_decoded_once_and_keeps_its_model_across_a_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = SqliteBackend(tmp_path / "store.db", create=True)
    client = ResourceClient(backend)
    for pod in ("a", "b"):
        client.create(resolve("WorkloadEndpoint"), workload(pod))
    policy = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "deny-all"},
        "spec": {"selector": "all()", "types": ["Ingress"]},
    }
    client.create(resolve("GlobalNetworkPolicy"), normalize(policy))
    decoded: list[str] = []
    real = snapshot.decode

    def counting(kind: Any, kv: KeyValue) -> dict[str, Any]:
        decoded.append(kv.key)
        return real(kind, kv)

    monkeypatch.setattr(snapshot, "decode", counting)
    mirror = Mirror("/calico/")
    mirror.load(backend)
    reader = snapshot.SnapshotReader("node1")

    first = reader.read(mirror)
    mirror.load(backend)  # a resync
    again = reader.read(mirror)

    assert len(decoded) == 3
    assert all(a is b for a, b in zip(first.policy.endpoints, again.policy.endpoints, strict=True))
    assert [p.name for p in again.policy.policies] == ["deny-all"]
    assert again.policy.policies[0] is first.policy.policies[0]
    assert [w.interface for w in again.workloads] == ["calia", "calib"]

"""IPAM block logic: FIFO allocation, attributes, release, Calico's JSON model."""

from __future__ import annotations

import ipaddress
import json

import pytest

from pycalico.ipam.block import Block
from pycalico.ipam.errors import AddressInUse
from pycalico.ipam.pools import candidate_blocks, fnv32, select_pools

BLOCK = ipaddress.ip_network("10.244.166.128/26")


def new_block() -> Block:
    return Block.new(BLOCK, "host:node1", now_ns=1000)


def test_first_address_of_a_new_block_is_its_network_address() -> None:
    block = new_block()
    assert block.assign(1, "h1", {"node": "node1"}) == [ipaddress.ip_address("10.244.166.128")]
    assert block.host == "node1" and block.in_use() == 1


def test_released_addresses_go_to_the_back_of_the_queue() -> None:
    block = new_block()
    first = block.assign(2, "h1", {})
    block.release([block.ordinal(first[0])])
    nxt = block.assign(1, "h2", {})
    assert nxt == [ipaddress.ip_address("10.244.166.130")]
    assert block.unallocated[-1] == 0


def test_addresses_assigned_together_share_one_attribute_entry() -> None:
    block = new_block()
    block.assign(3, "h1", {"pod": "a"})
    block.assign(1, "h2", {"pod": "b"})
    assert block.allocations[:4] == [0, 0, 0, 1]
    assert [a.handle_id for a in block.attributes] == ["h1", "h2"]


def test_release_drops_unused_attributes_and_reindexes_the_rest() -> None:
    block = new_block()
    block.assign(1, "h1", {})
    block.assign(1, "h2", {})
    block.release(block.ordinals_of_handle("h1"))
    assert [a.handle_id for a in block.attributes] == ["h2"]
    assert block.allocations[1] == 0 and block.handle_of(1) == "h2"


def test_release_of_free_addresses_frees_nothing() -> None:
    block = new_block()
    assert block.release([5, 6]) == []
    assert len(block.unallocated) == 64


def test_reserved_addresses_are_skipped_but_stay_free() -> None:
    block = new_block()
    reserved = {ipaddress.ip_address("10.244.166.128"), ipaddress.ip_address("10.244.166.129")}
    assert block.assign(1, "h", {}, reserved) == [ipaddress.ip_address("10.244.166.130")]
    assert block.unallocated[:2] == [0, 1]


def test_assigning_a_taken_ordinal_is_address_in_use() -> None:
    block = new_block()
    block.assign_ordinal(10, "h", {})
    with pytest.raises(AddressInUse, match=r"10\.244\.166\.138"):
        block.assign_ordinal(10, "h2", {})


def test_allocation_records_the_block_sequence_number() -> None:
    block = new_block()
    block.assign(1, "h", {})
    assert block.sequence_number_for_allocation == {"0": 1000}


def test_json_uses_calicos_field_names_and_round_trips() -> None:
    block = new_block()
    block.assign(2, "k8s-pod-network.abc", {"namespace": "default", "pod": "web"})
    data = json.loads(block.to_json())
    assert list(data) == [
        "cidr",
        "affinity",
        "allocations",
        "unallocated",
        "attributes",
        "deleted",
        "sequenceNumber",
        "sequenceNumberForAllocation",
    ]
    assert data["attributes"][0] == {
        "handle_id": "k8s-pod-network.abc",
        "secondary": {"namespace": "default", "pod": "web"},
    }
    assert Block.from_json(block.to_json()).to_json() == block.to_json()


def test_handles_with_a_carriage_return_are_cut_as_calico_does() -> None:
    block = new_block()
    block.assign(1, "h1\rjunk", {})
    assert Block.from_json(block.to_json()).handle_of(0) == "h1"


def test_empty_means_no_allocation_but_windows_reserved_ones() -> None:
    block = new_block()
    assert block.is_empty()
    block.assign(1, "windows-reserved-ipam-handle", {})
    assert block.is_empty()
    block.assign(1, "pod", {})
    assert not block.is_empty()


def test_fnv32_is_fnv1_as_go_hash_fnv_new32() -> None:
    assert fnv32("") == 0x811C9DC5
    assert fnv32("a") == 0x050C5D7E


def pool(name: str, cidr: str, **spec: object) -> dict[str, object]:
    base = {
        "cidr": cidr,
        "blockSize": 26,
        "nodeSelector": "all()",
        "allowedUses": ["Workload", "Tunnel"],
        "assignmentMode": "Automatic",
    }
    return {"metadata": {"name": name}, "spec": {**base, **spec}}


def test_candidate_blocks_cover_the_pool_once_from_a_host_specific_start() -> None:
    p = pool("p", "10.0.0.0/24")
    blocks = list(candidate_blocks(p, "node-a"))
    assert sorted(str(b) for b in blocks) == [f"10.0.0.{i}/26" for i in (0, 128, 192, 64)]
    assert blocks == list(candidate_blocks(p, "node-a"))


def test_pool_selection_honours_family_selector_disabled_mode_and_use() -> None:
    pools = [
        pool("a", "10.0.0.0/16", nodeSelector="zone == 'x'"),
        pool("b", "10.1.0.0/16", disabled=True),
        pool("c", "10.2.0.0/16", assignmentMode="Manual"),
        pool("d", "fd00::/48", blockSize=122),
        pool("e", "10.3.0.0/16", allowedUses=["Tunnel"]),
    ]
    chosen = select_pools(pools, 4, "n", {"zone": "x"})
    assert [p["metadata"]["name"] for p in chosen] == ["a"]
    assert [p["metadata"]["name"] for p in select_pools(pools, 4, "n", {}, use="Tunnel")] == ["e"]
    assert [p["metadata"]["name"] for p in select_pools(pools, 4, "n", {}, ["c"])] == ["c"]
    assert [p["metadata"]["name"] for p in select_pools(pools, 6, "n", {})] == ["d"]
    with pytest.raises(ValueError, match=r"the given pool \(b\) does not exist, or is not enabled"):
        select_pools(pools, 4, "n", {}, ["b"])
    with pytest.raises(ValueError, match="no configured Calico pools for node n"):
        select_pools(pools[:3], 4, "n", {})

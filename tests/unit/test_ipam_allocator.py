"""The block allocator on a real SQLite store: affinity, borrowing, limits, release.

Races of several processes are in tests/contract/test_ipam_allocator_races.py.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pycalico.api.registry import resolve
from pycalico.datastore.backend import DatastoreUnavailable
from pycalico.datastore.resources import ResourceClient
from pycalico.datastore.sqlite import SqliteBackend
from pycalico.ipam import keys
from pycalico.ipam.allocator import Allocator
from pycalico.ipam.errors import AddressInUse, IpamError, PoolsExhausted
from tests.support.resources import normalized


def apply(
    backend: SqliteBackend,
    kind: str,
    name: str,
    spec: dict[str, Any],
    labels: dict[str, str] | None = None,
) -> None:
    ResourceClient(backend).apply(resolve(kind), normalized(kind, name, spec, labels=labels))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[SqliteBackend, Allocator]]:
    backend = SqliteBackend(tmp_path / "store.db", create=True)
    yield backend, Allocator(backend)
    backend.close()


def ip(text: str) -> Any:
    return ipaddress.ip_address(text)


def test_first_allocation_claims_a_block_for_the_host_and_records_the_handle(store: Any) -> None:
    backend, alloc = store
    apply(backend, "IPPool", "p", {"cidr": "10.244.0.0/16"})
    [got] = alloc.auto_assign(1, 4, "k8s-pod-network.c1", {"node": "n1"}, "n1")
    assert got.network.prefixlen == 26 and got.ip == got.network.network_address
    assert (
        json.loads(backend.get(keys.affinity_key("n1", got.network)).value)["state"] == "confirmed"
    )
    handle = json.loads(backend.get(keys.handle_key("k8s-pod-network.c1")).value)
    assert handle == {
        "handleID": "k8s-pod-network.c1",
        "block": {str(got.network): 1},
        "deleted": False,
    }


def test_a_host_fills_its_own_block_before_claiming_another(store: Any) -> None:
    backend, alloc = store
    apply(backend, "IPPool", "p", {"cidr": "10.244.0.0/24", "blockSize": 28})
    got = [alloc.auto_assign(1, 4, f"h{i}", {}, "n1")[0] for i in range(17)]
    blocks = {g.network for g in got}
    assert len(blocks) == 2 and len({g.ip for g in got}) == 17


def test_hosts_borrow_only_when_no_block_is_left(store: Any) -> None:
    backend, alloc = store
    apply(backend, "IPPool", "p", {"cidr": "10.244.0.0/27", "blockSize": 28})
    for i in range(2):
        alloc.auto_assign(1, 4, f"a{i}", {}, f"n{i}")
    borrowed = alloc.auto_assign(1, 4, "b", {}, "n2")[0]
    owners = {b.cidr: b.host for b in alloc.blocks()}
    assert owners[borrowed.network] in ("n0", "n1")


def test_strict_affinity_forbids_borrowing(store: Any) -> None:
    backend, alloc = store
    apply(backend, "IPPool", "p", {"cidr": "10.244.0.0/28", "blockSize": 28})
    apply(backend, "IPAMConfiguration", "default", {"strictAffinity": True})
    alloc.auto_assign(1, 4, "a", {}, "n0")
    with pytest.raises(PoolsExhausted, match=r"No IPs available in pools: \[10.244.0.0/28\]"):
        alloc.auto_assign(1, 4, "b", {}, "n1")


def test_max_blocks_per_host_is_enforced(store: Any) -> None:
    backend, alloc = store
    apply(backend, "IPPool", "p", {"cidr": "10.244.0.0/24", "blockSize": 30})
    apply(backend, "IPAMConfiguration", "default", {"strictAffinity": True, "maxBlocksPerHost": 1})
    alloc.auto_assign(4, 4, "a", {}, "n0")
    with pytest.raises(IpamError, match="limit of 1 blocks reached for this node"):
        alloc.auto_assign(1, 4, "b", {}, "n0")


def test_exhaustion_is_all_or_nothing(store: Any) -> None:
    backend, alloc = store
    apply(backend, "IPPool", "p", {"cidr": "10.244.0.0/29", "blockSize": 29})
    alloc.auto_assign(6, 4, "a", {}, "n0")
    with pytest.raises(PoolsExhausted, match="Assigned 2 out of 3 requested IPv4 addresses"):
        alloc.auto_assign(3, 4, "b", {}, "n0")
    assert alloc.addresses_of_handle("b") == []
    assert sum(b.in_use() for b in alloc.blocks()) == 6


def test_pool_node_selector_decides_which_pool_a_node_uses(store: Any) -> None:
    backend, alloc = store
    apply(backend, "IPPool", "rack1", {"cidr": "10.1.0.0/16", "nodeSelector": "rack == '1'"})
    apply(backend, "IPPool", "rack2", {"cidr": "10.2.0.0/16", "nodeSelector": "rack == '2'"})
    apply(backend, "Node", "n2", {}, labels={"rack": "2"})
    assert alloc.auto_assign(1, 4, "a", {}, "n2")[0].ip in ipaddress.ip_network("10.2.0.0/16")
    with pytest.raises(IpamError, match="no configured Calico pools for node n9"):
        alloc.auto_assign(1, 4, "b", {}, "n9")


def test_ipv6_allocations_come_from_v6_pools(store: Any) -> None:
    backend, alloc = store
    apply(backend, "IPPool", "v6", {"cidr": "fd00:10::/64"})
    [got] = alloc.auto_assign(1, 6, "a", {}, "n0")
    assert got.version == 6 and got.network.prefixlen == 122


def test_reserved_addresses_are_never_handed_out(store: Any) -> None:
    backend, alloc = store
    apply(backend, "IPPool", "p", {"cidr": "10.244.0.0/28", "blockSize": 28})
    apply(backend, "IPReservation", "r", {"reservedCIDRs": ["10.244.0.0/30"]})
    got = alloc.auto_assign(12, 4, "a", {}, "n0")
    assert min(g.ip for g in got) == ip("10.244.0.4")
    with pytest.raises(PoolsExhausted):
        alloc.auto_assign(1, 4, "b", {}, "n0")


def test_assign_ip_claims_its_block_and_refuses_a_taken_address(store: Any) -> None:
    backend, alloc = store
    apply(backend, "IPPool", "p", {"cidr": "10.244.0.0/16"})
    got = alloc.assign_ip(ip("10.244.7.9"), "a", {}, "n0")
    assert str(got) == "10.244.7.9/26"
    with pytest.raises(AddressInUse):
        alloc.assign_ip(ip("10.244.7.9"), "b", {}, "n0")
    with pytest.raises(IpamError, match="not in a configured pool"):
        alloc.assign_ip(ip("192.0.2.1"), "c", {}, "n0")


def test_release_by_handle_frees_everything_and_deletes_the_handle(store: Any) -> None:
    backend, alloc = store
    apply(backend, "IPPool", "p", {"cidr": "10.244.0.0/24", "blockSize": 29})
    assert len(alloc.auto_assign(10, 4, "a", {}, "n0")) == 10
    assert len(alloc.blocks()) == 2  # one full block and the next, nothing claimed beyond
    assert alloc.release_by_handle("a") == 10
    assert backend.get(keys.handle_key("a")) is None
    assert sum(b.in_use() for b in alloc.blocks()) == 0
    assert alloc.release_by_handle("a") == 0


def test_release_ips_reports_addresses_that_were_not_allocated(store: Any) -> None:
    backend, alloc = store
    apply(backend, "IPPool", "p", {"cidr": "10.244.0.0/24"})
    [got] = alloc.auto_assign(1, 4, "a", {}, "n0")
    assert alloc.release_ips([got.ip, ip("10.244.0.200"), ip("192.0.2.1")]) == [
        ip("10.244.0.200"),
        ip("192.0.2.1"),
    ]
    assert backend.get(keys.handle_key("a")) is None


def test_borrowing_completes_a_request_partly_served_by_the_own_block(store: Any) -> None:
    backend, alloc = store
    apply(backend, "IPPool", "p", {"cidr": "10.244.0.0/27", "blockSize": 28})
    alloc.auto_assign(15, 4, "n1-fill", {}, "n1")  # n1's block keeps one free address
    alloc.auto_assign(1, 4, "n2-first", {}, "n2")  # the last block, for n2
    got = alloc.auto_assign(2, 4, "n1-two", {}, "n1")  # one own, one borrowed from n2
    assert len(got) == 2 and len({g.network for g in got}) == 2


def test_a_failed_auto_assign_gives_back_what_it_already_took(store: Any) -> None:
    backend, alloc = store
    apply(backend, "IPPool", "p", {"cidr": "10.244.0.0/24", "blockSize": 28})
    alloc.auto_assign(15, 4, "fill", {}, "n1")
    apply(
        backend,
        "IPAMConfiguration",
        "default",
        {"strictAffinity": True, "autoAllocateBlocks": False},
    )
    with pytest.raises(IpamError, match="failed to find or claim a block"):
        alloc.auto_assign(2, 4, "two", {}, "n1")
    assert alloc.addresses_of_handle("two") == []


def test_pool_deletion_ignores_calicos_host_marker_keys(store: Any) -> None:
    backend, alloc = store
    apply(backend, "IPPool", "p", {"cidr": "10.244.0.0/24"})
    alloc.auto_assign(1, 4, "a", {}, "n1")
    backend.create("/calico/ipam/v2/host/n1", "{}")
    alloc.release_pool_affinities(ipaddress.ip_network("10.244.0.0/24"))
    assert backend.list(keys.host_affinity_prefix("n1", 4))[0] == []


@pytest.mark.parametrize(
    ("record", "value"),
    [
        ("block affinity", "not json"),
        ("IPAM block", '{"cidr": 1}'),
        ("IPAM handle", '{"block": {"not a cidr": 1}}'),
    ],
)
def test_a_foreign_value_under_an_ipam_key_is_an_error_naming_the_key(
    store: Any, record: str, value: str
) -> None:
    backend, alloc = store
    apply(backend, "IPPool", "p", {"cidr": "10.244.0.0/16"})
    [got] = alloc.auto_assign(1, 4, "h1", {}, "n1")
    key = {
        "block affinity": keys.affinity_key("n1", got.network),
        "IPAM block": keys.block_key(got.network),
        "IPAM handle": keys.handle_key("h1"),
    }[record]
    backend.update(key, value, backend.get(key).mod_revision)

    with pytest.raises(DatastoreUnavailable) as raised:
        alloc.auto_assign(1, 4, "h1", {}, "n1")

    assert str(raised.value) == f"cannot read {key}: not a stored Calico {record}"


def test_a_host_that_cannot_see_its_blocks_claims_at_most_one_more_than_it_needs(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a node name with '/' did (its affinity keys did not parse back): the host never
    # found its new block and claimed every block of the pool in one request.
    backend, alloc = store
    apply(backend, "IPPool", "p", {"cidr": "10.244.0.0/16"})
    claims: list[Any] = []
    claim = alloc._claim_block

    def counted_claim(*args: Any) -> Any:
        claims.append(claim(*args))
        return claims[-1]

    monkeypatch.setattr(alloc, "_affine_blocks", lambda host, version: [])
    monkeypatch.setattr(alloc, "_claim_block", counted_claim)
    with pytest.raises(IpamError, match=r"^claimed 3 new IPAM blocks for node 'n1' to assign 2 "):
        alloc.auto_assign(2, 4, "h", {"node": "n1"}, "n1")
    assert len(claims) == 3
    assert backend.list(keys.all_affinities_prefix())[0] == []
    assert backend.list(keys.block_prefix(4))[0] == []
    assert backend.get(keys.handle_key("h")) is None

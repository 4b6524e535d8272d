"""Several processes allocating from one SQLite store at once: no address is handed out twice.

Each worker is a forked process with its own client, as concurrent CNI ADDs are.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from pycalico.api.registry import resolve
from pycalico.datastore.resources import ResourceClient
from pycalico.datastore.sqlite import SqliteBackend
from pycalico.ipam import keys
from pycalico.ipam.allocator import Allocator
from pycalico.ipam.errors import PoolsExhausted
from tests.support.resources import normalized

pytestmark = pytest.mark.contract


def store_pool(backend: SqliteBackend, spec: dict[str, Any]) -> None:
    ResourceClient(backend).apply(resolve("IPPool"), normalized("IPPool", "p", spec))


def _allocate_many(path: str, host: str, count: int, queue: Any) -> None:
    backend = SqliteBackend(path, create=True)
    alloc = Allocator(backend)
    got: list[str] = []
    error = ""
    try:
        for i in range(count):
            got.append(str(alloc.auto_assign(1, 4, f"{host}.{i}", {"node": host}, host)[0].ip))
    except PoolsExhausted as exc:
        error = str(exc)
    finally:
        backend.close()
    queue.put((got, error))


def _run_workers(path: Path, hosts: list[str], count: int) -> list[tuple[list[str], str]]:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_allocate_many, args=(str(path), h, count, queue)) for h in hosts]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return results


def test_concurrent_allocations_on_one_node_never_collide(tmp_path: Path) -> None:
    with SqliteBackend(tmp_path / "store.db", create=True) as backend:
        store_pool(backend, {"cidr": "10.244.0.0/16"})
        results = _run_workers(tmp_path / "store.db", ["n1"] * 4, 25)
    ips = [a for got, _ in results for a in got]
    assert len(ips) == 100 and len(set(ips)) == 100
    assert all(error == "" for _, error in results)


def test_three_nodes_exhaust_a_small_pool_without_duplicates(tmp_path: Path) -> None:
    with SqliteBackend(tmp_path / "store.db", create=True) as backend:
        store_pool(backend, {"cidr": "10.244.0.0/26", "blockSize": 29})
        results = _run_workers(tmp_path / "store.db", ["n1", "n2", "n3"], 65)
        ips = [a for got, _ in results for a in got]
        assert len(ips) == 64 and len(set(ips)) == 64
        assert all("No IPs available in pools" in error for _, error in results)
        handles = backend.list(keys.HANDLE_PREFIX)[0]
        assert len(handles) == 64

"""Two processes racing conflicting writes into one SQLite store: exactly one of them wins.

Each round forks two writers, each with its own client, and releases them at once: the
overlap check of IPPools and the duplicate guard of BGPPeers must hold across processes,
not only across the clients of one.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pycalico.api.registry import resolve
from pycalico.api.schema import ValidationErrors
from pycalico.datastore.resources import ResourceClient
from pycalico.datastore.sqlite import SqliteBackend
from tests.support.resources import normalized

pytestmark = pytest.mark.contract

IPPOOL = resolve("IPPool")
BGPPEER = resolve("BGPPeer")


def one_wins(*writers: tuple[Callable[..., None], tuple[Any, ...]]) -> None:
    """Each writer (a function and its arguments, then the start event and the results
    queue) in a forked process of its own, released together; exactly one reports a win."""
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, start, results)) for target, args in writers]
    for proc in procs:
        proc.start()
    start.set()
    winners = [results.get(timeout=30) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    assert sorted(w != "" for w in winners) == [False, True], winners


def _create_pool(path: str, name: str, cidr: str, start: Any, results: Any) -> None:
    start.wait()
    with SqliteBackend(path, create=True) as backend:
        try:
            ResourceClient(backend).create(IPPOOL, normalized("IPPool", name, {"cidr": cidr}))
            results.put(name)
        except ValidationErrors:
            results.put("")


def test_concurrent_overlapping_pool_creates_never_both_succeed(tmp_path: Path) -> None:
    path = str(tmp_path / "store.db")
    SqliteBackend(path, create=True).close()
    for i in range(10):
        one_wins(
            (_create_pool, (path, f"a{i}", f"10.{i}.0.0/16")),
            (_create_pool, (path, f"b{i}", f"10.{i}.0.0/17")),
        )


def peer(name: str, peer_ip: str) -> dict[str, Any]:
    return normalized("BGPPeer", name, {"peerIP": peer_ip, "asNumber": 65001})


def _move_peer(path: str, action: str, round_: int, start: Any, results: Any) -> None:
    address = f"192.0.2.{100 + round_}"
    with SqliteBackend(path, create=True) as backend:
        client = ResourceClient(backend)
        start.wait()
        try:
            if action == "create":
                client.create(BGPPEER, peer(f"new{round_}", address))
            else:
                current = client.get(BGPPEER, f"old{round_}")
                assert current is not None
                moved = peer(f"old{round_}", address)
                moved["metadata"] = current["metadata"]
                client.update(BGPPEER, moved)
            results.put(action)
        except ValidationErrors:
            results.put("")


def test_a_racing_create_and_update_never_both_make_the_same_peering(tmp_path: Path) -> None:
    path = str(tmp_path / "store.db")
    with SqliteBackend(path, create=True) as backend:
        client = ResourceClient(backend)
        for i in range(10):
            client.create(BGPPEER, peer(f"old{i}", f"198.51.100.{i + 1}"))
    for i in range(10):
        one_wins(*((_move_peer, (path, action, i)) for action in ("create", "update")))

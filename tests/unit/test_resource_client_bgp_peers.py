"""The duplicate-BGPPeer guard in the resource client: it holds across clients and under races.

Creates and updates of BGPPeers are checked against every stored peer in the same
transaction that moves the kind's guard key, so a write by anyone else in between forces
a fresh check instead of slipping a duplicate in.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from pycalico.api.registry import resolve
from pycalico.api.resource import normalize
from pycalico.api.schema import ValidationErrors
from pycalico.datastore.resources import ResourceClient
from pycalico.datastore.sqlite import SqliteBackend

BGPPEER = resolve("BGPPeer")


def peer(name: str, peer_ip: str, **spec: Any) -> dict[str, Any]:
    return normalize(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "BGPPeer",
            "metadata": {"name": name},
            "spec": {"peerIP": peer_ip, "asNumber": 65001, **spec},
        }
    )


def test_an_update_is_checked_against_a_peer_another_client_just_created(tmp_path: Path) -> None:
    with SqliteBackend(tmp_path / "store.db") as backend:
        client = ResourceClient(backend)
        client.create(BGPPEER, peer("a", "192.0.2.1"))  # primes the client's cached listing
        with SqliteBackend(tmp_path / "store.db") as other:
            ResourceClient(other).create(BGPPEER, peer("b", "192.0.2.2"))
        moved = {**peer("a", "192.0.2.2"), "metadata": client.get(BGPPEER, "a")["metadata"]}
        with pytest.raises(ValidationErrors, match=r"BGPPeer\(a\) duplicates BGPPeer\(b\)"):
            client.update(BGPPEER, moved)
        assert client.get(BGPPEER, "a")["spec"]["peerIP"] == "192.0.2.1"


def test_an_update_that_keeps_its_own_peering_is_not_its_own_duplicate(tmp_path: Path) -> None:
    with SqliteBackend(tmp_path / "store.db") as backend:
        client = ResourceClient(backend)
        client.create(BGPPEER, peer("a", "192.0.2.1"))
        for asn in (65002, 65003):  # twice: the second reuses the listing cached by the first
            client.apply(BGPPEER, peer("a", "192.0.2.1", asNumber=asn))
        assert client.get(BGPPEER, "a")["spec"]["asNumber"] == 65003


def _race(path: str, action: str, round_: int, start: Any, results: Any) -> None:
    address = f"192.0.2.{100 + round_}"
    with SqliteBackend(path) as backend:
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
    ctx = multiprocessing.get_context("fork")
    path = str(tmp_path / "store.db")
    with SqliteBackend(path) as backend:
        client = ResourceClient(backend)
        for i in range(10):
            client.create(BGPPEER, peer(f"old{i}", f"198.51.100.{i + 1}"))
    for i in range(10):
        start, results = ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(target=_race, args=(path, action, i, start, results))
            for action in ("create", "update")
        ]
        for proc in procs:
            proc.start()
        start.set()
        winners = [results.get(timeout=30) for _ in procs]
        for proc in procs:
            proc.join(timeout=30)
        assert sorted(w != "" for w in winners) == [False, True], winners

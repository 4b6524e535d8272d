"""The duplicate-BGPPeer guard in the resource client: it holds across clients.

Creates and updates of BGPPeers are checked against every stored peer in the same
transaction that moves the kind's guard key, so a write by anyone else in between forces
a fresh check instead of slipping a duplicate in. That it holds under races of processes
is tested in tests/contract/test_resource_client_races.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pycalico.api.registry import resolve
from pycalico.api.schema import ValidationErrors
from pycalico.datastore.resources import ResourceClient
from pycalico.datastore.sqlite import SqliteBackend
from tests.support.resources import normalized

BGPPEER = resolve("BGPPeer")


def peer(name: str, peer_ip: str, **spec: Any) -> dict[str, Any]:
    return normalized("BGPPeer", name, {"peerIP": peer_ip, "asNumber": 65001, **spec})


def test_an_update_is_checked_against_a_peer_another_client_just_created(tmp_path: Path) -> None:
    with SqliteBackend(tmp_path / "store.db", create=True) as backend:
        client = ResourceClient(backend)
        client.create(BGPPEER, peer("a", "192.0.2.1"))  # primes the client's cached listing
        with SqliteBackend(tmp_path / "store.db", create=True) as other:
            ResourceClient(other).create(BGPPEER, peer("b", "192.0.2.2"))
        moved = {**peer("a", "192.0.2.2"), "metadata": client.get(BGPPEER, "a")["metadata"]}
        with pytest.raises(ValidationErrors, match=r"BGPPeer\(a\) duplicates BGPPeer\(b\)"):
            client.update(BGPPEER, moved)
        assert client.get(BGPPEER, "a")["spec"]["peerIP"] == "192.0.2.1"


def test_an_update_that_keeps_its_own_peering_is_not_its_own_duplicate(tmp_path: Path) -> None:
    with SqliteBackend(tmp_path / "store.db", create=True) as backend:
        client = ResourceClient(backend)
        client.create(BGPPEER, peer("a", "192.0.2.1"))
        for asn in (65002, 65003):  # twice: the second reuses the listing cached by the first
            client.apply(BGPPEER, peer("a", "192.0.2.1", asNumber=asn))
        assert client.get(BGPPEER, "a")["spec"]["asNumber"] == 65003

"""confd with a real BIRD 2 in a node namespace: start, reload, and refusing a bad config."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pycalico.api.registry import resolve
from pycalico.api.resource import normalize
from pycalico.confd.bird_process import BirdProcess
from pycalico.confd.daemon import Confd
from pycalico.datastore.resources import ResourceClient, resource_key
from pycalico.datastore.sqlite import SqliteBackend
from pycalico.netns import in_netns
from tests.support.node_namespace import node_namespace

pytestmark = pytest.mark.integration


def _apply(client: ResourceClient, kind: str, name: str, spec: dict[str, Any]) -> None:
    document = {"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": {"name": name}}
    client.apply(resolve(kind), normalize({**document, "spec": spec}))


def _birdc(bird: BirdProcess, *command: str) -> str:
    return subprocess.run(
        ["birdc", "-s", bird.socket, *command], capture_output=True, text=True, check=True
    ).stdout


def test_confd_starts_bird_reloads_it_and_keeps_the_last_good_config_on_refusal(
    tmp_path: Path,
) -> None:
    backend = SqliteBackend(tmp_path / "store.db", create=True)
    client = ResourceClient(backend)
    bird = BirdProcess(str(tmp_path / "confd" / "bird.cfg"), str(tmp_path / "run"))
    states: list[tuple[bool, str]] = []
    confd = Confd(
        backend, "node1", bird, on_state=lambda ready, error: states.append((ready, error))
    )
    try:
        with node_namespace("cfd", "192.0.2.11/24") as node:
            _apply(client, "Node", "node1", {"bgp": {"ipv4Address": "192.0.2.11/24"}})
            _apply(client, "Node", "node2", {"bgp": {"ipv4Address": "192.0.2.12/24"}})
            _apply(client, "IPPool", "pool", {"cidr": "10.244.0.0/16"})
            in_netns(node.path, lambda: confd.apply(confd.backend))
            pid = bird.pid()
            assert pid is not None and states[-1] == (True, "")
            assert "Mesh_192_0_2_12" in _birdc(bird, "show", "protocols")

            # A change is loaded into the same BIRD, not by restarting it.
            _apply(client, "Node", "node3", {"bgp": {"ipv4Address": "192.0.2.13/24"}})
            in_netns(node.path, lambda: confd.apply(confd.backend))
            assert bird.pid() == pid and "Mesh_192_0_2_13" in _birdc(bird, "show", "protocols")
            good = Path(bird.config).read_text()

            # AS 0 written past calicoctl's validation (an older or foreign writer): BIRD
            # refuses the config, so the running one stays and the error is reported.
            key = resource_key(resolve("Node"), "node1")
            stored = backend.get(key)
            assert stored is not None
            raw = json.loads(stored.value)
            raw["spec"]["bgp"]["asNumber"] = 0
            backend.update(key, json.dumps(raw), stored.mod_revision)
            in_netns(node.path, lambda: confd.apply(confd.backend))
            ready, error = states[-1]
            assert ready and "Local AS number must be set" in error
            assert Path(bird.config).read_text() == good
            assert bird.pid() == pid and "Mesh_192_0_2_13" in _birdc(bird, "show", "protocols")

            # Mended: the next change goes through again.
            raw["spec"]["bgp"]["asNumber"] = 64513
            stored = backend.get(key)
            assert stored is not None
            backend.update(key, json.dumps(raw), stored.mod_revision)
            in_netns(node.path, lambda: confd.apply(confd.backend))
            assert states[-1] == (True, "") and "local as 64513;" in Path(bird.config).read_text()
    finally:
        bird.stop()
        backend.close()
    assert bird.pid() is None

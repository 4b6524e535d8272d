"""Leak-freedom under abuse: ADDs killed with SIGKILL at random points, then DEL retried.

Whatever instant the plugin dies at (mid-IPAM, mid-netlink, mid-commit), a DEL for the
container must leave no address, no endpoint, no `cali*` link behind. The plugin runs in a
node namespace of the test's own, as calico-node's host would be: the host's namespace
gets nothing.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support.node_namespace import node_namespace, sh

pytestmark = pytest.mark.integration

BIN = os.path.join(os.path.dirname(sys.executable), "calico")
CALICOCTL = os.path.join(os.path.dirname(sys.executable), "calicoctl")
CYCLES = 500
KILL_SHARE = 0.1


def _links(node: str) -> set[str]:
    out = sh(node, "ip", "-o", "link", "show")
    return {line.split(": ")[1].split("@")[0] for line in out.splitlines()}


def test_killed_adds_leave_nothing_behind_after_del(tmp_path: Path) -> None:
    with node_namespace("killnode") as node:
        _stress(node.ns, tmp_path)


def _stress(node: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATASTORE_TYPE": "sqlite", "SQLITE_PATH": str(tmp_path / "store.db")}
    subprocess.run(
        [CALICOCTL, "apply", "-f", "-"],
        env=env,
        check=True,
        capture_output=True,
        input=b"apiVersion: projectcalico.org/v3\nkind: IPPool\n"
        b"metadata: {name: stress}\nspec: {cidr: 10.246.0.0/16}\n---\n"
        # Registered as calico-node would: ipam check counts blocks of unknown nodes.
        b"apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: stress-node}\n",
    )
    conf = json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "k8s-pod-network",
            "type": "calico",
            "nodename": "stress-node",
            "sqlite_path": str(tmp_path / "store.db"),
            "ipam_lock_file": str(tmp_path / "ipam.lock"),
            "ipam": {"type": "calico-ipam"},
        }
    ).encode()
    rng = random.Random(4242)
    links_before = _links(node)
    tag = uuid.uuid4().hex[:6]
    killed = 0
    for i in range(CYCLES):
        ns = f"kill-{tag}-{i}"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            cni_env = {
                "PATH": os.environ["PATH"],
                "CNI_COMMAND": "ADD",
                "CNI_CONTAINERID": uuid.uuid4().hex,
                "CNI_NETNS": f"/run/netns/{ns}",
                "CNI_IFNAME": "eth0",
                "CNI_PATH": os.path.dirname(BIN),
            }
            add = subprocess.Popen(
                ["ip", "netns", "exec", node, BIN],
                env=cni_env,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            assert add.stdin is not None
            add.stdin.write(conf)
            add.stdin.close()
            if rng.random() < KILL_SHARE:
                # Anywhere from interpreter start-up to the final datastore commit.
                time.sleep(rng.uniform(0.0, 0.25))
                add.send_signal(signal.SIGKILL)
                killed += 1
            add.wait(timeout=60)
            delete = subprocess.run(
                ["ip", "netns", "exec", node, BIN],
                env={**cni_env, "CNI_COMMAND": "DEL"},
                input=conf,
                capture_output=True,
                check=False,
            )
            assert delete.returncode == 0, delete.stdout
        finally:
            subprocess.run(["ip", "netns", "del", ns], check=False)
    assert killed > CYCLES * KILL_SHARE / 2
    check = subprocess.run(
        [CALICOCTL, "ipam", "check"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "Check complete; found 0 problems." in check
    assert "IPAM blocks record 0 allocations." in check
    weps = subprocess.run(
        [CALICOCTL, "get", "wep", "-o", "name"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert weps == ""
    assert {n for n in _links(node) - links_before if n.startswith("cali")} == set()

"""A real runtime: podman (CNI backend) starts containers on a calico + portmap conflist.

The image is a busybox-static tree imported locally; nothing is pulled from a registry.
Podman's state lives in the test's own directory and is removed afterwards. Podman runs in
a node namespace of the test's own (network namespace only), so the containers' host-side
veths, routes and portmap's rules go there, not into the host's namespace.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.node_namespace import node_namespace, sh

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("podman") is None or not os.path.exists("/bin/busybox"),
        reason="needs podman and busybox-static (installed by make setup)",
    ),
]

BIN_DIR = os.path.dirname(sys.executable)
POOL = "10.249.0.0/16"
# The sandbox's limits are lower than podman's defaults, and runc copes with hybrid cgroups.
RUN_FLAGS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


class Podman:
    def __init__(self, tmp: Path, node: str) -> None:
        self.tmp = tmp
        self.node = node
        self.store = tmp / "store.db"
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(tmp / "containers.conf"),
            "DATASTORE_TYPE": "sqlite",
            "SQLITE_PATH": str(self.store),
        }
        # podman refuses a run root path longer than 50 characters.
        self.runroot = tempfile.mkdtemp(prefix="pcpm-", dir="/tmp")
        self.base = [
            "nsenter",
            f"--net=/run/netns/{node}",
            "podman",
            "--root",
            str(tmp / "root"),
            "--runroot",
            self.runroot,
            "--storage-driver",
            "vfs",
            "--runtime",
            shutil.which("runc") or "runc",
        ]

    def __call__(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(
            [*self.base, *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed: {out.stderr}")
        return out.stdout

    def calicoctl(self, *args: str, stdin: str | None = None) -> str:
        return subprocess.run(
            [os.path.join(BIN_DIR, "calicoctl"), *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
        ).stdout


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[Podman]:
    from pycalico.cni.install import install

    rootfs = tmp_path / "rootfs" / "bin"
    rootfs.mkdir(parents=True)
    shutil.copy("/bin/busybox", rootfs / "busybox")
    for applet in ("sh", "ip", "ping", "sleep"):
        (rootfs / applet).symlink_to("busybox")
    install(str(tmp_path / "bin"), str(tmp_path / "agent.sock"))
    (tmp_path / "net.d").mkdir()
    (tmp_path / "containers.conf").write_text(
        '[network]\nnetwork_backend = "cni"\n'
        f'cni_plugin_dirs = ["{tmp_path / "bin"}", "/usr/lib/cni"]\n'
        f'network_config_dir = "{tmp_path / "net.d"}"\n'
        '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
    )
    conflist = {
        "cniVersion": "0.4.0",
        "name": "calico-podman",
        "plugins": [
            {
                "type": "calico",
                "nodename": "podman-node",
                "sqlite_path": str(tmp_path / "store.db"),
                "ipam_lock_file": str(tmp_path / "ipam.lock"),
                "mtu": 1450,
                "ipam": {"type": "calico-ipam"},
            },
            {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
        ],
    }
    (tmp_path / "net.d" / "calico-podman.conflist").write_text(json.dumps(conflist))
    with node_namespace("pmnode", gateway="192.0.2.1") as node:
        yield from _podman(tmp_path, node.ns)


def _podman(tmp_path: Path, node: str) -> Iterator[Podman]:
    p = Podman(tmp_path, node)
    try:
        p.calicoctl(
            "apply",
            "-f",
            "-",
            stdin="apiVersion: projectcalico.org/v3\nkind: IPPool\n"
            f"metadata: {{name: podman}}\nspec: {{cidr: {POOL}}}\n---\n"
            # Registered as calico-node would: ipam check counts blocks of unknown nodes.
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: podman-node}\n",
        )
        archive = subprocess.run(
            ["tar", "-C", str(tmp_path / "rootfs"), "-c", "."], capture_output=True, check=True
        ).stdout
        imported = subprocess.run(
            [*p.base, "import", "-", "localhost/pycalico-busybox:test"],
            env=p.env,
            input=archive,
            capture_output=True,
            check=False,
        )
        assert imported.returncode == 0, imported.stderr.decode()
        yield p
    finally:
        p("rm", "-af", "-t", "0", check=False)
        p("rmi", "-af", check=False)
        shutil.rmtree(tmp_path / "root", ignore_errors=True)
        shutil.rmtree(p.runroot, ignore_errors=True)


def test_podman_containers_get_pool_addresses_talk_and_release_them_on_rm(podman: Podman) -> None:
    for name in ("web", "client"):
        podman(
            "run",
            "-d",
            *RUN_FLAGS,
            "--name",
            name,
            "--network",
            "calico-podman",
            "localhost/pycalico-busybox:test",
            "sleep",
            "300",
        )
    addresses = {}
    for name in ("web", "client"):
        text = podman("exec", name, "ip", "-4", "addr", "show", "eth0")
        [addresses[name]] = re.findall(r"inet (10\.249\.\d+\.\d+)/32", text)
        routes = podman("exec", name, "ip", "route")
        assert "default via 169.254.1.1 dev eth0" in routes
    assert addresses["web"] != addresses["client"]
    host_side = sh(podman.node, "ip", "route")
    assert all(f"{a} dev cali" in host_side for a in addresses.values())
    podman("exec", "client", "ping", "-c1", "-W2", addresses["web"])
    weps = podman.calicoctl("get", "wep", "-o", "json")
    assert sorted(
        json.loads(weps)["items"][i]["spec"]["ipNetworks"][0] for i in range(2)
    ) == sorted(f"{a}/32" for a in addresses.values())
    podman("rm", "-f", "-t", "0", "web", "client")
    assert "Check complete; found 0 problems." in podman.calicoctl("ipam", "check")
    assert "| 0 (0%)" in podman.calicoctl("ipam", "show")
    assert podman.calicoctl("get", "wep", "-o", "name") == ""

"""libcni, the library podman, containerd and CRI-O call plugins through, drives pycalico.

A small client (tests/support/libcni_client, built offline against Debian's libcni) plays
the runtime: ADD, CHECK and DEL of a conflist, run in the node's network namespace and in
the test's own mount namespace, with pods' namespaces made under /run/netns as runtimes
make them. calico-node runs in the same node, in each of the mount-namespace placements of
tests.support.runtimes, and the shims reach it through its agent, or run the plugin
in-process when no agent listens.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import runtimes
from tests.support.node_namespace import bare_namespace, sh

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        runtimes.libcni_client_missing() is not None,
        reason=str(runtimes.libcni_client_missing()),
    ),
]

POOL = "10.246.0.0/16"
NETWORK = "libcni-net"


@pytest.fixture(scope="session")
def libcni_client() -> Path:
    return runtimes.build_libcni_client()


@pytest.fixture(scope="module", params=runtimes.PLACEMENTS)
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[runtimes.CalicoNode]:
    tmp = tmp_path_factory.mktemp(f"libcni-{request.param}")
    with runtimes.calico_node(tmp, request.param, POOL, "lcnode") as n:
        yield n


class Runtime:
    """The libcni client as a runtime on `node`, calling the shims in `bin_dir`."""

    def __init__(self, client: Path, node: runtimes.CalicoNode, bin_dir: Path) -> None:
        self.client, self.node = client, node
        self.conflist = node.tmp / f"{bin_dir.name}.conflist"
        self.conflist.write_text(
            json.dumps({"cniVersion": "1.0.0", "name": NETWORK, "plugins": [node.plugin_conf()]})
        )
        self.env = {
            **os.environ,
            "CNI_PATH": str(bin_dir),
            "CNI_CACHE_DIR": str(node.tmp / "cni-cache"),
        }

    def __call__(
        self, command: str, container: str, netns: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *runtimes.in_node(self.node.ns),
                str(self.client),
                command,
                str(self.conflist),
                container,
                f"/run/netns/{netns}",
            ],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,  # only turns a hang into a failure
        )

    def add(self, container: str, netns: str) -> dict[str, Any]:
        out = self("ADD", container, netns)
        assert out.returncode == 0, f"libcni ADD failed: {out.stderr}"
        return json.loads(out.stdout)


@pytest.mark.parametrize("path", ["agent", "in-process"])
def test_libcni_add_check_del_wires_pods_that_talk_and_leaves_nothing(
    libcni_client: Path, node: runtimes.CalicoNode, path: str
) -> None:
    bin_dir = node.bin_dir if path == "agent" else node.solo_bin_dir
    runtime = Runtime(libcni_client, node, bin_dir)
    pods = {f"{path}-{name}-{uuid.uuid4().hex}": name for name in ("a", "b")}
    results: dict[str, dict[str, Any]] = {}
    with bare_namespace("lcpod") as ns_a, bare_namespace("lcpod") as ns_b:
        netns = dict(zip(pods, (ns_a, ns_b), strict=True))
        try:
            for container, ns in netns.items():
                results[container] = runtime.add(container, ns)
            addresses = {}
            for container, result in results.items():
                [ip] = [i["address"] for i in result["ips"]]
                assert ip.endswith("/32") and ip.startswith("10.246.")
                addresses[container] = ip.split("/")[0]
                host_if = result["interfaces"][0]["name"]
                assert host_if.startswith("cali")
                pod_if = json.loads(
                    subprocess.run(
                        ["ip", "-n", netns[container], "-j", "addr", "show", "eth0"],
                        capture_output=True,
                        check=True,
                    ).stdout
                )[0]
                assert f"{addresses[container]}/32" in {
                    f"{a['local']}/{a['prefixlen']}" for a in pod_if["addr_info"]
                }
                assert node.address_in_use(addresses[container])
                node.wait_programmed(host_if)
                check = runtime("CHECK", container, netns[container])
                assert check.returncode == 0, f"libcni CHECK failed: {check.stderr}"
            a, b = pods
            sh(netns[a], "ping", "-c1", "-W2", addresses[b])
            for container in pods:
                out = runtime("DEL", container, netns[container])
                assert out.returncode == 0, f"libcni DEL failed: {out.stderr}"
        finally:
            for container, ns in netns.items():
                if container in results:
                    runtime("DEL", container, ns)
    for container, result in results.items():
        host_if = result["interfaces"][0]["name"]
        assert node.on_node("ip", "link", "show", host_if, check=False) == ""
        assert not node.address_in_use(addresses[container])
    assert node.calicoctl("get", "wep", "-o", "name") == ""
    # The node's own VXLAN tunnel address is the one left in use.
    assert "found 0 problems" in node.calicoctl("ipam", "check")

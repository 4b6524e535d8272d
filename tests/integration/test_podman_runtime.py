"""A real runtime: podman (CNI backend) starts containers on pycalico's network.

The image is a busybox-static tree imported locally; nothing is pulled from a registry.
Podman's state, configuration and network config dir live in the test's own directories
and are removed afterwards. Podman runs in a node namespace of the test's own (network
namespace only), so the containers' host-side veths, routes and portmap's rules go there,
not into the host's namespace.

First the plugin in-process (no agent listening, no calico-node), chained with portmap;
then through calico-node's agent, with calico-node in each mount-namespace placement of
tests.support.runtimes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import runtimes
from tests.support.node_namespace import node_namespace, sh

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        runtimes.podman_missing() is not None, reason=str(runtimes.podman_missing())
    ),
]

POOL = "10.249.0.0/16"
NODE_POOL = "10.248.0.0/16"


def _addresses(podman: runtimes.Podman, names: tuple[str, ...], pool: str) -> dict[str, str]:
    prefix = re.escape(pool.split(".0.0/")[0])
    addresses = {}
    for name in names:
        text = podman("exec", name, "ip", "-4", "addr", "show", "eth0")
        [addresses[name]] = re.findall(rf"inet ({prefix}\.\d+\.\d+)/32", text)
        assert "default via 169.254.1.1 dev eth0" in podman("exec", name, "ip", "route")
    assert len(set(addresses.values())) == len(names)
    return addresses


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[runtimes.Podman]:
    from pycalico.cni.install import install

    store = tmp_path / "store.db"
    # Nothing listens on this socket: the shims run the plugin in-process.
    install(str(tmp_path / "bin"), str(tmp_path / "agent.sock"))
    with node_namespace("pmnode", gateway="192.0.2.1") as node:
        runtimes.calicoctl(
            store,
            "apply",
            "-f",
            "-",
            stdin="apiVersion: projectcalico.org/v3\nkind: IPPool\n"
            f"metadata: {{name: podman}}\nspec: {{cidr: {POOL}}}\n---\n"
            # Registered as calico-node would: ipam check counts blocks of unknown nodes.
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: podman-node}\n",
        )
        with runtimes.podman(tmp_path, node.ns, [tmp_path / "bin"]) as p:
            p.network(
                "calico-podman",
                [
                    {
                        "type": "calico",
                        "nodename": "podman-node",
                        "sqlite_path": str(store),
                        "ipam_lock_file": str(tmp_path / "ipam.lock"),
                        "mtu": 1450,
                        "ipam": {"type": "calico-ipam"},
                    },
                    {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
                ],
            )
            yield p


def test_podman_containers_get_pool_addresses_talk_and_release_them_on_rm(
    podman: runtimes.Podman,
) -> None:
    store = podman.tmp / "store.db"
    for name in ("web", "client"):
        podman.run_detached(name, "calico-podman")
    addresses = _addresses(podman, ("web", "client"), POOL)
    host_side = sh(podman.node, "ip", "route")
    assert all(f"{a} dev cali" in host_side for a in addresses.values())
    podman("exec", "client", "ping", "-c1", "-W2", addresses["web"])
    weps = runtimes.calicoctl(store, "get", "wep", "-o", "json")
    assert sorted(
        json.loads(weps)["items"][i]["spec"]["ipNetworks"][0] for i in range(2)
    ) == sorted(f"{a}/32" for a in addresses.values())
    podman("rm", "-f", "-t", "0", "web", "client")
    assert "Check complete; found 0 problems." in runtimes.calicoctl(store, "ipam", "check")
    assert "| 0 (0%)" in runtimes.calicoctl(store, "ipam", "show")
    assert runtimes.calicoctl(store, "get", "wep", "-o", "name") == ""


@pytest.fixture(scope="module", params=runtimes.PLACEMENTS)
def node_podman(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[runtimes.CalicoNode, runtimes.Podman]]:
    tmp = tmp_path_factory.mktemp(f"podman-{request.param}")
    with (
        runtimes.calico_node(tmp, request.param, NODE_POOL, "pmcn") as node,
        runtimes.podman(tmp / "podman", node.ns, [node.bin_dir]) as p,
    ):
        p.network("calico-agent", [node.plugin_conf()])
        yield node, p


def test_podman_containers_through_calico_nodes_agent_talk_and_are_released(
    node_podman: tuple[runtimes.CalicoNode, runtimes.Podman],
) -> None:
    node, podman = node_podman
    names = ("server", "caller")
    try:
        for name in names:
            podman.run_detached(name, "calico-agent")
        addresses = _addresses(podman, names, NODE_POOL)
        weps = json.loads(node.calicoctl("get", "wep", "-o", "json"))["items"]
        assert len(weps) == 2
        for wep in weps:
            node.wait_programmed(wep["spec"]["interfaceName"])
        podman("exec", "caller", "ping", "-c1", "-W2", addresses["server"])
        podman("rm", "-f", "-t", "0", *names)
    finally:
        podman("rm", "-f", "-t", "0", *names, check=False)
    for wep in weps:
        assert node.on_node("ip", "link", "show", wep["spec"]["interfaceName"], check=False) == ""
    assert not any(node.address_in_use(a) for a in addresses.values())
    assert node.calicoctl("get", "wep", "-o", "name") == ""
    assert "found 0 problems" in node.calicoctl("ipam", "check")

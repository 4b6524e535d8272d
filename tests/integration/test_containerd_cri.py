"""containerd's CRI (what the kubelet talks to) makes pod sandboxes on pycalico's network.

A CRI client made from the runtime.v1 definitions that the PyPI package
container-runtime-interface-api ships (generated gRPC stubs) calls RunPodSandbox,
PodSandboxStatus, StopPodSandbox and RemovePodSandbox on Debian's containerd, which runs
with its root, state, sockets and CNI config in the test's own directories, in a node
namespace of the test's own (network only). Its sandbox image is a busybox-static tree
imported from an OCI archive made by the test: nothing is pulled. calico-node runs in the
same node, in each mount-namespace placement of tests.support.runtimes.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from tests.support import runtimes

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        runtimes.containerd_missing() is not None, reason=str(runtimes.containerd_missing())
    ),
]

POOL = "10.245.0.0/16"
NETWORK = "k8s-pod-network"


@pytest.fixture(scope="module", params=runtimes.PLACEMENTS)
def node_cri(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[runtimes.CalicoNode, runtimes.Containerd]]:
    tmp = tmp_path_factory.mktemp(f"cri-{request.param}")
    with runtimes.calico_node(tmp, request.param, POOL, "crin") as node:
        network = {"name": NETWORK, "plugins": [node.plugin_conf()]}
        with runtimes.containerd(tmp / "containerd", node.ns, node.bin_dir, network) as cri:
            yield node, cri


def test_cri_pod_sandboxes_get_addresses_talk_and_are_released(
    node_cri: tuple[runtimes.CalicoNode, runtimes.Containerd],
) -> None:
    node, cri = node_cri
    pods = {}
    for name in ("front", "back"):
        sandbox = cri.run_pod(name)
        pods[name] = (sandbox, *cri.pod_status(sandbox))
    addresses = {name: ip for name, (_, ip, _) in pods.items()}
    assert len(set(addresses.values())) == 2
    assert all(ip.startswith("10.245.") for ip in addresses.values())
    weps = json.loads(node.calicoctl("get", "wep", "-o", "json"))["items"]
    assert sorted(w["metadata"]["labels"]["projectcalico.org/orchestrator"] for w in weps) == [
        "k8s",
        "k8s",
    ]
    for wep in weps:
        node.wait_programmed(wep["spec"]["interfaceName"])
    _, _, front_netns = pods["front"]
    subprocess.run(
        ["nsenter", f"--net={front_netns}", "ping", "-c1", "-W2", addresses["back"]],
        capture_output=True,
        check=True,
    )
    for sandbox, _, _ in pods.values():
        cri.remove_pod(sandbox)
    for wep in weps:
        assert node.on_node("ip", "link", "show", wep["spec"]["interfaceName"], check=False) == ""
    assert not any(node.address_in_use(ip) for ip in addresses.values())
    assert node.calicoctl("get", "wep", "-o", "name") == ""
    assert "found 0 problems" in node.calicoctl("ipam", "check")

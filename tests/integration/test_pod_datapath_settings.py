"""The pod's datapath settings against the real kernel: veth queues and offloads, vxlan.calico.

A pod is wired by `dataplane.wire` inside a node namespace that also holds `vxlan.calico`
made by the Felix device manager, then the kernel's view of every device on the pod's path
is read back. Calico's conventions: one tx/rx queue per veth end (`num_queues` default 1),
the kernel's default UDP checksum on the VXLAN device, and no offload turned off — with
segmentation, checksum and GRO left on, a pod's 64 KB TCP segments cross the veth, the
routing step and the VXLAN encapsulation without being cut into MTU-sized packets.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.node_namespace import NodeNamespace, node_namespace, sh

pytestmark = pytest.mark.integration

HOST_IF = "calitest0dp000"
WIRE = """
import ipaddress, sys
from pyroute2 import IPRoute
from pycalico.cni.dataplane import pod_netns, wire
from pycalico.felix.calc.desired import VxlanSpec
from pycalico.felix.dataplane.vxlan import ensure

spec = VxlanSpec(4096, 4789, "192.0.2.11", "eth0", "66:f9:37:c3:7e:94", 1450, "10.244.1.0")
with IPRoute() as ipr:
    ensure(ipr, spec)
pod = pod_netns(sys.argv[1])
wire(pod, sys.argv[1], "eth0", sys.argv[2], [ipaddress.ip_interface("10.244.1.5/32")], 1450)
"""
FEATURES = """
import json, sys
from pyroute2 import Ethtool
with Ethtool() as e:
    f = e.get_features(sys.argv[1])
    print(json.dumps({name: x.enable for name, x in f.features.items() if name}))
"""
# What keeps a TSO segment whole from the pod's socket to the underlay.
SEGMENT_WHOLE = (
    "tx-scatter-gather",
    "tx-checksum-ip-generic",
    "tx-generic-segmentation",
    "tx-tcp-segmentation",
)


def features(ns: str, dev: str) -> dict[str, bool]:
    out = sh(ns, sys.executable, "-c", FEATURES, dev)
    return json.loads(out)  # type: ignore[no-any-return]


def link(ns: str, dev: str) -> dict[str, Any]:
    return json.loads(sh(ns, "ip", "-j", "-d", "link", "show", "dev", dev))[0]  # type: ignore[no-any-return]


@pytest.fixture
def wired() -> Iterator[tuple[NodeNamespace, str]]:
    pod = f"dppod-{uuid.uuid4().hex[:6]}"
    with node_namespace("dpnode", gateway="192.0.2.1") as node:
        subprocess.run(["ip", "netns", "add", pod], check=True)
        try:
            sh(node.ns, sys.executable, "-c", WIRE, f"/run/netns/{pod}", HOST_IF)
            yield node, pod
        finally:
            subprocess.run(["ip", "netns", "del", pod], check=False)


def test_both_veth_ends_have_one_queue_as_calico_makes_them(
    wired: tuple[NodeNamespace, str],
) -> None:
    node, pod = wired
    for ns, dev in ((node.ns, HOST_IF), (pod, "eth0")):
        got = link(ns, dev)
        assert (got["num_tx_queues"], got["num_rx_queues"], got["mtu"]) == (1, 1, 1450)


def test_no_offload_is_turned_off_on_the_pod_path(wired: tuple[NodeNamespace, str]) -> None:
    node, pod = wired
    for ns, dev in ((pod, "eth0"), (node.ns, HOST_IF), (node.ns, "vxlan.calico")):
        got = features(ns, dev)
        assert {name: got[name] for name in SEGMENT_WHOLE} == dict.fromkeys(SEGMENT_WHOLE, True)
    # The tunnel re-assembles what arrives in pieces; the kernel default, kept.
    assert features(node.ns, "vxlan.calico")["rx-gro"] is True


def test_vxlan_keeps_the_kernel_default_udp_checksum(wired: tuple[NodeNamespace, str]) -> None:
    node, _ = wired
    data = link(node.ns, "vxlan.calico")["linkinfo"]["info_data"]
    assert data["udp_csum"] is True and data["learning"] is False

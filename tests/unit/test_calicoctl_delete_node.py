"""`calicoctl delete node NAME` releases what the node held, as Calico's client does: its
workloads' and tunnels' addresses, its WorkloadEndpoints, its blocks, its BGPPeers and
per-node configuration; what other nodes hold stays."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from pycalico.api.registry import resolve
from pycalico.datastore.resources import ResourceClient
from pycalico.datastore.sqlite import SqliteBackend
from pycalico.ipam import keys
from pycalico.ipam.allocator import Allocator
from tests.support.calicoctl_harness import InProcess

V3 = "apiVersion: projectcalico.org/v3\n"


def wep(node: str, name: str, ip: str) -> str:
    return (
        f"{V3}kind: WorkloadEndpoint\n"
        f"metadata: {{name: {node}-cni-{name}-eth0, namespace: default}}\n"
        f"spec: {{node: {node}, ipNetworks: ['{ip}/32'], interfaceName: cali{name}}}\n"
    )


@pytest.fixture
def store(ctl: InProcess) -> Iterator[tuple[Allocator, ResourceClient]]:
    ctl.ok(
        "apply",
        "-f",
        "-",
        stdin=f"{V3}kind: IPPool\nmetadata: {{name: p}}\nspec: {{cidr: 10.244.0.0/16}}\n---\n"
        f"{V3}kind: Node\nmetadata: {{name: n1}}\nspec: {{}}\n---\n"
        f"{V3}kind: Node\nmetadata: {{name: n2}}\nspec: {{}}\n",
    )
    with SqliteBackend(ctl.store) as backend:
        yield Allocator(backend), ResourceClient(backend)


def names(client: ResourceClient, kind: str) -> list[str]:
    return sorted(r["metadata"]["name"] for r in client.list(resolve(kind))[0])


def in_use(alloc: Allocator) -> dict[str, int]:
    return {str(b.cidr): b.in_use() for b in alloc.blocks()}


def test_delete_node_releases_its_addresses_blocks_endpoints_and_per_node_config(
    ctl: InProcess, store: tuple[Allocator, ResourceClient]
) -> None:
    alloc, client = store
    [tunnel] = alloc.auto_assign(1, 4, "vxlan-tunnel-addr-n1", {"node": "n1"}, "n1")
    [pod1] = alloc.auto_assign(1, 4, "k8s-pod-network.c1", {"node": "n1"}, "n1")
    [pod2] = alloc.auto_assign(1, 4, "k8s-pod-network.c2", {"node": "n2"}, "n2")
    # n1 claims a second block, and n2's pod borrows an address of it: that stays.
    pod3 = alloc.assign_ip(
        ipaddress.ip_address("10.244.200.1"), "k8s-pod-network.c3", {"node": "n1"}, "n1"
    )
    borrowed = alloc.assign_ip(
        ipaddress.ip_address("10.244.200.2"), "k8s-pod-network.c4", {"node": "n2"}, "n2"
    )
    ctl.ok(
        "apply",
        "-f",
        "-",
        stdin=f"{V3}kind: Node\nmetadata: {{name: n1}}\n"
        f"spec: {{ipv4VXLANTunnelAddr: {tunnel.ip}}}\n---\n"
        + wep("n1", "c1", str(pod1.ip))
        + "---\n"
        + wep("n2", "c2", str(pod2.ip))
        + "---\n"
        + wep("n1", "c3", str(pod3.ip))
        + "---\n"
        + f"{V3}kind: BGPPeer\nmetadata: {{name: n1-tor}}\n"
        "spec: {node: n1, peerIP: 192.0.2.1, asNumber: 64512}\n---\n"
        f"{V3}kind: BGPPeer\nmetadata: {{name: global-tor}}\n"
        "spec: {peerIP: 192.0.2.2, asNumber: 64512}\n---\n"
        f"{V3}kind: FelixConfiguration\nmetadata: {{name: node.n1}}\nspec: {{}}\n---\n"
        f"{V3}kind: FelixConfiguration\nmetadata: {{name: node.n2}}\nspec: {{}}\n---\n"
        f"{V3}kind: BGPConfiguration\nmetadata: {{name: node.n1}}\nspec: {{}}\n",
    )
    n1_block = str(pod1.network)
    n2_block = str(pod2.network)
    assert in_use(alloc) == {n1_block: 2, n2_block: 1, str(borrowed.network): 2}

    assert ctl.run("delete", "node", "n1").out == "Successfully deleted 1 'Node' resource(s)\n"

    assert names(client, "Node") == ["n2"]
    assert names(client, "WorkloadEndpoint") == ["n2-cni-c2-eth0"]
    assert names(client, "BGPPeer") == ["global-tor"]
    assert names(client, "FelixConfiguration") == ["node.n2"]
    assert names(client, "BGPConfiguration") == []
    # n1's own block was emptied and went with its affinity; n2's addresses are all kept.
    assert in_use(alloc) == {n2_block: 1, str(borrowed.network): 1}
    assert [h for h, _ in alloc.affinities()] == ["n2"]
    assert alloc.addresses_of_handle("k8s-pod-network.c4") == [borrowed]
    assert alloc.addresses_of_handle("vxlan-tunnel-addr-n1") == []
    assert client.backend.get(keys.handle_key("k8s-pod-network.c1")) is None


def test_delete_node_cleans_up_after_a_node_already_gone_and_reports_it_not_found(
    ctl: InProcess, store: tuple[Allocator, ResourceClient]
) -> None:
    alloc, client = store
    [pod] = alloc.auto_assign(1, 4, "k8s-pod-network.c1", {"node": "gone"}, "gone")
    ctl.ok("apply", "-f", "-", stdin=wep("gone", "c1", str(pod.ip)))
    rc, _, err = ctl.run("delete", "node", "gone")
    assert rc == 1
    assert err == (
        "Failed to delete 'Node' resource: resource does not exist: Node(gone) "
        "with error: not found\n"
    )
    assert names(client, "WorkloadEndpoint") == []
    assert alloc.blocks() == [] and alloc.affinities() == []


def test_delete_node_at_a_stale_version_changes_nothing(
    ctl: InProcess, store: tuple[Allocator, ResourceClient]
) -> None:
    alloc, client = store
    [pod] = alloc.auto_assign(1, 4, "k8s-pod-network.c1", {"node": "n1"}, "n1")
    ctl.ok("apply", "-f", "-", stdin=wep("n1", "c1", str(pod.ip)))
    node = client.get(resolve("Node"), "n1")
    assert node is not None
    stale = int(node["metadata"]["resourceVersion"]) - 1
    rc, _, err = ctl.run(
        "delete",
        "-f",
        "-",
        stdin=f"{V3}kind: Node\nmetadata: {{name: n1, resourceVersion: '{stale}'}}\n",
    )
    assert rc == 1 and "update conflict" in err.lower()
    assert names(client, "Node") == ["n1", "n2"]
    assert names(client, "WorkloadEndpoint") == ["n1-cni-c1-eth0"]
    assert alloc.addresses_of_handle("k8s-pod-network.c1") == [pod]
    assert ipaddress.ip_network(str(pod.network)) in [c for _, c in alloc.affinities()]

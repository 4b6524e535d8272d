"""kube-controllers' automatic host endpoints: what the node controller keeps, and the
controller process's apply against a real SQLite store."""

from __future__ import annotations

from typing import Any

from pycalico.api.registry import resolve
from pycalico.datastore.mirror import Mirror
from pycalico.datastore.resources import ResourceClient
from pycalico.kube import auto_host_endpoints as auto
from pycalico.kube.controllers import AutoHostEndpointController
from tests.support.resources import normalized

ENABLED = {"controllers": {"node": {"hostEndpoint": {"autoCreate": "Enabled"}}}}
NODE1_SPEC = {
    "bgp": {
        "ipv4Address": "192.0.2.11/24",
        "ipv6Address": "2001:db8::11/64",
        "ipv4IPIPTunnelAddr": "10.244.1.1",
    },
    "ipv4VXLANTunnelAddr": "10.244.1.0",
    "wireguard": {"interfaceIPv4Address": "10.244.1.1"},
    "addresses": [
        {"address": "192.0.2.11", "type": "InternalIP"},
        {"address": "198.51.100.11", "type": "InternalIP"},
        {"address": "203.0.113.11", "type": "ExternalIP"},
    ],
}


def _node(name: str, spec: dict[str, Any], **labels: str) -> dict[str, Any]:
    return normalized("Node", name, spec, labels=labels or None)


def test_the_automatic_endpoint_is_kube_controllers_own_for_the_node() -> None:
    node = _node("node1", NODE1_SPEC, **{"kubernetes.io/hostname": "node1"})
    assert auto.host_endpoint(node) == {
        "apiVersion": "projectcalico.org/v3",
        "kind": "HostEndpoint",
        "metadata": {
            "name": "node1-auto-hep",
            "labels": {
                "kubernetes.io/hostname": "node1",
                "projectcalico.org/created-by": "calico-kube-controllers",
            },
        },
        "spec": {
            "node": "node1",
            "interfaceName": "*",
            # BGP v4, v6, the tunnels' (IPIP and WireGuard share one), InternalIPs: each once.
            "expectedIPs": [
                "192.0.2.11",
                "2001:db8::11",
                "10.244.1.1",
                "10.244.1.0",
                "198.51.100.11",
            ],
            "profiles": ["projectcalico-default-allow"],
        },
    }


def test_auto_creation_is_off_unless_enabled_with_the_default_endpoint() -> None:
    assert not auto.enabled(None)
    assert not auto.enabled({"controllers": {}})  # no node controller at all
    assert not auto.enabled({"controllers": {"node": {"hostEndpoint": {"autoCreate": "Disabled"}}}})
    assert auto.enabled(ENABLED)
    templates_only = {
        "controllers": {
            "node": {
                "hostEndpoint": {"autoCreate": "Enabled", "createDefaultHostEndpoint": "Disabled"}
            }
        }
    }
    assert not auto.enabled(templates_only)


def test_reconcile_creates_updates_and_deletes_only_automatic_endpoints() -> None:
    nodes = [_node("node1", NODE1_SPEC, rack="a"), _node("node2", {})]
    stale = auto.host_endpoint(_node("node1", NODE1_SPEC, rack="b"))
    gone = auto.host_endpoint(_node("node9", {}))
    own = normalized("HostEndpoint", "mine", {"node": "node1", "interfaceName": "eth0"})
    changes = auto.reconcile(ENABLED, nodes, [stale, gone, own])
    assert [h["metadata"]["name"] for h in changes.create] == ["node2-auto-hep"]
    assert [h["metadata"]["labels"]["rack"] for h in changes.update] == ["a"]
    assert changes.delete == ("node9-auto-hep",)
    # Switched off: every automatic endpoint goes, a hand-made one stays.
    off = auto.reconcile({"controllers": {"node": {}}}, nodes, [stale, gone, own])
    assert (off.create, off.update, off.delete) == ((), (), ("node1-auto-hep", "node9-auto-hep"))
    same = auto.reconcile(ENABLED, nodes[:1], [auto.host_endpoint(nodes[0])])
    assert not same


def _apply(client: ResourceClient) -> None:
    mirror = Mirror("/calico/")
    mirror.load(client.backend)
    AutoHostEndpointController(client.backend).apply(mirror)


def test_the_controller_creates_its_configuration_then_follows_it(client: ResourceClient) -> None:
    client.apply(resolve("Node"), _node("node1", NODE1_SPEC))
    _apply(client)
    config = client.get(resolve("KubeControllersConfiguration"), "default")
    assert config is not None  # as kube-controllers makes it: auto-creation off
    assert config["spec"]["controllers"]["node"]["hostEndpoint"]["autoCreate"] == "Disabled"
    assert client.list(resolve("HostEndpoint"))[0] == []

    config["spec"]["controllers"]["node"]["hostEndpoint"]["autoCreate"] = "Enabled"
    client.update(resolve("KubeControllersConfiguration"), config)
    _apply(client)
    hep = client.get(resolve("HostEndpoint"), "node1-auto-hep")
    assert hep is not None and hep["spec"]["interfaceName"] == "*"

    # The node's labels change: the endpoint's follow, keeping its identity.
    node = client.get(resolve("Node"), "node1")
    assert node is not None
    client.update(resolve("Node"), {**node, "metadata": {**node["metadata"], "labels": {"x": "1"}}})
    _apply(client)
    relabelled = client.get(resolve("HostEndpoint"), "node1-auto-hep")
    assert relabelled is not None and relabelled["metadata"]["labels"]["x"] == "1"
    assert relabelled["metadata"]["uid"] == hep["metadata"]["uid"]

    client.delete(resolve("Node"), "node1")
    _apply(client)
    assert client.get(resolve("HostEndpoint"), "node1-auto-hep") is None

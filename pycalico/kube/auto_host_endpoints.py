"""kube-controllers' automatic host endpoints (pure): which HostEndpoints the node controller
keeps, given KubeControllersConfiguration `default` and the Nodes, and the changes that take
the datastore there (reference host-protection.md §8; kube-controllers' hostendpoints.go).

With `spec.controllers.node.hostEndpoint.autoCreate: Enabled` and `createDefaultHostEndpoint`
not `Disabled`, every Node has `<node>-auto-hep`: interface `*`, the node's addresses as
expectedIPs (BGP IPv4 and IPv6, the IPIP, VXLAN and WireGuard tunnel addresses, then its
InternalIP addresses, each once), its labels plus `projectcalico.org/created-by:
calico-kube-controllers`, and profile `projectcalico-default-allow`, so it allows everything
until a policy selects it. An automatic endpoint is known by that label alone: one whose node
is gone, or every one once auto-creation is off, is deleted. Templates (`templates[]`) are
not acted on (api.enforcement warns of them).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

CREATED_BY = "projectcalico.org/created-by"
CONTROLLER = "calico-kube-controllers"
DEFAULT_ALLOW = "projectcalico-default-allow"
_SUFFIX = "-auto-hep"


def enabled(config_spec: Mapping[str, Any] | None) -> bool:
    """Whether the node controller makes each node's `*` endpoint. No `node` controller in
    the configuration means it is off, as in Calico."""
    node = ((config_spec or {}).get("controllers") or {}).get("node")
    if node is None:
        return False
    hep = node.get("hostEndpoint") or {}
    return bool(
        hep.get("autoCreate") == "Enabled" and hep.get("createDefaultHostEndpoint") != "Disabled"
    )


def name_for(node: str) -> str:
    return f"{node}{_SUFFIX}"


def is_automatic(hep: Mapping[str, Any]) -> bool:
    return (hep.get("metadata") or {}).get("labels", {}).get(CREATED_BY) == CONTROLLER


def expected_ips(node: Mapping[str, Any]) -> list[str]:
    spec = node.get("spec") or {}
    bgp = spec.get("bgp") or {}
    wireguard = spec.get("wireguard") or {}
    found: list[str] = []
    for value in (
        bgp.get("ipv4Address"),
        bgp.get("ipv6Address"),
        bgp.get("ipv4IPIPTunnelAddr"),
        spec.get("ipv4VXLANTunnelAddr"),
        spec.get("ipv6VXLANTunnelAddr"),
        wireguard.get("interfaceIPv4Address"),
        wireguard.get("interfaceIPv6Address"),
        *(a.get("address") for a in spec.get("addresses", []) if a.get("type") == "InternalIP"),
    ):
        if value:
            address = str(ipaddress.ip_interface(value).ip)
            if address not in found:
                found.append(address)
    return found


def host_endpoint(node: Mapping[str, Any]) -> dict[str, Any]:
    meta = node["metadata"]
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "HostEndpoint",
        "metadata": {
            "name": name_for(meta["name"]),
            "labels": {**meta.get("labels", {}), CREATED_BY: CONTROLLER},
        },
        "spec": {
            "node": meta["name"],
            "interfaceName": "*",
            "expectedIPs": expected_ips(node),
            "profiles": [DEFAULT_ALLOW],
        },
    }


@dataclass(frozen=True)
class Changes:
    create: tuple[dict[str, Any], ...] = ()
    update: tuple[dict[str, Any], ...] = ()  # wanted content; the caller keeps the version
    delete: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.create or self.update or self.delete)


def _differs(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """hostendpointNeedsUpdate: labels, expectedIPs or the interface (a profile edited by
    hand is left alone, as kube-controllers leaves it)."""
    now, want = current.get("spec") or {}, wanted["spec"]
    return (
        (current.get("metadata") or {}).get("labels", {}) != wanted["metadata"]["labels"]
        or now.get("expectedIPs", []) != want["expectedIPs"]
        or now.get("interfaceName", "") != want["interfaceName"]
    )


def reconcile(
    config_spec: Mapping[str, Any] | None,
    nodes: Iterable[Mapping[str, Any]],
    host_endpoints: Iterable[Mapping[str, Any]],
) -> Changes:
    """What to create, update and delete so that the automatic endpoints are as wanted."""
    wanted = {}
    if enabled(config_spec):
        wanted = {name_for(n["metadata"]["name"]): host_endpoint(n) for n in nodes}
    current = {h["metadata"]["name"]: h for h in host_endpoints}
    create, update = [], []
    for name, hep in sorted(wanted.items()):
        have = current.get(name)
        if have is None:
            create.append(hep)
        elif _differs(have, hep):
            update.append(hep)
    delete = sorted(
        name for name, hep in current.items() if is_automatic(hep) and name not in wanted
    )
    return Changes(tuple(create), tuple(update), tuple(delete))

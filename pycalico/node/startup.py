"""calico-node startup: who this node is, its address, and the cluster objects it ensures.

Follows Calico's startup (reference routing-and-encap.md §9): node name, node IP by the
`IP`/`IP_AUTODETECTION_METHOD` rules, the Node resource, ClusterInformation, the global
FelixConfiguration, the default tiers, the default pool, and the nodename file the CNI
plugin reads.
"""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pycalico import __version__
from pycalico.api import checks
from pycalico.api.registry import resolve
from pycalico.api.resource import normalize
from pycalico.atomic_file import write_text
from pycalico.datastore.resources import ResourceClient, ResourceExists, UpdateConflict
from pycalico.node import autodetect
from pycalico.node.default_pool import default_ipv4_pool, default_ipv6_pool

V3 = "projectcalico.org/v3"
BUILTIN_TIERS = {
    "default": 1_000_000,
    "adminnetworkpolicy": 1_000,
    "baselineadminnetworkpolicy": 10_000_000,
}


class StartupError(RuntimeError):
    pass


@dataclass(frozen=True)
class Identity:
    name: str
    address: ipaddress.IPv4Interface | None


def node_name(env: Mapping[str, str], nodename_file: str) -> str:
    """This node's name, refused at startup unless it is a valid Node name (nothing is
    registered, and no nodename file written, for a name the CNI would refuse)."""
    name = _configured_node_name(env, nodename_file)
    problem = checks.node_name(name)
    if problem:
        raise StartupError(problem)
    return name


def _configured_node_name(env: Mapping[str, str], nodename_file: str) -> str:
    """NODENAME → the nodename file → HOSTNAME → the OS hostname (lower-cased)."""
    if env.get("NODENAME"):
        return env["NODENAME"]
    try:
        with open(nodename_file, encoding="utf-8") as f:
            name = f.read().strip()
        if name:
            return name
    except OSError:
        pass
    return (env.get("HOSTNAME") or socket.gethostname()).strip().lower()


def node_address(
    env: Mapping[str, str],
    existing: str,
    interfaces: Sequence[autodetect.HostInterface],
    source_towards: Callable[[str], str] | None = None,
) -> ipaddress.IPv4Interface | None:
    """The node's IPv4 address by Calico's `IP` rules; None for `IP=none` without one."""
    value = env.get("IP", "")
    method = env.get("IP_AUTODETECTION_METHOD", "first-found")
    if value == "none":
        return ipaddress.IPv4Interface(existing) if existing else None
    if value and value != "autodetect":
        try:
            given = ipaddress.ip_interface(value)
        except ValueError:
            raise StartupError(f"IP={value} is not an IPv4 address or address/prefix") from None
        if given.version != 4:
            raise StartupError(f"IP={value} is not an IPv4 address")
        if "/" not in value:  # take the prefix length from the interface holding it
            for iface in interfaces:
                for addr in iface.addresses:
                    if addr.ip == given.ip:
                        return ipaddress.IPv4Interface(str(addr))
            return ipaddress.IPv4Interface(f"{given.ip}/32")
        return ipaddress.IPv4Interface(value)
    if not value and existing:
        return ipaddress.IPv4Interface(existing)
    try:
        found = autodetect.autodetect(method, interfaces, 4, source_towards)
    except autodetect.AutodetectError as exc:
        if value == "autodetect" and existing:
            return ipaddress.IPv4Interface(existing)  # keep the old value, as Calico does
        raise StartupError(str(exc)) from None
    return ipaddress.IPv4Interface(str(found))


def node_address6(
    env: Mapping[str, str],
    existing: str,
    interfaces: Sequence[autodetect.HostInterface],
    source_towards: Callable[[str], str] | None = None,
) -> ipaddress.IPv6Interface | None:
    """The node's IPv6 address by Calico's `IP6` rules: unset or `none` means no IPv6."""
    value = env.get("IP6", "")
    if not value or value == "none":
        return ipaddress.IPv6Interface(existing) if existing and value != "none" else None
    if value != "autodetect":
        try:
            given = ipaddress.ip_interface(value)
        except ValueError:
            raise StartupError(f"IP6={value} is not an IPv6 address or address/prefix") from None
        if given.version != 6:
            raise StartupError(f"IP6={value} is not an IPv6 address")
        return ipaddress.IPv6Interface(value if "/" in value else f"{given.ip}/128")
    method = env.get("IP6_AUTODETECTION_METHOD", "first-found")
    try:
        found = autodetect.autodetect(method, interfaces, 6, source_towards)
    except autodetect.AutodetectError as exc:
        if existing:
            return ipaddress.IPv6Interface(existing)
        raise StartupError(str(exc)) from None
    return ipaddress.IPv6Interface(str(found))


def _ensure(client: ResourceClient, kind: str, name: str, spec: dict[str, Any]) -> None:
    """Create `kind/name` with `spec` unless it exists (never overwrites a user's object)."""
    k = resolve(kind)
    if client.get(k, name) is not None:
        return
    document = {"apiVersion": V3, "kind": kind, "metadata": {"name": name}, "spec": spec}
    with contextlib.suppress(ResourceExists):  # another node created it first
        client.create(k, normalize(document))


def ensure_cluster(
    client: ResourceClient,
    env: Mapping[str, str],
    host_addresses: Sequence[ipaddress.IPv4Interface],
) -> None:
    """ClusterInformation, tiers, the global FelixConfiguration and the default pool."""
    cluster_type = env.get("CLUSTER_TYPE", "pycalico,bgp")
    _ensure(
        client,
        "ClusterInformation",
        "default",
        {
            "clusterGUID": secrets.token_hex(16),
            "clusterType": cluster_type,
            "calicoVersion": f"v{__version__}",
            "datastoreReady": True,
        },
    )
    for tier, order in BUILTIN_TIERS.items():
        _ensure(client, "Tier", tier, {"order": order})
    _ensure(
        client,
        "FelixConfiguration",
        "default",
        {"logSeverityScreen": "Info", "reportingInterval": "0s"},
    )
    pools, _ = client.list(resolve("IPPool"))
    for version, make in (
        (4, lambda: default_ipv4_pool(env, host_addresses)),
        (6, lambda: default_ipv6_pool(env)),
    ):
        if any(ipaddress.ip_network(p["spec"]["cidr"]).version == version for p in pools):
            continue
        doc = make()
        if doc is None:
            continue
        try:
            client.create(resolve("IPPool"), normalize(doc))
        except ResourceExists:
            pass
        except ValueError as exc:
            raise StartupError(
                f"invalid default pool from CALICO_IPV{version}POOL_*: {exc}"
            ) from None


def register_node(
    client: ResourceClient,
    name: str,
    env: Mapping[str, str],
    interfaces: Sequence[autodetect.HostInterface],
    source_towards: Callable[[str], str] | None = None,
) -> Identity:
    """Create or update this node's Node resource with its address (and AS number)."""
    kind = resolve("Node")
    for _ in range(10):
        current = client.get(kind, name)
        spec: dict[str, Any] = dict(current["spec"]) if current else {}
        bgp = dict(spec.get("bgp", {}))
        address = None
        # Policy-only mode: Calico writes neither address (another provider routes; Felix
        # needs none), and leaves any the Node already has.
        if env.get("CALICO_NETWORKING_BACKEND", "bird") != "none":
            address = node_address(env, bgp.get("ipv4Address", ""), interfaces, source_towards)
            address6 = node_address6(env, bgp.get("ipv6Address", ""), interfaces, source_towards)
            if address is not None:
                bgp["ipv4Address"] = str(address)
            if address6 is not None:
                bgp["ipv6Address"] = str(address6)
        if env.get("AS"):
            bgp["asNumber"] = env["AS"]
        if bgp:
            spec["bgp"] = bgp
        meta = dict(current["metadata"]) if current else {"name": name}
        try:
            resource = normalize({"apiVersion": V3, "kind": "Node", "metadata": meta, "spec": spec})
        except ValueError as exc:
            raise StartupError(f"invalid Node {name}: {exc}") from None
        if current is not None and resource["spec"] == current["spec"]:
            return Identity(name, address)  # nothing to write: restarts stay quiet
        try:
            if current is None:
                client.create(kind, resource)
            else:
                resource["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                client.update(kind, resource)
            return Identity(name, address)
        except (ResourceExists, UpdateConflict):
            continue
    raise StartupError(f"could not register Node {name}: too many concurrent updates")


def write_nodename(path: str, name: str) -> None:
    write_text(path, name)

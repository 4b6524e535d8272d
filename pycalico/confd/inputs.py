"""From datastore objects to BIRD's inputs for one node (pure).

confd reads Nodes, BGPConfigurations, BGPPeers, IPPools and this node's block affinities
(reference bgp.md §2); these functions turn them into `BirdInputs`. Only `default` and
`node.<name>` BGPConfigurations count, and of the per-node one only `logSeverityScreen`
and `listenPort`, as in Calico.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pycalico.api.duration import parse_go_duration
from pycalico.confd import peers
from pycalico.confd.bird_config import BirdInputs, LocalBlock, PoolExport
from pycalico.ipam import keys

Resource = Mapping[str, Any]
NANOSECONDS = 1_000_000_000


def _address(cidr: str | None) -> str:
    return str(ipaddress.ip_interface(cidr).ip) if cidr else ""


def _seconds(duration: str | None) -> int | None:
    return parse_go_duration(duration) // NANOSECONDS if duration else None


def bgp_node(node: Resource, listen_port: int | None = None) -> peers.BgpNode:
    bgp = node["spec"].get("bgp", {})
    return peers.BgpNode(
        node["metadata"]["name"],
        _address(bgp.get("ipv4Address")),
        bgp.get("asNumber"),
        bgp.get("routeReflectorClusterID", ""),
        listen_port,
        _address(bgp.get("ipv6Address")),
        dict(node["metadata"].get("labels", {})),
    )


def peer_spec(peer: Resource) -> peers.PeerSpec:
    spec = peer["spec"]
    return peers.PeerSpec(
        name=peer["metadata"]["name"],
        node=spec.get("node", ""),
        node_selector=spec.get("nodeSelector", ""),
        peer_ip=spec.get("peerIP", ""),
        asn=spec.get("asNumber"),
        peer_selector=spec.get("peerSelector", ""),
        keep_original_next_hop=bool(spec.get("keepOriginalNextHop")),
        next_hop_mode=spec.get("nextHopMode", ""),
        source_address=spec.get("sourceAddress", "UseNodeIP"),
        restart_time=_seconds(spec.get("maxRestartTime")),
        allow_local_as=int(spec.get("numAllowedLocalASNumbers", 0)),
        ttl_security=int(spec.get("ttlSecurity", 0)),
        reverse=spec.get("reversePeering", "Auto") != "Manual",
    )


def pool_export(pool: Resource) -> PoolExport:
    spec = pool["spec"]
    encap = ""
    if spec.get("vxlanMode", "Never") != "Never":
        encap = "vxlan"
    elif spec.get("ipipMode", "Never") != "Never":
        encap = "ipip"
    return PoolExport(spec["cidr"], encap, bool(spec.get("disableBGPExport")))


def local_blocks(affinity_kvs: Iterable[tuple[str, str]], node: str) -> tuple[LocalBlock, ...]:
    """This node's blocks, from `(key, value)` pairs under /calico/ipam/v2/host/."""
    blocks = []
    for key, value in affinity_kvs:
        parsed = keys.parse_affinity_key(key)
        if parsed is None or parsed[0] != node:
            continue
        state = json.loads(value).get("state", "")
        blocks.append(LocalBlock(str(parsed[1]), state in ("", "confirmed")))
    network = ipaddress.ip_network
    return tuple(sorted(blocks, key=lambda b: (network(b.cidr).version, network(b.cidr))))


def _loglevel(severity: str | None) -> str:
    level = (severity or "Info").lower()
    return level if level in ("debug", "info") else "none"


def bird_inputs(
    node_name: str,
    nodes: Iterable[Resource],
    configs: Iterable[Resource],
    bgp_peers: Iterable[Resource],
    pools: Iterable[Resource],
    affinity_kvs: Iterable[tuple[str, str]],
    router_id_setting: str = "",
) -> BirdInputs | None:
    """Everything BIRD needs on `node_name`; None while that Node is not registered."""
    by_name = {c["metadata"]["name"]: c["spec"] for c in configs}
    default = by_name.get("default", {})
    mine = by_name.get(f"node.{node_name}", {})
    global_as = int(default.get("asNumber", peers.DEFAULT_AS))
    global_port = default.get("listenPort")
    all_nodes = {}
    for node in nodes:
        name = node["metadata"]["name"]
        port = by_name.get(f"node.{name}", {}).get("listenPort") or global_port
        all_nodes[name] = bgp_node(node, port)
    me = all_nodes.get(node_name)
    if me is None:
        return None
    mesh_on = default.get("nodeToNodeMeshEnabled", True)
    restart = _seconds(default.get("nodeMeshMaxRestartTime"))
    mesh = [
        p
        for family in (4, 6)
        for p in peers.mesh(me, all_nodes, mesh_on, global_as, global_port, family, restart)
    ]
    global_peers, node_peers = peers.explicit(
        me, all_nodes, [peer_spec(p) for p in bgp_peers], global_as
    )
    services = [
        entry["cidr"]
        for field in ("serviceClusterIPs", "serviceExternalIPs", "serviceLoadBalancerIPs")
        for entry in default.get(field, [])
    ]
    return BirdInputs(
        node=me,
        router_id=peers.router_id(me, router_id_setting),
        local_as=me.asn if me.asn is not None else global_as,
        mesh_enabled=mesh_on,
        loglevel=_loglevel(mine.get("logSeverityScreen") or default.get("logSeverityScreen")),
        listen_port=me.listen_port,
        bind_node_ip=default.get("bindMode") == "NodeIP",
        ignored_interfaces=tuple(default.get("ignoredInterfaces", [])),
        pools=tuple(pool_export(p) for p in pools),
        blocks=local_blocks(affinity_kvs, node_name),
        service_cidrs=tuple(services),
        mesh=tuple(mesh),
        global_peers=tuple(global_peers),
        node_peers=tuple(node_peers),
    )

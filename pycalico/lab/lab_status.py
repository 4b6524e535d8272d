"""What `calico-lab status` reports about one lab, gathered from where each fact lives: the
lab's record, each node's calico-node (pid, /readiness) and BIRD (`show protocols`), the
datastore (Nodes, IPPools, BGPConfiguration) and the namespaces' routes."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from pycalico.lab.namespaces import ns_name
from pycalico.lab.processes import alive
from pycalico.lab.state import LabError, LabState

DEFAULT_AS = 64512
BIRD_TIMEOUT = 2.0


@dataclass
class NodeFacts:
    name: str
    ip: str
    as_number: int | None = None
    tunnel: str = ""  # the node's VXLAN or IPIP tunnel address
    running: bool = False  # calico-node's process
    not_ready: str = ""  # why it is not ready; "" when ready
    bgp: tuple[int, int] | None = None  # (Established, all) sessions; None: no BIRD
    missing_routes: list[str] = field(default_factory=list)


@dataclass
class PoolFacts:
    name: str
    cidr: str
    encapsulation: str  # "VXLAN Always", "IPIP CrossSubnet", "none"
    nat_outgoing: bool
    disabled: bool


@dataclass
class PodFacts:
    key: str
    node: str
    ip: str
    ip6: str = ""


@dataclass
class LabFacts:
    name: str
    topology: str
    encap: str
    cross_subnet: bool
    datastore: str
    ipv6: bool
    pool: str
    external: str
    nodes: list[NodeFacts]
    pods: list[PodFacts]
    pools: list[PoolFacts]
    datastore_error: str = ""  # why the datastore could not be read, if it could not
    # The lab's routes missing elsewhere than on nodes (etcd members, the external host).
    other_missing_routes: list[tuple[str, str]] = field(default_factory=list)
    route_reflectors: list[str] = field(default_factory=list)


def gather(state: LabState) -> LabFacts:
    from pycalico.lab import route_reflectors, underlay_routes
    from pycalico.lab.cluster import EXTERNAL_IP

    nodes = [NodeFacts(n, state.node_ips.get(n, "").split("/")[0]) for n in state.nodes]
    for facts in nodes:
        pid = state.pids.get(f"calico-node:{facts.name}")
        facts.running = bool(pid) and alive(pid)
        facts.not_ready = readiness(state, facts.name) if facts.running else "calico-node exited"
        facts.bgp = bgp_sessions(state.path("nodes", facts.name, "run", "bird.ctl"))
    by_name = {facts.name: facts for facts in nodes}
    others = []
    for route in underlay_routes.missing(state):
        if route.role in by_name:
            by_name[route.role].missing_routes.append(route.text())
        else:
            others.append((route.role, route.text()))
    pools: list[PoolFacts] = []
    error = ""
    try:
        pools = _from_datastore(state, nodes)
    except LabError as exc:
        error = str(exc)
    pods = [PodFacts(key, p.node, p.ip, p.ip6) for key, p in sorted(state.pods.items())]
    return LabFacts(
        state.name,
        state.topology,
        state.encap,
        state.cross_subnet,
        state.datastore,
        state.ipv6,
        state.pool,
        EXTERNAL_IP,
        nodes,
        pods,
        pools,
        error,
        others,
        route_reflectors.reflectors(state.nodes, state.route_reflectors),
    )


def readiness(state: LabState, node: str) -> str:
    """ "" if the node's calico-node says it is ready, else what it says (or why it cannot)."""
    from pycalico.netns import in_netns

    def ask() -> str:
        try:
            with urllib.request.urlopen("http://127.0.0.1:9099/readiness", timeout=1) as r:
                return "" if r.status == 200 else f"readiness answered {r.status}"
        except urllib.error.HTTPError as exc:
            return exc.read().decode(errors="replace").strip() or f"readiness {exc.code}"
        except OSError as exc:
            return f"no answer on :9099 ({exc})"

    return in_netns(f"/run/netns/{ns_name(state.name, node)}", ask)


def bgp_sessions(bird_socket: str) -> tuple[int, int] | None:
    """(Established, all) of the BGP sessions BIRD has; None if no BIRD answers there."""
    from pycalico.ctl.errors import CtlError
    from pycalico.ctl.node_status import parse_protocols

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(BIRD_TIMEOUT)
            sock.connect(bird_socket)
            sock.sendall(b"show protocols\n")
            with sock.makefile("r", encoding="utf-8", errors="replace") as reader:
                peers = parse_protocols(line.rstrip("\n") for line in reader)
    except (OSError, CtlError):
        return None
    return sum(p.info.startswith("Established") for p in peers), len(peers)


def _from_datastore(state: LabState, nodes: list[NodeFacts]) -> list[PoolFacts]:
    from pycalico.api.registry import by_kind_name
    from pycalico.datastore.resources import ResourceClient
    from pycalico.lab import kube_store

    def read(client: ResourceClient) -> tuple[list[Any], list[Any], dict[str, Any] | None]:
        found_nodes, _ = client.list(by_kind_name("Node"))
        found_pools, _ = client.list(by_kind_name("IPPool"))
        bgp = client.get(by_kind_name("BGPConfiguration"), "default")
        return found_nodes, found_pools, bgp

    resources, ippools, bgp = kube_store.session(state, read)
    default_as = int(((bgp or {}).get("spec") or {}).get("asNumber") or DEFAULT_AS)
    by_name = {r["metadata"]["name"]: r.get("spec") or {} for r in resources}
    for facts in nodes:
        spec = by_name.get(facts.name)
        if spec is None:
            continue
        bgp_spec = spec.get("bgp") or {}
        facts.as_number = int(bgp_spec.get("asNumber") or default_as)
        facts.tunnel = spec.get("ipv4VXLANTunnelAddr") or bgp_spec.get("ipv4IPIPTunnelAddr") or ""
    pools = []
    for pool in sorted(ippools, key=lambda r: r["metadata"]["name"]):
        spec = pool.get("spec") or {}
        pools.append(
            PoolFacts(
                pool["metadata"]["name"],
                spec.get("cidr", ""),
                encapsulation(spec),
                bool(spec.get("natOutgoing")),
                bool(spec.get("disabled")),
            )
        )
    return pools


def encapsulation(spec: dict[str, Any]) -> str:
    """How a pool's traffic between nodes travels, as a few words (pure)."""
    for kind, key in (("VXLAN", "vxlanMode"), ("IPIP", "ipipMode")):
        mode = spec.get(key) or "Never"
        if mode != "Never":
            return f"{kind} {mode}"
    return "none"


def as_json(facts: LabFacts) -> dict[str, Any]:
    """The machine form: the lab's summary as before, with the gathered facts beside it."""
    return {
        "name": facts.name,
        "topology": facts.topology,
        "encap": facts.encap,
        "cross_subnet": facts.cross_subnet,
        "ipv6": facts.ipv6,
        "pool": facts.pool,
        "datastore": facts.datastore,
        "route_reflectors": facts.route_reflectors,
        "nodes": {n.name: asdict(n) for n in facts.nodes},
        "pods": {
            p.key: {"node": p.node, "ip": p.ip, **({"ip6": p.ip6} if p.ip6 else {})}
            for p in facts.pods
        },
        "pools": [asdict(p) for p in facts.pools],
        "external": facts.external,
        **({"datastore_error": facts.datastore_error} if facts.datastore_error else {}),
    }

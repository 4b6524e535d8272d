"""The lab drawn as a Graphviz graph (pure): the underlay (bridges, router or ToR, external
host, etcd members), each node as a cluster holding its pods (with their veths), its
address, AS, tunnel address and blocks, the BGP sessions coloured by state, and the tunnels
between nodes. Graphviz's `dot` lays it out; every drawn thing has an `id` (`node:node1`,
`pod:default/web`, `bgp:node1--node2`, `tunnel:node1--node2`) that its SVG keeps."""

from __future__ import annotations

from dataclasses import dataclass, field

ESTABLISHED = "darkgreen"
NOT_UP = "red"
TUNNEL = "blue"


@dataclass(frozen=True)
class NodeBox:
    name: str
    ip: str
    as_number: int | None
    tunnel: str  # its VXLAN/IPIP tunnel address
    blocks: tuple[str, ...]
    bridge: str  # the underlay bridge its eth0 is on
    ready: bool


@dataclass(frozen=True)
class PodBox:
    key: str
    node: str
    ip: str
    veth: str


@dataclass(frozen=True)
class Session:
    """A BGP session as one end's BIRD sees it."""

    local: str  # a node
    peer: str  # a node, or "tor"
    state: str  # Established, Active, Connect, ...


@dataclass(frozen=True)
class Tunnel:
    kind: str  # VXLAN or IPIP
    local: str
    remote: str
    detail: str = ""  # VNI 4096


@dataclass
class Topology:
    lab: str
    headline: str
    bridges: dict[str, str]  # br0 -> 192.168.56.0/24
    router: str  # router or tor
    router_addresses: dict[str, str]  # bridge (or "external") -> the router's address there
    router_as: int | None
    external_ip: str
    nodes: list[NodeBox]
    pods: list[PodBox]
    sessions: list[Session] = field(default_factory=list)
    tunnels: list[Tunnel] = field(default_factory=list)
    etcd: dict[str, str] = field(default_factory=dict)  # etcd1 -> 192.168.56.201


def quote(text: str) -> str:
    """A DOT string literal: quotes and backslashes escaped, newlines as DOT's \\n."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _attrs(**values: str) -> str:
    return "[" + " ".join(f"{k}={quote(v)}" for k, v in values.items()) + "]"


def pair(a: str, b: str) -> str:
    """One name for an undirected pair."""
    return "--".join(sorted((a, b)))


def _line(indent: str, ident: str, **attrs: str) -> str:
    return f"{indent}{quote(ident)} {_attrs(id=ident, **attrs)};"


def _edge(indent: str, a: str, b: str, ident: str, **attrs: str) -> str:
    return f"{indent}{quote(a)} -- {quote(b)} {_attrs(id=ident, **attrs)};"


def sessions_by_pair(sessions: list[Session]) -> dict[tuple[str, str], str]:
    """Each session once, in the worse state its two ends report (pure)."""
    found: dict[tuple[str, str], str] = {}
    for s in sessions:
        first, second = sorted((s.local, s.peer))
        seen = found.get((first, second))
        if seen is None or (seen == "Established" and s.state != "Established"):
            found[first, second] = s.state
    return found


def dot(t: Topology) -> str:
    headline = _attrs(label=t.headline, labelloc="t", fontname="Helvetica", compound="true")
    out = [
        f"graph {quote('lab ' + t.lab)} {{",
        f"  graph {headline};",
        '  node [fontname="Helvetica" fontsize="10"];',
        '  edge [fontname="Helvetica" fontsize="9"];',
    ]
    for bridge, cidr in sorted(t.bridges.items()):
        out.append(_line("  ", f"bridge:{bridge}", label=f"{bridge}\n{cidr}", shape="ellipse"))
    router_label = t.router + (f"\nAS {t.router_as}" if t.router_as else "")
    out.append(_line("  ", t.router, label=router_label, shape="diamond"))
    out.append(_line("  ", "external", label=f"external\n{t.external_ip}", shape="box3d"))
    for bridge in sorted(t.bridges):
        out.append(
            _edge(
                "  ",
                t.router,
                f"bridge:{bridge}",
                f"link:{t.router}--{bridge}",
                label=t.router_addresses.get(bridge, ""),
            )
        )
    out.append(
        _edge(
            "  ",
            t.router,
            "external",
            f"link:{t.router}--external",
            label=t.router_addresses.get("external", ""),
        )
    )
    for member, ip in sorted(t.etcd.items()):
        out.append(_line("  ", f"etcd:{member}", label=f"{member}\n{ip}", shape="cylinder"))
        out.append(_edge("  ", f"etcd:{member}", "bridge:br0", f"link:{member}--br0"))
    for node in t.nodes:
        out += _node_cluster(node, [p for p in t.pods if p.node == node.name])
        out.append(
            _edge(
                "  ",
                f"node:{node.name}",
                f"bridge:{node.bridge}",
                f"link:{node.name}--{node.bridge}",
                label=f"eth0 {node.ip}",
            )
        )
    for (a, b), state in sorted(sessions_by_pair(t.sessions).items()):
        color = ESTABLISHED if state == "Established" else NOT_UP
        ends = [x if x == t.router else f"node:{x}" for x in (a, b)]
        out.append(
            _edge(
                "  ",
                ends[0],
                ends[1],
                f"bgp:{pair(a, b)}",
                label=f"BGP {state}",
                color=color,
                fontcolor=color,
                penwidth="2",
            )
        )
    drawn: set[str] = set()
    for tunnel in t.tunnels:
        ident = f"tunnel:{pair(tunnel.local, tunnel.remote)}"
        if ident in drawn:
            continue
        drawn.add(ident)
        out.append(
            _edge(
                "  ",
                f"node:{tunnel.local}",
                f"node:{tunnel.remote}",
                ident,
                label=f"{tunnel.kind} {tunnel.detail}".strip(),
                style="dashed",
                color=TUNNEL,
                fontcolor=TUNNEL,
            )
        )
    out.append("}")
    return "\n".join(out) + "\n"


def _node_cluster(node: NodeBox, pods: list[PodBox]) -> list[str]:
    details = [node.ip + (f"  AS {node.as_number}" if node.as_number else "")]
    if node.tunnel:
        details.append(f"tunnel {node.tunnel}")
    details += [f"block {b}" for b in node.blocks]
    if not node.ready:
        details.append("NOT READY")
    ident = f"node:{node.name}"
    cluster = _attrs(id=f"cluster:{node.name}", label=node.name, style="rounded")
    lines = [
        f"  subgraph {quote('cluster_' + node.name)} {{",
        f"    graph {cluster};",
        _line(
            "    ", ident, label="\n".join([node.name, *details]), shape="box", style="rounded,bold"
        ),
    ]
    for pod in sorted(pods, key=lambda p: p.key):
        pod_id = f"pod:{pod.key}"
        lines.append(_line("    ", pod_id, label=f"{pod.key}\n{pod.ip}", shape="ellipse"))
        lines.append(_edge("    ", ident, pod_id, f"veth:{pod.key}", label=pod.veth))
    lines.append("  }")
    return lines

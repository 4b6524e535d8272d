"""`calico-lab graph [-o FILE.svg|.png|.dot]`: the lab as it is, drawn by Graphviz.

What is drawn comes from where it lives: the lab's record (underlay, pods), the datastore
(nodes' AS and tunnel addresses, block affinities), each node's BIRD (its BGP sessions and
their states) and each node's kernel (its VXLAN FDB entries, its IPIP routes: the tunnels).
Without -o the DOT text goes to stdout (for `dot` or any Graphviz tool).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import subprocess
import tempfile

from pycalico.lab import lab_status
from pycalico.lab.cluster import EXTERNAL_IP, EXTERNAL_ROUTER_IP
from pycalico.lab.namespaces import ns_name
from pycalico.lab.pods import host_veth
from pycalico.lab.state import LabError, LabState
from pycalico.lab.topology_graph import NodeBox, PodBox, Session, Topology, Tunnel, dot
from pycalico.lab.underlay_plan import SUBNETS, node_subnet

FORMATS = {".svg": "svg", ".png": "png", ".dot": ""}
DOT = "/usr/bin/dot"


def gather(state: LabState) -> Topology:
    from pycalico.lab import tor

    facts = lab_status.gather(state)
    blocks = _blocks(state)
    bridges = {
        f"br{i}": cidr
        for i, cidr in enumerate(SUBNETS[:2] if state.topology == "two-subnet" else SUBNETS[:1])
    }
    router_addresses = {
        bridge: str(ipaddress.ip_network(cidr).network_address + 1)
        for bridge, cidr in bridges.items()
    }
    router_addresses["external"] = EXTERNAL_ROUTER_IP
    router = "tor" if state.topology == "tor" else "router"
    by_ip = {n.ip: n.name for n in facts.nodes}
    by_ip.update({address: router for address in router_addresses.values()})
    nodes = []
    for index, n in enumerate(facts.nodes):
        subnet = node_subnet(index, len(state.nodes), state.topology)
        nodes.append(
            NodeBox(
                n.name,
                n.ip,
                n.as_number,
                n.tunnel,
                tuple(sorted(blocks.get(n.name, []))),
                f"br{subnet}",
                n.running and not n.not_ready,
            )
        )
    pods = [PodBox(key, p.node, p.ip, host_veth(p)) for key, p in sorted(state.pods.items())]
    sessions = [
        Session(node, by_ip.get(address, address), peer_state)
        for node in state.nodes
        for address, peer_state in _bgp_peers(state.path("nodes", node, "run", "bird.ctl"))
    ]
    if state.topology == "tor":
        sessions += [
            Session(router, by_ip.get(address, address), peer_state)
            for address, peer_state in _bgp_peers(state.path("tor", "bird.ctl"))
        ]
    tunnels = [t for node in state.nodes for t in _tunnels(state, node, by_ip)]
    etcd = {}
    if state.datastore == "etcd":
        from pycalico.lab.underlay_plan import ETCD_MEMBERS, etcd_member_ip

        etcd = {f"etcd{i + 1}": etcd_member_ip(i) for i in range(ETCD_MEMBERS)}
    from pycalico.lab.status_table import render as status_render

    headline = status_render(facts).splitlines()[0]
    return Topology(
        state.name,
        headline,
        bridges,
        router,
        router_addresses,
        tor.TOR_AS if state.topology == "tor" else None,
        EXTERNAL_IP,
        nodes,
        pods,
        sessions,
        tunnels,
        etcd,
    )


def _blocks(state: LabState) -> dict[str, list[str]]:
    from pycalico.datastore.resources import ResourceClient
    from pycalico.ipam.allocator import Allocator
    from pycalico.lab import kube_store

    def read(client: ResourceClient) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for host, cidr in Allocator(client.backend).affinities():
            found.setdefault(host, []).append(str(cidr))
        return found

    try:
        return kube_store.session(state, read)
    except LabError:
        return {}  # the datastore is down (an etcd outage): draw the rest


def _bgp_peers(bird_socket: str) -> list[tuple[str, str]]:
    """(peer address, state) of every BGP session BIRD has; [] without a BIRD."""
    from pycalico.ctl.errors import CtlError
    from pycalico.ctl.node_status import parse_protocols

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(lab_status.BIRD_TIMEOUT)
            sock.connect(bird_socket)
            sock.sendall(b"show protocols\n")
            with sock.makefile("r", encoding="utf-8", errors="replace") as reader:
                peers = parse_protocols(line.rstrip("\n") for line in reader)
    except (OSError, CtlError):
        return []
    return [(p.address, p.info.split()[0] if p.info else p.state) for p in peers]


def _json(netns: str, *cmd: str) -> list[dict[str, object]]:
    out = subprocess.run(
        ["nsenter", f"--net=/run/netns/{netns}", *cmd], capture_output=True, text=True, check=False
    )
    try:
        return list(json.loads(out.stdout or "[]"))
    except ValueError:
        return []


def _tunnels(state: LabState, node: str, by_ip: dict[str, str]) -> list[Tunnel]:
    """The tunnels the node's kernel has to other nodes: VXLAN FDB entries, IPIP routes."""
    netns = ns_name(state.name, node)
    found = []
    links = {str(link.get("ifname")): link for link in _json(netns, "ip", "-j", "-d", "link")}
    if "vxlan.calico" in links:
        info = links["vxlan.calico"].get("linkinfo") or {}
        vni = (info.get("info_data") or {}).get("id") if isinstance(info, dict) else None
        for entry in _json(netns, "bridge", "-j", "fdb", "show", "dev", "vxlan.calico"):
            remote = by_ip.get(str(entry.get("dst", "")))
            if remote and remote != node:
                found.append(Tunnel("VXLAN", node, remote, f"VNI {vni}" if vni else ""))
    if "tunl0" in links:
        for route in _json(netns, "ip", "-j", "route", "show", "dev", "tunl0"):
            remote = by_ip.get(str(route.get("gateway", "")))
            if remote and remote != node:
                found.append(Tunnel("IPIP", node, remote))
    return found


def check_output(path: str) -> str:
    """The Graphviz format for `path` ("" for DOT itself); a LabError if it cannot be made."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in FORMATS:
        raise LabError(f"-o {path}: the file name must end in .svg, .png or .dot")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise LabError(f"-o {path}: directory {directory} does not exist")
    if FORMATS[extension] and not os.path.exists(DOT):
        raise LabError("graph needs Graphviz's dot (Debian graphviz; `make setup` installs it)")
    return FORMATS[extension]


def render(text: str, path: str) -> None:
    """Lay `text` (DOT) out with Graphviz into `path`, in the format its name ends with;
    the file appears whole or not at all."""
    kind = check_output(path)
    directory = os.path.dirname(os.path.abspath(path))
    data = layout(text, kind) if kind else text.encode()
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".calico-lab-graph-")
    except OSError as exc:
        raise LabError(f"-o {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise LabError(f"-o {path}: {exc.strerror or exc}") from None


def layout(text: str, kind: str) -> bytes:
    """`text` (DOT) laid out by Graphviz in format `kind` (svg, png)."""
    if not os.path.exists(DOT):
        raise LabError("graph needs Graphviz's dot (Debian graphviz; `make setup` installs it)")
    out = subprocess.run([DOT, f"-T{kind}"], input=text.encode(), capture_output=True, check=False)
    if out.returncode != 0:
        raise LabError(f"dot failed: {out.stderr.decode(errors='replace').strip()}")
    return out.stdout


def graph(state: LabState) -> str:
    return dot(gather(state))

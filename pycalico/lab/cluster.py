"""Building and tearing down a lab: namespaces, the underlay, and one calico-node per node.

Layout (all namespaces, nothing touches the host's own interfaces):
  <lab>-net      holds the underlay bridges (br0, and br1 for two-subnet)
  <lab>-router   the lab router: .1 on each underlay subnet, 203.0.113.254 towards external
  <lab>-ext      "the internet": 203.0.113.1
  <lab>-nodeN    the nodes: eth0 on an underlay bridge, default route via the router
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable

from pycalico.lab import etcd_cluster
from pycalico.lab.namespaces import add_ns, in_ns, link, ns_name
from pycalico.lab.processes import alive, stop_pids
from pycalico.lab.state import LabError, LabState
from pycalico.lab.underlay_plan import (
    PREFIX,
    SUBNETS,
    bridge_port,
    gateway,
    node_address,
    node_address6,
    node_subnet,
)

DEFAULT_POOL6 = "fd00:10:244::/48"
EXTERNAL_IP = "203.0.113.1"
EXTERNAL_ROUTER_IP = "203.0.113.254"
DEFAULT_POOL = "10.244.0.0/16"
READY_TIMEOUT = 60.0
# Each calico-node's start-up costs CPU (Python, the first full apply), so a big lab on a
# small machine takes longer to come up: this much more per node.
READY_TIMEOUT_PER_NODE = 1.0


def build_underlay(state: LabState) -> None:
    lab = state.name
    net, router, ext = ns_name(lab, "net"), ns_name(lab, "router"), ns_name(lab, "ext")
    for ns in (net, router, ext):
        add_ns(state, ns)
    subnets = SUBNETS[:2] if state.topology == "two-subnet" else SUBNETS[:1]
    for i, cidr in enumerate(subnets):
        bridge = f"br{i}"
        in_ns(net, "ip", "link", "add", bridge, "type", "bridge")
        in_ns(net, "ip", "link", "set", bridge, "up")
        link(router, f"eth{i}", net, f"r{i}")
        in_ns(net, "ip", "link", "set", f"r{i}", "master", bridge)
        router_ip = ipaddress.ip_network(cidr).network_address + 1
        in_ns(router, "ip", "addr", "add", f"{router_ip}/{PREFIX}", "dev", f"eth{i}")
    link(router, "ext0", ext, "eth0")
    in_ns(router, "ip", "addr", "add", f"{EXTERNAL_ROUTER_IP}/24", "dev", "ext0")
    in_ns(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    in_ns(ext, "ip", "addr", "add", f"{EXTERNAL_IP}/24", "dev", "eth0")
    # Replies to masqueraded pod traffic go back to the node addresses through the router.
    in_ns(ext, "ip", "route", "add", "192.168.56.0/23", "via", EXTERNAL_ROUTER_IP)
    if state.topology == "tor":
        # The host behind the ToR reaches pods directly: the ToR has every block by BGP.
        in_ns(ext, "ip", "route", "add", state.pool, "via", EXTERNAL_ROUTER_IP)


def runs_bird(encap: str, topology: str, ipv6: bool) -> bool:
    """Whether the nodes run BIRD: whenever routes travel by BGP (no-encap, IPIP, IPv6,
    peering with the ToR); a VXLAN lab's routes come from Felix alone."""
    return not (encap == "vxlan" and topology != "tor" and not ipv6)


def _calicoctl_apply(state: LabState, text: str, what: str) -> None:
    """`calicoctl apply` as the first node runs it: in its network namespace, where an etcd
    lab's members are reachable (from the host their addresses would leave by its own
    interfaces)."""
    calicoctl = os.path.join(os.path.dirname(sys.executable), "calicoctl")
    netns = f"--net=/run/netns/{ns_name(state.name, state.nodes[0])}"
    applied = subprocess.run(
        ["nsenter", netns, calicoctl, "apply", "-f", "-"],
        input=text,
        env=node_env(state, state.nodes[0]),
        capture_output=True,
        text=True,
        check=False,
    )
    if applied.returncode != 0:
        raise LabError(f"could not configure {what}: {applied.stderr.strip()}")


def configure_route_reflectors(state: LabState) -> None:
    """The seeds' route-reflector resources, before any calico-node starts."""
    from pycalico.lab import route_reflectors

    text = route_reflectors.resources_yaml(state.nodes, state.route_reflectors, state.node_ips)
    _calicoctl_apply(state, text, "route reflectors")


def start_tor(state: LabState) -> None:
    """The ToR's BIRD, the BGPPeer that makes every node peer with it, the mesh off."""
    from pycalico.confd.peers import DEFAULT_AS
    from pycalico.lab import tor

    _calicoctl_apply(state, tor.resources_yaml(state), "BGP for the ToR")
    state.pids["bird:tor"] = tor.start(state, ns_name(state.name, "router"), DEFAULT_AS)
    state.save()


# Flow logs on, as an operator install with Goldmane has them (reference flows.md §4),
# flushed every 15 s (the choice for the lab: a flow shows within a bucket or two).
FLOW_LOGS_FLUSH_INTERVAL = "15s"


def felix_configuration_yaml() -> str:
    """FelixConfiguration `default` as calico-node would create it, plus flow logs to the
    lab's calico-goldmane."""
    from pycalico.lab.goldmane import COLLECTOR

    return (
        "apiVersion: projectcalico.org/v3\n"
        "kind: FelixConfiguration\n"
        "metadata:\n  name: default\n"
        "spec:\n"
        "  logSeverityScreen: Info\n"
        "  reportingInterval: 0s\n"
        f"  flowLogsGoldmaneServer: {COLLECTOR}\n"
        f"  flowLogsFlushInterval: {FLOW_LOGS_FLUSH_INTERVAL}\n"
    )


def configure_felix(state: LabState) -> None:
    """Write FelixConfiguration `default` before the nodes start (they keep an existing
    one)."""
    _calicoctl_apply(state, felix_configuration_yaml(), "flow logs (FelixConfiguration)")


def build_node(state: LabState, index: int) -> str:
    lab = state.name
    name = f"node{index + 1}"
    ns = ns_name(lab, name)
    add_ns(state, ns)
    nodes = len(state.nodes)
    subnet = node_subnet(index, nodes, state.topology)
    address = node_address(index, nodes, state.topology)
    port = bridge_port(index)
    link(ns, "eth0", ns_name(lab, "net"), port)
    in_ns(ns_name(lab, "net"), "ip", "link", "set", port, "master", f"br{subnet}")
    in_ns(ns, "ip", "addr", "add", address, "dev", "eth0")
    if state.ipv6:
        # No duplicate address detection: the address is usable (and BIRD can bind) at once.
        in_ns(ns, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0")
        address6 = node_address6(index, nodes, state.topology)
        in_ns(ns, "ip", "-6", "addr", "add", address6, "dev", "eth0")
        in_ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    in_ns(ns, "ip", "route", "add", "default", "via", gateway(index, nodes, state.topology))
    state.node_ips[name] = address
    state.save()
    return name


def node_env(state: LabState, node: str) -> dict[str, str]:
    """The environment calico-node (and commands run on the node) get."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALICO_", "FELIX_"))}
    encap = {"vxlan": "CALICO_IPV4POOL_VXLAN", "ipip": "CALICO_IPV4POOL_IPIP"}
    mode = "CrossSubnet" if state.cross_subnet else "Always"
    env.update(
        {
            "DATASTORE_TYPE": "sqlite",
            "SQLITE_PATH": state.path("datastore.db"),
            "NODENAME": node,
            "IP_AUTODETECTION_METHOD": "interface=eth0",
            "CALICO_NETWORKING_BACKEND": (
                "bird" if runs_bird(state.encap, state.topology, state.ipv6) else "vxlan"
            ),
            "CALICO_IPV4POOL_CIDR": state.pool,
            "CALICO_STATE_DIR": state.path("nodes", node, "lib"),
            "CALICO_RUN_DIR": state.path("nodes", node, "run"),
            "CALICO_CONFD_DIR": state.path("nodes", node, "confd"),
            # As Calico's manifests set it: pods may reach their own node.
            "FELIX_DEFAULTENDPOINTTOHOSTACTION": "ACCEPT",
            "PATH": f"{os.path.dirname(sys.executable)}:{env.get('PATH', '/usr/bin:/bin')}",
        }
    )
    if state.encap in encap:
        env[encap[state.encap]] = mode
    if state.ipv6:
        env.update(
            {
                "IP6": "autodetect",
                "IP6_AUTODETECTION_METHOD": "interface=eth0",
                "CALICO_IPV6POOL_CIDR": DEFAULT_POOL6,
            }
        )
    if state.datastore == "etcd":
        env.pop("SQLITE_PATH")
        env.update({"DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": etcd_cluster.endpoints()})
    return env


def install_cni(state: LabState, node: str) -> None:
    """The CNI shims into the node's bin directory. They are built once per lab and copied:
    a compile costs ~0.1 s of CPU, two per node made a 100-node `up` spend 20 s of CPU on
    them; each copy finds its node's agent by the relative socket path."""
    from pycalico.cni.install import install

    built = state.path("cni-shims")
    if not os.path.isdir(built):
        shutil.rmtree(built + ".tmp", ignore_errors=True)
        install(built + ".tmp", "../run/cni-agent.sock")
        os.replace(built + ".tmp", built)
    bin_dir = state.path("nodes", node, "bin")
    os.makedirs(bin_dir, exist_ok=True)
    for name in os.listdir(built):
        target = os.path.join(bin_dir, name)
        shutil.copy2(os.path.join(built, name), target + ".tmp")
        os.replace(target + ".tmp", target)  # a restarted node's plugin may be running


def start_node(state: LabState, node: str) -> None:
    os.makedirs(state.path("nodes", node, "lib"), exist_ok=True)
    install_cni(state, node)
    with open(state.path("nodes", node, "calico-node.log"), "ab") as log:
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns_name(state.name, node),
                os.path.join(os.path.dirname(sys.executable), "calico-node"),
            ],
            env=node_env(state, node),
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    # `ip netns exec` execs calico-node in place, so this is calico-node's own pid.
    state.pids[f"calico-node:{node}"] = proc.pid
    state.save()


def start_kube_controllers(state: LabState) -> None:
    """kube-controllers' role (its node controller's automatic host endpoints), on the
    first node, where the datastore is reachable as the nodes reach it."""
    node = state.nodes[0]
    with open(state.path("kube-controllers.log"), "ab") as log:
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns_name(state.name, node),
                os.path.join(os.path.dirname(sys.executable), "calico-kube-controllers"),
            ],
            env=node_env(state, node),
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    state.pids["calico-kube-controllers"] = proc.pid
    state.save()


def node_ready(state: LabState, node: str) -> bool:
    from pycalico.netns import in_netns

    def ask() -> bool:
        try:
            with urllib.request.urlopen("http://127.0.0.1:9099/readiness", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    return in_netns(f"/run/netns/{ns_name(state.name, node)}", ask)


def wait_ready(state: LabState, progress: Callable[[str], None]) -> None:
    timeout = READY_TIMEOUT + READY_TIMEOUT_PER_NODE * len(state.nodes)
    deadline = time.monotonic() + timeout
    pending = list(state.nodes)
    while pending:
        for node in list(pending):
            pid = state.pids[f"calico-node:{node}"]
            if not alive(pid):
                log = state.path("nodes", node, "calico-node.log")
                raise LabError(f"calico-node on {node} exited; see {log}")
            if node_ready(state, node):
                pending.remove(node)
                progress(f"{node} ready")
        if pending and time.monotonic() > deadline:
            raise LabError(f"nodes not ready after {timeout:.0f}s: {', '.join(pending)}")
        time.sleep(0.1)


def _bird_pid(state: LabState, node: str) -> int | None:
    from pycalico.confd.bird_process import BirdProcess

    return BirdProcess("", state.path("nodes", node, "run")).pid()


def down(state: LabState) -> list[str]:
    """Stop every process and remove every namespace the lab recorded; what failed, if any."""
    problems = []
    stop_pids(
        [p.server_pid for p in state.pods.values() if p.server_pid] + list(state.pids.values())
    )
    # A calico-node killed with -9 leaves its BIRD running (by design): stop those too.
    stop_pids([pid for node in state.nodes if (pid := _bird_pid(state, node))])
    for ns in reversed(state.namespaces + [p.netns for p in state.pods.values()]):
        out = subprocess.run(
            ["ip", "netns", "del", ns], capture_output=True, text=True, check=False
        )
        if out.returncode != 0 and "No such file" not in out.stderr:
            problems.append(f"netns {ns}: {out.stderr.strip()}")
    shutil.rmtree(state.dir, ignore_errors=True)
    return problems

"""The `calico` CNI plugin against the real kernel: node and pod namespaces made by the test.

The plugin runs in a node namespace of the test's own, as calico-node's host would be: the
pods' host-side veths, routes and sysctls go there, and every host-side check reads there.
The host's own namespace gets nothing. Every namespace a test creates is removed by its
fixture, even on failure (the node's links and routes go with the node's namespace).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pycalico.cni.agent import PROTOCOL
from tests.support import node_namespace as node_ns

pytestmark = pytest.mark.integration

BIN_DIR = os.path.dirname(sys.executable)
# By path: some plugin runs below get an environment without PATH.
IP = shutil.which("ip") or "/usr/sbin/ip"


def sh(*cmd: str, check: bool = True) -> str:
    """`cmd` as is: only for managing namespaces and for commands inside a pod's namespace."""
    return subprocess.run(cmd, check=check, capture_output=True, text=True).stdout


class Cluster:
    """One node's worth of CNI state: a node namespace, a store, pools, and the pods so far."""

    def __init__(self, tmp: Path, node: str) -> None:
        self.tmp = tmp
        self.node = node
        # Prefix for any process that plays the node: the plugin, the shim, the agent.
        self.in_node = [IP, "netns", "exec", node]
        self.store = tmp / "store.db"
        self.tag = uuid.uuid4().hex[:6]
        self.namespaces: list[str] = []

    def on_node(self, *cmd: str, check: bool = True) -> str:
        """`cmd` in the node's namespace, where the host side of every pod is."""
        return node_ns.sh(self.node, *cmd, check=check)

    def conf(self, **extra: Any) -> dict[str, Any]:
        return {
            "cniVersion": "1.0.0",
            "name": "k8s-pod-network",
            "type": "calico",
            "nodename": "node1",
            "sqlite_path": str(self.store),
            "mtu": 1450,
            "ipam_lock_file": str(self.tmp / "ipam.lock"),
            "ipam": {"type": "calico-ipam"},
            **extra,
        }

    def calicoctl(self, *args: str, stdin: str | None = None) -> str:
        env = {**os.environ, "DATASTORE_TYPE": "sqlite", "SQLITE_PATH": str(self.store)}
        out = subprocess.run(
            [os.path.join(BIN_DIR, "calicoctl"), *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout

    def netns(self) -> str:
        name = f"citest-{self.tag}-{len(self.namespaces)}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        return name

    def cni(
        self,
        command: str,
        container: str,
        netns: str,
        pod: str = "",
        conf: Any = None,
        ifname: str = "eth0",
    ) -> tuple[int, dict[str, Any]]:
        """Run the plugin in the node's namespace, as a runtime on that node would."""
        env = {
            "PATH": os.environ["PATH"],
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container,
            "CNI_NETNS": f"/run/netns/{netns}" if netns else "",
            "CNI_IFNAME": ifname,
            "CNI_PATH": BIN_DIR,
            "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod}"
            if pod
            else "",
        }
        out = subprocess.run(
            [*self.in_node, os.path.join(BIN_DIR, "calico")],
            env=env,
            input=json.dumps(conf or self.conf()).encode(),
            capture_output=True,
            check=False,
        )
        assert b"Traceback" not in out.stdout + out.stderr
        return out.returncode, json.loads(out.stdout) if out.stdout.strip() else {}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    # A default route, so that proxy ARP answers for 169.254.1.1 on the pods' host ends.
    with node_ns.node_namespace("cinode", gateway="192.0.2.1") as node:
        c = Cluster(tmp_path, node.ns)
        try:
            c.calicoctl(
                "apply",
                "-f",
                "-",
                stdin="apiVersion: projectcalico.org/v3\nkind: IPPool\n"
                "metadata: {name: pods}\nspec: {cidr: 10.247.0.0/16}\n---\n"
                # Registered as calico-node would: ipam check counts blocks of unknown nodes.
                "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: node1}\n",
            )
            yield c
        finally:
            for name in c.namespaces:
                sh("ip", "netns", "del", name, check=False)


def test_add_wires_the_pod_exactly_as_calico(cluster: Cluster) -> None:
    ns = cluster.netns()
    rc, result = cluster.cni("ADD", "ctr-aaaa1111", ns, pod="web-1")
    assert rc == 0, result
    host_if = result["interfaces"][0]["name"]
    assert host_if.startswith("cali") and len(host_if) == 15
    ip = result["ips"][0]["address"].split("/")[0]
    assert result["ips"][0]["address"].endswith("/32") and result["ips"][0]["interface"] == 1
    link = json.loads(cluster.on_node("ip", "-j", "-d", "link", "show", host_if))[0]
    assert link["address"] == "ee:ee:ee:ee:ee:ee" and link["mtu"] == 1450
    for knob in ("proxy_arp", "forwarding", "rp_filter"):
        path = f"/proc/sys/net/ipv4/conf/{host_if}/{knob}"
        assert cluster.on_node("cat", path).strip() == "1", knob
    assert cluster.on_node("ip", "route", "show", ip).strip() == f"{ip} dev {host_if} scope link"
    pod_routes = sh("ip", "netns", "exec", ns, "ip", "route").splitlines()
    assert pod_routes == ["default via 169.254.1.1 dev eth0 ", "169.254.1.1 dev eth0 scope link "]
    pod_addr = json.loads(sh("ip", "netns", "exec", ns, "ip", "-j", "addr", "show", "eth0"))[0]
    assert [
        (a["local"], a["prefixlen"]) for a in pod_addr["addr_info"] if a["family"] == "inet"
    ] == [(ip, 32)]
    wep = json.loads(cluster.calicoctl("get", "wep", "node1-k8s-web--1-eth0", "-o", "json"))
    assert wep["spec"]["interfaceName"] == host_if and wep["spec"]["ipNetworks"] == [f"{ip}/32"]
    assert wep["metadata"]["labels"]["projectcalico.org/orchestrator"] == "k8s"


def test_two_pods_on_the_node_reach_each_other_and_the_host_reaches_both(cluster: Cluster) -> None:
    a, b = cluster.netns(), cluster.netns()
    ip_a = cluster.cni("ADD", "ctr-a", a, pod="a")[1]["ips"][0]["address"].split("/")[0]
    ip_b = cluster.cni("ADD", "ctr-b", b, pod="b")[1]["ips"][0]["address"].split("/")[0]
    sh("ip", "netns", "exec", a, "ping", "-c1", "-W2", ip_b)
    sh("ip", "netns", "exec", b, "ping", "-c1", "-W2", ip_a)
    cluster.on_node("ping", "-c1", "-W2", ip_a)


def test_del_removes_interface_routes_endpoint_and_address(cluster: Cluster) -> None:
    ns = cluster.netns()
    result = cluster.cni("ADD", "ctr-d", ns, pod="d")[1]
    host_if = result["interfaces"][0]["name"]
    assert cluster.cni("DEL", "ctr-d", ns, pod="d")[0] == 0
    assert cluster.on_node("ip", "link", "show", host_if, check=False) == ""
    assert cluster.calicoctl("get", "wep", "-o", "name") == ""
    assert "found 0 problems" in cluster.calicoctl("ipam", "check")
    assert "| 0 (0%)" in cluster.calicoctl("ipam", "show")


def test_del_succeeds_when_the_netns_is_gone_or_empty_and_when_repeated(cluster: Cluster) -> None:
    ns = cluster.netns()
    cluster.cni("ADD", "ctr-g", ns, pod="g")
    sh("ip", "netns", "del", ns)
    assert cluster.cni("DEL", "ctr-g", ns, pod="g")[0] == 0
    assert cluster.cni("DEL", "ctr-g", "", pod="g")[0] == 0
    assert "| 0 (0%)" in cluster.calicoctl("ipam", "show")


def test_a_failed_add_leaves_no_veth_no_endpoint_and_no_address(cluster: Cluster) -> None:
    ns = cluster.netns()
    # The pod's netns already has an eth0, so the veth peer cannot be created there.
    sh("ip", "netns", "exec", ns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "x0")
    links_before = cluster.on_node("ip", "-o", "link", "show")
    rc, err = cluster.cni("ADD", "ctr-f", ns, pod="f")
    assert rc == 1 and err["code"] == 5 and "failed to create veth" in err["msg"]
    assert cluster.on_node("ip", "-o", "link", "show") == links_before
    assert cluster.calicoctl("get", "wep", "-o", "name") == ""
    assert "| 0 (0%)" in cluster.calicoctl("ipam", "show")


def test_add_into_a_missing_netns_is_an_error_that_allocates_nothing(cluster: Cluster) -> None:
    rc, err = cluster.cni("ADD", "ctr-m", "citest-does-not-exist", pod="m")
    assert rc == 1 and err["code"] == 3 and "does not exist" in err["msg"]
    assert "| 0 (0%)" in cluster.calicoctl("ipam", "show")


def test_a_retried_add_keeps_the_address_and_rewires(cluster: Cluster) -> None:
    ns = cluster.netns()
    first = cluster.cni("ADD", "ctr-r", ns, pod="r")[1]
    rc, second = cluster.cni("ADD", "ctr-r", ns, pod="r")
    assert rc == 0 and second["ips"] == first["ips"]
    assert "| 1 (0%)" in cluster.calicoctl("ipam", "show")
    cluster.on_node("ping", "-c1", "-W2", first["ips"][0]["address"].split("/")[0])


def test_non_kubernetes_containers_get_cni_names_and_a_network_profile(cluster: Cluster) -> None:
    ns = cluster.netns()
    rc, result = cluster.cni("ADD", "0123456789abcdef", ns)
    assert rc == 0
    assert result["interfaces"][0]["name"] == "cali0123456789a"
    assert "node1-cni-0123456789abcdef-eth0" in cluster.calicoctl("get", "wep", "-o", "name")
    profile = json.loads(cluster.calicoctl("get", "profile", "k8s-pod-network", "-o", "json"))
    assert profile["spec"]["labelsToApply"] == {"k8s-pod-network": ""}


def _start_agent(cluster: Cluster, sock: Path, *options: str) -> subprocess.Popen[bytes]:
    """The CNI agent in the node, its datastore the cluster's (it serves only the calls
    whose datastore is its own), in a mount namespace of its own (`ip netns exec` makes one).
    """
    # `ip netns exec` execs the agent in place: the Popen's PID is the agent's own. Its log
    # is kept next to the socket, for tests to read.
    env = {**os.environ, "DATASTORE_TYPE": "sqlite", "SQLITE_PATH": str(cluster.store)}
    sock.parent.mkdir(parents=True, exist_ok=True)
    with open(sock.with_suffix(".log"), "wb") as log:
        agent = subprocess.Popen(
            [
                *cluster.in_node,
                sys.executable,
                "-m",
                "pycalico.cni.agent",
                "--socket",
                str(sock),
                *options,
            ],
            env=env,
            stderr=log,
        )
    for _ in range(200):
        if sock.exists():
            return agent
        time.sleep(0.05)
    agent.terminate()
    raise AssertionError("the CNI agent did not start listening")


def _shim_call(
    cluster: Cluster,
    bin_dir: Path,
    command: str,
    container: str,
    netns: str,
    conf: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    """`netns` is a name under /run/netns, or a path."""
    env = {
        "PATH": os.environ["PATH"],
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container,
        "CNI_NETNS": netns if netns.startswith("/") else f"/run/netns/{netns}",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(bin_dir),
    }
    out = subprocess.run(
        [*cluster.in_node, str(bin_dir / "calico")],
        env=env,
        capture_output=True,
        check=False,
        input=json.dumps(conf or cluster.conf()).encode(),
        timeout=60,  # only turns a hang into a failure
    )
    return out.returncode, json.loads(out.stdout) if out.stdout.strip() else {}


def test_a_node_name_with_a_slash_is_refused_in_process_and_through_the_agent(
    cluster: Cluster,
) -> None:
    # Such a name once made one ADD claim every block of the pool under host/x/y/....
    from pycalico.cni.install import install

    conf = cluster.conf(nodename="x/y")
    rc, err = cluster.cni("ADD", "ctr-n", cluster.netns(), pod="n", conf=conf)
    assert rc == 1 and err["code"] == 7 and err["msg"].startswith("invalid node name 'x/y'")
    bin_dir, sock = cluster.tmp / "bin", cluster.tmp / "agent.sock"
    install(str(bin_dir), str(sock), compiled=True)
    agent = _start_agent(cluster, sock)
    # The shim's in-process fallback cannot run: the answer is the agent's.
    install(str(bin_dir), str(sock), python="/nonexistent/python")
    try:
        rc, via_agent = _shim_call(cluster, bin_dir, "ADD", "ctr-a", cluster.netns(), conf)
    finally:
        agent.terminate()
        agent.wait(timeout=10)
    assert rc == 1 and via_agent == err
    assert cluster.calicoctl("get", "wep", "-o", "name") == ""
    assert "Found 0 IPAM blocks." in cluster.calicoctl("ipam", "check")


@pytest.mark.parametrize("compiled", [True, False], ids=["c-shim", "python-shim"])
def test_the_installed_shim_goes_through_the_agent_and_works_without_it(
    cluster: Cluster, compiled: bool
) -> None:
    from pycalico.cni.install import install

    bin_dir, sock = cluster.tmp / "bin", cluster.tmp / "agent.sock"
    install(str(bin_dir), str(sock), compiled=compiled)
    assert (bin_dir / "calico").read_bytes().startswith(b"\x7fELF") == compiled
    first, second = cluster.netns(), cluster.netns()
    # No agent listening: the shim runs the plugin itself.
    rc, alone = _shim_call(cluster, bin_dir, "ADD", uuid.uuid4().hex, first)
    assert rc == 0 and alone["ips"]
    agent = _start_agent(cluster, sock)
    # From here on the shim's in-process fallback cannot run: every answer is the agent's.
    if compiled:
        install(str(bin_dir), str(sock), python="/nonexistent/python")
    else:
        shim = bin_dir / "calico"
        shim.write_text(
            re.sub(r"(?m)^PYTHON = .*$", "PYTHON = '/nonexistent/python'", shim.read_text())
        )
    try:
        container = uuid.uuid4().hex
        rc, via_agent = _shim_call(cluster, bin_dir, "ADD", container, second)
        assert rc == 0 and via_agent["ips"] != alone["ips"]
        sh(
            "ip",
            "netns",
            "exec",
            second,
            "ping",
            "-c1",
            "-W2",
            alone["ips"][0]["address"].split("/")[0],
        )
        assert _shim_call(cluster, bin_dir, "DEL", container, second)[0] == 0
        bad = subprocess.run(
            [*cluster.in_node, str(bin_dir / "calico")],
            input=b"{not json",
            env={"CNI_COMMAND": "ADD"},
            capture_output=True,
            check=False,
        )
        assert bad.returncode == 1 and json.loads(bad.stdout)["code"] == 6
    finally:
        agent.terminate()
        agent.wait(timeout=10)
    assert not sock.exists()


@pytest.mark.parametrize("compiled", [True, False], ids=["c-shim", "python-shim"])
def test_a_shim_built_once_with_a_relative_socket_finds_the_agent_beside_each_copy(
    cluster: Cluster, compiled: bool
) -> None:
    """A lab builds its shims once and copies them into every node's bin directory: the
    socket `../run/agent.sock` is the one beside the copy that runs, not the build's."""
    from pycalico.cni.install import install

    built = cluster.tmp / "built"
    install(str(built), "../run/agent.sock", python="/nonexistent/python", compiled=compiled)
    node_dir = cluster.tmp / "node7"
    (node_dir / "bin").mkdir(parents=True)
    for plugin in ("calico", "calico-ipam"):
        shim = built / plugin
        text = shim.read_bytes()
        if not compiled:  # the shim itself must start: only its in-process fallback may not
            text = text.replace(b"#!/nonexistent/python", f"#!{sys.executable}".encode(), 1)
        (node_dir / "bin" / plugin).write_bytes(text)
        (node_dir / "bin" / plugin).chmod(0o755)
    agent = _start_agent(cluster, node_dir / "run" / "agent.sock")
    try:
        # The in-process fallback cannot run: an answer is the agent's.
        rc, result = _shim_call(cluster, node_dir / "bin", "ADD", uuid.uuid4().hex, cluster.netns())
        assert rc == 0 and result["ips"], result
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_an_agent_socket_path_too_long_for_af_unix_is_one_line_and_exit_1(tmp_path: Path) -> None:
    sock = tmp_path / ("d" * 120) / "agent.sock"
    out = subprocess.run(
        [sys.executable, "-m", "pycalico.cni.agent", "--socket", str(sock)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 1
    assert out.stderr.endswith(": AF_UNIX path too long\n") and out.stderr.count("\n") == 1


def test_dual_stack_pods_get_a_v6_address_and_default_route_via_the_host_link_local(
    cluster: Cluster,
) -> None:
    cluster.calicoctl(
        "apply",
        "-f",
        "-",
        stdin="apiVersion: projectcalico.org/v3\n"
        "kind: IPPool\nmetadata: {name: pods6}\nspec: {cidr: 'fd00:247::/64'}\n",
    )
    conf = cluster.conf(ipam={"type": "calico-ipam", "assign_ipv6": "true"})
    # The node is a namespace of the test's own, so IPv6 forwarding (Felix's job) can be
    # switched on without touching the host's.
    a, b = cluster.netns(), cluster.netns()
    cluster.on_node("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    rc, result = cluster.cni("ADD", "ctr-v6a", a, pod="v6a", conf=conf)
    assert rc == 0, result
    [v4, v6] = [i["address"] for i in result["ips"]]
    assert v4.endswith("/32") and v6.endswith("/128") and v6.startswith("fd00:247:")
    routes = sh("ip", "netns", "exec", a, "ip", "-6", "route", "show", "default")
    assert routes.startswith("default via fe80::ecee:eeff:feee:eeee dev eth0")
    host_if = result["interfaces"][0]["name"]
    proxy_ndp = cluster.on_node("sysctl", "-n", f"net.ipv6.conf.{host_if}.proxy_ndp")
    assert proxy_ndp.strip() == "1"
    other = cluster.cni("ADD", "ctr-v6b", b, pod="v6b", conf=conf)[1]
    v6_b = other["ips"][1]["address"].split("/")[0]
    sh("ip", "netns", "exec", a, "ping", "-6", "-c1", "-W3", v6_b)


def test_a_hundred_concurrent_adds_through_the_agent_get_distinct_addresses(
    cluster: Cluster,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from pycalico.cni.install import install

    bin_dir, sock = cluster.tmp / "bin", cluster.tmp / "agent.sock"
    # A shim whose in-process fallback cannot run: every answer is the agent's.
    install(str(bin_dir), str(sock), python="/nonexistent/python")
    agent = _start_agent(cluster, sock)
    try:
        names = [cluster.netns() for _ in range(100)]
        ids = {n: uuid.uuid4().hex for n in names}
        with ThreadPoolExecutor(100) as pool:
            results = list(
                pool.map(lambda n: _shim_call(cluster, bin_dir, "ADD", ids[n], n), names)
            )
        assert all(rc == 0 for rc, _ in results), [r for r in results if r[0] != 0][:2]
        assert len({r["ips"][0]["address"] for _, r in results}) == 100
        with ThreadPoolExecutor(20) as pool:
            dels = list(pool.map(lambda n: _shim_call(cluster, bin_dir, "DEL", ids[n], n), names))
        assert all(rc == 0 for rc, _ in dels)
        assert "IPAM blocks record 0 allocations." in cluster.calicoctl("ipam", "check")
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_gc_removes_endpoints_interfaces_and_addresses_of_forgotten_containers(
    cluster: Cluster,
) -> None:
    kept, gone = cluster.netns(), cluster.netns()
    cluster.cni("ADD", "ctr-kept", kept, pod="kept")
    gone_if = cluster.cni("ADD", "ctr-gone", gone, pod="gone")[1]["interfaces"][0]["name"]
    conf = {
        **cluster.conf(),
        "cniVersion": "1.1.0",
        "cni.dev/valid-attachments": [{"containerID": "ctr-kept", "ifname": "eth0"}],
    }
    env = {"PATH": os.environ["PATH"], "CNI_COMMAND": "GC", "CNI_PATH": BIN_DIR}
    out = subprocess.run(
        [*cluster.in_node, os.path.join(BIN_DIR, "calico")],
        env=env,
        capture_output=True,
        input=json.dumps(conf).encode(),
        check=False,
    )
    assert out.returncode == 0, out.stdout
    assert cluster.calicoctl("get", "wep", "-o", "name").split() == [
        "workloadendpoint.projectcalico.org/node1-k8s-kept-eth0"
    ]
    assert cluster.on_node("ip", "link", "show", gone_if, check=False) == ""
    assert "| 1 (0%)" in cluster.calicoctl("ipam", "show")


def _ifb_links(run: Callable[..., str]) -> set[str]:
    """The ifb devices in the namespace `run` runs commands in."""
    return {
        line.split(": ")[1] for line in run("ip", "-o", "link", "show", "type", "ifb").splitlines()
    }


def test_chained_bandwidth_plugin_shapes_the_calico_interface(cluster: Cluster) -> None:
    """A conflist run the way libcni runs it: calico, then Debian's bandwidth with prevResult."""
    ns = cluster.netns()
    rc, result = cluster.cni("ADD", "ctr-bw", ns, pod="bw")
    assert rc == 0, result
    host_if = result["interfaces"][0]["name"]
    bandwidth = {
        "cniVersion": "1.0.0",
        "name": "k8s-pod-network",
        "type": "bandwidth",
        "ingressRate": 8_000_000,
        "ingressBurst": 1_000_000,
        "egressRate": 8_000_000,
        "egressBurst": 1_000_000,
        "prevResult": result,
    }
    env = {
        "PATH": os.environ["PATH"],
        "CNI_CONTAINERID": "ctr-bw",
        "CNI_NETNS": f"/run/netns/{ns}",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/usr/lib/cni",
    }
    # Where ifb is a module, loading it on first use also adds ifb0/ifb1, and a module's
    # devices start in the host's namespace whoever asked: the test removes those again.
    # The plugin's own ifb device is the node's, gone with the node's namespace at the latest.
    host_ifbs_before = _ifb_links(sh)

    def bandwidth_call(command: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*cluster.in_node, "/usr/lib/cni/bandwidth"],
            env={**env, "CNI_COMMAND": command},
            input=json.dumps(bandwidth).encode(),
            capture_output=True,
            check=False,
        )

    try:
        out = bandwidth_call("ADD")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "tbf" in cluster.on_node("tc", "qdisc", "show", "dev", host_if)
        assert bandwidth_call("DEL").returncode == 0
        assert not any(n.startswith("bwp") for n in _ifb_links(cluster.on_node))
    finally:
        bandwidth_call("DEL")
        for name in _ifb_links(sh) - host_ifbs_before:
            sh("ip", "link", "del", name, check=False)
    assert cluster.cni("DEL", "ctr-bw", ns, pod="bw")[0] == 0


def test_a_late_del_for_an_old_sandbox_leaves_the_new_sandbox_wired(cluster: Cluster) -> None:
    """containerd sends a second DEL with an empty netns after the pod was re-created."""
    old_ns, new_ns = cluster.netns(), cluster.netns()
    assert cluster.cni("ADD", "ctr-old", old_ns, pod="same")[0] == 0
    assert cluster.cni("DEL", "ctr-old", old_ns, pod="same")[0] == 0
    rc, new = cluster.cni("ADD", "ctr-new", new_ns, pod="same")
    assert rc == 0
    assert cluster.cni("DEL", "ctr-old", "", pod="same")[0] == 0
    assert sh("ip", "netns", "exec", new_ns, "ip", "-br", "link", "show", "eth0").strip()
    cluster.on_node("ping", "-c1", "-W2", new["ips"][0]["address"].split("/")[0])
    assert "node1-k8s-same-eth0" in cluster.calicoctl("get", "wep", "-o", "name")


def test_a_delegated_ipam_plugin_gets_the_runtime_environment(cluster: Cluster) -> None:
    conf = cluster.conf(
        ipam={
            "type": "host-local",
            "subnet": "10.240.7.0/24",
            "dataDir": str(cluster.tmp / "host-local"),
        }
    )
    ns = cluster.netns()
    env_path = f"{BIN_DIR}:/usr/lib/cni"
    base = {
        "PATH": os.environ["PATH"],
        "CNI_CONTAINERID": "ctr-hl",
        "CNI_IFNAME": "eth0",
        "CNI_NETNS": f"/run/netns/{ns}",
        "CNI_PATH": env_path,
    }
    out = subprocess.run(
        [*cluster.in_node, os.path.join(BIN_DIR, "calico")],
        env={**base, "CNI_COMMAND": "ADD"},
        input=json.dumps(conf).encode(),
        capture_output=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout
    assert json.loads(out.stdout)["ips"][0]["address"].startswith("10.240.7.")
    out = subprocess.run(
        [*cluster.in_node, os.path.join(BIN_DIR, "calico")],
        env={**base, "CNI_COMMAND": "DEL"},
        input=json.dumps(conf).encode(),
        capture_output=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout
    assert not list((cluster.tmp / "host-local").rglob("10.240.7.*"))


# Hardening against hostile or broken input (issue 16): each through the plugin run
# in-process and through the agent, the way a runtime calls them.

PluginCall = Callable[..., tuple[int, dict[str, Any]]]


def _stop_agent(agent: subprocess.Popen[bytes]) -> None:
    agent.terminate()
    try:
        agent.wait(timeout=10)
    except subprocess.TimeoutExpired:  # a worker stuck for good: it cannot stop cleanly
        agent.kill()
        agent.wait()


@pytest.fixture(params=["in-process", "agent"])
def plugin(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[PluginCall]:
    """Calls `calico` in the node: the plugin itself, or the installed shim with an agent
    listening and no in-process fallback, so that every answer is the agent's."""
    from pycalico.cni.install import install

    agent = None
    if request.param == "agent":
        bin_dir, sock = cluster.tmp / "bin", cluster.tmp / "agent.sock"
        install(str(bin_dir), str(sock), python="/nonexistent/python")
        agent = _start_agent(cluster, sock)
        binary = str(bin_dir / "calico")
    else:
        binary = os.path.join(BIN_DIR, "calico")

    def call(
        command: str,
        container: str,
        netns: str,
        conf: Any = None,
        stdin: bytes | None = None,
        cni_path: str = BIN_DIR,
        pod: str = "",
    ) -> tuple[int, dict[str, Any]]:
        env = {
            "PATH": os.environ["PATH"],
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container,
            "CNI_NETNS": netns,
            "CNI_IFNAME": "eth0",
            "CNI_PATH": cni_path,
            "CNI_ARGS": f"K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod or 'pod-' + container}",
        }
        body = stdin if stdin is not None else json.dumps(conf or cluster.conf()).encode()
        # The timeout only turns a hang into a failure; no call here takes a second.
        out = subprocess.run(
            [*cluster.in_node, binary], env=env, input=body, capture_output=True, timeout=60
        )
        assert b"Traceback" not in out.stdout + out.stderr
        assert len(out.stdout.splitlines()) <= 1
        return out.returncode, json.loads(out.stdout) if out.stdout.strip() else {}

    try:
        yield call
    finally:
        if agent is not None:
            _stop_agent(agent)
            assert b"Traceback" not in (cluster.tmp / "agent.log").read_bytes()


def _nothing_left(cluster: Cluster, links_before: str) -> None:
    assert cluster.on_node("ip", "-o", "link", "show") == links_before
    assert cluster.calicoctl("get", "wep", "-o", "name") == ""
    assert "| 0 (0%)" in cluster.calicoctl("ipam", "show")


def _not_a_netns(cluster: Cluster, kind: str) -> str:
    """A path that exists but is no network namespace."""
    if kind == "etc-hostname":
        return "/etc/hostname"
    path = cluster.tmp / kind
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:  # what stays at a namespace's path once it is unmounted
        path.touch()
    return str(path)


@pytest.mark.parametrize("kind", ["empty-file", "directory", "etc-hostname", "fifo"])
def test_a_netns_path_that_is_no_namespace_fails_add_and_del_removes_what_add_made(
    cluster: Cluster, plugin: PluginCall, kind: str
) -> None:
    bad = _not_a_netns(cluster, kind)
    links_before = cluster.on_node("ip", "-o", "link", "show")
    rc, err = plugin("ADD", "ctr-nn1", bad)
    assert rc == 1 and err["code"] == 4, err
    assert err["msg"] == f"CNI_NETNS {bad} is not a network namespace"
    _nothing_left(cluster, links_before)
    # The pod was wired into its real namespace, which lives on; DEL is given a path that
    # is no namespace (its bind mount gone, a runtime's mistake): the pair still goes.
    ns = cluster.netns()
    rc, result = plugin("ADD", "ctr-nn2", f"/run/netns/{ns}")
    assert rc == 0, result
    assert cluster.on_node("ip", "-o", "link", "show") != links_before
    assert plugin("DEL", "ctr-nn2", bad) == (0, {})
    _nothing_left(cluster, links_before)
    assert plugin("DEL", "ctr-nn2", bad) == (0, {})  # and again, as runtimes retry


def test_del_without_a_namespace_leaves_a_newer_sandbox_of_the_pod_alone(
    cluster: Cluster, plugin: PluginCall
) -> None:
    """Same pod, same host interface name: only the interface routing the old sandbox's
    addresses is the old sandbox's."""
    old_ns, new_ns = cluster.netns(), cluster.netns()
    old_ip = cluster.cni("ADD", "ctr-old", old_ns, pod="same")[1]["ips"][0]["address"]
    # The newer sandbox's ADD replaces the host end; the old sandbox's address is still held.
    new_ip = cluster.cni("ADD", "ctr-new", new_ns, pod="same")[1]["ips"][0]["address"]
    assert old_ip != new_ip
    assert plugin("DEL", "ctr-old", str(cluster.tmp), pod="same") == (0, {})
    cluster.on_node("ping", "-c1", "-W2", new_ip.split("/")[0])
    assert "| 1 (0%)" in cluster.calicoctl("ipam", "show")


def _stalled_call(sock: Path) -> socket.socket:
    """A caller that announces a request and never sends it (a shim stopped mid-send)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(str(sock))
    conn.sendall(f"{PROTOCOL} calico 10 10 -\n".encode())
    return conn


def _agent_answer(conn: socket.socket) -> tuple[int, dict[str, Any]]:
    conn.settimeout(60)  # only turns a hang into a failure
    reply = b""
    while chunk := conn.recv(1 << 16):
        reply += chunk
    head, _, body = reply.partition(b"\n")
    return int(head.split()[0]), json.loads(body)


def test_stalled_and_fifo_calls_do_not_keep_the_agent_from_answering(cluster: Cluster) -> None:
    """Each call the agent serves has a deadline, and nothing a caller sends can block it:
    with a worker's worth of stalled callers and of FIFO namespaces pending, a normal ADD is
    answered at once, the stalled ones an error at the deadline."""
    from concurrent.futures import ThreadPoolExecutor

    from pycalico.cni.agent import Agent
    from pycalico.cni.install import install

    bin_dir, sock = cluster.tmp / "bin", cluster.tmp / "agent.sock"
    install(str(bin_dir), str(sock), python="/nonexistent/python")
    deadline = 8.0  # the production default is 30 s; the test need not wait that long
    agent = _start_agent(cluster, sock, "--deadline", str(deadline))
    fifo = _not_a_netns(cluster, "fifo")
    stalled: list[socket.socket] = []
    try:
        stalled = [_stalled_call(sock) for _ in range(Agent.workers)]
        with ThreadPoolExecutor(Agent.workers) as pool:
            fifo_calls = [
                pool.submit(_shim_call, cluster, bin_dir, "ADD", f"ctr-fifo{i}", fifo)
                for i in range(Agent.workers)
            ]
            ns = cluster.netns()
            rc, result = _shim_call(cluster, bin_dir, "ADD", "ctr-normal", f"/run/netns/{ns}")
            assert rc == 0, result
            for conn in stalled:  # answered while every stalled call is still waiting
                conn.setblocking(False)
                with pytest.raises(BlockingIOError):
                    conn.recv(1)
            for call in fifo_calls:
                rc, err = call.result()
                assert rc == 1 and err["code"] == 4 and "not a network namespace" in err["msg"]
        for conn in stalled:
            rc, err = _agent_answer(conn)
            assert rc == 1 and err["code"] == 11, err
            assert err["msg"] == "the CNI agent got no complete request within 8s"
        assert _shim_call(cluster, bin_dir, "DEL", "ctr-normal", f"/run/netns/{ns}")[0] == 0
    finally:
        for conn in stalled:
            conn.close()
        _stop_agent(agent)


def test_an_add_past_the_agent_deadline_is_answered_and_undone(cluster: Cluster) -> None:
    """An ADD held up (here: the node's IPAM lock held by someone else) is answered with
    "try again later" at the deadline; when it then completes, what it made is removed."""
    import fcntl

    from pycalico.cni.install import install

    bin_dir, sock = cluster.tmp / "bin", cluster.tmp / "agent.sock"
    install(str(bin_dir), str(sock), python="/nonexistent/python")
    agent = _start_agent(cluster, sock, "--deadline", "3")
    links_before = cluster.on_node("ip", "-o", "link", "show")
    try:
        with open(cluster.tmp / "ipam.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            ns = cluster.netns()
            rc, err = _shim_call(cluster, bin_dir, "ADD", "ctr-late", f"/run/netns/{ns}")
            assert rc == 1 and err == {
                "cniVersion": "1.1.0",
                "code": 11,
                "msg": "the CNI agent did not finish ADD within 3s",
            }
        for _ in range(200):  # the ADD goes on once the lock is free, then is undone
            if (
                b"ADD of ctr-late finished after its deadline"
                in (cluster.tmp / "agent.log").read_bytes()
            ):
                break
            time.sleep(0.05)
        assert b"after its deadline, undone" in (cluster.tmp / "agent.log").read_bytes()
        _nothing_left(cluster, links_before)
    finally:
        _stop_agent(agent)


@pytest.mark.parametrize("up", [1, 3])
def test_an_ipam_type_with_a_path_is_refused_and_runs_nothing(
    cluster: Cluster, plugin: PluginCall, up: int
) -> None:
    """libcni's CVE-2021-20206: a plugin name is looked up in CNI_PATH, never followed out."""
    cni_path = cluster.tmp / "a" / "b" / "bin"
    cni_path.mkdir(parents=True)
    ran = cluster.tmp / "ran"
    evil = cni_path.parents[up - 1] / "evil.sh"
    evil.write_text(f"#!/bin/sh\ntouch {ran}\n")
    evil.chmod(0o755)
    name = "../" * up + "evil.sh"
    conf = cluster.conf(ipam={"type": name})
    for command in ("ADD", "DEL"):
        rc, err = plugin(command, "ctr-evil", "/run/netns/none", conf=conf, cni_path=str(cni_path))
        assert rc == 1 and err == {
            "cniVersion": "1.0.0",
            "code": 7,
            "msg": f"invalid plugin name: {name}: ipam.type must name a plugin in CNI_PATH",
        }
    assert not ran.exists()


@pytest.mark.parametrize(
    ("change", "code", "msg"),
    [
        ({"container_settings": "x"}, 7, "container_settings must be an object, not a string"),
        (
            {"container_settings": {"allow_ip_forwarding": "yes"}},
            7,
            "container_settings.allow_ip_forwarding must be true or false",
        ),
        (
            {"args": {"cni": {"labels": 5}}},
            7,
            "args.cni.labels must be a list of {key, value} objects",
        ),
        ({"args": {"cni": {"ips": 5}}}, 7, "args.cni.ips must be a list of strings"),
    ],
)
def test_a_field_of_the_wrong_type_is_named_in_the_error(
    cluster: Cluster, plugin: PluginCall, change: dict[str, Any], code: int, msg: str
) -> None:
    ns = cluster.netns()
    links_before = cluster.on_node("ip", "-o", "link", "show")
    rc, err = plugin("ADD", "ctr-type", f"/run/netns/{ns}", conf=cluster.conf(**change))
    assert rc == 1 and err == {"cniVersion": "1.0.0", "code": code, "msg": msg}
    _nothing_left(cluster, links_before)


def test_a_deeply_nested_config_is_a_decode_failure(cluster: Cluster, plugin: PluginCall) -> None:
    rc, err = plugin("ADD", "ctr-deep", "", stdin=b"[" * 100_000 + b"]" * 100_000)
    assert rc == 1 and err == {
        "cniVersion": "1.1.0",
        "code": 6,
        "msg": "error parsing network configuration",
        "details": "nested too deeply (arrays and objects within one another)",
    }


def test_a_config_over_the_size_limit_gets_the_same_error_on_every_path(
    cluster: Cluster, plugin: PluginCall
) -> None:
    conf = cluster.conf(padding="x" * (20 << 20))
    rc, err = plugin("ADD", "ctr-big", "", conf=conf)
    assert rc == 1 and err == {
        "cniVersion": "1.1.0",
        "code": 7,
        "msg": "the network configuration is larger than 16 MiB (16777216 bytes), "
        "the most accepted",
    }


# The agent in a mount namespace of its own (calico-node under `ip netns exec`, or in a
# container): a path the runtime names may be nothing, or another file, where the agent is.
# The runtime here is the test itself, in the host's mount namespace.


@contextlib.contextmanager
def _callers_own_dir(cluster: Cluster) -> Iterator[Path]:
    """A directory whose contents only the host's mount namespace has, mounted after the
    agent started: a tmpfs inside a private tmpfs. (Where the host's root is a shared mount,
    the outer one reaches the agent's namespace too, but nothing mounted in it does.)"""
    outer = cluster.tmp / "caller"
    outer.mkdir()
    sh("mount", "-t", "tmpfs", "-o", "size=1m", "caller", str(outer))
    try:
        sh("mount", "--make-private", str(outer))
        inner = outer / "own"
        inner.mkdir()
        sh("mount", "-t", "tmpfs", "-o", "size=64m", "own", str(inner))
        yield inner
    finally:
        sh("umount", "--recursive", "--lazy", str(outer), check=False)


def _pinned_netns(path: Path) -> str:
    """A new network namespace, bind-mounted at `path` only (not under /run/netns)."""
    path.touch()
    sh("unshare", f"--net={path}", "true")
    return str(path)


def _seen_by(pid: int, *test: str) -> bool:
    """Whether `test` (test(1)'s arguments) holds for the process `pid`, in its own mount
    namespace."""
    out = subprocess.run(
        ["nsenter", f"--mount=/proc/{pid}/ns/mnt", "test", *test], capture_output=True, check=False
    )
    return out.returncode == 0


def _fs_type(path: str, pid: int | None = None) -> str:
    """The file system at `path` (`nsfs` for a namespace), in the mount namespace of the
    process `pid` (default: this one's), or nothing if there is no such path there."""
    enter = ["nsenter", f"--mount=/proc/{pid}/ns/mnt"] if pid else []
    out = subprocess.run(
        [*enter, "stat", "-f", "-c", "%T", path], capture_output=True, text=True, check=False
    )
    return out.stdout.strip()


def _install_agent_only(bin_dir: Path, sock: Path, compiled: bool) -> None:
    """The shims, with an in-process fallback that cannot run: every answer is the agent's."""
    from pycalico.cni.install import install

    if compiled:
        install(str(bin_dir), str(sock), python="/nonexistent/python")
        return
    install(str(bin_dir), str(sock), compiled=False)
    for name in ("calico", "calico-ipam"):
        shim = bin_dir / name
        shim.write_text(
            re.sub(r"(?m)^PYTHON = .*$", "PYTHON = '/nonexistent/python'", shim.read_text())
        )


def _call_from_host(
    cluster: Cluster,
    bin_dir: Path,
    command: str,
    container: str,
    netns: str,
    conf: dict[str, Any] | None = None,
    cni_path: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """The shim run as a runtime on the host runs it: the host's mount namespace (where
    `netns` and `cni_path` are), the node's network namespace (where pods are wired)."""
    env = {
        "PATH": os.environ["PATH"],
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container,
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": cni_path or str(bin_dir),
        "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-{container}",
    }
    out = subprocess.run(
        ["nsenter", f"--net=/run/netns/{cluster.node}", str(bin_dir / "calico")],
        env=env,
        input=json.dumps(conf or cluster.conf()).encode(),
        capture_output=True,
        check=False,
        timeout=60,  # only turns a hang into a failure
    )
    assert b"Traceback" not in out.stdout + out.stderr, out.stderr
    return out.returncode, json.loads(out.stdout) if out.stdout.strip() else {}


def _in_pod(netns: str, *cmd: str, check: bool = True) -> str:
    return sh("nsenter", f"--net={netns}", *cmd, check=check)


def _raw_request(
    sock: Path,
    env: dict[str, str],
    conf: Any,
    netns: str = "-",
    fd: int | None = None,
    header: bytes | None = None,
) -> bytes:
    """One exchange with the agent, as a shim of this version speaks (or with `header`
    instead of its header line); the agent's reply as it came."""
    body = b"\0".join(f"{k}={v}".encode() for k, v in env.items())
    stdin = conf if isinstance(conf, bytes) else json.dumps(conf).encode()
    if header is None:
        header = f"{PROTOCOL} calico {len(body)} {len(stdin)} {netns}\n".encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(60)  # only turns a hang into a failure
        conn.connect(str(sock))
        if fd is None:
            conn.sendall(header + body + stdin)
        else:
            socket.send_fds(conn, [header], [fd])
            conn.sendall(body + stdin)
        reply = b""
        while chunk := conn.recv(1 << 16):
            reply += chunk
    return reply


def _cni_env(command: str, container: str, netns: str, cni_path: str = BIN_DIR) -> dict[str, str]:
    return {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container,
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": cni_path,
    }


@pytest.mark.parametrize("compiled", [True, False], ids=["c-shim", "python-shim"])
def test_an_agent_in_another_mount_namespace_wires_a_pod_only_the_runtime_can_see(
    cluster: Cluster, compiled: bool
) -> None:
    """The issue's reproduction: the pod's namespace is mounted after the agent started, in
    the runtime's mount namespace only. The shim opens it and passes it to the agent."""
    bin_dir, sock = cluster.tmp / "bin", cluster.tmp / "run" / "cni-agent.sock"
    _install_agent_only(bin_dir, sock, compiled)
    agent = _start_agent(cluster, sock)  # `ip netns exec`: a mount namespace of its own
    links_before = cluster.on_node("ip", "-o", "link", "show")
    try:
        with _callers_own_dir(cluster) as own:
            pod = _pinned_netns(own / "pod")
            assert _fs_type(pod) == "nsfs"
            assert not _seen_by(agent.pid, "-e", pod)  # the agent cannot see it
            rc, result = _call_from_host(cluster, bin_dir, "ADD", "ctr-own", pod)
            assert rc == 0, result
            ip = result["ips"][0]["address"].split("/")[0]
            host_if = result["interfaces"][0]["name"]
            assert result["interfaces"][1]["sandbox"] == pod
            addresses = json.loads(_in_pod(pod, "ip", "-j", "addr", "show", "eth0"))[0]
            assert ip in [a["local"] for a in addresses["addr_info"]]
            assert _in_pod(pod, "ip", "route").startswith("default via 169.254.1.1 dev eth0")
            route = cluster.on_node("ip", "route", "show", ip).strip()
            assert route == f"{ip} dev {host_if} scope link"
            cluster.on_node("ping", "-c1", "-W2", ip)
            assert _call_from_host(cluster, bin_dir, "CHECK", "ctr-own", pod) == (0, {})
            assert _call_from_host(cluster, bin_dir, "DEL", "ctr-own", pod) == (0, {})
            assert _in_pod(pod, "ip", "-o", "link", "show", "eth0", check=False) == ""
        _nothing_left(cluster, links_before)
    finally:
        _stop_agent(agent)
    assert b"Traceback" not in (sock.with_suffix(".log")).read_bytes()


@pytest.mark.parametrize("compiled", [True, False], ids=["c-shim", "python-shim"])
def test_a_delegated_ipam_plugin_in_a_cni_path_only_the_runtime_has_is_run_there(
    cluster: Cluster, compiled: bool
) -> None:
    """host-local from a CNI_PATH, and with a data directory, that only the runtime's mount
    namespace has: the agent hands the call back, and the shim runs it where it is."""
    from pycalico.cni.install import install

    bin_dir, sock = cluster.tmp / "bin", cluster.tmp / "run" / "cni-agent.sock"
    install(str(bin_dir), str(sock), compiled=compiled)
    agent = _start_agent(cluster, sock)
    links_before = cluster.on_node("ip", "-o", "link", "show")
    try:
        with _callers_own_dir(cluster) as own:
            cni_path = own / "cni-bin"
            cni_path.mkdir()
            shutil.copy("/usr/lib/cni/host-local", cni_path / "host-local")
            assert not _seen_by(agent.pid, "-e", str(cni_path / "host-local"))
            data = own / "host-local"
            conf = cluster.conf(
                ipam={"type": "host-local", "subnet": "10.240.8.0/24", "dataDir": str(data)}
            )
            pod = _pinned_netns(own / "pod")
            rc, result = _call_from_host(
                cluster, bin_dir, "ADD", "ctr-hl", pod, conf, str(cni_path)
            )
            assert rc == 0, result
            ip = result["ips"][0]["address"].split("/")[0]
            assert ip.startswith("10.240.8.")
            assert (data / "k8s-pod-network" / ip).exists()  # host-local's, in the runtime's
            assert _in_pod(pod, "ip", "-br", "link", "show", "eth0").strip()
            rc, _ = _call_from_host(cluster, bin_dir, "DEL", "ctr-hl", pod, conf, str(cni_path))
            assert rc == 0
            assert not (data / "k8s-pod-network" / ip).exists()
            # The agent was asked, and handed the calls back.
            env = _cni_env("ADD", "ctr-hl", pod, str(cni_path))
            assert _raw_request(sock, env, conf) == b"in-process 0\n"
        _nothing_left(cluster, links_before)
    finally:
        _stop_agent(agent)


def test_a_netconf_naming_another_datastore_runs_in_process_against_it(cluster: Cluster) -> None:
    """The agent uses its own datastore; a netconf naming another (here one only the
    runtime's mount namespace has) is the shim's to run in-process, against that store."""
    from pycalico.cni.install import install

    bin_dir, sock = cluster.tmp / "bin", cluster.tmp / "run" / "cni-agent.sock"
    install(str(bin_dir), str(sock), compiled=True)
    agent = _start_agent(cluster, sock)
    try:
        with _callers_own_dir(cluster) as own:
            other = Cluster(own, cluster.node)
            other.store = own / "other.db"
            other.calicoctl(
                "apply",
                "-f",
                "-",
                stdin="apiVersion: projectcalico.org/v3\nkind: IPPool\n"
                "metadata: {name: other}\nspec: {cidr: 10.249.0.0/16}\n---\n"
                "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: node1}\n",
            )
            conf = cluster.conf(sqlite_path=str(other.store))
            pod = _pinned_netns(own / "pod")
            rc, result = _call_from_host(cluster, bin_dir, "ADD", "ctr-o", pod, conf)
            assert rc == 0, result
            assert result["ips"][0]["address"].startswith("10.249.")
            assert "node1-k8s-pod--ctr--o-eth0" in other.calicoctl("get", "wep", "-o", "name")
            assert "| 1 (0%)" in other.calicoctl("ipam", "show")
            # The agent's own store has none of it.
            assert cluster.calicoctl("get", "wep", "-o", "name") == ""
            assert "| 0 (0%)" in cluster.calicoctl("ipam", "show")
            assert _call_from_host(cluster, bin_dir, "DEL", "ctr-o", pod, conf) == (0, {})
            assert other.calicoctl("get", "wep", "-o", "name") == ""
            assert "| 0 (0%)" in other.calicoctl("ipam", "show")
            # The agent was asked, and handed the calls back.
            assert _raw_request(sock, _cni_env("ADD", "ctr-o", pod), conf) == b"in-process 0\n"
    finally:
        _stop_agent(agent)


@pytest.mark.parametrize("kind", ["missing", "under-a-file"])
def test_a_netns_path_that_cannot_be_opened_gets_the_same_error_on_every_path(
    cluster: Cluster, plugin: PluginCall, kind: str
) -> None:
    bad, code, msg = {
        "missing": (
            str(cluster.tmp / "gone"),
            3,
            f"network namespace {cluster.tmp / 'gone'} does not exist",
        ),
        "under-a-file": (
            "/etc/hostname/ns",
            4,
            "cannot open CNI_NETNS /etc/hostname/ns: Not a directory",
        ),
    }[kind]
    links_before = cluster.on_node("ip", "-o", "link", "show")
    rc, err = plugin("ADD", "ctr-bad", bad)
    assert rc == 1 and err == {"cniVersion": "1.0.0", "code": code, "msg": msg}
    _nothing_left(cluster, links_before)


def test_del_of_a_pod_whose_namespace_is_gone_succeeds_and_releases_its_address(
    cluster: Cluster, plugin: PluginCall
) -> None:
    links_before = cluster.on_node("ip", "-o", "link", "show")
    ns = cluster.netns()
    rc, result = plugin("ADD", "ctr-gone", f"/run/netns/{ns}")
    assert rc == 0, result
    sh("ip", "netns", "del", ns)
    assert plugin("DEL", "ctr-gone", f"/run/netns/{ns}") == (0, {})
    _nothing_left(cluster, links_before)
    assert plugin("DEL", "ctr-gone", f"/run/netns/{ns}") == (0, {})


def test_the_agent_wires_only_the_namespace_it_was_handed_never_the_path(
    cluster: Cluster,
) -> None:
    """CNI_NETNS only names the namespace in messages: a descriptor that is no network
    namespace is refused though the path names one, and a word without a descriptor is a
    bad request."""
    sock = cluster.tmp / "run" / "cni-agent.sock"
    agent = _start_agent(cluster, sock)
    links_before = cluster.on_node("ip", "-o", "link", "show")
    try:
        ns = f"/run/netns/{cluster.netns()}"
        uts = os.open("/proc/self/ns/uts", os.O_RDONLY)
        try:
            reply = _raw_request(sock, _cni_env("ADD", "ctr-u", ns), cluster.conf(), "fd", uts)
        finally:
            os.close(uts)
        head, _, body = reply.partition(b"\n")
        assert head.split()[0] == b"1" and json.loads(body) == {
            "cniVersion": "1.0.0",
            "code": 4,
            "msg": f"CNI_NETNS {ns} is not a network namespace",
        }
        reply = _raw_request(sock, _cni_env("ADD", "ctr-u", ns), cluster.conf(), "fd")
        err = json.loads(reply.partition(b"\n")[2])
        assert err["msg"].startswith("bad request to the CNI agent: <netns> is 'fd' but 0")
        _nothing_left(cluster, links_before)
    finally:
        _stop_agent(agent)


def test_a_shim_of_the_older_wire_format_is_told_to_reinstall_not_left_hanging(
    cluster: Cluster,
) -> None:
    sock = cluster.tmp / "run" / "cni-agent.sock"
    agent = _start_agent(cluster, sock)
    try:
        env = _cni_env("ADD", "ctr-v1", f"/run/netns/{cluster.netns()}")
        conf = cluster.conf(padding="x" * (1 << 20))  # more than a socket buffer holds
        body = b"\0".join(f"{k}={v}".encode() for k, v in env.items())
        stdin = json.dumps(conf).encode()
        # What a shim of the first version sends: `<plugin> <env bytes> <stdin bytes>`.
        header = f"calico {len(body)} {len(stdin)}\n".encode()
        reply = _raw_request(sock, env, conf, header=header)
        head, _, out = reply.partition(b"\n")
        assert head == f"1 {len(out)}".encode()
        assert json.loads(out) == {
            "cniVersion": "1.1.0",
            "code": 999,
            "msg": "this CNI shim speaks an older wire format (version 1), the node's CNI "
            f"agent {PROTOCOL}: reinstall the shims from the agent's pycalico "
            "(python -m pycalico.cni.install)",
        }
    finally:
        _stop_agent(agent)
    assert b"Traceback" not in (sock.with_suffix(".log")).read_bytes()


def test_the_plugins_start_up_never_imports_prometheus_client(cluster: Cluster) -> None:
    """calico-node's metrics use prometheus_client; a CNI call is a Python start-up of its
    own (the plugin, or the shim's hand-back to it) and must not pay for importing it.
    Python's import profile of a real ADD and DEL lists every module either imported."""
    ns = cluster.netns()
    for command in ("ADD", "DEL"):
        out = subprocess.run(
            [*cluster.in_node, os.path.join(BIN_DIR, "calico")],
            env={
                **_cni_env(command, "ctr-imports", f"/run/netns/{ns}"),
                "PATH": os.environ["PATH"],
                "PYTHONPROFILEIMPORTTIME": "1",
            },
            input=json.dumps(cluster.conf()).encode(),
            capture_output=True,
            check=False,
        )
        assert out.returncode == 0, out.stdout
        imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.decode().splitlines()}
        assert "pycalico.cni.main" in imported and "pycalico.ipam.allocator" in imported
        assert not {name for name in imported if name.startswith("prometheus_client")}

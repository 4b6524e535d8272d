"""All of etcd down for 30 s under a running lab, and what each part of Calico does about it.

One outage serves every test here (it is the expensive part): a two-node lab on its
3-member etcd cluster, a TCP connection between pods on the two nodes, then every member
stopped for 30 s while calicoctl and a CNI ADD are tried, then the members started again on
their data. The tests read what was seen during the outage and check the lab after it; no
calico-node is restarted at any point.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from pycalico.datastore.etcd import EtcdBackend
from pycalico.lab import cluster, etcd_cluster, namespaces, pods
from pycalico.lab.state import LabState
from pycalico.netns import in_netns
from tests.support.lab_driver import down_leaving_nothing, lab, wait_for

pytestmark = pytest.mark.e2e

OUTAGE = 30.0
# The bound for calicoctl against a cluster that is down.
CALICOCTL_BOUND = 5.0
STREAM_PORT = 7000
# How long the lab may take to program something new once etcd is back. Not a timing
# assertion: each wait ends as soon as the change works.
CATCH_UP = 30.0
NEW_POOL = "10.250.0.0/16"

KernelView = tuple[list[str], list[str]]


def on_node(
    state: LabState, node: str, *command: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """A command in the node's namespace with the node's environment (its datastore)."""
    return subprocess.run(
        ["ip", "netns", "exec", namespaces.ns_name(state.name, node), *command],
        input=stdin,
        env=cluster.node_env(state, node),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def kernel_view(netns: str) -> KernelView:
    """(interface names, IPv4 routes of every table) in a namespace.

    IPv6 is left out: the kernel adds link-local routes to new interfaces on its own time.
    """

    def ip(*args: str) -> str:
        return subprocess.run(
            ["ip", "-netns", netns, *args], capture_output=True, text=True, check=True
        ).stdout

    links = ip("-o", "link", "show").splitlines()
    names = sorted(line.split(":")[1].strip().split("@")[0] for line in links)
    return names, sorted(ip("-4", "route", "show", "table", "all").splitlines())


def cni_add(
    state: LabState, node: str, netns: str, container: str
) -> subprocess.CompletedProcess[bytes]:
    """A CNI ADD through the node's `calico` executable, made as `calico-lab pod add` (and a
    container runtime) makes it."""
    plugin = pods.conflist(state, node)["plugins"][0]
    bin_dir = state.path("nodes", node, "bin")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": container,
        "CNI_NETNS": f"/run/netns/{netns}",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": f"{bin_dir}:/usr/lib/cni",
        "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=during-outage",
    }
    return subprocess.run(
        ["ip", "netns", "exec", namespaces.ns_name(state.name, node), f"{bin_dir}/calico"],
        env=env,
        input=json.dumps({**plugin, "cniVersion": "1.0.0", "name": pods.NETWORK}).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )


def tcp_answer(netns: str, ip: str, port: int) -> str | None:
    """What the lab's echo server at ip:port says to a connection from `netns`, if reached."""

    def ask() -> str | None:
        try:
            with socket.create_connection((ip, port), timeout=1) as sock:
                return sock.recv(64).decode().strip()
        except OSError:
            return None

    return in_netns(f"/run/netns/{netns}", ask)


class Stream:
    """One TCP connection from a pod on one node to a pod on another, exercised every 0.1 s
    by a thread: each message must come back, intact, on the same connection."""

    def __init__(self, client_netns: str, server_netns: str, server_ip: str) -> None:
        # A socket stays in the namespace it was made in, so the test process holds both
        # ends itself and there is no extra process to clean up.
        self._listener = in_netns(
            f"/run/netns/{server_netns}", lambda: socket.create_server(("0.0.0.0", STREAM_PORT))
        )
        self._client = in_netns(
            f"/run/netns/{client_netns}",
            lambda: socket.create_connection((server_ip, STREAM_PORT), timeout=5),
        )
        self._server, _ = self._listener.accept()
        self._stop = threading.Event()
        self.exchanges: list[tuple[float, bool]] = []  # (when, whether it came back intact)
        self._echo = threading.Thread(target=self._echo_back, daemon=True)
        self._talk = threading.Thread(target=self._talk_on, daemon=True)
        self._echo.start()
        self._talk.start()

    def _echo_back(self) -> None:
        while True:
            try:
                data = self._server.recv(64)
                if not data:
                    return
                self._server.sendall(data)
            except OSError:
                return

    def _talk_on(self) -> None:
        self._client.settimeout(2)
        count = 0
        while not self._stop.is_set():
            message = f"{count:08d}".encode()
            try:
                self._client.sendall(message)
                received = b""
                while len(received) < len(message):
                    chunk = self._client.recv(len(message) - len(received))
                    if not chunk:
                        break
                    received += chunk
                ok = received == message
            except OSError:
                ok = False
            self.exchanges.append((time.monotonic(), ok))
            count += 1
            self._stop.wait(0.1)

    def close(self) -> None:
        self._stop.set()
        self._talk.join(5)
        for sock in (self._client, self._server, self._listener):
            sock.close()
        self._echo.join(5)


@dataclass
class Outage:
    """What was seen while every etcd member was down (between `down_at` and `up_at`)."""

    lab: str
    pod_netns: str
    calico_node_pids: dict[str, int]
    down_at: float = 0.0
    up_at: float = 0.0
    calicoctl: subprocess.CompletedProcess[str] | None = None
    calicoctl_seconds: float = 0.0
    cni: subprocess.CompletedProcess[bytes] | None = None
    cni_container: str = field(default_factory=lambda: uuid.uuid4().hex)
    node_before: KernelView = ([], [])
    node_after: KernelView = ([], [])
    pod_before: KernelView = ([], [])
    pod_after: KernelView = ([], [])
    exchanges: list[tuple[float, bool]] = field(default_factory=list)


@pytest.fixture(scope="module")
def outage() -> Iterator[Outage]:
    name = f"o{uuid.uuid4().hex[:5]}"
    # A pod namespace of the test's own for the ADD that must fail; not part of the lab.
    pod_netns = f"{name}-xpod"
    stream: Stream | None = None
    try:
        lab("up", "--name", name, "--nodes", "2", "--datastore", "etcd")
        lab("pod", "add", "a", "--node", "node1", "--name", name)
        lab("pod", "add", "b", "--node", "node2", "--name", name)
        state = LabState.load(name)
        seen = Outage(name, pod_netns, {n: state.pids[f"calico-node:{n}"] for n in state.nodes})
        a, b = state.pods["default/a"], state.pods["default/b"]
        stream = Stream(a.netns, b.netns, b.ip)
        subprocess.run(["ip", "netns", "add", pod_netns], check=True)
        node1 = namespaces.ns_name(name, "node1")
        seen.node_before, seen.pod_before = kernel_view(node1), kernel_view(pod_netns)

        etcd_cluster.stop_all(state)
        seen.down_at = time.monotonic()
        seen.calicoctl = on_node(state, "node1", "calicoctl", "get", "nodes")
        seen.calicoctl_seconds = time.monotonic() - seen.down_at
        seen.cni = cni_add(state, "node1", pod_netns, seen.cni_container)
        seen.node_after, seen.pod_after = kernel_view(node1), kernel_view(pod_netns)
        time.sleep(max(0.0, seen.down_at + OUTAGE - time.monotonic()))
        seen.up_at = time.monotonic()
        etcd_cluster.start_all(LabState.load(name))

        stream.close()
        seen.exchanges = stream.exchanges
        yield seen
    finally:
        if stream is not None:
            stream.close()
        subprocess.run(["ip", "netns", "del", pod_netns], capture_output=True, check=False)
        down_leaving_nothing(name)


def test_calicoctl_fails_within_5_s_in_one_line_while_all_of_etcd_is_down(
    outage: Outage,
) -> None:
    result = outage.calicoctl
    assert result is not None
    assert result.returncode != 0, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("cannot reach etcd at http://192.168.56.201:2379,")
    assert outage.calicoctl_seconds < CALICOCTL_BOUND


def test_cni_add_fails_cleanly_while_all_of_etcd_is_down(outage: Outage) -> None:
    result = outage.cni
    assert result is not None
    assert result.returncode != 0
    assert b"Traceback" not in result.stderr
    error = json.loads(result.stdout)
    assert error["msg"] == "data store connection failed", error
    assert error["details"].startswith("cannot reach etcd at http://192.168.56.201:2379,"), error
    # No veth, no route on the node; the pod's namespace is as the runtime made it.
    assert outage.node_after == outage.node_before
    assert outage.pod_after == outage.pod_before


def test_established_tcp_between_pods_on_two_nodes_keeps_flowing_while_etcd_is_down(
    outage: Outage,
) -> None:
    during = [ok for when, ok in outage.exchanges if outage.down_at <= when <= outage.up_at]
    assert during, "no exchange happened during the outage"
    assert all(ok for _, ok in outage.exchanges), [
        round(when - outage.down_at, 1) for when, ok in outage.exchanges if not ok
    ]


def test_after_etcd_returns_new_pods_and_a_new_pool_work_without_restarting_calico_node(
    outage: Outage,
) -> None:
    state = LabState.load(outage.lab)
    a = state.pods["default/a"]
    # A pod in the block node2 already has, and one in a pool made after the outage, whose
    # new block only reaches node1 if node1's Felix follows the datastore again.
    c_ip = lab("pod", "add", "c", "--node", "node2", "--serve", "80", "--name", outage.lab).strip()
    applied = on_node(
        state,
        "node1",
        "calicoctl",
        "apply",
        "-f",
        "-",
        stdin="apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: after}\n"
        f"spec: {{cidr: {NEW_POOL}, vxlanMode: Always, natOutgoing: true}}\n",
    )
    assert applied.returncode == 0, applied.stderr
    d_ip = lab(
        "pod",
        "add",
        "d",
        "--node",
        "node2",
        "--serve",
        "80",
        "--annotation",
        'cni.projectcalico.org/ipv4pools=["after"]',
        "--name",
        outage.lab,
    ).strip()

    assert d_ip.startswith("10.250.")
    for ip in (c_ip, d_ip):
        wait_for(
            f"{ip} from node1", lambda ip=ip: tcp_answer(a.netns, ip, 80) is not None, CATCH_UP
        )
    after = LabState.load(outage.lab)
    for node, pid in outage.calico_node_pids.items():
        assert after.pids[f"calico-node:{node}"] == pid
        os.kill(pid, 0)  # raises if calico-node is gone


def test_after_the_outage_ipam_has_no_leak_no_duplicate_and_nothing_of_the_failed_add(
    outage: Outage,
) -> None:
    state = LabState.load(outage.lab)

    check = on_node(state, "node1", "calicoctl", "ipam", "check")
    endpoints = on_node(state, "node1", "calicoctl", "get", "workloadendpoints", "-A", "-o", "json")

    assert check.returncode == 0, check.stderr
    assert "found 0 problems" in check.stdout, check.stdout
    assert endpoints.returncode == 0, endpoints.stderr
    addresses = [
        net for wep in json.loads(endpoints.stdout)["items"] for net in wep["spec"]["ipNetworks"]
    ]
    assert len(addresses) == len(set(addresses)) == len(state.pods)

    def everything() -> list[tuple[str, str]]:
        with EtcdBackend(etcd_cluster.endpoints().split(",")) as backend:
            kvs, _ = backend.list("/calico/")
        return [(kv.key, kv.value) for kv in kvs]

    stored = in_netns(f"/run/netns/{namespaces.ns_name(outage.lab, 'node1')}", everything)
    assert [key for key, value in stored if outage.cni_container in key + value] == []

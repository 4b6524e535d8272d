"""calico-node in a node namespace: startup, health, the CNI agent, Felix, and a kill -9."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pycalico import __version__
from tests.support.node_namespace import bare_namespace, node_namespace, sh

pytestmark = pytest.mark.integration

BIN = os.path.dirname(sys.executable)


def eventually(check: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def http_status(ns: str, port: int, path: str) -> int:
    code = (
        "import urllib.request,sys\n"
        "try:\n"
        f"  print(urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=2).status)\n"
        "except Exception as e:\n"
        "  print(getattr(e, 'code', 0))\n"
    )
    out = sh(ns, sys.executable, "-c", code, check=False).strip()
    return int(out or 0)


def metrics_text(ns: str) -> str:
    """calico-node's Prometheus endpoint, scraped from inside the node's namespace."""
    code = (
        "import urllib.request;"
        "print(urllib.request.urlopen('http://127.0.0.1:9091/metrics').read().decode())"
    )
    return sh(ns, sys.executable, "-c", code, check=False)


def sample_name(metric: str, **labels: str) -> str:
    """A sample's name with its labels, as the exposition writes them (sorted)."""
    return metric + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def sample_value(text: str, sample: str) -> float:
    """The value of `sample` in a scrape; -1 when it is not there."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return -1


class Node:
    def __init__(self, tmp: Path, ns: str) -> None:
        self.ns = ns
        self.tmp = tmp
        self.env = {
            **os.environ,
            "DATASTORE_TYPE": "sqlite",
            "SQLITE_PATH": str(tmp / "store.db"),
            "NODENAME": "node1",
            "CALICO_NETWORKING_BACKEND": "vxlan",
            "CALICO_IPV4POOL_CIDR": "10.244.0.0/16",
            "CALICO_IPV4POOL_VXLAN": "Always",
            "CALICO_STATE_DIR": str(tmp / "lib"),
            "CALICO_RUN_DIR": str(tmp / "run"),
            "IP_AUTODETECTION_METHOD": "interface=eth0",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.tmp / "node.log", "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, os.path.join(BIN, "calico-node")],
                env=self.env,
                stderr=log,
            )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)
        self.proc = None


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    # As on any real node: proxy ARP answers for 169.254.1.1 only when the node has a route
    # for it through another interface, which the default route provides.
    with node_namespace("cnode", gateway="192.0.2.1") as namespace:
        n = Node(tmp_path, namespace.ns)
        try:
            yield n
        finally:
            n.stop(signal.SIGKILL)


def calicoctl(node: Node, *args: str, stdin: str | None = None) -> Any:
    out = subprocess.run(
        [os.path.join(BIN, "calicoctl"), *args],
        env=node.env,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out) if "-o" in args and "json" in args else out


def cni_add(
    node: Node, pod: str, container_id: str, mtu: int, labels: dict[str, str] | None = None
) -> Any:
    """CNI ADD of namespace `pod` through the shim installed in `node.tmp/bin`; the result."""
    conf: dict[str, Any] = {
        "cniVersion": "1.0.0",
        "name": "k8s-pod-network",
        "type": "calico",
        "nodename_file": str(node.tmp / "lib" / "nodename"),
        "mtu": mtu,
        "sqlite_path": str(node.tmp / "store.db"),
        "ipam_lock_file": str(node.tmp / "run" / "ipam.lock"),
        "ipam": {"type": "calico-ipam"},
    }
    if labels:
        conf["args"] = {"cni": {"labels": [{"key": k, "value": v} for k, v in labels.items()]}}
    env = {
        "PATH": os.environ["PATH"],
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": f"/run/netns/{pod}",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(node.tmp / "bin"),
    }
    out = subprocess.run(
        ["ip", "netns", "exec", node.ns, str(node.tmp / "bin" / "calico")],
        env=env,
        input=json.dumps(conf).encode(),
        capture_output=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout
    return json.loads(out.stdout)


def test_calico_node_starts_registers_serves_health_and_wires_pods(node: Node) -> None:
    from pycalico.cni.install import install

    node.start()
    eventually(lambda: http_status(node.ns, 9099, "/readiness") == 200)
    assert http_status(node.ns, 9099, "/liveness") == 200
    me = calicoctl(node, "get", "node", "node1", "-o", "json")
    assert me["spec"]["bgp"]["ipv4Address"] == "192.0.2.11/24"
    assert me["spec"]["ipv4VXLANTunnelAddr"].startswith("10.244.")
    assert (node.tmp / "lib" / "nodename").read_text() == "node1"
    assert (node.tmp / "lib" / "mtu").read_text() == "1450\n"
    assert "default-ipv4-ippool" in calicoctl(node, "get", "ippools")
    link = json.loads(sh(node.ns, "ip", "-j", "-d", "link", "show", "vxlan.calico"))[0]
    assert link["address"] == "66:f9:37:c3:7e:94"  # derived from the node name

    # A pod through the installed CNI shim, answered by this node's agent.
    install(str(node.tmp / "bin"), str(node.tmp / "run" / "cni-agent.sock"))
    pod = f"{node.ns}-pod"
    subprocess.run(["ip", "netns", "add", pod], check=True)
    try:
        result = cni_add(node, pod, "c" * 64, mtu=1450)
        ip = result["ips"][0]["address"].split("/")[0]
        # Felix has the endpoint's policy in the kernel (until then its interface is closed).
        status_file = node.tmp / "run" / "endpoint-status" / result["interfaces"][0]["name"]
        eventually(status_file.exists)
        sh(node.ns, "ping", "-c1", "-W2", ip)
        eventually(lambda: "\nfelix_active_local_endpoints 1\n" in metrics_text(node.ns))
        metrics = metrics_text(node.ns)
        for line in (
            "# TYPE felix_int_dataplane_apply_time_seconds summary",
            "# TYPE felix_int_dataplane_failures counter",
            "# TYPE felix_resyncs_started counter",
            "felix_cluster_num_hosts 1",
            "felix_resync_state 3",
            'felix_host{host="node1"} 1',
            "# TYPE process_cpu_seconds_total counter",
        ):
            assert f"\n{line}\n" in metrics, line
        assert 'felix_int_dataplane_apply_time_seconds{quantile="0.99"} ' in metrics
        assert "felix_int_dataplane_initial_resync_time_seconds " in metrics

        # kill -9 and restart: the kernel state is found right, nothing is rebuilt.
        routes_before = sh(node.ns, "ip", "route")
        index_before = link["ifindex"]
        node.stop(signal.SIGKILL)
        node.start()
        eventually(lambda: http_status(node.ns, 9099, "/readiness") == 200)
        assert sh(node.ns, "ip", "route") == routes_before
        after = json.loads(sh(node.ns, "ip", "-j", "link", "show", "vxlan.calico"))[0]
        assert after["ifindex"] == index_before
        sh(node.ns, "ping", "-c1", "-W2", ip)
    finally:
        subprocess.run(["ip", "netns", "del", pod], check=False)
    node.stop()
    assert not (node.tmp / "run" / "cni-agent.sock").exists()


POLICY_ONLY_POOL = """\
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: policy-only}
spec: {cidr: 10.246.0.0/16, ipipMode: Never, vxlanMode: Never, natOutgoing: true}
"""
B_FROM_A = """\
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: b-from-a, namespace: default}
spec:
  selector: app == 'b'
  ingress: [{action: %s, source: {selector: app == 'a'}}]
"""


def pings(ns: str, ip: str) -> bool:
    return sh(ns, "ping", "-c1", "-W1", ip, check=False).count("1 received") == 1


def test_policy_only_node_enforces_policy_and_routes_local_pods_without_a_node_address(
    node: Node,
) -> None:
    """CALICO_NETWORKING_BACKEND=none: the Node has no address, and Felix still programs
    policy, the pods' routes and natOutgoing, and reports ready (no BIRD to wait for)."""
    from pycalico.cni.install import install

    for name in [k for k in node.env if k.startswith("CALICO_IPV4POOL_")]:
        del node.env[name]
    node.env |= {"CALICO_NETWORKING_BACKEND": "none", "NO_DEFAULT_POOLS": "true"}
    node.start()
    eventually((node.tmp / "lib" / "nodename").exists)  # written once the Node is registered
    calicoctl(node, "create", "-f", "-", stdin=POLICY_ONLY_POOL)
    me = calicoctl(node, "get", "node", "node1", "-o", "json")
    assert "ipv4Address" not in me["spec"].get("bgp", {})
    install(str(node.tmp / "bin"), str(node.tmp / "run" / "cni-agent.sock"))
    with bare_namespace("cnpa") as pod_a, bare_namespace("cnpb") as pod_b:
        ips = {}
        for pod, app, cid in ((pod_a, "a", "a" * 64), (pod_b, "b", "b" * 64)):
            result = cni_add(node, pod, cid, mtu=1500, labels={"app": app})
            ips[app] = result["ips"][0]["address"].split("/")[0]
            status = node.tmp / "run" / "endpoint-status" / result["interfaces"][0]["name"]
            eventually(status.exists)
        eventually(lambda: http_status(node.ns, 9099, "/readiness") == 200)
        assert pings(pod_a, ips["b"]) and pings(pod_b, ips["a"])

        calicoctl(node, "apply", "-f", "-", stdin=B_FROM_A % "Deny")
        eventually(lambda: not pings(pod_a, ips["b"]))
        assert pings(pod_b, ips["a"])  # only b's ingress from a is denied
        calicoctl(node, "apply", "-f", "-", stdin=B_FROM_A % "Allow")
        eventually(lambda: pings(pod_a, ips["b"]))
        # The pings just allowed were counted on b-from-a's rule, read from the kernel.
        allowed = sample_name(
            "pycalico_policy_rule_packets_total", action="Allow", direction="ingress",
            kind="NetworkPolicy", name="b-from-a", namespace="default", rule_index="0",
            tier="default",
        )  # fmt: skip
        eventually(lambda: sample_value(metrics_text(node.ns), allowed) >= 1)

        assert http_status(node.ns, 9099, "/readiness") == 200
        assert "natOutgoing" in sh(
            node.ns, "nft", "list", "chain", "inet", "calico", "nat-outgoing"
        )
        assert not tunnel_devices(node.ns)
        assert (node.tmp / "lib" / "mtu").read_text() == "1500\n"

        # A pool that asks for VXLAN: the node gets its tunnel address (Calico allocates it
        # in every mode) but no device without an address of its own; Felix says so once,
        # however many applies follow, and stays ready.
        patch = '{"spec": {"vxlanMode": "Always"}}'
        calicoctl(node, "patch", "ippool", "policy-only", "-p", patch)
        eventually(
            lambda: "ipv4VXLANTunnelAddr" in calicoctl(node, "get", "node", "node1", "-o", "yaml")
        )
        calicoctl(node, "apply", "-f", "-", stdin=B_FROM_A % "Deny")
        eventually(lambda: not pings(pod_a, ips["b"]))
        calicoctl(node, "apply", "-f", "-", stdin=B_FROM_A % "Allow")
        eventually(lambda: pings(pod_a, ips["b"]))
        assert http_status(node.ns, 9099, "/readiness") == 200
        assert not tunnel_devices(node.ns)
        log = (node.tmp / "node.log").read_text()
        assert log.count("no vxlan.calico although a pool has vxlanMode on") == 1, log


def tunnel_devices(ns: str) -> set[str]:
    links = {link["ifname"] for link in json.loads(sh(ns, "ip", "-j", "link", "show"))}
    return links & {"vxlan.calico", "tunl0"}


def run_calico_node_in_fresh_namespace(
    tmp: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], str, str]:
    """`calico-node ARGS` entered into a node namespace of its own (network only, as
    `nsenter --net` does); its result, then what it left there: nft tables, processes."""
    env = {
        **os.environ,
        "DATASTORE_TYPE": "sqlite",
        "SQLITE_PATH": str(tmp / "store.db"),
        "NODENAME": "cli",
        "CALICO_NETWORKING_BACKEND": "none",  # were it to start, no BIRD to outlive it
        "CALICO_STATE_DIR": str(tmp / "lib"),
        "CALICO_RUN_DIR": str(tmp / "run"),
    }
    with node_namespace("cncli") as namespace:
        command = ["nsenter", f"--net={namespace.path}", os.path.join(BIN, "calico-node"), *args]
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += "\n(still running after 20 s: killed)"
        tables = sh(namespace.ns, "nft", "list", "tables")
        pids = subprocess.run(
            ["ip", "netns", "pids", namespace.ns], capture_output=True, text=True, check=True
        ).stdout
        for pid in pids.split():  # what it started there and left running
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    return subprocess.CompletedProcess(command, proc.returncode, out, err), tables, pids


@pytest.mark.parametrize("option", ["--help", "-h"])
def test_help_prints_usage_and_starts_nothing(tmp_path: Path, option: str) -> None:
    result, tables, pids = run_calico_node_in_fresh_namespace(tmp_path, option)
    assert (result.returncode, result.stderr) == (0, ""), result
    assert result.stdout.startswith("Usage: calico-node")
    assert (tables, pids) == ("", "")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("option", ["-v", "--version"])
def test_version_prints_the_version_and_starts_nothing(tmp_path: Path, option: str) -> None:
    result, tables, pids = run_calico_node_in_fresh_namespace(tmp_path, option)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"v{__version__}\n", "")
    assert (tables, pids) == ("", "")
    assert not any(tmp_path.iterdir())


def test_an_unknown_option_is_one_line_of_error_and_starts_nothing(tmp_path: Path) -> None:
    result, tables, pids = run_calico_node_in_fresh_namespace(tmp_path, "--no-such-option")
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "calico-node: unknown option --no-such-option (see calico-node --help)"
    ]
    assert (tables, pids) == ("", "")
    assert not any(tmp_path.iterdir())

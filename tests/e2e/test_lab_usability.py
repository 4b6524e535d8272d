"""calico-lab as a new user meets it: which lab a command means, getting the tools on PATH,
the status table, probes that say why, curl, the router and external host, logs, BIRD,
kubectl's verbs, an eth0 flap and its repair, and etcd outages on demand."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from pycalico.lab.pods import host_veth
from pycalico.lab.state import ROOT, LabState, max_name_length
from pycalico.lab.underlay_plan import MAX_NODES
from tests.support.lab_driver import (
    LAB,
    calicoctl,
    down_leaving_nothing,
    lab,
    lab_run,
    pod_ip,
    wait_for,
)
from tests.support.seed_manifests import SEED_DAEMONSET

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def vxlan_lab() -> Iterator[str]:
    """A 2-node VXLAN lab shared by the tests that only read it or add to it."""
    name = f"u{uuid.uuid4().hex[:5]}"
    try:
        lab("up", "--name", name, "--nodes", "2")
        lab("pod", "add", "a", "--node", "node1", "--serve", "80", "--name", name)
        lab("pod", "add", "b", "--node", "node2", "--serve", "80", "--name", name)
        lab("pod", "add", "quiet", "--node", "node2", "--name", name)
        yield name
    finally:
        down_leaving_nothing(name)


def user_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CALICO_LAB"}
    env.update(extra)
    return env


def test_up_builds_the_lab_calico_lab_names_and_the_longest_name_works() -> None:
    longest = f"l{uuid.uuid4().hex[:5]}".ljust(max_name_length(ROOT), "x")
    try:
        out = lab("up", "--nodes", "1", env=user_env(CALICO_LAB=longest))
        assert f"lab {longest} is up" in out
        # The CNI agent's socket of this lab is the longest path a lab makes.
        lab("pod", "add", "p", "--node", "node1", "--serve", "80", env=user_env(CALICO_LAB=longest))
        assert "default/p" in lab("status", env=user_env(CALICO_LAB=longest))
    finally:
        down_leaving_nothing(longest)


def test_a_name_one_character_too_long_is_refused_with_the_limit_and_nothing_made() -> None:
    name = "t" * (max_name_length(ROOT) + 1)
    out = lab_run("up", "--name", name)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"1-{max_name_length(ROOT)} characters" in out.stderr
    assert not os.path.exists(os.path.join(ROOT, name))


def test_help_of_up_states_the_name_rule() -> None:
    out = lab("up", "--help")
    assert "CALICO_LAB" in " ".join(out.split())
    assert f"1-{max_name_length(ROOT)} characters" in " ".join(out.split())


def test_up_states_the_node_cap_in_help_and_refuses_one_more_in_one_line() -> None:
    assert f"1-{MAX_NODES} (default 3)" in " ".join(lab("up", "--help").split())
    name = f"c{uuid.uuid4().hex[:5]}"
    out = lab_run("up", "--name", name, "--nodes", str(MAX_NODES + 1))
    assert out.returncode == 1
    assert out.stderr == f"calico-lab: --nodes must be between 1 and {MAX_NODES}\n"
    assert not os.path.exists(os.path.join(ROOT, name))


def test_env_puts_the_tools_on_path_and_calicoctl_on_the_labs_datastore(vxlan_lab: str) -> None:
    script = (
        f'eval "$({LAB} env --name {vxlan_lab})"; command -v calico-lab; '
        "calicoctl get nodes; kubectl get pods"
    )
    bare = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
    out = subprocess.run(
        ["bash", "-c", script], env=bare, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == LAB
    words = [line.split() for line in out[1:]]
    assert ["node1"] in words and ["node2"] in words
    assert ["a", "1/1", "Running", "0"] in [w[:4] for w in words]


def test_status_is_a_table_of_the_chosen_lab_and_json_on_request(vxlan_lab: str) -> None:
    table = lab("status", env=user_env(CALICO_LAB=vxlan_lab))
    assert table.startswith(f"lab {vxlan_lab}: flat underlay, VXLAN")
    nodes = {
        line.split()[0]: line.split() for line in table.splitlines() if line.startswith("node")
    }
    state = LabState.load(vxlan_lab)
    assert nodes["node1"][1] == state.node_ips["node1"].split("/")[0]
    assert nodes["node1"][2] == "64512" and nodes["node1"][3].startswith("10.244.")
    assert nodes["node1"][4:6] == ["running", "yes"]
    rows = [line.split() for line in table.splitlines()]
    assert ["default/a", "node1", pod_ip(vxlan_lab, "a")] in rows
    assert ["default-ipv4-ippool", "10.244.0.0/16", "VXLAN", "Always", "yes", "no"] in rows
    machine = json.loads(lab("status", "--name", vxlan_lab, "-o", "json"))
    assert machine["pods"]["default/b"] == {"node": "node2", "ip": pod_ip(vxlan_lab, "b")}


def test_probe_says_refused_when_nothing_listens(vxlan_lab: str) -> None:
    matrix = lab("probe", "--name", vxlan_lab)
    rows = {line.split()[0]: line.split() for line in matrix.splitlines()[1:-1]}
    header = matrix.splitlines()[0].split()[3:]
    quiet = header.index("default/quiet")
    assert rows["default/a"][1 + quiet] == "refused"
    assert matrix.splitlines()[-1].startswith("FAIL: 2 of 9 got no answer (2 refused)")


def test_curl_between_pods_and_to_the_external_host_gets_http(vxlan_lab: str) -> None:
    b = pod_ip(vxlan_lab, "b")
    out = lab("exec", "default/a", "--name", vxlan_lab, "--", "curl", "-s", "-m", "5", b)
    assert out == f"PodName: default/b | PodIP: {b} | ClientIP: {pod_ip(vxlan_lab, 'a')}\n"
    out = lab(
        "exec", "default/a", "--name", vxlan_lab, "--", "curl", "-s", "-m", "5", "203.0.113.1"
    )
    node1 = LabState.load(vxlan_lab).node_ips["node1"].split("/")[0]
    assert out == f"PodName: external | PodIP: 203.0.113.1 | ClientIP: {node1}\n"


def test_router_and_external_are_exec_targets_and_tor_only_in_a_tor_lab(vxlan_lab: str) -> None:
    assert "203.0.113.1/24" in lab("exec", "external", "--name", vxlan_lab, "--", "ip", "-br", "a")
    assert "192.168.56.1/24" in lab("exec", "router", "--name", vxlan_lab, "--", "ip", "-br", "a")
    out = lab_run("exec", "tor", "--name", vxlan_lab, "--", "true")
    assert out.returncode == 1 and "has no ToR" in out.stderr


def test_birdc_in_a_vxlan_lab_says_why_there_is_no_bird(vxlan_lab: str) -> None:
    out = lab_run("exec", "node1", "--name", vxlan_lab, "--", "birdc", "show", "protocols")
    assert out.returncode == 1 and "routes without BGP" in out.stderr


def test_get_pods_and_nodes_in_kubectls_columns(vxlan_lab: str) -> None:
    pods = lab("get", "pods", "-o", "wide", "--name", vxlan_lab).splitlines()
    assert pods[0].split() == [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED",
        "NODE",
        "READINESS",
        "GATES",
    ]
    row = next(line.split() for line in pods if line.startswith("b "))
    assert row[1:4] == ["1/1", "Running", "0"]
    assert row[5:] == [pod_ip(vxlan_lab, "b"), "node2", "<none>", "<none>"]
    nodes = lab("get", "nodes", "-o", "wide", "--name", vxlan_lab).splitlines()
    assert nodes[0].split()[:6] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"]
    assert nodes[1].split()[:2] == ["node1", "Ready"]
    empty = lab_run("get", "pods", "-n", "nowhere", "--name", vxlan_lab)
    assert empty.stdout == "" and empty.stderr == "No resources found in nowhere namespace.\n"


def test_exec_with_a_namespace_flag_and_all_namespaces_listing(vxlan_lab: str) -> None:
    lab("run", "client3", "-n", "azhe", "--node", "node1", "--name", vxlan_lab)
    try:
        out = lab("exec", "-n", "azhe", "client3", "--name", vxlan_lab, "--", "ip", "-br", "a")
        assert pod_ip(vxlan_lab, "a") not in out
        ip = LabState.load(vxlan_lab).pods["azhe/client3"].ip
        assert f"{ip}/32" in out
        listing = lab("get", "pods", "-A", "--name", vxlan_lab)
        assert any(line.split()[:2] == ["azhe", "client3"] for line in listing.splitlines())
    finally:
        lab("pod", "del", "azhe/client3", "--name", vxlan_lab)


def test_label_node_reaches_the_calico_node(vxlan_lab: str) -> None:
    out = lab("label", "node", "node2", "route-reflector=true", "--name", vxlan_lab)
    assert out == "node/node2 labeled\n"
    node = json.loads(calicoctl(vxlan_lab, "get", "node", "node2", "-o", "json"))
    assert node["metadata"]["labels"]["route-reflector"] == "true"
    refused = lab_run("label", "node", "node2", "route-reflector=false", "--name", vxlan_lab)
    assert refused.returncode == 1 and "--overwrite is false" in refused.stderr
    assert lab("label", "node", "node2", "route-reflector-", "--name", vxlan_lab) == (
        "node/node2 unlabeled\n"
    )


def test_the_seeds_daemonset_puts_one_pod_on_every_node_and_skips_its_service(
    vxlan_lab: str,
) -> None:
    out = lab_run("apply", "-f", "-", "--name", vxlan_lab, stdin=SEED_DAEMONSET)
    try:
        assert out.returncode == 0, out.stderr
        assert out.stdout == "daemonset.apps/wluo created\n"
        assert "service/wluo skipped" in out.stderr and "kube-proxy" in out.stderr
        state = LabState.load(vxlan_lab)
        daemons = [p for p in state.pods.values() if p.owner == "default/wluo"]
        assert sorted(p.node for p in daemons) == ["node1", "node2"]
        assert all(p.labels["app"] == "wluo" and p.ip for p in daemons)
        again = lab_run("apply", "-f", "-", "--name", vxlan_lab, stdin=SEED_DAEMONSET)
        assert again.stdout == "daemonset.apps/wluo unchanged\n"
    finally:
        lab_run("delete", "-f", "-", "--name", vxlan_lab, stdin=SEED_DAEMONSET)
    assert not [p for p in LabState.load(vxlan_lab).pods.values() if p.owner == "default/wluo"]


def test_an_eth0_flap_is_flagged_by_status_and_repair_gives_pods_the_outside_back(
    make_lab: Callable[..., str],
) -> None:
    name = make_lab("--nodes", "1")
    lab("pod", "add", "p", "--node", "node1", "--name", name)
    lab("exec", "node1", "--name", name, "--", "ip", "link", "set", "eth0", "down")
    lab("exec", "node1", "--name", name, "--", "ip", "link", "set", "eth0", "up")
    status = lab("status", "--name", name)
    assert "route missing" in status
    assert "lost the lab's route `default via 192.168.56.1 dev eth0`" in status
    cut = lab_run("exec", "default/p", "--name", name, "--", "curl", "-s", "-m", "3", "203.0.113.1")
    assert cut.returncode != 0
    assert lab("repair", "--name", name) == "node1: restored default via 192.168.56.1 dev eth0\n"
    assert "route missing" not in lab("status", "--name", name)
    back = lab("exec", "default/p", "--name", name, "--", "curl", "-s", "-m", "5", "203.0.113.1")
    assert back.startswith("PodName: external")


def test_birdc_logs_and_bgp_sessions_in_a_bgp_lab(make_lab: Callable[..., str]) -> None:
    name = make_lab("--nodes", "2", "--encap", "none")
    wait_for(
        "the mesh session",
        lambda: "Established" in lab("exec", "node1", "--name", name, "--", "birdc", "show", "p"),
    )
    nodes = [line.split() for line in lab("status", "--name", name).splitlines()]
    assert ["1/1", "Established"] in [row[6:8] for row in nodes if row[:1] == ["node1"]]
    bird = lab("logs", "node1", "--component", "bird", "--name", name).splitlines()
    assert bird and all("<" in line.split()[2] for line in bird)
    follower = subprocess.Popen(
        [LAB, "logs", "node1", "--component", "confd", "-f", "--name", name],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = follower.stdout.readline() if follower.stdout else ""
        assert "pycalico.confd" in first
        # A new BGP peer makes confd render and load a new bird.cfg: a new confd line.
        calicoctl(
            name,
            "apply",
            "-f",
            "-",
            stdin="apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\n"
            "spec: {peerIP: 192.168.56.250, asNumber: 64600}\n",
        )
        deadline = time.monotonic() + 20
        seen = []
        while time.monotonic() < deadline and follower.stdout is not None:
            line = follower.stdout.readline()
            seen.append(line)
            if "Global_192_168_56_250" in line:
                break
        assert all("pycalico.confd" in line for line in seen if line.strip())
        [updated] = [line for line in seen if "Global_192_168_56_250" in line]
        assert "BIRD config updated in" in updated
        assert "BGP sessions added Global_192_168_56_250" in updated
    finally:
        follower.terminate()
        follower.wait(5)


def test_etcd_stop_and_start_for_outage_demos(make_lab: Callable[..., str]) -> None:
    name = make_lab("--nodes", "1", "--datastore", "etcd")
    assert "stopped" in lab("etcd", "stop", "--name", name)
    try:
        down = lab_run("exec", "node1", "--name", name, "--", "calicoctl", "get", "nodes")
        assert down.returncode != 0
        assert "! datastore unreachable" in lab("status", "--name", name)
    finally:
        assert "started" in lab("etcd", "start", "--name", name)
    assert "node1" in calicoctl(name, "get", "nodes")
    again = lab_run("etcd", "start", "--name", name)
    assert again.returncode == 1 and "already running" in again.stderr


def test_etcd_commands_are_refused_in_a_sqlite_lab(vxlan_lab: str) -> None:
    out = lab_run("etcd", "stop", "--name", vxlan_lab)
    assert out.returncode == 1 and "has no etcd" in out.stderr


def test_the_cni_logs_each_add_and_del_and_felix_each_apply(vxlan_lab: str) -> None:
    lab("pod", "add", "logged", "--node", "node1", "--name", vxlan_lab)
    pod = LabState.load(vxlan_lab).pods["default/logged"]
    veth = host_veth(pod)
    lab("pod", "del", "logged", "--name", vxlan_lab)
    cni = lab("logs", "node1", "--component", "cni", "--name", vxlan_lab).splitlines()
    [added] = [line for line in cni if f"ADD ContainerID={pod.container_id}" in line]
    assert "[INFO]" in added and "Pod=default/logged" in added and "Interface=eth0" in added
    assert f"HostInterface={veth}" in added and f"Addresses={pod.ip}/32" in added
    [deleted] = [line for line in cni if f"DEL ContainerID={pod.container_id}" in line]
    assert f"Addresses={pod.ip}/32" in deleted
    felix = lab("logs", "node1", "--component", "felix", "--name", vxlan_lab).splitlines()
    assert any(
        "Finished applying updates to dataplane" in line and f"endpoint added {veth}" in line
        for line in felix
    )
    assert any(f"endpoint removed {veth}" in line for line in felix)
    assert all("pycalico.felix" in line for line in felix if line[:2] == "20")

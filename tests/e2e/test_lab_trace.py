"""`calico-lab trace`: one real packet, every hop read back from the kernel."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest

from pycalico.cni.endpoint import Workload
from pycalico.lab.namespaces import ns_name
from pycalico.lab.settle import settle
from pycalico.lab.state import LabState, Pod
from tests.support.lab_driver import calicoctl, down_leaving_nothing, lab, lab_run, wait_for

pytestmark = pytest.mark.e2e

ALLOW_WEB = """\
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-web, namespace: default}
spec:
  selector: app == 'web'
  ingress:
  - action: Allow
    protocol: TCP
    destination: {ports: [80]}
"""
DENY_WEB = """\
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: deny-web, namespace: default}
spec:
  order: 10
  selector: app == 'web'
  ingress:
  - action: Deny
    protocol: TCP
    destination: {ports: [80]}
"""


def veth(pod: Pod) -> str:
    namespace, _, name = pod.name.partition("/")
    return Workload(pod.node, "k8s", namespace, name, pod.container_id, "eth0").host_ifname


def nft_tables(netns: str) -> list[str]:
    out = subprocess.run(
        ["nsenter", f"--net=/run/netns/{netns}", "nft", "list", "tables"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split("\n")


def trace_json(name: str, *args: str) -> dict:
    return json.loads(lab("trace", "--name", name, *args, "-o", "json"))


def steps(found: dict, kind: str) -> list[str]:
    return [s["text"] for s in found["steps"] if s["kind"] == kind]


@pytest.fixture(scope="module")
def vxlan_lab() -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:5]}"
    try:
        lab("up", "--name", name, "--nodes", "2")
        lab("pod", "add", "client", "--node", "node1", "--name", name)
        lab(
            "pod",
            "add",
            "web",
            "--node",
            "node2",
            "--labels",
            "app=web",
            "--serve",
            "80",
            "--name",
            name,
        )
        calicoctl(name, "apply", "-f", "-", stdin=ALLOW_WEB)
        settle(LabState.load(name))
        yield name
    finally:
        down_leaving_nothing(name)


def test_an_allowed_vxlan_pair_names_both_veths_the_tunnel_vni_and_the_allowing_rule(
    vxlan_lab: str,
) -> None:
    state = LabState.load(vxlan_lab)
    client, web = state.pods["default/client"], state.pods["default/web"]
    found = trace_json(vxlan_lab, "--from", "default/client", "--to", "default/web", "--port", "80")
    assert found["outcome"] == "delivered"
    text = "\n".join(s["text"] for s in found["steps"])
    assert veth(client) in text and veth(web) in text
    assert "via" in text and "dev vxlan.calico onlink" in text
    [encap] = steps(found, "encap")
    node1, node2 = (state.node_ips[n].split("/")[0] for n in ("node1", "node2"))
    assert f"VXLAN on the wire (n1): {node1}:" in encap
    assert f"→ {node2}:4789 UDP, VNI 4096" in encap
    ingress = [
        s for s in found["steps"] if s["kind"] == "policy" and s["data"]["direction"] == "ingress"
    ]
    assert ingress[0]["data"]["by"] == "policy default/default/allow-web"
    assert ingress[0]["data"]["rule"] == 0
    assert "ingress of default/web: allowed by policy default/default/allow-web rule 0" in text
    [arp] = steps(found, "arp")
    assert "is-at ee:ee:ee:ee:ee:ee" in arp and f"proxy ARP on {veth(client)}" in arp
    assert [s["where"] for s in found["steps"]][-1] == "default/web"


def test_a_deny_policy_stops_the_trace_at_the_destinations_ingress_naming_it(
    vxlan_lab: str,
) -> None:
    calicoctl(vxlan_lab, "apply", "-f", "-", stdin=DENY_WEB)
    try:
        settle(LabState.load(vxlan_lab))
        found = trace_json(
            vxlan_lab, "--from", "default/client", "--to", "default/web", "--port", "80"
        )
    finally:
        calicoctl(vxlan_lab, "delete", "networkpolicy", "deny-web", "-n", "default")
    assert found["outcome"] == "dropped"
    last = found["steps"][-1]
    assert (last["where"], last["kind"]) == ("node2", "policy")
    assert last["data"]["direction"] == "ingress" and last["data"]["allowed"] is False
    assert last["data"]["by"] == "policy default/default/deny-web"
    assert last["data"]["rule"] == 0
    assert "by policy default/default/deny-web rule 0" in found["summary"]
    assert not [s for s in found["steps"] if s["where"] == "default/web"]
    assert found["notes"] == []  # policy explain agrees


def test_a_trace_to_the_external_host_shows_the_masquerade(vxlan_lab: str) -> None:
    node1 = LabState.load(vxlan_lab).node_ips["node1"].split("/")[0]
    found = trace_json(vxlan_lab, "--from", "default/client", "--to", "203.0.113.1", "--port", "80")
    assert found["outcome"] == "delivered"
    [nat] = [s for s in found["steps"] if s["kind"] == "nat"]
    assert nat["where"] == "node1"
    assert nat["data"]["before"][0] == LabState.load(vxlan_lab).pods["default/client"].ip
    assert nat["data"]["after"][0] == node1
    assert "masquerade" in nat["text"] and "natOutgoing" in nat["text"]
    assert f"no encapsulation on the wire (n1): {node1}:" in steps(found, "encap")[0]
    assert [s["where"] for s in found["steps"]][-1] == "external"


def test_icmp_and_udp_are_traced_too_and_refused_is_told_apart(vxlan_lab: str) -> None:
    # allow-web admits TCP 80 only, so the ping goes the other way, to the client.
    ping = trace_json(
        vxlan_lab, "--from", "default/web", "--to", "default/client", "--proto", "icmp"
    )
    assert ping["outcome"] == "delivered" and "echo reply" in ping["summary"]
    udp = trace_json(
        vxlan_lab,
        "--from",
        "default/client",
        "--to",
        "default/web",
        "--proto",
        "udp",
        "--port",
        "53",
    )
    # allow-web admits TCP 80 only: the UDP datagram is dropped at the end of the tier.
    assert udp["outcome"] == "dropped"
    assert "end of tier default" in udp["summary"]
    quiet = trace_json(vxlan_lab, "--from", "default/web", "--to", "default/client", "--port", "81")
    assert quiet["outcome"] == "delivered, refused" and "TCP RST" in quiet["summary"]


def test_the_trace_leaves_no_table_and_felixs_table_alone(vxlan_lab: str) -> None:
    state = LabState.load(vxlan_lab)
    namespaces = [ns_name(vxlan_lab, n) for n in (*state.nodes, "router", "ext")] + [
        p.netns for p in state.pods.values()
    ]
    before = {ns: nft_tables(ns) for ns in namespaces}
    lab("trace", "--name", vxlan_lab, "--from", "default/client", "--to", "default/web")
    after = {ns: nft_tables(ns) for ns in namespaces}
    assert after == before
    assert all("calico-lab-trace" not in "".join(tables) for tables in after.values())
    assert "table inet calico" in after[ns_name(vxlan_lab, "node1")]


def test_text_output_is_numbered_steps_and_an_outcome(vxlan_lab: str) -> None:
    out = lab("trace", "--name", vxlan_lab, "--from", "default/client", "--to", "default/web")
    lines = out.splitlines()
    assert lines[0].startswith("trace default/client (")
    assert lines[1].split()[:3] == ["1", "default/client", "route"]
    assert lines[-1].startswith("outcome: delivered: to default/web")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--from", "default/nobody", "--to", "default/web"), "no pod default/nobody"),
        (("--from", "default/client", "--to", "default/nobody"), "not an IPv4 address"),
        (("--from", "default/client", "--to", "default/web", "--port", "0"), "must be 1-65535"),
        (
            ("--from", "default/client", "--to", "default/web", "--proto", "icmp", "--port", "1"),
            "no meaning",
        ),
    ],
)
def test_bad_trace_requests_are_one_line_errors(
    vxlan_lab: str, args: tuple[str, ...], fragment: str
) -> None:
    out = lab_run("trace", "--name", vxlan_lab, *args)
    assert out.returncode == 1 and fragment in out.stderr and "Traceback" not in out.stderr


def test_a_bgp_lab_shows_the_bird_route_and_no_encapsulation(make_lab: Callable[..., str]) -> None:
    name = make_lab("--nodes", "2", "--encap", "none")
    lab("pod", "add", "a", "--node", "node1", "--name", name)
    lab("pod", "add", "b", "--node", "node2", "--serve", "80", "--name", name)
    node2 = LabState.load(name).node_ips["node2"].split("/")[0]
    # node1's own blackhole is `proto bird` too: wait for the route learned from node2.
    wait_for(
        "the BGP route to node2's block",
        lambda: (
            f"via {node2} dev eth0 proto bird"
            in lab("exec", "node1", "--name", name, "--", "ip", "route")
        ),
    )
    found = trace_json(name, "--from", "default/a", "--to", "default/b", "--port", "80")
    assert found["outcome"] == "delivered"
    routes = [s for s in found["steps"] if s["kind"] == "route" and s["where"] == "node1"]
    assert routes[0]["data"]["protocol"] == "bird"
    assert f"via {node2} dev eth0 proto bird" in routes[0]["text"]
    [wire] = steps(found, "encap")
    assert wire.startswith("no encapsulation on the wire (n1)")
    assert "VXLAN" not in json.dumps(found) and "vxlan.calico" not in json.dumps(found)


def test_probe_names_the_policy_and_rule_that_dropped_a_probe(vxlan_lab: str) -> None:
    calicoctl(vxlan_lab, "apply", "-f", "-", stdin=DENY_WEB)
    try:
        settle(LabState.load(vxlan_lab))
        matrix = lab("probe", "--name", vxlan_lab)
    finally:
        calicoctl(vxlan_lab, "delete", "networkpolicy", "deny-web", "-n", "default")
    rows = {line.split()[0]: line for line in matrix.splitlines()[1:-1]}
    assert "dropped by default/default/deny-web[0]" in rows["default/client"]
    assert "refused" in rows["default/web"]  # the client serves nothing: its kernel answers RST
    assert matrix.splitlines()[-1] == "FAIL: 2 of 4 got no answer (1 dropped, 1 refused)"
    leftovers = [
        t for n in ("node1", "node2") for t in nft_tables(ns_name(vxlan_lab, n)) if "trace" in t
    ]
    assert leftovers == []

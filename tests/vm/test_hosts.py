"""pycalico across hosts that share no kernel and no filesystem: guests on one segment.

Each guest boots Debian's stock kernel with its own root overlay, host name and NIC; host1
runs etcd; pods are made by podman through pycalico's CNI plugin. The checks share one
cluster (booting it is most of the cost) and run in this file's order.
"""

from __future__ import annotations

import re

import pytest

from .cluster import (
    HTTP_PORT,
    RUN_DIR,
    Cluster,
    Pod,
    bird_sessions,
    on_each,
    ping_stream,
    unanswered,
    wait_until,
)
from .harness import Guest
from .segment import OUTSIDE

pytestmark = pytest.mark.hosts

POLICY = "pod-host2-ingress"
POLICY_TIMEOUT = 60.0  # Felix programs a change in milliseconds natively, seconds emulated
MESH_TIMEOUT = 120.0


def policy(server: Pod, allow_tcp_from: Pod | None = None) -> str:
    """A NetworkPolicy on the server's ingress: ICMP only, or also the client's TCP."""
    rules = ["- action: Allow\n    protocol: ICMP"]
    if allow_tcp_from is not None:
        rules.append(
            "- action: Allow\n    protocol: TCP\n"
            f"    source: {{nets: [{allow_tcp_from.ip}/32]}}\n"
            f"    destination: {{ports: [{HTTP_PORT}]}}"
        )
    return (
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n"
        f"metadata: {{name: {POLICY}, namespace: default}}\n"
        f"spec:\n  selector: all()\n  types: [Ingress]\n  ingress:\n  " + "\n  ".join(rules) + "\n"
    )


def mesh_established(hosts: Cluster, host: Guest, peer: str) -> bool:
    """`calicoctl node status` on `host` lists `peer` as an Established mesh peer."""
    status = hosts.calicoctl("node", "status", on=host, check=False)
    return any(
        peer in line and "node-to-node mesh" in line and "Established" in line
        for line in status.splitlines()
    )


@pytest.fixture(scope="module")
def pods(hosts: Cluster) -> list[Pod]:
    """A podman pod on each host, serving HTTP."""
    made = on_each(hosts.hosts, lambda h: hosts.pod(h, f"pod-{h.name}"))
    hosts.step("pods")
    return [p for p in made if isinstance(p, Pod)]


def test_a_pod_on_each_host_reaches_the_other_across_the_segment_over_vxlan(
    hosts: Cluster, pods: list[Pod]
) -> None:
    a, b = pods
    h1, h2 = (re.escape(h.address) for h in hosts.hosts)
    with hosts.segment.capture("udp port 4789 or icmp") as seen:
        a.exec("ping", "-c", "3", "-W", "2", b.ip)
        answer = a.http_get(b.ip)
    assert "hello from pod-host2" in answer, answer
    pa, pb = re.escape(a.ip), re.escape(b.ip)
    assert seen.matching(rf"IP {h1}\.\d+ > {h2}\.4789: VXLAN.* {pa} > {pb}: ICMP echo request")
    assert seen.matching(rf"IP {h2}\.\d+ > {h1}\.4789: VXLAN.* {pb} > {pa}: ICMP echo reply")
    assert not seen.matching(rf"^\S+ IP {pa} > {pb}:"), seen.packets  # never bare on the wire


def test_a_calico_network_policy_denies_then_allows_a_cross_host_connection(
    hosts: Cluster, pods: list[Pod]
) -> None:
    client, server = pods
    hosts.calicoctl("apply", "-f", "-", stdin=policy(server))
    wait_until(
        "the policy to close TCP to the server",
        lambda: not client.http_get(server.ip),
        POLICY_TIMEOUT,
    )
    client.exec("ping", "-c", "2", "-W", "2", server.ip)  # the path is up: TCP alone is denied
    hosts.calicoctl("apply", "-f", "-", stdin=policy(server, allow_tcp_from=client))
    wait_until(
        "the policy to let the client's TCP in",
        lambda: "hello from pod-host2" in client.http_get(server.ip),
        POLICY_TIMEOUT,
    )
    hosts.calicoctl("delete", "networkpolicy", POLICY, "-n", "default")


def test_a_pods_traffic_to_an_address_outside_the_pools_leaves_its_host_masqueraded(
    hosts: Cluster, pods: list[Pod]
) -> None:
    pod = pods[0]
    host = re.escape(hosts.hosts[0].address)
    outside, pod_ip = re.escape(OUTSIDE), re.escape(pod.ip)
    with hosts.segment.capture(f"icmp and host {OUTSIDE}") as seen:
        pod.exec("ping", "-c", "2", "-W", "2", OUTSIDE)
    assert seen.matching(rf"IP {host} > {outside}: ICMP echo request"), seen.packets
    assert seen.matching(rf"IP {outside} > {host}: ICMP echo reply"), seen.packets
    assert not seen.matching(pod_ip), seen.packets


def test_pods_reach_each_other_over_ipip_with_the_bird_backend_and_the_mesh_established(
    hosts: Cluster, pods: list[Pod]
) -> None:
    hosts.calicoctl(
        "patch", "ippool", "default-ipv4-ippool",
        "-p", '{"spec": {"ipipMode": "Always", "vxlanMode": "Never"}}',
    )  # fmt: skip
    on_each(hosts.hosts, lambda h: hosts.configure(h, CALICO_NETWORKING_BACKEND="bird"))
    on_each(hosts.hosts, hosts.restart_calico_node)
    for host in hosts.hosts:
        peer = next(h for h in hosts.hosts if h is not host)
        wait_until(
            f"{host.name}'s mesh session with {peer.name} Established",
            lambda host=host, peer=peer: mesh_established(hosts, host, peer.address),
            MESH_TIMEOUT,
        )
    a, b = pods
    h1, h2 = (re.escape(h.address) for h in hosts.hosts)
    pa, pb = re.escape(a.ip), re.escape(b.ip)
    with hosts.segment.capture("ip proto 4 or udp port 4789 or icmp") as seen:
        a.exec("ping", "-c", "3", "-W", "2", b.ip)
        answer = a.http_get(b.ip)
    assert "hello from pod-host2" in answer, answer
    assert seen.matching(rf"IP {h1} > {h2}: IP {pa} > {pb}: ICMP echo request"), seen.packets
    assert seen.matching(rf"IP {h2} > {h1}: IP {pb} > {pa}: ICMP echo reply"), seen.packets
    assert not seen.matching("VXLAN"), seen.packets
    assert not seen.matching(rf"^\S+ IP {pa} > {pb}:"), seen.packets


def test_a_calico_node_restart_loses_at_most_one_cross_host_ping_and_keeps_bird_sessions(
    hosts: Cluster, pods: list[Pod]
) -> None:
    a, b = pods
    host = hosts.hosts[0]
    before = on_each(hosts.hosts, bird_sessions)
    bird_pid = host.run("cat", f"{RUN_DIR}/bird.pid").stdout.strip()
    with ping_stream(a, b.ip) as ping:
        hosts.restart_calico_node(host)
        a.exec("ping", "-c", "1", "-W", "2", b.ip)  # replies flow again before it is judged
    assert len(unanswered(ping)) <= 1, ping
    assert host.run("cat", f"{RUN_DIR}/bird.pid").stdout.strip() == bird_pid
    assert on_each(hosts.hosts, bird_sessions) == before
    assert all("Established" in line for sessions in before for line in sessions.values())

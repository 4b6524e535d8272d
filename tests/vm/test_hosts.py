"""pycalico across hosts that share no kernel and no filesystem: guests on one segment.

Each guest boots Debian's stock kernel under systemd with its own root overlay, host name
and NIC, and gets pycalico as the README's "Install on a host" says (see cluster.py); host1
runs etcd; pods are made by podman through the installed CNI plugin. The checks share one
cluster (booting and installing it is most of the cost) and run in this file's order: the
later ones change it (IPIP, a restart, an uninstall).
"""

from __future__ import annotations

import ipaddress
import json
import re

import pytest

from .cluster import (
    HTTP_PORT,
    POOL,
    RUN_DIR,
    UNIT,
    Cluster,
    Pod,
    bird_sessions,
    on_each,
    ping_stream,
    readme_block,
    run_readme,
    unanswered,
    wait_node_ready,
    wait_until,
)
from .harness import REPO, Guest
from .segment import OUTSIDE

pytestmark = pytest.mark.hosts

PREFIX = "/opt/pycalico"  # where the README's install puts the venv
MANIFEST = "/etc/calico/.pycalico-install"
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
        "spec:\n  selector: all()\n  types: [Ingress]\n  ingress:\n  " + "\n  ".join(rules) + "\n"
    )


def mesh_established(hosts: Cluster, host: Guest, peer: str) -> bool:
    """`calicoctl node status` on `host` lists `peer` as an Established mesh peer."""
    status = hosts.calicoctl("node", "status", on=host, check=False)
    return any(
        peer in line and "node-to-node mesh" in line and "Established" in line
        for line in status.splitlines()
    )


def main_pid(host: Guest) -> str:
    return host.run("systemctl", "show", "-p", "MainPID", "--value", UNIT).stdout.strip()


@pytest.fixture(scope="module")
def pods(hosts: Cluster) -> list[Pod]:
    """A podman pod on each host, serving HTTP."""
    made = on_each(hosts.hosts, lambda h: hosts.pod(h, f"pod-{h.name}"))
    hosts.step("pods")
    return [p for p in made if isinstance(p, Pod)]


def test_each_host_runs_the_calico_node_installed_from_the_wheelhouse_as_a_systemd_unit(
    hosts: Cluster,
) -> None:
    pool = ipaddress.ip_network(POOL)
    for host in hosts.hosts:
        assert f"installed pycalico for node {host.name}" in hosts.installed[host.name]
        assert host.run("ls", "-A", str(REPO)).stdout == ""  # the checkout is hidden here
        assert host.run("systemctl", "is-active", UNIT).stdout.strip() == "active"
        python, script, *_ = host.run("cat", f"/proc/{main_pid(host)}/cmdline").stdout.split("\0")
        assert python.startswith(f"{PREFIX}/bin/python") and script == f"{PREFIX}/bin/calico-node"
        where = host.run(f"{PREFIX}/bin/python", "-c", "import pycalico; print(pycalico.__file__)")
        assert where.stdout.startswith(f"{PREFIX}/lib/"), where.stdout
        # The README's podman run: a pod on Calico's network, its address from the pool.
        (address,) = re.findall(r"inet (\S+)/32", hosts.podman_run[host.name])
        assert ipaddress.ip_address(address) in pool, hosts.podman_run[host.name]
    nodes = hosts.calicoctl("get", "nodes", "-o", "wide")
    for host in hosts.hosts:
        assert re.search(rf"^{host.name}\s.*{re.escape(host.address)}/24", nodes, re.M), nodes


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
    outside = re.escape(OUTSIDE)
    with hosts.segment.capture(f"icmp and host {OUTSIDE}") as seen:
        pod.exec("ping", "-c", "2", "-W", "2", OUTSIDE)
    assert seen.matching(rf"IP {host} > {outside}: ICMP echo request"), seen.packets
    assert seen.matching(rf"IP {outside} > {host}: ICMP echo reply"), seen.packets
    assert not seen.matching(re.escape(pod.ip)), seen.packets


def test_pods_reach_each_other_over_ipip_with_the_bird_backend_and_the_mesh_established(
    hosts: Cluster, pods: list[Pod]
) -> None:
    hosts.calicoctl(
        "patch", "ippool", "default-ipv4-ippool",
        "-p", '{"spec": {"ipipMode": "Always", "vxlanMode": "Never"}}',
    )  # fmt: skip
    # The README's install again, with BGP and IPIP: it restarts the running node.
    bird = {
        "CALICO_NETWORKING_BACKEND": "bird",
        "CALICO_IPV4POOL_IPIP": "Always",
        "CALICO_IPV4POOL_VXLAN": "Never",
    }
    said = on_each(hosts.hosts, lambda h: hosts.reinstall(h, **bird))
    assert all("restarted calico-node.service" in str(s) for s in said), said
    on_each(hosts.hosts, wait_node_ready)
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


def test_restarting_the_unit_loses_at_most_one_cross_host_ping_and_bird_keeps_its_sessions(
    hosts: Cluster, pods: list[Pod]
) -> None:
    a, b = pods
    host = hosts.hosts[0]
    before = on_each(hosts.hosts, bird_sessions)
    bird_pid = host.run("cat", f"{RUN_DIR}/bird.pid").stdout.strip()
    node_pid = main_pid(host)
    with ping_stream(a, b.ip) as ping:
        hosts.restart_calico_node(host)
        a.exec("ping", "-c", "1", "-W", "2", b.ip)  # replies flow again before it is judged
    assert main_pid(host) != node_pid  # it did restart
    assert len(unanswered(ping)) <= 1, ping
    assert host.run("cat", f"{RUN_DIR}/bird.pid").stdout.strip() == bird_pid
    assert on_each(hosts.hosts, bird_sessions) == before
    assert all("Established" in line for sessions in before for line in sessions.values())


def test_uninstall_leaves_nothing_it_owned_and_delete_node_releases_the_node(
    hosts: Cluster, pods: list[Pod]
) -> None:
    host, other = hosts.hosts[1], hosts.hosts[0]
    manifest = json.loads(host.run("cat", MANIFEST).stdout)
    pids = [main_pid(host), host.run("cat", f"{RUN_DIR}/bird.pid").stdout.strip()]
    run_readme(host, readme_block("calico-node uninstall"))
    paths = [MANIFEST, manifest["prefix"], *manifest["files"], *manifest["dirs"]]
    left = host.run(
        "sh", "-c", 'for p; do if [ -e "$p" ] || [ -L "$p" ]; then find "$p"; fi; done', "sh",
        *paths,
    )  # fmt: skip
    assert left.stdout == "", f"left behind:\n{left.stdout}"
    assert host.run("systemctl", "is-active", UNIT, check=False).stdout.strip() != "active"
    for pid in pids:
        assert host.run("kill", "-0", pid, check=False).rc != 0, f"pid {pid} still runs"
    links = host.run("ip", "-o", "link", "show").stdout
    assert not re.search(r"^\d+: (cali|vxlan\.calico|vxlan-v6\.calico)", links, re.M), links
    assert host.run("ip", "-o", "addr", "show", "dev", "tunl0").stdout == ""
    for proto in ("80", "bird"):
        assert host.run("ip", "route", "show", "proto", proto).stdout == "", proto
    assert host.run("nft", "list", "table", "inet", "calico", check=False).rc != 0
    # The datastore is left alone until the README's `calicoctl delete node`, from host1.
    assert re.search(rf"^{host.name}\s", hosts.calicoctl("get", "nodes"), re.M)
    run_readme(other, readme_block("calicoctl delete node"))
    assert not re.search(rf"^{host.name}\s", hosts.calicoctl("get", "nodes"), re.M)

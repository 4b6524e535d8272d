"""pycalico across hosts that share no kernel and no filesystem: guests on one segment.

Each guest boots Debian's stock kernel with its own root overlay, host name and NIC; host1
runs etcd; pods are made by podman through pycalico's CNI plugin. The checks share one
cluster (booting it is most of the cost) and run in this file's order.
"""

from __future__ import annotations

import re

import pytest

from .cluster import Cluster, Pod, on_each

pytestmark = pytest.mark.hosts


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

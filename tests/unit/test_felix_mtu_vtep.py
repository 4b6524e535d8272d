"""MTU auto-detection and the VXLAN MAC derived from the node name."""

from __future__ import annotations

from pycalico.felix.calc.mtu import Link, host_mtu, pod_mtu, tunnel_mtu
from pycalico.felix.calc.vxlan_mac import vtep_mac


def test_host_mtu_is_the_smallest_up_matching_interface() -> None:
    links = [
        Link("eth0", 1500, True),
        Link("eth1", 9000, True),
        Link("ens3", 1400, False),
        Link("docker0", 1200, True),
        Link("lo", 65536, True),
    ]
    assert host_mtu(links) == 1500


def test_host_mtu_falls_back_to_1460_without_a_matching_interface() -> None:
    assert host_mtu([Link("lo", 65536, True), Link("weird0", 1500, True)]) == 1460


def test_tunnel_mtus_subtract_calicos_overheads_unless_configured() -> None:
    assert tunnel_mtu(1500, "ipip") == 1480
    assert tunnel_mtu(1500, "vxlan") == 1450
    assert tunnel_mtu(1500, "vxlan-v6") == 1430
    assert tunnel_mtu(1500, "vxlan", configured=1400) == 1400


def test_pod_mtu_is_the_smallest_enabled_encapsulation_or_the_host_mtu() -> None:
    assert pod_mtu(1500, {}) == 1500
    assert pod_mtu(1500, {"ipip": 0}) == 1480
    assert pod_mtu(1500, {"ipip": 0, "vxlan": 0}) == 1450
    assert pod_mtu(9000, {"vxlan": 1500}) == 1500


def test_vtep_mac_matches_calicos_derivation() -> None:
    # The reference's example: node `node1` gets 66:f9:37:c3:7e:94.
    assert vtep_mac("node1") == "66:f9:37:c3:7e:94"
    assert vtep_mac("node1", "EE:00:00:00:00:01") == "ee:00:00:00:00:01"
    assert vtep_mac("node1", ipv6=True) != vtep_mac("node1")
